import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { QuotaActivities } from '../activities/quota-activities.js';
import { PROGRESS_QUERY, type Progress } from '../schemas/progress.js';
import {
  QUOTA_RIGHTSIZE_HANDLERS,
  QuotaDecision,
  QuotaDecisionRef,
  QuotaRightsizeInput,
  summarizePlan,
  type PlanEntry,
  type PlanEntryState,
  type QuotaDecisionResult,
  type QuotaPlan,
  type QuotaPlanKey,
  type QuotaPlanSummary,
  type QuotaRightsizeConfig,
  type QuotaRightsizePhase,
  type QuotaSchedule,
  type QuotaRightsizeResult,
} from '../schemas/quota.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { parseWorkflowInput } from './validate-input.js';

const { planQuotaRightsize, planQuotaRightsizeStored, dispatchQuotas } = proxyActivities<QuotaActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 20 },
  summary: 'plan or dispatch quotas',
});

// Inside an update an owner is waiting: two quick tries, and what is left is dispatched at the end of the run.
const { dispatchQuotas: dispatchQuotasQuickly } = proxyActivities<QuotaActivities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumAttempts: 2 },
  summary: 'dispatch approved quotas',
});

// Writes and checks answer an owner waiting on an update: few, quick attempts.
const { applyQuotaChanges, authorizeQuotaDecision, remindQuotaApprovers } = proxyActivities<QuotaActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 5 },
  summary: 'write or authorize quota changes',
});

// The auto-apply of a stored plan: thousands of writes in one activity, which heartbeats per write.
const { applyQuotaChanges: applyQuotaChangesInBulk } = proxyActivities<QuotaActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 10 },
  summary: 'apply small quota changes',
});

/**
 * The plan's summary with every entry's live status; the whole plan (before, after, readable diff) is in the quota
 * store under `stored` (`sluice quota plan` joins the two).
 */
export const quotaPlanQuery = defineQuery<QuotaPlanSummary>(QUOTA_RIGHTSIZE_HANDLERS.plan);
export const quotaRightsizeProgressQuery = defineQuery<Progress>(PROGRESS_QUERY);
/**
 * An owner's decision on pending changes (approve, reject, or modify): the id of a decision recorded in the quota
 * store under the decider's database login (`sluice quota approve`). Runs started before decisions were recorded
 * took the decision itself, user included ({@link QuotaDecision}).
 */
export const quotaApproveUpdate = defineUpdate<QuotaDecisionResult, [QuotaDecisionRef | QuotaDecision]>(
  QUOTA_RIGHTSIZE_HANDLERS.approve,
);

/**
 * The patch of runs whose plan is stored in the quota store (the workflow keeps each entry's state only) and whose
 * approvals are recorded decisions with the actor the store authenticated.
 */
export const PLAN_STORED_PATCH = 'quota-plan-stored-decisions-recorded';

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
function durationMs(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text)!;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/**
 * `quota-rightsize`: one budget group's rightsizing run (a Schedule starts one per group). Plan (recommend from
 * usage, align with the budget, validate) → apply small changes at once → wait for the owners on large ones, with
 * reminders, until they decide or the approval times out (the quota then keeps its value) → every applied change
 * is audited by the store and dispatched (Yunikorn queues, rate-limit rules, webhook).
 */
