/**
 * A generated tenant for the bench and the fault campaign: `organizations × projects × connections`
 * secret-based Azure Resource Manager connections, each with its own app registration (what an
 * Automatic connection creates), a share of them needing a new secret (expired or expiring), a few
 * shared across two projects, a few broken in ways a new secret cannot fix (app deleted or disabled,
 * `accesstoken: null`), a few workload identity ones. Deterministic for a seed.
 */
import seedrandom from 'seedrandom';
import type {
  Scenario,
  ScenarioApp,
  ScenarioConnection,
  ScenarioIdentity,
  ScenarioOrganization,
} from '../sandbox/scenario';

export interface TenantShape {
  organizations: number;
  projectsPerOrganization: number;
  connectionsPerProject: number;
  /** Share of connections whose secret is expired or expires within 30 days (default 0.1). */
  rotateFraction?: number;
  /** Share of connections listed in two projects (default 0.01). */
  sharedFraction?: number;
  /** Share of connections broken in a way a new secret does not fix (default 0.01). */
  otherFailedFraction?: number;
  /** Share of workload identity connections (no secret; default 0.005). */
  workloadIdentityFraction?: number;
  seed?: string;
  /**
   * Share of the connections whose secret this service set in an earlier run (a `completed` Key Vault
   * record, a marked credential): the steady state of a nightly run. Default 0 (a first run).
   */
  recordsFraction?: number;
  /** Seconds a new password takes to work (Graph replication lag; default 0). */
  passwordReplicationDelaySeconds?: number;
  /**
   * Certificate-based connections (`spnCertificate`) whose certificate expires within 30 days, added
   * to the first project besides the others (default 0; the random draws of the rest are unchanged).
   */
  certificateConnections?: number;
}

/** What kind each connection is, as generated (the bench checks the product against it). */
export type ConnectionKind =
  | 'healthy'
  | 'expiring'
  | 'expired'
  | 'accesstoken-null'
  | 'app-deleted'
  | 'app-disabled'
  | 'workload-identity';

interface GeneratedTenant {
  scenario: Scenario;
  /** Connections by kind, in the order generated (shared ones once). */
  kinds: Record<ConnectionKind, number>;
  connections: number;
  /** Connections a rotation should fix (expiring + expired). */
  needRotation: number;
  /** A personal access token of the product identity (the baseline's manual procedure uses one). */
  productPat: string;
  /** Each connection's kind, by its scenario key. */
  kindOf: Map<string, ConnectionKind>;
}

/** Connections in this shape (shared ones counted once). */
export function connectionCount(shape: TenantShape): number {
  return shape.organizations * shape.projectsPerOrganization * shape.connectionsPerProject;
}

