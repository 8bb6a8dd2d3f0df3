/**
 * Sluice's quota recommender: one new value per quota from hourly usage samples. Pure and deterministic: no I/O, no
 * clock (the caller passes `nowMs`), no randomness, so a workflow activity, the simulator (`bench/quota`) and tests
 * all get the same answer for the same input.
 *
 * raw = P_p(decayed usage) × (1 + safetyMargin) + trend + burst;
 * value = clamp(roundUp(clampStep(clamp(raw, floor, ceiling))), floor, ceiling), where
 *  - P_p is the `targetPercentile` of a decaying histogram (exponential 5% buckets, weights halving every
 *    `halfLifeHours`) over the hourly peaks (`usePeak`) or averages;
 *  - trend = max(0, Theil–Sen slope of the daily maxima over the last `trendWindowHours`) × `trendHorizonHours`;
 *  - burst = `burstAllowance` × max(0, largest recent peak − P_p × (1 + safetyMargin));
 *  - clampStep keeps one step within `current × (1 − maxStepDownRatio)` … `current × (1 + maxStepUpRatio)`.
 * Fewer than `minSamples` usable samples keep the current value with a warning; the result is never 0 nor below the
 * floor. See docs/quota-rightsizing.md.
 */
import { DecayingHistogram, decayWeight } from './histogram.js';

/** One pre-aggregated hour of usage, in the quota's unit. */
export interface UsageSample {
  /** Start of the hour, epoch milliseconds. */
  hourStartMs: number;
  /** Mean usage over the hour. */
  avg: number;
  /** Highest usage seen in the hour (≥ avg). */
  peak: number;
}

/** How a quota of one resource is rightsized. Every field has a per-resource default in {@link defaultPolicy}. */
export interface RecommenderPolicy {
  /** Hours after which a sample's weight in the histogram halves. */
  halfLifeHours: number;
  /** Percentile (0..1) of the decayed usage distribution that the quota must cover. */
  targetPercentile: number;
  /** Relative headroom added on top of the percentile, e.g. 0.15 = +15%. */
  safetyMargin: number;
  /** Use each hour's peak (memory: a peak over the limit is an OOM) rather than its average. */
  usePeak: boolean;
  /** How far ahead (hours) a positive growth trend is projected. 0 disables the trend term. */
  trendHorizonHours: number;
  /** Share (0..1) of the gap between the largest recent peak and the target that is added as burst headroom. */
  burstAllowance: number;
  /** Lowest value ever recommended (> 0). */
  floor: number;
  /** Highest value ever recommended (≥ floor). */
  ceiling: number;
  /** One step may raise the value by at most this share of the current value (1 = may double). */
  maxStepUpRatio: number;
  /** One step may lower the value by at most this share of the current value (0.25 = at most −25%). */
  maxStepDownRatio: number;
  /** Fewer usable samples than this keep the current value, with a warning. */
  minSamples: number;
  /** Window (hours before now) for the trend and the recent peak. @default 168 (7 days) */
  trendWindowHours?: number;
  /** Recommendations are rounded up to a multiple of this (e.g. 1 app, 1 MiB). @default none */
  roundUpTo?: number;
}

/** The resources a quota can limit, with the unit each default policy assumes. */
export type QuotaResource = 'memory' | 'vcores' | 'apps' | 'qps' | 'bandwidth' | 'custom';

