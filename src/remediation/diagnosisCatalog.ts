/**
 * The words of every diagnosis (diagnosis.ts decides which applies): one entry per troubleshooting
 * case of `background/`, with the cause, whether this service fixes it by itself, and the next step.
 */
import type { Diagnosis, DiagnosisKind } from './report';

type Entry = Omit<Diagnosis, 'kind' | 'code'>;

const ROTATE_BY_HAND =
  'By hand: Entra admin center > App registrations > the app > Certificates & secrets > New client secret, then GET the connection, set data.creationMode to Manual, drop spnObjectId/appObjectId/azureSpnRoleAssignmentId, put the value in authorization.parameters.serviceprincipalkey and PUT it to https://dev.azure.com/{org}/_apis/serviceendpoint/endpoints/{id}?api-version=7.1.';
const ROTATE_BY_SERVICE =
  "sc-remediator rotates it: a new client secret through Microsoft Graph (its identity needs Application.ReadWrite.OwnedBy and ownership of the app, or Application.ReadWrite.All), stored in Key Vault first, then written into the connection and verified; the old secret is removed after the retention period. Run 'sc-remediator fix <connection>' to do it now.";

/** Every diagnosis kind: its cause, whether this service fixes it, and the next step for a person. */
export const DIAGNOSES: Record<DiagnosisKind, Entry> = {
  'invalid-secret': {
    cause:
      "Entra ID rejects the connection's client secret: the stored value is not a current secret of the app (it was removed, mistyped, or is the secret ID instead of its value).",
    fixableByService: true,
    nextStep: `${ROTATE_BY_SERVICE} ${ROTATE_BY_HAND}`,
  },
  'expired-secret': {
    cause: "The app's client secret that the connection uses has expired.",
    fixableByService: true,
    nextStep: `${ROTATE_BY_SERVICE} ${ROTATE_BY_HAND}`,
  },
  'missing-secret': {
    cause: 'The connection holds no client secret, so Entra ID refuses the token request.',
    fixableByService: true,
    nextStep: `${ROTATE_BY_SERVICE} ${ROTATE_BY_HAND}`,
  },
  'app-not-found': {
    cause:
      "The connection's app registration (client id) does not exist in the connection's tenant: it was deleted, or the connection points at the wrong tenant.",
    fixableByService: false,
    nextStep:
      'Check the tenant id in the connection. If the app was deleted less than 30 days ago, an Application Administrator restores it (Entra admin center > App registrations > Deleted applications > Restore). Otherwise create a new connection (workload identity federation recommended), move the pipelines to it, and delete this one (Project settings > Service connections > Delete; if the UI fails, DELETE https://dev.azure.com/{org}/_apis/serviceendpoint/endpoints/{id}?projectIds={projectId}&deep=false&api-version=7.1).',
  },
  'app-disabled': {
    cause: "The app's service principal is disabled for sign-in in the tenant.",
    fixableByService: false,
    nextStep:
      "A Cloud Application Administrator or Application Administrator opens Entra admin center > Enterprise applications > the app > Properties and sets 'Enabled for users to sign-in' to Yes (or confirms it was disabled on purpose and the connection should be deleted).",
  },
  'service-principal-missing': {
    cause: 'The app registration exists but has no service principal (enterprise application) in the tenant.',
    fixableByService: false,
    nextStep:
      "An Application Administrator creates it ('az ad sp create --id <appId>' or New-MgServicePrincipal -AppId <appId>) and gives it its role on the subscription (Access control (IAM), needs Owner or User Access Administrator).",
  },
  'tenant-not-found': {
    cause: 'The tenant id in the connection does not name an existing Entra ID tenant.',
    fixableByService: false,
    nextStep:
      'Correct the tenant id: Project settings > Service connections > the connection > Edit (for a manual connection), or recreate the connection in the right tenant.',
  },
  'access-token-invalid': {
    cause:
      "The connection carries an empty 'accesstoken' authorization parameter (left by a UI update), so Azure DevOps cannot get its own access token: 'Failed to get Azure DevOps Service access token, cache value is invalid'.",
    fixableByService: true,
    nextStep:
      'sc-remediator re-saves the connection without the empty accesstoken (a PUT with creationMode Manual, keeping the stored secret; needs Administrator on the connection). By hand: GET the connection, remove authorization.parameters.accesstoken, and PUT it to https://dev.azure.com/{org}/_apis/serviceendpoint/endpoints/{id}?api-version=7.1.',
  },
  'missing-role-assignment': {
    cause:
      "The connection's service principal signs in but has no role on the subscription or scope it targets (ARM AuthorizationFailed).",
    fixableByService: false,
    nextStep:
      'Someone with Owner or User Access Administrator on the scope opens Azure portal > the subscription (or resource group) > Access control (IAM) > Add role assignment and gives the service principal Reader (enough for Verify) or Contributor / a custom role for deployments. Wait a few minutes for propagation, then Verify the connection.',
  },
  'role-assignment-failed': {
    cause:
      'Creating the connection failed while Azure DevOps assigned the app the Contributor role: the user creating it had no write permission (Owner or User Access Administrator) on the subscription.',
    fixableByService: false,
    nextStep:
      'Ask a subscription Owner to assign the role (Access control (IAM) > Add role assignment > Contributor for the app) or to create the connection; or have an administrator create a service principal and use Service principal (manual). Then delete the failed connection.',
  },
  'guest-permission': {
    cause:
      'Creating the connection failed: the user has only guest permissions in the Entra ID directory, so Azure DevOps could not create the app on their behalf.',
    fixableByService: false,
    nextStep:
      "An Entra administrator sets Entra ID > Users > User settings > Manage external collaboration settings > 'Guest user permissions are limited' to No, or gives the user a directory role; or an administrator creates the app and the connection is created with Service principal (manual). Changes take 15-20 minutes.",
  },
  'not-authorized-to-add-applications': {
    cause:
      'Creating the connection failed: the user may not register applications in the directory, so Azure DevOps could not create the app.',
    fixableByService: false,
    nextStep:
      "An Entra administrator sets Entra ID > Users > User settings > 'Users can register applications' to Yes or gives the user the Application Developer role; or an administrator creates the app and the connection uses Service principal (manual).",
  },
  'user-session-expired': {
    cause:
      "The Azure DevOps session of the user who created or edited the connection expired ('Failed to obtain an access token or a valid refresh token wasn't found'); not the connection's own secret.",
    fixableByService: false,
    nextStep:
      'Sign out of Azure DevOps, sign in again in a private browser window, open the organization and project, and create or save the connection again.',
  },
  'subscription-not-listed': {
    cause:
      'The subscription is not offered when creating or editing the connection: more than 50 subscriptions, a stale cached user token, several tenants, or the app registration only allows its own tenant.',
    fixableByService: false,
    nextStep:
      'Sign out and back in (clear the browser cache), re-authenticate each tenant in your Visual Studio profile (https://app.vsaex.visualstudio.com/), or enter the subscription by id with Service principal (manual).',
  },
  'pipeline-not-authorized': {
    cause: 'The pipeline has not been granted permission to use the connection.',
    fixableByService: false,
    nextStep:
      'Project settings > Service connections > the connection > Security > Pipeline permissions: add the pipeline (avoid Open access unless every pipeline should use it).',
  },
  'graph-permission-denied': {
    cause:
      "This service's identity may not read or change the app through Microsoft Graph (Authorization_RequestDenied).",
    fixableByService: false,
    nextStep:
      "A Privileged Role Administrator grants the service's identity the Microsoft Graph application permission Application.ReadWrite.OwnedBy (and an app owner adds the identity as owner of the app), or Application.ReadWrite.All, with admin consent.",
  },
  'devops-permission-denied': {
    cause:
      "This service's identity may not change the connection: updating credentials needs the Administrator role on service connections at organization level (project administrators cannot).",
    fixableByService: false,
    nextStep:
      "An organization administrator opens Organization settings > Pipelines > Service connections > Security (or the connection's Security page) and adds the service's identity as Administrator; the identity also needs an access level (Basic or Stakeholder) in the organization.",
  },
  'key-vault-permission-denied': {
    cause: "This service's identity may not read or write secrets in the configured Key Vault.",
    fixableByService: false,
    nextStep:
      "Assign the service's identity the 'Key Vault Secrets Officer' role on the vault (Azure portal > the vault > Access control (IAM)), or redeploy infra/ which grants it.",
  },
  'password-policy': {
    cause:
      'An app management policy forbids new client secrets for this app or caps their lifetime below what is needed.',
    fixableByService: false,
    nextStep:
      'Ask an Entra administrator to exempt the app from the policy (Graph /policies/appManagementPolicies or the tenant default policy), or convert the connection to workload identity federation (Project settings > Service connections > the connection > Convert).',
  },
  'password-limit': {
    cause:
      'The app already holds as many client secrets as it may (apps that allow personal Microsoft accounts keep at most 2), and none of them is expired, so no new one can be added without removing a secret that may be in use.',
    fixableByService: false,
    nextStep:
      "An owner of the app checks which secret is unused (Entra admin center > App registrations > the app > Certificates & secrets) and deletes it; the next run then rotates. Better: restrict the app's supported account types to this organization, or move the connection to workload identity federation.",
  },
  'password-lifetime': {
    cause:
      'An app management policy caps the lifetime of new client secrets below the one requested, and the directory refused the new secret (CredentialInvalidLifetimeAsPerAppPolicy); the cap could not be read to stay within it.',
    fixableByService: false,
    nextStep:
      "Grant the service's identity the Microsoft Graph application permission Policy.Read.All (it then reads the cap and asks for no longer), or set SECRET_LIFETIME_DAYS to the policy's maximum lifetime or less; or ask an Entra administrator to exempt the app (an app management policy assigned to it replaces the tenant default).",
  },
  'other-tenant': {
    cause:
      "The connection's app lives in another Microsoft Entra tenant than the one this service manages apps in (AZURE_TENANT_ID): its credentials cannot be read or changed from here.",
    fixableByService: false,
    nextStep:
      'Add the tenant to ADDITIONAL_TENANT_IDS and have its administrator consent to the multi-tenant app (docs/deploy.md, "Other tenants"); or rotate it in its own tenant (by hand: Entra admin center of that tenant > App registrations > the app > Certificates & secrets), or convert the connection to workload identity federation.',
  },
  'tenant-access': {
    cause:
      "The service could not get a token in the connection's tenant (one of ADDITIONAL_TENANT_IDS) as the multi-tenant app (MULTI_TENANT_APP_CLIENT_ID): the app is not consented there, or its federated credential does not trust the service's identity.",
    fixableByService: false,
    nextStep:
      "An administrator of that tenant grants admin consent to the multi-tenant app (https://login.microsoftonline.com/{tenant}/adminconsent?client_id={MULTI_TENANT_APP_CLIENT_ID}) with Application.ReadWrite.OwnedBy, and makes its service principal an owner of the connection's app; 'sc-remediator check' shows a row per tenant.",
  },
  'certificate-expiring': {
    cause: 'The connection authenticates with a certificate of its app that ends within the rotation window.',
    fixableByService: true,
    nextStep:
      'The service rotates it: a new certificate created in Key Vault, added to the app, put into the connection and verified. By hand: upload a new certificate to the app (Entra admin center > App registrations > the app > Certificates & secrets > Certificates), put the new certificate (PEM with its private key) into the connection (Project settings > Service connections > the connection > Edit), Verify, then remove the old certificate from the app. Better: convert the connection to workload identity federation.',
  },
  'certificate-expired': {
    cause: 'The certificate of the app that the connection authenticates with has ended.',
    fixableByService: true,
    nextStep:
      'The service rotates it once the connection is entitled to its app (an expired certificate proves nothing: approve the binding, see docs/settings.md). By hand: upload a new certificate to the app (Entra admin center > App registrations > the app > Certificates & secrets > Certificates), put it (PEM with its private key) into the connection (Project settings > Service connections > the connection > Edit) and Verify; or convert the connection to workload identity federation.',
  },
  'certificate-missing': {
    cause:
      'The connection authenticates with a certificate, but its app has no certificate (keyCredentials) it could be using: there is no evidence the connection works.',
    fixableByService: false,
    nextStep:
      'Open the connection (Project settings > Service connections > the connection > Edit > Verify). If it fails, upload a certificate to the app (Entra admin center > App registrations > the app > Certificates & secrets) and put it into the connection, or convert the connection to workload identity federation.',
  },
  'unsupported-authentication': {
    cause:
      'The connection uses an authentication scheme or type this service does not know, so it cannot tell whether its credential works or when it ends.',
    fixableByService: false,
    nextStep:
      'Open the connection (Project settings > Service connections > the connection > Edit > Verify) and check its credential by hand.',
  },
  throttled: {
    cause: 'The service was throttled (HTTP 429/503) and gave up after its retries.',
    fixableByService: true,
    nextStep: 'Nothing: the next run retries. If it persists, lower MAX_CONCURRENCY or spread the schedule.',
  },
  'operation-in-progress': {
    cause: 'Azure DevOps is still creating or updating the connection (operationStatus InProgress).',
    fixableByService: false,
    nextStep:
      'Wait a few minutes; the next run looks again. If it stays InProgress for hours, open it in Project settings > Service connections and Verify.',
  },
  'entra-error': {
    cause: 'Entra ID refused the token request with an error this service does not know.',
    fixableByService: false,
    nextStep:
      'Look the code up at https://login.microsoftonline.com/error?code=<number> and fix it in the Entra admin center.',
  },
  // DESIGN invariant 10: missing state is unknown state, never healthy and never a reason to remove.
  'rotation-state-lost': {
    cause:
      "Rotation state lost: a credential of the app carries this service's marker for this connection, but Key Vault holds no record of it (deleted and purged, or another vault). Whether the connection uses it cannot be told, so nothing is removed or rotated.",
    fixableByService: false,
    nextStep:
      "Restore the connection's Key Vault secret (sc-remediator-<connectionId>) from a backup (az keyvault secret restore), or point KEY_VAULT_URL back at the vault that holds it. If it cannot be restored: once nothing uses the marked credential any more, delete it from the app (az ad app credential delete --id <appId> --key-id <keyId>) and the next run takes the connection over; otherwise the service reports the connection until the credential expires, then rotates it.",
  },
  'rotation-state-deleted': {
    cause:
      "The connection's rotation record was deleted from Key Vault and is still recoverable (soft delete).",
    fixableByService: true,
    nextStep:
      'Nothing: the next run that is not a dry run recovers it (Key Vault Secrets Officer includes secrets/recover) before deciding anything. Do not purge it.',
  },
  unknown: {
    cause: 'The connection is not ready and the service does not recognise why.',
    fixableByService: false,
    nextStep:
      'Open the connection in Project settings > Service connections > Edit > Verify to see the current error, then follow "Troubleshoot Azure Resource Manager service connections" (learn.microsoft.com).',
  },
};
