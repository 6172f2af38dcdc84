/**
 * A small error taxonomy: transient (retried by the SDK pipelines, then surfaced), precondition
 * (fail fast: something a person must fix), and API errors carrying service, status and code.
 * Messages never carry secret values; adapters build them from status, code and service text only.
 */

type ServiceName = 'azure-devops' | 'graph' | 'key-vault' | 'entra-id' | 'storage';

interface ServiceErrorDetails {
  status?: number;
  /** The service's own error code (Graph `error.code`, Key Vault `error.code`, Azure DevOps `typeKey`, `AADSTS…`). */
  code?: string;
  /** Worth retrying later (throttling, 5xx, dropped connection) once the SDK's own retries gave up. */
  transient?: boolean;
  cause?: unknown;
}

/** An error answer (or no answer) from one of the services. */
export class ServiceError extends Error {
  readonly service: ServiceName;
  readonly status?: number;
  readonly code?: string;
  readonly transient: boolean;

  constructor(service: ServiceName, message: string, details: ServiceErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ServiceError';
    this.service = service;
    this.status = details.status;
    this.code = details.code;
    this.transient = details.transient ?? isTransientStatus(details.status);
  }
}

/** The caller's credential was refused (401, the 203 sign-in page, AADSTS errors). */
export class AuthenticationError extends ServiceError {
  constructor(service: ServiceName, message: string, details: ServiceErrorDetails = {}) {
    super(service, message, { ...details, transient: false });
    this.name = 'AuthenticationError';
  }
}

/** Something a person must fix first (missing permission, policy, missing object). Never retried. */
export class PreconditionError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'PreconditionError';
  }
}

/** 408, 429 and 5xx (but 501/505), or no status at all (dropped connection). */
export function isTransientStatus(status: number | undefined): boolean {
  if (status === undefined) return true;
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}
