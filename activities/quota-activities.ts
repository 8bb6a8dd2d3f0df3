import { ApplicationFailure, Context } from '@temporalio/activity';
import client from 'prom-client';
import type { z } from 'zod';
import type { SqlCatalog } from '../lib/iceberg/catalog/index.js';
import { writeRateLimitRules } from '../lib/quota/dispatch/rate-limit-rules.js';
import { postWebhook } from '../lib/quota/dispatch/webhook.js';
import { writeYunikornQueues } from '../lib/quota/dispatch/yunikorn.js';
import {
  QuotaAccessDenied,
  QuotaDecisionInvalid,
  QuotaValidationError,
  QuotaVersionConflict,
  isQuotaError,
} from '../lib/quota/errors.js';
import { buildPlan, type Rightsizer } from '../lib/quota/plan.js';
import { alignWithBudget } from '../lib/quota/rightsizing/budget.js';
import { defaultPolicy, recommend } from '../lib/quota/rightsizing/recommend.js';
import {
  alignScheduleWithBudget,
  defaultScheduleOptions,
  recommendSchedule,
} from '../lib/quota/rightsizing/schedule.js';
import type { QuotaStore } from '../lib/quota/store.js';
import { icebergUsageReader, prometheusUsageReader, type UsageReader } from '../lib/quota/usage.js';
import type { FileIO } from '../lib/storage/file-io.js';
import type { Logger } from '../lib/observability/logger.js';
import {
  ApplyQuotaChangesInput,
  AuthorizeQuotaDecisionInput,
  DispatchQuotasInput,
  PlanQuotaRightsizeInput,
  PlanQuotaRightsizeStoredInput,
  summarizePlan,
  RemindQuotaApproversInput,
  UsageSourceConfig,
  type AuthorizedQuotaDecision,
  type DispatchQuotasResult,
  type QuotaPlan,
  type QuotaPlanKey,
  type QuotaPlanSummary,
  type QuotaSpec,
  type QuotaWriteOutcome,
} from '../schemas/quota.js';
import { toActivityFailure, typedFailure, validateActivityInput } from './failures.js';

/** Dependencies of the quota activities; the cpu worker builds them (workers/run-worker.ts). */
export interface QuotaActivityDeps {
  store: QuotaStore;
  /** The catalog and FileIO the Iceberg usage table lives in; required for `usage.type = iceberg`. */
  catalog?: SqlCatalog;
  io?: FileIO;
  /** Builds a usage reader; tests pass their own. @default Iceberg via `catalog`/`io`, or Prometheus over HTTP */
  usageReaderFor?: (config: UsageSourceConfig) => UsageReader;
  /** HMAC secret of the webhook target (SLUICE_QUOTA_WEBHOOK_SECRET). */
  webhookSecret?: string;
  /** Webhook retry tuning. @default 5 attempts from 200 ms */
  webhook?: { maxAttempts?: number; initialBackoffMs?: number };
  /** Where `sluice_quota_*` metrics go. @default none */
  metricsRegistry?: client.Registry;
  logger?: Logger;
  /** @default Date.now */
  now?: () => number;
}

/**
 * The one place Sluice's rightsizing math (lib/quota/rightsizing, built separately) meets the planner: the
 * recommender with its per-resource default policy, and the budget alignment.
 */
export const defaultRightsizer: Rightsizer = {
  recommend(resource, current, samples, nowMs) {
    const policy = defaultPolicy(resource);
    const rec = recommend(current, samples, policy, nowMs);
    return { value: rec.value, warnings: rec.warnings, reason: rec.reason, floor: policy.floor };
  },
  recommendSchedule(resource, current, samples, nowMs) {
    const r = recommendSchedule(current, samples, defaultPolicy(resource), nowMs, defaultScheduleOptions(resource));
    return { mode: r.mode, slotHours: r.slotHours, values: r.values, warnings: r.warnings, reason: r.reason };
  },
  align(items, budgetPerHour, strategy) {
    const aligned = alignWithBudget(items, budgetPerHour, strategy);
    return {
      alignedMax: aligned.items.map((i) => i.alignedMax),
      cutReasons: aligned.items.map((i) => i.cutReason),
      overBudget: aligned.overBudget,
    };
  },
  alignSchedule(items, budgetPerHour, strategy) {
    // Hour by hour (every-slot): each hour of the day within the hourly budget.
    const aligned = alignScheduleWithBudget(items, budgetPerHour, strategy, 'every-slot');
    return {
      aligned: aligned.items.map((i) => i.alignedSchedule),
      cutReasons: aligned.items.map((i) => i.cutReason),
      slotsOverBudget: aligned.slotsOverBudget,
    };
  },
};

