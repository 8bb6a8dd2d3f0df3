import { describe, expect, it } from 'vitest';
import { defaultRightsizer } from '../../../activities/quota-activities.js';
import { rateLimitRulesOf } from '../../../lib/quota/dispatch/rate-limit-rules.js';
import { yunikornQueuesDocument } from '../../../lib/quota/dispatch/yunikorn.js';
import { parseRateLimitRules, RateLimiter } from '../../../lib/quota/limiter/index.js';
import { buildPlan, type Rightsizer } from '../../../lib/quota/plan.js';
import { formatSlots, scheduleProblems, specInForce } from '../../../lib/quota/schedule.js';
import type { HourlyUsage, UsageByQuota } from '../../../lib/quota/usage.js';
import { QuotaRightsizeInput, QuotaSchedule, type Quota, type QuotaSpec } from '../../../schemas/quota.js';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-26T00:00:00Z');

function quota(id: string, spec: QuotaSpec, schedule?: QuotaSchedule): Quota {
  const [org, project, workload] = id.split('/') as [string, string, string];
  return {
    id,
    hierarchy: { org, project, workload },
    spec,
    ...(schedule ? { schedule } : {}),
    owners: { users: ['alice'], groups: [] },
    tier: 'standard',
    budgetGroup: 'ads',
    version: 2,
    updatedAt: new Date(0).toISOString(),
    updatedBy: 'test',
  };
}

const capacity = (maxMemoryMb: number): QuotaSpec => ({
  kind: 'capacity',
  guaranteedMemoryMb: 256,
  maxMemoryMb,
  guaranteedVcores: 1,
  maxVcores: 8,
  maxApps: 10,
});

/** 8 days of memory usage: 6000 MB peaks during 08–20 UTC, 1500 MB otherwise (small deterministic jitter). */
function diurnal(quotaId: string): HourlyUsage[] {
  return Array.from({ length: 192 }, (_, i) => {
    const hourStartMs = NOW - (192 - i) * HOUR;
    const h = new Date(hourStartMs).getUTCHours();
    const base = h >= 8 && h < 20 ? 6000 : 1500;
    const peak = base * (1 + ((i * 7) % 5) / 100);
    return { quotaId, metric: 'memoryMb', hourStartMs, avg: peak * 0.8, p95: peak * 0.9, peak };
  });
}

function flatUsage(quotaId: string): HourlyUsage[] {
  return diurnal(quotaId).map((s) => ({ ...s, avg: 4000, p95: 4200, peak: 4500 }));
}

function usageOf(...series: HourlyUsage[][]): UsageByQuota {
  return new Map(series.map((s) => [s[0]!.quotaId, new Map([[s[0]!.metric, s]])]));
}

