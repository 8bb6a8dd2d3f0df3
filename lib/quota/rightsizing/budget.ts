/**
 * Budget alignment: after the recommender has proposed a maximum per quota, a budget group's spend is priced and,
 * when it is over budget, the maxima are cut. Pure and deterministic: ties are broken by `quotaId`, and the items
 * come back in input order.
 *
 * Spend is priced on the maximum (what a quota may hold): Σ max × unitPricePerHour. Two strategies:
 *  - `tier-cut` (Piqama's rule): every maximum is cut by its tier's share, `max × (1 − cutByTier[tier])`, never
 *    below the guaranteed value. One pass; if the group is still over budget, `overBudget` says so. With
 *    `scaleToFit`, all shares (each capped at 100%) are scaled by the smallest common factor that fits the budget:
 *    a group just over budget gets a small cut, a group far over gets deeper cuts in the same tier proportions.
 *  - `water-fill`: every quota first gets its guaranteed value; the rest of the budget is poured over the headroom
 *    (max − guaranteed) priority class by priority class, highest `priority` number first; inside a class a
 *    common spend level rises until the budget runs out, so small requests are met in full and large ones share
 *    what is left equally.
 */

/** One quota's resource in a budget group. */
export interface BudgetItem {
  quotaId: string;
  /** Tier name, the key of `cutByTier` (e.g. "critical", "standard", "best-effort"). */
  tier: string;
  /** Water-fill order: a higher number is served first. */
  priority: number;
  /** Resource name (memory, vcores, ...), carried through for the plan. */
  resource: string;
  /** The guaranteed value: a maximum is never cut below it. */
  guaranteed: number;
  /** The recommender's maximum. */
  recommendedMax: number;
  /** Price of one unit of this resource for one hour. */
  unitPricePerHour: number;
}

/** The outcome for a budget group. */
export interface BudgetAlignment {
  items: Array<BudgetItem & { alignedMax: number; cutReason?: string }>;
  /** Σ recommendedMax × price (after raising any max below its guaranteed value). */
  spendBefore: number;
  /** Σ alignedMax × price. */
  spendAfter: number;
  budget: number;
  /** True when spendAfter still exceeds the budget (the guaranteed values alone may not fit). */
  overBudget: boolean;
}

/** Which cut to make when a group is over budget. */
export type BudgetStrategy =
  | {
      kind: 'tier-cut';
      cutByTier: Record<string, number>;
      /**
       * Scale every tier's cut by one common factor, the smallest that brings the group within budget: a group just
       * over budget gets a small cut, a group far over deeper cuts in the same proportions (each capped at 100%,
       * never below guaranteed). Without it, the listed cuts apply as they are (Piqama's fixed cut).
       * @default false
       */
      scaleToFit?: boolean;
      /**
       * Multiplies a tier's cut per resource, e.g. `{ memory: 0.25 }` to cut memory (where over the limit means an
       * OOM kill) a quarter as deep as rates (where it means throttling). A resource not listed gets 1.
       * @default {}
       */
      cutWeightByResource?: Record<string, number>;
    }
  | { kind: 'water-fill' };

/** Relative tolerance for comparing spend with budget, so float noise never flips `overBudget`. */
const EPS = 1e-9;

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, '');
}

function assertItem(item: BudgetItem): void {
  const bad = (why: string) => {
    throw new RangeError(`budget item "${item.quotaId}" (${item.resource}): ${why}`);
  };
  if (!Number.isFinite(item.guaranteed) || item.guaranteed < 0) bad(`guaranteed must be ≥ 0, got ${item.guaranteed}`);
  if (!Number.isFinite(item.recommendedMax) || item.recommendedMax < 0) {
    bad(`recommendedMax must be ≥ 0, got ${item.recommendedMax}`);
  }
  if (!Number.isFinite(item.unitPricePerHour) || item.unitPricePerHour < 0) {
    bad(`unitPricePerHour must be ≥ 0, got ${item.unitPricePerHour}`);
  }
  if (!Number.isFinite(item.priority)) bad(`priority must be a finite number, got ${item.priority}`);
}

/**
 * Aligns recommended maxima with a budget.
 *
 * @param items the budget group's quota resources
 * @param budgetPerHour the group's budget, in the same currency as the unit prices, per hour (≥ 0)
 * @param strategy `tier-cut` with a cut share (0..1) per tier (a tier that is not listed is not cut), or `water-fill`
 */
