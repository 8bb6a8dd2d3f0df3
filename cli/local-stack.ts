import path from 'node:path';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const { temporal } = proto;
import { REPO_ROOT, sluiceEnv } from '../lib/config.js';
import { startProcess, tailLog, type ManagedProcess } from '../lib/stack/managed-process.js';
import { isPortOpen } from '../lib/stack/ports.js';
import { startPostgresCluster, type PostgresCluster } from '../lib/stack/postgres-cluster.js';
import { startTemporalDevServer, type TemporalDevServer } from '../lib/stack/temporal-server.js';
import { cliTypeName, SEARCH_ATTRIBUTE_KEYS } from '../schemas/search-attributes.js';
import type { StackConfig } from '../schemas/stack-config.js';
import { dedicatedCpuQueue, taskQueues } from '../schemas/task-queues.js';
import { writeWorkflowBundle } from '../workers/workflow-bundle.js';

export interface LocalStack {
  server: TemporalDevServer;
  workers: ManagedProcess[];
  metricsUrls: string[];
  logDir: string;
  /** The private PostgreSQL cluster (`wal_level=logical`) when one was asked for and it started. */
  postgres: PostgresCluster | null;
  /** Why the PostgreSQL cluster that was asked for did not start; null when it started or was not asked for. */
  postgresError: string | null;
  /**
   * Runs `hook` first when the stack stops, before the workers: e.g. cancel a continuous workflow while its workers
   * are still there to finish it. Hooks run in the reverse order of registration; a failing hook is reported and
   * does not stop the rest.
   */
  beforeStop(hook: () => Promise<void>): void;
  /** Runs the `beforeStop` hooks, stops the workers (graceful), the server, then PostgreSQL. Idempotent. */
  stop(): Promise<void>;
}

/** Search attributes for the dev server command line: Sluice's own plus the file's extras. */
export function devServerSearchAttributes(config: StackConfig): Record<string, string> {
  return {
    ...Object.fromEntries(SEARCH_ATTRIBUTE_KEYS.map((k) => [k.name, cliTypeName(k.type)])),
    ...config.server.searchAttributes,
  };
}

