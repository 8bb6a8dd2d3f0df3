import { z } from 'zod';

/**
 * Quotas, the rightsizing workflow's input, its plan and its approval update (issue 8). JSON-exact: times are ISO
 * strings, amounts plain numbers (megabytes, vcores, requests per second, bytes per second). Shared by the store
 * (lib/quota/store.ts), the activities, the `quota-rightsize` workflow, the client and the CLI.
 */

const IsoTime = z.iso.datetime();

/** One level of the quota hierarchy: letters, digits, `_` and `-`. */
const HierarchyName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "_" or "-", starting with a letter or digit');

/** A quota id: `org/project/workload` (the hierarchy), or any name of the same characters with `/` levels. */
export const QuotaId = z
  .string()
  .max(200)
  .regex(
    /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*){0,3}$/,
    'a quota id such as "ads/search/indexer" (lower-case levels separated by "/")',
  );
export type QuotaId = z.infer<typeof QuotaId>;

/** A user or group name. */
const PrincipalName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, 'letters, digits, ".", "_", "@" or "-" (at most 128)');

/** A budget group: the unit a rightsizing schedule and a budget cover. */
export const BudgetGroupName = HierarchyName;

/** Where a quota sits: org / project / workload. */
export const QuotaHierarchy = z.strictObject({
  org: HierarchyName,
  project: HierarchyName,
  workload: HierarchyName,
});
export type QuotaHierarchy = z.infer<typeof QuotaHierarchy>;

const Amount = z.number().finite().min(0);

/** Capacity for a Yunikorn queue: guaranteed and maximum memory and vcores, and concurrent applications. */
export const CapacityQuota = z.strictObject({
  kind: z.literal('capacity'),
  guaranteedMemoryMb: Amount,
  maxMemoryMb: Amount,
  guaranteedVcores: Amount,
  maxVcores: Amount,
  maxApps: z.number().int().min(0),
});
export type CapacityQuota = z.infer<typeof CapacityQuota>;

/** A rate limit enforced locally by the token-bucket limiter (lib/quota/limiter). */
export const RateLimitQuota = z.strictObject({
  kind: z.literal('rateLimit'),
  qps: Amount,
  /** `null`: bytes are not limited. */
  bandwidthBytesPerSec: Amount.nullable(),
});
export type RateLimitQuota = z.infer<typeof RateLimitQuota>;

/** A quota in a unit Sluice does not interpret (e.g. `gpu-hours`); dispatched by the webhook only. */
export const CustomQuota = z.strictObject({
  kind: z.literal('custom'),
  unit: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,62}$/, 'a unit name such as "gpu-hours"'),
  value: Amount,
});
export type CustomQuota = z.infer<typeof CustomQuota>;

/** What a quota limits. */
export const QuotaSpec = z.discriminatedUnion('kind', [CapacityQuota, RateLimitQuota, CustomQuota]);
export type QuotaSpec = z.infer<typeof QuotaSpec>;
export type QuotaKind = QuotaSpec['kind'];

/** Who owns a quota: users, and groups whose members all count as owners. */
export const QuotaOwners = z
  .strictObject({
    users: z.array(PrincipalName).max(100).default([]),
    groups: z.array(PrincipalName).max(100).default([]),
  })
  .refine((o) => o.users.length + o.groups.length > 0, { message: 'a quota needs at least one owner (user or group)' });
export type QuotaOwners = z.infer<typeof QuotaOwners>;

/** A slot-value list of a schedule: value `k` is in force during UTC hours [k·slotHours, (k+1)·slotHours). */
const SlotValues = z.array(z.number().finite().min(0)).min(1).max(24);

/**
 * A time-of-day schedule of a quota's rightsized fields (the rightsizer's time-of-day mode). The spec keeps the
 * highest slot value of each field (what validation, budgets and flat consumers see); dispatch applies the value of
 * the current UTC slot. Absent on a quota: the spec's values hold all day.
 */
export const QuotaSchedule = z
  .strictObject({
    slotHours: z
      .number()
      .int()
      .refine((h) => h >= 1 && 24 % h === 0, 'slotHours must divide 24'),
    values: z.strictObject({
      maxMemoryMb: SlotValues.optional(),
      maxVcores: SlotValues.optional(),
      maxApps: SlotValues.optional(),
      qps: SlotValues.optional(),
      bandwidthBytesPerSec: SlotValues.optional(),
      value: SlotValues.optional(),
    }),
  })
  .superRefine((s, ctx) => {
    const fields = Object.entries(s.values).filter(([, v]) => v !== undefined);
    if (fields.length === 0) ctx.addIssue({ code: 'custom', message: 'a schedule needs at least one field' });
    for (const [field, v] of fields) {
      if (v!.length !== 24 / s.slotHours) {
        ctx.addIssue({
          code: 'custom',
          path: ['values', field],
          message: `needs ${24 / s.slotHours} slot values for slotHours ${s.slotHours}, got ${v!.length}`,
        });
      }
    }
  });
