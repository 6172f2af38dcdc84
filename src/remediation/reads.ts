/**
 * The reads every operation on a connection shares: the connection, its app, and the read-back and
 * TestConnection that verify it.
 */
import { classify, EngineFailure, type EngineContext, type EngineDeps } from './engine';
import type {
  ApplicationInfo,
  PasswordCredentialInfo,
  ServiceConnection,
  TestConnectionResult,
} from './ports';

/**
 * Reads the connection back and runs TestConnection with it as read: TestConnection sends the
 * parameters as read, so it must be the connection as it is now (an `accesstoken` an update removed
 * must not be sent). `connection` stands in when the read finds nothing.
 */
export async function readBackAndTest(
  ctx: Pick<EngineContext, 'target' | 'deps'>,
  connection: ServiceConnection,
): Promise<{ test: TestConnectionResult; isReady: boolean | undefined }> {
  const { target, deps } = ctx;
  const reread = await deps.devops.getConnection(target.organizationUrl, target.project, target.connectionId);
  const test = await deps.devops.testConnection(target.organizationUrl, target.project, reread ?? connection);
  return { test, isReady: reread?.isReady };
}

/** Why a connection read back and tested is not verified; `undefined` when it is. */
export function notWorking(check: {
  test: TestConnectionResult;
  isReady: boolean | undefined;
}): string | undefined {
  if (!check.test.ok) return `TestConnection answered ${check.test.statusCode}: ${check.test.errorMessage}`;
  return check.isReady ? undefined : `the connection still reads isReady=${String(check.isReady)}`;
}

/** The connection as it is now; `connection-not-found` when it is gone. */
export async function readConnection(
  ctx: Pick<EngineContext, 'target' | 'deps'>,
): Promise<ServiceConnection> {
  const { target, deps } = ctx;
  const connection = await deps.devops
    .getConnection(target.organizationUrl, target.project, target.connectionId)
    .catch((err: unknown) => {
      throw classify(err, 'reading the connection');
    });
  if (!connection) throw new EngineFailure('connection-not-found', 'The connection no longer exists.');
  return connection;
}

/** The connection, which must authenticate with a client secret (`not-a-secret-connection`). */
export async function readSecretConnection(
  ctx: Pick<EngineContext, 'target' | 'deps'>,
): Promise<ServiceConnection> {
  const connection = await readConnection(ctx);
  if (connection.authorization.scheme !== 'ServicePrincipal')
    throw new EngineFailure(
      'not-a-secret-connection',
      `The connection authenticates with ${connection.authorization.scheme}, not a client secret.`,
    );
  return connection;
}

/** The app registration with client id `appId`; `app-missing` when there is none. */
export async function readApp(appId: string, deps: EngineDeps): Promise<ApplicationInfo> {
  const app = await deps.graph.getApplicationByAppId(appId).catch((err: unknown) => {
    throw classify(err, 'reading the app registration');
  });
  if (!app) throw new EngineFailure('app-missing', `No app registration with client id ${appId} exists.`);
  return app;
}

/** The client id the connection names (`serviceprincipalid`), if any. */
export function appIdOf(connection: ServiceConnection): string | undefined {
  return connection.authorization.parameters['serviceprincipalid'] ?? undefined;
}

export function isExpired(credential: PasswordCredentialInfo, now: Date): boolean {
  return credential.endDateTime !== null && Date.parse(credential.endDateTime) <= now.getTime();
}
