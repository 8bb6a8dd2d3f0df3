import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createCdcActivities, type CdcActivityDeps } from '../activities/cdc-activities.js';
import { createGpuHostActivities } from '../activities/gpu-host-activities.js';
import { createPlatformActivities } from '../activities/platform-activities.js';
import { taskQueues } from '../schemas/task-queues.js';
import { activityMetricsInterceptor } from './activity-metrics.js';
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
}

/** The `cpu` pool: all workflows and the CPU activities, on the base queue. */
export async function createCpuWorker(opts: CpuWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: taskQueues(opts.baseTaskQueue).cpu,
    ...opts.workflows,
    activities: { ...createPlatformActivities(), ...(opts.cdc ? createCdcActivities(opts.cdc) : {}) },
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 8,
    maxConcurrentWorkflowTaskExecutions: opts.maxConcurrentWorkflowTasks ?? 40,
    shutdownGraceTime: opts.shutdownGraceTime ?? '30s',
    interceptors: { activity: [activityMetricsInterceptor] },
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
}

/**
 * One GPU host: a Worker on the shared GPU queue (it answers reservations) and one on the host's own queue (it runs
 * the pinned steps). Both share the host's slots budget through `slots`; neither hosts workflows.
 */
export async function createGpuHostWorkers(opts: GpuWorkerOptions): Promise<Worker[]> {
  const queues = taskQueues(opts.baseTaskQueue);
  const slots = opts.slots ?? 1;
  const activities = createGpuHostActivities({ host: opts.host, slots });
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