export type QuotaSchedule = z.infer<typeof QuotaSchedule>;
export type ScheduledField = keyof QuotaSchedule['values'];

/** A quota as written: everything but the version and the bookkeeping. */
export const QuotaDraft = z.strictObject({
  id: QuotaId,
  hierarchy: QuotaHierarchy,
  spec: QuotaSpec,
  owners: QuotaOwners,
  /** Tier name, e.g. `critical`, `standard`, `batch`: the budget cut and the approval rules depend on it. */
  tier: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'a tier name such as "critical"'),
  budgetGroup: BudgetGroupName,
  /** Time-of-day values of rightsized fields; absent: the spec's values hold all day. */
  schedule: QuotaSchedule.optional(),
});
export type QuotaDraft = z.input<typeof QuotaDraft>;

/** A stored quota. `version` starts at 1 and goes up by one with every change. */
export const Quota = QuotaDraft.extend({
  version: z.number().int().min(1),
  updatedAt: IsoTime,
  updatedBy: z.string(),
});
export type Quota = z.infer<typeof Quota>;

/** One entry of the append-only audit log. */
export const QuotaAuditEntry = z.object({
  seq: z.number().int(),
  quotaId: z.string(),
  at: IsoTime,
  actor: z.string(),
  /** The database login that wrote the row (set by the database); null for rows from before logins were kept. */
  login: z.string().nullable().optional(),
  action: z.enum(['create', 'update', 'delete']),
  reason: z.string(),
  /** Version after the change (the deleted version for a delete). */
  version: z.number().int(),
  before: Quota.nullable(),
  after: Quota.nullable(),
});
export type QuotaAuditEntry = z.infer<typeof QuotaAuditEntry>;

/** Who acts: a user, and the groups the store resolved for them. */
export interface QuotaActor {
  user: string;
  groups?: readonly string[];
}

// ---- usage ----------------------------------------------------------------------------------------------------

/** The metrics usage samples come in; each maps to one quota field. */
export const UsageMetric = z.enum(['memoryMb', 'vcores', 'apps', 'qps', 'bandwidthBytesPerSec', 'custom']);
export type UsageMetric = z.infer<typeof UsageMetric>;

/** Where the rightsizer reads usage. */
export const UsageSourceConfig = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('iceberg'),
    /** `namespace.table` in the worker's catalog. @default quota.usage_hourly */
    table: z.string().default('quota.usage_hourly'),
  }),
  z.strictObject({
    type: z.literal('prometheus'),
    /** Base URL of a Prometheus-compatible API (`/api/v1/query_range` is appended). */
    url: z.url(),
    /**
     * A PromQL expression per metric that returns one series per quota with a `quota_id` label, e.g.
     * `{"memoryMb": "sum by (quota_id) (container_memory_working_set_bytes) / 1048576"}`.
     */
    queries: z.record(UsageMetric, z.string().min(1)),
  }),
]);
export type UsageSourceConfig = z.input<typeof UsageSourceConfig>;

// ---- rightsizing workflow ---------------------------------------------------------------------------------------

/** Prices per unit and hour, used to compute spend against the budget. A resource without a price costs nothing. */
export const UnitPrices = z.strictObject({
  memoryMb: z.number().min(0).default(0),
  vcores: z.number().min(0).default(0),
  apps: z.number().min(0).default(0),
  qps: z.number().min(0).default(0),
  bandwidthBytesPerSec: z.number().min(0).default(0),
  custom: z.number().min(0).default(0),
});

export const BudgetStrategy = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('tier-cut'),
    /** Fraction (0–1) of maximum resources cut per tier when over budget. */
    cutByTier: z.record(z.string(), z.number().min(0).max(1)),
  }),
  z.strictObject({ kind: z.literal('water-fill') }),
]);
export type BudgetStrategy = z.infer<typeof BudgetStrategy>;