/** Per-resource bounds and units: floor, ceiling, rounding, and whether peaks or averages are sized. */
function resourceBounds(
  resource: QuotaResource,
): Pick<RecommenderPolicy, 'floor' | 'ceiling' | 'usePeak' | 'roundUpTo'> {
  switch (resource) {
    // A memory peak over the limit is an OOM kill: size on peaks.
    case 'memory':
      return { usePeak: true, floor: 64, ceiling: 4 * 1024 * 1024, roundUpTo: 1 };
    case 'vcores':
      return { usePeak: true, floor: 0.1, ceiling: 10_000, roundUpTo: 0.1 };
    case 'apps':
      return { usePeak: true, floor: 1, ceiling: 100_000, roundUpTo: 1 };
    // A rate limiter's token bucket absorbs bursts within the hour: size on averages, with burst headroom.
    case 'qps':
      return { usePeak: false, floor: 1, ceiling: 10_000_000, roundUpTo: 1 };
    case 'bandwidth':
      return { usePeak: false, floor: 1, ceiling: 1_000_000, roundUpTo: 1 };
    case 'custom':
      return { usePeak: true, floor: 1, ceiling: Number.MAX_SAFE_INTEGER };
    default: {
      const unknown: never = resource;
      throw new RangeError(
        `unknown quota resource "${String(unknown)}"; use memory, vcores, apps, qps, bandwidth or custom`,
      );
    }
  }
}

/**
 * Default policy per resource. Units: memory MiB, vcores cores, apps concurrent applications, qps requests/s,
 * bandwidth MB/s, custom whatever the quota says. The shape parameters were tuned with the simulator
 * (`npm run bench:quota`) on seed 1 for the least slack with fewer OOM hours and fewer other violation hours than
 * the VPA recommender, and reported on seed 2 (BENCHMARKS.md, "Quota rightsizing"). Memory is tuned apart from the
 * rest because over its limit is an OOM kill. {@link conservativePolicy} trades slack for fewer violations.
 */
export const defaultPolicy = (resource: QuotaResource): RecommenderPolicy => {
  const common = { minSamples: 24, trendWindowHours: 168 };
  if (resource === 'memory') {
    return {
      ...common,
      halfLifeHours: 12,
      targetPercentile: 1,
      safetyMargin: 0.05,
      trendHorizonHours: 0,
      burstAllowance: 0,
      maxStepUpRatio: 1,
      maxStepDownRatio: 0.5,
      ...resourceBounds(resource),
    };
  }
  return {
    ...common,
    halfLifeHours: 12,
    targetPercentile: 0.9,
    safetyMargin: 0,
    trendHorizonHours: 0,
    burstAllowance: 0.1,
    maxStepUpRatio: 0.5,
    maxStepDownRatio: 0.5,
    ...resourceBounds(resource),
  };
};

/**
 * A safety-first policy: high percentile with margin, a 48 h growth projection, burst headroom and slower cuts. It
 * asks for more than the default, so it suits groups with budget headroom: under a tight budget the alignment has
 * to cut deeper, and in the simulator that made it end with more violation hours than the default (BENCHMARKS.md).
 */
export const conservativePolicy = (resource: QuotaResource): RecommenderPolicy => ({
  minSamples: 24,
  trendWindowHours: 168,
  halfLifeHours: 48,
  targetPercentile: 0.98,
  safetyMargin: 0.1,
  trendHorizonHours: 48,
  // Memory sizes on peaks already.
  burstAllowance: resource === 'memory' ? 0 : 0.25,
  maxStepUpRatio: 1,
  maxStepDownRatio: 0.3,
  ...resourceBounds(resource),
});

/** The terms that made up a recommendation, for plans and debugging. */
export interface RecommendationComponents {
  /** Usable samples (finite, non-negative, not in the future). */
  samplesUsed: number;
  /** The target percentile of the decayed distribution. */
  percentile: number;
  /** Percentile × (1 + safetyMargin). */
  withMargin: number;
  /** Growth added by the trend term. */
  trend: number;
  /** Headroom added by the burst term. */
  burst: number;
  /** Trend slope, units per hour (Theil–Sen over daily maxima); 0 when too few days. */
  slopePerHour: number;
}

