/** A GUID in its usual 8-4-4-4-12 hex form: ids of tenants, apps, connections, runs. */
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
