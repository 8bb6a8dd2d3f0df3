import { describe, expect, it } from 'vitest';
import { defaultRightsizer } from '../../../activities/quota-activities.js';
import { buildPlan, changeRatio, renderPlanDiff, type Rightsizer } from '../../../lib/quota/plan.js';
import type { HourlyUsage, UsageByQuota } from '../../../lib/quota/usage.js';
import { QuotaRightsizeInput, type Quota, type QuotaSpec, type UsageMetric } from '../../../schemas/quota.js';

const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-26T00:00:00Z');

function quota(id: string, spec: QuotaSpec, tier = 'standard'): Quota {
  const [org, project, workload] = id.split('/') as [string, string, string];
  return {
    id,
    hierarchy: { org, project, workload },
    spec,
    owners: { users: ['alice'], groups: ['ads-team'] },
    tier,
    budgetGroup: 'ads',
    version: 3,
    updatedAt: new Date(0).toISOString(),
    updatedBy: 'test',
  };
}

/** 8 days of flat usage: each hour's peak is `peak`, its average 80% of that. */
function flat(quotaId: string, metric: UsageMetric, peak: number): HourlyUsage[] {
  return Array.from({ length: 192 }, (_, h) => ({
    quotaId,
    metric,
    hourStartMs: NOW - (192 - h) * HOUR,
    avg: peak * 0.8,
    p95: peak * 0.9,
    peak,
  }));
}

function usageOf(...series: HourlyUsage[][]): UsageByQuota {
  const out: UsageByQuota = new Map();
  for (const s of series) {
    const first = s[0]!;
    if (!out.has(first.quotaId)) out.set(first.quotaId, new Map());
    out.get(first.quotaId)!.set(first.metric, s);
  }
  return out;
}

const rate = (qps: number): QuotaSpec => ({ kind: 'rateLimit', qps, bandwidthBytesPerSec: null });

/**
 * A plain recommender, so that these tests pin the planner's rules and not the tuning of lib/quota/rightsizing:
 * peak × 1.1, one step moving at most −30% / +100%. The budget alignment is the real one.
 */
const stubRightsizer: Rightsizer = {
  recommend(_resource, current, samples) {
    const target = Math.max(...samples.map((s) => s.peak)) * 1.1;
    return {
      value: Math.ceil(Math.min(current * 2, Math.max(current * 0.7, target))),
      warnings: [],
      reason: 'stub',
      floor: 1,
    };
  },
  align: defaultRightsizer.align,
};