/** A recommended value with the reasoning behind it. */
export interface Recommendation {
  /** The value to set: clamped, step-limited, rounded, never ≤ 0 nor below the floor. */
  value: number;
  /** The unclamped estimate (percentile × margin + trend + burst); equals `current` when samples are insufficient. */
  raw: number;
  /** The value the quota had. */
  current: number;
  /** Things an operator should know (missing data, clamps, step limits). */
  warnings: string[];
  /** One sentence on how the value came about. */
  reason: string;
  /** The terms behind `raw`; absent when samples were insufficient. */
  components?: RecommendationComponents;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Checks a policy; throws a RangeError naming the bad field. Exported for validators. */
export function assertValidPolicy(policy: RecommenderPolicy): void {
  const bad = (field: string, why: string) => {
    throw new RangeError(`recommender policy ${field} ${why}`);
  };
  const finite = (field: keyof RecommenderPolicy) => {
    const v = policy[field];
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(field, `must be a finite number, got ${String(v)}`);
  };
  for (const f of [
    'halfLifeHours',
    'targetPercentile',
    'safetyMargin',
    'trendHorizonHours',
    'burstAllowance',
    'floor',
    'ceiling',
    'maxStepUpRatio',
    'maxStepDownRatio',
    'minSamples',
  ] as const) {
    finite(f);
  }
  if (policy.halfLifeHours <= 0) bad('halfLifeHours', `must be > 0, got ${policy.halfLifeHours}`);
  if (policy.targetPercentile <= 0 || policy.targetPercentile > 1) {
    bad('targetPercentile', `must be in (0, 1], got ${policy.targetPercentile}`);
  }
  if (policy.safetyMargin < 0) bad('safetyMargin', `must be ≥ 0, got ${policy.safetyMargin}`);
  if (policy.trendHorizonHours < 0) bad('trendHorizonHours', `must be ≥ 0, got ${policy.trendHorizonHours}`);
  if (policy.burstAllowance < 0 || policy.burstAllowance > 1) {
    bad('burstAllowance', `must be in [0, 1], got ${policy.burstAllowance}`);
  }
  if (policy.floor <= 0) bad('floor', `must be > 0 (a quota is never driven to zero), got ${policy.floor}`);
  if (policy.ceiling < policy.floor) bad('ceiling', `(${policy.ceiling}) must be ≥ floor (${policy.floor})`);
  if (policy.maxStepUpRatio <= 0) bad('maxStepUpRatio', `must be > 0, got ${policy.maxStepUpRatio}`);
  if (policy.maxStepDownRatio <= 0 || policy.maxStepDownRatio >= 1) {
    bad('maxStepDownRatio', `must be in (0, 1), got ${policy.maxStepDownRatio}`);
  }
  if (policy.minSamples < 1) bad('minSamples', `must be ≥ 1, got ${policy.minSamples}`);
  if (policy.trendWindowHours !== undefined && !(policy.trendWindowHours >= 24)) {
    bad('trendWindowHours', `must be ≥ 24, got ${policy.trendWindowHours}`);
  }
  if (policy.roundUpTo !== undefined && !(policy.roundUpTo > 0 && Number.isFinite(policy.roundUpTo))) {
    bad('roundUpTo', `must be a positive number, got ${policy.roundUpTo}`);
  }
}

/** Median of a non-empty array (average of the middle two for even lengths). */
function medianOf(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Theil–Sen slope (median of pairwise slopes) of `(x, y)` points: robust to a minority of outliers (one bursty day
 * does not make a trend). Returns 0 for fewer than 2 distinct x.
 */
export function theilSenSlope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++) {
    for (let j = i + 1; j < points.length; j++) {
      const a = points[i]!;
      const b = points[j]!;
      if (b.x !== a.x) slopes.push((b.y - a.y) / (b.x - a.x));
    }
  }
  return slopes.length === 0 ? 0 : medianOf(slopes);
}

function roundUp(value: number, step: number | undefined): number {
  if (step === undefined) return value;
  // The small tolerance keeps 3.0000000001 × step from rounding to 4 steps; toPrecision drops 0.30000000000000004.
  return Number((Math.ceil(value / step - 1e-9) * step).toPrecision(12));
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, '');
}

