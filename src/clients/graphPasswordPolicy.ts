/**
 * The password restrictions in force for an app, from its app management policies and the tenant's
 * default policy (`Policy.Read.All`), folded into the core's `PasswordPolicy`.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { PasswordPolicy } from '../remediation/ports';

const DAY_MS = 24 * 3600 * 1000;

interface PasswordRestriction {
  restrictionType?: string;
  state?: string | null;
  maxLifetime?: string | null;
}

interface AppManagementPolicyJson {
  isEnabled?: boolean;
  restrictions?: { passwordCredentials?: PasswordRestriction[] };
}

interface TenantAppManagementPolicyJson {
  isEnabled?: boolean;
  applicationRestrictions?: { passwordCredentials?: PasswordRestriction[] };
}

/** ISO 8601 duration in whole days (rounded down, so a derived end date never exceeds the cap). */
function isoDurationToDays(duration: string): number | undefined {
  const m =
    /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(
      duration,
    );
  if (!m || duration === 'P' || /T$/i.test(duration)) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  const ms =
    (n(1) * 365 + n(2) * 30 + n(3) * 7 + n(4)) * DAY_MS + n(5) * 3600_000 + n(6) * 60_000 + n(7) * 1000;
  return Math.floor(ms / DAY_MS);
}

/** Folds enabled password restrictions into the core's view; undefined when none applies. */
function foldRestrictions(restrictions: PasswordRestriction[]): Partial<PasswordPolicy> {
  const out: Partial<PasswordPolicy> = {};
  for (const r of restrictions) {
    if (r.state === 'disabled') continue;
    if (r.restrictionType === 'passwordAddition') out.additionBlocked = true;
    if (r.restrictionType === 'passwordLifetime' && r.maxLifetime) {
      const days = isoDurationToDays(r.maxLifetime);
      if (days !== undefined) out.maxLifetimeDays = Math.min(out.maxLifetimeDays ?? days, days);
    }
  }
  return out;
}

function toPolicy(folded: Partial<PasswordPolicy>): PasswordPolicy {
  const policy: PasswordPolicy = { additionBlocked: folded.additionBlocked ?? false };
  if (folded.maxLifetimeDays !== undefined) policy.maxLifetimeDays = folded.maxLifetimeDays;
  return policy;
}

/** Reads the policy in force for an app; the tenant default is shared for `tenantPolicyTtlMs`. */
export class PasswordPolicyReader {
  private tenantPolicy: { read: Promise<TenantAppManagementPolicyJson>; at: number } | undefined;

  constructor(
    private readonly client: Client,
    private readonly tenantPolicyTtlMs: number,
  ) {}

  /**
   * The password restrictions in force for the app. An app management policy assigned to the app
   * replaces the tenant default for it entirely: "When both the tenant default policy and an app
   * management policy exist, the app management policy takes precedence and the assigned
   * application or service principal doesn't inherit from the tenant default policy" (Graph v1.0,
   * https://learn.microsoft.com/graph/api/resources/applicationauthenticationmethodpolicy). So the
   * tenant default is read only for apps without an enabled policy of their own.
   *
   * An assigned policy that is disabled: no public source says whether the tenant default then
   * applies. Chosen because safe under both readings: its lifetime cap is honoured (a shorter secret
   * than needed costs nothing) but its block is not assumed (assuming it would stop a rotation the
   * directory may allow; if it does apply, addPassword's CredentialTypeNotAllowedAsPerAppPolicy says so).
   * Restrictions are applied whatever their `restrictForAppsCreatedAfterDateTime`: assuming a cap
   * that may not apply only shortens a lifetime, while missing one makes addPassword fail.
   * Requires Policy.Read.All; never fails (a policy refusal still surfaces from addPassword).
   */
  async read(applicationObjectId: string): Promise<PasswordPolicy> {
    try {
      const own = (await this.client
        .api(`/applications/${encodeURIComponent(applicationObjectId)}/appManagementPolicies`)
        .get()) as { value?: AppManagementPolicyJson[] };
      const assigned = own.value ?? [];
      const enabled = assigned.filter((p) => p.isEnabled !== false);
      if (enabled.length > 0) {
        const fromApp = foldRestrictions(enabled.flatMap((p) => p.restrictions?.passwordCredentials ?? []));
        return toPolicy(fromApp);
      }
      const tenant = await this.tenantDefaultPolicy();
      const fromTenant =
        tenant.isEnabled === false
          ? {}
          : foldRestrictions(tenant.applicationRestrictions?.passwordCredentials ?? []);
      if (assigned.length > 0) return toPolicy({ maxLifetimeDays: fromTenant.maxLifetimeDays });
      return toPolicy(fromTenant);
    } catch {
      // Forbidden, throttled past retries, or unreachable: unknown policy is reported as none.
      return { additionBlocked: false };
    }
  }

  /** `GET /policies/defaultAppManagementPolicy`, shared for `tenantPolicyTtlMs` (a failed read is not kept). */
  private tenantDefaultPolicy(): Promise<TenantAppManagementPolicyJson> {
    const now = Date.now();
    if (this.tenantPolicy && now - this.tenantPolicy.at < this.tenantPolicyTtlMs)
      return this.tenantPolicy.read;
    const read = this.client
      .api('/policies/defaultAppManagementPolicy')
      .get() as Promise<TenantAppManagementPolicyJson>;
    if (this.tenantPolicyTtlMs > 0) {
      const entry = { read, at: now };
      this.tenantPolicy = entry;
      read.catch(() => {
        if (this.tenantPolicy === entry) this.tenantPolicy = undefined;
      });
    }
    return read;
  }
}
