import path from 'node:path';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const { temporal } = proto;
import { REPO_ROOT, sluiceEnv } from '../lib/config.js';
import { startProcess, tailLog, type ManagedProcess } from '../lib/stack/managed-process.js';
import { isPortOpen } from '../lib/stack/ports.js';
import { startTemporalDevServer, type TemporalDevServer } from '../lib/stack/temporal-server.js';
import { cliTypeName, SEARCH_ATTRIBUTE_KEYS } from '../schemas/search-attributes.js';
import type { StackConfig } from '../schemas/stack-config.js';
import { taskQueues } from '../schemas/task-queues.js';
import { writeWorkflowBundle } from '../workers/workflow-bundle.js';

export interface LocalStack {
  server: TemporalDevServer;
  workers: ManagedProcess[];
  metricsUrls: string[];
  logDir: string;
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
  opts: { configPath: string; say: (line: string) => void },
): Promise<LocalStack> {
  const { server: s } = config;
  const logDir = path.join(sluiceEnv.stateDir, 'logs');
  if (await isPortOpen(s.ip, s.port)) {
    throw new Error(
      `port ${s.ip}:${s.port} is already in use: is another \`sluice up\` or Temporal server running? Stop it, or set server.port in ${opts.configPath}`,
    );
  }
  const resolve = (p: string) => (path.isAbsolute(p) ? p : path.join(path.dirname(opts.configPath) || REPO_ROOT, p));
  opts.say(`starting the Temporal dev server on ${s.ip}:${s.port}${s.dbFile ? ` (state in ${s.dbFile})` : ''}`);
  const server = await startTemporalDevServer({
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
  const workers: ManagedProcess[] = [];
  const stop = async () => {
    await Promise.all(workers.map((w) => w.stop(35_000)));
    await server.stop();
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
    return { server, workers, metricsUrls, logDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits for the stack's workers to poll; a worker that died meanwhile is reported with its log. */
export async function waitForStackWorkers(stack: LocalStack, client: Client, config: StackConfig): Promise<void> {
  const q = taskQueues(sluiceEnv.taskQueueOverride ?? config.workers.cpu.taskQueue);
  const queues: { name: string; type: 'workflow' | 'activity' }[] = [
    { name: q.cpu, type: 'workflow' },
    { name: q.cpu, type: 'activity' },
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
