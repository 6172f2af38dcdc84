/**
 * Settings: one table (`settings.ts`) from which the types, defaults, validation order, redaction
 * and docs/settings.md's table are derived; `load.ts` reads it from the environment.
 */
export { parseOrganizationUrl } from './checks';
export {
  type Config,
  type FunctionSettings,
  DEFAULTS,
  SECRET_SETTINGS,
  SETTING_ORDER,
  SETTINGS,
} from './settings';
export { ConfigError, loadConfig, loadFunctionSettings, redactedConfig, secretValues } from './load';
