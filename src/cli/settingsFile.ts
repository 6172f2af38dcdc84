/**
 * `--settings-file <path>`: a dotenv file of settings, layered under the real environment (a variable
 * already set wins, as with dotenv everywhere). Not `--env-file`, which Node itself intercepts.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'dotenv';

export class SettingsFileError extends Error {}

/** Reads a dotenv file; the error names the file and the reason, never its content. */
export function readSettingsFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SettingsFileError(
      `Cannot read the settings file '${path}': ${code === 'ENOENT' ? 'no such file' : (code ?? 'unreadable')}.`,
    );
  }
  return parse(text);
}

/** The environment the CLI runs with: the file's settings under the process environment. */
export function mergeSettings(
  fileSettings: Record<string, string>,
  env: NodeJS.ProcessEnv,
): NodeJS.ProcessEnv {
  return { ...fileSettings, ...env };
}