/** Where `quota-rightsize` sends the applied quotas. Each target is optional. */
export const DispatchTargets = z.strictObject({
  /** Path of the Yunikorn `queues.yaml` rendered from the capacity quotas. */
  yunikornQueuesFile: z.string().min(1).optional(),
  /** Yunikorn partition name. @default default */
  yunikornPartition: z.string().min(1).default('default'),
  /** Path of the rate-limit rules file the in-process limiter watches. */
  rateLimitRulesFile: z.string().min(1).optional(),
  /** URL that gets a signed JSON POST of every applied change. The secret comes from the worker's environment. */
  webhookUrl: z.url().optional(),
});
export type DispatchTargets = z.input<typeof DispatchTargets>;

/** A duration such as `30s`, `15m`, `24h`, `3d`. */
const Duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration such as "30s", "15m", "24h" or "3d"');

/** Input of the `quota-rightsize` pipeline: one run rightsizes one budget group. */
export const QuotaRightsizeInput = z.strictObject({
  budgetGroup: BudgetGroupName,
  /** Spend allowed per hour for the group, in the currency of `unitPrices`; omitted: no budget alignment. */
  budgetPerHour: z.number().min(0).optional(),
  unitPrices: UnitPrices.default(UnitPrices.parse({})),
  budgetStrategy: BudgetStrategy.default({
    kind: 'tier-cut',
    cutByTier: { critical: 0, standard: 0.1, batch: 0.25 },
  }),
  /** Priority per tier for water-filling (higher keeps more). Unlisted tiers get 1. */
  tierPriority: z.record(z.string(), z.number()).default({ critical: 3, standard: 2, batch: 1 }),
  /** Hours of usage history read. @default 192 (8 days, as VPA's peak window) */
  lookbackHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(192),
  usage: UsageSourceConfig.default({ type: 'iceberg', table: 'quota.usage_hourly' }),
  /** A change at most this fraction of the current value (either way) applies without approval. @default 0.1 */
  autoApplyMaxChange: z.number().min(0).max(10).default(0.1),
  /** When the owners are reminded of a pending approval. @default 24h */
  reminderAfter: Duration.default('24h'),
  /** When an unanswered approval lapses; the quota then keeps its value. @default 72h */
  approvalTimeout: Duration.default('72h'),
  /** The principal the rightsizer writes as (the store must trust it). @default sluice-rightsizer */
  actor: z.string().min(1).default('sluice-rightsizer'),
  /** Plan only: apply and dispatch nothing. @default false */
  dryRun: z.boolean().default(false),
  /**
   * Only re-render the dispatch targets from the store (no plan, no writes), so that time-of-day schedules switch
   * slot: what the slot-boundary Schedule starts. @default false
   */
  dispatchOnly: z.boolean().default(false),
  dispatch: DispatchTargets.default(DispatchTargets.parse({})),
  /** The time the plan is computed for (ISO); the workflow's start time when omitted. For tests and replays. */
  asOf: IsoTime.optional(),
});
export type QuotaRightsizeInput = z.input<typeof QuotaRightsizeInput>;
export type QuotaRightsizeConfig = z.output<typeof QuotaRightsizeInput>;

/** The quota field a plan line changes. */
export const QuotaField = z.enum([
  'guaranteedMemoryMb',
  'maxMemoryMb',
  'guaranteedVcores',
  'maxVcores',
  'maxApps',
  'qps',
  'bandwidthBytesPerSec',
  'value',
]);
export type QuotaField = z.infer<typeof QuotaField>;

/** One changed (or kept) field of a quota in a plan. */
export const PlanFieldChange = z.object({
  field: QuotaField,
  current: z.number(),
  /** What usage alone recommends. */
  recommended: z.number(),
  /** After budget alignment. */
  proposed: z.number(),
  /** Time-of-day mode: the value per slot in force before the plan (when the quota had a schedule). */
  currentSlots: z.array(z.number()).optional(),
  /** Time-of-day mode: the proposed value per slot; `proposed` is then their maximum. */
  proposedSlots: z.array(z.number()).optional(),
  /** Slot length of `currentSlots`/`proposedSlots`. */
  slotHours: z.number().int().optional(),
  /** |proposed − current| / current (1 when current is 0 and proposed is not); with slots, the largest slot's. */
  changeRatio: z.number(),
  reason: z.string(),
});
export type PlanFieldChange = z.infer<typeof PlanFieldChange>;

/** How a plan entry is applied. */
export const PlanGate = z.enum(['none', 'auto', 'approval']);
export type PlanGate = z.infer<typeof PlanGate>;

