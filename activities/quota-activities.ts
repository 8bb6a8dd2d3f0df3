import { ApplicationFailure, Context } from '@temporalio/activity';
import client from 'prom-client';
import type { SqlCatalog } from '../lib/iceberg/catalog/index.js';
import { writeRateLimitRules } from '../lib/quota/dispatch/rate-limit-rules.js';
import { postWebhook } from '../lib/quota/dispatch/webhook.js';
import { writeYunikornQueues } from '../lib/quota/dispatch/yunikorn.js';
import { QuotaAccessDenied, QuotaValidationError, QuotaVersionConflict, isQuotaError } from '../lib/quota/errors.js';
import { buildPlan, type Rightsizer } from '../lib/quota/plan.js';
import { alignWithBudget } from '../lib/quota/rightsizing/budget.js';
import { defaultPolicy, recommend } from '../lib/quota/rightsizing/recommend.js';
import { defaultScheduleOptions, recommendSchedule } from '../lib/quota/rightsizing/schedule.js';
import type { QuotaStore } from '../lib/quota/store.js';
import { icebergUsageReader, prometheusUsageReader, type UsageReader } from '../lib/quota/usage.js';
import type { FileIO } from '../lib/storage/file-io.js';
import type { Logger } from '../lib/observability/logger.js';
import {
  ApplyQuotaChangesInput,
  AuthorizeQuotaDecisionInput,
  DispatchQuotasInput,
  PlanQuotaRightsizeInput,
  RemindQuotaApproversInput,
  UsageSourceConfig,
  type DispatchQuotasResult,
  type QuotaPlan,
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
  const writes = counter(deps.metricsRegistry, 'sluice_quota_writes_total', 'Quota writes by the rightsizer', [
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

  return {
    /** Loads the group's quotas and usage, recommends, aligns with the budget, validates, and returns the plan. */
    async planQuotaRightsize(rawInput: PlanQuotaRightsizeInput): Promise<QuotaPlan> {
      const config = validateActivityInput(PlanQuotaRightsizeInput, rawInput, 'planQuotaRightsize input');
      try {
        const quotas = await deps.store.list({ budgetGroup: config.budgetGroup });
        const nowMs = Date.parse(config.asOf);
        Context.current().heartbeat({ phase: 'reading usage', quotas: quotas.length });
        const usage = await usageReaderFor(config.usage).read({
          quotaIds: quotas.map((q) => q.id),
          fromMs: nowMs - config.lookbackHours * 3_600_000,
          toMs: nowMs,
        });
        return await buildPlan({
          config,
          quotas,
          usage,
          nowMs,
          rightsizer: defaultRightsizer,
          validate: async (quota, spec, schedule) => {
            Context.current().heartbeat({ phase: 'validating', quotaId: quota.id });
            try {
              await deps.store.write(
                [{ op: 'update', quotaId: quota.id, expectedVersion: quota.version, patch: { spec, schedule } }],
                config.actor,
                'rightsizer plan check',
                { dryRun: true },
              );
              return [];
            } catch (err) {
              if (err instanceof QuotaValidationError) return err.problems.map((p) => `[${p.rule}] ${p.message}`);
              if (err instanceof QuotaAccessDenied) return [err.message];
              throw err;
            }
          },
        });
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
          writes.inc({ outcome: 'applied' });
        } catch (err) {
          if (err instanceof QuotaVersionConflict) {
            outcomes.push({ quotaId: op.quotaId, status: 'conflict', message: err.message });
          } else if (err instanceof QuotaAccessDenied || err instanceof QuotaValidationError) {
            outcomes.push({ quotaId: op.quotaId, status: 'refused', message: err.message });
          } else {
            throw toActivityFailure(err);
          }
          writes.inc({ outcome: outcomes.at(-1)!.status });
        }
      }
      return outcomes;
    },

    /** Fails with `PolicyDenied` unless `actor` may change every one of the quotas (a reject is a decision too). */
    async authorizeQuotaDecision(rawInput: AuthorizeQuotaDecisionInput): Promise<void> {
      const input = validateActivityInput(AuthorizeQuotaDecisionInput, rawInput, 'authorizeQuotaDecision input');
      try {
        for (const id of input.quotaIds) await deps.store.authorize(input.actor, await deps.store.require(id));
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
        if (t.webhookUrl && input.applied.length > 0) {
          const info = Context.current().info;
          const sent = await postWebhook(
            { event: 'quota.applied', budgetGroup: input.budgetGroup, changes: input.applied },
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
      const who = [
        ...new Set(input.pending.flatMap((p) => [...p.owners.users, ...p.owners.groups.map((g) => `group:${g}`)])),
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
            { event: 'quota.approval-reminder', ...input, owners: who },
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

/** Whether an error is one of the quota engine's typed errors (re-exported for callers mapping failures). */
export { isQuotaError };
