/**
 * The profile forecast behind time-of-day schedules: a forecast of the next 24 hours' demand per hour, with a
 * multiplier learned from the quota's own forecast errors. Pure and deterministic, like `recommend.ts`.
 *
 * Usage is read as `level × shape × error`:
 *  - **level** of a day: the median of its hourly averages (robust to bursts);
 *  - **level forecast** for the next day: yesterday's level × w(7 days ago) / w(8 days ago), where a day's weekly
 *    factor w is its level over the median level of the 7 days centred on it. So a weekly cycle (a weekend dip)
 *    is followed, growth and a step change carry over after one day, and a step change never enters the weekly
 *    factor (4 of the 7 days lie on one side of it). It needs 11 days of history; with less, the highest level of the last `fallbackDays` days;
 *  - **shape** per hour of the day: the median, over the last `shapeDays` days, of that hour's average (and its
 *    ±`smoothHours` neighbours) divided by its day's level;
 *  - **error multiplier**: the forecast above is replayed on the last `backtestDays` days, each from the data
 *    before it, and every hour's demand (its peak for quotas judged on peaks, else its average) is divided by what
 *    was forecast. Each backtested day's median ratio is its level error; each hour's ratio over its day's level
 *    error is its own deviation (peaks over averages, noise, bursts). The multiplier is the `coverage` quantile of
 *    the hours' deviations (pooled over the days) × the `dayQuantile` quantile of the days' level errors. A quota
 *    whose peaks run 40% above its averages, or whose usage is noisy or bursty, learns a larger multiplier than a
 *    steady one, and a one-off level shift (a step change) moves only one day's level error, not the hours'.
 *
 * Demand forecast for hour i of the next day = level forecast × shape(i) × multiplier × (1 + margin).
 * Days here are 24-hour windows ending at the hour that holds `nowMs`, so the forecast is for the 24 hours from it.
 * See docs/quota-rightsizing.md (§1c).
 */
import type { UsageSample } from './recommend.js';

/** How the profile forecast is made. */
export interface ProfileOptions {
  /** Share of backtested hours whose deviation from their day's level error the multiplier covers, in (0, 1]. */
  coverage: number;
  /**
   * With `coverageCost` > 0, the lowest share of hours covered; between it and `coverage` the share is chosen per
   * quota from its own deviations (see `coverageCost`). Above `coverage`, `coverage` is used. @default coverage
   */
  minCoverage?: number;
  /**
   * Shares of hours that one unit of headroom (relative to the typical hour) must cover to be worth adding, between
   * `minCoverage` and `coverage`. 0: always `coverage`. @default 0
   */
  coverageCost?: number;
  /** Relative headroom on top of the multiplier (≥ 0). */
  margin: number;
  /** Days of history the hour-of-day shape is the median over (≥ 1). */
  shapeDays: number;
  /** Hours either side of an hour that its shape also looks at (0 = the hour alone). */
  smoothHours: number;
  /** Days replayed to learn the error multiplier (≥ 1). */
  backtestDays: number;
  /** Fewer backtested days than this (with a usable forecast) → no profile forecast; the caller falls back. */
  minBacktestDays: number;
  /** Use the same weekday last week for the level forecast where 8 days of history exist. */
  weekly: boolean;
  /** Weeks whose weekday-to-weekday change is looked at (the median of them is used). @default 1 */
  weeklyWeeks?: number;
  /**
   * The weekly factor may put the level forecast at most this share below the highest level of the last
   * `fallbackDays` days (0 = never below it, 1 = unbounded). @default 0.5
   */
  weeklyMaxCut?: number;
  /**
   * Without 11 days of history (no weekly factor), the level forecast is the highest level of this many recent
   * days. @default 3
   */
  fallbackDays?: number;
  /**
   * Which quantile of the backtested days' level errors the multiplier covers (0.5 = the median day, 1 = the
   * worst). @default 0.5
   */
  dayQuantile?: number;
}

