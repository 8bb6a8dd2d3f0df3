import type {
  SparkAttemptRecord,
  SparkFailureKind,
  SparkResourceCaps,
  SparkResources,
  SparkSizingRecommendation,
} from '../../schemas/spark.js';
import { formatMemoryMib, roundUpMib } from './memory.js';
import { capNumbers, clampToCaps, fromNumbers, heapPerTaskMib, toNumbers, type ResourceNumbers } from './resources.js';

/** One earlier run as the recommender sees it. */
export interface SizingRun {
  outcome: 'succeeded' | 'failed' | 'cancelled' | 'running';
  attempts: readonly SparkAttemptRecord[];
}

/** Options of {@link recommendSizing}. */
export interface SizingOptions {
  /** Headroom over the mean observed peak heap. @default 1.25 */
  headroom?: number;
  /** Smallest executor heap to recommend; Spark refuses heaps below 450 MiB. @default 512 */
  minExecutorMib?: number;
  /** Successful runs the mean is taken over. @default 10 */
  window?: number;
}

const EXECUTOR_MEMORY_KINDS: ReadonlySet<SparkFailureKind> = new Set([
  'executor-oom',
  'execution-memory',
  'container-memory-kill',
  'shuffle-fetch',
]);

const MIB = 1024 * 1024;

/**
 * Where the next run should start. With no successful run it is the request. Otherwise:
 * - the **proven** size is the smallest successful attempt (by executor memory) in the window;
 * - the **observed** need is the *mean* over successful runs of their peak executor heap, × `headroom`: tuned for
 *   the average run, with the retry ladder catching an outlier;
 * - the executor memory is the observed need, at least `minExecutorMib`, never above the proven size, and never at
 *   or below a size whose heap share per task already failed for memory (then the proven size is used);
 * - task cpus, overhead, off-heap and shuffle partitions come from the proven attempt; driver memory too when a
 *   driver OOM is in the history, else the request's.
 * The result may be smaller than the request when the history shows slack. Caps always hold.
 */
export function recommendSizing(
  request: SparkResources,
  caps: SparkResourceCaps,
  runs: readonly SizingRun[],
  opts: SizingOptions = {},
): SparkSizingRecommendation {
  const headroom = opts.headroom ?? 1.25;
  const minMib = opts.minExecutorMib ?? 512;
  const window = opts.window ?? 10;
  const successes = runs
    .filter((r) => r.outcome === 'succeeded')
    .map((r) => r.attempts.find((a) => a.outcome === 'succeeded'))
    .filter((a): a is SparkAttemptRecord => a !== undefined)
    .slice(0, window);
  if (successes.length === 0) {
    return { source: 'request', resources: request, reason: 'no successful run of this job yet', basedOnRuns: 0 };
  }

  const proven = successes
    .map((a) => ({ a, n: toNumbers(a.resources) }))
    .reduce((best, c) => (c.n.executorMemoryMib < best.n.executorMemoryMib ? c : best));
  const peaks = successes.map((a) => a.peaks.peakJVMHeapMemory).filter((p): p is number => p !== undefined);
  const attempts = runs.flatMap((r) => r.attempts);
  const memoryFailures = attempts.filter(
    (a) => a.outcome === 'failed' && a.failureKind !== undefined && EXECUTOR_MEMORY_KINDS.has(a.failureKind),
  );
  const failedShare = Math.max(0, ...memoryFailures.map((a) => heapPerTaskMib(toNumbers(a.resources))));
  const driverOoms = attempts.filter((a) => a.failureKind === 'driver-oom');

  const next: ResourceNumbers = { ...proven.n };
  const reasons: string[] = [];
  if (peaks.length === 0) {
    reasons.push(`no peak heap recorded; the proven size ${proven.a.resources.executorMemory} is kept`);
  } else {
    const meanPeakMib = peaks.reduce((s, p) => s + p, 0) / peaks.length / MIB;
    let mib = Math.max(minMib, roundUpMib(meanPeakMib * headroom));
    reasons.push(
      `mean peak executor heap ${Math.round(meanPeakMib)} MiB over ${peaks.length} run(s) ×${headroom} → ${formatMemoryMib(mib)}`,
    );
    if (mib >= proven.n.executorMemoryMib) {
      mib = proven.n.executorMemoryMib;
      reasons.push(`held at the proven ${proven.a.resources.executorMemory}`);
    } else if (heapPerTaskMib({ ...proven.n, executorMemoryMib: mib }) <= failedShare) {
      mib = proven.n.executorMemoryMib;
      reasons.push(
        `but ${Math.round(failedShare)} MiB per task already ran out of memory; the proven ${proven.a.resources.executorMemory} is used`,
      );
    }
    next.executorMemoryMib = mib;
  }
  if (driverOoms.length === 0) {
    next.driverMemoryMib = toNumbers(request).driverMemoryMib;
  } else {
    reasons.push(`driver ${proven.a.resources.driverMemory} after ${driverOoms.length} driver OOM(s)`);
  }
  const resources = fromNumbers(clampToCaps(next, capNumbers(caps)));
  const requested = toNumbers(request);
  const change =
    next.executorMemoryMib < requested.executorMemoryMib
      ? `smaller than the request (${request.executorMemory})`
      : next.executorMemoryMib > requested.executorMemoryMib
        ? `larger than the request (${request.executorMemory})`
        : 'the requested executor memory';
  return {
    source: 'learned',
    resources,
    reason: `${reasons.join('; ')}; ${change}`,
    basedOnRuns: successes.length,
  };
}
