import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Worker } from '@temporalio/worker';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSparkJob } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import { SparkHistoryStore } from '../../lib/spark/history.js';
import { parseMemoryMib } from '../../lib/spark/memory.js';
import { sparkMetrics } from '../../lib/spark/metrics.js';
import { recommendSizing } from '../../lib/spark/sizing.js';
import { findSparkHome, findSparkPython } from '../../lib/spark/spark-home.js';
import { SparkSubmitProcess } from '../../lib/spark/submitter.js';
import { templateHash } from '../../lib/spark/template.js';
import { SparkJobSpec, SparkResources, type SparkJobResult } from '../../schemas/spark.js';
import type { z } from 'zod';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

// Real Spark 4.1 from the venv's pyspark in local-cluster mode: the executors are separate JVMs with exactly the
// heap we give them, so an OOM here is a real java.lang.OutOfMemoryError. The history lives in the shared
// PostgreSQL (a private database), the workflows run on the shared dev server with an in-process cpu worker.
const postgresUrl = inject('postgresUrl');
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const database = `sluice_spark_${suffix}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();
const JOBS = path.join(REPO_ROOT, 'test/fixtures/spark-jobs');
const SPARK_TEST_TIMEOUT = 600_000;

let admin: pg.Client;
let history: SparkHistoryStore;
let workDir: string;
let t: Awaited<ReturnType<typeof connectToTestServer>>;
let worker: Worker;
let running: Promise<void>;
let base: string;
const registry = new Registry();

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  history = SparkHistoryStore.connect(databaseUrl);
  workDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-spark-it-'));
  t = await connectToTestServer();
  base = uniqueQueue('spark');
  worker = await createCpuWorker({
    connection: t.nativeConnection,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: testWorkflowBundle() },
    shutdownGraceTime: '5s',
    spark: {
      submitter: new SparkSubmitProcess({
        sparkHome: findSparkHome(),
        pythonExecutable: findSparkPython(),
        env: { SPARK_LOCAL_IP: '127.0.0.1' },
        killGraceMs: 3000,
      }),
      history,
      workDir,
      metrics: sparkMetrics(registry),
      heartbeatIntervalMs: 1000,
    },
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await t?.close();
  await history?.close();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
  if (workDir && !process.env.SLUICE_KEEP_TEST_LOGS) rmSync(workDir, { recursive: true, force: true });
});

/** A local-cluster job spec; fast-failing (one task failure aborts) so OOMs end in seconds. */
function spec(name: string, script: string, args: string[], over: Partial<z.input<typeof SparkJobSpec>> = {}) {
  return {
    name: `${name}-${suffix}`,
    owner: 'spark-it',
    master: 'local-cluster[1,1,1536]',
    app: {
      resource: path.join(JOBS, script),
      args,
      conf: { 'spark.task.maxFailures': '1', 'spark.ui.enabled': 'false' },
    },
    resources: { driverMemory: '512m', executorMemory: '512m', executorCores: 1 },
    caps: { executorMemory: '1536m', driverMemory: '1g' },
    ...over,
  };
}

/** With SLUICE_RECORD_HISTORIES=1, writes `test/histories/<name>.json` for the replay tests. */
async function recordHistory(name: string, handle: WorkflowHandle): Promise<void> {
  if (process.env.SLUICE_RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  writeFileSync(path.join(REPO_ROOT, 'test/histories', `${name}.json`), historyToJSON(history) + '\n');
}

async function failureOf(handle: WorkflowHandle): Promise<unknown> {
  try {
    await handle.result();
  } catch (err) {
    return err;
  }
  throw new Error(`${handle.workflowId} succeeded; a failure was expected`);
}

/** The activity summaries the Temporal UI shows for a run, in order. */
async function activitySummaries(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  const out: string[] = [];
  for (const event of history.events ?? []) {
    const summary = event.userMetadata?.summary;
    if (event.activityTaskScheduledEventAttributes && summary?.data) {
      out.push(JSON.parse(Buffer.from(summary.data).toString('utf8')) as string);
    }
  }
  return out;
}

/** Processes whose command line contains `needle` (besides this test process). */
function processesMatching(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle)) found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

/** Processes in process group `pgid`. */
function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      // gone
    }
  }
  return members;
}

describe('spark-job against real Spark (local-cluster)', () => {
  const oomJob = spec('skew-agg', 'collect_list_skew.py', ['400000']);

  it(
    'classifies a real executor OOM at 512m, resizes, and succeeds; cost, search attributes and history record it',
    async () => {
      const handle = await startSparkJob(t.client, { spec: oomJob }, { taskQueue: base });
      const result: SparkJobResult = await handle.result();
      expect(result.outcome).toBe('succeeded');
      expect(result.sizing.source).toBe('request');
      expect(result.attempts.map((a) => [a.outcome, a.failureKind ?? null, a.resources.executorMemory])).toEqual([
        ['failed', 'executor-oom', '512m'],
        // One executor core: task cpus cannot double, so the ladder goes straight to executor memory ×2.
        ['succeeded', null, '1g'],
      ]);
      const [failed, succeeded] = result.attempts;
      expect(failed!.evidence).toMatch(/OutOfMemoryError|code 52/);
      expect(failed!.applicationId).toMatch(/^app-\d{14}-\d{4}$/);
      expect(succeeded!.peaks.peakJVMHeapMemory).toBeGreaterThan(100 * 2 ** 20);
      expect(succeeded!.step).toBe('executor memory ×2, overhead ×2');
      expect(result.finalResources?.executorMemory).toBe('1g');
      expect(result.cost.wasted.gbHours).toBeCloseTo(failed!.cost.gbHours, 9);
      expect(result.cost.total.gbHours).toBeCloseTo(failed!.cost.gbHours + succeeded!.cost.gbHours, 9);
      expect(result.cost.total.vcoreHours).toBeGreaterThan(0);

      const described = await handle.describe();
      expect(described.typedSearchAttributes.get(SearchAttributes.sparkFailureKinds)).toEqual(['executor-oom']);
      expect(described.typedSearchAttributes.get(SearchAttributes.sparkAttempt)).toBe(2);
      expect(described.typedSearchAttributes.get(SearchAttributes.pipeline)).toBe('spark-job');
      const summaries = (await activitySummaries(handle)).filter((s) => s.startsWith('attempt'));
      expect(summaries).toEqual([
        expect.stringMatching(/^attempt 1 \(requested size\): 1× executor 512m .*driver 512m/),
        expect.stringMatching(/^attempt 2 \(executor memory ×2, overhead ×2\): 1× executor 1g \+768m overhead/),
      ]);

      const runs = await history.recentRuns(oomJob.name);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ outcome: 'succeeded', finalResources: { executorMemory: '1g' } });
      expect(runs[0]!.attempts.map((a) => a.failureKind ?? a.outcome)).toEqual(['executor-oom', 'succeeded']);
      expect(runs[0]!.wastedGbHours).toBeCloseTo(failed!.cost.gbHours, 9);

      const metrics = await registry.getSingleMetricAsString('sluice_spark_gb_hours_total');
      expect(metrics).toMatch(new RegExp(`job="${oomJob.name}",outcome="failed"`));
      await recordHistory('spark-job-oom-then-resized', handle);
    },
    SPARK_TEST_TIMEOUT,
  );

  it(
    'starts the second run from the learned size and succeeds at the first attempt',
    async () => {
      // What the recommender makes of run 1: mean peak heap × 1.25, above the 512m that failed, at most the proven 1g.
      const expected = recommendSizing(
        SparkResources.parse(oomJob.resources),
        oomJob.caps,
        await history.recentRuns(oomJob.name),
      );
      const learnedMib = parseMemoryMib(expected.resources.executorMemory);
      expect(learnedMib).toBeGreaterThan(512);
      expect(learnedMib).toBeLessThanOrEqual(1024);

      const handle = await startSparkJob(t.client, { spec: oomJob }, { taskQueue: base });
      const result = await handle.result();
      expect(result.sizing).toEqual(expected);
      expect(result.sizing).toMatchObject({ source: 'learned', basedOnRuns: 1 });
      expect(result.attempts).toHaveLength(1);
      expect(result.attempts[0]).toMatchObject({
        outcome: 'succeeded',
        step: 'learned size',
        resources: { executorMemory: expected.resources.executorMemory },
      });
      expect(result.cost.wasted.gbHours).toBe(0);

      const next = recommendSizing(
        SparkResources.parse(oomJob.resources),
        oomJob.caps,
        await history.recentRuns(oomJob.name),
      );
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [path.join(REPO_ROOT, 'bin/sluice.js'), 'spark', 'sizing', oomJob.name, '--history-url', databaseUrl],
        { timeout: 60_000 },
      );
      expect(stdout).toContain(`Spark job ${oomJob.name}: 2 run(s)`);
      expect(stdout).toMatch(/#1 executor-oom\s+exec 512m/);
      expect(stdout).toContain(
        `recommendation (learned, from 2 successful run(s)): executor ${next.resources.executorMemory} `,
      );
    },
    SPARK_TEST_TIMEOUT,
  );

  it(
    'doubles the driver after a real driver OOM',
    async () => {
      const job = spec('driver-heavy', 'driver_parallelize.py', ['300000', '1000'], {
        resources: { driverMemory: '512m', executorMemory: '512m', executorCores: 1 },
      });
      const handle = await startSparkJob(t.client, { spec: job }, { taskQueue: base });
      const result = await handle.result();
      expect(result.attempts.map((a) => [a.failureKind ?? a.outcome, a.resources.driverMemory])).toEqual([
        ['driver-oom', '512m'],
        ['succeeded', '1g'],
      ]);
      expect(result.attempts[1]!.resources.executorMemory).toBe('512m');
      expect(result.attempts[1]!.step).toBe('driver memory ×2 → 1g');
    },
    SPARK_TEST_TIMEOUT,
  );

  it(
    'does not retry a user-code failure (run started by a Schedule)',
    async () => {
      const job = spec('buggy', 'user_error.py', []);
      // A nightly job's shape: a Schedule whose action starts spark-job; triggered now instead of at night.
      const scheduleId = `spark-nightly-${suffix}`;
      const schedule = await t.client.schedule.create({
        scheduleId,
        spec: { cronExpressions: ['0 3 * * *'] },
        action: { type: 'startWorkflow', workflowType: 'sparkJob', taskQueue: base, args: [{ spec: job }] },
        state: { triggerImmediately: true },
      });
      const workflowId = await eventually(
        async () => (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId,
        60_000,
        'the schedule to start its run',
      );
      await schedule.delete();
      const handle = t.client.workflow.getHandle(workflowId);
      const err = await failureOf(handle);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('UserCodeError');
      expect((cause as ApplicationFailure).nonRetryable).toBe(true);
      expect(cause!.message).toMatch(/ValueError: bad input/);
      const result = (cause as ApplicationFailure).details?.[0] as SparkJobResult;
      expect(result.attempts).toHaveLength(1);
      expect(result.attempts[0]).toMatchObject({ outcome: 'failed', failureKind: 'user-code' });
      expect(result.cost.wasted.gbHours).toBeGreaterThan(0);
      const runs = await history.recentRuns(job.name);
      expect(runs[0]).toMatchObject({ outcome: 'failed' });
    },
    SPARK_TEST_TIMEOUT,
  );

  it('stops before an attempt that would pass the budget, with a typed failure', async () => {
    const job = spec('budgeted', 'small_sum.py', ['1000'], { budget: { maxGbHours: 0.001 } });
    const parsed = SparkJobSpec.parse(job);
    // One earlier successful run of this job took 10 minutes: the next attempt is estimated from it.
    const runKey = `seed/${suffix}`;
    await history.startRun({
      runKey,
      jobName: job.name,
      templateHash: templateHash(parsed),
      owner: 'spark-it',
      requested: parsed.resources,
      startedAt: new Date().toISOString(),
    });
    const attempt = {
      attempt: 1,
      resources: parsed.resources,
      step: 'requested size',
      outcome: 'succeeded' as const,
      exitCode: 0,
      startedAt: new Date().toISOString(),
      wallMs: 600_000,
      cost: { gbHours: 0.3, vcoreHours: 0.3 },
      peaks: {},
    };
    await history.recordAttempt(runKey, attempt);
    await history.finishRun(
      runKey,
      {
        jobName: job.name,
        templateHash: templateHash(parsed),
        outcome: 'succeeded',
        sizing: { source: 'request', resources: parsed.resources, reason: 'seed', basedOnRuns: 0 },
        attempts: [attempt],
        finalResources: parsed.resources,
        cost: { total: attempt.cost, wasted: { gbHours: 0, vcoreHours: 0 } },
      },
      'succeeded',
    );

    const handle = await startSparkJob(t.client, { spec: job }, { taskQueue: base });
    const err = await failureOf(handle);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('BudgetExceeded');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toMatch(/GB·h > maxGbHours 0.001/);
    expect((cause.details?.[0] as SparkJobResult).attempts).toEqual([]); // nothing was submitted
    expect(existsSync(path.join(workDir, job.name))).toBe(false);
  });

  it(
    'kills the Spark application, executors included, when the workflow is cancelled',
    async () => {
      const job = spec('long', 'slow_steps.py', ['600', '0.5']);
      const handle = await startSparkJob(t.client, { spec: job }, { taskQueue: base });
      const appName = `${job.name}#1`;
      // Wait until the job really computes: the driver log shows a finished step.
      const driverLog = await eventually(
        async () => {
          const dir = path.join(workDir, job.name);
          if (!existsSync(dir)) return undefined;
          for (const run of readdirSync(dir)) {
            for (const attempt of readdirSync(path.join(dir, run))) {
              const file = path.join(dir, run, attempt, 'driver.log');
              if (existsSync(file) && readFileSync(file, 'utf8').includes('step 2/600')) return file;
            }
          }
          return undefined;
        },
        180_000,
        'the Spark job to finish two steps',
      );
      const appId = /app ID (app-\d{14}-\d{4})/.exec(readFileSync(driverLog, 'utf8'))?.[1];
      expect(appId).toBeDefined();
      const drivers = processesMatching(appName);
      expect(drivers.length).toBeGreaterThan(0);
      expect(processesMatching(`--app-id ${appId}`).length).toBeGreaterThan(0); // a live executor JVM
      const pgid = Number(readFileSync(`/proc/${drivers[0]}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
      expect(processGroupMembers(pgid).length).toBeGreaterThan(1);

      await handle.cancel();
      const err = await failureOf(handle);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      // The workflow waited for the kill (WAIT_CANCELLATION_COMPLETED): nothing of the application is left.
      expect(processesMatching(appName)).toEqual([]);
      expect(processesMatching(`--app-id ${appId}`)).toEqual([]);
      expect(processGroupMembers(pgid)).toEqual([]);
      const runs = await history.recentRuns(job.name);
      expect(runs[0]).toMatchObject({ outcome: 'cancelled' });
      expect(runs[0]!.attempts.map((a) => a.outcome)).toEqual(['cancelled']);
    },
    SPARK_TEST_TIMEOUT,
  );
});
