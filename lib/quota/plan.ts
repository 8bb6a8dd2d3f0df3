import type {
  PlanEntry,
  PlanFieldChange,
  PlanGate,
  Quota,
  QuotaField,
  QuotaPlan,
  QuotaRightsizeConfig,
  QuotaSchedule,
  QuotaSpec,
  ScheduledField,
  UsageMetric,
} from '../../schemas/quota.js';
import { formatSlots, valuesByUtcHour } from './schedule.js';
import type { UsageByQuota } from './usage.js';

/**
 * The rightsizing planner: quotas + hourly usage → a plan of new values, aligned with the budget, with a gate per
 * quota (auto-apply or approval) and a readable diff. Pure: the recommender and the budget alignment come in
 * through {@link Rightsizer} (activities/quota-activities.ts wires lib/quota/rightsizing into it), and time is
 * `nowMs`.
 *
 * Rules that hold whatever the recommender says: a quota without usage keeps its value and the plan warns; a
 * value never goes to 0 (or below the policy floor); a maximum never drops below its guarantee (the rightsizer
 * does not take guarantees away).
 */

/** The resource names the recommender and the budget know. */
export type RightsizeResource = 'memory' | 'vcores' | 'apps' | 'qps' | 'bandwidth' | 'custom';

/** The recommender and budget alignment, as the planner uses them. */
export interface Rightsizer {
  /** A new value for `current` from hourly samples (in the resource's recommender unit). */
  recommend(
    resource: RightsizeResource,
    current: number,
    samples: ReadonlyArray<{ hourStartMs: number; avg: number; peak: number }>,
    nowMs: number,
  ): { value: number; warnings: string[]; reason: string; floor: number };
  /**
   * Time-of-day mode (optional): a value per slot of the UTC day for `current` (the schedule in force, or the flat
   * value). `mode: 'flat'` means the usage has no daily structure and the flat {@link recommend} value is used.
   */
  recommendSchedule?(
    resource: RightsizeResource,
    current: number | readonly number[],
    samples: ReadonlyArray<{ hourStartMs: number; avg: number; peak: number }>,
    nowMs: number,
  ): { mode: 'schedule' | 'flat'; slotHours: number; values: number[]; warnings: string[]; reason: string };
  /** Cuts maxima to fit the budget; returns the aligned maximum per item, in input order. */
  align(
    items: ReadonlyArray<{
      quotaId: string;
      tier: string;
      priority: number;
      resource: string;
      guaranteed: number;
      recommendedMax: number;
      unitPricePerHour: number;
    }>,
    budgetPerHour: number,
    strategy: QuotaRightsizeConfig['budgetStrategy'],
  ): { alignedMax: number[]; cutReasons: Array<string | undefined>; overBudget: boolean };
  /**
   * Time-of-day budget alignment (optional): every item is a value per UTC hour (24 values); each hour is aligned with
   * the hourly budget on its own, so a group over budget only in its peak hours is cut only there. Returns the
   * aligned hourly values per item, in input order, and how many hours are still over budget.
   */
  alignSchedule?(
    items: ReadonlyArray<{
      quotaId: string;
      tier: string;
      priority: number;
      resource: string;
      guaranteed: number;
      recommendedSchedule: readonly number[];
      unitPricePerHour: number;
    }>,
    budgetPerHour: number,
    strategy: QuotaRightsizeConfig['budgetStrategy'],
  ): { aligned: number[][]; cutReasons: Array<string | undefined>; slotsOverBudget: number };
}

/** What one rightsized field is. */
interface FieldPlan {
  field: QuotaField;
  metric: UsageMetric;
  resource: RightsizeResource;
  /** Quota units per recommender unit (bandwidth is recommended in MB/s, stored in bytes/s). */
  scale: number;
  integer: boolean;
  current: number;
  guaranteed: number;
}

