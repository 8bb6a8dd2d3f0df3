import { z } from 'zod';

/** Input of `hostWork`, the compute step the platform check pins to a GPU host. */
export const HostWorkInput = z.strictObject({
  /** Step number within the run, for logs and results. */
  step: z.number().int().nonnegative(),
  /** Size of the square matrix multiplied on the host; 0 does no compute. */
  matrixSize: z.number().int().min(0).max(1024),
  /** Extra time the step holds its slot, to make kill tests deterministic. @default 0 */
  holdMs: z.number().int().min(0).max(600_000).default(0),
});
export type HostWorkInput = z.input<typeof HostWorkInput>;

export const HostWorkResult = z.object({
  host: z.string(),
  step: z.number().int(),
  pid: z.number().int(),
  checksum: z.number(),
  durationMs: z.number(),
});
export type HostWorkResult = z.infer<typeof HostWorkResult>;

/** Input of `cpuWork`, a heartbeating CPU activity with resumable progress. */
export const CpuWorkInput = z.strictObject({
  /** A label echoed in the result. */
  label: z.string().max(200),
  /** Units of work; each unit is about `unitMs` of busy time, and progress is heartbeated per unit. */
  units: z.number().int().min(1).max(100_000),
  /** @default 10 */
  unitMs: z.number().int().min(0).max(60_000).default(10),
});
export type CpuWorkInput = z.input<typeof CpuWorkInput>;

export const CpuWorkResult = z.object({
  label: z.string(),
  unitsDone: z.number().int(),
  /** Units done by earlier attempts, recovered from heartbeat details. */
  resumedFrom: z.number().int(),
  attempt: z.number().int(),
  pid: z.number().int(),
});
export type CpuWorkResult = z.infer<typeof CpuWorkResult>;

/** Input of the `poolCheck` pipeline: exercise both worker pools end to end. */
export const PoolCheckInput = z.strictObject({
  /** CPU activities fanned out on the `cpu` pool. @default 16 */
  cpuActivities: z.number().int().min(0).max(1000).default(16),
  /** Units per CPU activity. @default 5 */
  unitsPerActivity: z.number().int().min(1).max(10_000).default(5),
  /** Steps pinned to one GPU host. @default 4 */
  gpuSteps: z.number().int().min(0).max(1000).default(4),
  /** Matrix size for each GPU step. @default 128 */
  matrixSize: z.number().int().min(0).max(1024).default(128),
  /** How long each GPU step holds its slot. @default 0 */
  holdMs: z.number().int().min(0).max(600_000).default(0),
  /** How long a pinned step may wait for its host before the host is declared gone. @default 10s */
  hostScheduleToStartTimeout: z
    .string()
    .regex(/^\d+(ms|s|m)$/)
    .default('10s'),
});
export type PoolCheckInput = z.input<typeof PoolCheckInput>;

export const PoolCheckResult = z.object({
  cpuActivities: z.number().int(),
  cpuUnits: z.number().int(),
  gpuSteps: z.array(HostWorkResult),
  gpuHostsUsed: z.array(z.string()),
  hostReservations: z.number().int(),
});
export type PoolCheckResult = z.infer<typeof PoolCheckResult>;

/** Input of `activityFanOut`, the orchestration-overhead benchmark. */
export const ActivityFanOutInput = z.strictObject({
  /** Number of no-op activities. Bounded so that one run stays well under the history limit. */
  count: z.number().int().min(1).max(2000),
  /** `parallel` schedules all at once; `sequential` one after another (round-trip latency). */
  mode: z.enum(['parallel', 'sequential']),
  /** Upper bound of activities in flight for `parallel`. @default count */
  maxInFlight: z.number().int().min(1).max(2000).optional(),
});
export type ActivityFanOutInput = z.input<typeof ActivityFanOutInput>;

export const ActivityFanOutResult = z.object({ completed: z.number().int() });
export type ActivityFanOutResult = z.infer<typeof ActivityFanOutResult>;