export function generateTenant(shape: TenantShape): GeneratedTenant {
  const random = seedrandom(shape.seed ?? 'bench-tenant');
  const rotate = shape.rotateFraction ?? 0.1;
  const shared = shape.sharedFraction ?? 0.01;
  const otherFailed = shape.otherFailedFraction ?? 0.01;
  const wif = shape.workloadIdentityFraction ?? 0.005;
  const productPat = `benchpat${Math.floor(random() * 1e12).toString(36)}x${Math.floor(random() * 1e12).toString(36)}`;
  const identities: ScenarioIdentity[] = [
    {
      key: 'remediator',
      displayName: 'sc-remediator',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.ReadWrite.OwnedBy', 'Policy.Read.All'],
      vaultWriter: true,
      pats: [productPat],
    },
  ];
  const apps: ScenarioApp[] = [];
  const organizations: ScenarioOrganization[] = [];
  const kinds: Record<ConnectionKind, number> = {
    healthy: 0,
    expiring: 0,
    expired: 0,
    'accesstoken-null': 0,
    'app-deleted': 0,
    'app-disabled': 0,
    'workload-identity': 0,
  };
  const kindOf = new Map<string, ConnectionKind>();
  const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));

  for (let o = 0; o < shape.organizations; o++) {
    const orgName = `org${String(o + 1).padStart(2, '0')}`;
    const projects = Array.from({ length: shape.projectsPerOrganization }, (_, p) => ({
      name: `project-${String(p + 1).padStart(3, '0')}`,
    }));
    const connections: ScenarioConnection[] = [];
    for (let p = 0; p < shape.projectsPerOrganization; p++) {
      for (let c = 0; c < shape.connectionsPerProject; c++) {
        const key = `${orgName}-p${p + 1}-c${c + 1}`;
        const r = random();
        let kind: ConnectionKind;
        if (r < rotate) kind = random() < 0.55 ? 'expiring' : 'expired';
        else if (r < rotate + otherFailed) {
          const f = random();
          kind = f < 0.4 ? 'accesstoken-null' : f < 0.7 ? 'app-deleted' : 'app-disabled';
        } else if (r < rotate + otherFailed + wif) kind = 'workload-identity';
        else kind = 'healthy';
        kinds[kind] += 1;
        kindOf.set(key, kind);

        const automatic = random() < 0.3;
        const endInDays =
          kind === 'expiring' ? between(2, 25) : kind === 'expired' ? between(-60, -1) : between(60, 700);
        apps.push({
          key,
          displayName: `${orgName}-${projects[p]?.name ?? ''}-${c + 1}`,
          owners: ['remediator'],
          deleted: kind === 'app-deleted',
          disabled: kind === 'app-disabled',
          passwords: [
            {
              key: 'ado',
              displayName: `${orgName}-${projects[p]?.name ?? ''}-${key}`,
              // Valid from well before today (a password whose start is still ahead does not work).
              startInDays: Math.min(endInDays - 365, -between(30, 300)),
              endInDays,
            },
          ],
        });
        const isShared = p + 1 < shape.projectsPerOrganization && random() < shared;
        const connection: ScenarioConnection = {
          key,
          name: `arm-${key}`,
          projects: isShared
            ? [projects[p]?.name ?? '', projects[p + 1]?.name ?? '']
            : [projects[p]?.name ?? ''],
          scheme: kind === 'workload-identity' ? 'WorkloadIdentityFederation' : 'ServicePrincipal',
          creationMode: automatic ? 'Automatic' : 'Manual',
          app: key,
          createdBy: 'remediator',
        };
        if (kind !== 'workload-identity') connection.secret = 'ado';
        if (kind === 'accesstoken-null') connection.accessTokenNull = true;
        connections.push(connection);
      }
    }
    for (let c = 0; o === 0 && c < (shape.certificateConnections ?? 0); c++) {
      const key = `${orgName}-cert${c + 1}`;
      kinds.expiring += 1;
      kindOf.set(key, 'expiring');
      apps.push({
        key,
        displayName: `${orgName}-cert-${c + 1}`,
        owners: ['remediator'],
        certificates: [{ key: 'ado', startInDays: -340, endInDays: 5 + c }],
      });
      connections.push({
        key,
        name: `arm-${key}`,
        projects: [projects[0]?.name ?? ''],
        scheme: 'ServicePrincipal',
        authenticationType: 'spnCertificate',
        creationMode: 'Manual',
        app: key,
        certificate: 'ado',
        createdBy: 'remediator',
      });
    }
    organizations.push({
      name: orgName,
      projects,
      members: [{ identity: 'remediator', endpointAdministrator: true }],
      connections,
    });
  }
  const connections = organizations.reduce((n, o) => n + o.connections.length, 0);
  return {
    scenario: {
      name: 'bench',
      description: `Generated: ${shape.organizations} organizations × ${shape.projectsPerOrganization} projects × ${shape.connectionsPerProject} connections.`,
      productIdentity: 'remediator',
      passwordReplicationDelaySeconds: shape.passwordReplicationDelaySeconds ?? 0,
      identities,
      apps,
      organizations,
    },
    kinds,
    connections,
    needRotation: kinds.expiring + kinds.expired,
    productPat,
    kindOf,
  };
}
