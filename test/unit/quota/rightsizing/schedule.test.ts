import { describe, expect, it } from 'vitest';
import { simulate, summarize, type SimConfig } from '../../../../bench/quota/simulate.js';
import { generateTraces, mulberry32 } from '../../../../bench/quota/traces.js';
import {
  defaultPolicy,
  recommend,
  type RecommenderPolicy,
  type UsageSample,
} from '../../../../lib/quota/rightsizing/recommend.js';
import {
  alignScheduleWithBudget,
  defaultScheduleOptions,
  diurnality,
  recommendSchedule,
  slotOf,
  type ScheduleBudgetItem,
  type ScheduleOptions,
} from '../../../../lib/quota/rightsizing/schedule.js';

const HOUR = 3_600_000;
/** UTC midnight, so hour index h of a series is UTC hour h % 24. */
const NOW = Date.UTC(2026, 10, 26);

/** `days` days of hourly samples ending at NOW (hour 0 of the first day is UTC midnight). */
function series(days: number, f: (h: number) => number, peakFactor = 1): UsageSample[] {
  const hours = days * 24;
  return Array.from({ length: hours }, (_, h) => {
    const avg = f(h);
    return { hourStartMs: NOW - (hours - h) * HOUR, avg, peak: avg * peakFactor };
  });
}

/** Daytime high (12:00 UTC), night low: 100 ± 60. */
const diurnal = (h: number) => 100 + 60 * Math.sin((2 * Math.PI * ((h % 24) - 6)) / 24);

function plain(overrides: Partial<RecommenderPolicy> = {}): RecommenderPolicy {
  return {
    halfLifeHours: 24,
    targetPercentile: 1,
    safetyMargin: 0,
    usePeak: false,
    trendHorizonHours: 0,
    burstAllowance: 0,
    floor: 1,
    ceiling: 1e9,
    maxStepUpRatio: 100,
    maxStepDownRatio: 0.99,
    minSamples: 24,
    ...overrides,
  };
}

const options = (o: Partial<ScheduleOptions> = {}): ScheduleOptions => ({
  slotHours: 4,
  minSlotSamples: 6,
  minPeriodicity: 0.5,
  minSpread: 0.1,
  ...o,
});

describe('slotOf and diurnality', () => {
  it('maps UTC hours to slots', () => {
    expect(slotOf(NOW, 4)).toBe(0);
    expect(slotOf(NOW + 5 * HOUR, 4)).toBe(1);
    expect(slotOf(NOW + 23 * HOUR, 2)).toBe(11);
    expect(slotOf(NOW - HOUR, 1)).toBe(23);
  });

  it('scores a clean daily cycle near 1, noise near 0, too little data 0', () => {
    const rand = mulberry32(7);
    expect(diurnality(series(7, diurnal), false, NOW)).toBeGreaterThan(0.9);
    expect(
      Math.abs(
        diurnality(
          series(7, () => 100 * (1 + rand())),
          false,
          NOW,
        ),
      ),
    ).toBeLessThan(0.3);
    expect(diurnality(series(1, diurnal), false, NOW)).toBe(0);
  });

  it('does not take growth between days for a daily pattern', () => {
    // Flat within each day, doubling day by day: day means are removed, nothing periodic is left.
    expect(
      diurnality(
        series(7, (h) => 100 * 2 ** Math.floor(h / 24)),
        false,
        NOW,
      ),
    ).toBe(0);
  });
});

