import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startProcess, tailLog, type ManagedProcess } from './managed-process.js';
import { freePort, waitForPort } from './ports.js';
import { findTemporalCli } from './tools.js';

/** Options for {@link startTemporalDevServer}; every field has a sane local default. */
export interface TemporalDevServerOptions {
  /** @default 127.0.0.1 */
  ip?: string;
  /** Frontend gRPC port. @default a free port */
  port?: number;
  /** Web UI port; `null` runs headless. @default null */
  uiPort?: number | null;
  /** SQLite file; `null` keeps state in memory. @default null */
  dbFile?: string | null;
  /** @default default */
  namespace?: string;
  /** name → CLI type name (`Keyword`, `Int`, …). */
  searchAttributes?: Record<string, string>;
  /** Dynamic config values; each value is JSON-encoded. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** Codec endpoint for the UI. */
  codecEndpoint?: string;
  /** Where the server's log goes. */
  logDir: string;
  /** @default 60000 */
  startTimeoutMs?: number;
}

export interface TemporalDevServer {
  readonly address: string;
  readonly namespace: string;
  readonly uiUrl: string | undefined;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` and waits until its frontend accepts connections. Dynamic config that Sluice
 * relies on (updates, quick visibility for `sluice ls`) is always on.
 */
export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const cli = findTemporalCli();
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port ?? (await freePort());
  const namespace = opts.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--log-level', 'warn'];
  if (namespace !== 'default') args.push('--namespace', namespace);
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFile) {
    mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  for (const [name, type] of Object.entries(opts.searchAttributes ?? {})) {
    args.push('--search-attribute', `${name}=${type}`);
  }
  const dynamic: Record<string, string | number | boolean> = {
    'frontend.enableUpdateWorkflowExecution': true,
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted': true,
    ...opts.dynamicConfig,
  };
  for (const [key, value] of Object.entries(dynamic)) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  if (opts.codecEndpoint) args.push('--ui-codec-endpoint', opts.codecEndpoint);

  const proc = startProcess(`temporal-${port}`, cli, args, { logDir: opts.logDir, env: process.env });
  const up = await Promise.race([waitForPort(ip, port, opts.startTimeoutMs ?? 60_000), proc.exited.then(() => false)]);
  if (!up) {
    await proc.stop(1000);
    throw new Error(
      `the Temporal dev server did not start on ${ip}:${port} (${cli}); its log ${proc.logFile} ends:\n${await tailLog(proc.logFile)}`,
    );
  }
  return {
    address: `${ip}:${port}`,
    namespace,
    uiUrl: opts.uiPort ? `http://${ip === '0.0.0.0' ? '127.0.0.1' : ip}:${opts.uiPort}` : undefined,
    process: proc,
    stop: () => proc.stop(15_000),
  };
}
