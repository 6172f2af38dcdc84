/**
 * The shape of one row of the settings table (`settings.ts`) and the helper that writes one: what a
 * setting is, where its value goes, and how it is parsed and documented.
 */
import type { Check } from './checks';

/** Where a setting is described in docs/settings.md. */
export type SettingDoc =
  | string // its own row, with this text
  | { inRowOf: string } // named in that setting's row, which describes it
  | { describedBy: string }; // mentioned in that setting's text only

export interface Setting<
  Name extends string = string,
  Key extends string | undefined = string | undefined,
  T = unknown,
  D extends T | undefined = T | undefined,
  App extends 'engine' | 'functions' = 'engine' | 'functions',
> {
  name: Name;
  /**
   * Where the value goes: a property of `Config` (`storage.<property>` for the storage settings) or
   * of `FunctionSettings`; none when it feeds a property the loader derives (endpoints, policy).
   */
  key: Key;
  /** `engine`: the engine's `Config` (the CLI and the Functions app); `functions`: the Functions app only. */
  app: App;
  /** Never shown: not in errors (`got` shows nothing), `config show`, telemetry or logs. */
  secret: boolean;
  /** The value when unset. */
  default: D;
  /** docs/settings.md's Default column when it is not the default itself (`required`, `the cloud's`). */
  docDefault?: string;
  parse(value: string | undefined, c: Check): T;
  doc: SettingDoc;
}

export function row<
  const Name extends string,
  T,
  const Key extends string | undefined = undefined,
  D extends T | undefined = undefined,
  const App extends 'engine' | 'functions' = 'engine',
>(r: {
  name: Name;
  key?: Key;
  app?: App;
  secret?: true;
  default?: D;
  docDefault?: string;
  parse: (value: string | undefined, c: Check, def: D) => T;
  doc: SettingDoc;
}): Setting<Name, Key, T, D, App> {
  const def = r.default as D;
  return {
    name: r.name,
    key: r.key as Key,
    app: r.app ?? ('engine' as App),
    secret: r.secret ?? false,
    default: def,
    ...(r.docDefault === undefined ? {} : { docDefault: r.docDefault }),
    parse: (value, c) => r.parse(value, c, def),
    doc: r.doc,
  };
}