/** Waits until every queue has at least one poller of the given type. */
export async function waitForPollers(
  client: Client,
  queues: { name: string; type: 'workflow' | 'activity' }[],
  timeoutMs: number,
): Promise<void> {
  const T = temporal.api.enums.v1.TaskQueueType;
  const deadline = Date.now() + timeoutMs;
  for (const q of queues) {
    for (;;) {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: q.name, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: q.type === 'workflow' ? T.TASK_QUEUE_TYPE_WORKFLOW : T.TASK_QUEUE_TYPE_ACTIVITY,
      });
      if ((res.pollers?.length ?? 0) > 0) break;
      if (Date.now() > deadline)
        throw new Error(`no worker is polling ${q.type} tasks on "${q.name}" after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Starts the local stack of temporal-dev.yml: the dev server with its UI and Sluice's search attributes, a prebuilt
 * workflow bundle, and the worker processes of both pools (one per GPU host). Worker logs go to `.sluice/logs`.
 */
export async function startLocalStack(
  config: StackConfig,
  opts: {
    configPath: string;
    say: (line: string) => void;
    /**
     * Also start a private PostgreSQL cluster (`wal_level=logical`, a free port, a temp data directory removed on
     * stop), e.g. as the demo's CDC source. One that cannot start is no error: `postgresError` says why.
     * @default false
     */
    postgres?: boolean;
  },
): Promise<LocalStack> {
  const { server: s } = config;
  const logDir = path.join(sluiceEnv.stateDir, 'logs');
  if (await isPortOpen(s.ip, s.port)) {
    throw new Error(
      `port ${s.ip}:${s.port} is already in use: is another \`sluice up\` or Temporal server running? Stop it, or set server.port in ${opts.configPath}`,
    );
  }
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.join(path.dirname(opts.configPath) || REPO_ROOT, p));
  // PostgreSQL's initdb runs while the dev server starts.
  const postgresStart: Promise<{ cluster: PostgresCluster | null; error: string | null }> = opts.postgres
    ? startPostgresCluster().then(
        (cluster) => ({ cluster, error: null }),
        (err: unknown) => ({ cluster: null, error: err instanceof Error ? err.message : String(err) }),
      )
    : Promise.resolve({ cluster: null, error: null });
  opts.say(`starting the Temporal dev server on ${s.ip}:${s.port}${s.dbFile ? ` (state in ${s.dbFile})` : ''}`);
  let server: TemporalDevServer;
  try {
    server = await startTemporalDevServer({
      ip: s.ip,
      port: s.port,
      uiPort: s.uiPort,
      dbFile: s.dbFile ? resolve(s.dbFile) : null,
      namespace: s.namespace,
      searchAttributes: devServerSearchAttributes(config),
      dynamicConfig: s.dynamicConfig,
      codecEndpoint: s.codecEndpoint,
      logDir,
    });
  } catch (err) {
    await (await postgresStart).cluster?.stop();
    throw err;
  }
  const { cluster: postgres, error: postgresError } = await postgresStart;
  if (postgres) opts.say(`started PostgreSQL on ${postgres.host}:${postgres.port} (wal_level=logical)`);
  const workers: ManagedProcess[] = [];
  const hooks: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const hook of hooks.reverse()) {
        await hook().catch((err: unknown) =>
          opts.say(`stopping: ${err instanceof Error ? err.message : String(err)} (going on)`),
        );
      }
      await Promise.all(workers.map((w) => w.stop(35_000)));
      await server.stop();
      await postgres?.stop();
    })());
  const beforeStop = (hook: () => Promise<void>) => {
    hooks.push(hook);
  };
  try {
    opts.say('bundling workflows');
    const bundle = await writeWorkflowBundle(path.join(sluiceEnv.stateDir, 'workflow-bundle.cjs'));
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: s.namespace,
      SLUICE_CONFIG: opts.configPath,
      SLUICE_WORKFLOW_BUNDLE: bundle,
    };
    const bin = path.join(REPO_ROOT, 'bin/sluice.js');
    const metricsUrls: string[] = [];
    const { cpu, gpu } = config.workers;
    for (let i = 0; i < cpu.processes; i++) {
      const port = cpu.metricsPort === null ? 'off' : String(cpu.metricsPort + i);
      workers.push(
        startProcess(`worker-cpu-${i}`, process.execPath, [bin, 'worker', '--pool', 'cpu', '--metrics-port', port], {
          logDir,
          env,
        }),
      );
      if (port !== 'off') metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
    }
    let next = cpu.processes;
    for (const dedicated of cpu.dedicated) {
      for (let i = 0; i < dedicated.processes; i++) {
        const port = cpu.metricsPort === null ? 'off' : String(cpu.metricsPort + next++);
        workers.push(
          startProcess(
            `worker-cpu-${dedicated.name}-${i}`,
            process.execPath,
            [bin, 'worker', '--pool', 'cpu', '--queue', dedicated.name, '--metrics-port', port],
            { logDir, env },
          ),
        );
        if (port !== 'off') metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
      }
    }
    gpu.hosts.forEach((host, i) => {
      const port = gpu.metricsPort === null ? 'off' : String(gpu.metricsPort + i);
      workers.push(
        startProcess(
          `worker-gpu-${host.name}`,
          process.execPath,
          [bin, 'worker', '--pool', 'gpu', '--host', host.name, '--metrics-port', port],
          {
            logDir,
            env,
          },
        ),
      );
      if (port !== 'off') metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
    });
    opts.say(`started ${workers.length} worker processes (logs in ${logDir})`);
    return { server, workers, metricsUrls, logDir, postgres, postgresError, beforeStop, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits for the stack's workers to poll; a worker that died meanwhile is reported with its log. */
export async function waitForStackWorkers(stack: LocalStack, client: Client, config: StackConfig): Promise<void> {
  const base = sluiceEnv.taskQueueOverride ?? config.workers.cpu.taskQueue;
  const q = taskQueues(base);
  const queues: { name: string; type: 'workflow' | 'activity' }[] = [
    { name: q.cpu, type: 'workflow' },
    { name: q.cpu, type: 'activity' },
    ...config.workers.cpu.dedicated.flatMap((d) => [
      { name: dedicatedCpuQueue(base, d.name), type: 'workflow' as const },
      { name: dedicatedCpuQueue(base, d.name), type: 'activity' as const },
    ]),
    ...config.workers.gpu.hosts.flatMap((h) => [
      { name: q.gpu, type: 'activity' as const },
      { name: q.gpuHost(h.name), type: 'activity' as const },
    ]),
  ];
  const died = Promise.race(stack.workers.map((w) => w.exited.then(async (e) => ({ w, e })))).then(async ({ w, e }) => {
    throw new Error(
      `worker ${w.name} exited (${e.code ?? e.signal}); its log ${w.logFile} ends:\n${await tailLog(w.logFile)}`,
    );
  });
  await Promise.race([waitForPollers(client, queues, 120_000), died]);
  died.catch(() => undefined);
}
