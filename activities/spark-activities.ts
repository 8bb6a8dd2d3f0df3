import path from 'node:path';
import { CancelledFailure, Context } from '@temporalio/activity';
import type { Registry } from 'prom-client';
import { sluiceEnv } from '../lib/config.js';
import { classifyFailure } from '../lib/spark/classifier.js';
import { readEventLog, type EventLogSummary } from '../lib/spark/event-log.js';
import { SparkHistoryStore } from '../lib/spark/history.js';
import { nextAttempt } from '../lib/spark/ladder.js';
import { countAttempt, sparkMetrics, type SparkMetrics } from '../lib/spark/metrics.js';
import { addCosts, attemptCost, budgetOverrun } from '../lib/spark/resources.js';
import { recommendSizing } from '../lib/spark/sizing.js';
import { findSparkHome, findSparkPython } from '../lib/spark/spark-home.js';
import { SparkSubmitProcess, type SparkSubmitter } from '../lib/spark/submitter.js';
import { templateHash } from '../lib/spark/template.js';
import {
  FinishSparkRunInput,
  PlanNextSparkAttemptInput,
  PlanSparkJobInput,
  RunSparkAttemptInput,
  type NextSparkAttempt,
  type SparkAttemptRecord,
  type SparkJobPlan,
  type SparkSubmitHeartbeat,
} from '../schemas/spark.js';
import { toActivityFailure, validateActivityInput } from './failures.js';

/** Dependencies of the Spark activities; the cpu worker builds them (see docs/spark.md). */
export interface SparkActivityDeps {
  /** Runs the attempts: `SparkSubmitProcess` today; Livy or the Kubernetes operator later. */
  submitter: SparkSubmitter;
  /** The per-job learning store in PostgreSQL. */
  history: SparkHistoryStore;
  /** Driver logs and event logs go under `<workDir>/<job>/<run>/attempt-<n>/`. */
  workDir: string;
  /** GB·h, vcore·h and attempt counters; none when the worker has no metrics. */
  metrics?: SparkMetrics;
  /** How often the submit activity heartbeats. @default 5000 */
  heartbeatIntervalMs?: number;
}

function safeSegment(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
}

/**
 * The Spark activities (cpu pool): plan a run from the job's history, run one attempt with spark-submit (streams
 * progress as heartbeats, kills the application when cancelled), pick the next size after a failure, and close
 * the run in the history.
 */