/**
 * Turns an estimate into a quota value the way {@link recommend} does: clamp to [floor, ceiling], limit the step
 * from `current` (≤ 0 or non-finite: unset, no step limit), round up to `roundUpTo`, clamp again; a step-limited cut
 * that rounding would undo moves one rounding step instead. The result is never below the floor (> 0). Exported for
 * the time-of-day schedules, whose slots go through the same limits.
 */
export function limitValue(
  raw: number,
  current: number,
  policy: RecommenderPolicy,
): { value: number; warnings: string[]; stepNote: string } {
  const warnings: string[] = [];
  const hasCurrent = Number.isFinite(current) && current > 0;
  const finish = (v: number) => {
    let out = roundUp(v, policy.roundUpTo);
    if (out > policy.ceiling) out = policy.ceiling;
    if (out < policy.floor) out = policy.floor;
    return out;
  };
  let value = Math.min(policy.ceiling, Math.max(policy.floor, raw));
  if (raw < policy.floor)
    warnings.push(`estimate ${fmt(raw)} is below the floor ${fmt(policy.floor)}; using the floor`);
  if (raw > policy.ceiling) warnings.push(`estimate ${fmt(raw)} is above the ceiling ${fmt(policy.ceiling)}; capped`);
  let stepNote = '';
  if (hasCurrent) {
    const upper = current * (1 + policy.maxStepUpRatio);
    const lower = current * (1 - policy.maxStepDownRatio);
    if (value > upper) {
      warnings.push(
        `step limited: wanted ${fmt(value)}, raised to ${fmt(upper)} (+${fmt(policy.maxStepUpRatio * 100)}% max per step)`,
      );
      value = upper;
      stepNote = ', step-limited up';
    } else if (value < lower) {
      warnings.push(
        `step limited: wanted ${fmt(value)}, lowered to ${fmt(lower)} (−${fmt(policy.maxStepDownRatio * 100)}% max per step)`,
      );
      value = lower;
      stepNote = ', step-limited down';
    }
  } else {
    warnings.push('no current value; step limits not applied');
  }
  const stepLimitedDown = stepNote !== '' && value < current;
  value = finish(value);
  // Rounding up a step-limited cut can land back on the current value (0.3 − 30% = 0.21 → 0.3 in steps of 0.1);
  // take the rounding grid's point below the current value instead, so that a quota can always reach its floor.
  if (stepLimitedDown && value >= current && policy.roundUpTo !== undefined) {
    const below = (Math.ceil(current / policy.roundUpTo - 1e-9) - 1) * policy.roundUpTo;
    value = Math.max(policy.floor, Number(below.toPrecision(12)));
  }
  return { value, warnings, stepNote };
}

/**
 * Recommends a new value for a quota.
 *
 * @param current the quota's value now; ≤ 0 or non-finite means "unset" (then no step limit applies)
 * @param samples hourly usage, any order; non-finite, negative and future samples are ignored with a warning
 * @param policy see {@link RecommenderPolicy}; {@link defaultPolicy} gives one per resource
 * @param nowMs the time of the recommendation (epoch ms); decay and the trend window are relative to it
 */
