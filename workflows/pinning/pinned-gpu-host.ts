import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityInterfaceFor,
  type ActivityOptions,
} from '@temporalio/workflow';
import { TimeoutType, type Duration } from '@temporalio/common';
import type { GpuHostActivities } from '../../activities/gpu-host-activities.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { taskQueues } from '../../schemas/task-queues.js';

/** Options for {@link PinnedGpuHost}. */
export interface PinnedGpuHostOptions {
  /**
   * How long a pinned step may wait for its host to pick it up. When it passes, the host is taken as gone and
   * another one is reserved. Keep it above a busy host's queueing delay.
   * @default '10s'
   */
  hostScheduleToStartTimeout?: Duration;
  /** How long a reservation may wait for any GPU host. @default '5m' */
  reserveTimeout?: Duration;
  /** Reservations before the workflow gives up with `HostUnavailable`. @default 5 */
  maxReservations?: number;
  /** Options of the pinned activities (timeouts, retry); `taskQueue` and `scheduleToStartTimeout` are set here. */
  activityOptions: Omit<ActivityOptions, 'taskQueue' | 'scheduleToStartTimeout'>;
  /** Base task queue. @default the workflow's own task queue */
  baseTaskQueue?: string;
}

/** True when `err` says that an activity sat on its queue past its schedule-to-start timeout. */
export function isHostLost(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    if (e instanceof TimeoutFailure && e.timeoutType === TimeoutType.SCHEDULE_TO_START) return true;
  }
  return false;
}

/**
 * The worker-specific task queue pattern as a workflow helper. `reserve()` asks the shared GPU queue for a host;
 * `run(step)` sends the step's activities to that host's own queue, so consecutive steps share its local state
 * (a warm model, downloaded shards). When the host dies, the step's activity times out waiting on the host queue;
 * the helper then reserves another host and runs the step again there. Steps must therefore be idempotent.
 */
export class PinnedGpuHost<A extends object> {
  private current: string | undefined;
  private reservations = 0;
  readonly hostsUsed: string[] = [];
  private readonly queues;
  private readonly reserveActivities;

  constructor(private readonly options: PinnedGpuHostOptions) {
    this.queues = taskQueues(options.baseTaskQueue ?? workflowInfo().taskQueue);
    this.reserveActivities = proxyActivities<Pick<GpuHostActivities, 'reserveGpuHost'>>({
      taskQueue: this.queues.gpu,
      scheduleToCloseTimeout: options.reserveTimeout ?? '5m',
      startToCloseTimeout: '10s',
      retry: { initialInterval: '1s', maximumInterval: '10s' },
      summary: 'reserve a GPU host',
    });
  }

  /** The host steps currently go to, if one is reserved. */
  get host(): string | undefined {
    return this.current;
  }

  /** How many reservations this run has made (1 + the number of hosts lost). */
  get reservationCount(): number {
    return this.reservations;
  }

  /** Reserves a host through the shared queue and records it in the `SluiceGpuHost` search attribute. */
  async reserve(): Promise<string> {
    const maxReservations = this.options.maxReservations ?? 5;
    if (this.reservations >= maxReservations) {
      throw ApplicationFailure.create({
        type: 'HostUnavailable',
        nonRetryable: true,
        message: `gave up after ${this.reservations} GPU host reservations (hosts lost: ${this.hostsUsed.join(', ')}); check the GPU workers on ${this.queues.gpu}`,
      });
    }
    this.reservations += 1;
    const { host } = await this.reserveActivities.reserveGpuHost();
    this.current = host;
    if (!this.hostsUsed.includes(host)) this.hostsUsed.push(host);
    upsertSearchAttributes([{ key: SearchAttributes.gpuHost, value: host }]);
    log.info('reserved GPU host', { host, reservation: this.reservations });
    return host;
  }

  /** Runs `step` with activities pinned to the reserved host, moving to another host if this one is lost. */
  async run<R>(step: (activities: ActivityInterfaceFor<A>, host: string) => Promise<R>): Promise<R> {
    for (;;) {
      const host = this.current ?? (await this.reserve());
      const activities = proxyActivities<A>({
        ...this.options.activityOptions,
        taskQueue: this.queues.gpuHost(host),
        scheduleToStartTimeout: this.options.hostScheduleToStartTimeout ?? '10s',
      });
      try {
        return await step(activities, host);
      } catch (err) {
        if (!(err instanceof ActivityFailure) || !isHostLost(err)) throw err;
        log.warn('GPU host stopped taking tasks; reserving another', { host });
        this.current = undefined;
      }
    }
  }
}
