/**
 * Time-of-day aware rightsizing: instead of one value per quota per day, a schedule of values per slot of the UTC
 * day (24 one-hour slots, or 12 of two hours, 6 of four, ...), re-planned daily. The quota store keeps one value;
 * the plan publishes the schedule and dispatch switches the value at slot boundaries.
 *
 * Each slot's value is {@link recommend} run on that slot's hours only, with the same policy (percentile of a
 * decaying histogram, margin, peaks for memory, trend, burst, floor, ceiling, step limits against the slot's current
 * value). A slot with fewer than `minSlotSamples` usable samples falls back to the flat recommendation. When the
 * usage shows no daily structure ({@link diurnality}), the schedule is flat: every slot gets the flat value, so
 * quotas whose usage does not follow the clock (bursts, idle) are sized exactly as in flat mode.
 *
 * Pure and deterministic, like `recommend.ts`. See docs/quota-rightsizing.md.
 */
import { alignWithBudget, type BudgetItem, type BudgetStrategy } from './budget.js';
import { assertValidProfileOptions, profileForecast, type ProfileForecast, type ProfileOptions } from './profile.js';
import {
  assertValidPolicy,
  limitValue,
  recommend,
  type QuotaResource,
  type Recommendation,
  type RecommenderPolicy,
  type UsageSample,
} from './recommend.js';

/** How a schedule is cut and when it is used instead of a flat value. */
export interface ScheduleOptions {
  /** Hours per slot; must divide 24 (1, 2, 3, 4, 6, 8, 12). */
  slotHours: number;
  /** A slot with fewer usable samples than this takes the flat value. */
  minSlotSamples: number;
  /** Lowest lag-24 h autocorrelation of the usage (day-mean removed) for a schedule; below it, flat. */
  minPeriodicity: number;
  /** Lowest spread of the slot estimates, 1 − min/max of their raw values, for a schedule; below it, flat. */
  minSpread: number;
  /** Window (hours before now) the periodicity test looks at. @default 168 */
  periodicityWindowHours?: number;
  /**
   * Policy fields that differ for slots from the quota's flat policy (a slot sees one sample per hour of the slot per
   * day, so it wants a longer half-life and more margin than the flat estimate over every hour). @default {}
   */
  slotOverrides?: SlotOverrides;
  /**
   * How a slot's value is estimated. `histogram`: {@link recommend} on the slot's own hours (a decaying-histogram
   * percentile). `profile`: the profile forecast (`profile.ts`: day level with a week-ago term × hour-of-day shape ×
   * an error multiplier learned by replaying the last days), the highest hour of the slot; where the history is
   * too short for it, the histogram. @default 'histogram'
   */
  estimator?: 'histogram' | 'profile';
  /** Options of the profile forecast; required when `estimator` is `profile`. */
  profile?: ProfileOptions;
}

/** The recommender fields a schedule may set differently for its slots. */
export type SlotOverrides = Partial<
  Pick<
    RecommenderPolicy,
    'halfLifeHours' | 'targetPercentile' | 'safetyMargin' | 'burstAllowance' | 'trendHorizonHours'
  >
>;

/** How a resource's slots are judged: memory (over the limit is an OOM kill), on peaks, or on averages (rates). */
export type ScheduleClass = 'memory' | 'peak' | 'rate';

/** The class whose profile defaults a resource uses. */
export function scheduleClassOf(resource: QuotaResource): ScheduleClass {
  if (resource === 'memory') return 'memory';
  return resource === 'qps' || resource === 'bandwidth' ? 'rate' : 'peak';
}

/** Profile-forecast defaults shared by every class (tuned on seeds 1, 4 and 5; see {@link defaultScheduleOptions}). */
export const DEFAULT_PROFILE_SHARED: Omit<
  ProfileOptions,
  'coverage' | 'minCoverage' | 'coverageCost' | 'margin' | 'dayQuantile'