describe('recommendSchedule', () => {
  it('follows the daily cycle slot by slot, with the flat value as the peak slot', () => {
    const samples = series(7, diurnal);
    const r = recommendSchedule(160, samples, plain(), NOW, options());
    expect(r.mode).toBe('schedule');
    expect(r.values).toHaveLength(6);
    // Peak at 12:00 UTC (slot 12–16 h), trough at 00:00 (slot 0–4 h).
    expect(Math.max(...r.values)).toBe(r.values[3]);
    expect(r.values[0]!).toBeLessThan(r.values[3]! * 0.6);
    // p100 per slot ≤ p100 over the day; the flat recommendation is the plain one.
    const flat = recommend(160, samples, plain(), NOW);
    expect(r.flat.value).toBe(flat.value);
    for (const v of r.values) expect(v).toBeLessThanOrEqual(flat.value);
    // Each slot covers its own hours' usage.
    for (const s of samples) expect(r.values[slotOf(s.hourStartMs, 4)]!).toBeGreaterThanOrEqual(s.avg);
    expect(r.reason).toMatch(/time-of-day schedule, 6 slots of 4 h/);
  });

  it('stays flat when usage has no daily structure', () => {
    const rand = mulberry32(3);
    const samples = series(7, () => 100 * (1 + rand()));
    const r = recommendSchedule(200, samples, plain(), NOW, options());
    expect(r.mode).toBe('flat');
    expect(new Set(r.values)).toEqual(new Set([recommend(200, samples, plain(), NOW).value]));
    expect(r.reason).toMatch(/no daily pattern/);
  });

  it('stays flat when the slots differ too little, even if periodic', () => {
    const r = recommendSchedule(
      200,
      series(7, (h) => 100 + 2 * Math.sin((2 * Math.PI * (h % 24)) / 24)),
      plain(),
      NOW,
      options({ minSpread: 0.1 }),
    );
    expect(r.periodicity).toBeGreaterThan(0.5);
    expect(r.mode).toBe('flat');
    expect(r.reason).toMatch(/slots differ too little/);
  });

  it('gives a slot with too few samples the flat value', () => {
    // Usage only reported for UTC hours 0–11.
    const samples = series(7, diurnal).filter((s) => slotOf(s.hourStartMs, 1) < 12);
    const r = recommendSchedule(160, samples, plain({ minSamples: 24 }), NOW, options({ minPeriodicity: -1 }));
    expect(r.mode).toBe('schedule');
    for (const s of r.slots.slice(3)) {
      expect(s.fallback).toBe(true);
      expect(s.value).toBe(r.flat.value);
    }
    expect(r.slots[0]!.fallback).toBe(false);
    expect(r.warnings.join(' ')).toMatch(/3 slot\(s\) with fewer than 6 samples use the flat value/);
  });

  it('applies the step limit, floor and margin per slot against the slot in force', () => {
    const samples = series(7, diurnal);
    const r = recommendSchedule(
      1000,
      samples,
      plain({ maxStepDownRatio: 0.5 }),
      NOW,
      options({ minPeriodicity: -1, minSpread: 0 }),
    );
    // Every slot wants ≤ 160 but may only halve from 1000 in one step.
    expect(r.values.every((v) => v === 500)).toBe(true);
    const floored = recommendSchedule(160, samples, plain({ floor: 90 }), NOW, options());
    expect(Math.min(...floored.values)).toBe(90);
    const current = [40, 40, 40, 300, 300, 300];
    const stepped = recommendSchedule(
      current,
      samples,
      plain({ maxStepUpRatio: 1, maxStepDownRatio: 0.2 }),
      NOW,
      options(),
    );
    expect(stepped.values[0]).toBeLessThanOrEqual(80);
    expect(stepped.values[3]).toBe(240);
    const withMargin = recommendSchedule(160, samples, plain(), NOW, options({ slotOverrides: { safetyMargin: 0.5 } }));
    const without = recommendSchedule(160, samples, plain(), NOW, options());
    withMargin.values.forEach((v, k) => expect(v).toBeCloseTo(without.values[k]! * 1.5, 0));
  });

  it('sizes memory on peaks per slot', () => {
    const policy = { ...defaultPolicy('memory'), safetyMargin: 0 };
    const r = recommendSchedule(
      4096,
      series(7, (h) => 10 * diurnal(h), 1.2),
      policy,
      NOW,
      {
        ...defaultScheduleOptions('memory'),
        slotOverrides: { safetyMargin: 0 },
      },
    );
    expect(r.mode).toBe('schedule');
    expect(Math.max(...r.values)).toBeGreaterThanOrEqual(1600 * 1.2);
  });

  it('converts a schedule with another slot size, taking the highest overlapping value', () => {
    const r = recommendSchedule([100, 200], series(7, diurnal), plain(), NOW, options());
    expect(r.warnings.join(' ')).toMatch(/slot size changed from 12 h to 4 h/);
    expect(() => recommendSchedule([1, 2, 3, 4, 5], [], plain(), NOW, options())).toThrow(/divisor-of-24/);
  });

  it('rejects bad options', () => {
    expect(() => recommendSchedule(1, [], plain(), NOW, options({ slotHours: 5 }))).toThrow(/slotHours/);
    expect(() => recommendSchedule(1, [], plain(), NOW, options({ minSlotSamples: 0 }))).toThrow(/minSlotSamples/);
    expect(() => recommendSchedule(1, [], plain(), NOW, options({ minSpread: 2 }))).toThrow(/minSpread/);
  });

  it('keeps the current value (flat) when there is no data at all', () => {
    const r = recommendSchedule(77, [], plain(), NOW, options());
    expect(r.mode).toBe('flat');
    expect(r.values).toEqual(new Array(6).fill(77));
  });
});

