/**
 * Trace replay: runs a quota policy over generated traces hour by hour and measures slack, violation windows,
 * changes and spend against budget. Three policies: static (hand-set once), VPA (`lib/quota/rightsizing/vpa.ts`) and
 * ours (`recommend` + `alignWithBudget`). VPA and ours are re-run on the same cadence and start from the same
 * hand-set value.
 */
import { alignWithBudget, type BudgetItem } from '../../lib/quota/rightsizing/budget.js';
import { recommend, type QuotaResource, type RecommenderPolicy } from '../../lib/quota/rightsizing/recommend.js';
import {
  alignScheduleWithBudget,
  recommendSchedule,
  slotOf,
  type ScheduleBudgetItem,
  type ScheduleOptions,
} from '../../lib/quota/rightsizing/schedule.js';
import { vpaDefaults, vpaRecommend, vpaShouldUpdate, type OomEvent } from '../../lib/quota/rightsizing/vpa.js';
import type { QuotaTrace, TraceSet } from './traces.js';

/** `oracle` is not a contender: it knows the next window's demand and sets exactly its maximum (no margin), the
 * least slack any zero-violation policy can reach at the same cadence. `oracle-tod` knows the next day too and sets
 * each time-of-day slot (`SimConfig.oracleSlotHours`) to exactly its maximum: the bound for a daily-planned schedule.
 * Ours runs flat or time-of-day aware depending on `OursConfig.timeOfDay`. */
export type PolicyName = 'static' | 'vpa' | 'ours' | 'oracle' | 'oracle-tod';

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
  /**
   * Time-of-day mode: `recommendSchedule` per quota instead of `recommend`, the schedule's slot value in force each
   * hour, budgets aligned slot by slot (every hour within budget). Absent: flat (one value per day).
   */
  timeOfDay?: {
    options: ScheduleOptions | ((resource: QuotaResource) => ScheduleOptions);
    /** Per-slot policy; defaults to `policy`. */
    policy?: (resource: QuotaResource) => RecommenderPolicy;
  };
}

