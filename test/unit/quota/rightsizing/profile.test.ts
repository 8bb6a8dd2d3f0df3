import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../../bench/quota/traces.js';
import {
  assertValidProfileOptions,
  profileForecast,
  type ProfileOptions,
} from '../../../../lib/quota/rightsizing/profile.js';
import {
  defaultPolicy,
  limitValue,
  recommend,
  type QuotaResource,
  type UsageSample,
} from '../../../../lib/quota/rightsizing/recommend.js';
import {
  defaultScheduleOptions,
  recommendSchedule,
  scheduleClassOf,
  type ScheduleOptions,
} from '../../../../lib/quota/rightsizing/schedule.js';

const HOUR = 3_600_000;
/** UTC midnight: hour index h of a series is UTC hour h % 24, day index ⌊h / 24⌋. */
const NOW = Date.UTC(2026, 10, 26);

/** `days` days of hourly samples ending at NOW; `f(h, day)` gives the average, `peak(h, avg)` the peak. */
function series(
  days: number,
  f: (h: number, day: number) => number,
  peak: (h: number, avg: number) => number = (_h, a) => a,
): UsageSample[] {
  const hours = days * 24;
  return Array.from({ length: hours }, (_, h) => {
    const avg = f(h, Math.floor(h / 24));
    return { hourStartMs: NOW - (hours - h) * HOUR, avg, peak: peak(h, avg) };
  });
}

const diurnal = (h: number) => 100 + 50 * Math.sin((2 * Math.PI * ((h % 24) - 6)) / 24);

const opts = (o: Partial<ProfileOptions> = {}): ProfileOptions => ({
  coverage: 1,
  margin: 0,
  shapeDays: 7,
  smoothHours: 0,
  backtestDays: 7,
  minBacktestDays: 2,
  weekly: true,
  ...o,
});