> = {
  shapeDays: 14,
  smoothHours: 2,
  backtestDays: 7,
  minBacktestDays: 2,
  weekly: true,
  weeklyWeeks: 3,
  weeklyMaxCut: 1,
  fallbackDays: 3,
};

/** Profile-forecast defaults per class: the share of hours covered, the level-error quantile and the margin. */
export const DEFAULT_PROFILE_BY_CLASS: Record<
  ScheduleClass,
  Pick<ProfileOptions, 'coverage' | 'minCoverage' | 'coverageCost' | 'margin' | 'dayQuantile'>
> = {
  memory: { coverage: 1, dayQuantile: 1, margin: 0.1 },
  peak: { coverage: 0.95, minCoverage: 0.7, coverageCost: 0, dayQuantile: 0.5, margin: 0 },
  rate: { coverage: 0.98, minCoverage: 0.7, coverageCost: 0.5, dayQuantile: 0.5, margin: 0 },
};

/**
 * Default schedule options per resource, tuned with the simulator jointly on seeds 1, 4 and 5 (`npm run bench:quota
 * -- --tune tod --tune-seeds 1,4,5`) and reported on held-out seeds 2 and 3 (BENCHMARKS.md, "Quota rightsizing").
 * Slots are estimated with the profile forecast; the histogram slot overrides apply while the history is too short
 * for it. Memory (over the limit is an OOM kill) gets its own
 * slot overrides and profile options; rate quotas (judged on averages) and capacity quotas judged on peaks differ
 * in the share of hours covered.
 */
export const defaultScheduleOptions = (resource: QuotaResource = 'custom'): ScheduleOptions => ({
  slotHours: 1,
  minSlotSamples: 6,
  minPeriodicity: -1,
  minSpread: 0.05,
  periodicityWindowHours: 168,
  slotOverrides:
    resource === 'memory'
      ? { halfLifeHours: 12, targetPercentile: 1, safetyMargin: 0.2, trendHorizonHours: 0 }
      : { halfLifeHours: 12, targetPercentile: 0.95, safetyMargin: 0.05, burstAllowance: 0, trendHorizonHours: 0 },
  estimator: 'profile',
  profile: { ...DEFAULT_PROFILE_SHARED, ...DEFAULT_PROFILE_BY_CLASS[scheduleClassOf(resource)] },
});

/** One slot of a schedule. */
export interface ScheduleSlot {
  /** First UTC hour of the slot (0..23). */
  startHour: number;
  /** The value in force during the slot. */
  value: number;
  /** Usable samples that fell in the slot. */
  samplesUsed: number;
  /** True when the slot took the flat value (too few samples, or flat mode). */
  fallback: boolean;
  /** The slot's own recommendation (absent when it had too few samples). */
  recommendation?: Recommendation;
}

/** A time-of-day schedule with the reasoning behind it. */
export interface ScheduleRecommendation {
  /** `schedule`: slots differ; `flat`: every slot holds the flat value (no daily structure, or too little data). */
  mode: 'schedule' | 'flat';
  slotHours: number;
  /** Value per slot, slot `k` covering UTC hours [k·slotHours, (k+1)·slotHours). */
  values: number[];
  slots: ScheduleSlot[];
  /** The flat recommendation (what flat mode would set), against the current schedule's highest value. */
  flat: Recommendation;
  /** Lag-24 h autocorrelation of the usage with each day's mean removed (−1..1; 0 with too little data). */
  periodicity: number;
  /** 1 − min/max of the slots' raw estimates (0 when no slot had enough samples). */
  spread: number;
  warnings: string[];
  reason: string;
}

const HOUR_MS = 3_600_000;

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, '');
}

