import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createCdcActivities, type CdcActivityDeps } from '../activities/cdc-activities.js';
import { createCdcOperatorActivities } from '../activities/cdc-operator-activities.js';
import { createQuotaActivities, type QuotaActivityDeps } from '../activities/quota-activities.js';
import {
  createSparkActivities,
  sparkActivityDepsFromEnv,
  type SparkActivityDeps,
} from '../activities/spark-activities.js';
import { createGpuHostActivities } from '../activities/gpu-host-activities.js';
import { createInferenceActivities, type InferenceActivityDeps } from '../activities/inference-activities.js';
import {
  createEmbeddingActivities,
  createEmbeddingGpuActivities,
  type EmbeddingActivityDeps,
} from '../activities/embedding-activities.js';
import {
  createCollectionsActivities,
  createCollectionsGpuActivities,
  type CollectionsActivityDeps,
} from '../activities/collections-activities.js';
import { poolEmbedder } from '../lib/embedding/pool-embedder.js';
import type { FileIO } from '../lib/storage/file-io.js';
import { createPlatformActivities } from '../activities/platform-activities.js';
import { dedicatedCpuQueue, taskQueues } from '../schemas/task-queues.js';
import { activityMetricsInterceptor } from './activity-metrics.js';
import { cdcSlotMetricsInterceptor } from './cdc-slot-metrics.js';
import { sluiceMetrics } from './runtime.js';
import type { WorkflowSource } from './workflow-bundle.js';

interface CommonOptions {
  connection: NativeConnection;
  namespace: string;
  /** Base task queue (`sluice`). */
  baseTaskQueue: string;
  /** @default '30s' */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  dataConverter?: DataConverter;
  identity?: string;
}

/** Options of the `cpu` pool worker. */
export interface CpuWorkerOptions extends CommonOptions {
  workflows: WorkflowSource;
  /**
   * Poll the dedicated CPU queue `<base>-<name>` (`workers.cpu.dedicated`) instead of the base queue.
   * @default the base queue
   */
  dedicatedQueue?: string;
  /** @default 8 */
  maxConcurrentActivities?: number;
  /** @default 40 */
  maxConcurrentWorkflowTasks?: number;
  /**
   * The catalog, FileIO and source pools of the CDC activities (`onboardTable`, `mergeBatch`, `advanceSlot`,
   * `slotStatus`). Without them those activities are not registered, and CDC pipelines on this queue wait for a
   * worker that has them.
   * @default none
   */
  cdc?: CdcActivityDeps;
  /**
   * The quota store (and usage sources) of the quota activities (`planQuotaRightsize`, `applyQuotaChanges`,
   * `authorizeQuotaDecision`, `dispatchQuotas`, `remindQuotaApprovers`). Without it `quota-rightsize` waits for a
   * worker that has them.
   * @default none
   */
  quota?: QuotaActivityDeps;
  /**
   * The submitter, history store and work dir of the Spark activities (`planSparkJob`, `runSparkAttempt`,
   * `planNextSparkAttempt`, `finishSparkRun`). Without them they come from the environment when
   * `SLUICE_SPARK_HISTORY_URL` is set (docs/spark.md); otherwise `spark-job` waits for a worker that has them.
   * @default from the environment, else none
   */
  spark?: SparkActivityDeps;
  /**
   * The catalog and FileIO of the embedding backfill's CPU activities (plan, commit, index, coverage, alias).
   * Without them `embedding-backfill` waits for a worker that has them.
   * @default none
   */
  embedding?: EmbeddingActivityDeps;
  /**
   * The catalog and FileIO of `collections-build`'s CPU activities (prepare, VLM extraction and verification,
   * review, publish, alias). Without them `collections-build` waits for a worker that has them.
   * @default none
   */
  collections?: CollectionsActivityDeps;
}

/** The `cpu` pool: all workflows and the CPU activities, on the base queue (or a dedicated CPU queue). */
export async function createCpuWorker(opts: CpuWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue:
      opts.dedicatedQueue === undefined
        ? taskQueues(opts.baseTaskQueue).cpu
        : dedicatedCpuQueue(opts.baseTaskQueue, opts.dedicatedQueue),
    ...opts.workflows,
    activities: {
      ...createPlatformActivities(),
      ...(opts.cdc ? createCdcActivities(opts.cdc) : {}),
      ...(opts.cdc ? createCdcOperatorActivities(opts.cdc) : {}),
      ...(opts.quota ? createQuotaActivities(opts.quota) : {}),
      ...sparkActivitiesFor(opts.spark),
      ...(opts.embedding ? createEmbeddingActivities(opts.embedding) : {}),
      ...(opts.collections ? createCollectionsActivities(opts.collections) : {}),
    },
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 8,
    maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTasks ?? 40,
    shutdownGraceTime: opts.shutdownGraceTime ?? '30s',
    interceptors: { activity: [activityMetricsInterceptor, cdcSlotMetricsInterceptor] },
    // Passing `identity: undefined` explicitly trips the native bridge; omit it to get the SDK default.
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
  });
}

/** Options of one GPU host's workers. */
export interface GpuWorkerOptions extends CommonOptions {
  host: string;
  /** Concurrent GPU activities on this host. @default 1 */
  slots?: number;
  /**
   * The host's inference pool (`embedBatch`, `inferenceStatus`; docs/inference.md). Without it those activities
   * are not registered here.
   * @default none
   */
  inference?: InferenceActivityDeps;
  /**
   * FileIO for the embedding backfill's shard and parity activities (`embedShard`, `checkEmbeddingParity`), which
   * run on `inference`'s pool. Registered only when both are given.
   * @default none
   */
  embeddingIo?: FileIO;
}

/**
 * One GPU host: a Worker on the shared GPU queue (it answers reservations) and one on the host's own queue (it runs
 * the pinned steps). Both share the host's slots budget through `slots`; neither hosts workflows.
 */
export async function createGpuHostWorkers(opts: GpuWorkerOptions): Promise<Worker[]> {
  const queues = taskQueues(opts.baseTaskQueue);
  const slots = opts.slots ?? 1;
  const activities = {
    ...createGpuHostActivities({ host: opts.host, slots }),
    ...(opts.inference ? createInferenceActivities(opts.inference) : {}),
    ...(opts.inference && opts.embeddingIo
      ? createEmbeddingGpuActivities({
          io: opts.embeddingIo,
          embedder: poolEmbedder(opts.inference.pool),
          host: opts.host,
        })
      : {}),
    ...(opts.inference && opts.embeddingIo
      ? createCollectionsGpuActivities({
          io: opts.embeddingIo,
          embedder: poolEmbedder(opts.inference.pool),
          metricsRegistry: sluiceMetrics.registry,
        })
      : {}),
  };
  const common = {
    connection: opts.connection,
    namespace: opts.namespace,
    activities,
    shutdownGraceTime: opts.shutdownGraceTime ?? '30s',
    interceptors: { activity: [activityMetricsInterceptor] },
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
    identity: opts.identity ?? `${process.pid}@${opts.host}`,
  } satisfies Partial<WorkerOptions>;
  return Promise.all([
    Worker.create({ ...common, taskQueue: queues.gpu, maxConcurrentActivityTaskExecutions: slots }),
    Worker.create({ ...common, taskQueue: queues.gpuHost(opts.host), maxConcurrentActivityTaskExecutions: slots }),
  ]);
}

function sparkActivitiesFor(deps: SparkActivityDeps | undefined) {
  const resolved = deps ?? sparkActivityDepsFromEnv(sluiceMetrics.registry);
  return resolved ? createSparkActivities(resolved) : {};
}