/** Where a plan entry stands. */
export const PlanEntryStatus = z.enum([
  /** Nothing to change. */
  'unchanged',
  /** Waiting for the owners' decision. */
  'pending',
  'applied',
  'rejected',
  /** Nobody decided before the approval timeout; the quota kept its value. */
  'timed-out',
  /** The quota changed since the plan (version conflict); the change was not applied. */
  'conflict',
  /** The store refused the write (authorization or validation). */
  'refused',
  /** Dry run: nothing applied. */
  'planned',
]);
export type PlanEntryStatus = z.infer<typeof PlanEntryStatus>;

/** A quota's line in the plan. */
export const PlanEntry = z.object({
  quotaId: z.string(),
  kind: z.enum(['capacity', 'rateLimit', 'custom']),
  tier: z.string(),
  owners: z.object({ users: z.array(z.string()), groups: z.array(z.string()) }),
  /** The version the plan was computed from; applying checks it. */
  version: z.number().int(),
  before: QuotaSpec,
  after: QuotaSpec,
  /** The quota's schedule before the plan, when it has one. */
  scheduleBefore: QuotaSchedule.optional(),
  /** The planned schedule (the spec then holds each field's highest slot); absent: flat values. */
  scheduleAfter: QuotaSchedule.optional(),
  changes: z.array(PlanFieldChange),
  gate: PlanGate,
  status: PlanEntryStatus,
  warnings: z.array(z.string()),
  /** Who decided, and why, once decided; or what went wrong. */
  note: z.string().optional(),
});
export type PlanEntry = z.infer<typeof PlanEntry>;

/** The plan of one run: what would change, and why. `diff` is the readable form. */
export const QuotaPlan = z.object({
  budgetGroup: z.string(),
  asOf: IsoTime,
  budgetPerHour: z.number().nullable(),
  spendBefore: z.number(),
  spendAfter: z.number(),
  overBudget: z.boolean(),
  entries: z.array(PlanEntry),
  /** Plan-wide warnings (e.g. validation problems that dropped a change). */
  warnings: z.array(z.string()),
  diff: z.string(),
});
export type QuotaPlan = z.infer<typeof QuotaPlan>;

/** Which run a plan stored in the quota store belongs to (table `plans`, `plan_entries`). */
export const QuotaPlanKey = z.strictObject({ workflowId: z.string().min(1), runId: z.string().min(1) });
export type QuotaPlanKey = z.infer<typeof QuotaPlanKey>;

/** What the workflow keeps of a plan entry: the rest (before, after, diff, reasons) is in the quota store. */
export const PlanEntryState = z.object({
  quotaId: z.string(),
  gate: PlanGate,
  status: PlanEntryStatus,
  /** The version the plan was computed from. */
  version: z.number().int(),
  /** Who decided, and why, once decided; or what went wrong. */
  note: z.string().optional(),
});
export type PlanEntryState = z.infer<typeof PlanEntryState>;

/** At most this many plan-wide warnings travel in a summary (all of them are in the stored plan). */
export const PLAN_SUMMARY_WARNINGS = 20;

/**
 * A plan as the workflow holds and returns it: the header, each entry's state, and where the whole plan is stored.
 * Its size grows with the entries' ids only (about 100 bytes per quota), so thousands of quotas stay far below
 * Temporal's 2 MB payload limit. `sluice quota plan` joins it with the stored plan for the readable diff.
 */
export const QuotaPlanSummary = z.object({
  budgetGroup: z.string(),
  asOf: IsoTime,
  budgetPerHour: z.number().nullable(),
  spendBefore: z.number(),
  spendAfter: z.number(),
  overBudget: z.boolean(),
  /** The first {@link PLAN_SUMMARY_WARNINGS} plan-wide warnings. */
  warnings: z.array(z.string()),
  warningCount: z.number().int(),
  /** Where the full plan is stored; null for a dispatch-only run (no plan). */
  stored: QuotaPlanKey.nullable(),
  entries: z.array(PlanEntryState),
  /** Only runs started before plans were stored carry the readable diff here. */
  diff: z.string().optional(),
});
export type QuotaPlanSummary = z.infer<typeof QuotaPlanSummary>;