export interface SimConfig {
  /** Hours between recommender runs. @default 24 */
  cadenceHours: number;
  /** Slot size of the `oracle-tod` bound. @default 1 */
  oracleSlotHours?: number;
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
  /** Re-plans that changed the quota's value (flat) or its day's schedule (time-of-day): one per day at most. */
  changes: number;
  /** Hours at which a schedule switched the value in force at a slot boundary without a re-plan changing it. */
  inDaySwitches: number;
  /** Re-plans that produced a schedule whose slots differ (time-of-day mode chose `schedule`, not `flat`). */
  scheduledPlans: number;
  /** Re-plans in all. */
  plans: number;
  /** The highest slot value at the end. */
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
  // Each quota's schedule: one value (flat policies) or one per time-of-day slot.
  let sched: number[][] = quotas.map((q) => [
    staticLimit(q, traces, config.staticHeadroom, config.ours.policy(q.resource)),
  ]);
  const inForce = (i: number, nowMs: number) => {
    const s = sched[i]!;
    return s.length === 1 ? s[0]! : s[slotOf(nowMs, 24 / s.length)]!;
  };
  const prevAlloc: number[] = sched.map((s) => s[0]!);
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
    inDaySwitches: 0,
    scheduledPlans: 0,
    plans: 0,
    finalValue: sched[i]![0]!,
  }));
  const ooms: OomEvent[][] = quotas.map(() => []);
  const groups = [...new Set(quotas.map((q) => q.budgetGroup))].sort();
  const spendByGroup: Record<string, number> = Object.fromEntries(groups.map((g) => [g, 0]));
  let groupHoursOverBudget = 0;

  for (let hour = historyHours; hour < totalHours; hour++) {
    const nowMs = traces.startMs + hour * 3_600_000;
    const changedNow = new Set<number>();
    if (policyName !== 'static' && (hour - historyHours) % config.cadenceHours === 0) {
      const next: number[][] =
        policyName === 'vpa'
          ? vpaStep(
              traces,
              hour,
              nowMs,
              sched.map((s) => s[0]!),
              ooms,
            ).map((v) => [v])
          : policyName === 'oracle'
            ? oracleStep(traces, hour, config.cadenceHours, config.ours, 24).map((v) => [v[0]!])
            : policyName === 'oracle-tod'
              ? oracleStep(traces, hour, config.cadenceHours, config.ours, config.oracleSlotHours ?? 1)
              : config.ours.timeOfDay
                ? oursScheduleStep(traces, hour, nowMs, sched, config.ours, outcomes)
                : oursStep(
                    traces,
                    hour,
                    nowMs,
                    sched.map((s) => s[0]!),
                    config.ours,
                  ).map((v) => [v]);
      next.forEach((v, i) => {
        outcomes[i]!.plans++;
        if (v.length !== sched[i]!.length || v.some((x, k) => x !== sched[i]![k])) {
          outcomes[i]!.changes++;
          if (inForce(i, nowMs) !== v[v.length === 1 ? 0 : slotOf(nowMs, 24 / v.length)]) changedNow.add(i);
        }
      });
      sched = next;
    }
    const groupSpend: Record<string, number> = Object.fromEntries(groups.map((g) => [g, 0]));
    quotas.forEach((q, i) => {
      const a = inForce(i, nowMs);
      if (hour > historyHours && a !== prevAlloc[i]! && !changedNow.has(i)) outcomes[i]!.inDaySwitches++;
      prevAlloc[i] = a;
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
  outcomes.forEach((o, i) => (o.finalValue = Math.max(...sched[i]!)));
  return { policy: policyName, quotas: outcomes, spendByGroup, groupHoursOverBudget };
}

/** The next window's highest demand per time-of-day slot (one slot of 24 h: the plain oracle). */
function oracleStep(
  traces: TraceSet,
  hour: number,
  cadenceHours: number,
  ours: OursConfig,
  slotHours: number,
): number[][] {
  return traces.quotas.map((q) => {
    const need = new Array<number>(24 / slotHours).fill(0);
    const end = Math.min(q.samples.length, hour + cadenceHours);
    for (let h = hour; h < end; h++) {
      const k = slotOf(traces.startMs + h * 3_600_000, slotHours);
      need[k] = Math.max(need[k]!, q.kind === 'capacity' ? q.samples[h]!.peak : q.samples[h]!.avg);
    }
    const floor = ours.policy(q.resource).floor;
    // A slot the window did not reach (cadence < 24 h) takes the window's highest demand.
    const top = Math.max(...need);
    return need.map((v) => Math.max(floor, cadenceHours >= 24 || v > 0 ? v : top));
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

/**
 * Ours in time-of-day mode: a schedule per quota (dead bands per slot), then each budget group aligned slot by slot
 * (`alignScheduleWithBudget`, every hour within budget; water-fill where a tier cut leaves a slot over).
 */
function oursScheduleStep(
  traces: TraceSet,
  hour: number,
  nowMs: number,
  sched: number[][],
  ours: OursConfig,
  outcomes: QuotaOutcome[],
): number[][] {
  const tod = ours.timeOfDay!;
  const candidates = traces.quotas.map((q, i) => {
    const options = typeof tod.options === 'function' ? tod.options(q.resource) : tod.options;
    const policy = (tod.policy ?? ours.policy)(q.resource);
    const rec = recommendSchedule(sched[i]!, q.samples.slice(0, hour), policy, nowMs, options);
    if (rec.mode === 'schedule') outcomes[i]!.scheduledPlans++;
    const slotCount = rec.values.length;
    const current =
      sched[i]!.length === slotCount ? sched[i]! : new Array<number>(slotCount).fill(Math.max(...sched[i]!));
    return rec.values.map((v, k) => {
      const cur = current[k]!;
      const change = (v - cur) / cur;
      if (change > 0 && change < ours.upDeadband) return cur;
      if (change < 0 && -change < ours.downDeadband) return cur;
      return v;
    });
  });
  if (!ours.budgetAlignment) return candidates;
  const slotCount = Math.max(...candidates.map((c) => c.length));
  // Budget alignment needs one slot grid per group: widen flat (one-value) schedules to it.
  const widen = (c: number[]) => (c.length === slotCount ? c : new Array<number>(slotCount).fill(Math.max(...c)));
  const out = candidates.map(widen);
  const byGroup = new Map<string, number[]>();
  traces.quotas.forEach((q, i) => byGroup.set(q.budgetGroup, [...(byGroup.get(q.budgetGroup) ?? []), i]));
  for (const [group, idx] of [...byGroup.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const items: ScheduleBudgetItem[] = idx.map((i) => {
      const q = traces.quotas[i]!;
      return {
        quotaId: q.quotaId,
        tier: q.tier,
        priority: q.priority,
        resource: q.resource,
        guaranteed: ours.policy(q.resource).floor,
        recommendedSchedule: out[i]!,
        unitPricePerHour: q.unitPricePerHour,
      };
    });
    const budget = traces.budgets[group]!;
    let aligned =
      ours.budgetStrategy === 'water-fill'
        ? alignScheduleWithBudget(items, budget, { kind: 'water-fill' })
        : alignScheduleWithBudget(items, budget, {
            kind: 'tier-cut',
            cutByTier: ours.cutByTier,
            scaleToFit: ours.budgetStrategy === 'tier-cut-scaled',
            cutWeightByResource: ours.cutWeightByResource,
          });
    if (aligned.slotsOverBudget > 0) {
      aligned = alignScheduleWithBudget(
        aligned.items.map((it) => ({ ...it, recommendedSchedule: it.alignedSchedule })),
        budget,
        { kind: 'water-fill' },
      );
    }
    aligned.items.forEach((it, k) => {
      const i = idx[k]!;
      const step = ours.policy(traces.quotas[i]!.resource).roundUpTo;
      // Round down after a cut so that rounding cannot push the group back over budget.
      out[i] = it.alignedSchedule.map((v, s) =>
        v < out[i]![s]! && step ? Math.max(it.guaranteed, Math.floor(v / step) * step) : v,
      );
    });
  }
  // A schedule whose slots are all equal is kept as one value.
  return out.map((c) => (c.every((v) => v === c[0]) ? [c[0]!] : c));
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
  /** Slot-boundary switches within a day (time-of-day schedules), not counted in `changes`. */
  inDaySwitches: number;
  /** Share of re-plans that produced a real schedule (slots differ). */
  scheduledShare: number;
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
    inDaySwitches: qs.reduce((s, q) => s + q.inDaySwitches, 0),
    scheduledShare: ((p) => (p > 0 ? qs.reduce((s, q) => s + q.scheduledPlans, 0) / p : 0))(
      qs.reduce((s, q) => s + q.plans, 0),
    ),
    spend: alloc,
    quotas: qs.length,
  };
}
