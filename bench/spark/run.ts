/**
 * Elastic retry vs static sizing, on real Spark 4.1 (pip pyspark, local-cluster with real executor JVMs), through
 * the real `spark-job` workflow on a Temporal dev server with the history in a private PostgreSQL.
 *
 * For each job of the suite (bench/spark/jobs.py: skewed join, large aggregation, wide shuffle, explode, a small
 * job, plus the skewed collect_list of the tests at 500k rows; `small-sql` is there for `--jobs`) and strategy:
 *   (a) static, provisioned for the peak: every job gets the executor size the heaviest job needs (the largest the
 *       ladder found), no retry;
 *   (b) static, provisioned for the average: the smallest executor, no retry (its failure rate is recorded);
 *   (c) our ladder, starting at the average size, no history;
 *   (d) our ladder plus learned sizing: the second run of (c)'s job, starting from the history.
 * Figures: attempts to success, GB·h (failed attempts included) and wall time per strategy. Goal from issue 5:
 * (d) completes every job with ≥30% fewer GB·h than (a) and ≤1.2 attempts per job.
 *
 * Run: `npm run bench:spark` (`-- --jobs small-sum,explode` for a subset). Writes bench/results/spark.json and
 * bench/results/spark-runs.json. Takes 20–40 minutes on a loaded 2-core machine.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startSparkJob } from '../../client/pipelines.js';
import { devServerSearchAttributes } from '../../cli/local-stack.js';
import { REPO_ROOT } from '../../lib/config.js';
import { SparkHistoryStore } from '../../lib/spark/history.js';
import { formatMemoryMib, parseMemoryMib } from '../../lib/spark/memory.js';
import { findSparkHome, findSparkPython } from '../../lib/spark/spark-home.js';
import { SparkSubmitProcess } from '../../lib/spark/submitter.js';
import { startPostgresCluster } from '../../lib/stack/postgres-cluster.js';
import { startTemporalDevServer } from '../../lib/stack/temporal-server.js';
import type { SparkJobResult } from '../../schemas/spark.js';
import { StackConfig } from '../../schemas/stack-config.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { bundleWorkflows } from '../../workers/workflow-bundle.js';
import { writeResults, type Figure } from '../lib/results.js';

const ALL_JOBS = [
  'collect-list-skew',
  'skewed-join',
  'large-aggregation',
  'wide-shuffle',
  'explode',
  'small-sum',
] as const;
const jobsArg = process.argv.find((a) => a.startsWith('--jobs='))?.slice('--jobs='.length);
const JOBS = jobsArg ? jobsArg.split(',') : [...ALL_JOBS];
/** The static peak size; by default the largest size the ladder needed for any job of the suite. */
const PEAK_OVERRIDE = process.env.BENCH_SPARK_PEAK;
/** The ladder's cap: what a local-cluster worker of 2048 MB can hold. */
const CAP = '2g';
let peak = PEAK_OVERRIDE ?? CAP;
/** The average size: Spark's smallest round heap. */
const AVERAGE = process.env.BENCH_SPARK_AVERAGE ?? '512m';
const MASTER = 'local-cluster[1,1,2048]';

type Strategy = 'a-static-peak' | 'b-static-average' | 'c-ladder' | 'd-ladder-learned';

interface RunRow {
  job: string;
  strategy: Strategy;
  succeeded: boolean;
  attempts: number;
  gbHours: number;
  wastedGbHours: number;
  vcoreHours: number;
  wallMs: number;
  startExecutorMemory: string;
  finalExecutorMemory: string | null;
  kinds: string[];
  /** The first attempt alone (for (b)). */
  firstAttempt: { succeeded: boolean; gbHours: number; vcoreHours: number; wallMs: number };
}