describe('alignScheduleWithBudget', () => {
  const items: ScheduleBudgetItem[] = [
    {
      quotaId: 'a',
      tier: 'standard',
      priority: 2,
      resource: 'vcores',
      guaranteed: 1,
      recommendedSchedule: [10, 20],
      unitPricePerHour: 1,
    },
    {
      quotaId: 'b',
      tier: 'best-effort',
      priority: 1,
      resource: 'vcores',
      guaranteed: 1,
      recommendedSchedule: [20, 10],
      unitPricePerHour: 1,
    },
  ];

  it('prices a schedule as the sum over its hours and leaves it alone within budget', () => {
    const r = alignScheduleWithBudget(items, 30, { kind: 'water-fill' });
    expect(r.spendBeforePerDay).toBe((10 + 20 + 20 + 10) * 12);
    expect(r.items.map((i) => i.alignedSchedule)).toEqual([
      [10, 20],
      [20, 10],
    ]);
    expect(r.overBudget).toBe(false);
    expect(r.slotsOverBudget).toBe(0);
  });

  it('every-slot: each slot fits the hourly budget', () => {
    const r = alignScheduleWithBudget(items, 24, {
      kind: 'tier-cut',
      cutByTier: { standard: 0.1, 'best-effort': 0.25 },
      scaleToFit: true,
    });
    for (let s = 0; s < 2; s++) {
      expect(r.items.reduce((sum, it) => sum + it.alignedSchedule[s]!, 0)).toBeLessThanOrEqual(24 + 1e-6);
    }
    expect(r.slotsOverBudget).toBe(0);
    expect(r.items[1]!.cutReason).toMatch(/slot 0:00 over budget/);
  });

  it('daily-total: only the day must fit; slots keep their shape', () => {
    const r = alignScheduleWithBudget(items, 25, { kind: 'water-fill' }, 'daily-total');
    expect(r.spendAfterPerDay).toBeLessThanOrEqual(25 * 24 + 1e-6);
    expect(r.overBudget).toBe(false);
    const [a, b] = r.items;
    expect(a!.alignedSchedule[1]! / a!.alignedSchedule[0]!).toBeCloseTo(2, 6);
    expect(b!.alignedSchedule[0]! / b!.alignedSchedule[1]!).toBeCloseTo(2, 6);
  });

  it('rejects schedules of different lengths', () => {
    expect(() =>
      alignScheduleWithBudget([items[0]!, { ...items[1]!, recommendedSchedule: [1, 2, 3] }], 10, {
        kind: 'water-fill',
      }),
    ).toThrow(/same divisor-of-24 number of slots/);
  });
});

describe('quota simulator, time-of-day mode', () => {
  const traces = generateTraces(3, 25, 6);
  const config = (budgetAlignment: boolean): SimConfig => ({
    cadenceHours: 24,
    staticHeadroom: 1.5,
    oracleSlotHours: 2,
    ours: {
      policy: defaultPolicy,
      upDeadband: 0,
      downDeadband: 0.05,
      budgetAlignment,
      cutByTier: { critical: 0, standard: 0.1, 'best-effort': 0.25 },
      cutWeightByResource: { memory: 0.25 },
      budgetStrategy: 'tier-cut-scaled',
      timeOfDay: { options: defaultScheduleOptions },
    },
  });

  it('stays within every group budget in every hour, with at most one change a day per quota', () => {
    const out = simulate(traces, 'ours', config(true));
    expect(out.groupHoursOverBudget).toBe(0);
    for (const q of out.quotas) {
      expect(q.changes).toBeLessThanOrEqual(6);
      expect(q.plans).toBe(6);
    }
    const s = summarize(out, undefined, traces.evalHours);
    expect(s.scheduledShare).toBeGreaterThan(0);
    expect(s.inDaySwitches).toBeGreaterThan(0);
  });

  it('the schedule oracle never violates and is leaner than the daily oracle', () => {
    const flat = summarize(simulate(traces, 'oracle', config(false)), undefined, traces.evalHours);
    const tod = summarize(simulate(traces, 'oracle-tod', config(false)), undefined, traces.evalHours);
    expect(tod.violationHours).toBe(0);
    expect(tod.slack).toBeLessThan(flat.slack);
    expect(flat.inDaySwitches).toBe(0);
    expect(tod.inDaySwitches).toBeGreaterThan(0);
  });
});