function rightsizedFields(spec: QuotaSpec): FieldPlan[] {
  switch (spec.kind) {
    case 'capacity':
      return [
        {
          field: 'maxMemoryMb',
          metric: 'memoryMb',
          resource: 'memory',
          scale: 1,
          integer: true,
          current: spec.maxMemoryMb,
          guaranteed: spec.guaranteedMemoryMb,
        },
        {
          field: 'maxVcores',
          metric: 'vcores',
          resource: 'vcores',
          scale: 1,
          integer: false,
          current: spec.maxVcores,
          guaranteed: spec.guaranteedVcores,
        },
        {
          field: 'maxApps',
          metric: 'apps',
          resource: 'apps',
          scale: 1,
          integer: true,
          current: spec.maxApps,
          guaranteed: 0,
        },
      ];
    case 'rateLimit':
      return [
        { field: 'qps', metric: 'qps', resource: 'qps', scale: 1, integer: false, current: spec.qps, guaranteed: 0 },
        ...(spec.bandwidthBytesPerSec === null
          ? []
          : [
              {
                field: 'bandwidthBytesPerSec' as const,
                metric: 'bandwidthBytesPerSec' as const,
                resource: 'bandwidth' as const,
                scale: 1e6,
                integer: true,
                current: spec.bandwidthBytesPerSec,
                guaranteed: 0,
              },
            ]),
      ];
    case 'custom':
      return [
        {
          field: 'value',
          metric: 'custom',
          resource: 'custom',
          scale: 1,
          integer: false,
          current: spec.value,
          guaranteed: 0,
        },
      ];
  }
}

function withField(spec: QuotaSpec, field: QuotaField, value: number): QuotaSpec {
  return { ...spec, [field]: value } as QuotaSpec;
}

/** Spend per hour of a spec at the given prices. */
export function specSpend(spec: QuotaSpec, prices: QuotaRightsizeConfig['unitPrices']): number {
  return rightsizedFields(spec).reduce((sum, f) => sum + f.current * prices[f.metric], 0);
}

const EPSILON = 1e-9;

function roundTo(value: number, integer: boolean): number {
  return integer ? Math.ceil(value - EPSILON) : Math.round(value * 1000) / 1000;
}

/** |proposed − current| / current; 1 when current is 0 and proposed is not. */
export function changeRatio(current: number, proposed: number): number {
  if (Math.abs(proposed - current) <= EPSILON) return 0;
  if (current <= 0) return 1;
  return Math.abs(proposed - current) / current;
}

/** The largest per-hour change ratio between two (possibly scheduled) values of a field. */
export function scheduleChangeRatio(
  current: number,
  proposed: number,
  currentSlots?: { values: readonly number[]; slotHours: number },
  proposedSlots?: { values: readonly number[]; slotHours: number },
): number {
  if (!currentSlots && !proposedSlots) return changeRatio(current, proposed);
  const cur = currentSlots ? valuesByUtcHour(currentSlots.values, currentSlots.slotHours) : new Array(24).fill(current);
  const prop = proposedSlots
    ? valuesByUtcHour(proposedSlots.values, proposedSlots.slotHours)
    : new Array(24).fill(proposed);
  return Math.max(...cur.map((c: number, h) => changeRatio(c, prop[h] as number)));
}

/** Inputs of {@link buildPlan}. */
export interface BuildPlanInput {
  config: QuotaRightsizeConfig;
  quotas: readonly Quota[];
  usage: UsageByQuota;
  nowMs: number;
  rightsizer: Rightsizer;
  /** Validation problems per quota id for the proposed spec (the store's validators, run as a dry run). */
  validate?: (quota: Quota, proposed: QuotaSpec, schedule: QuotaSchedule | null) => Promise<string[]>;
  /**
   * The same for every proposal at once (problems per proposal, in order): what the activity uses, so thousands of
   * quotas are checked against one read of the store. Takes precedence over `validate`.
   */
  validateAll?: (
    proposals: ReadonlyArray<{ quota: Quota; proposed: QuotaSpec; schedule: QuotaSchedule | null }>,
  ) => Promise<string[][]>;
}

