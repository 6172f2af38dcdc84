/**
 * Settings: one table (`settings.ts`) from which the types, defaults, validation order, redaction
 * and docs/settings.md's table are derived; `load.ts` reads it from the environment.
 */
export type { AzureCloudName, CloudEndpoints } from '../clients/cloud';
export { type OrganizationSetting, parseOrganizationUrl } from './checks';
export {
  type Config,
  type FunctionSettings,
  type StorageSettings,
  DEFAULTS,
  SECRET_SETTINGS,
  SETTING_ORDER,
  SETTINGS,
} from './settings';
export {
  type ConfigProblem,
  ConfigError,
  loadConfig,
  loadFunctionSettings,
  redactedConfig,
  secretValues,
} from './load';
