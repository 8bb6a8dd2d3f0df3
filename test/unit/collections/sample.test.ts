import { describe, expect, it } from 'vitest';
import { allocateProportionally, sampleRank, stratifiedSample } from '../../../lib/collections/sample.js';

/** 1,000 items over strata of 600, 300, 90 and 10. */
function rows(): { itemId: string; stratum: string }[] {
  const out: { itemId: string; stratum: string }[] = [];
  const sizes: [string, number][] = [
    ['shoes', 600],
    ['bags', 300],
    ['hats', 90],
    ['gloves', 10],
  ];
  let n = 0;
  for (const [stratum, size] of sizes) for (let i = 0; i < size; i++) out.push({ itemId: `i${n++}`, stratum });
  return out;
}

function countBy(ids: string[], all: { itemId: string; stratum: string }[]): Record<string, number> {
  const of = new Map(all.map((r) => [r.itemId, r.stratum]));
  const out: Record<string, number> = {};
  for (const id of ids) out[of.get(id)!] = (out[of.get(id)!] ?? 0) + 1;
  return out;
}

describe('stratifiedSample', () => {
  it('is deterministic for a seed and independent of the row order', () => {
    const all = rows();
    const a = stratifiedSample(all, 100, 3);
    expect(stratifiedSample([...all].reverse(), 100, 3)).toEqual(a);
    expect(new Set(a).size).toBe(100);
    expect(stratifiedSample(all, 100, 4)).not.toEqual(a);
  });

  it('allocates proportionally with the largest remainder', () => {
    const all = rows();
    expect(countBy(stratifiedSample(all, 100, 1), all)).toEqual({ shoes: 60, bags: 30, hats: 9, gloves: 1 });
    // 55 × (0.6, 0.3, 0.09, 0.01) = 33, 16.5, 4.95, 0.55: floors 53, the two left go to hats (.95) and gloves (.55).
    expect(countBy(stratifiedSample(all, 55, 1), all)).toEqual({ shoes: 33, bags: 16, hats: 5, gloves: 1 });
  });

  it('gives every non-empty stratum at least one item when the size allows', () => {
    const all = rows();
    // 20 × 0.01 = 0.2 → gloves would get 0; it takes one from shoes (the largest allocation).
    expect(countBy(stratifiedSample(all, 20, 1), all)).toEqual({ shoes: 11, bags: 6, hats: 2, gloves: 1 });
    expect(countBy(stratifiedSample(all, 4, 1), all)).toEqual({ shoes: 1, bags: 1, hats: 1, gloves: 1 });
    // Fewer slots than strata: plain proportional allocation.
    expect(countBy(stratifiedSample(all, 2, 1), all)).toEqual({ shoes: 1, bags: 1 });
  });

  it('takes the items of a stratum in sha256(seed:itemId) order', () => {
    const all = rows();
    const picked = stratifiedSample(all, 100, 9);
    const gloves = all.filter((r) => r.stratum === 'gloves').map((r) => r.itemId);
    const best = gloves.sort((a, b) => (sampleRank(9, a) < sampleRank(9, b) ? -1 : 1))[0]!;
    expect(picked.filter((id) => gloves.includes(id))).toEqual([best]);
    // The result is in rank order.
    const ranks = picked.map((id) => sampleRank(9, id));
    expect([...ranks].sort()).toEqual(ranks);
  });

  it('without strata ranks all items by hash: a uniform sample', () => {
    const ids = Array.from({ length: 500 }, (_, i) => ({ itemId: `x${i}` }));
    const want = ids
      .map((r) => r.itemId)
      .sort((a, b) => (sampleRank(5, a) < sampleRank(5, b) ? -1 : 1))
      .slice(0, 40);
    expect(stratifiedSample(ids, 40, 5)).toEqual(want);
  });

  it('returns every item once when the size covers the catalog, and nothing for size 0', () => {
    const all = [...rows(), { itemId: 'i0', stratum: 'shoes' }];
    expect(stratifiedSample(all, 5000, 1)).toHaveLength(1000);
    expect(stratifiedSample(all, 0, 1)).toEqual([]);
    expect(() => stratifiedSample(all, -1, 1)).toThrow(/non-negative/);
  });

  it('allocation sums to the size and never exceeds a stratum', () => {
    for (let size = 0; size <= 30; size++) {
      const alloc = allocateProportionally(
        new Map([
          ['a', 17],
          ['b', 5],
          ['c', 1],
          ['d', 7],
        ]),
        size,
      );
      expect([...alloc.values()].reduce((s, n) => s + n, 0)).toBe(size);
      expect(alloc.get('c')!).toBeLessThanOrEqual(1);
      expect(alloc.get('b')!).toBeLessThanOrEqual(5);
      if (size >= 4) expect(Math.min(...alloc.values())).toBeGreaterThanOrEqual(1);
    }
  });
});
