/**
 * The Kubernetes Vertical Pod Autoscaler (VPA) recommender's algorithm, re-implemented from its published design
 * (the autoscaler repository's `vertical-pod-autoscaler` docs and the constants its recommender documents) as the
 * peer for Sluice's recommender in `bench/quota`. Written from the description, not from VPA's code.
 *
 * What is implemented, per VPA's design:
 *  - Decaying histograms with exponential buckets (first bucket 0.01 core / 10 MB in VPA, 5% growth), samples
 *    weighted by `2^(age / 24 h)` relative weight: a 24-hour half-life for both CPU and memory.
 *  - CPU-like resources: every usage sample goes into the histogram.
 *  - Memory: one sample per aggregation window (24 h), that window's peak; windows older than 8 intervals (8 days)
 *    are dropped. The current, partial window counts with its peak so far, as VPA updates it in place.
 *  - OOM: an OOM at usage X records a memory sample of max(X + 100 MB, 1.2 · X) in its window.
 *  - Estimates: target = p90, lower bound = p50, upper bound = p95 of the histogram, each × (1 + 0.15 margin);
 *    then confidence scaling on the bounds: upper × (1 + 1/confidence), lower × (1 + 0.001/confidence)^−2, with
 *    confidence = min(days between first and last sample, samples / samples-per-day). The target is not scaled.
 *  - Minimum resources: 25 millicores CPU, 250 MiB memory (VPA's pod minimums), expressed here as `minValue`.
 *  - The updater changes a running workload when its current value falls outside [lower, upper], or, for a
 *    workload older than 12 hours, when the target differs from it by at least 10% ({@link vpaShouldUpdate}); the
 *    new value is then the target.
 *
 * Where this is simplified:
 *  - VPA samples CPU every minute (metrics-server); we have hourly aggregates, so each CPU-like sample is one hour's
 *    average and confidence counts 24 samples per day instead of 1,440.
 *  - VPA weights CPU samples by the container's request at sampling time; all samples weigh the same here (a
 *    quota's history of values is not part of the input).
 *  - Bucket sizes scale with the data (first bucket = 1/1000 of the largest value seen) rather than VPA's fixed
 *    0.01 core / 10 MB, so the same code serves requests/s and MiB; the 5% growth is VPA's.
 *  - The OOM bump uses 100 units of the quota's unit for "100 MB" when the unit is MiB (`oomBumpAbsolute`).
 *  - No per-pod aggregation, checkpoints, or min/max policy from a VPA object beyond `minValue`/`maxValue`.
 */
import { DecayingHistogram, decayWeight } from './histogram.js';
import type { UsageSample } from './recommend.js';

/** Which of VPA's two recipes applies. */
export type VpaResourceKind = 'cpu' | 'memory';

/** VPA's recommender constants; {@link vpaDefaults} gives VPA's values. */
export interface VpaOptions {
  kind: VpaResourceKind;
  /** @default 24 */
  halfLifeHours: number;
  /** @default 0.9 */
  targetPercentile: number;
  /** @default 0.5 */
  lowerBoundPercentile: number;
  /** @default 0.95 */
  upperBoundPercentile: number;
  /** @default 0.15 */
  safetyMargin: number;
  /** Memory aggregation window. @default 24 */
  aggregationWindowHours: number;
  /** How many aggregation windows of memory peaks are kept. @default 8 */
  aggregationWindowCount: number;
  /** Samples per day at full resolution, for confidence (hourly aggregates: 24). @default 24 */
  samplesPerDay: number;
  /** Lowest recommendation (VPA: 25 millicores, 250 MiB). */
  minValue: number;
  /** Highest recommendation. @default Infinity */
  maxValue: number;
  /** OOM bump: at least X + this. @default 100 (MiB) */
  oomBumpAbsolute: number;
  /** OOM bump: at least X × this. @default 1.2 */
  oomBumpRatio: number;
}

/** VPA's published defaults for a resource kind; `minValue` in the quota's unit (MiB for memory, cores for CPU). */
export function vpaDefaults(kind: VpaResourceKind, minValue = kind === 'memory' ? 250 : 0.025): VpaOptions {
  return {
    kind,
    halfLifeHours: 24,
    targetPercentile: 0.9,
    lowerBoundPercentile: 0.5,
    upperBoundPercentile: 0.95,
    safetyMargin: 0.15,
    aggregationWindowHours: 24,
    aggregationWindowCount: 8,
    samplesPerDay: 24,
    minValue,
    maxValue: Infinity,
    oomBumpAbsolute: 100,
    oomBumpRatio: 1.2,
  };
}

/** An OOM (or, for rate quotas, a throttled hour) observed at usage `usage`. */
export interface OomEvent {
  atMs: number;
  usage: number;
}

