import { Client, Connection, type DataConverter } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';

/** Where to connect; anything unset comes from Temporal's environment configuration. */
export interface ConnectionOverrides {
  /** host:port, overriding TEMPORAL_ADDRESS and the profile. */
  address?: string;
  /** Overrides TEMPORAL_NAMESPACE and the profile. */
  namespace?: string;
  /** A profile in temporal.toml. @default TEMPORAL_PROFILE or "default" */
  profile?: string;
}

/** The server could not be reached; the message names the address and what to check. */
export class TemporalUnreachableError extends Error {
  override readonly name = 'TemporalUnreachableError';
}

/**
 * Resolves connection settings through `@temporalio/envconfig`, so the same code runs against the dev server, a
 * self-hosted cluster (TLS) or Temporal Cloud (API key): a `temporal.toml` profile, then `TEMPORAL_*` variables, then
 * explicit overrides.
 */
export function resolveConnection(overrides: ConnectionOverrides = {}) {
  const { connectionOptions, namespace } = loadClientConnectConfig(
    overrides.profile ? { profile: overrides.profile } : {},
  );
  const address = overrides.address ?? connectionOptions.address ?? 'localhost:7233';
  return {
    connectionOptions: { ...connectionOptions, address },
    namespace: overrides.namespace ?? namespace ?? 'default',
  };
}

function unreachable(address: string, namespace: string, err: unknown): TemporalUnreachableError {
  const reason = err instanceof Error ? err.message : String(err);
  return new TemporalUnreachableError(
    `cannot reach Temporal at ${address} (namespace "${namespace}"): ${reason}\n` +
      `  check that the server is running (\`npm run sluice -- up\` starts a local one), ` +
      `that TEMPORAL_ADDRESS / --address point at it, and for a remote cluster the TLS or API-key settings ` +
      `(TEMPORAL_TLS*, TEMPORAL_API_KEY, or a temporal.toml profile)`,
  );
}

/** Connects a client; fails fast with {@link TemporalUnreachableError}. */
export async function connectClient(
  overrides: ConnectionOverrides = {},
  dataConverter?: DataConverter,
): Promise<{ client: Client; connection: Connection; namespace: string; address: string }> {
  const { connectionOptions, namespace } = resolveConnection(overrides);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions, connectTimeout: '5s' });
    // Connection.connect is lazy about the server; one cheap call proves it answers.
    await connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw unreachable(connectionOptions.address, namespace, err);
  }
  return {
    client: new Client({ connection, namespace, dataConverter }),
    connection,
    namespace,
    address: connectionOptions.address,
  };
}

/** Connects the native (Rust core) connection that Workers use. */
export async function connectWorkerConnection(
  overrides: ConnectionOverrides = {},
): Promise<{ connection: NativeConnection; namespace: string; address: string }> {
  const { connectionOptions, namespace } = resolveConnection(overrides);
  try {
    return {
      connection: await NativeConnection.connect(connectionOptions),
      namespace,
      address: connectionOptions.address,
    };
  } catch (err) {
    throw unreachable(connectionOptions.address, namespace, err);
  }
}
