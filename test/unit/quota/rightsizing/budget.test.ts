import { describe, expect, it } from 'vitest';
import { alignWithBudget, type BudgetItem } from '../../../../lib/quota/rightsizing/budget.js';

function item(quotaId: string, over: Partial<BudgetItem> = {}): BudgetItem {
  return {
    quotaId,
    tier: 'standard',
    priority: 1,
    resource: 'memory',
    guaranteed: 10,
    recommendedMax: 100,
    unitPricePerHour: 1,
    ...over,
  };
}

const cuts = { critical: 0, standard: 0.1, 'best-effort': 0.3 };

describe('alignWithBudget: within budget', () => {
  it('keeps every recommendation and prices the group', () => {
    const r = alignWithBudget([item('a'), item('b', { unitPricePerHour: 2 })], 300, {
      kind: 'tier-cut',
      cutByTier: cuts,
    });
    expect(r.items.map((i) => i.alignedMax)).toEqual([100, 100]);
    expect(r.spendBefore).toBe(300);
    expect(r.spendAfter).toBe(300);
    expect(r.overBudget).toBe(false);
    expect(r.items.every((i) => i.cutReason === undefined)).toBe(true);
  });

  it('raises a max below its guaranteed value and says so', () => {
    const r = alignWithBudget([item('a', { recommendedMax: 5 })], 1000, { kind: 'water-fill' });
    expect(r.items[0]!.alignedMax).toBe(10);
    expect(r.items[0]!.cutReason).toMatch(/below guaranteed 10; raised/);
  });
});

describe('alignWithBudget: tier-cut', () => {
  it('cuts each max by its tier share when over budget, as Piqama does', () => {
    const items = [
      item('gold', { tier: 'critical' }),
      item('std', { tier: 'standard' }),
      item('be', { tier: 'best-effort' }),
      item('other', { tier: 'unlisted' }),
    ];
    const r = alignWithBudget(items, 350, { kind: 'tier-cut', cutByTier: cuts });
    expect(r.items.map((i) => i.alignedMax)).toEqual([100, 90, 70, 100]);
    expect(r.spendBefore).toBe(400);
    expect(r.spendAfter).toBe(360);
    expect(r.overBudget).toBe(true);
    expect(r.items[2]!.cutReason).toMatch(/over budget \(400 > 350\/h\): tier "best-effort" cut 30%/);
    expect(r.items[0]!.cutReason).toBeUndefined();
  });

  it('never cuts below the guaranteed value', () => {
    const r = alignWithBudget([item('a', { tier: 'best-effort', guaranteed: 90 })], 10, {
      kind: 'tier-cut',
      cutByTier: cuts,
    });
    expect(r.items[0]!.alignedMax).toBe(90);
    expect(r.items[0]!.cutReason).toMatch(/stopped at guaranteed 90/);
    expect(r.overBudget).toBe(true);
  });

  it('with scaleToFit cuts only as much as the budget needs, keeping the tier ratios', () => {
    const items = [item('std', { tier: 'standard' }), item('be', { tier: 'best-effort' })];
    // Full cuts would give 90 + 70 = 160; the budget needs only 190.
    const r = alignWithBudget(items, 190, { kind: 'tier-cut', cutByTier: cuts, scaleToFit: true });
    expect(r.spendAfter).toBeCloseTo(190, 6);
    expect(r.overBudget).toBe(false);
    const [std, be] = r.items.map((i) => 100 - i.alignedMax);
    expect(be! / std!).toBeCloseTo(3, 6);
  });

  it('with scaleToFit cuts deeper in the same proportions when the listed cuts are not enough', () => {
    const items = [item('std', { tier: 'standard' }), item('be', { tier: 'best-effort' })];
    // Full cuts give 160; fitting 100 takes 2.5× the shares: 25% and 75%.
    const r = alignWithBudget(items, 100, { kind: 'tier-cut', cutByTier: cuts, scaleToFit: true });
    expect(r.items[0]!.alignedMax).toBeCloseTo(75, 6);
    expect(r.items[1]!.alignedMax).toBeCloseTo(25, 6);
    expect(r.overBudget).toBe(false);
    const floor = alignWithBudget(items, 5, { kind: 'tier-cut', cutByTier: cuts, scaleToFit: true });
    expect(floor.items.map((i) => i.alignedMax)).toEqual([10, 10]);
    expect(floor.overBudget).toBe(true);
  });

  it('weights cuts per resource', () => {
    const items = [
      item('mem', { tier: 'best-effort', resource: 'memory' }),
      item('rate', { tier: 'best-effort', resource: 'qps' }),
    ];
    const r = alignWithBudget(items, 150, {
      kind: 'tier-cut',
      cutByTier: cuts,
      cutWeightByResource: { memory: 0.25 },
    });
    expect(r.items[0]!.alignedMax).toBeCloseTo(92.5, 9);
    expect(r.items[1]!.alignedMax).toBeCloseTo(70, 9);
    expect(() =>
      alignWithBudget(items, 1, { kind: 'tier-cut', cutByTier: cuts, cutWeightByResource: { memory: 2 } }),
    ).toThrow(/cut weight for resource "memory" must be in \[0, 1\]/);
  });

  it('rejects cut shares outside [0, 1]', () => {
    expect(() => alignWithBudget([item('a')], 1, { kind: 'tier-cut', cutByTier: { standard: 20 } })).toThrow(
      /cut for tier "standard" must be a share in \[0, 1\]/,
    );
  });
});

