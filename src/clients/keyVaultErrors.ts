/**
 * Key Vault failures: what the SDK's errors say (not found, deleted but recoverable) and their
 * mapping to the product's errors, built from the status, the service's code and message only, so
 * no secret value and no SDK error object (whose request holds the body) is ever kept.
 */
import { AuthenticationError, PreconditionError, ServiceError } from '../errors';

interface RestErrorLike {
  name: string;
  message: string;
  statusCode?: number;
  code?: string;
  details?: { error?: { code?: string; message?: string; innerError?: { code?: string } } };
}

function asRestError(err: unknown): RestErrorLike | undefined {
  return err instanceof Error && err.name === 'RestError' ? err : undefined;
}

function innerCode(err: unknown): string | undefined {
  return asRestError(err)?.details?.error?.innerError?.code;
}

export function isNotFound(err: unknown): boolean {
  return asRestError(err)?.statusCode === 404;
}

export function isDeletedButRecoverable(err: unknown): boolean {
  return asRestError(err)?.statusCode === 409 && innerCode(err) === 'ObjectIsDeletedButRecoverable';
}

/** Hides a value wherever it might appear in a text. */
function scrub(text: string, secret?: string): string {
  return secret && secret.length > 0 ? text.split(secret).join('***') : text;
}

/**
 * Maps an SDK or credential failure to the product's errors. The message is built from the status,
 * the service's code and message only; the SDK error (its request holds the body) is not kept.
 */
export function mapKeyVaultError(
  err: unknown,
  operation: string,
  secretName: string,
  secretValue?: string,
): Error {
  if (err instanceof ServiceError || err instanceof PreconditionError) return err;
  const rest = asRestError(err);
  if (rest) {
    const status = rest.statusCode;
    const code = rest.details?.error?.code ?? rest.code;
    const inner = rest.details?.error?.innerError?.code;
    const serviceMessage = scrub(rest.details?.error?.message ?? rest.message, secretValue);
    const message = scrub(
      `Key Vault ${operation} of '${secretName}' failed${status ? ` (${status}${code ? ` ${code}` : ''}${inner ? `/${inner}` : ''})` : ''}: ${serviceMessage}`,
      secretValue,
    );
    if (status === 401) return new AuthenticationError('key-vault', message, { status, code });
    // A deletion still in progress clears by itself; everything else in 4xx needs a person.
    const transient = inner === 'ObjectIsBeingDeleted' ? true : undefined;
    return new ServiceError('key-vault', message, { status, code: inner ?? code, transient });
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const text = scrub(`Key Vault ${operation} of '${secretName}' failed: ${e.message}`, secretValue);
  if (/Authentication|CredentialUnavailable/.test(e.name))
    return new AuthenticationError('key-vault', text, { code: e.name });
  // No HTTP answer at all (connection refused/reset, timeout after the SDK's retries): transient.
  return new ServiceError('key-vault', text, { code: (err as { code?: string }).code, transient: true });
}