/** Builds the plan of one budget group. */
export async function buildPlan(input: BuildPlanInput): Promise<QuotaPlan> {
  const { config, nowMs, rightsizer } = input;
  const quotas = [...input.quotas].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const planWarnings: string[] = [];

  interface Draft {
    quota: Quota;
    fields: Array<
      FieldPlan & {
        recommended: number;
        proposed: number;
        reason: string;
        floor: number;
        /** The schedule in force for this field (quota units), when the quota has one. */
        currentSlots?: number[];
        /** Time-of-day mode: proposed value per slot (quota units); `proposed` is their maximum. */
        slots?: number[];
        slotHoursOf?: number;
      }
    >;
    warnings: string[];
  }
  const drafts: Draft[] = quotas.map((quota) => {
    const warnings: string[] = [];
    const slotHours = quota.schedule?.slotHours ?? 24;
    const fields = rightsizedFields(quota.spec).map((f) => {
      const samples = input.usage.get(quota.id)?.get(f.metric) ?? [];
      // In force: the schedule capped by the spec's value (as dispatch applies it).
      const inForce = quota.schedule?.values[f.field as ScheduledField]?.map((v) => Math.min(v, f.current));
      const currentSlots = inForce ? { currentSlots: [...inForce] } : {};
      if (samples.length === 0) {
        warnings.push(`${f.field}: no ${f.metric} usage in the last ${config.lookbackHours} h; kept ${f.current}`);
        // Kept as is, schedule included.
        return {
          ...f,
          ...currentSlots,
          ...(inForce ? { slots: [...inForce], slotHoursOf: slotHours } : {}),
          recommended: f.current,
          proposed: f.current,
          reason: 'no usage data: kept',
          floor: 0,
        };
      }
      const scaled = samples.map((s) => ({ hourStartMs: s.hourStartMs, avg: s.avg / f.scale, peak: s.peak / f.scale }));
      const rec = rightsizer.recommend(f.resource, f.current / f.scale, scaled, nowMs);
      for (const w of rec.warnings) warnings.push(`${f.field}: ${w}`);
      let value = roundTo(rec.value * f.scale, f.integer);
      let reason = rec.reason;
      if (!(value > 0) || !Number.isFinite(value)) {
        warnings.push(`${f.field}: the recommender proposed ${rec.value}; a quota never goes to 0, kept ${f.current}`);
        value = f.current;
        reason = 'kept: a quota never goes to 0';
      }
      if (value < f.guaranteed) {
        reason += `; raised to the guarantee ${f.guaranteed}`;
        value = f.guaranteed;
      }
      const flat = { ...f, ...currentSlots, recommended: value, proposed: value, reason, floor: rec.floor * f.scale };
      if (!rightsizer.recommendSchedule) return flat;
      // Time-of-day mode: the library decides whether the usage is diurnal enough for a schedule.
      const sched = rightsizer.recommendSchedule(
        f.resource,
        inForce ? inForce.map((v) => v / f.scale) : f.current / f.scale,
        scaled,
        nowMs,
      );
      if (sched.mode !== 'schedule') return flat;
      const slots = sched.values.map((v) => Math.max(roundTo(v * f.scale, f.integer), f.guaranteed));
      if (slots.some((v) => !(v > 0) || !Number.isFinite(v))) {
        warnings.push(`${f.field}: the schedule had a slot at 0 or not finite; kept the flat value`);
        return flat;
      }
      for (const w of sched.warnings) warnings.push(`${f.field}: ${w}`);
      const top = Math.max(...slots);
      return { ...flat, recommended: top, proposed: top, reason: sched.reason, slots, slotHoursOf: sched.slotHours };
    });
    return { quota, fields, warnings };
  });

  // Budget: only priced fields take part; the rest keep their recommendation.
  const spendBefore = quotas.reduce((sum, q) => sum + specSpend(q.spec, config.unitPrices), 0);
  let overBudget = false;
  if (config.budgetPerHour !== undefined) {
    const refs: Array<{ draft: Draft; index: number }> = [];
    const items = drafts.flatMap((draft) =>
      draft.fields.flatMap((f, index) => {
        const price = config.unitPrices[f.metric];
        if (!(price > 0)) return [];
        refs.push({ draft, index });
        return [
          {
            quotaId: draft.quota.id,
            tier: draft.quota.tier,
            priority: config.tierPriority[draft.quota.tier] ?? 1,
            resource: f.field,
            guaranteed: f.guaranteed,
            recommendedMax: f.recommended,
            unitPricePerHour: price,
          },
        ];
      }),
    );
    const scheduled = refs.some(({ draft, index }) => draft.fields[index]!.slots !== undefined);
    if (items.length > 0 && scheduled && rightsizer.alignSchedule) {
      // Time-of-day: align hour by hour (a flat value is the same in every hour), then back to each field's slots.
      const hourly = refs.map(({ draft, index }) => {
        const f = draft.fields[index]!;
        return f.slots && f.slotHoursOf
          ? valuesByUtcHour(f.slots, f.slotHoursOf)
          : new Array<number>(24).fill(f.recommended);
      });
      const aligned = rightsizer.alignSchedule(
        items.map(({ recommendedMax: _max, ...item }, k) => ({ ...item, recommendedSchedule: hourly[k]! })),
        config.budgetPerHour,
        config.budgetStrategy,
      );
      overBudget = aligned.slotsOverBudget > 0;
      refs.forEach(({ draft, index }, k) => {
        const f = draft.fields[index]!;
        const hours = aligned.aligned[k]!;
        // A slot (or a flat value) must fit every hour it covers: the lowest aligned hour of it.
        const slotHours = f.slots && f.slotHoursOf ? f.slotHoursOf : 24;
        const want = f.slots && f.slotHoursOf ? f.slots : [f.recommended];
        const values = want.map((v, s) => {
          let value = roundTo(Math.min(v, ...hours.slice(s * slotHours, (s + 1) * slotHours)), f.integer);
          if (!(value > 0)) {
            const kept = Math.max(f.floor, Math.min(f.current, v));
            draft.warnings.push(
              `${f.field}: the budget would take it to ${value}; a quota never goes to 0, set ${kept}`,
            );
            value = kept;
          }
          return Math.max(value, f.guaranteed);
        });
        if (values.some((v, s) => Math.abs(v - want[s]!) > EPSILON)) {
          f.reason += `; budget: ${aligned.cutReasons[k] ?? 'aligned hour by hour'}`;
        }
        if (f.slots) f.slots = values;
        f.proposed = Math.max(...values);
      });
      if (overBudget) {
        planWarnings.push(
          `budget group "${config.budgetGroup}" is still over its budget of ${config.budgetPerHour}/h in ` +
            `${aligned.slotsOverBudget} hour(s) of the day after alignment (the guarantees alone may not fit)`,
        );
      }
    } else if (items.length > 0) {
      const aligned = rightsizer.align(items, config.budgetPerHour, config.budgetStrategy);
      overBudget = aligned.overBudget;
      refs.forEach(({ draft, index }, k) => {
        const f = draft.fields[index]!;
        let value = roundTo(aligned.alignedMax[k]!, f.integer);
        const cut = aligned.cutReasons[k];
        if (Math.abs(value - f.recommended) > EPSILON) {
          f.reason += `; budget: ${cut ?? `aligned to ${value}`}`;
        }
        if (!(value > 0)) {
          const kept = Math.max(f.floor, Math.min(f.current, f.recommended));
          draft.warnings.push(`${f.field}: the budget would take it to ${value}; a quota never goes to 0, set ${kept}`);
          value = kept;
        }
        f.proposed = Math.max(value, f.guaranteed);
        // A schedule is capped at the aligned maximum: every hour's spend then fits the budget too.
        if (f.slots) {
          f.slots = f.slots.map((v) => Math.max(Math.min(v, f.proposed), f.guaranteed));
          f.proposed = Math.max(...f.slots);
        }
      });
      if (overBudget) {
        planWarnings.push(
          `budget group "${config.budgetGroup}" is still over its budget of ${config.budgetPerHour}/h after alignment ` +
            '(the guarantees alone may not fit)',
        );
      }
    }
  }

  /** A quota's proposed spec, schedule, field changes and gate (before validation). */
  function propose(quota: Quota, fields: Draft['fields']) {
    let after = quota.spec;
    const scheduled: QuotaSchedule['values'] = {};
    let scheduleSlotHours: number | undefined;
    const changes: PlanFieldChange[] = fields.map((f) => {
      after = withField(after, f.field, f.proposed);
      const cur =
        f.currentSlots && quota.schedule ? { values: f.currentSlots, slotHours: quota.schedule.slotHours } : undefined;
      const prop = f.slots && f.slotHoursOf ? { values: f.slots, slotHours: f.slotHoursOf } : undefined;
      if (prop) {
        scheduled[f.field as ScheduledField] = prop.values;
        scheduleSlotHours = prop.slotHours;
      }
      return {
        field: f.field,
        current: f.current,
        recommended: f.recommended,
        proposed: f.proposed,
        ...(cur ? { currentSlots: cur.values } : {}),
        ...(prop ? { proposedSlots: prop.values, slotHours: prop.slotHours } : {}),
        changeRatio: scheduleChangeRatio(f.current, f.proposed, cur, prop),
        reason: f.reason,
      };
    });
    const scheduleAfter: QuotaSchedule | undefined =
      scheduleSlotHours === undefined ? undefined : { slotHours: scheduleSlotHours, values: scheduled };
    const biggest = Math.max(0, ...changes.map((c) => c.changeRatio));
    const gate: PlanGate = biggest === 0 ? 'none' : biggest <= config.autoApplyMaxChange ? 'auto' : 'approval';
    return { quota, after, scheduleAfter, changes, gate };
  }
  const proposals = drafts.map((draft) => propose(draft.quota, draft.fields));
  const toCheck = proposals.filter((p) => p.gate !== 'none');
  const problemsOf = new Map<string, string[]>();
  if (input.validateAll && toCheck.length > 0) {
    const found = await input.validateAll(
      toCheck.map((p) => ({ quota: p.quota, proposed: p.after, schedule: p.scheduleAfter ?? null })),
    );
    toCheck.forEach((p, k) => problemsOf.set(p.quota.id, found[k] ?? []));
  } else if (input.validate) {
    for (const p of toCheck)
      problemsOf.set(p.quota.id, await input.validate(p.quota, p.after, p.scheduleAfter ?? null));
  }

  const entries: PlanEntry[] = [];
  for (const [k, draft] of drafts.entries()) {
    const { quota } = draft;
    let { after, scheduleAfter, gate } = proposals[k]!;
    const { changes } = proposals[k]!;
    let note: string | undefined;
    const problems = problemsOf.get(quota.id) ?? [];
    if (gate !== 'none' && problems.length > 0) {
      note = `not applicable: ${problems.join('; ')}`;
      planWarnings.push(`${quota.id}: the proposed change fails validation (${problems.join('; ')}); kept as is`);
      gate = 'none';
      after = quota.spec;
      scheduleAfter = quota.schedule;
    }
    if (gate === 'none') scheduleAfter = quota.schedule;
    entries.push({
      quotaId: quota.id,
      kind: quota.spec.kind,
      tier: quota.tier,
      owners: { users: [...quota.owners.users], groups: [...quota.owners.groups] },
      version: quota.version,
      before: quota.spec,
      after,
      ...(quota.schedule ? { scheduleBefore: quota.schedule } : {}),
      ...(scheduleAfter ? { scheduleAfter } : {}),
      changes,
      gate,
      status: gate === 'none' ? 'unchanged' : config.dryRun ? 'planned' : 'pending',
      warnings: draft.warnings,
      ...(note ? { note } : {}),
    });
  }
  const spendAfter = entries.reduce((sum, e) => sum + specSpend(e.after, config.unitPrices), 0);
  const plan: QuotaPlan = {
    budgetGroup: config.budgetGroup,
    asOf: new Date(nowMs).toISOString(),
    budgetPerHour: config.budgetPerHour ?? null,
    spendBefore,
    spendAfter,
    overBudget,
    entries,
    warnings: planWarnings,
    diff: '',
  };
  plan.diff = renderPlanDiff(plan);
  return plan;
}

