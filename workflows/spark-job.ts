import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { SparkActivities } from '../activities/spark-activities.js';
import type { ErrorType } from '../schemas/error-types.js';
import { PROGRESS_QUERY } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import {
  SparkJobInput,
  type SparkAttemptRecord,
  type SparkCost,
  type SparkFailureKind,
  type SparkJobProgress,
  type SparkJobResult,
  type SparkResources,
} from '../schemas/spark.js';
import { parseWorkflowInput } from './validate-input.js';

const { planSparkJob, finishSparkRun } = proxyActivities<SparkActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
  summary: 'Spark job history',
});

// One attempt is one spark-submit. The heartbeat timeout is short so that a cancel reaches the activity (and kills
// the application) within seconds; WAIT_CANCELLATION_COMPLETED keeps the run open until the kill is done.
const attemptOptions: ActivityOptions = {
  startToCloseTimeout: '1h',
  heartbeatTimeout: '15s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 3 },
};
const { runSparkAttempt } = proxyActivities<SparkActivities>(attemptOptions);

const { planNextSparkAttempt } = proxyLocalActivities<SparkActivities>({ startToCloseTimeout: '30s' });

/** The shared `progress` query: every attempt so far and the one running. */
export const sparkJobProgressQuery = defineQuery<SparkJobProgress>(PROGRESS_QUERY);

/** One line for the UI: what an attempt runs with. */
export function describeAttempt(attempt: number, r: SparkResources, step: string): string {
  const offHeap = r.executorOffHeap ? ` +${r.executorOffHeap} off-heap` : '';
  const overhead = r.executorMemoryOverhead ? ` +${r.executorMemoryOverhead} overhead` : '';
  const partitions = r.shufflePartitions ? `, ${r.shufflePartitions} shuffle partitions` : '';
  return (
    `attempt ${attempt} (${step}): ${r.executorInstances}× executor ${r.executorMemory}${overhead}${offHeap} ` +
    `${r.executorCores} cores task.cpus ${r.taskCpus}, driver ${r.driverMemory}${partitions}`
  );
}

function failureTypeOf(kind: SparkFailureKind | undefined): ErrorType {
  switch (kind) {
    case 'user-code':
      return 'UserCodeError';
    case 'infrastructure':
      return 'ServiceUnavailable';
    case undefined:
      return 'InvalidInput';
    default:
      return 'OutOfMemory';
  }
}

function sumCosts(costs: readonly SparkCost[]): SparkCost {
  const out: SparkCost = { gbHours: 0, vcoreHours: 0 };
  for (const c of costs) {
    out.gbHours += c.gbHours;
    out.vcoreHours += c.vcoreHours;
    if (c.money !== undefined) out.money = (out.money ?? 0) + c.money;
  }
  return out;
}

/**
 * `spark-job`: runs a Spark application and, when it fails for memory, runs it again bigger. The first size comes
 * from the job's history (possibly smaller than requested); after each failure the attempt is classified and the
 * ladder picks the next size (task cpus ×2, then executor memory ×2/×3/×4, driver ×2 for a driver OOM), within the
 * caps and the budget. User-code failures stop at once. Each attempt's resources and failure kind are in its
 * activity summary, the search attributes, the `progress` query and the result. Works as a child workflow and as
 * a Schedule's action.
 */