/** A profile forecast of the next 24 hours. */
export interface ProfileForecast {
  /** Demand to cover per hour from the hour of `nowMs`: `hourly[i]` is for the hour starting `i` hours after it. */
  hourly: number[];
  /** Start of the hour `hourly[0]` covers (epoch ms). */
  startMs: number;
  /** Level forecast for the next day (median hourly average). */
  level: number;
  /** How the level was forecast. */
  levelModel: 'weekly' | 'recent';
  /** The learned error multiplier, `hourFactor × levelFactor`. */
  multiplier: number;
  /** The `coverage` quantile of the backtested hours' demand over their day's typical (median) ratio. */
  hourFactor: number;
  /** The `dayQuantile` quantile of the backtested days' level errors (median demand / forecast of each day). */
  levelFactor: number;
  /** Backtested days the multiplier comes from. */
  backtestDays: number;
}

const HOUR_MS = 3_600_000;
/** A day's level needs at least this many usable hourly averages. */
const MIN_HOURS_PER_DAY = 12;

/** Checks profile options; throws a RangeError naming the bad field. */
export function assertValidProfileOptions(o: ProfileOptions): void {
  const bad = (field: string, why: string) => {
    throw new RangeError(`profile option ${field} ${why}`);
  };
  if (!(o.coverage > 0 && o.coverage <= 1)) bad('coverage', `must be in (0, 1], got ${o.coverage}`);
  if (o.minCoverage !== undefined && !(o.minCoverage > 0 && o.minCoverage <= 1)) {
    bad('minCoverage', `must be in (0, 1], got ${o.minCoverage}`);
  }
  if (o.coverageCost !== undefined && !(o.coverageCost >= 0 && Number.isFinite(o.coverageCost))) {
    bad('coverageCost', `must be a finite number ≥ 0, got ${o.coverageCost}`);
  }
  if (!(o.margin >= 0 && Number.isFinite(o.margin))) bad('margin', `must be a finite number ≥ 0, got ${o.margin}`);
  if (!(Number.isInteger(o.shapeDays) && o.shapeDays >= 1))
    bad('shapeDays', `must be an integer ≥ 1, got ${o.shapeDays}`);
  if (!(Number.isInteger(o.smoothHours) && o.smoothHours >= 0 && o.smoothHours < 12)) {
    bad('smoothHours', `must be an integer in [0, 11], got ${o.smoothHours}`);
  }
  if (!(Number.isInteger(o.backtestDays) && o.backtestDays >= 1)) {
    bad('backtestDays', `must be an integer ≥ 1, got ${o.backtestDays}`);
  }
  if (o.dayQuantile !== undefined && !(o.dayQuantile >= 0 && o.dayQuantile <= 1)) {
    bad('dayQuantile', `must be in [0, 1], got ${o.dayQuantile}`);
  }
  if (o.weeklyWeeks !== undefined && !(Number.isInteger(o.weeklyWeeks) && o.weeklyWeeks >= 1)) {
    bad('weeklyWeeks', `must be an integer ≥ 1, got ${o.weeklyWeeks}`);
  }
  if (o.weeklyMaxCut !== undefined && !(o.weeklyMaxCut >= 0 && o.weeklyMaxCut <= 1)) {
    bad('weeklyMaxCut', `must be in [0, 1], got ${o.weeklyMaxCut}`);
  }
  if (o.fallbackDays !== undefined && !(Number.isInteger(o.fallbackDays) && o.fallbackDays >= 1)) {
    bad('fallbackDays', `must be an integer ≥ 1, got ${o.fallbackDays}`);
  }
  if (!(Number.isInteger(o.minBacktestDays) && o.minBacktestDays >= 1 && o.minBacktestDays <= o.backtestDays)) {
    bad('minBacktestDays', `must be an integer in [1, backtestDays], got ${o.minBacktestDays}`);
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The `q` quantile of `values` (non-empty), rounded up to a sample: the ⌈q·n⌉-th smallest. */
function upperQuantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length - 1e-9) - 1))]!;
}