function appFor(job: string) {
  if (job === 'collect-list-skew') {
    return { resource: path.join(REPO_ROOT, 'test/fixtures/spark-jobs/collect_list_skew.py'), args: ['500000'] };
  }
  return { resource: path.join(REPO_ROOT, 'bench/spark/jobs.py'), args: [job] };
}

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-spark-'));
  const [server, postgres] = await Promise.all([
    startTemporalDevServer({ logDir: dir, searchAttributes: devServerSearchAttributes(StackConfig.parse({})) }),
    startPostgresCluster(),
  ]);
  const history = SparkHistoryStore.connect(postgres.url());
  const connection = await Connection.connect({ address: server.address });
  const native = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  const base = 'bench-spark';
  const worker = await createCpuWorker({
    connection: native,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: await bundleWorkflows() },
    shutdownGraceTime: '5s',
    spark: {
      submitter: new SparkSubmitProcess({
        sparkHome: findSparkHome(),
        pythonExecutable: findSparkPython(),
        env: { SPARK_LOCAL_IP: '127.0.0.1' },
      }),
      history,
      workDir: path.join(dir, 'spark'),
    },
  });
  const tag = randomUUID().slice(0, 6);
  const rows: RunRow[] = [];

  async function runJob(job: string, strategy: Strategy, name: string, start: string, ladder: boolean) {
    const spec = {
      name,
      owner: 'bench',
      master: MASTER,
      app: { ...appFor(job), conf: { 'spark.ui.enabled': 'false', 'spark.task.maxFailures': '1' } },
      resources: { driverMemory: '512m', executorMemory: start, executorCores: 1 },
      caps: { executorMemory: ladder ? CAP : start },
      retry: { maxAttempts: ladder ? 5 : 1 },
      useLearnedSizing: ladder,
    };
    const started = Date.now();
    const handle = await startSparkJob(client, { spec }, { taskQueue: base, workflowId: `bench/${name}/${strategy}` });
    let result: SparkJobResult;
    try {
      result = await handle.result();
    } catch (err) {
      const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
      const details =
        cause instanceof ApplicationFailure ? (cause.details?.[0] as SparkJobResult | undefined) : undefined;
      if (!details) throw err;
      result = details;
    }
    const row: RunRow = {
      job,
      strategy,
      succeeded: result.outcome === 'succeeded',
      attempts: result.attempts.length,
      gbHours: result.cost.total.gbHours,
      wastedGbHours: result.cost.wasted.gbHours,
      vcoreHours: result.cost.total.vcoreHours,
      wallMs: Date.now() - started,
      startExecutorMemory: result.attempts[0]?.resources.executorMemory ?? start,
      finalExecutorMemory: result.finalResources?.executorMemory ?? null,
      kinds: result.attempts.flatMap((a) => (a.failureKind ? [a.failureKind] : [])),
      firstAttempt: {
        succeeded: result.attempts[0]?.outcome === 'succeeded',
        gbHours: result.attempts[0]?.cost.gbHours ?? 0,
        vcoreHours: result.attempts[0]?.cost.vcoreHours ?? 0,
        wallMs: result.attempts[0]?.wallMs ?? 0,
      },
    };
    rows.push(row);
    console.log(
      `${job.padEnd(18)} ${strategy.padEnd(17)} ${row.succeeded ? 'ok  ' : 'FAIL'} attempts ${row.attempts} ` +
        `${row.startExecutorMemory}→${row.finalExecutorMemory ?? '-'} ${row.gbHours.toFixed(5)} GB·h ` +
        `${(row.wallMs / 1000).toFixed(1)} s ${row.kinds.join(',')}`,
    );
  }

  const writeAll = (partial: boolean) => writeFigures(rows, peak, partial);
  try {
    await worker.runUntil(async () => {
      // The heaviest job first: the largest size the ladder needs is what a static "peak" configuration must
      // give every job. Then, per job, the ladder (c), its second run (d) and the static peak (a); (b) is (c)'s
      // first attempt (the same configuration, no history, and no retry).
      for (const job of JOBS) {
        await runJob(job, 'c-ladder', `bench-${job}-ladder-${tag}`, AVERAGE, true);
        await runJob(job, 'd-ladder-learned', `bench-${job}-ladder-${tag}`, AVERAGE, true);
        const needed = rows.flatMap((r) => (r.finalExecutorMemory ? [parseMemoryMib(r.finalExecutorMemory)] : []));
        peak = PEAK_OVERRIDE ?? formatMemoryMib(Math.max(parseMemoryMib(AVERAGE), ...needed));
        await runJob(job, 'a-static-peak', `bench-${job}-peak-${tag}`, peak, false);
        writeAll(true);
      }
    });
  } finally {
    await connection.close();
    await native.close();
    await history.close();
    await Promise.allSettled([server.stop(), postgres.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
  writeAll(false);
}

/** (b) static average, no retry: exactly (c)'s first attempt, which ran that configuration without history. */
function staticAverageRows(rows: RunRow[]): RunRow[] {
  return rows
    .filter((r) => r.strategy === 'c-ladder')
    .map((r) => ({
      ...r,
      strategy: 'b-static-average' as const,
      succeeded: r.firstAttempt.succeeded,
      attempts: 1,
      gbHours: r.firstAttempt.gbHours,
      wastedGbHours: r.firstAttempt.succeeded ? 0 : r.firstAttempt.gbHours,
      vcoreHours: r.firstAttempt.vcoreHours,
      wallMs: r.firstAttempt.wallMs,
      finalExecutorMemory: r.firstAttempt.succeeded ? r.startExecutorMemory : null,
      kinds: r.kinds.slice(0, 1),
    }));
}

function writeFigures(measured: RunRow[], peak: string, partial: boolean): void {
  const rows = [...measured, ...staticAverageRows(measured)];
  const by = (s: Strategy) => rows.filter((r) => r.strategy === s);
  const sum = (rs: RunRow[], f: (r: RunRow) => number) => rs.reduce((acc, r) => acc + f(r), 0);
  // Only jobs that have all strategies count, so a partial run still compares like with like.
  const complete = new Set(by('a-static-peak').map((r) => r.job));
  const only = (rs: RunRow[]) => rs.filter((r) => complete.has(r.job));
  const a = only(by('a-static-peak'));
  const b = only(by('b-static-average'));
  const c = only(by('c-ladder'));
  const d = only(by('d-ladder-learned'));
  if (a.length === 0) return;
  const round = (v: number, digits = 5) => Number(v.toFixed(digits));
  const gbA = sum(a, (r) => r.gbHours);
  const gbD = sum(d, (r) => r.gbHours);
  const attemptsD = sum(d, (r) => r.attempts) / d.length;
  const figures: Figure[] = [
    {
      name: 'gb_hours_d_ladder_learned',
      value: round(gbD),
      unit: 'GB·h',
      peer: { name: '(a) static peak', value: round(gbA) },
      ratio: round(gbD / gbA, 3),
      ratioMeaning: '(d) / (a); lower is better',
      goal: '(d) ≥ 30% fewer GB·h than (a): ratio ≤ 0.70',
    },
    {
      name: 'attempts_per_job_d_ladder_learned',
      value: round(attemptsD, 2),
      unit: 'attempts/job',
      peer: null,
      ratio: null,
      goal: '≤ 1.2 attempts per job, every job completed',
    },
    {
      name: 'jobs_completed_d_ladder_learned',
      value: d.filter((r) => r.succeeded).length,
      unit: `of ${d.length} jobs`,
      peer: null,
      ratio: null,
      goal: 'all',
    },
    {
      name: 'gb_hours_c_ladder',
      value: round(sum(c, (r) => r.gbHours)),
      unit: 'GB·h',
      peer: { name: '(a) static peak', value: round(gbA) },
      ratio: round(sum(c, (r) => r.gbHours) / gbA, 3),
      ratioMeaning: '(c) / (a)',
      goal: null,
    },
    {
      name: 'attempts_per_job_c_ladder',
      value: round(sum(c, (r) => r.attempts) / c.length, 2),
      unit: 'attempts/job',
      peer: null,
      ratio: null,
      goal: null,
    },
    {
      name: 'failure_rate_b_static_average',
      value: round(b.filter((r) => !r.succeeded).length / b.length, 3),
      unit: 'failed jobs / jobs',
      peer: null,
      ratio: null,
      goal: null,
    },
    {
      name: 'gb_hours_b_static_average',
      value: round(sum(b, (r) => r.gbHours)),
      unit: 'GB·h (failed runs included)',
      peer: { name: '(a) static peak', value: round(gbA) },
      ratio: round(sum(b, (r) => r.gbHours) / gbA, 3),
      ratioMeaning: '(b) / (a)',
      goal: null,
    },
    ...(['a-static-peak', 'b-static-average', 'c-ladder', 'd-ladder-learned'] as const).map((s) => ({
      name: `wall_seconds_${s.replaceAll('-', '_')}`,
      value: round(sum(by(s), (r) => r.wallMs) / 1000, 1),
      unit: 's (all jobs, sequential)',
      peer: null,
      ratio: null,
      goal: null,
    })),
  ];
  const file = writeResults('spark', 'npm run bench:spark', figures, [
    ...(partial ? [`PARTIAL: ${a.length} of ${JOBS.length} jobs done when this was written`] : []),
    `jobs: ${[...complete].join(', ')}`,
    "(b) is (c)'s first attempt: the same configuration, run with no history and no retry",
    'spark.task.maxFailures=1 for every strategy, so a failing attempt ends at its first lost task',
    `master ${MASTER}, executor cores 1, driver 512m; static peak size ${peak} (the largest the ladder needed), average size ${AVERAGE}, ladder cap ${CAP}`,
    'GB·h = (driver + executor containers, with Spark default overheads) × attempt wall time; failed attempts count',
    'machine shared with other engineers during the run: wall times carry their load',
  ]);
  writeFileSync(
    path.join(REPO_ROOT, 'bench/results/spark-runs.json'),
    JSON.stringify({ date: new Date().toISOString(), rows }, null, 2) + '\n',
  );
  console.log(`wrote ${file}`);
  console.log(
    `(d)/(a) GB·h = ${(gbD / gbA).toFixed(3)} (goal ≤ 0.70); (d) attempts/job = ${attemptsD.toFixed(2)} (goal ≤ 1.2)`,
  );
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
