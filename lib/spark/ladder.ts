import { assertNever } from '../../schemas/error-types.js';
import type { SparkFailureKind, SparkResourceCaps, SparkResources, SparkRetryPolicyName } from '../../schemas/spark.js';
import { defaultOverheadMib } from './memory.js';
import {
  capNumbers,
  clampToCaps,
  fromNumbers,
  sameResources,
  toNumbers,
  type CapNumbers,
  type ResourceNumbers,
} from './resources.js';

/** What a failure kind asks of the next attempt. */
export type FailureRemedy =
  /** Give executors more memory (or, per policy, more shuffle partitions). */
  | 'grow-executors'
  /** Give the container more non-heap room: overhead and off-heap first. */
  | 'grow-container'
  /** Give the driver more memory. */
  | 'grow-driver'
  /** Run the same configuration again: the failure was not the job's. */
  | 'same-config'
  /** Do not retry: no resize can fix it. */
  | 'stop';

/** The remedy for each failure kind. Exhaustive: a new kind does not compile until it has one. */
export function remedyFor(kind: SparkFailureKind): FailureRemedy {
  switch (kind) {
    // Fetch failures come from executors dying or stalling under memory pressure; more memory is the cure.
    case 'executor-oom':
    case 'execution-memory':
    case 'shuffle-fetch':
      return 'grow-executors';
    case 'container-memory-kill':
      return 'grow-container';
    case 'driver-oom':
      return 'grow-driver';
    case 'infrastructure':
      return 'same-config';
    case 'user-code':
      return 'stop';
    default:
      return assertNever(kind, 'Spark failure kind');
  }
}

/** Where the ladder stands: how many executor steps were taken since the first attempt. */
export interface LadderPosition {
  /** 0: the first size; 1: task cpus doubled; k ≥ 2: executor memory ×k. */
  executorStep: number;
}

export interface NextAttemptInput {
  policy: SparkRetryPolicyName;
  kind: SparkFailureKind;
  /** Resources of the first attempt (the ladder's multipliers apply to these). */
  first: SparkResources;
  /** Resources of the attempt that just failed. */
  current: SparkResources;
  position: LadderPosition;
  caps: SparkResourceCaps;
}

export type NextAttempt =
  { retry: true; resources: SparkResources; step: string; position: LadderPosition } | { retry: false; reason: string };

const DEFAULT_SHUFFLE_PARTITIONS = 200;

/** The executor ladder's size at step `k` (see {@link LadderPosition}), from the first attempt's size. */
function executorStepSize(
  first: ResourceNumbers,
  current: ResourceNumbers,
  k: number,
  kind: SparkFailureKind,
  caps: CapNumbers,
) {
  const next: ResourceNumbers = { ...current };
  // Task cpus doubled at step 1 stay doubled: with the executor ×2 and task cpus ×1 a task would get exactly the
  // heap share it had at step 1, which already failed.
  next.taskCpus = k >= 1 ? Math.min(first.taskCpus * 2, first.executorCores) : first.taskCpus;
  if (k >= 2) {
    // Capped first, so that the overhead follows the memory the executor really gets.
    next.executorMemoryMib = Math.min(first.executorMemoryMib * k, caps.executorMemoryMib);
    const firstOverhead = first.executorMemoryOverheadMib ?? defaultOverheadMib(first.executorMemoryMib);
    next.executorMemoryOverheadMib = Math.max(firstOverhead * 2, defaultOverheadMib(next.executorMemoryMib));
    if (first.executorOffHeapMib !== undefined) next.executorOffHeapMib = first.executorOffHeapMib * 2;
    if (kind === 'container-memory-kill' && first.executorOffHeapMib === undefined) {
      // A container kill is non-heap memory (Python workers, netty, off-heap buffers): raise the overhead more.
      next.executorMemoryOverheadMib = Math.max(next.executorMemoryOverheadMib, firstOverhead * k);
    }
  }
  return next;
}

/**
 * The resources of the next attempt after a failure of `kind`, or why there is none. Default ladder: step 1
 * doubles `spark.task.cpus` on the same executors; steps 2–4 (attempts 3–5) give executors ×2, ×3, ×4 memory with
 * overhead and off-heap ×2; a driver OOM doubles driver memory; all within the caps. A step that the caps leave
 * unchanged is skipped, and when no step changes anything the ladder is exhausted. The `shuffle-partitions` policy
 * doubles `spark.sql.shuffle.partitions` instead, and falls back to the ladder once they are capped.
 */
export function nextAttempt(input: NextAttemptInput): NextAttempt {
  const caps = capNumbers(input.caps);
  const first = toNumbers(input.first);
  const current = toNumbers(input.current);
  const remedy = remedyFor(input.kind);
  switch (remedy) {
    case 'stop':
      return { retry: false, reason: `a ${input.kind} failure is not retried: no resize fixes it` };
    case 'same-config':
      return {
        retry: true,
        resources: input.current,
        step: 'same config (infrastructure loss)',
        position: input.position,
      };
    case 'grow-driver': {
      const next = clampToCaps({ ...current, driverMemoryMib: current.driverMemoryMib * 2 }, caps);
      if (sameResources(next, current)) {
        return { retry: false, reason: `driver memory is at its cap (${input.current.driverMemory})` };
      }
      return {
        retry: true,
        resources: fromNumbers(next),
        step: `driver memory ×2 → ${fromNumbers(next).driverMemory}`,
        position: input.position,
      };
    }
    case 'grow-executors':
    case 'grow-container': {
      if (input.policy === 'shuffle-partitions' && remedy === 'grow-executors') {
        const partitions = (current.shufflePartitions ?? DEFAULT_SHUFFLE_PARTITIONS) * 2;
        const next = clampToCaps({ ...current, shufflePartitions: partitions }, caps);
        if (!sameResources(next, current)) {
          return {
            retry: true,
            resources: fromNumbers(next),
            step: `shuffle partitions ×2 → ${next.shufflePartitions}`,
            position: input.position,
          };
        }
      }
      // A container kill is not about the heap share, so it skips the task-cpus step.
      let k = input.position.executorStep + 1;
      if (remedy === 'grow-container' && k === 1) k = 2;
      for (; k <= 16; k++) {
        const next = clampToCaps(executorStepSize(first, current, k, input.kind, caps), caps);
        if (sameResources(next, current)) continue;
        return { retry: true, resources: fromNumbers(next), step: describeStep(k), position: { executorStep: k } };
      }
      return { retry: false, reason: `executor resources are at their caps (${input.current.executorMemory})` };
    }
    default:
      return assertNever(remedy, 'failure remedy');
  }
}

function describeStep(k: number): string {
  return k === 1 ? 'task.cpus ×2' : `executor memory ×${k}, overhead ×2`;
}
