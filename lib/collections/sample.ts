import { createHash } from 'node:crypto';
import { CollectionsError } from './errors.js';

/**
 * The extraction sample of `collections-build`: a deterministic stratified sample of the catalog.
 *
 * - **Allocation.** Each stratum gets `size × n_s / N` items, rounded by the largest-remainder method (floors
 *   first, then one more to the strata with the largest fractional parts, ties to the larger stratum, then the
 *   smaller stratum name), so the allocations sum to exactly `size`. When `size` is at least the number of
 *   non-empty strata, every stratum gets at least one item: a stratum left at zero takes one from the stratum with
 *   the most items allocated (ties to the one whose allocation most exceeds its exact share).
 * - **Within a stratum** items are ranked by `sha256("<seed>:<itemId>")` (hex, then the id) and the first ones
 *   taken. The rank of an item depends only on the seed and its id, so adding items to the catalog changes the
 *   sample only where the new items rank first; a different seed gives an independent sample.
 * - **Without strata** (no row has one) the same hash ranking runs over all items: a uniform sample.
 *
 * Rows without a stratum, when others have one, form a stratum of their own. Duplicate ids count once. The result
 * lists the sampled ids in hash-rank order (independent of the strata), and is every item when `size ≥ N`.
 */
export function stratifiedSample(
  rows: readonly { itemId: string; stratum?: string }[],
  size: number,
  seed: number,
): string[] {
  if (!Number.isInteger(size) || size < 0)
    throw new CollectionsError('invalid-option', `sample size must be a non-negative integer, got ${size}`);
  const ranked = new Map<string, { itemId: string; stratum: string; rank: string }>();
  for (const row of rows) {
    if (ranked.has(row.itemId)) continue;
    ranked.set(row.itemId, { itemId: row.itemId, stratum: row.stratum ?? '', rank: sampleRank(seed, row.itemId) });
  }
  const all = [...ranked.values()].sort(byRank);
  if (size >= all.length) return all.map((r) => r.itemId);

  const strata = new Map<string, typeof all>();
  for (const r of all) {
    let members = strata.get(r.stratum);
    if (members === undefined) strata.set(r.stratum, (members = []));
    members.push(r);
  }
  const allocation = allocateProportionally(
    new Map([...strata.entries()].map(([name, members]) => [name, members.length])),
    size,
  );
  const chosen: typeof all = [];
  for (const [name, members] of strata) chosen.push(...members.slice(0, allocation.get(name) ?? 0));
  return chosen.sort(byRank).map((r) => r.itemId);
}

/** The hash rank of an item for a seed: sha256 hex of `<seed>:<itemId>`. */
export function sampleRank(seed: number, itemId: string): string {
  return createHash('sha256').update(`${seed}:${itemId}`).digest('hex');
}

function byRank(a: { rank: string; itemId: string }, b: { rank: string; itemId: string }): number {
  if (a.rank !== b.rank) return a.rank < b.rank ? -1 : 1;
  return a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0;
}

/**
 * Splits `size` over strata of the given sizes proportionally (largest remainder), with at least one per non-empty
 * stratum when `size` allows. `size` must not exceed the total.
 */
export function allocateProportionally(counts: ReadonlyMap<string, number>, size: number): Map<string, number> {
  const total = [...counts.values()].reduce((s, n) => s + n, 0);
  const names = [...counts.keys()].filter((k) => counts.get(k)! > 0);
  const exact = new Map(names.map((k) => [k, total === 0 ? 0 : (size * counts.get(k)!) / total]));
  const alloc = new Map(names.map((k) => [k, Math.floor(exact.get(k)!)]));
  let left = size - [...alloc.values()].reduce((s, n) => s + n, 0);
  const byRemainder = [...names].sort((a, b) => {
    const fa = exact.get(a)! - alloc.get(a)!;
    const fb = exact.get(b)! - alloc.get(b)!;
    if (fa !== fb) return fb - fa;
    if (counts.get(a) !== counts.get(b)) return counts.get(b)! - counts.get(a)!;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  for (const k of byRemainder) {
    if (left === 0) break;
    if (alloc.get(k)! < counts.get(k)!) {
      alloc.set(k, alloc.get(k)! + 1);
      left--;
    }
  }
  if (size >= names.length) {
    // Smallest strata first: they are the ones proportional allocation rounds to zero.
    const empty = names.filter((k) => alloc.get(k) === 0).sort((a, b) => counts.get(a)! - counts.get(b)!);
    for (const k of empty) {
      let donor: string | undefined;
      for (const d of names) {
        const n = alloc.get(d)!;
        if (n < 2) continue;
        if (
          donor === undefined ||
          n > alloc.get(donor)! ||
          (n === alloc.get(donor)! && n - exact.get(d)! > alloc.get(donor)! - exact.get(donor)!)
        )
          donor = d;
      }
      if (donor === undefined) break;
      alloc.set(donor, alloc.get(donor)! - 1);
      alloc.set(k, 1);
    }
  }
  return alloc;
}