describe('profileForecast', () => {
  it('needs minBacktestDays replayable days, else returns undefined', () => {
    // Day 1 can be replayed from day 2 only: 2 days of history give one backtested day.
    expect(profileForecast(series(2, diurnal), false, NOW, opts())).toBeUndefined();
    expect(profileForecast(series(3, diurnal), false, NOW, opts())).toBeDefined();
    expect(
      profileForecast(
        series(3, () => 0),
        false,
        NOW,
        opts(),
      ),
    ).toBeUndefined();
  });

  it('forecasts a steady daily cycle hour by hour with a multiplier of 1', () => {
    const f = profileForecast(series(14, diurnal), false, NOW, opts())!;
    expect(f.multiplier).toBeCloseTo(1, 9);
    expect(f.startMs).toBe(NOW);
    f.hourly.forEach((v, i) => expect(v).toBeCloseTo(diurnal(i), 6));
  });

  it('learns the peak-to-average ratio of capacity quotas judged on peaks', () => {
    const s = series(14, diurnal, (_h, a) => a * 1.4);
    const onPeaks = profileForecast(s, true, NOW, opts())!;
    expect(onPeaks.multiplier).toBeCloseTo(1.4, 9);
    onPeaks.hourly.forEach((v, i) => expect(v).toBeCloseTo(diurnal(i) * 1.4, 6));
    // A rate quota is judged on averages: the peaks do not matter.
    expect(profileForecast(s, false, NOW, opts())!.multiplier).toBeCloseTo(1, 9);
  });

  it('covers the chosen share of hours: a rare deviation is left out at a low coverage, covered at a high one', () => {
    // Every 25th hour runs 3× its level (4% of hours).
    const s = series(
      14,
      () => 100,
      (h, a) => (h % 25 === 0 ? 3 * a : a),
    );
    const low = profileForecast(s, true, NOW, opts({ coverage: 0.9 }))!;
    const high = profileForecast(s, true, NOW, opts({ coverage: 0.99 }))!;
    expect(low.hourFactor).toBeCloseTo(1, 9);
    expect(high.hourFactor).toBeCloseTo(3, 9);
    expect(Math.max(...high.hourly)).toBeCloseTo(300, 6);
  });

  it('follows a weekly dip: a weekend day forecast low, the day after it back at the weekday level', () => {
    // Days 5 and 6 of every week (counted from the series' first day) run at 60%.
    const weekend = (day: number) => day % 7 === 5 || day % 7 === 6;
    const level = (h: number, day: number) => diurnal(h) * (weekend(day) ? 0.6 : 1);
    // 21 days: the target (day 21) is day 0 of a week, right after the dip.
    const after = profileForecast(series(21, level), false, NOW, opts())!;
    expect(after.levelModel).toBe('weekly');
    after.hourly.forEach((v, i) => expect(v).toBeCloseTo(diurnal(i), 6));
    // 19 days: the target (day 19) is day 5, the first day of the dip.
    const into = profileForecast(series(19, level), false, NOW, opts())!;
    expect(into.levelModel).toBe('weekly');
    into.hourly.forEach((v, i) => expect(v).toBeCloseTo(0.6 * diurnal(i), 6));
    // Without the weekly factor the dip is not known to end: the highest recent level is covered after it.
    const noWeekly = profileForecast(series(21, level), false, NOW, opts({ weekly: false }))!;
    expect(noWeekly.levelModel).toBe('recent');
    noWeekly.hourly.forEach((v, i) => expect(v).toBeCloseTo(diurnal(i), 6));
  });

  it('never lets the weekly factor cut below (1 − weeklyMaxCut) × the recent high', () => {
    // Days 5 and 6 of each week at 20%: the weekly factor asks for a cut of 80%.
    const level = (h: number, day: number) => (day % 7 === 5 || day % 7 === 6 ? 20 : 100);
    const free = profileForecast(series(19, level), false, NOW, opts({ weeklyMaxCut: 1 }))!;
    expect(free.level).toBeCloseTo(20, 6);
    const bounded = profileForecast(series(19, level), false, NOW, opts({ weeklyMaxCut: 0.5 }))!;
    expect(bounded.level).toBeCloseTo(50, 6);
    const never = profileForecast(series(19, level), false, NOW, opts({ weeklyMaxCut: 0 }))!;
    expect(never.level).toBeCloseTo(100, 6);
  });

  it('outvotes a week whose weekday change was distorted by a step change next to the weekend (weeklyWeeks)', () => {
    // Weekend days (day % 7 = 5, 6) at 60%, and a ×0.5 step on day 20, itself a weekend day. The target, day 27, is a
    // weekend day after the step: its level is 100 × 0.6 × 0.5 = 30.
    const level = (_h: number, day: number) => (day % 7 === 5 || day % 7 === 6 ? 0.6 : 1) * (day >= 20 ? 0.5 : 1) * 100;
    const o = opts({ weeklyMaxCut: 1 });
    expect(profileForecast(series(27, level), false, NOW, { ...o, weeklyWeeks: 1 })!.level).toBeCloseTo(18, 6);
    expect(profileForecast(series(27, level), false, NOW, { ...o, weeklyWeeks: 3 })!.level).toBeCloseTo(30, 6);
  });

  it('with coverageCost, leaves rare large bursts uncovered but covers a smooth spread of peaks', () => {
    // One hour in ten runs 3× its level: covering it means 3× the typical value all day for 10% of the hours.
    const bursty = series(
      14,
      () => 100,
      (h, a) => (h % 10 === 0 ? 3 * a : a),
    );
    const o = opts({ coverage: 0.99, minCoverage: 0.8 });
    expect(profileForecast(bursty, true, NOW, { ...o, coverageCost: 0.5 })!.hourFactor).toBeCloseTo(1, 9);
    // Cheap enough headroom is bought: at a cost of 0.01 the bursts are covered.
    expect(profileForecast(bursty, true, NOW, { ...o, coverageCost: 0.01 })!.hourFactor).toBeCloseTo(3, 9);
    // Without a cost, the coverage quantile as such.
    expect(profileForecast(bursty, true, NOW, o)!.hourFactor).toBeCloseTo(3, 9);
    // Peaks spread evenly up to +20% over the average: each bit of headroom covers many hours, so the 99% is kept.
    const rand = mulberry32(11);
    const smooth = series(
      14,
      () => 100,
      (_h, a) => a * (1 + 0.2 * rand()),
    );
    const withCost = profileForecast(smooth, true, NOW, { ...o, coverageCost: 0.5 })!;
    const plain = profileForecast(smooth, true, NOW, o)!;
    expect(withCost.hourFactor).toBe(plain.hourFactor);
    expect(withCost.multiplier).toBeGreaterThan(1.18);
  });

  it('takes a step change as one day of level error, not as hourly noise', () => {
    // ×2 three days before now: one backtested day saw its level doubled, the others were forecast exactly.
    const s = series(14, (_h, day) => (day >= 11 ? 200 : 100));
    const f = profileForecast(s, false, NOW, opts({ dayQuantile: 0.5 }))!;
    expect(f.hourFactor).toBeCloseTo(1, 9);
    expect(f.levelFactor).toBeCloseTo(1, 9);
    expect(f.level).toBeCloseTo(200, 6);
    // The worst day's level error is covered when asked for.
    expect(profileForecast(s, false, NOW, opts({ dayQuantile: 1 }))!.levelFactor).toBeCloseTo(2, 9);
  });

  it('adds the margin on top and does not depend on sample order', () => {
    const rand = mulberry32(3);
    const s = series(14, (h) => diurnal(h) * (0.9 + 0.2 * rand()));
    const a = profileForecast(s, false, NOW, opts({ coverage: 0.95, margin: 0.1, smoothHours: 1 }))!;
    const shuffled = [...s].reverse();
    const b = profileForecast(shuffled, false, NOW, opts({ coverage: 0.95, margin: 0.1, smoothHours: 1 }))!;
    expect(b).toEqual(a);
    const plain = profileForecast(s, false, NOW, opts({ coverage: 0.95, margin: 0, smoothHours: 1 }))!;
    a.hourly.forEach((v, i) => expect(v).toBeCloseTo(plain.hourly[i]! * 1.1, 9));
  });

  it('ignores non-finite, negative and future samples', () => {
    const s = series(14, diurnal);
    const noisy = [
      ...s,
      { hourStartMs: NOW + HOUR, avg: 1e9, peak: 1e9 },
      { hourStartMs: NOW - HOUR, avg: Number.NaN, peak: 1 },
      { hourStartMs: NOW - 2 * HOUR, avg: -5, peak: -5 },
    ];
    // Dropped before they are placed: they neither add an hour nor overwrite a real one.
    expect(profileForecast(noisy, false, NOW, opts())).toEqual(profileForecast(s, false, NOW, opts()));
  });

  it('rejects invalid options with the field named', () => {
    expect(() => assertValidProfileOptions(opts({ coverage: 0 }))).toThrow(/coverage/);
    expect(() => assertValidProfileOptions(opts({ margin: -1 }))).toThrow(/margin/);
    expect(() => assertValidProfileOptions(opts({ shapeDays: 0 }))).toThrow(/shapeDays/);
    expect(() => assertValidProfileOptions(opts({ smoothHours: 12 }))).toThrow(/smoothHours/);
    expect(() => assertValidProfileOptions(opts({ backtestDays: 2, minBacktestDays: 3 }))).toThrow(/minBacktestDays/);
    expect(() => assertValidProfileOptions(opts({ dayQuantile: 2 }))).toThrow(/dayQuantile/);
    expect(() => assertValidProfileOptions(opts({ weeklyMaxCut: -0.1 }))).toThrow(/weeklyMaxCut/);
    expect(() => assertValidProfileOptions(opts({ fallbackDays: 0 }))).toThrow(/fallbackDays/);
    expect(() => assertValidProfileOptions(opts({ weeklyWeeks: 0 }))).toThrow(/weeklyWeeks/);
    expect(() => assertValidProfileOptions(opts({ minCoverage: 0 }))).toThrow(/minCoverage/);
    expect(() => assertValidProfileOptions(opts({ coverageCost: -1 }))).toThrow(/coverageCost/);
  });
});