/**
 * The hour factor: the `coverage` quantile of the hours' deviations, or, with `coverageCost` > 0, the deviation
 * between the `minCoverage` and `coverage` quantiles that minimises `uncovered share + coverageCost × deviation /
 * median deviation`: headroom is added only while each extra unit of it (relative to the typical hour) covers more
 * than `coverageCost` of the hours. A quota whose deviations spread smoothly (noise, peaks over averages) gets high
 * coverage cheaply; rare large bursts, which would need several times the typical value all day long to cover a
 * few hours, are left uncovered.
 */
function coverHours(deviations: number[], o: ProfileOptions): number {
  const s = [...deviations].sort((a, b) => a - b);
  const n = s.length;
  const rank = (q: number) => Math.min(n, Math.max(1, Math.ceil(q * n - 1e-9)));
  const hi = rank(o.coverage);
  const cost = o.coverageCost ?? 0;
  if (!(cost > 0)) return s[hi - 1]!;
  const lo = Math.min(hi, rank(o.minCoverage ?? o.coverage));
  const typical = s[rank(0.5) - 1]!;
  if (!(typical > 0)) return s[hi - 1]!;
  let best = hi;
  let bestScore = Number.POSITIVE_INFINITY;
  for (let k = hi; k >= lo; k--) {
    const score = (n - k) / n + (cost * s[k - 1]!) / typical;
    if (score < bestScore - 1e-12) {
      best = k;
      bestScore = score;
    }
  }
  return s[best - 1]!;
}

/**
 * Forecasts the demand to cover in each of the next 24 hours, or returns undefined when the history is too short
 * for `minBacktestDays` backtested days (or usage is all zero): the caller then keeps its other estimator.
 *
 * @param samples hourly usage; non-finite, negative and future samples are ignored (the caller warns about them)
 * @param usePeak judge demand on hourly peaks (capacity quotas) rather than averages (rate quotas)
 */