/** VPA's three estimates. */
export interface VpaRecommendation {
  target: number;
  lowerBound: number;
  upperBound: number;
  /** Days of history backing the bounds (VPA's confidence). */
  confidence: number;
  /** Samples that went into the histogram (hours for CPU, windows for memory). */
  histogramSamples: number;
}

const HOUR_MS = 3_600_000;

/**
 * Runs VPA's recommender over hourly usage at `nowMs`. Without samples, returns `minValue` for all three estimates
 * (VPA would not recommend at all; the caller keeps its value).
 */
export function vpaRecommend(
  samples: readonly UsageSample[],
  options: VpaOptions,
  nowMs: number,
  ooms: readonly OomEvent[] = [],
): VpaRecommendation {
  const usable = samples.filter(
    (s) => Number.isFinite(s.hourStartMs) && s.hourStartMs <= nowMs && s.avg >= 0 && s.peak >= 0,
  );
  const points: Array<{ t: number; v: number }> = [];
  if (options.kind === 'cpu') {
    for (const s of usable) points.push({ t: s.hourStartMs, v: s.avg });
  } else {
    // One peak per aggregation window, windows aligned to now; only the last `aggregationWindowCount` are kept.
    const windowMs = options.aggregationWindowHours * HOUR_MS;
    const horizonMs = windowMs * options.aggregationWindowCount;
    const peaks = new Map<number, number>();
    const bump = (w: number, v: number) => peaks.set(w, Math.max(peaks.get(w) ?? 0, v));
    for (const s of usable) {
      if (nowMs - s.hourStartMs >= horizonMs) continue;
      bump(Math.floor((nowMs - s.hourStartMs) / windowMs), Math.max(s.peak, s.avg));
    }
    for (const o of ooms) {
      if (o.atMs > nowMs || nowMs - o.atMs >= horizonMs) continue;
      bump(
        Math.floor((nowMs - o.atMs) / windowMs),
        Math.max(o.usage + options.oomBumpAbsolute, o.usage * options.oomBumpRatio),
      );
    }
    // A window's sample is timestamped at the window's start, as VPA does.
    for (const [w, v] of peaks) points.push({ t: nowMs - (w + 1) * windowMs, v });
  }
  if (points.length === 0) {
    return {
      target: options.minValue,
      lowerBound: options.minValue,
      upperBound: options.minValue,
      confidence: 0,
      histogramSamples: 0,
    };
  }
  let maxSeen = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const p of points) {
    maxSeen = Math.max(maxSeen, p.v);
    first = Math.min(first, p.t);
    last = Math.max(last, p.t);
  }
  const scale = Math.max(maxSeen, options.minValue, 1e-9);
  const histogram = new DecayingHistogram({ firstBucketSize: scale / 1000, ratio: 1.05, maxValue: scale * 2 });
  for (const p of points) histogram.add(p.v, decayWeight(p.t, nowMs, options.halfLifeHours));

  // Confidence in days: the lifespan of the history, limited by how many samples it actually holds.
  const lifespanDays = (last - first) / (24 * HOUR_MS);
  const sampleDays =
    options.kind === 'cpu'
      ? usable.length / options.samplesPerDay
      : points.length * (options.aggregationWindowHours / 24);
  const confidence = Math.max(0, Math.min(lifespanDays, sampleDays));

  const margin = 1 + options.safetyMargin;
  const clamp = (v: number) => Math.min(options.maxValue, Math.max(options.minValue, v));
  const target = clamp(histogram.percentile(options.targetPercentile) * margin);
  const upperRaw = histogram.percentile(options.upperBoundPercentile) * margin;
  const lowerRaw = histogram.percentile(options.lowerBoundPercentile) * margin;
  // With no confidence (a single instant), the bounds are unbounded up and down, as 1/0 makes them in VPA.
  const upperBound = clamp(confidence > 0 ? upperRaw * (1 + 1 / confidence) : Infinity);
  const lowerBound = clamp(confidence > 0 ? lowerRaw * Math.pow(1 + 0.001 / confidence, -2) : 0);
  return { target, lowerBound, upperBound, confidence, histogramSamples: points.length };
}

/**
 * VPA's updater rule: update when the current value is outside the recommended range, or when the target differs
 * from it by at least `minChange` (VPA: 10%, for workloads that have lived 12 hours or more, which is every quota
 * on a daily cadence). An unset current value (≤ 0) is always updated.
 */
export function vpaShouldUpdate(current: number, rec: VpaRecommendation, minChange = 0.1): boolean {
  if (!(current > 0)) return true;
  if (current < rec.lowerBound || current > rec.upperBound) return true;
  return Math.abs(rec.target - current) / current >= minChange;
}