/** Checks schedule options; throws a RangeError naming the bad field. */
export function assertValidScheduleOptions(o: ScheduleOptions): void {
  if (!Number.isInteger(o.slotHours) || o.slotHours < 1 || 24 % o.slotHours !== 0) {
    throw new RangeError(
      `schedule slotHours must be a whole divisor of 24 (1, 2, 3, 4, 6, 8, 12, 24), got ${o.slotHours}`,
    );
  }
  if (!(Number.isFinite(o.minSlotSamples) && o.minSlotSamples >= 1)) {
    throw new RangeError(`schedule minSlotSamples must be ≥ 1, got ${o.minSlotSamples}`);
  }
  if (!(Number.isFinite(o.minPeriodicity) && o.minPeriodicity >= -1 && o.minPeriodicity <= 1)) {
    throw new RangeError(`schedule minPeriodicity must be in [−1, 1], got ${o.minPeriodicity}`);
  }
  if (!(Number.isFinite(o.minSpread) && o.minSpread >= 0 && o.minSpread <= 1)) {
    throw new RangeError(`schedule minSpread must be in [0, 1], got ${o.minSpread}`);
  }
  if (o.periodicityWindowHours !== undefined && !(o.periodicityWindowHours >= 48)) {
    throw new RangeError(`schedule periodicityWindowHours must be ≥ 48, got ${o.periodicityWindowHours}`);
  }
  if (o.estimator !== undefined && o.estimator !== 'histogram' && o.estimator !== 'profile') {
    throw new RangeError(`schedule estimator must be histogram or profile, got ${String(o.estimator)}`);
  }
  if (o.estimator === 'profile') {
    if (!o.profile) throw new RangeError('schedule estimator profile needs profile options');
    assertValidProfileOptions(o.profile);
  }
}

/** The slot (0-based) that holds the UTC hour of `epochMs`. */
export function slotOf(epochMs: number, slotHours: number): number {
  const hour = Math.floor((((epochMs % 86_400_000) + 86_400_000) % 86_400_000) / HOUR_MS);
  return Math.floor(hour / slotHours);
}

/**
 * Daily periodicity of a usage series: the correlation between each hour's value and the same hour one day
 * earlier, after removing each UTC day's mean (so growth and step changes between days do not count as a daily
 * pattern). A clean daily cycle scores near 1; bursts, noise and flat usage near 0. Only samples in the last
 * `windowHours` before `nowMs` count; fewer than two days of pairs give 0.
 */
export function diurnality(
  samples: readonly UsageSample[],
  usePeak: boolean,
  nowMs: number,
  windowHours = 168,
): number {
  const byHour = new Map<number, number>();
  for (const s of samples) {
    if (!Number.isFinite(s.hourStartMs) || s.hourStartMs > nowMs || nowMs - s.hourStartMs >= windowHours * HOUR_MS) {
      continue;
    }
    const v = usePeak ? Math.max(s.peak, s.avg) : s.avg;
    if (!Number.isFinite(v) || v < 0) continue;
    byHour.set(Math.floor(s.hourStartMs / HOUR_MS), v);
  }
  // Remove each UTC day's mean.
  const daySum = new Map<number, { sum: number; n: number }>();
  for (const [h, v] of byHour) {
    const d = Math.floor(h / 24);
    const e = daySum.get(d) ?? { sum: 0, n: 0 };
    e.sum += v;
    e.n++;
    daySum.set(d, e);
  }
  const resid = new Map<number, number>();
  for (const [h, v] of byHour) {
    const e = daySum.get(Math.floor(h / 24))!;
    resid.set(h, v - e.sum / e.n);
  }
  const xs: number[] = [];
  const ys: number[] = [];
  for (const [h, v] of resid) {
    const prev = resid.get(h - 24);
    if (prev === undefined) continue;
    xs.push(v);
    ys.push(prev);
  }
  if (xs.length < 24) return 0;
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  if (sxx <= 0 || syy <= 0) return 0;
  return sxy / Math.sqrt(sxx * syy);
}

/**
 * Recommends a time-of-day schedule for a quota.
 *
 * @param current the schedule in force (one value per slot), or one value for all slots; ≤ 0 means unset
 * @param samples hourly usage, any order (same rules as {@link recommend})
 * @param policy the recommender policy, applied per slot (percentile, margin, peaks, floor, ceiling, steps)
 * @param nowMs time of the plan; slots are UTC hours of the day
 * @param options slot size, per-slot minimum samples and the daily-structure test; {@link defaultScheduleOptions}
 */
