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
