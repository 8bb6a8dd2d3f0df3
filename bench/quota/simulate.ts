/**
 * Trace replay: runs a quota policy over generated traces hour by hour and measures slack, violation windows,
 * changes and spend against budget. Three policies: static (hand-set once), VPA (`lib/quota/rightsizing/vpa.ts`) and
 * ours (`recommend` + `alignWithBudget`). VPA and ours are re-run on the same cadence and start from the same
 * hand-set value.
 */
import { alignWithBudget, type BudgetItem } from '../../lib/quota/rightsizing/budget.js';
import { recommend, type QuotaResource, type RecommenderPolicy } from '../../lib/quota/rightsizing/recommend.js';
import { vpaDefaults, vpaRecommend, vpaShouldUpdate, type OomEvent } from '../../lib/quota/rightsizing/vpa.js';
import type { QuotaTrace, TraceSet } from './traces.js';

/** `oracle` is not a contender: it knows the next window's demand and sets exactly its maximum (no margin), the
 * least slack any zero-violation policy can reach at the same cadence. */
export type PolicyName = 'static' | 'vpa' | 'ours' | 'oracle';

/** How ours runs in the simulator. */
export interface OursConfig {
  policy: (resource: QuotaResource) => RecommenderPolicy;
  /** Apply a raise only when it is at least this share of the current value. */
  upDeadband: number;
  /** Apply a cut only when it is at least this share of the current value. */
  downDeadband: number;
  /** Align each group with its budget before applying (tier-cut, then water-fill if still over). */
  budgetAlignment: boolean;
  /** Tier cuts used by the alignment. */
  cutByTier: Record<string, number>;
  /** Per-resource multipliers on the tier cuts (memory is cut less: over its limit is an OOM kill). */
  cutWeightByResource?: Record<string, number>;
  /**
   * `tier-cut`: Piqama's fixed cut; `tier-cut-scaled`: the same shares scaled down to what the budget needs;
   * `water-fill`: by priority. Whatever is still over budget after a tier cut is water-filled.
   */
  budgetStrategy: 'tier-cut' | 'tier-cut-scaled' | 'water-fill';
}

export interface SimConfig {
  /** Hours between recommender runs. @default 24 */
  cadenceHours: number;
  /** Hand-set limits: this × the onboarding day's highest peak. @default 1.5 */
  staticHeadroom: number;
  ours: OursConfig;
}

/** Per-quota outcome of one policy. */
export interface QuotaOutcome {
  quotaId: string;
  pattern: string;
  resource: string;
  kind: 'capacity' | 'rate';
  allocated: number;
  /** Σ min(avg, alloc) over hours. */
  used: number;
  /** Σ price × alloc and Σ price × unused. */
  allocSpend: number;
  unusedSpend: number;
  /** Σ price × (alloc − min(demand, alloc)), demand being the figure violations are judged on (peak or avg). */
  unusedVsDemandSpend: number;
  violationHours: number;
  changes: number;
  finalValue: number;
}

export interface PolicyOutcome {
  policy: PolicyName;
  quotas: QuotaOutcome[];
  /** Σ price × alloc per group over all hours. */
  spendByGroup: Record<string, number>;
  /** Group-hours in which the group's allocation cost more than its budget. */
  groupHoursOverBudget: number;
}

/** A quota resource's floor for hand-set and VPA values, so no policy is at 0. */
function floorOf(policy: RecommenderPolicy): number {
  return policy.floor;
}

function isViolation(q: QuotaTrace, hour: number, alloc: number): boolean {
  const s = q.samples[hour]!;
  return q.kind === 'capacity' ? s.peak > alloc : s.avg > alloc;
}

/** The hand-set limit: onboarding day's highest peak × headroom, rounded like ours would be. */
export function staticLimit(q: QuotaTrace, traces: TraceSet, headroom: number, policy: RecommenderPolicy): number {
  let peak = 0;
  for (let h = 0; h < traces.historyHours; h++) peak = Math.max(peak, q.samples[h]!.peak);
  const step = policy.roundUpTo;
  const v = peak * headroom;
  return Math.max(floorOf(policy), step ? Math.ceil(v / step) * step : v);
}

/**
 * Replays one policy over all traces. Each hour the allocation in force is compared with that hour's demand; at
 * every cadence boundary (starting with the first evaluated hour) the policy may change the allocation.
 */