export function alignWithBudget(
  items: readonly BudgetItem[],
  budgetPerHour: number,
  strategy: BudgetStrategy,
): BudgetAlignment {
  if (!Number.isFinite(budgetPerHour) || budgetPerHour < 0) {
    throw new RangeError(`budget must be a finite number ≥ 0 per hour, got ${budgetPerHour}`);
  }
  for (const item of items) assertItem(item);
  if (strategy.kind === 'tier-cut') {
    for (const [tier, cut] of Object.entries(strategy.cutByTier)) {
      if (!Number.isFinite(cut) || cut < 0 || cut > 1) {
        throw new RangeError(`cut for tier "${tier}" must be a share in [0, 1] (0.2 = −20%), got ${cut}`);
      }
    }
    for (const [resource, w] of Object.entries(strategy.cutWeightByResource ?? {})) {
      if (!Number.isFinite(w) || w < 0 || w > 1) {
        throw new RangeError(`cut weight for resource "${resource}" must be in [0, 1], got ${w}`);
      }
    }
  }

  // A max below its guaranteed value is invalid (max ≥ guaranteed); align from the guaranteed value instead.
  const wanted = items.map((i) => Math.max(i.recommendedMax, i.guaranteed));
  const spendBefore = items.reduce((sum, i, k) => sum + wanted[k]! * i.unitPricePerHour, 0);
  const raisedNote = (k: number) =>
    items[k]!.recommendedMax < items[k]!.guaranteed
      ? `recommended max ${fmt(items[k]!.recommendedMax)} is below guaranteed ${fmt(items[k]!.guaranteed)}; raised`
      : undefined;
  const within = spendBefore <= budgetPerHour * (1 + EPS) + EPS;

  let aligned: number[];
  let reasons: Array<string | undefined>;
  if (within) {
    aligned = wanted;
    reasons = items.map((_, k) => raisedNote(k));
  } else if (strategy.kind === 'tier-cut') {
    aligned = [];
    reasons = [];
    const shareOf = (item: BudgetItem) =>
      (strategy.cutByTier[item.tier] ?? 0) * (strategy.cutWeightByResource?.[item.resource] ?? 1);
    const cutAt = (scale: number) =>
      items.map((item, k) => Math.max(item.guaranteed, wanted[k]! * (1 - Math.min(1, scale * shareOf(item)))));
    const spendAt = (scale: number) => cutAt(scale).reduce((sum, v, k) => sum + v * items[k]!.unitPricePerHour, 0);
    let scale = 1;
    if (strategy.scaleToFit) {
      // Spend falls monotonically as the scale grows, until every cut share reaches 1 (all at guaranteed).
      const positive = items.map(shareOf).filter((x) => x > 0);
      const maxScale = positive.length > 0 ? 1 / Math.min(...positive) : 1;
      if (spendAt(maxScale) > budgetPerHour) {
        scale = maxScale;
      } else {
        let lo = 0;
        let hi = maxScale;
        for (let iter = 0; iter < 80; iter++) {
          const mid = (lo + hi) / 2;
          if (spendAt(mid) <= budgetPerHour) hi = mid;
          else lo = mid;
        }
        scale = hi;
      }
    }
    items.forEach((item, k) => {
      const cut = Math.min(1, scale * shareOf(item));
      const target = Math.max(item.guaranteed, wanted[k]! * (1 - cut));
      aligned.push(target);
      if (target < wanted[k]!) {
        const floored = target === item.guaranteed && wanted[k]! * (1 - cut) < item.guaranteed;
        reasons.push(
          `over budget (${fmt(spendBefore)} > ${fmt(budgetPerHour)}/h): tier "${item.tier}" cut ${fmt(cut * 100)}%` +
            (floored ? `, stopped at guaranteed ${fmt(item.guaranteed)}` : ''),
        );
      } else {
        reasons.push(raisedNote(k));
      }
    });
  } else {
    ({ aligned, reasons } = waterFill(items, wanted, budgetPerHour, spendBefore));
  }

  const spendAfter = items.reduce((sum, i, k) => sum + aligned[k]! * i.unitPricePerHour, 0);
  return {
    items: items.map((item, k) => {
      const out: BudgetItem & { alignedMax: number; cutReason?: string } = { ...item, alignedMax: aligned[k]! };
      const reason = reasons[k];
      if (reason !== undefined) out.cutReason = reason;
      return out;
    }),
    spendBefore,
    spendAfter,
    budget: budgetPerHour,
    overBudget: spendAfter > budgetPerHour * (1 + EPS) + EPS,
  };
}

function waterFill(
  items: readonly BudgetItem[],
  wanted: readonly number[],
  budget: number,
  spendBefore: number,
): { aligned: number[]; reasons: Array<string | undefined> } {
  const aligned = items.map((i) => i.guaranteed);
  const reasons: Array<string | undefined> = items.map(() => undefined);
  // Free resources cost nothing: they keep their recommended max.
  items.forEach((item, k) => {
    if (item.unitPricePerHour === 0) aligned[k] = wanted[k]!;
  });
  let remaining = budget - items.reduce((s, i) => s + i.guaranteed * i.unitPricePerHour, 0);
  const head = `over budget (${fmt(spendBefore)} > ${fmt(budget)}/h)`;

  const priorities = [...new Set(items.map((i) => i.priority))].sort((a, b) => b - a);
  for (const priority of priorities) {
    // Headroom of each paid item in this class, in spend units.
    const members = items
      .map((item, k) => ({ k, item, need: (wanted[k]! - item.guaranteed) * item.unitPricePerHour }))
      .filter((m) => m.item.priority === priority && m.item.unitPricePerHour > 0 && m.need > 0)
      .sort(
        (a, b) => a.need - b.need || (a.item.quotaId < b.item.quotaId ? -1 : a.item.quotaId > b.item.quotaId ? 1 : 0),
      );
    if (members.length === 0) continue;
    const classNeed = members.reduce((s, m) => s + m.need, 0);
    if (remaining <= 0) {
      for (const m of members) {
        reasons[m.k] = `${head}: priority ${priority} got no budget above guaranteed ${fmt(m.item.guaranteed)}`;
      }
      continue;
    }
    if (classNeed <= remaining) {
      for (const m of members) aligned[m.k] = wanted[m.k]!;
      remaining -= classNeed;
      continue;
    }
    // Raise a common level L: each member gets min(need, L) of spend; smallest needs are met first.
    let left = remaining;
    let count = members.length;
    let level = Infinity;
    for (const m of members) {
      const share = left / count;
      if (m.need <= share) {
        left -= m.need;
        count--;
      } else {
        level = share;
        break;
      }
    }
    for (const m of members) {
      const spend = Math.min(m.need, level);
      aligned[m.k] = m.item.guaranteed + spend / m.item.unitPricePerHour;
      if (spend < m.need) {
        reasons[m.k] = `${head}: water-filled at priority ${priority}, ${fmt(spend)}/h of ${fmt(m.need)}/h headroom`;
      }
    }
    remaining = 0;
  }
  return { aligned, reasons };
}