function counter(registry: client.Registry | undefined, name: string, help: string, labelNames: string[]) {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as client.Counter<string>;
  return new client.Counter({ name, help, labelNames, registers: registry ? [registry] : [] });
}

/**
 * The quota activities (cpu pool): plan a budget group's rightsizing, apply writes through the store (its
 * authorization and validation included), check who may decide, dispatch to Yunikorn / the limiter's rules file /
 * a webhook, and remind approvers.
 */
export function createQuotaActivities(deps: QuotaActivityDeps) {
  const now = deps.now ?? Date.now;
  const reminders = counter(
    deps.metricsRegistry,
    'sluice_quota_approval_reminders_total',
    'Reminders sent for quota changes waiting for approval',
    ['budget_group'],
  );
  const writes_ = counter(deps.metricsRegistry, 'sluice_quota_writes_total', 'Quota writes by the rightsizer', [
    'outcome',
  ]);

  function usageReaderFor(config: UsageSourceConfig): UsageReader {
    if (deps.usageReaderFor) return deps.usageReaderFor(config);
    const parsed = UsageSourceConfig.parse(config);
    if (parsed.type === 'prometheus') return prometheusUsageReader({ url: parsed.url, queries: parsed.queries });
    if (!deps.catalog || !deps.io) {
      throw typedFailure(
        'InvalidConfig',
        'usage.type "iceberg" needs a worker with a catalog (temporal-dev.yml defaults)',
      );
    }
    return icebergUsageReader(deps.catalog, deps.io, parsed.table);
  }

  /** Loads the group's quotas and usage, recommends, aligns with the budget and validates: the whole plan. */
  async function plan(config: PlanQuotaRightsizeConfig): Promise<QuotaPlan> {
    const quotas = await deps.store.list({ budgetGroup: config.budgetGroup });
    const nowMs = Date.parse(config.asOf);
    Context.current().heartbeat({ phase: 'reading usage', quotas: quotas.length });
    const usage = await usageReaderFor(config.usage).read({
      quotaIds: quotas.map((q) => q.id),
      fromMs: nowMs - config.lookbackHours * 3_600_000,
      toMs: nowMs,
    });
    Context.current().heartbeat({ phase: 'recommending', quotas: quotas.length });
    return buildPlan({
      config,
      quotas,
      usage,
      nowMs,
      rightsizer: defaultRightsizer,
      // Each proposal is checked on its own, as a dry run of it alone, against one read of the store.
      validateAll: async (proposals) => {
        Context.current().heartbeat({ phase: 'validating', proposals: proposals.length });
        return deps.store.checkEach(
          proposals.map((p) => ({
            op: 'update' as const,
            quotaId: p.quota.id,
            expectedVersion: p.quota.version,
            patch: { spec: p.proposed, schedule: p.schedule },
          })),
          config.actor,
        );
      },
    });
  }

  /** The stored entries of `quotaIds`, in that order, or {@link QuotaDecisionInvalid} for one not in the plan. */
  async function storedEntries(key: QuotaPlanKey, quotaIds: readonly string[]) {
    const stored = new Map((await deps.store.planEntries(key, quotaIds)).map((s) => [s.entry.quotaId, s]));
    return quotaIds.map((id) => {
      const s = stored.get(id);
      if (!s) throw new QuotaDecisionInvalid(`quota "${id}" is not in the stored plan of ${key.workflowId}`);
      return s;
    });
  }

  /**
   * Writes stored plan entries as `actor`: their proposals, or a recorded `modify` decision's specs. Atomic: all or
   * nothing, and a refusal fails the activity; else each on its own (auto-apply), outcomes reported.
   */
  async function applyPlanned(
    input: Extract<ApplyQuotaChangesOutput, { plan: unknown }>,
  ): Promise<QuotaWriteOutcome[]> {
    try {
      const entries = await storedEntries(input.plan, input.quotaIds);
      let specs: Record<string, QuotaSpec> | null = null;
      if (input.decisionId !== undefined) {
        const d = await deps.store.getDecision(input.decisionId);
        if (!d || d.workflowId !== input.plan.workflowId || d.actor !== input.actor) {
          throw new QuotaDecisionInvalid(`decision ${input.decisionId} is not ${input.actor}'s decision for this run`);
        }
        if (d.decision === 'modify') specs = d.specs ?? {};
      }
      const writes = entries.map(({ entry }) => {
        const modified = specs !== null;
        const spec = modified ? specs![entry.quotaId] : entry.after;
        if (!spec) throw new QuotaDecisionInvalid(`the modify decision has no spec for "${entry.quotaId}"`);
        const schedule =
          !entry.scheduleBefore && !entry.scheduleAfter ? undefined : modified ? null : (entry.scheduleAfter ?? null);
        return { quotaId: entry.quotaId, expectedVersion: entry.version, spec, schedule };
      });
      const ops = writes.map((w) => ({
        op: 'update' as const,
        quotaId: w.quotaId,
        expectedVersion: w.expectedVersion,
        patch: { spec: w.spec, ...(w.schedule !== undefined ? { schedule: w.schedule } : {}) },
      }));
      const outcomes: QuotaWriteOutcome[] = [];
      if (input.atomic) {
        try {
          const written = await deps.store.write(ops, input.actor, input.reason);
          for (const q of written) outcomes.push({ quotaId: q!.id, status: 'applied', version: q!.version });
        } catch (err) {
          if (err instanceof QuotaVersionConflict) {
            throw ApplicationFailure.create({ type: 'CommitConflict', nonRetryable: true, message: err.message });
          }
          throw err;
        }
      } else {
        const results = await deps.store.writeEach(ops, input.actor, input.reason, (done) =>
          Context.current().heartbeat({ phase: 'applying', done, total: ops.length }),
        );
        results.forEach((r, k) => {
          const quotaId = ops[k]!.quotaId;
          if ('quota' in r) outcomes.push({ quotaId, status: 'applied', version: r.quota.version });
          else
            outcomes.push({
              quotaId,
              status: r.error instanceof QuotaVersionConflict ? 'conflict' : 'refused',
              message: r.error.message,
            });
          writes_.inc({ outcome: outcomes.at(-1)!.status });
        });
      }
      const applied = new Set(outcomes.filter((o) => o.status === 'applied').map((o) => o.quotaId));
      await deps.store.markPlanApplied(
        input.plan,
        writes.filter((w) => applied.has(w.quotaId)).map((w) => ({ ...w, by: input.actor })),
      );
      return outcomes;
    } catch (err) {
      throw toActivityFailure(err);
    }
  }

  return {
    /**
     * Plans a budget group and returns the whole plan. Runs started before plans were stored use it; newer runs use
     * {@link planQuotaRightsizeStored}.
     */
    async planQuotaRightsize(rawInput: PlanQuotaRightsizeInput): Promise<QuotaPlan> {
      const config = validateActivityInput(PlanQuotaRightsizeInput, rawInput, 'planQuotaRightsize input');
      try {
        return await plan(config);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /**
     * Plans a budget group, stores the plan in the quota store under the run (`plans`, `plan_entries`), and returns
     * only its summary and each entry's state: the workflow's payloads stay small for thousands of quotas.
     */
    async planQuotaRightsizeStored(rawInput: PlanQuotaRightsizeStoredInput): Promise<QuotaPlanSummary> {
      const config = validateActivityInput(PlanQuotaRightsizeStoredInput, rawInput, 'planQuotaRightsizeStored input');
      try {
        const planned = await plan(config);
        Context.current().heartbeat({ phase: 'storing', entries: planned.entries.length });
        await deps.store.savePlan(config.plan, planned);
        return summarizePlan(planned, config.plan);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /**
     * Writes through the store as `actor`. `atomic`: all or nothing, and a refusal fails the activity (an
     * approval must not half-apply). Otherwise each write stands alone and its outcome is reported.
     */
    async applyQuotaChanges(rawInput: ApplyQuotaChangesInput): Promise<QuotaWriteOutcome[]> {
      const input = validateActivityInput(ApplyQuotaChangesInput, rawInput, 'applyQuotaChanges input');
      if ('plan' in input) return applyPlanned(input);
      const ops = input.writes.map((w) => ({
        op: 'update' as const,
        quotaId: w.quotaId,
        expectedVersion: w.expectedVersion,
        patch: { spec: w.spec, ...(w.schedule !== undefined ? { schedule: w.schedule } : {}) },
      }));
      if (input.atomic) {
        try {
          const written = await deps.store.write(ops, input.actor, input.reason);
          return written.map((q) => ({ quotaId: q!.id, status: 'applied' as const, version: q!.version }));
        } catch (err) {
          // A retry would meet the same newer version: the decision must be made again on the new value.
          if (err instanceof QuotaVersionConflict) {
            throw ApplicationFailure.create({ type: 'CommitConflict', nonRetryable: true, message: err.message });
          }
          throw toActivityFailure(err);
        }
      }
      const outcomes: QuotaWriteOutcome[] = [];
      for (const op of ops) {
        try {
          const [q] = await deps.store.write([op], input.actor, input.reason);
          outcomes.push({ quotaId: op.quotaId, status: 'applied', version: q!.version });
          writes_.inc({ outcome: 'applied' });
        } catch (err) {
          if (err instanceof QuotaVersionConflict) {
            outcomes.push({ quotaId: op.quotaId, status: 'conflict', message: err.message });
          } else if (err instanceof QuotaAccessDenied || err instanceof QuotaValidationError) {
            outcomes.push({ quotaId: op.quotaId, status: 'refused', message: err.message });
          } else {
            throw toActivityFailure(err);
          }
          writes_.inc({ outcome: outcomes.at(-1)!.status });
        }
      }
      return outcomes;
    },

    /**
     * Reads recorded decision `decisionId`, checks that it was recorded for this run, and fails with `PolicyDenied`
     * unless its recorded actor may change every quota it decides on (a reject is a decision too). Returns the
     * decision with that actor: the workflow never takes a user from an update. (Runs started before decisions were
     * recorded pass `quotaIds` and `actor` and get null.)
     */
    async authorizeQuotaDecision(rawInput: AuthorizeQuotaDecisionInput): Promise<AuthorizedQuotaDecision | null> {
      const input = validateActivityInput(AuthorizeQuotaDecisionInput, rawInput, 'authorizeQuotaDecision input');
      try {
        if (!('decisionId' in input)) {
          for (const id of input.quotaIds) await deps.store.authorize(input.actor, await deps.store.require(id));
          return null;
        }
        const d = await deps.store.getDecision(input.decisionId);
        if (!d || d.workflowId !== input.workflowId || d.budgetGroup !== input.budgetGroup) {
          throw new QuotaDecisionInvalid(
            `decision ${input.decisionId} was not recorded for run ${input.workflowId} of budget group ` +
              `"${input.budgetGroup}": record one with sluice quota approve ${input.budgetGroup}`,
          );
        }
        const quotaIds = [
          ...new Set(d.quotaIds ?? (d.decision === 'modify' ? Object.keys(d.specs ?? {}) : input.pending)),
        ];
        for (const id of quotaIds) await deps.store.authorize(d.actor, await deps.store.require(id));
        return { decisionId: d.id, decision: d.decision, actor: d.actor, quotaIds, reason: d.reason };
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /**
     * Renders every target from the store's current quotas (all groups: the files describe the whole cluster),
     * and posts the applied changes to the webhook.
     */
    async dispatchQuotas(rawInput: DispatchQuotasInput): Promise<DispatchQuotasResult> {
      const input = validateActivityInput(DispatchQuotasInput, rawInput, 'dispatchQuotas input');
      const t = input.targets;
      try {
        const result: DispatchQuotasResult = {
          yunikornQueuesFile: t.yunikornQueuesFile ?? null,
          yunikornQueues: 0,
          rateLimitRulesFile: t.rateLimitRulesFile ?? null,
          rateLimitRules: 0,
          webhookStatus: null,
          webhookAttempts: 0,
        };
        await deps.store.withDispatchLock(async (all) => {
          if (t.yunikornQueuesFile) {
            // Scheduled quotas render the value of the current UTC slot; see docs/quota.md for the re-render.
            result.yunikornQueues = await writeYunikornQueues(t.yunikornQueuesFile, all, {
              partition: t.yunikornPartition,
              atMs: input.at ? Date.parse(input.at) : now(),
            });
          }
          if (t.rateLimitRulesFile) {
            result.rateLimitRules = await writeRateLimitRules(t.rateLimitRulesFile, all, new Date(now()));
          }
        });
        const changes = [...input.applied];
        if (input.appliedFromPlan && input.appliedFromPlan.quotaIds.length > 0) {
          for (const s of await storedEntries(input.appliedFromPlan.plan, input.appliedFromPlan.quotaIds)) {
            if (!s.applied) continue;
            changes.push({
              quotaId: s.entry.quotaId,
              before: s.entry.before,
              after: s.applied.spec,
              actor: s.applied.by,
            });
          }
        }
        if (t.webhookUrl && changes.length > 0) {
          const info = Context.current().info;
          const sent = await postWebhook(
            { event: 'quota.applied', budgetGroup: input.budgetGroup, changes },
            {
              url: t.webhookUrl,
              secret: deps.webhookSecret,
              // Stable across activity retries, so the receiver can drop a repeat.
              deliveryId: `${info.workflowExecution?.workflowId}/${info.workflowExecution?.runId}/${info.activityId}`,
              ...deps.webhook,
            },
          );
          result.webhookStatus = sent.status;
          result.webhookAttempts = sent.attempts;
        }
        return result;
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /** Reminds the owners of pending approvals: a warning log, a metric, and a webhook event when one is set. */
    async remindQuotaApprovers(rawInput: RemindQuotaApproversInput): Promise<void> {
      const input = validateActivityInput(RemindQuotaApproversInput, rawInput, 'remindQuotaApprovers input');
      let pending = input.pending;
      if (input.plan && pending.some((p) => !p.owners)) {
        try {
          const stored = await storedEntries(
            input.plan,
            pending.map((p) => p.quotaId),
          );
          pending = stored.map((s) => ({ quotaId: s.entry.quotaId, owners: s.entry.owners }));
        } catch (err) {
          throw toActivityFailure(err);
        }
      }
      const who = [
        ...new Set(
          pending.flatMap((p) => [...(p.owners?.users ?? []), ...(p.owners?.groups ?? []).map((g) => `group:${g}`)]),
        ),
      ];
      deps.logger?.warn(
        {
          budgetGroup: input.budgetGroup,
          workflowId: input.workflowId,
          pending: input.pending.map((p) => p.quotaId),
          owners: who,
          deadline: input.deadline,
        },
        `quota changes wait for approval: sluice quota approve ${input.budgetGroup} --as <owner>`,
      );
      reminders.inc({ budget_group: input.budgetGroup });
      if (input.webhookUrl) {
        try {
          await postWebhook(
            { event: 'quota.approval-reminder', ...input, pending, owners: who },
            { url: input.webhookUrl, secret: deps.webhookSecret, ...deps.webhook },
          );
        } catch (err) {
          throw toActivityFailure(err);
        }
      }
    },
  };
}

export type QuotaActivities = ReturnType<typeof createQuotaActivities>;

type PlanQuotaRightsizeConfig = z.output<typeof PlanQuotaRightsizeInput>;
type ApplyQuotaChangesOutput = z.output<typeof ApplyQuotaChangesInput>;

/** Whether an error is one of the quota engine's typed errors (re-exported for callers mapping failures). */
export { isQuotaError };