export function simulate(traces: TraceSet, policyName: PolicyName, config: SimConfig): PolicyOutcome {
  const { historyHours, evalHours, quotas } = traces;
  const totalHours = historyHours + evalHours;
  const alloc = quotas.map((q) => staticLimit(q, traces, config.staticHeadroom, config.ours.policy(q.resource)));
  const outcomes: QuotaOutcome[] = quotas.map((q, i) => ({
    quotaId: q.quotaId,
    pattern: q.pattern,
    resource: q.resource,
    kind: q.kind,
    allocated: 0,
    used: 0,
    allocSpend: 0,
    unusedSpend: 0,
    unusedVsDemandSpend: 0,
    violationHours: 0,
    changes: 0,
    finalValue: alloc[i]!,
  }));
  const ooms: OomEvent[][] = quotas.map(() => []);
  const groups = [...new Set(quotas.map((q) => q.budgetGroup))].sort();
  const spendByGroup: Record<string, number> = Object.fromEntries(groups.map((g) => [g, 0]));
  let groupHoursOverBudget = 0;

  for (let hour = historyHours; hour < totalHours; hour++) {
    const nowMs = traces.startMs + hour * 3_600_000;
    if (policyName !== 'static' && (hour - historyHours) % config.cadenceHours === 0) {
      const next =
        policyName === 'vpa'
          ? vpaStep(traces, hour, nowMs, alloc, ooms)
          : policyName === 'oracle'
            ? oracleStep(traces, hour, config.cadenceHours, config.ours)
            : oursStep(traces, hour, nowMs, alloc, config.ours);
      next.forEach((v, i) => {
        if (v !== alloc[i]) {
          outcomes[i]!.changes++;
          alloc[i] = v;
        }
      });
    }
    const groupSpend: Record<string, number> = Object.fromEntries(groups.map((g) => [g, 0]));
    quotas.forEach((q, i) => {
      const a = alloc[i]!;
      const s = q.samples[hour]!;
      const o = outcomes[i]!;
      const used = Math.min(s.avg, a);
      o.allocated += a;
      o.used += used;
      o.allocSpend += a * q.unitPricePerHour;
      o.unusedSpend += (a - used) * q.unitPricePerHour;
      o.unusedVsDemandSpend += (a - Math.min(q.kind === 'capacity' ? s.peak : s.avg, a)) * q.unitPricePerHour;
      groupSpend[q.budgetGroup] = groupSpend[q.budgetGroup]! + a * q.unitPricePerHour;
      if (isViolation(q, hour, a)) {
        o.violationHours++;
        // What VPA's OOM observer would see: the container killed at its memory limit.
        if (q.resource === 'memory') ooms[i]!.push({ atMs: nowMs, usage: a });
      }
    });
    for (const g of groups) {
      spendByGroup[g] = spendByGroup[g]! + groupSpend[g]!;
      if (groupSpend[g]! > traces.budgets[g]! * (1 + 1e-9)) groupHoursOverBudget++;
    }
  }
  outcomes.forEach((o, i) => (o.finalValue = alloc[i]!));
  return { policy: policyName, quotas: outcomes, spendByGroup, groupHoursOverBudget };
}

function oracleStep(traces: TraceSet, hour: number, cadenceHours: number, ours: OursConfig): number[] {
  return traces.quotas.map((q) => {
    let need = 0;
    const end = Math.min(q.samples.length, hour + cadenceHours);
    for (let h = hour; h < end; h++)
      need = Math.max(need, q.kind === 'capacity' ? q.samples[h]!.peak : q.samples[h]!.avg);
    return Math.max(ours.policy(q.resource).floor, need);
  });
}

function vpaStep(traces: TraceSet, hour: number, nowMs: number, alloc: number[], ooms: OomEvent[][]): number[] {
  return traces.quotas.map((q, i) => {
    const samples = q.samples.slice(0, hour);
    const floor = q.resource === 'memory' ? 250 : q.resource === 'vcores' ? 0.025 : 1;
    const rec = vpaRecommend(samples, vpaDefaults(q.resource === 'memory' ? 'memory' : 'cpu', floor), nowMs, ooms[i]!);
    return vpaShouldUpdate(alloc[i]!, rec) ? rec.target : alloc[i]!;
  });
}

