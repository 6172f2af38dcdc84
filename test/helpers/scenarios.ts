import type { Scenario } from '../../sandbox/index';

/**
 * The cast of the small hand-written scenarios: the product's identity (`remediator`, allowed to
 * rotate owned apps and to write Key Vault) and a person (`alice`) who owns apps and made the
 * connections; no replication delay. Spread into a scenario: `{ name, ...CAST, apps, organizations }`.
 */
export const CAST: Pick<Scenario, 'productIdentity' | 'passwordReplicationDelaySeconds' | 'identities'> = {
  productIdentity: 'remediator',
  passwordReplicationDelaySeconds: 0,
  identities: [
    {
      key: 'remediator',
      displayName: 'sc-remediator',
      kind: 'servicePrincipal',
      graphPermissions: ['Application.ReadWrite.OwnedBy', 'Policy.Read.All'],
      vaultWriter: true,
    },
    { key: 'alice', displayName: 'Alice Lee', kind: 'user' },
  ],
};

type Organization = Scenario['organizations'][number];
type App = Scenario['apps'][number];

/** The cast as members of an organization: both endpoint administrators. */
export const CAST_MEMBERS: Organization['members'] = [
  { identity: 'remediator', endpointAdministrator: true },
  { identity: 'alice', endpointAdministrator: true },
];

/** App `deploy` (`sp-contoso-api-deploy`), owned by the cast, with these passwords. */
export function deployApp(passwords: App['passwords']): App {
  return { key: 'deploy', displayName: 'sp-contoso-api-deploy', owners: ['remediator', 'alice'], passwords };
}

/** Alice's Manual connection `api-deploy` in project `api`, on app `deploy`'s password `pipeline`. */
export const API_DEPLOY_CONNECTION: Organization['connections'][number] = {
  key: 'api-deploy',
  name: 'api-deploy',
  projects: ['api'],
  scheme: 'ServicePrincipal',
  creationMode: 'Manual',
  app: 'deploy',
  secret: 'pipeline',
  createdBy: 'alice',
};

/**
 * Alice's certificate connection `api-cert-deploy` (spnCertificate, Manual) in project `api`, on app
 * `deploy` (`sp-contoso-cert-deploy`) whose certificate `current` ends in 10 days, plus these
 * other certificates of the app.
 */
export function certificateScenario(name: string, otherCertificates: App['certificates'] = []): Scenario {
  return {
    name,
    ...CAST,
    apps: [
      {
        key: 'deploy',
        displayName: 'sp-contoso-cert-deploy',
        owners: ['remediator', 'alice'],
        certificates: [{ key: 'current', startInDays: -355, endInDays: 10 }, ...(otherCertificates ?? [])],
      },
    ],
    organizations: [
      {
        name: 'contoso',
        projects: [{ name: 'api' }],
        members: CAST_MEMBERS,
        connections: [
          {
            key: 'cert-deploy',
            case: 'certificate',
            name: 'api-cert-deploy',
            projects: ['api'],
            scheme: 'ServicePrincipal',
            authenticationType: 'spnCertificate',
            creationMode: 'Manual',
            app: 'deploy',
            certificate: 'current',
            createdBy: 'alice',
          },
        ],
      },
    ],
  };
}