describe('buildPlan', () => {
  const quotas = [
    quota('ads/api/small', rate(100)),
    quota('ads/api/large', rate(1000)),
    quota('ads/api/nodata', rate(50)),
    quota('ads/batch/etl', {
      kind: 'capacity',
      guaranteedMemoryMb: 3000,
      maxMemoryMb: 4096,
      guaranteedVcores: 1,
      maxVcores: 4,
      maxApps: 5,
    }),
  ];
  const usage = usageOf(
    flat('ads/api/small', 'qps', 95),
    flat('ads/api/large', 'qps', 100),
    flat('ads/batch/etl', 'memoryMb', 1000),
  );

  it('gates small changes to auto and large ones to approval; no usage keeps the value with a warning', async () => {
    const config = QuotaRightsizeInput.parse({ budgetGroup: 'ads', asOf: new Date(NOW).toISOString() });
    const plan = await buildPlan({ config, quotas, usage, nowMs: NOW, rightsizer: stubRightsizer });
    const by = new Map(plan.entries.map((e) => [e.quotaId, e]));

    const small = by.get('ads/api/small')!;
    expect(small.gate).toBe('auto');
    expect(small.status).toBe('pending');
    expect(small.changes[0]!.changeRatio).toBeGreaterThan(0);
    expect(small.changes[0]!.changeRatio).toBeLessThanOrEqual(0.1);

    const large = by.get('ads/api/large')!;
    expect(large.gate).toBe('approval');
    // One step lowers at most 30% (the stub's step limit): 1000 → 700, not to the 110 usage suggests.
    expect(large.after).toEqual(rate(700));
    expect(large.version).toBe(3);

    const nodata = by.get('ads/api/nodata')!;
    expect(nodata).toMatchObject({ gate: 'none', status: 'unchanged', after: rate(50) });
    expect(nodata.warnings.join()).toMatch(/no qps usage in the last 192 h; kept 50/);

    // The max is recommended down, but never below the guarantee; vcores and apps have no usage and stay.
    const etl = by.get('ads/batch/etl')!;
    expect(etl.after).toMatchObject({ maxMemoryMb: 3000, guaranteedMemoryMb: 3000, maxVcores: 4, maxApps: 5 });
    expect(etl.changes.find((c) => c.field === 'maxMemoryMb')!.reason).toMatch(/raised to the guarantee 3000/);
    expect(etl.warnings.some((w) => w.startsWith('maxVcores: no vcores usage'))).toBe(true);

    expect(plan.diff).toContain('~ ads/api/large (rateLimit, tier standard, v3) [approval: pending]');
    expect(plan.diff).toContain('qps: 1000 → 700 (-30.0%)');
    expect(plan.diff).toContain('= ads/api/nodata');
  });

  it('cuts maxima by tier when the group is over budget, and reports spend before and after', async () => {
    const config = QuotaRightsizeInput.parse({
      budgetGroup: 'ads',
      asOf: new Date(NOW).toISOString(),
      budgetPerHour: 1,
      unitPrices: { qps: 0.01 },
      budgetStrategy: { kind: 'tier-cut', cutByTier: { standard: 0.5 } },
    });
    const plan = await buildPlan({ config, quotas, usage, nowMs: NOW, rightsizer: stubRightsizer });
    const large = plan.entries.find((e) => e.quotaId === 'ads/api/large')!;
    expect(large.after).toEqual(rate(350));
    expect(large.changes[0]!.recommended).toBe(700);
    expect(large.changes[0]!.reason).toMatch(/budget/);
    expect(plan.spendBefore).toBeCloseTo((100 + 1000 + 50) * 0.01);
    expect(plan.spendAfter).toBeLessThan(plan.spendBefore);
    expect(plan.budgetPerHour).toBe(1);
  });

  it('drops a change that fails validation and says why; a dry run plans without pending entries', async () => {
    const config = QuotaRightsizeInput.parse({ budgetGroup: 'ads', asOf: new Date(NOW).toISOString(), dryRun: true });
    const plan = await buildPlan({
      config,
      quotas,
      usage,
      nowMs: NOW,
      rightsizer: stubRightsizer,
      validate: async (q) => (q.id === 'ads/api/large' ? ['[custom] no changes on Fridays'] : []),
    });
    const large = plan.entries.find((e) => e.quotaId === 'ads/api/large')!;
    expect(large).toMatchObject({ gate: 'none', status: 'unchanged', after: rate(1000) });
    expect(large.note).toMatch(/no changes on Fridays/);
    expect(plan.warnings.join()).toMatch(/ads\/api\/large: the proposed change fails validation/);
    expect(plan.entries.find((e) => e.quotaId === 'ads/api/small')!.status).toBe('planned');
  });

  it('never drives a quota to zero, whatever the recommender says', async () => {
    const config = QuotaRightsizeInput.parse({ budgetGroup: 'ads', asOf: new Date(NOW).toISOString() });
    const zero = { ...stubRightsizer, recommend: () => ({ value: 0, warnings: [], reason: 'zero', floor: 0 }) };
    const plan = await buildPlan({
      config,
      quotas: [quota('ads/api/idle', rate(10))],
      usage: usageOf(flat('ads/api/idle', 'qps', 0)),
      nowMs: NOW,
      rightsizer: zero,
    });
    expect(plan.entries[0]).toMatchObject({ gate: 'none', after: rate(10) });
    expect(plan.entries[0]!.warnings.join()).toMatch(/never goes to 0/);
  });

  it('works with the real recommender: gates follow the change size, and nothing goes to zero', async () => {
    const config = QuotaRightsizeInput.parse({ budgetGroup: 'ads', asOf: new Date(NOW).toISOString() });
    const plan = await buildPlan({
      config,
      quotas: [...quotas, quota('ads/api/idle', rate(10))],
      usage: new Map([...usage, ['ads/api/idle', new Map([['qps' as const, flat('ads/api/idle', 'qps', 0)]])]]),
      nowMs: NOW,
      rightsizer: defaultRightsizer,
    });
    for (const e of plan.entries) {
      const biggest = Math.max(0, ...e.changes.map((c) => c.changeRatio));
      expect(e.gate).toBe(biggest === 0 ? 'none' : biggest <= 0.1 ? 'auto' : 'approval');
      for (const c of e.changes) expect(c.proposed).toBeGreaterThan(0);
    }
    expect(plan.entries.find((e) => e.quotaId === 'ads/api/large')!.gate).toBe('approval');
  });

  it('renders statuses as they change', () => {
    expect(changeRatio(0, 5)).toBe(1);
    expect(changeRatio(10, 10)).toBe(0);
    const text = renderPlanDiff({
      budgetGroup: 'g',
      asOf: new Date(NOW).toISOString(),
      budgetPerHour: null,
      spendBefore: 0,
      spendAfter: 0,
      overBudget: false,
      warnings: [],
      entries: [
        {
          quotaId: 'g/a/b',
          kind: 'rateLimit',
          tier: 't',
          owners: { users: [], groups: [] },
          version: 1,
          before: rate(10),
          after: rate(12),
          changes: [{ field: 'qps', current: 10, recommended: 12, proposed: 12, changeRatio: 0.2, reason: 'r' }],
          gate: 'approval',
          status: 'rejected',
          warnings: [],
          note: 'rejected by bob: too much',
        },
      ],
    });
    expect(text).toContain('[approval: rejected]');
    expect(text).toContain('note: rejected by bob: too much');
  });
});