export async function sparkJob(rawInput: SparkJobInput): Promise<SparkJobResult> {
  const input = parseWorkflowInput(SparkJobInput, rawInput, 'sparkJob input');
  const spec = input.spec;
  const info = workflowInfo();
  const runKey = `${info.workflowId}/${info.runId}`;
  const attempts: SparkAttemptRecord[] = [];
  let phase = 'planning';
  let current: SparkJobProgress['current'];

  setHandler(sparkJobProgressQuery, () => ({
    phase,
    done: attempts.length,
    total: spec.retry.maxAttempts,
    unit: 'attempts',
    detail: current ? describeAttempt(current.attempt, current.resources, current.step) : phase,
    jobName: spec.name,
    attempts,
    ...(current ? { current } : {}),
  }));
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'spark-job' },
    { key: SearchAttributes.dataset, value: spec.name },
    { key: SearchAttributes.phase, value: phase },
  ]);

  const plan = await planSparkJob({ spec, runKey, startedAt: new Date(info.startTime).toISOString() });
  const result = (): SparkJobResult => {
    const succeeded = attempts.find((a) => a.outcome === 'succeeded');
    return {
      jobName: spec.name,
      templateHash: plan.templateHash,
      outcome: succeeded ? 'succeeded' : 'failed',
      sizing: plan.recommendation,
      attempts,
      ...(succeeded ? { finalResources: succeeded.resources } : {}),
      cost: {
        total: sumCosts(attempts.map((a) => a.cost)),
        wasted: sumCosts(attempts.filter((a) => a.outcome !== 'succeeded').map((a) => a.cost)),
      },
    };
  };
  const finish = (outcome: 'succeeded' | 'failed' | 'cancelled') =>
    CancellationScope.nonCancellable(() => finishSparkRun({ runKey, result: result(), outcome }));
  const stop = async (type: ErrorType, message: string): Promise<never> => {
    phase = 'failed';
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: 'failed' }]);
    await finish('failed');
    throw ApplicationFailure.create({ type, nonRetryable: true, message, details: [result()] });
  };

  if (plan.overBudget) {
    await stop(
      'BudgetExceeded',
      `Spark job "${spec.name}" not started: its first attempt would cost ${plan.overBudget}`,
    );
  }
  let resources = plan.recommendation.resources;
  let step = plan.recommendation.source === 'learned' ? 'learned size' : 'requested size';
  let executorStep = 0;
  const first = resources;
  for (let attempt = 1; ; attempt++) {
    current = { attempt, resources, step };
    phase = `attempt-${attempt}`;
    upsertSearchAttributes([
      { key: SearchAttributes.phase, value: phase },
      { key: SearchAttributes.sparkAttempt, value: attempt },
    ]);
    let record: SparkAttemptRecord;
    try {
      record = await runSparkAttempt.executeWithOptions(
        {
          ...attemptOptions,
          startToCloseTimeout: `${spec.attemptTimeoutSeconds}s`,
          summary: describeAttempt(attempt, resources, step),
        },
        [{ spec, runKey, attempt, resources, step }],
      );
    } catch (err) {
      if (isCancellation(err)) {
        phase = 'cancelled';
        await finish('cancelled');
        throw err;
      }
      phase = 'failed';
      await finish('failed');
      throw err;
    }
    attempts.push(record);
    current = { ...current, ...(record.applicationId ? { applicationId: record.applicationId } : {}) };
    if (record.outcome === 'succeeded') {
      phase = 'succeeded';
      upsertSearchAttributes([{ key: SearchAttributes.phase, value: phase }]);
      await finish('succeeded');
      return result();
    }
    const kinds = attempts.flatMap((a) => (a.failureKind ? [a.failureKind] : []));
    upsertSearchAttributes([{ key: SearchAttributes.sparkFailureKinds, value: [...new Set(kinds)] }]);
    const why = `attempt ${attempt} failed (${record.failureKind}: ${record.evidence ?? 'no evidence'})`;
    if (record.failureKind === 'user-code') {
      await stop('UserCodeError', `Spark job "${spec.name}": ${why}; user-code failures are not retried`);
    }
    if (attempt >= spec.retry.maxAttempts) {
      await stop(failureTypeOf(record.failureKind), `Spark job "${spec.name}": ${why}; no attempts left`);
    }
    const next = await planNextSparkAttempt({
      spec,
      first,
      last: record,
      executorStep,
      spent: result().cost.total,
      ...(plan.typicalWallMs === undefined ? {} : { typicalWallMs: plan.typicalWallMs }),
    });
    if (!next.retry) {
      await stop(failureTypeOf(record.failureKind), `Spark job "${spec.name}": ${why}; ${next.reason}`);
      break;
    }
    if (next.overBudget) {
      await stop(
        'BudgetExceeded',
        `Spark job "${spec.name}": ${why}; the next attempt would pass the budget: ${next.overBudget}`,
      );
    }
    resources = next.resources;
    step = next.step;
    executorStep = next.executorStep;
  }
  throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message: 'unreachable' });
}