export function profileForecast(
  samples: readonly UsageSample[],
  usePeak: boolean,
  nowMs: number,
  options: ProfileOptions,
): ProfileForecast | undefined {
  assertValidProfileOptions(options);
  const base = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  // Days (24 h windows) back from `base`: the target day is 0; day j ≥ 1 covers [base − 24j h, base − 24(j−1) h).
  const lookback = options.weekly ? 7 * (options.weeklyWeeks ?? 1) + 4 : 1;
  const days = options.backtestDays + Math.max(options.shapeDays, lookback) + 1;
  const avg: Float64Array[] = Array.from({ length: days + 1 }, () => new Float64Array(24).fill(Number.NaN));
  const dem: Float64Array[] = Array.from({ length: days + 1 }, () => new Float64Array(24).fill(Number.NaN));
  for (const s of samples) {
    if (!Number.isFinite(s.hourStartMs) || s.hourStartMs > nowMs) continue;
    if (!(Number.isFinite(s.avg) && Number.isFinite(s.peak) && s.avg >= 0 && s.peak >= 0)) continue;
    const d = Math.floor((s.hourStartMs - base) / HOUR_MS);
    if (d >= 0) continue;
    const j = Math.floor((-d - 1) / 24) + 1;
    if (j > days) continue;
    const i = d + 24 * j;
    avg[j]![i] = s.avg;
    dem[j]![i] = usePeak ? Math.max(s.peak, s.avg) : s.avg;
  }
  const level = new Float64Array(days + 1).fill(Number.NaN);
  for (let j = 1; j <= days; j++) {
    const xs = [...avg[j]!].filter((v) => Number.isFinite(v));
    if (xs.length >= MIN_HOURS_PER_DAY) {
      const m = median(xs);
      if (m > 0) level[j] = m;
    }
  }
  const lv = (j: number) => (j <= days ? level[j]! : Number.NaN);

  /** Forecast of the hourly averages of day `j0` from days j0+1 onwards; undefined when it cannot be made. */
  const forecastAt = (j0: number): { hourly: number[]; level: number; model: 'weekly' | 'recent' } | undefined => {
    const yesterday = lv(j0 + 1);
    if (!Number.isFinite(yesterday)) return undefined;
    // Without the weekly factor, a dip of a day or two (a weekend) is not known to end: cover the highest level
    // of the last `fallbackDays` days.
    let lev = yesterday;
    for (let j = j0 + 2; j <= j0 + (options.fallbackDays ?? 3); j++) {
      if (Number.isFinite(lv(j))) lev = Math.max(lev, lv(j));
    }
    let model: 'weekly' | 'recent' = 'recent';
    if (options.weekly) {
      // Weekly factor of day j: its level over the median level of the 7 days centred on it (j−3 … j+3), so a
      // weekend dip shows and a step change (4 of the 7 days on one side of it) does not.
      const factor = (j: number): number => {
        const around: number[] = [];
        for (let k = j - 3; k <= j + 3; k++) {
          if (k > j0 && Number.isFinite(lv(k))) around.push(lv(k));
        }
        return around.length === 7 && Number.isFinite(lv(j)) ? lv(j) / median(around) : Number.NaN;
      };
      // The change from yesterday's weekday to the target's, seen in each of the last `weeklyWeeks` weeks; the
      // median of them, so that one odd week (a step change next to a weekend) is outvoted once there are three.
      const changes: number[] = [];
      for (let w = 1; w <= (options.weeklyWeeks ?? 1); w++) {
        const same = factor(j0 + 7 * w);
        const before = factor(j0 + 7 * w + 1);
        if (Number.isFinite(same) && Number.isFinite(before)) changes.push(same / before);
      }
      if (changes.length > 0) {
        // Yesterday with its weekday's factor taken out and the target weekday's put in; a cut below the recent
        // high is bounded by weeklyMaxCut (a step change next to a weekend can fool the factors for a day).
        lev = Math.max(yesterday * median(changes), lev * (1 - (options.weeklyMaxCut ?? 0.5)));
        model = 'weekly';
      }
    }
    const hourly: number[] = [];
    for (let i = 0; i < 24; i++) {
      const ratios: number[] = [];
      for (let j = j0 + 1; j <= Math.min(days, j0 + options.shapeDays); j++) {
        const l = level[j]!;
        if (!Number.isFinite(l)) continue;
        for (let di = -options.smoothHours; di <= options.smoothHours; di++) {
          const v = avg[j]![(i + di + 24) % 24]!;
          if (Number.isFinite(v)) ratios.push(v / l);
        }
      }
      if (ratios.length === 0) return undefined;
      hourly.push(lev * median(ratios));
    }
    return { hourly, level: lev, model };
  };

  // Replay the last days: each hour's demand over its forecast, split into the day's level error (the median
  // ratio of the day) and the hour's own deviation from it (peaks over averages, noise, bursts).
  const dayErrors: number[] = [];
  const hourRatios: number[] = [];
  for (let j0 = 1; j0 <= options.backtestDays; j0++) {
    const f = forecastAt(j0);
    if (!f) continue;
    const ratios: number[] = [];
    for (let i = 0; i < 24; i++) {
      const u = dem[j0]![i]!;
      const p = f.hourly[i]!;
      if (Number.isFinite(u) && p > 0) ratios.push(u / p);
    }
    if (ratios.length < MIN_HOURS_PER_DAY) continue;
    const e = median(ratios);
    if (!(e > 0)) continue;
    dayErrors.push(e);
    for (const r of ratios) hourRatios.push(r / e);
  }
  if (dayErrors.length < options.minBacktestDays) return undefined;
  const target = forecastAt(0);
  if (!target) return undefined;
  const hourFactor = coverHours(hourRatios, options);
  const levelFactor = upperQuantile(dayErrors, options.dayQuantile ?? 0.5);
  const multiplier = hourFactor * levelFactor;
  const k = multiplier * (1 + options.margin);
  return {
    hourly: target.hourly.map((v) => v * k),
    startMs: base,
    level: target.level,
    levelModel: target.model,
    multiplier,
    hourFactor,
    levelFactor,
    backtestDays: dayErrors.length,
  };
}