export function recommend(
  current: number,
  samples: readonly UsageSample[],
  policy: RecommenderPolicy,
  nowMs: number,
): Recommendation {
  assertValidPolicy(policy);
  if (!Number.isFinite(nowMs)) throw new RangeError(`recommend nowMs must be a finite epoch time, got ${nowMs}`);
  const warnings: string[] = [];
  const hasCurrent = Number.isFinite(current) && current > 0;
  const clampFloorCeil = (v: number) => Math.min(policy.ceiling, Math.max(policy.floor, v));
  const finish = (v: number) => {
    let out = roundUp(v, policy.roundUpTo);
    if (out > policy.ceiling) out = policy.ceiling;
    if (out < policy.floor) out = policy.floor;
    return out;
  };

  let dropped = 0;
  const usable: Array<{ t: number; v: number; peak: number }> = [];
  for (const s of samples) {
    const ok =
      Number.isFinite(s.hourStartMs) &&
      s.hourStartMs <= nowMs &&
      Number.isFinite(s.avg) &&
      Number.isFinite(s.peak) &&
      s.avg >= 0 &&
      s.peak >= 0;
    if (!ok) {
      dropped++;
      continue;
    }
    // A peak below the average is a producer bug; the larger of the two is the safe reading.
    const peak = Math.max(s.peak, s.avg);
    usable.push({ t: s.hourStartMs, v: policy.usePeak ? peak : s.avg, peak });
  }
  if (dropped > 0) warnings.push(`${dropped} usage sample(s) ignored (non-finite, negative or in the future)`);

  if (usable.length < policy.minSamples) {
    const kept = hasCurrent ? clampFloorCeil(current) : policy.floor;
    warnings.push(
      `insufficient usage data: ${usable.length} usable hourly sample(s), ${policy.minSamples} needed; ` +
        (hasCurrent ? 'keeping the current value' : 'no current value, using the floor'),
    );
    if (hasCurrent && kept !== current) warnings.push(`current value ${fmt(current)} is outside [floor, ceiling]`);
    const value = finish(kept);
    return {
      value,
      raw: hasCurrent ? current : policy.floor,
      current,
      warnings,
      reason: `kept ${fmt(value)}: not enough usage data to recommend`,
    };
  }

  // Histogram scale from the data, so one policy serves MiB and requests/s alike.
  let maxSeen = 0;
  for (const u of usable) maxSeen = Math.max(maxSeen, u.v);
  const scale = Math.max(maxSeen, hasCurrent ? current : 0, policy.floor);
  const histogram = new DecayingHistogram({ firstBucketSize: scale / 1000, ratio: 1.05, maxValue: scale * 2 });
  for (const u of usable) histogram.add(u.v, decayWeight(u.t, nowMs, policy.halfLifeHours));
  const percentile = histogram.percentile(policy.targetPercentile);
  const withMargin = percentile * (1 + policy.safetyMargin);

  // Trend and burst look at the recent window only.
  const windowMs = (policy.trendWindowHours ?? 168) * HOUR_MS;
  const dailyMax = new Map<number, number>();
  let recentPeak = 0;
  for (const u of usable) {
    const age = nowMs - u.t;
    if (age >= windowMs) continue;
    const day = Math.floor(age / DAY_MS);
    dailyMax.set(day, Math.max(dailyMax.get(day) ?? 0, u.v));
    recentPeak = Math.max(recentPeak, u.peak);
  }
  let slopePerHour = 0;
  if (policy.trendHorizonHours > 0 && dailyMax.size >= 3) {
    // x in hours, increasing with time (day 0 is the most recent).
    const points = [...dailyMax.entries()].sort((a, b) => b[0] - a[0]).map(([day, y]) => ({ x: -day * 24, y }));
    slopePerHour = theilSenSlope(points);
  }
  const trend = Math.max(0, slopePerHour) * policy.trendHorizonHours;
  const burst = policy.burstAllowance * Math.max(0, recentPeak - withMargin);
  const raw = withMargin + trend + burst;

  const { value, warnings: limitWarnings, stepNote } = limitValue(raw, current, policy);
  warnings.push(...limitWarnings);

  const what = policy.usePeak ? 'hourly peaks' : 'hourly averages';
  const reason =
    `p${fmt(policy.targetPercentile * 100)} of ${what} (half-life ${fmt(policy.halfLifeHours)} h, ${usable.length} samples) ` +
    `${fmt(percentile)} × ${fmt(1 + policy.safetyMargin)} + trend ${fmt(trend)} + burst ${fmt(burst)} = ${fmt(raw)}` +
    ` → ${fmt(value)}${stepNote}`;
  return {
    value,
    raw,
    current,
    warnings,
    reason,
    components: { samplesUsed: usable.length, percentile, withMargin, trend, burst, slopePerHour },
  };
}