export async function quotaRightsize(rawInput: QuotaRightsizeInput): Promise<QuotaRightsizeResult> {
  const input = parseWorkflowInput(QuotaRightsizeInput, rawInput, 'quotaRightsize input');
  const { workflowId } = workflowInfo();
  let phase: QuotaRightsizePhase = 'planning';
  let reminders = 0;
  const inFlight = new Set<string>();
  const setPhase = (next: QuotaRightsizePhase) => {
    phase = next;
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: next }]);
  };
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'quota-rightsize' },
    { key: SearchAttributes.dataset, value: input.budgetGroup },
    { key: SearchAttributes.phase, value: phase },
  ]);

  const asOf = input.asOf ?? workflowInfo().startTime.toISOString();
  if (input.dispatchOnly) return dispatchOnly(input.budgetGroup, input.dispatch, asOf, setPhase);
  // Runs started before this patch hold the whole plan and take decisions with the user as given.
  const storedPlan = patched(PLAN_STORED_PATCH);
  const { runId } = workflowInfo();
  const planKey: QuotaPlanKey = { workflowId, runId };
  let legacyPlan: QuotaPlan | undefined;
  let summary: QuotaPlanSummary;
  if (storedPlan) {
    summary = await planQuotaRightsizeStored({ ...input, asOf, plan: planKey });
  } else {
    legacyPlan = await planQuotaRightsize({ ...input, asOf });
    summary = summarizePlan(legacyPlan, null);
  }
  // Each entry's state. In a run started before the patch these are the full plan entries themselves.
  const states: PlanEntryState[] = legacyPlan ? legacyPlan.entries : summary.entries;
  const entries = new Map(states.map((e) => [e.quotaId, e]));
  const full = (id: string) => legacyPlan!.entries.find((e) => e.quotaId === id)!;
  const changing = states.filter((e) => e.gate !== 'none');
  // Undecided: waiting for approval, including entries whose decision is under way in an update.
  const undecided = () => states.filter((e) => e.gate === 'approval' && e.status === 'pending');
  // Open for a decision: undecided and not already being decided.
  const pendingApproval = () => undecided().filter((e) => !inFlight.has(e.quotaId));
  const currentSummary = (): QuotaPlanSummary =>
    legacyPlan ? summarizePlan(legacyPlan, null) : { ...summary, entries: states };

  setHandler(quotaPlanQuery, currentSummary);
  setHandler(quotaRightsizeProgressQuery, () => ({
    phase,
    done: changing.filter((e) => e.status !== 'pending' && e.status !== 'planned').length,
    total: changing.length,
    unit: 'changes',
    detail: `${undecided().length} waiting for approval, ${reminders} reminders`,
  }));
  setHandler(
    quotaApproveUpdate,
    async (raw) => {
      if (storedPlan) return decideRecorded(QuotaDecisionRef.parse(raw));
      const decision = QuotaDecision.parse(raw);
      const ids = decidedIds(decision);
      for (const id of ids) inFlight.add(id);
      try {
        return await decide(decision, ids);
      } finally {
        for (const id of ids) inFlight.delete(id);
      }
    },
    {
      validator: (raw) => {
        if (storedPlan) {
          // Only a recorded decision's id: who decides is what the store recorded, never a name in the update.
          const ref = QuotaDecisionRef.safeParse(raw);
          if (!ref.success) {
            throw new Error(
              'an approval carries only {decisionId}: record the decision with `sluice quota approve` ' +
                `(${ref.error.issues.map((i) => i.message).join('; ')})`,
            );
          }
          if (pendingApproval().length === 0) {
            throw new Error(`nothing waits for approval in budget group "${input.budgetGroup}"`);
          }
          return;
        }
        const parsed = QuotaDecision.safeParse(raw);
        if (!parsed.success)
          throw new Error(`invalid decision: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
        const ids = decidedIds(parsed.data);
        if (ids.length === 0) throw new Error(`nothing waits for approval in budget group "${input.budgetGroup}"`);
        if (parsed.data.user === input.actor) {
          throw new Error(`"${input.actor}" proposed these changes; an owner or approver must decide on them`);
        }
        for (const id of ids) {
          const e = entries.get(id);
          if (!e || e.gate !== 'approval' || e.status !== 'pending' || inFlight.has(id)) {
            throw new Error(
              `quota "${id}" has no change waiting for approval in this run (status ${e?.status ?? 'not in the plan'})`,
            );
          }
          if (parsed.data.decision === 'modify' && !parsed.data.specs?.[id]) {
            throw new Error(`modify needs a spec for "${id}" (specs.${id})`);
          }
        }
      },
      description:
        'approve, reject or modify pending quota changes: {decisionId} of a decision recorded in the quota store ' +
        '(the store checks that its recorded actor may)',
    },
  );

  function decidedIds(d: QuotaDecision): string[] {
    if (d.quotaIds) return [...new Set(d.quotaIds)];
    if (d.decision === 'modify') return Object.keys(d.specs ?? {});
    return pendingApproval().map((e) => e.quotaId);
  }

  /** An activity's typed failure as the update's failure: the owner sees why, and the run goes on. */
  function asUpdateFailure(err: unknown): unknown {
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
      return ApplicationFailure.create({
        type: err.cause.type ?? 'PolicyDenied',
        nonRetryable: true,
        message: err.cause.message,
      });
    }
    return err;
  }

  /** A recorded decision: the store says who decided (and authorizes them); the plan's proposals are in the store. */
  async function decideRecorded(ref: QuotaDecisionRef): Promise<QuotaDecisionResult> {
    let ids: string[] = [];
    try {
      const d = (await authorizeQuotaDecision({
        decisionId: ref.decisionId,
        workflowId,
        budgetGroup: input.budgetGroup,
        pending: pendingApproval().map((e) => e.quotaId),
      }))!;
      if (d.actor === input.actor) {
        throw ApplicationFailure.create({
          type: 'PolicyDenied',
          nonRetryable: true,
          message: `"${input.actor}" proposed these changes; an owner or approver must decide on them`,
        });
      }
      for (const id of d.quotaIds) {
        const e = entries.get(id);
        if (!e || e.gate !== 'approval' || e.status !== 'pending' || inFlight.has(id)) {
          throw ApplicationFailure.create({
            type: 'InvalidInput',
            nonRetryable: true,
            message: `quota "${id}" has no change waiting for approval in this run (status ${e?.status ?? 'not in the plan'})`,
          });
        }
      }
      if (d.quotaIds.length === 0) {
        throw ApplicationFailure.create({
          type: 'InvalidInput',
          nonRetryable: true,
          message: `decision ${d.decisionId} decides nothing that waits for approval`,
        });
      }
      ids = d.quotaIds;
      for (const id of ids) inFlight.add(id);
      const reason = d.reason ?? `${d.decision} of quota-rightsize proposal (${workflowId})`;
      if (d.decision === 'reject') {
        for (const id of ids) {
          const e = entries.get(id)!;
          e.status = 'rejected';
          e.note = `rejected by ${d.actor}: ${reason}`;
        }
        return { decision: d.decision, decided: ids, outcomes: [], stillPending: undecided().map((e) => e.quotaId) };
      }
      const outcomes = await applyQuotaChanges({
        plan: planKey,
        quotaIds: ids,
        actor: d.actor,
        reason,
        atomic: true,
        decisionId: d.decisionId,
      });
      for (const id of ids) {
        const e = entries.get(id)!;
        e.status = 'applied';
        e.note = `${d.decision === 'modify' ? 'modified' : 'approved'} by ${d.actor}: ${reason}`;
      }
      await dispatchStored(ids, true);
      return { decision: d.decision, decided: ids, outcomes, stillPending: undecided().map((e) => e.quotaId) };
    } catch (err) {
      throw asUpdateFailure(err);
    } finally {
      for (const id of ids) inFlight.delete(id);
    }
  }

  async function decide(d: QuotaDecision, ids: string[]): Promise<QuotaDecisionResult> {
    const reason = d.reason ?? `${d.decision} of quota-rightsize proposal (${workflowId})`;
    try {
      if (d.decision === 'reject') {
        await authorizeQuotaDecision({ quotaIds: ids, actor: d.user });
        for (const id of ids) {
          const e = entries.get(id)!;
          e.status = 'rejected';
          e.note = `rejected by ${d.user}: ${reason}`;
        }
        return { decision: d.decision, decided: ids, outcomes: [], stillPending: undecided().map((e) => e.quotaId) };
      }
      const writes = ids.map((id) => {
        const e = full(id);
        const modified = d.decision === 'modify';
        return {
          quotaId: id,
          expectedVersion: e.version,
          spec: modified ? d.specs![id]! : e.after,
          ...scheduleOf(e, modified),
        };
      });
      const outcomes = await applyQuotaChanges({ writes, actor: d.user, reason, atomic: true });
      const applied: Applied[] = [];
      for (const w of writes) {
        const e = full(w.quotaId);
        e.after = w.spec;
        if (w.schedule === null) delete e.scheduleAfter;
        e.status = 'applied';
        e.note = `${d.decision === 'modify' ? 'modified' : 'approved'} by ${d.user}: ${reason}`;
        applied.push({ quotaId: e.quotaId, before: e.before, after: e.after, actor: d.user });
      }
      await dispatch(applied, true);
      return { decision: d.decision, decided: ids, outcomes, stillPending: undecided().map((e) => e.quotaId) };
    } catch (err) {
      throw asUpdateFailure(err);
    }
  }

  type Applied = { quotaId: string; before: PlanEntry['before']; after: PlanEntry['after']; actor: string };
  // Changes applied in an update whose quick dispatch failed; the run dispatches them again before it ends.
  const owed: Applied[] = [];
  const owedIds: string[] = [];
  /**
   * Dispatches applied changes: in the run's own steps with the patient retry policy; from an update quickly, and
   * when that fails, `owe` records them so the run dispatches them again before it ends.
   */
  async function dispatchArgs(args: Parameters<typeof dispatchQuotas>[0], fromUpdate: boolean, owe: () => void) {
    if (!fromUpdate) {
      await dispatchQuotas(args);
      return;
    }
    try {
      await dispatchQuotasQuickly(args);
    } catch (err) {
      log.warn('dispatch after an approval failed; retrying at the end of the run', { error: String(err) });
      owe();
    }
  }
  async function dispatch(applied: Applied[], fromUpdate = false) {
    if (applied.length === 0) return;
    const args = { budgetGroup: input.budgetGroup, targets: input.dispatch, applied };
    await dispatchArgs(args, fromUpdate, () => owed.push(...applied));
  }
  /** Dispatches applied entries of the stored plan (the webhook reads before and after from the store). */
  async function dispatchStored(quotaIds: string[], fromUpdate = false) {
    if (quotaIds.length === 0) return;
    const args = {
      budgetGroup: input.budgetGroup,
      targets: input.dispatch,
      applied: [],
      appliedFromPlan: { plan: planKey, quotaIds },
    };
    await dispatchArgs(args, fromUpdate, () => owedIds.push(...quotaIds));
  }

  if (!input.dryRun) {
    const auto = states.filter((e) => e.gate === 'auto');
    if (auto.length > 0) {
      setPhase('applying');
      const reason = `quota-rightsize ${input.budgetGroup}: change within ${input.autoApplyMaxChange * 100}% applied automatically (${workflowId})`;
      const outcomes = await (legacyPlan ? applyQuotaChanges : applyQuotaChangesInBulk)(
        legacyPlan
          ? {
              writes: auto.map((s) => {
                const e = full(s.quotaId);
                return { quotaId: e.quotaId, expectedVersion: e.version, spec: e.after, ...scheduleOf(e, false) };
              }),
              actor: input.actor,
              reason,
              atomic: false,
            }
          : { plan: planKey, quotaIds: auto.map((e) => e.quotaId), actor: input.actor, reason, atomic: false },
      );
      for (const o of outcomes) {
        const e = entries.get(o.quotaId)!;
        e.status = o.status;
        if (o.message) e.note = o.message;
      }
      setPhase('dispatching');
      const appliedAuto = auto.filter((e) => e.status === 'applied');
      if (legacyPlan) {
        await dispatch(
          appliedAuto.map((s) => {
            const e = full(s.quotaId);
            return { quotaId: e.quotaId, before: e.before, after: e.after, actor: input.actor };
          }),
        );
      } else {
        await dispatchStored(appliedAuto.map((e) => e.quotaId));
      }
    }

    if (undecided().length > 0) {
      setPhase('awaiting-approval');
      const timeoutMs = durationMs(input.approvalTimeout);
      const reminderMs = durationMs(input.reminderAfter);
      const deadline = new Date(workflowInfo().runStartTime.getTime() + timeoutMs).toISOString();
      let waited = 0;
      while (undecided().length > 0 && waited < timeoutMs) {
        const step = Math.min(reminderMs, timeoutMs - waited);
        const decided = await condition(() => undecided().length === 0, step);
        waited += step;
        if (!decided && waited < timeoutMs) {
          reminders += 1;
          await remindQuotaApprovers({
            budgetGroup: input.budgetGroup,
            workflowId,
            ...(legacyPlan
              ? { pending: undecided().map((e) => ({ quotaId: e.quotaId, owners: full(e.quotaId).owners })) }
              : { pending: undecided().map((e) => ({ quotaId: e.quotaId })), plan: planKey }),
            deadline,
            ...(input.dispatch.webhookUrl ? { webhookUrl: input.dispatch.webhookUrl } : {}),
          });
        }
      }
      // Decisions already under way finish; whatever nobody decided keeps its value.
      await condition(allHandlersFinished);
      for (const e of undecided()) {
        e.status = 'timed-out';
        e.note = `no decision within ${input.approvalTimeout}: kept unchanged`;
      }
    }
  }
  await condition(allHandlersFinished);
  if (owed.length > 0) {
    setPhase('dispatching');
    await dispatch(owed.splice(0));
  }
  if (owedIds.length > 0) {
    setPhase('dispatching');
    await dispatchStored(owedIds.splice(0));
  }
  setPhase('done');
  const count = (s: PlanEntry['status']) => states.filter((e) => e.status === s).length;
  return {
    budgetGroup: input.budgetGroup,
    applied: count('applied'),
    rejected: count('rejected'),
    timedOut: count('timed-out'),
    conflicts: count('conflict'),
    refused: count('refused'),
    unchanged: count('unchanged'),
    reminders,
    plan: currentSummary(),
  };
}

/**
 * A time-of-day schedule travels with its write: the planned one, or null to drop the one the quota had (a plan back
 * to flat values, or an owner's `modify`, which sets flat values). Quotas without either write exactly as before.
 */
function scheduleOf(e: PlanEntry, modified: boolean): { schedule?: QuotaSchedule | null } {
  if (!e.scheduleBefore && !e.scheduleAfter) return {};
  return { schedule: modified ? null : (e.scheduleAfter ?? null) };
}

/**
 * `dispatchOnly` runs: re-render every target from the store at `asOf`, so quotas with a time-of-day schedule get
 * the value of the slot now in force (a Schedule starts one at each slot boundary; see docs/quota.md).
 */
async function dispatchOnly(
  budgetGroup: string,
  targets: QuotaRightsizeConfig['dispatch'],
  asOf: string,
  setPhase: (p: QuotaRightsizePhase) => void,
): Promise<QuotaRightsizeResult> {
  const plan: QuotaPlanSummary = {
    budgetGroup,
    asOf,
    budgetPerHour: null,
    spendBefore: 0,
    spendAfter: 0,
    overBudget: false,
    entries: [],
    warnings: [],
    warningCount: 0,
    stored: null,
    diff: `quota-rightsize dispatch only for budget group "${budgetGroup}" as of ${asOf}: targets re-rendered`,
  };
  setHandler(quotaPlanQuery, () => plan);
  setPhase('dispatching');
  await dispatchQuotas({ budgetGroup, targets, applied: [], at: asOf });
  setPhase('done');
  return {
    budgetGroup,
    applied: 0,
    rejected: 0,
    timedOut: 0,
    conflicts: 0,
    refused: 0,
    unchanged: 0,
    reminders: 0,
    plan,
  };
}