describe('time-of-day rightsizing in the planner', () => {
  const config = QuotaRightsizeInput.parse({ budgetGroup: 'ads', asOf: new Date(NOW).toISOString() });

  it('plans a schedule for a diurnal quota and a flat value otherwise', async () => {
    const seen: Array<QuotaSchedule | null> = [];
    const plan = await buildPlan({
      config,
      quotas: [quota('ads/batch/day', capacity(8192)), quota('ads/batch/steady', capacity(8192))],
      usage: usageOf(diurnal('ads/batch/day'), flatUsage('ads/batch/steady')),
      nowMs: NOW,
      rightsizer: defaultRightsizer,
      validate: async (_q, _spec, schedule) => {
        seen.push(schedule);
        return [];
      },
    });
    const day = plan.entries.find((e) => e.quotaId === 'ads/batch/day')!;
    const steady = plan.entries.find((e) => e.quotaId === 'ads/batch/steady')!;

    expect(day.scheduleAfter).toBeDefined();
    const slots = day.scheduleAfter!.values.maxMemoryMb!;
    expect(slots).toHaveLength(24 / day.scheduleAfter!.slotHours);
    expect(QuotaSchedule.parse(day.scheduleAfter)).toEqual(day.scheduleAfter);
    const atNight = slots[0]!;
    const atNoon = slots[Math.floor(12 / day.scheduleAfter!.slotHours)]!;
    expect(atNoon).toBeGreaterThan(atNight); // the night slot is step-limited from 8192 in one run
    expect(Math.min(...slots)).toBeGreaterThanOrEqual(256);
    // The spec keeps the highest slot; the gate looks at the largest slot change.
    expect(day.after.kind === 'capacity' && day.after.maxMemoryMb).toBe(Math.max(...slots));
    const mem = day.changes.find((c) => c.field === 'maxMemoryMb')!;
    expect(mem.proposedSlots).toEqual(slots);
    expect(mem.changeRatio).toBeCloseTo(Math.max(...slots.map((v) => Math.abs(v - 8192) / 8192)), 9);
    expect(day.gate).toBe('approval');
    expect(plan.diff).toMatch(/maxMemoryMb: 8192 → 00–\d\dh \d+, .*largest slot change/);
    expect(seen).toContainEqual(day.scheduleAfter);

    // Backward compatible: no daily pattern, no schedule.
    expect(steady.scheduleAfter).toBeUndefined();
    expect(steady.changes.every((c) => c.proposedSlots === undefined)).toBe(true);
  });

  it('keeps a schedule as is when usage is missing, and plans flat values away from one that is no longer diurnal', async () => {
    const sched: QuotaSchedule = { slotHours: 12, values: { maxMemoryMb: [2000, 6000] } };
    const plan = await buildPlan({
      config,
      quotas: [quota('ads/batch/nodata', capacity(6000), sched), quota('ads/batch/steady', capacity(6000), sched)],
      usage: usageOf(flatUsage('ads/batch/steady')),
      nowMs: NOW,
      rightsizer: defaultRightsizer,
    });
    const nodata = plan.entries.find((e) => e.quotaId === 'ads/batch/nodata')!;
    expect(nodata.gate).toBe('none');
    expect(nodata.scheduleAfter).toEqual(sched);
    const steady = plan.entries.find((e) => e.quotaId === 'ads/batch/steady')!;
    expect(steady.scheduleBefore).toEqual(sched);
    expect(steady.scheduleAfter).toBeUndefined();
    expect(steady.gate).not.toBe('none');
    expect(plan.diff).toMatch(/maxMemoryMb: 00–12h 2000, 12–24h 6000 → \d+ all day/);
  });
});