describe('alignWithBudget: water-fill', () => {
  it('serves higher priorities first, down to guaranteed for the rest', () => {
    const items = [item('low', { priority: 1 }), item('high', { priority: 5 }), item('mid', { priority: 3 })];
    // Guaranteed 30 + 90 (high) + 40 of mid's 90.
    const r = alignWithBudget(items, 160, { kind: 'water-fill' });
    const by = Object.fromEntries(r.items.map((i) => [i.quotaId, i]));
    expect(by.high!.alignedMax).toBe(100);
    expect(by.mid!.alignedMax).toBeCloseTo(50, 9);
    expect(by.low!.alignedMax).toBe(10);
    expect(by.low!.cutReason).toMatch(/priority 1 got no budget above guaranteed 10/);
    expect(r.spendAfter).toBeCloseTo(160, 9);
    expect(r.overBudget).toBe(false);
    expect(r.items.map((i) => i.quotaId)).toEqual(['low', 'high', 'mid']);
  });

  it('meets small needs in full and shares the rest equally inside a priority class', () => {
    const items = [
      item('small', { recommendedMax: 20 }),
      item('big1', { recommendedMax: 200 }),
      item('big2', { recommendedMax: 200 }),
    ];
    // Guaranteed 30; 100 more to pour: small takes its 10, the two big ones 45 each.
    const r = alignWithBudget(items, 130, { kind: 'water-fill' });
    expect(r.items.map((i) => i.alignedMax)).toEqual([20, 55, 55]);
    expect(r.items[1]!.cutReason).toMatch(/water-filled at priority 1, 45\/h of 190\/h headroom/);
  });

  it('fills in spend, so a dearer unit gets fewer units', () => {
    const items = [item('cheap', { unitPricePerHour: 1 }), item('dear', { unitPricePerHour: 4 })];
    // Guaranteed spend 10 + 40 = 50; 40 more: 20 each → cheap +20 units, dear +5 units.
    const r = alignWithBudget(items, 90, { kind: 'water-fill' });
    expect(r.items.map((i) => i.alignedMax)).toEqual([30, 15]);
  });

  it('keeps free resources at their recommendation', () => {
    const r = alignWithBudget([item('free', { unitPricePerHour: 0 }), item('paid')], 10, { kind: 'water-fill' });
    expect(r.items.map((i) => i.alignedMax)).toEqual([100, 10]);
  });

  it('reports over budget when the guaranteed values alone do not fit', () => {
    const r = alignWithBudget([item('a'), item('b')], 5, { kind: 'water-fill' });
    expect(r.items.map((i) => i.alignedMax)).toEqual([10, 10]);
    expect(r.overBudget).toBe(true);
  });

  it('gives the same value per quota whatever the input order', () => {
    const items = Array.from({ length: 12 }, (_, k) =>
      item(`q${k}`, { priority: k % 3, recommendedMax: 50 + ((k * 37) % 200), unitPricePerHour: 1 + (k % 4) }),
    );
    const byId = (xs: BudgetItem[]) =>
      Object.fromEntries(alignWithBudget(xs, 900, { kind: 'water-fill' }).items.map((i) => [i.quotaId, i.alignedMax]));
    expect(byId([...items].reverse())).toEqual(byId(items));
    const r = alignWithBudget(items, 900, { kind: 'water-fill' });
    expect(r.spendAfter).toBeCloseTo(900, 6);
    for (const i of r.items) {
      expect(i.alignedMax).toBeGreaterThanOrEqual(i.guaranteed);
      expect(i.alignedMax).toBeLessThanOrEqual(i.recommendedMax);
    }
  });
});

describe('alignWithBudget: bad input', () => {
  it('names the item and the field', () => {
    expect(() => alignWithBudget([item('a', { unitPricePerHour: -1 })], 10, { kind: 'water-fill' })).toThrow(
      /budget item "a" \(memory\): unitPricePerHour must be ≥ 0/,
    );
    expect(() => alignWithBudget([item('a', { guaranteed: Number.NaN })], 10, { kind: 'water-fill' })).toThrow(
      /guaranteed must be ≥ 0/,
    );
    expect(() => alignWithBudget([item('a')], -1, { kind: 'water-fill' })).toThrow(/budget must be a finite number/);
  });
});