function num(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

function pct(current: number, proposed: number): string {
  if (current === 0) return proposed === 0 ? '±0%' : 'new';
  const p = ((proposed - current) / current) * 100;
  return `${p >= 0 ? '+' : ''}${p.toFixed(1)}%`;
}

/**
 * The plan as a readable diff, one block per quota: `~` changes, `=` unchanged; the gate and status in brackets;
 * warnings with `!`.
 */
export function renderPlanDiff(plan: Omit<QuotaPlan, 'diff'>): string {
  const lines: string[] = [];
  const budget = plan.budgetPerHour === null ? 'no budget' : `budget ${plan.budgetPerHour.toFixed(2)}/h`;
  lines.push(
    `quota-rightsize plan for budget group "${plan.budgetGroup}" as of ${plan.asOf}: ${budget}, ` +
      `spend ${plan.spendBefore.toFixed(2)}/h → ${plan.spendAfter.toFixed(2)}/h${plan.overBudget ? ' (still over budget)' : ''}`,
  );
  for (const e of plan.entries) {
    const changed = e.changes.filter((c) => c.changeRatio > 0);
    const mark = changed.length > 0 && e.gate !== 'none' ? '~' : '=';
    lines.push(`${mark} ${e.quotaId} (${e.kind}, tier ${e.tier}, v${e.version}) [${e.gate}: ${e.status}]`);
    for (const c of e.gate === 'none' ? [] : changed) {
      const slotHours = c.slotHours ?? e.scheduleBefore?.slotHours ?? 24;
      const from = c.currentSlots
        ? formatSlots(c.currentSlots, e.scheduleBefore?.slotHours ?? 24, num)
        : num(c.current);
      if (c.proposedSlots) {
        lines.push(
          `    ${c.field}: ${from} → ${formatSlots(c.proposedSlots, slotHours, num)} ` +
            `(max ${pct(c.current, c.proposed)}, largest slot change ${(c.changeRatio * 100).toFixed(1)}%)  ${c.reason}`,
        );
      } else if (c.currentSlots) {
        lines.push(
          `    ${c.field}: ${from} → ${num(c.proposed)} all day (max ${pct(c.current, c.proposed)})  ${c.reason}`,
        );
      } else {
        lines.push(
          `    ${c.field}: ${num(c.current)} → ${num(c.proposed)} (${pct(c.current, c.proposed)})  ${c.reason}`,
        );
      }
    }
    if (e.note) lines.push(`    note: ${e.note}`);
    for (const w of e.warnings) lines.push(`    ! ${w}`);
  }
  for (const w of plan.warnings) lines.push(`! ${w}`);
  return lines.join('\n');
}
