/** Plain-object builders for the pure remediation tests (no sandbox, no SDK). */
import type {
  ApplicationInfo,
  PasswordCredentialInfo,
  RotationRecord,
  ServiceConnection,
} from '../../src/remediation/ports';

export const NOW = new Date('2025-06-01T00:00:00.000Z');
export const DAY_MS = 24 * 3600 * 1000;
export const CONNECTION_ID = '11111111-1111-4111-8111-111111111111';
export const APP_ID = '22222222-2222-4222-8222-222222222222';
const APP_OBJECT_ID = '33333333-3333-4333-8333-333333333333';
export const TENANT_ID = '44444444-4444-4444-8444-444444444444';
export const ORG_URL = 'https://dev.azure.com/contoso';

/** ISO time `days` days from NOW (fractions allowed). */
export function inDays(days: number): string {
  return new Date(NOW.getTime() + days * DAY_MS).toISOString();
}

/** An automatic, ready, secret-based AzureRM connection as Azure DevOps returns it. */
export function connection(overrides: Partial<ServiceConnection> = {}): ServiceConnection {
  return {
    id: CONNECTION_ID,
    name: 'prod-subscription',
    type: 'azurerm',
    url: 'https://management.azure.com/',
    description: 'deploys prod',
    owner: 'library',
    data: {
      environment: 'AzureCloud',
      scopeLevel: 'Subscription',
      subscriptionId: '55555555-5555-4555-8555-555555555555',
      subscriptionName: 'Prod',
      creationMode: 'Automatic',
      azureSpnRoleAssignmentId: '66666666-6666-4666-8666-666666666666',
      spnObjectId: '77777777-7777-4777-8777-777777777777',
      appObjectId: APP_OBJECT_ID,
      azureSpnPermissions: '[{"roleAssignmentId":"66666666-6666-4666-8666-666666666666","provisioned":true}]',
    },
    authorization: {
      scheme: 'ServicePrincipal',
      parameters: {
        tenantid: TENANT_ID,
        serviceprincipalid: APP_ID,
        authenticationType: 'spnKey',
        serviceprincipalkey: null,
      },
    },
    isReady: true,
    isShared: false,
    operationStatus: { state: 'Ready', statusMessage: '' },
    serviceEndpointProjectReferences: [
      { projectReference: { id: 'p1', name: 'Web' }, name: 'prod-subscription', description: 'deploys prod' },
    ],
    createdBy: { id: 'u1', displayName: 'Someone' },
    ...overrides,
  };
}

/** A connection whose authorization parameters are changed. */
export function withParams(
  params: Record<string, string | null | undefined>,
  overrides: Partial<ServiceConnection> = {},
): ServiceConnection {
  const c = connection(overrides);
  return {
    ...c,
    authorization: { ...c.authorization, parameters: { ...c.authorization.parameters, ...params } },
  };
}

export function password(
  keyId: string,
  endInDays: number | null,
  displayName: string | null = null,
  startInDays = -300,
): PasswordCredentialInfo {
  return {
    keyId,
    displayName,
    hint: 'abc',
    startDateTime: inDays(startInDays),
    endDateTime: endInDays === null ? null : inDays(endInDays),
  };
}

export function app(passwords: PasswordCredentialInfo[]): ApplicationInfo {
  return {
    id: APP_OBJECT_ID,
    appId: APP_ID,
    displayName: 'contoso-web-prod',
    passwordCredentials: passwords,
  };
}

export function record(overrides: Partial<RotationRecord> = {}): RotationRecord {
  return {
    connectionId: CONNECTION_ID,
    organization: ORG_URL,
    phase: 'completed',
    appId: APP_ID,
    keyId: 'k-new',
    rotationId: 'r1',
    previousKeyIds: ['k-old'],
    originalCreationMode: 'Automatic',
    expiresAt: inDays(80),
    createdAt: inDays(-10),
    appliedAt: inDays(-10),
    verifiedAt: inDays(-10),
    completedAt: inDays(-9),
    ...overrides,
  };
}