function oursStep(traces: TraceSet, hour: number, nowMs: number, alloc: number[], ours: OursConfig): number[] {
  const candidates = traces.quotas.map((q, i) => {
    const current = alloc[i]!;
    const rec = recommend(current, q.samples.slice(0, hour), ours.policy(q.resource), nowMs);
    const change = (rec.value - current) / current;
    if (change > 0 && change < ours.upDeadband) return current;
    if (change < 0 && -change < ours.downDeadband) return current;
    return rec.value;
  });
  if (!ours.budgetAlignment) return candidates;
  const out = [...candidates];
  const byGroup = new Map<string, number[]>();
  traces.quotas.forEach((q, i) => byGroup.set(q.budgetGroup, [...(byGroup.get(q.budgetGroup) ?? []), i]));
  for (const [group, idx] of [...byGroup.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const items: BudgetItem[] = idx.map((i) => {
      const q = traces.quotas[i]!;
      const floor = ours.policy(q.resource).floor;
      return {
        quotaId: q.quotaId,
        tier: q.tier,
        priority: q.priority,
        resource: q.resource,
        // The simulator's quotas guarantee their floor; the rest of the max is what budgets may cut.
        guaranteed: floor,
        recommendedMax: candidates[i]!,
        unitPricePerHour: q.unitPricePerHour,
      };
    });
    const budget = traces.budgets[group]!;
    let aligned =
      ours.budgetStrategy === 'water-fill'
        ? alignWithBudget(items, budget, { kind: 'water-fill' })
        : alignWithBudget(items, budget, {
            kind: 'tier-cut',
            cutByTier: ours.cutByTier,
            scaleToFit: ours.budgetStrategy === 'tier-cut-scaled',
            cutWeightByResource: ours.cutWeightByResource,
          });
    if (aligned.overBudget) {
      aligned = alignWithBudget(
        aligned.items.map((it) => ({ ...it, recommendedMax: it.alignedMax })),
        budget,
        { kind: 'water-fill' },
      );
    }
    aligned.items.forEach((it, k) => {
      const q = traces.quotas[idx[k]!]!;
      const step = ours.policy(q.resource).roundUpTo;
      // Round down after a cut so that rounding cannot push the group back over budget.
      const v =
        it.alignedMax < candidates[idx[k]!]! && step
          ? Math.max(it.guaranteed, Math.floor(it.alignedMax / step) * step)
          : it.alignedMax;
      out[idx[k]!] = v;
    });
  }
  return out;
}

/** Aggregate figures of one policy, optionally restricted to a subset of quotas. */
export interface Summary {
  /** Share of spend that paid for allocated-but-unused capacity (Σ price·(alloc − used) / Σ price·alloc). */
  slack: number;
  /** The same against the hour's demand as violations judge it (peak for capacity, average for rate quotas). */
  slackVsDemand: number;
  /** Mean over quotas of each quota's own slack share (unweighted). */
  meanQuotaSlack: number;
  violationHours: number;
  /** Share of quota-hours in violation. */
  violationRate: number;
  quotasWithViolations: number;
  changes: number;
  spend: number;
  quotas: number;
}

export function summarize(
  outcome: PolicyOutcome,
  filter: (q: QuotaOutcome) => boolean = () => true,
  hours = 1,
): Summary {
  const qs = outcome.quotas.filter(filter);
  const alloc = qs.reduce((s, q) => s + q.allocSpend, 0);
  const unused = qs.reduce((s, q) => s + q.unusedSpend, 0);
  const violationHours = qs.reduce((s, q) => s + q.violationHours, 0);
  return {
    slack: alloc > 0 ? unused / alloc : 0,
    slackVsDemand: alloc > 0 ? qs.reduce((s, q) => s + q.unusedVsDemandSpend, 0) / alloc : 0,
    meanQuotaSlack: qs.length ? qs.reduce((s, q) => s + (q.allocated - q.used) / q.allocated, 0) / qs.length : 0,
    violationHours,
    violationRate: qs.length ? violationHours / (qs.length * hours) : 0,
    quotasWithViolations: qs.filter((q) => q.violationHours > 0).length,
    changes: qs.reduce((s, q) => s + q.changes, 0),
    spend: alloc,
    quotas: qs.length,
  };
}