/** A plan's summary with each entry's state; `stored`: where the whole plan is (null: nowhere, diff included). */
export function summarizePlan(plan: QuotaPlan, stored: QuotaPlanKey | null): QuotaPlanSummary {
  return {
    budgetGroup: plan.budgetGroup,
    asOf: plan.asOf,
    budgetPerHour: plan.budgetPerHour,
    spendBefore: plan.spendBefore,
    spendAfter: plan.spendAfter,
    overBudget: plan.overBudget,
    warnings: plan.warnings.slice(0, PLAN_SUMMARY_WARNINGS),
    warningCount: plan.warnings.length,
    stored,
    entries: plan.entries.map((e) => ({
      quotaId: e.quotaId,
      gate: e.gate,
      status: e.status,
      version: e.version,
      ...(e.note ? { note: e.note } : {}),
    })),
    ...(stored ? {} : { diff: plan.diff }),
  };
}

/** Input of the `planQuotaRightsize` activity. */
export const PlanQuotaRightsizeInput = QuotaRightsizeInput.extend({ asOf: IsoTime });
export type PlanQuotaRightsizeInput = z.input<typeof PlanQuotaRightsizeInput>;

/** Input of the `planQuotaRightsizeStored` activity: plan, store the plan under `plan`, return its summary. */
export const PlanQuotaRightsizeStoredInput = PlanQuotaRightsizeInput.extend({ plan: QuotaPlanKey });
export type PlanQuotaRightsizeStoredInput = z.input<typeof PlanQuotaRightsizeStoredInput>;

/** One quota write the workflow asks the store for. */
export const QuotaWrite = z.strictObject({
  quotaId: QuotaId,
  expectedVersion: z.number().int().min(1),
  spec: QuotaSpec,
  /** A new schedule, or null to drop it; absent: the schedule is left as it is. */
  schedule: QuotaSchedule.nullable().optional(),
});
export type QuotaWrite = z.infer<typeof QuotaWrite>;

/**
 * Input of the `applyQuotaChanges` activity: the writes themselves (runs started before plans were stored), or the
 * ids of stored plan entries whose proposal (or, with `decisionId`, the decision's `modify` specs) is written.
 */
export const ApplyQuotaChangesInput = z.union([
  z.strictObject({
    writes: z.array(QuotaWrite).max(10_000),
    actor: z.string().min(1),
    reason: z.string().min(1).max(2000),
    /** All or nothing (an approval), or each write on its own (auto-apply: one conflict must not block the rest). */
    atomic: z.boolean(),
  }),
  z.strictObject({
    plan: QuotaPlanKey,
    quotaIds: z.array(QuotaId).min(1).max(100_000),
    actor: z.string().min(1),
    reason: z.string().min(1).max(2000),
    atomic: z.boolean(),
    /** The recorded decision that decides these entries; a `modify` takes its specs from it. */
    decisionId: z.number().int().positive().optional(),
  }),
]);
export type ApplyQuotaChangesInput = z.input<typeof ApplyQuotaChangesInput>;

/** The outcome of one write. */
export const QuotaWriteOutcome = z.object({
  quotaId: z.string(),
  status: z.enum(['applied', 'conflict', 'refused']),
  version: z.number().int().optional(),
  message: z.string().optional(),
});
export type QuotaWriteOutcome = z.infer<typeof QuotaWriteOutcome>;

/**
 * Input of the `authorizeQuotaDecision` activity: may `actor` decide on these quotas (runs started before decisions
 * were recorded)? Or: read recorded decision `decisionId`, check it is this run's, and authorize its recorded actor.
 */
export const AuthorizeQuotaDecisionInput = z.union([
  z.strictObject({
    quotaIds: z.array(QuotaId).min(1),
    actor: z.string().min(1),
  }),
  z.strictObject({
    decisionId: z.number().int().positive(),
    workflowId: z.string().min(1),
    budgetGroup: BudgetGroupName,
    /** The entries open for a decision: what a decision without quota ids decides. */
    pending: z.array(QuotaId).max(100_000),
  }),
]);
export type AuthorizeQuotaDecisionInput = z.input<typeof AuthorizeQuotaDecisionInput>;

/** A recorded decision as `authorizeQuotaDecision` resolved it: who (from the store), what, and on which quotas. */
export const AuthorizedQuotaDecision = z.object({
  decisionId: z.number().int(),
  decision: z.enum(['approve', 'reject', 'modify']),
  /** The decision's recorded actor (the login that recorded it, or the user it acted for). */
  actor: z.string(),
  quotaIds: z.array(z.string()),
  reason: z.string().nullable(),
});
export type AuthorizedQuotaDecision = z.infer<typeof AuthorizedQuotaDecision>;