export function recommendSchedule(
  current: number | readonly number[],
  samples: readonly UsageSample[],
  policy: RecommenderPolicy,
  nowMs: number,
  options: ScheduleOptions = defaultScheduleOptions(),
): ScheduleRecommendation {
  assertValidScheduleOptions(options);
  const slotCount = 24 / options.slotHours;
  const warnings: string[] = [];
  let currentSlots: number[];
  if (typeof current === 'number') {
    currentSlots = new Array<number>(slotCount).fill(current);
  } else if (current.length === slotCount) {
    currentSlots = [...current];
  } else if (current.length === 1) {
    currentSlots = new Array<number>(slotCount).fill(current[0]!);
  } else {
    // A schedule with another slot size: each new slot starts from the highest old value it overlaps.
    const oldSlotHours = 24 / current.length;
    if (!Number.isInteger(oldSlotHours) || 24 % current.length !== 0) {
      throw new RangeError(`current schedule must have 1 or a divisor-of-24 number of slots, got ${current.length}`);
    }
    currentSlots = [];
    for (let k = 0; k < slotCount; k++) {
      let v = 0;
      for (let h = k * options.slotHours; h < (k + 1) * options.slotHours; h++) {
        v = Math.max(v, current[Math.floor(h / oldSlotHours)]!);
      }
      currentSlots.push(v);
    }
    warnings.push(`slot size changed from ${oldSlotHours} h to ${options.slotHours} h`);
  }
  const currentMax = Math.max(...currentSlots);

  const flat = recommend(currentMax, samples, policy, nowMs);
  const periodicity = diurnality(samples, policy.usePeak, nowMs, options.periodicityWindowHours ?? 168);

  // Per-slot recommendations on the slot's hours only.
  const bySlot: UsageSample[][] = Array.from({ length: slotCount }, () => []);
  for (const s of samples) {
    if (!Number.isFinite(s.hourStartMs)) continue;
    bySlot[slotOf(s.hourStartMs, options.slotHours)]!.push(s);
  }
  const slotPolicy: RecommenderPolicy = { ...policy, ...options.slotOverrides, minSamples: options.minSlotSamples };
  assertValidPolicy(slotPolicy);
  const slots: ScheduleSlot[] = [];
  const raws: number[] = [];
  let fallbacks = 0;
  const usableIn = (list: readonly UsageSample[]) =>
    list.filter(
      (s) => s.hourStartMs <= nowMs && Number.isFinite(s.avg) && Number.isFinite(s.peak) && s.avg >= 0 && s.peak >= 0,
    ).length;
  const forecast: ProfileForecast | undefined =
    options.estimator === 'profile' ? profileForecast(samples, slotPolicy.usePeak, nowMs, options.profile!) : undefined;
  if (forecast) {
    // The profile forecast: each slot covers its highest forecast hour, through the same limits as recommend.
    const need = new Array<number>(slotCount).fill(0);
    forecast.hourly.forEach((v, i) => {
      const k = slotOf(forecast.startMs + i * HOUR_MS, options.slotHours);
      need[k] = Math.max(need[k]!, v);
    });
    const model =
      forecast.levelModel === 'weekly'
        ? "yesterday's level × the weekly factor of the weekday"
        : `highest level of the last ${options.profile!.fallbackDays ?? 3} days`;
    for (let k = 0; k < slotCount; k++) {
      const raw = need[k]!;
      const limited = limitValue(raw, currentSlots[k]!, slotPolicy);
      raws.push(raw);
      slots.push({
        startHour: k * options.slotHours,
        value: limited.value,
        samplesUsed: usableIn(bySlot[k]!),
        fallback: false,
        recommendation: {
          value: limited.value,
          raw,
          current: currentSlots[k]!,
          warnings: limited.warnings,
          reason:
            `profile forecast (${model}, level ${fmt(forecast.level)}) × error multiplier ${fmt(forecast.multiplier)} ` +
            `(hour factor ${fmt(forecast.hourFactor)} × level factor ${fmt(forecast.levelFactor)}, ` +
            `${forecast.backtestDays} backtested days) × ${fmt(1 + options.profile!.margin)} = ${fmt(raw)} → ` +
            `${fmt(limited.value)}${limited.stepNote}`,
        },
      });
    }
  } else {
    if (options.estimator === 'profile')
      warnings.push('too little history for the profile forecast; slots use the histogram');
    for (let k = 0; k < slotCount; k++) {
      const slotSamples = bySlot[k]!;
      const usable = usableIn(slotSamples);
      const startHour = k * options.slotHours;
      if (usable < options.minSlotSamples) {
        fallbacks++;
        slots.push({ startHour, value: flat.value, samplesUsed: usable, fallback: true });
        continue;
      }
      const rec = recommend(currentSlots[k]!, slotSamples, slotPolicy, nowMs);
      raws.push(rec.raw);
      slots.push({ startHour, value: rec.value, samplesUsed: usable, fallback: false, recommendation: rec });
    }
  }
  const maxRaw = raws.length ? Math.max(...raws) : 0;
  const spread = raws.length && maxRaw > 0 ? 1 - Math.min(...raws) / maxRaw : 0;

  const goFlat = (why: string): ScheduleRecommendation => {
    return {
      mode: 'flat',
      slotHours: options.slotHours,
      values: new Array<number>(slotCount).fill(flat.value),
      slots: slots.map((s) => ({ ...s, value: flat.value, fallback: true })),
      flat,
      periodicity,
      spread,
      warnings: [...warnings, ...flat.warnings],
      reason: `flat ${fmt(flat.value)} in every slot: ${why}; ${flat.reason}`,
    };
  };
  if (fallbacks === slotCount) return goFlat(`no slot has ${options.minSlotSamples} usable samples`);
  if (periodicity < options.minPeriodicity) {
    return goFlat(`no daily pattern (periodicity ${fmt(periodicity)} < ${fmt(options.minPeriodicity)})`);
  }
  if (spread < options.minSpread) {
    return goFlat(`slots differ too little (spread ${fmt(spread)} < ${fmt(options.minSpread)})`);
  }
  if (fallbacks > 0)
    warnings.push(`${fallbacks} slot(s) with fewer than ${options.minSlotSamples} samples use the flat value`);
  for (const s of slots) {
    for (const w of s.recommendation?.warnings ?? []) {
      if (w.startsWith('step limited')) warnings.push(`slot ${s.startHour}:00 ${w}`);
    }
  }
  const values = slots.map((s) => s.value);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return {
    mode: 'schedule',
    slotHours: options.slotHours,
    values,
    slots,
    flat,
    periodicity,
    spread,
    warnings,
    reason:
      `time-of-day schedule, ${slotCount} slots of ${options.slotHours} h, ${fmt(lo)}…${fmt(hi)} ` +
      `(periodicity ${fmt(periodicity)}, spread ${fmt(spread)}; flat would be ${fmt(flat.value)})`,
  };
}

