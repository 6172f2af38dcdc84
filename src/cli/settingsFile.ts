/**
 * `--settings-file <path>`: a dotenv file of settings, layered under the real environment (a variable
 * already set wins, as with dotenv everywhere). Not `--env-file`, which Node itself intercepts.
 */
import { spawnSync } from 'node:child_process';
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

/**
 * Node reads NODE_EXTRA_CA_CERTS only when it starts, so a settings file that names a CA bundle the
 * process did not start with is honoured by running the same command again with it set.
 * Returns the child's exit code, or undefined when no restart is needed.
 */
export function restartWithCaBundleIfNeeded(fileSettings: Record<string, string>): number | undefined {
  const wanted = fileSettings['NODE_EXTRA_CA_CERTS'];
  if (!wanted || process.env['NODE_EXTRA_CA_CERTS'] === wanted || process.env['SC_REMEDIATOR_RESTARTED'])
    return undefined;
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: wanted, SC_REMEDIATOR_RESTARTED: '1' },
  });
  return child.status ?? 1;
}
