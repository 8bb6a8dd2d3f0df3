import type {
  SparkAttemptRecord,
  SparkFailureKind,
  SparkResourceCaps,
  SparkResources,
  SparkSizingRecommendation,
} from '../../schemas/spark.js';
import { defaultOverheadMib, formatMemoryMib, roundUpMib } from './memory.js';
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
  /**
   * Standard deviations of the observed peak heaps added on top of `mean × headroom`: the more the runs of a job
   * differ, the more margin. @default 2
   */
  spreadFactor?: number;
  /** Smallest executor heap to recommend; Spark refuses heaps below 450 MiB. @default 512 */
  minExecutorMib?: number;
  /** Successful runs the mean is taken over. @default 10 */
  window?: number;
}

/** Failures that say the executor *heap* (or its share per task) was too small. */
const EXECUTOR_MEMORY_KINDS: ReadonlySet<SparkFailureKind> = new Set([
  'executor-oom',
  'execution-memory',
  'container-memory-kill',
  'shuffle-fetch',
]);

const MIB = 1024 * 1024;

/** The container overhead an attempt really had: the explicit one, else Spark's default for its heap. */
function effectiveOverheadMib(n: ResourceNumbers): number {
  return n.executorMemoryOverheadMib ?? defaultOverheadMib(n.executorMemoryMib);
}

function isMemoryFailure(a: SparkAttemptRecord, kinds: ReadonlySet<SparkFailureKind>): boolean {
  return a.outcome === 'failed' && a.failureKind !== undefined && kinds.has(a.failureKind);
}

/**
 * Where the next run should start, learned per dimension from the job's history. With no successful run it is the
 * request. Otherwise, over the successful attempts of the newest `window` successful runs:
 * - **executor memory**: the *mean* peak executor heap × `headroom` + `spreadFactor` × the peaks' standard
 *   deviation (tuned for the average run, with a margin that grows with the runs' spread; the retry ladder catches
 *   an outlier), at least `minExecutorMib`, never above the **proven** size (the smallest successful executor
 *   memory), and never at or below a heap share per task that already failed for memory (then the proven size);
 * - **task cpus and shuffle partitions**: the proven attempt's;
 * - **memory overhead**: with no container memory kill in the history, the smallest overhead that ever succeeded,
 *   and never more than the request's (so a ladder that doubled the overhead alongside the heap after a *heap* OOM
 *   does not leave the doubled overhead in the learned size; Spark's default is kept as the default). After a
 *   container kill: the smallest successful overhead above every overhead that was killed;
 * - **off-heap**: like the overhead, when neither a container kill nor an execution-memory failure (the two that
 *   off-heap memory answers) is in the history; else the proven attempt's;
 * - **driver memory**: the request's without a driver OOM in the history; else the smallest successful driver
 *   memory above every one that ran out of memory.
 * The result may be smaller than the request when the history shows slack. Caps always hold.
 */
export function recommendSizing(
  request: SparkResources,
  caps: SparkResourceCaps,
  runs: readonly SizingRun[],
  opts: SizingOptions = {},
): SparkSizingRecommendation {
  const headroom = opts.headroom ?? 1.25;
  const spreadFactor = opts.spreadFactor ?? 2;
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

  const succeeded = successes.map((a) => ({ a, n: toNumbers(a.resources) }));
  const proven = succeeded.reduce((best, c) => (c.n.executorMemoryMib < best.n.executorMemoryMib ? c : best));
  const peaks = successes.map((a) => a.peaks.peakJVMHeapMemory).filter((p): p is number => p !== undefined);
  const attempts = runs.flatMap((r) => r.attempts);
  const memoryFailures = attempts.filter((a) => isMemoryFailure(a, EXECUTOR_MEMORY_KINDS));
  const failedShare = Math.max(0, ...memoryFailures.map((a) => heapPerTaskMib(toNumbers(a.resources))));
  const containerKills = attempts.filter((a) => isMemoryFailure(a, new Set(['container-memory-kill'])));
  const executionFailures = attempts.filter((a) => isMemoryFailure(a, new Set(['execution-memory'])));
  const driverOoms = attempts.filter((a) => a.failureKind === 'driver-oom');
  const requested = toNumbers(request);

  const next: ResourceNumbers = { ...proven.n };
  const reasons: string[] = [];

  // Executor heap.
  if (peaks.length === 0) {
    reasons.push(`no peak heap recorded; the proven size ${proven.a.resources.executorMemory} is kept`);
  } else {
    const meanPeakMib = peaks.reduce((s, p) => s + p, 0) / peaks.length / MIB;
    const sdMib = Math.sqrt(peaks.reduce((s, p) => s + (p / MIB - meanPeakMib) ** 2, 0) / peaks.length);
    let mib = Math.max(minMib, roundUpMib(meanPeakMib * headroom + spreadFactor * sdMib));
    reasons.push(
      `mean peak executor heap ${Math.round(meanPeakMib)} MiB (σ ${Math.round(sdMib)}) over ${peaks.length} run(s) ` +
        `×${headroom} + ${spreadFactor}σ → ${formatMemoryMib(mib)}`,
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

  // Container overhead.
  if (containerKills.length === 0) {
    const requestedOverhead = requested.executorMemoryOverheadMib ?? defaultOverheadMib(next.executorMemoryMib);
    const smallest = Math.min(requestedOverhead, ...succeeded.map((s) => effectiveOverheadMib(s.n)));
    next.executorMemoryOverheadMib =
      requested.executorMemoryOverheadMib === undefined && smallest >= defaultOverheadMib(next.executorMemoryMib)
        ? undefined
        : smallest;
    if (effectiveOverheadMib(proven.n) > effectiveOverheadMib(next)) {
      reasons.push(
        `overhead back to ${next.executorMemoryOverheadMib === undefined ? "Spark's default" : formatMemoryMib(smallest)}: no container memory kill in the history`,
      );
    }
  } else {
    const killedMib = Math.max(...containerKills.map((a) => effectiveOverheadMib(toNumbers(a.resources))));
    const above = succeeded.map((s) => effectiveOverheadMib(s.n)).filter((o) => o > killedMib);
    next.executorMemoryOverheadMib = above.length > 0 ? Math.min(...above) : effectiveOverheadMib(proven.n);
    reasons.push(
      `overhead ${formatMemoryMib(next.executorMemoryOverheadMib)} after ${containerKills.length} container kill(s) at ≤ ${formatMemoryMib(killedMib)}`,
    );
  }

  // Off-heap memory.
  if (containerKills.length === 0 && executionFailures.length === 0) {
    const offHeaps = [requested.executorOffHeapMib, ...succeeded.map((s) => s.n.executorOffHeapMib)];
    next.executorOffHeapMib =
      requested.executorOffHeapMib === undefined
        ? undefined
        : Math.min(...offHeaps.filter((o): o is number => o !== undefined));
  }

  // Driver memory.
  if (driverOoms.length === 0) {
    next.driverMemoryMib = requested.driverMemoryMib;
  } else {
    const oomMib = Math.max(...driverOoms.map((a) => toNumbers(a.resources).driverMemoryMib));
    const above = succeeded.map((s) => s.n.driverMemoryMib).filter((d) => d > oomMib);
    next.driverMemoryMib = above.length > 0 ? Math.min(...above) : proven.n.driverMemoryMib;
    reasons.push(
      `driver ${formatMemoryMib(next.driverMemoryMib)} after ${driverOoms.length} driver OOM(s) at ≤ ${formatMemoryMib(oomMib)}`,
    );
  }

  const resources = fromNumbers(clampToCaps(next, capNumbers(caps)));
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