describe('schedules in force', () => {
  const sched: QuotaSchedule = { slotHours: 6, values: { maxMemoryMb: [1000, 3000, 3000, 1000] } };
  const q = quota('ads/batch/day', capacity(3000), sched);

  it('picks the slot of the UTC hour and formats slots readably', () => {
    expect(specInForce(q, Date.parse('2026-11-26T05:59:00Z'))).toMatchObject({ maxMemoryMb: 1000 });
    expect(specInForce(q, Date.parse('2026-11-26T06:00:00Z'))).toMatchObject({ maxMemoryMb: 3000 });
    expect(specInForce(quota('a/b/c', capacity(5)), 0)).toEqual(capacity(5));
    expect(formatSlots(sched.values.maxMemoryMb!, 6)).toBe('00–06h 1000, 06–18h 3000, 18–24h 1000');
  });

  it('validates every slot value', () => {
    expect(scheduleProblems(capacity(3000), sched)).toEqual([]);
    const low = scheduleProblems(capacity(3000), { slotHours: 12, values: { maxMemoryMb: [100, 3000], qps: [1, 0] } });
    expect(low.join('\n')).toMatch(/maxMemoryMb\[0\] \(00–12h\): 100 is below the guarantee 256/);
    expect(low.join('\n')).toMatch(/capacity quota has no field qps/);
    expect(QuotaSchedule.safeParse({ slotHours: 5, values: { qps: [1] } }).success).toBe(false);
    expect(QuotaSchedule.safeParse({ slotHours: 12, values: { qps: [1] } }).success).toBe(false);
  });

  it('renders Yunikorn queues with the value in force at render time', () => {
    const at = (iso: string) =>
      JSON.stringify(yunikornQueuesDocument([q], { atMs: Date.parse(iso) })).match(/"max":\{"memory":"(\w+)"/)?.[1];
    expect(at('2026-11-26T02:00:00Z')).toBe('1000Mi');
    expect(at('2026-11-26T12:00:00Z')).toBe('3000Mi');
  });
});

describe('limiter slot switching', () => {
  it('applies the current UTC hour of a scheduled rule, with an injected clock', () => {
    const rq = quota(
      'ads/api/search',
      { kind: 'rateLimit', qps: 100, bandwidthBytesPerSec: null },
      {
        slotHours: 12,
        values: { qps: [10, 100] },
      },
    );
    const file = parseRateLimitRules(JSON.stringify(rateLimitRulesOf([rq], new Date(NOW))));
    expect(file.rules[0]!.scheduleUtc!.qps).toEqual([...Array(12).fill(10), ...Array(12).fill(100)]);

    let now = Date.parse('2026-11-26T11:59:00Z');
    const limiter = new RateLimiter({ now: () => now });
    limiter.setRules(file.rules);
    expect(limiter.ruleInForceFor('ads/api/search')).toMatchObject({ qps: 10, burst: 10 });
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (limiter.tryAcquire('ads/api/search').allowed) allowed++;
    expect(allowed).toBe(10);

    // Noon: the 100 qps slot. Buckets carry their tokens over (no free refill), then refill at the new rate.
    now = Date.parse('2026-11-26T12:00:00Z');
    expect(limiter.tryAcquire('ads/api/search').allowed).toBe(true);
    expect(limiter.ruleInForceFor('ads/api/search')).toMatchObject({ qps: 100, burst: 100 });
    now += 1000;
    allowed = 0;
    for (let i = 0; i < 500; i++) if (limiter.tryAcquire('ads/api/search').allowed) allowed++;
    expect(allowed).toBe(100);

    // A flat rule is untouched by the clock.
    limiter.setRules([{ key: 'flat', qps: 5, bandwidthBytesPerSec: null }]);
    now = Date.parse('2026-11-26T23:00:00Z');
    expect(limiter.ruleInForceFor('flat')).toMatchObject({ qps: 5 });
  });
});

describe('the spec caps its schedule', () => {
  it('never applies a slot above the spec value (a hand edit that lowered it)', () => {
    const q = quota(
      'ads/api/x',
      { kind: 'rateLimit', qps: 50, bandwidthBytesPerSec: null },
      {
        slotHours: 12,
        values: { qps: [10, 100] },
      },
    );
    expect(specInForce(q, Date.parse('2026-11-26T13:00:00Z'))).toMatchObject({ qps: 50 });
    expect(specInForce(q, Date.parse('2026-11-26T01:00:00Z'))).toMatchObject({ qps: 10 });
    expect(rateLimitRulesOf([q], new Date(NOW)).rules[0]!.scheduleUtc!.qps![13]).toBe(50);
  });
});

describe('time-of-day budget alignment in the planner (alignScheduleWithBudget, hour by hour)', () => {
  /** Memory usage peaking at `busy` MB during UTC hours [from, to), `quiet` otherwise. */
  function shaped(quotaId: string, from: number, to: number, busy: number, quiet: number): HourlyUsage[] {
    return Array.from({ length: 48 }, (_, i) => {
      const hourStartMs = NOW - (48 - i) * HOUR;
      const h = new Date(hourStartMs).getUTCHours();
      const inside = from < to ? h >= from && h < to : h >= from || h < to;
      const peak = inside ? busy : quiet;
      return { quotaId, metric: 'memoryMb', hourStartMs, avg: peak, p95: peak, peak };
    });
  }
  // A transparent rightsizer: the flat value is the highest peak; a schedule has 2 h slots at each slot's highest
  // peak when the day's highest and lowest slots differ by more than 1.5×. The alignment is the real library's.
  const transparent: Rightsizer = {
    recommend: (_r, _current, samples) => ({
      value: Math.max(...samples.map((s) => s.peak)),
      warnings: [],
      reason: 'highest peak',
      floor: 1,
    }),
    recommendSchedule: (_r, _current, samples) => {
      const values = Array.from({ length: 12 }, (_, k) =>
        Math.max(
          ...samples.filter((s) => Math.floor(new Date(s.hourStartMs).getUTCHours() / 2) === k).map((s) => s.peak),
        ),
      );
      const mode = Math.max(...values) > 1.5 * Math.min(...values) ? 'schedule' : 'flat';
      return { mode, slotHours: 2, values, warnings: [], reason: 'slot peaks' };
    },
    align: defaultRightsizer.align,
    alignSchedule: defaultRightsizer.alignSchedule!,
  };
  const cfg = (budgetPerHour: number, budgetStrategy: QuotaRightsizeInput['budgetStrategy']) =>
    QuotaRightsizeInput.parse({
      budgetGroup: 'ads',
      asOf: new Date(NOW).toISOString(),
      budgetPerHour,
      unitPrices: { memoryMb: 0.001 },
      budgetStrategy,
      autoApplyMaxChange: 10,
    });

  it('cuts only the peak slots of a group that is over budget only at its peak', async () => {
    // Peak hours 08–20: 6000 + 2000 MB = 8/h over a budget of 6/h; quiet hours: 2000 + 2000 = 4/h, within it.
    const plan = await buildPlan({
      config: cfg(6, { kind: 'water-fill' }),
      quotas: [quota('ads/batch/day', capacity(8192)), quota('ads/batch/steady', capacity(8192))],
      usage: usageOf(shaped('ads/batch/day', 8, 20, 6000, 2000), shaped('ads/batch/steady', 0, 24, 2000, 2000)),
      nowMs: NOW,
      rightsizer: transparent,
    });
    const day = plan.entries.find((e) => e.quotaId === 'ads/batch/day')!;
    const steady = plan.entries.find((e) => e.quotaId === 'ads/batch/steady')!;
    const slots = day.scheduleAfter!.values.maxMemoryMb!;
    // Water-fill at the peak: guarantees 2 × 256 MB, then steady's whole 1744 MB headroom, day gets the rest.
    expect(slots).toEqual([2000, 2000, 2000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 2000, 2000]);
    expect(day.after).toMatchObject({ maxMemoryMb: 4000 });
    expect(day.changes.find((c) => c.field === 'maxMemoryMb')!.reason).toMatch(/budget: slot 8:00 over budget/);
    expect(steady.scheduleAfter).toBeUndefined();
    expect(steady.after).toMatchObject({ maxMemoryMb: 2000 });
    expect(plan.overBudget).toBe(false);
    // Every hour of the day now fits the budget.
    for (let h = 0; h < 24; h++) expect((slots[Math.floor(h / 2)]! + 2000) * 0.001).toBeLessThanOrEqual(6 + 1e-9);
  });

  it('does not cut quotas whose peaks fall at different hours when every hour fits', async () => {
    // Each hour: one quota at 6000 and the other at 2000 = 8/h, exactly the budget; their peaks together (12/h)
    // would be over it, which is what aligning the highest slots alone would have cut.
    const plan = await buildPlan({
      config: cfg(8, { kind: 'tier-cut', cutByTier: { standard: 0.5 } }),
      quotas: [quota('ads/batch/day', capacity(8192)), quota('ads/batch/night', capacity(8192))],
      usage: usageOf(shaped('ads/batch/day', 8, 20, 6000, 2000), shaped('ads/batch/night', 20, 8, 6000, 2000)),
      nowMs: NOW,
      rightsizer: transparent,
    });
    for (const e of plan.entries) {
      expect(Math.max(...e.scheduleAfter!.values.maxMemoryMb!), e.quotaId).toBe(6000);
      expect(e.changes[0]!.reason, e.quotaId).not.toMatch(/budget/);
    }
    expect(plan.overBudget).toBe(false);
    const flatOnly = await buildPlan({
      config: cfg(8, { kind: 'tier-cut', cutByTier: { standard: 0.5 } }),
      quotas: [quota('ads/batch/day', capacity(8192)), quota('ads/batch/night', capacity(8192))],
      usage: usageOf(shaped('ads/batch/day', 8, 20, 6000, 2000), shaped('ads/batch/night', 20, 8, 6000, 2000)),
      nowMs: NOW,
      rightsizer: { ...transparent, alignSchedule: undefined },
    });
    expect(Math.max(...flatOnly.entries[0]!.scheduleAfter!.values.maxMemoryMb!)).toBe(3000);
  });
});
