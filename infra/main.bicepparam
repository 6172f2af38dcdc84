// Parameters of main.bicep, from the azd environment (`azd env set NAME value`) or, for
// `az deployment sub create/what-if`, from environment variables of the same names. Every value
// has the default of the public contract (DESIGN.md) when the variable is not set. No secret is
// written here: the two webhook URLs are read from the environment at deployment time only.
using './main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'sc-remediator')
param location = readEnvironmentVariable('AZURE_LOCATION', 'westeurope')
param resourceGroupName = readEnvironmentVariable('AZURE_RESOURCE_GROUP', '')
param principalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')

param azdoOrganizationUrls = readEnvironmentVariable('AZDO_ORGANIZATION_URLS')
param azdoProjects = readEnvironmentVariable('AZDO_PROJECTS', '')
param rotateDaysBeforeExpiry = int(readEnvironmentVariable('ROTATE_DAYS_BEFORE_EXPIRY', '30'))
param secretLifetimeDays = int(readEnvironmentVariable('SECRET_LIFETIME_DAYS', '90'))
param oldSecretRetentionHours = int(readEnvironmentVariable('OLD_SECRET_RETENTION_HOURS', '24'))
param dryRun = bool(readEnvironmentVariable('DRY_RUN', 'false'))
param remediationSchedule = readEnvironmentVariable('REMEDIATION_SCHEDULE', '0 0 2 * * *')
param remediationJitterSeconds = int(readEnvironmentVariable('REMEDIATION_JITTER_SECONDS', '120'))
param maxConcurrency = int(readEnvironmentVariable('MAX_CONCURRENCY', '8'))
param graphEndpoint = readEnvironmentVariable('GRAPH_ENDPOINT', '')
param additionalTenantIds = readEnvironmentVariable('ADDITIONAL_TENANT_IDS', '')
param multiTenantAppClientId = readEnvironmentVariable('MULTI_TENANT_APP_CLIENT_ID', '')
param remediationPolicy = readEnvironmentVariable('REMEDIATION_POLICY', '')
param enableRetirement = bool(readEnvironmentVariable('ENABLE_RETIREMENT', 'false'))
param retireFailedAfterDays = int(readEnvironmentVariable('RETIRE_FAILED_AFTER_DAYS', '0'))
param notifyWebhookUrl = readEnvironmentVariable('NOTIFY_WEBHOOK_URL', '')

param alertEmailAddresses = readEnvironmentVariable('ALERT_EMAIL_ADDRESSES', '')
param alertWebhookUrl = readEnvironmentVariable('ALERT_WEBHOOK_URL', '')
param expiringAlertDays = int(readEnvironmentVariable('EXPIRING_ALERT_DAYS', '7'))
param missedRunAlertHours = int(readEnvironmentVariable('MISSED_RUN_ALERT_HOURS', '26'))
param deployWorkbook = bool(readEnvironmentVariable('DEPLOY_WORKBOOK', 'true'))
param keyVaultCreateMode = readEnvironmentVariable('KEY_VAULT_CREATE_MODE', 'default')

param manageEntraObjects = bool(readEnvironmentVariable('MANAGE_ENTRA_OBJECTS', 'true'))
param grantPolicyReadAll = bool(readEnvironmentVariable('GRANT_POLICY_READ_ALL', 'true'))
param apiAppClientId = readEnvironmentVariable('API_APP_CLIENT_ID', '')
param authUnauthenticatedAction = readEnvironmentVariable('AUTH_UNAUTHENTICATED_ACTION', 'RedirectToLoginPage')

param instanceMemoryMB = int(readEnvironmentVariable('INSTANCE_MEMORY_MB', '2048'))
param maximumInstanceCount = int(readEnvironmentVariable('MAXIMUM_INSTANCE_COUNT', '40'))
param logRetentionDays = int(readEnvironmentVariable('LOG_RETENTION_DAYS', '30'))
