import os from 'node:os';
import type { Worker } from '@temporalio/worker';
import { createCodecFromEnv, dataConverterFor } from '../client/codec.js';
import { connectWorkerConnection, type ConnectionOverrides } from '../client/connection.js';
import { REPO_ROOT, sluiceEnv } from '../lib/config.js';
import { createLogger } from '../lib/observability/logger.js';
import { createSourcePools, openWarehouse, type SourcePools, type Warehouse } from '../lib/stack/warehouse.js';
import type { StackConfig } from '../schemas/stack-config.js';
import { createCpuWorker, createGpuHostWorkers } from './pool-workers.js';
import { installWorkerRuntime, sluiceMetrics } from './runtime.js';
import pg from 'pg';
import { openQuotaStoreAt } from '../lib/quota/store.js';
import { workflowSource } from './workflow-bundle.js';
import { startWorkerInferencePool } from '../lib/inference/worker-setup.js';
import type { InferencePool } from '../lib/inference/index.js';
import { CompositeFileIO } from '../lib/storage/composite-file-io.js';

export interface WorkerProcessOptions {
  pool: 'cpu' | 'gpu';
  /** GPU host name. @default SLUICE_GPU_HOST, then the first host in temporal-dev.yml, then os.hostname() */
  host?: string;
  config: StackConfig;
  connection?: ConnectionOverrides;
  /** Prebuilt workflow bundle. @default SLUICE_WORKFLOW_BUNDLE */
  bundlePath?: string;
  /** Overrides the pool's metricsPort from the config (`null` = off). */
  metricsPort?: number | null;
  /** GPU pool: concurrent GPU activities. @default SLUICE_GPU_SLOTS, then the host's slots in temporal-dev.yml */
  slots?: number;
  /** CPU pool: poll this dedicated queue (`<base>-<name>`) instead of the base queue. @default the base queue */
  dedicatedQueue?: string;
}

/**
 * Runs one worker process of a pool until SIGINT/SIGTERM, then shuts down gracefully: pollers stop at once and
 * in-flight activities get the pool's `shutdownGraceTime` to finish.
 */
export async function runWorkerProcess(opts: WorkerProcessOptions): Promise<void> {
  const pool = opts.config.workers[opts.pool];
  const base = sluiceEnv.taskQueueOverride ?? opts.config.workers.cpu.taskQueue;
  const gpuHost =
    opts.pool === 'gpu'
      ? (opts.host ?? sluiceEnv.gpuHost ?? opts.config.workers.gpu.hosts[0]?.name ?? os.hostname())
      : undefined;
  const logger = createLogger(gpuHost ? `worker-gpu@${gpuHost}` : 'worker-cpu', sluiceEnv.logLevel);
  const runtime = await installWorkerRuntime({
    logger,
    logLevel: sluiceEnv.logLevel,
    metricsPort: opts.metricsPort !== undefined ? opts.metricsPort : pool.metricsPort,
  });
  const { connection, namespace, address } = await connectWorkerConnection({
    namespace: opts.config.server.namespace,
    ...opts.connection,
  });
  const dataConverter = dataConverterFor(createCodecFromEnv(sluiceEnv));
  let workers: Worker[];
  // The cpu pool hosts the CDC activities: the catalog and warehouse from temporal-dev.yml `defaults`, and pools to
  // the source databases named in pipeline inputs. S3 settings for an s3:// warehouse are not read yet.
  let warehouse: Warehouse | undefined;
  let inferencePool: InferencePool | undefined;
  let embeddingIo: CompositeFileIO | undefined;
  let sourcePools: SourcePools | undefined;
  let quota: Awaited<ReturnType<typeof openQuotaStoreAt>> | undefined;
  if (opts.pool === 'cpu') {
    const cpu = opts.config.workers.cpu;
    warehouse = await openWarehouse(opts.config.defaults, { baseDir: REPO_ROOT, s3: sluiceEnv.s3 });
    sourcePools = createSourcePools({
      onIdleError: (err) => logger.warn({ err }, 'an idle connection to a CDC source failed'),
    });
    workers = [
      await createCpuWorker({
        connection,
        namespace,
        baseTaskQueue: base,
        ...(opts.dedicatedQueue !== undefined ? { dedicatedQueue: opts.dedicatedQueue } : {}),
        workflows: workflowSource(opts.bundlePath ?? sluiceEnv.workflowBundle),
        maxConcurrentActivities: cpu.maxConcurrentActivities,
        maxConcurrentWorkflowTasks: cpu.maxConcurrentWorkflowTasks,
        shutdownGraceTime: cpu.shutdownGraceTime as `${number}s`,
        dataConverter,
        cdc: { catalog: warehouse.catalog, io: warehouse.io, pgPoolFor: sourcePools.poolFor },
        embedding: { catalog: warehouse.catalog, io: warehouse.io, warehouse: warehouse.warehouse },
        collections: {
          catalog: warehouse.catalog,
          io: warehouse.io,
          warehouse: warehouse.warehouse,
          metricsRegistry: sluiceMetrics.registry,
        },
        // The quota activities need the quota store: only when SLUICE_QUOTA_DATABASE_URL is set (docs/quota.md).
        quota: sluiceEnv.quota.databaseUrl
          ? {
              store: (quota = await openQuotaStoreAt(
                { ...sluiceEnv.quota, databaseUrl: sluiceEnv.quota.databaseUrl },
                (url) => new pg.Pool({ connectionString: url, max: 4, application_name: 'sluice-quota' }),
              )).store,
              catalog: warehouse.catalog,
              io: warehouse.io,
              webhookSecret: sluiceEnv.quota.webhookSecret,
              metricsRegistry: sluiceMetrics.registry,
              logger,
            }
          : undefined,
      }),
    ];
  } else {
    const hostConfig = opts.config.workers.gpu.hosts.find((h) => h.name === gpuHost);
    inferencePool = await startWorkerInferencePool(sluiceEnv.inference, sluiceMetrics.registry, logger);
    workers = await createGpuHostWorkers({
      connection,
      namespace,
      baseTaskQueue: base,
      host: gpuHost!,
      slots: opts.slots ?? sluiceEnv.inference.gpuSlots ?? hostConfig?.slots ?? 1,
      shutdownGraceTime: opts.config.workers.gpu.shutdownGraceTime as `${number}s`,
      dataConverter,
      inference: { pool: inferencePool, host: gpuHost! },
      // The embedding shards read sources and write vectors by URI (file:// or s3://, SLUICE_S3_*).
      embeddingIo: (embeddingIo = new CompositeFileIO({ file: { baseDir: REPO_ROOT }, s3: sluiceEnv.s3 })),
    });
  }

  const queues = workers.map((w) => w.options.taskQueue);
  logger.info(
    { pool: opts.pool, host: gpuHost, address, namespace, queues, metrics: runtime.metricsUrl },
    'worker started',
  );
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down: no new tasks, in-flight activities finish');
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await connection.close();
    await sourcePools?.close();
    await quota?.close();
    await inferencePool?.close();
    await embeddingIo?.close();
    await warehouse?.close();
    await runtime.close();
    logger.info('worker stopped');
  }
}