describe('recommendSchedule with the profile estimator', () => {
  const profileOptions = (o: Partial<ScheduleOptions> = {}): ScheduleOptions => ({
    slotHours: 2,
    minSlotSamples: 6,
    minPeriodicity: 0.5,
    minSpread: 0.1,
    estimator: 'profile',
    profile: opts(),
    ...o,
  });
  const policy = { ...defaultPolicy('qps'), maxStepUpRatio: 100, maxStepDownRatio: 0.99 };

  it('sets each slot to its highest forecast hour, and says how', () => {
    const r = recommendSchedule(100, series(14, diurnal), policy, NOW, profileOptions());
    expect(r.mode).toBe('schedule');
    r.values.forEach((v, k) => {
      const want = Math.max(diurnal(2 * k), diurnal(2 * k + 1));
      expect(v).toBe(Math.ceil(want - 1e-9));
    });
    expect(r.slots[0]!.recommendation!.reason).toMatch(/profile forecast .* error multiplier 1 /);
  });

  it('falls back to the histogram slots, with a warning, while the history is too short', () => {
    const short = series(2, diurnal);
    const r = recommendSchedule(100, short, policy, NOW, profileOptions({ minSlotSamples: 2 }));
    const h = recommendSchedule(100, short, policy, NOW, profileOptions({ minSlotSamples: 2, estimator: 'histogram' }));
    expect(r.values).toEqual(h.values);
    expect(r.warnings.join(' ')).toMatch(/too little history for the profile forecast/);
  });

  it('goes through the floor, the step limits and the rounding per slot, and never to zero', () => {
    const stepped = recommendSchedule(
      400,
      series(14, diurnal),
      { ...policy, maxStepDownRatio: 0.5 },
      NOW,
      profileOptions(),
    );
    for (const v of stepped.values) expect(v).toBeGreaterThanOrEqual(200);
    const zero = recommendSchedule(
      50,
      series(14, () => 0),
      policy,
      NOW,
      profileOptions(),
    );
    for (const v of zero.values) expect(v).toBeGreaterThanOrEqual(policy.floor);
  });

  it('keeps the current value when there is no usage data', () => {
    const r = recommendSchedule(77, [], policy, NOW, profileOptions());
    expect(r.mode).toBe('flat');
    expect(r.values.every((v) => v === 77)).toBe(true);
  });

  it('rejects a profile estimator without profile options', () => {
    expect(() => recommendSchedule(1, [], policy, NOW, { ...profileOptions(), profile: undefined })).toThrow(
      /profile options/,
    );
  });

  it('ships valid defaults per resource class', () => {
    const resources: QuotaResource[] = ['memory', 'vcores', 'apps', 'qps', 'bandwidth', 'custom'];
    expect(resources.map(scheduleClassOf)).toEqual(['memory', 'peak', 'peak', 'rate', 'rate', 'peak']);
    for (const r of resources) {
      const o = defaultScheduleOptions(r);
      expect(o.estimator).toBe('profile');
      expect(() => assertValidProfileOptions(o.profile!)).not.toThrow();
      expect(() => recommendSchedule(1, series(14, diurnal), defaultPolicy(r), NOW, o)).not.toThrow();
    }
  });
});

describe('limitValue', () => {
  it('gives the value recommend gives for the same estimate', () => {
    const p = defaultPolicy('vcores');
    const s = series(3, () => 7.33);
    for (const current of [0, 1, 7, 20, 100]) {
      const rec = recommend(current, s, p, NOW);
      expect(limitValue(rec.raw, current, p).value).toBe(rec.value);
    }
  });
});