/** A budget item whose maximum is a schedule (one value per slot, all items with the same slot count). */
export type ScheduleBudgetItem = Omit<BudgetItem, 'recommendedMax'> & { recommendedSchedule: readonly number[] };

/** The outcome of aligning schedules with a budget. Spends are per day: Σ over hours of value × price. */
export interface ScheduleBudgetAlignment {
  items: Array<ScheduleBudgetItem & { alignedSchedule: number[]; cutReason?: string }>;
  spendBeforePerDay: number;
  spendAfterPerDay: number;
  budgetPerDay: number;
  overBudget: boolean;
  /** Slots in which the group's hourly spend is over the hourly budget after alignment. */
  slotsOverBudget: number;
}

/**
 * Aligns schedules with a budget.
 *
 * - `every-slot` (default): each slot is aligned on its own with {@link alignWithBudget}, so every hour is within
 *   the hourly budget, and so is the day's total.
 * - `daily-total`: only the day's spend (Σ over hours) must fit 24 × the hourly budget. Each item's mean over the
 *   day is aligned with {@link alignWithBudget}; its slots are then scaled by the same factor (never below
 *   guaranteed). Peaks of different quotas at the same hour may then exceed the hourly budget.
 */
export function alignScheduleWithBudget(
  items: readonly ScheduleBudgetItem[],
  budgetPerHour: number,
  strategy: BudgetStrategy,
  basis: 'every-slot' | 'daily-total' = 'every-slot',
): ScheduleBudgetAlignment {
  const slotCount = items[0]?.recommendedSchedule.length ?? 1;
  for (const it of items) {
    if (it.recommendedSchedule.length !== slotCount || 24 % slotCount !== 0) {
      throw new RangeError(
        `budget item "${it.quotaId}": every schedule needs the same divisor-of-24 number of slots (${slotCount}), got ${it.recommendedSchedule.length}`,
      );
    }
  }
  const slotHours = 24 / slotCount;
  const toItem = (it: ScheduleBudgetItem, max: number): BudgetItem => {
    const { recommendedSchedule: _s, ...rest } = it;
    return { ...rest, recommendedMax: max };
  };
  const daySpend = (sched: (it: number) => readonly number[]) =>
    items.reduce(
      (sum, it, k) =>
        sum + sched(k).reduce((s, v) => s + Math.max(v, it.guaranteed), 0) * slotHours * it.unitPricePerHour,
      0,
    );
  const spendBeforePerDay = daySpend((k) => items[k]!.recommendedSchedule);
  const aligned: number[][] = items.map(() => []);
  const reasons: Array<string | undefined> = items.map(() => undefined);
  if (basis === 'every-slot') {
    for (let s = 0; s < slotCount; s++) {
      const r = alignWithBudget(
        items.map((it) => toItem(it, it.recommendedSchedule[s]!)),
        budgetPerHour,
        strategy,
      );
      r.items.forEach((it, k) => {
        aligned[k]!.push(it.alignedMax);
        if (it.cutReason !== undefined && reasons[k] === undefined && it.alignedMax < it.recommendedMax) {
          reasons[k] = `slot ${s * slotHours}:00 ${it.cutReason}`;
        }
      });
    }
  } else {
    const means = items.map(
      (it) => it.recommendedSchedule.reduce((a, b) => a + Math.max(b, it.guaranteed), 0) / slotCount,
    );
    const r = alignWithBudget(
      items.map((it, k) => toItem(it, means[k]!)),
      budgetPerHour,
      strategy,
    );
    r.items.forEach((it, k) => {
      const f = means[k]! > 0 ? it.alignedMax / means[k]! : 1;
      aligned[k] = items[k]!.recommendedSchedule.map((v) =>
        Math.max(items[k]!.guaranteed, Math.max(v, items[k]!.guaranteed) * f),
      );
      if (it.cutReason !== undefined && f < 1) reasons[k] = `daily mean ${it.cutReason}`;
    });
  }
  const spendAfterPerDay = daySpend((k) => aligned[k]!);
  let slotsOverBudget = 0;
  for (let s = 0; s < slotCount; s++) {
    const spend = items.reduce((sum, it, k) => sum + aligned[k]![s]! * it.unitPricePerHour, 0);
    if (spend > budgetPerHour * (1 + 1e-9) + 1e-9) slotsOverBudget++;
  }
  const budgetPerDay = budgetPerHour * 24;
  return {
    items: items.map((it, k) => {
      const out: ScheduleBudgetItem & { alignedSchedule: number[]; cutReason?: string } = {
        ...it,
        alignedSchedule: aligned[k]!,
      };
      if (reasons[k] !== undefined) out.cutReason = reasons[k];
      return out;
    }),
    spendBeforePerDay,
    spendAfterPerDay,
    budgetPerDay,
    overBudget: spendAfterPerDay > budgetPerDay * (1 + 1e-9) + 1e-9,
    slotsOverBudget,
  };
}