/** Input of the `dispatchQuotas` activity. */
export const DispatchQuotasInput = z.strictObject({
  budgetGroup: BudgetGroupName,
  targets: DispatchTargets,
  /** The entries applied in this step, sent to the webhook. */
  applied: z.array(z.object({ quotaId: z.string(), before: QuotaSpec, after: QuotaSpec, actor: z.string() })),
  /** Applied entries of a stored plan, also sent to the webhook (before, what was applied, and by whom). */
  appliedFromPlan: z.strictObject({ plan: QuotaPlanKey, quotaIds: z.array(QuotaId) }).optional(),
  /** The time scheduled quotas are rendered for (Yunikorn's value in force); the worker's clock when absent. */
  at: IsoTime.optional(),
});
export type DispatchQuotasInput = z.input<typeof DispatchQuotasInput>;

export const DispatchQuotasResult = z.object({
  yunikornQueuesFile: z.string().nullable(),
  yunikornQueues: z.number().int(),
  rateLimitRulesFile: z.string().nullable(),
  rateLimitRules: z.number().int(),
  webhookStatus: z.number().int().nullable(),
  webhookAttempts: z.number().int(),
});
export type DispatchQuotasResult = z.infer<typeof DispatchQuotasResult>;

/** Input of the `remindQuotaApprovers` activity. */
export const RemindQuotaApproversInput = z.strictObject({
  budgetGroup: BudgetGroupName,
  workflowId: z.string(),
  pending: z.array(
    z.object({
      quotaId: z.string(),
      /** Absent: read from the stored plan `plan`. */
      owners: z.object({ users: z.array(z.string()), groups: z.array(z.string()) }).optional(),
    }),
  ),
  plan: QuotaPlanKey.optional(),
  deadline: IsoTime,
  webhookUrl: z.url().optional(),
});
export type RemindQuotaApproversInput = z.input<typeof RemindQuotaApproversInput>;

// ---- approval update --------------------------------------------------------------------------------------------

/**
 * The `approve` update's argument: the id of a decision recorded in the quota store (`QuotaStore.recordDecision`,
 * which `sluice quota approve` does under the authenticated database login). Who decided is what the store
 * recorded; an update cannot name a user.
 */
export const QuotaDecisionRef = z.strictObject({ decisionId: z.number().int().positive() });
export type QuotaDecisionRef = z.infer<typeof QuotaDecisionRef>;

/**
 * The `approve` update's argument in runs started before decisions were recorded (their histories still replay):
 * one owner's decision on pending entries, the user as given.
 */
export const QuotaDecision = z.strictObject({
  decision: z.enum(['approve', 'reject', 'modify']),
  /** Who decides; the store checks that they own (or approve for) every quota decided on. */
  user: z.string().min(1),
  /** Entries decided on. @default every pending entry */
  quotaIds: z.array(QuotaId).optional(),
  /** For `modify`: the spec to apply instead of the proposal, per quota id. */
  specs: z.record(z.string(), QuotaSpec).optional(),
  reason: z.string().max(2000).optional(),
});
export type QuotaDecision = z.input<typeof QuotaDecision>;

/** What the `approve` update returns. */
export const QuotaDecisionResult = z.object({
  decision: z.enum(['approve', 'reject', 'modify']),
  decided: z.array(z.string()),
  outcomes: z.array(QuotaWriteOutcome),
  stillPending: z.array(z.string()),
});
export type QuotaDecisionResult = z.infer<typeof QuotaDecisionResult>;

/** Phases of `quota-rightsize`, shown in the progress query and `SluicePhase`. */
export const QuotaRightsizePhase = z.enum(['planning', 'applying', 'awaiting-approval', 'dispatching', 'done']);
export type QuotaRightsizePhase = z.infer<typeof QuotaRightsizePhase>;

/** What the workflow returns. */
export const QuotaRightsizeResult = z.object({
  budgetGroup: z.string(),
  applied: z.number().int(),
  rejected: z.number().int(),
  timedOut: z.number().int(),
  conflicts: z.number().int(),
  refused: z.number().int(),
  unchanged: z.number().int(),
  reminders: z.number().int(),
  plan: QuotaPlanSummary,
});
export type QuotaRightsizeResult = z.infer<typeof QuotaRightsizeResult>;

/** Update, query and signal names of `quota-rightsize`. */
export const QUOTA_RIGHTSIZE_HANDLERS = { approve: 'approve', plan: 'plan', reminder: 'approval-reminder' } as const;

/** Workflow id of a budget group's manually started run; scheduled runs use the schedule id as prefix. */
export function quotaRightsizeWorkflowId(budgetGroup: string): string {
  return `quota-rightsize/${budgetGroup}`;
}