export function createSparkActivities(deps: SparkActivityDeps) {
  const heartbeatEveryMs = deps.heartbeatIntervalMs ?? 5000;

  return {
    /** Hashes the template, opens the run in the history and picks the first attempt's size. */
    async planSparkJob(raw: PlanSparkJobInput): Promise<SparkJobPlan> {
      const input = validateActivityInput(PlanSparkJobInput, raw, 'planSparkJob input');
      const spec = input.spec;
      try {
        const hash = templateHash(spec);
        await deps.history.startRun({
          runKey: input.runKey,
          jobName: spec.name,
          templateHash: hash,
          owner: spec.owner,
          requested: spec.resources,
          startedAt: input.startedAt,
        });
        const runs = spec.useLearnedSizing ? await deps.history.recentRuns(spec.name, hash) : [];
        const recommendation = spec.useLearnedSizing
          ? recommendSizing(spec.resources, spec.caps, runs)
          : { source: 'request' as const, resources: spec.resources, reason: 'learned sizing is off', basedOnRuns: 0 };
        const wallTimes = runs.flatMap((r) => r.attempts.filter((a) => a.outcome === 'succeeded').map((a) => a.wallMs));
        const typicalWallMs =
          wallTimes.length > 0 ? Math.round(wallTimes.reduce((s, w) => s + w, 0) / wallTimes.length) : undefined;
        const estimate = attemptCost(recommendation.resources, spec.master, typicalWallMs ?? 0, spec.budget);
        const overBudget = budgetOverrun(estimate, spec.budget);
        return {
          templateHash: hash,
          recommendation,
          ...(typicalWallMs === undefined ? {} : { typicalWallMs }),
          estimate,
          ...(overBudget ? { overBudget } : {}),
        };
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /**
     * Runs one attempt to its end and returns what happened; a failed Spark application is a result, not an
     * activity failure, because the workflow decides the retry. Heartbeats carry the application id and the last
     * log line. On cancellation the application and everything it started are killed, the attempt is recorded as
     * cancelled, and the activity ends cancelled.
     */
    async runSparkAttempt(raw: RunSparkAttemptInput): Promise<SparkAttemptRecord> {
      const input = validateActivityInput(RunSparkAttemptInput, raw, 'runSparkAttempt input');
      const { spec, attempt, resources } = input;
      const ctx = Context.current();
      const dir = path.join(
        deps.workDir,
        safeSegment(spec.name),
        safeSegment(input.runKey),
        `attempt-${attempt}-try-${ctx.info.attempt}`,
      );
      const progress: SparkSubmitHeartbeat = { logLines: 0 };
      ctx.heartbeat(progress);
      const timer = setInterval(() => ctx.heartbeat(progress), heartbeatEveryMs);
      let outcome;
      try {
        outcome = await deps.submitter.submit(
          {
            appName: `${spec.name}#${attempt}`,
            master: spec.master,
            deployMode: spec.deployMode,
            app: spec.app,
            resources,
            eventLogDir: path.join(dir, 'events'),
            driverLogPath: path.join(dir, 'driver.log'),
          },
          {
            signal: ctx.cancellationSignal,
            onLine: (line) => {
              progress.logLines += 1;
              progress.lastLine = line.length > 300 ? `${line.slice(0, 300)}…` : line;
            },
            onApplicationId: (id) => {
              progress.applicationId = id;
              ctx.heartbeat(progress);
            },
          },
        );
      } catch (err) {
        throw toActivityFailure(err);
      } finally {
        clearInterval(timer);
      }

      const events: EventLogSummary | undefined = outcome.eventLogPath
        ? await readEventLog(outcome.eventLogPath)
        : undefined;
      const classification = outcome.cancelled
        ? undefined
        : classifyFailure({
            exitCode: outcome.exitCode,
            signal: outcome.signal,
            logLines: outcome.logExcerpt,
            ...(events ? { events } : {}),
          });
      const result: SparkAttemptRecord['outcome'] = outcome.cancelled
        ? 'cancelled'
        : classification
          ? 'failed'
          : 'succeeded';
      const record: SparkAttemptRecord = {
        attempt,
        resources,
        step: input.step,
        outcome: result,
        ...(classification ? { failureKind: classification.kind, evidence: classification.evidence } : {}),
        exitCode: outcome.exitCode,
        ...(outcome.applicationId ? { applicationId: outcome.applicationId } : {}),
        startedAt: outcome.startedAt,
        wallMs: outcome.wallMs,
        cost: attemptCost(resources, spec.master, outcome.wallMs, spec.budget),
        peaks: events?.peaks ?? {},
        driverLogPath: outcome.driverLogPath,
        ...(outcome.eventLogPath ? { eventLogPath: outcome.eventLogPath } : {}),
      };
      countAttempt(deps.metrics, spec.name, result, record.failureKind, record.cost);
      try {
        await deps.history.recordAttempt(input.runKey, record);
      } catch (err) {
        // The attempt happened; losing its history row must not rerun a possibly hour-long job.
        ctx.log.warn('could not record the Spark attempt in the history', { error: String(err) });
      }
      if (outcome.cancelled) {
        throw new CancelledFailure(`Spark attempt ${attempt} of ${spec.name} was cancelled; application killed`);
      }
      return record;
    },

    /** The ladder's next size after a failed attempt, with the budget check for it. Pure; runs as a local activity. */
    async planNextSparkAttempt(raw: PlanNextSparkAttemptInput): Promise<NextSparkAttempt> {
      const input = validateActivityInput(PlanNextSparkAttemptInput, raw, 'planNextSparkAttempt input');
      const { spec, last } = input;
      if (!last.failureKind) return { retry: false, reason: `attempt ${last.attempt} did not fail` };
      const next = nextAttempt({
        policy: spec.retry.policy,
        kind: last.failureKind,
        first: input.first,
        current: last.resources,
        position: { executorStep: input.executorStep },
        caps: spec.caps,
      });
      if (!next.retry) return next;
      const estimate = attemptCost(next.resources, spec.master, input.typicalWallMs ?? last.wallMs, spec.budget);
      const overBudget = budgetOverrun(addCosts([input.spent, estimate], spec.budget), spec.budget);
      return {
        retry: true,
        resources: next.resources,
        step: next.step,
        executorStep: next.position.executorStep,
        estimate,
        ...(overBudget ? { overBudget } : {}),
      };
    },

    /** Closes the run in the history with its result. */
    async finishSparkRun(raw: FinishSparkRunInput): Promise<void> {
      const input = validateActivityInput(FinishSparkRunInput, raw, 'finishSparkRun input');
      try {
        await deps.history.finishRun(input.runKey, input.result, input.outcome);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  };
}

export type SparkActivities = ReturnType<typeof createSparkActivities>;

/**
 * The Spark activities' dependencies from the environment (`SLUICE_SPARK_HISTORY_URL`, `SPARK_HOME`,
 * `SLUICE_SPARK_WORK_DIR`, `SLUICE_SPARK_PYTHON`), or `undefined` when no history database is configured. Built
 * once per process; the cpu worker uses it when it is not given deps explicitly.
 */
export function sparkActivityDepsFromEnv(registry?: Registry): SparkActivityDeps | undefined {
  if (!sluiceEnv.spark.historyUrl) return undefined;
  envDeps ??= {
    submitter: new SparkSubmitProcess({ sparkHome: findSparkHome(), pythonExecutable: findSparkPython() }),
    history: SparkHistoryStore.connect(sluiceEnv.spark.historyUrl),
    workDir: sluiceEnv.spark.workDir,
    ...(registry ? { metrics: sparkMetrics(registry) } : {}),
  };
  return envDeps;
}
let envDeps: SparkActivityDeps | undefined;
