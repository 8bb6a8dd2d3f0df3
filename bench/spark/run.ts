/**
 * Elastic retry vs static sizing, on real Spark 4.1 (pip pyspark, local-cluster with real executor JVMs), through
 * the real `spark-job` workflow on a Temporal dev server with the history in a private PostgreSQL.
 *
 * The suite (bench/spark/jobs.py): two heavy skewed jobs that really need 2–3g executors (`skewed-join`,
 * `collect-list-skew`), and four light ones (`large-aggregation`, `wide-shuffle`, `explode`, `small-sum`);
 * `small-sql` is there for `--jobs`. For each job and strategy:
 *   (a) static, provisioned for the peak: every job gets the executor size the heaviest job needs (the smallest
 *       size that succeeded above every size that ran out of memory in the ladder runs so far), no retry;
 *   (b) static, provisioned for the average (1g by default), no retry (its failure rate is recorded);
 *   (c) our ladder, starting at the average size, no history;
 *   (d) our ladder plus learned sizing: the second run of (c)'s job, starting from the history.
 * Each (job, strategy) runs `--repeats` times (default 2), each repeat with its own history; a job's figures are
 * the medians over its repeats, and the spread of the wall times is reported. Per (job, repeat) the order of (a),
 * (c) and (d) rotates (see ORDERS), so no strategy always gets the quieter or the busier slot; the load average
 * during each strategy's runs is reported with the figures. Figures: attempts to success, GB·h (failed attempts
 * included) and wall time per strategy; the suite's GB·h per repeat and its median over repeats; (d)/(a) paired
 * within each repeat; and GB·h with every attempt charged its job's median wall time (memory and attempts only). Goal from issue 5: (d) completes every job with ≥30%
 * fewer GB·h than (a) and ≤1.2 attempts per job.
 *
 * Run: `npm run bench:spark` (`-- --jobs=small-sum,explode --repeats=3` for a subset). Writes
 * bench/results/spark.json and bench/results/spark-runs.json. Took 22 minutes at 2 repeats on the shared 2-core
 * machine.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import type { SparkAttemptRecord, SparkJobResult } from '../../schemas/spark.js';
import { StackConfig } from '../../schemas/stack-config.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { bundleWorkflows } from '../../workers/workflow-bundle.js';
import { writeResults, type Figure } from '../lib/results.js';

/** The default suite, heaviest first: the static peak size is known once the heavy jobs have run their ladder. */
const ALL_JOBS = [
  'skewed-join',
  'collect-list-skew',
  'large-aggregation',
  'wide-shuffle',
  'explode',
  'small-sum',
] as const;
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const JOBS = arg('jobs')?.split(',') ?? [...ALL_JOBS];
const REPEATS = Number(arg('repeats') ?? process.env.BENCH_SPARK_REPEATS ?? 2);
/** The static peak size; by default what the heaviest job needs (see peakNeeds). */
const PEAK_OVERRIDE = process.env.BENCH_SPARK_PEAK;
/** The ladder's cap: what the local-cluster worker holds. */
const CAP = '4g';
let peak = PEAK_OVERRIDE ?? CAP;
/** The average size: about the suite's mean need (four jobs at 512m, one at 2g, one at 3g: 1.25g), rounded down. */
const AVERAGE = process.env.BENCH_SPARK_AVERAGE ?? '1g';
const MASTER = 'local-cluster[1,1,4096]';

type Strategy = 'a-static-peak' | 'b-static-average' | 'c-ladder' | 'd-ladder-learned';
const STRATEGIES: readonly Strategy[] = ['a-static-peak', 'b-static-average', 'c-ladder', 'd-ladder-learned'];
/** The orders the measured strategies run in for one (job, repeat), rotated; (d) always after its own (c). */
const ORDERS: readonly (readonly Strategy[])[] = [
  ['c-ladder', 'd-ladder-learned', 'a-static-peak'],
  ['a-static-peak', 'c-ladder', 'd-ladder-learned'],
  ['c-ladder', 'a-static-peak', 'd-ladder-learned'],
];

interface RunRow {
  job: string;
  strategy: Strategy;
  repeat: number;
  succeeded: boolean;
  attempts: number;
  gbHours: number;
  wastedGbHours: number;
  vcoreHours: number;
  wallMs: number;
  /** Time inside Spark jobs (event log: job submission to completion), summed over attempts. */
  sparkJobMs: number;
  startExecutorMemory: string;
  finalExecutorMemory: string | null;
  kinds: string[];
  /** Each attempt's executor memory in MiB, and whether it succeeded or failed for memory. */
  attemptSizes: { mib: number; ok: boolean; memoryFailure: boolean }[];
  /** GB each attempt held (its GB·h over its wall time), for the wall-time-normalized comparison. */
  attemptGb: number[];
  /** Wall time of the successful attempt, if any. */
  successWallMs: number | null;
  /** The 1-minute load average when the run ended. */
  load: number;
  /** The 1-minute load average when the run started. */
  loadStart: number;
  /** Where the run stood in its (job, repeat) order: 0 first, 1 second, 2 third. */
  slot: number;
  /** The first attempt alone (for (b)). */
  firstAttempt: { succeeded: boolean; gbHours: number; vcoreHours: number; wallMs: number; sparkJobMs: number };
}

function appFor(job: string) {
  return { resource: path.join(REPO_ROOT, 'bench/spark/jobs.py'), args: [job] };
}

const MEMORY_KINDS: ReadonlySet<string> = new Set(['executor-oom', 'execution-memory', 'container-memory-kill']);

/**
 * What each job needs, in MiB, from the ladder runs so far: the smallest executor memory that succeeded above every
 * executor memory that failed for memory (else the largest that succeeded). The static peak is the largest of these.
 * Not the ladder's last step: its ×k steps can overshoot the need (a 2g first attempt that fails goes to 4g while
 * 3g suffices), and a static configuration is provisioned for the need.
 */
function peakNeeds(rows: readonly RunRow[]): Map<string, number> {
  const needs = new Map<string, number>();
  for (const job of new Set(rows.map((r) => r.job))) {
    const sizes = rows.filter((r) => r.job === job && r.strategy !== 'a-static-peak').flatMap((r) => r.attemptSizes);
    const failedMax = Math.max(0, ...sizes.filter((a) => a.memoryFailure).map((a) => a.mib));
    const ok = sizes.filter((a) => a.ok).map((a) => a.mib);
    const above = ok.filter((m) => m > failedMax);
    if (ok.length > 0) needs.set(job, above.length > 0 ? Math.min(...above) : Math.max(...ok));
  }
  return needs;
}

/** Milliseconds the attempt spent in Spark jobs, from its event log (0 when there is none). */
function sparkJobMs(attempt: SparkAttemptRecord | undefined): number {
  const file = attempt?.eventLogPath;
  if (!file || !existsSync(file)) return 0;
  const starts = new Map<number, number>();
  let total = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('SparkListenerJob')) continue;
    const e = JSON.parse(line) as {
      Event: string;
      'Job ID': number;
      'Submission Time'?: number;
      'Completion Time'?: number;
    };
    if (e.Event === 'SparkListenerJobStart' && e['Submission Time']) starts.set(e['Job ID'], e['Submission Time']);
    if (e.Event === 'SparkListenerJobEnd' && e['Completion Time'] && starts.has(e['Job ID'])) {
      total += e['Completion Time'] - starts.get(e['Job ID'])!;
    }
  }
  return total;
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
  const startedAt = new Date().toISOString();

  async function runJob(
    job: string,
    strategy: Strategy,
    repeat: number,
    name: string,
    start: string,
    ladder: boolean,
    slot: number,
  ) {
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
    const loadStart = os.loadavg()[0]!;
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
    const first = result.attempts[0];
    const row: RunRow = {
      job,
      strategy,
      repeat,
      succeeded: result.outcome === 'succeeded',
      attempts: result.attempts.length,
      gbHours: result.cost.total.gbHours,
      wastedGbHours: result.cost.wasted.gbHours,
      vcoreHours: result.cost.total.vcoreHours,
      wallMs: Date.now() - started,
      sparkJobMs: result.attempts.reduce((acc, a) => acc + sparkJobMs(a), 0),
      startExecutorMemory: first?.resources.executorMemory ?? start,
      finalExecutorMemory: result.finalResources?.executorMemory ?? null,
      kinds: result.attempts.flatMap((a) => (a.failureKind ? [a.failureKind] : [])),
      attemptSizes: result.attempts.map((a) => ({
        mib: parseMemoryMib(a.resources.executorMemory),
        ok: a.outcome === 'succeeded',
        memoryFailure: a.failureKind !== undefined && MEMORY_KINDS.has(a.failureKind),
      })),
      attemptGb: result.attempts.map((a) => (a.wallMs > 0 ? a.cost.gbHours / (a.wallMs / 3_600_000) : 0)),
      successWallMs: result.attempts.find((a) => a.outcome === 'succeeded')?.wallMs ?? null,
      load: os.loadavg()[0]!,
      loadStart,
      slot,
      firstAttempt: {
        succeeded: first?.outcome === 'succeeded',
        gbHours: first?.cost.gbHours ?? 0,
        vcoreHours: first?.cost.vcoreHours ?? 0,
        wallMs: first?.wallMs ?? 0,
        sparkJobMs: sparkJobMs(first),
      },
    };
    rows.push(row);
    console.log(
      `${job.padEnd(18)} ${strategy.padEnd(17)} r${repeat} #${slot} ${row.succeeded ? 'ok  ' : 'FAIL'} attempts ${row.attempts} ` +
        `${row.startExecutorMemory}→${row.finalExecutorMemory ?? '-'} ${row.gbHours.toFixed(5)} GB·h ` +
        `${(row.wallMs / 1000).toFixed(1)} s (spark jobs ${(row.sparkJobMs / 1000).toFixed(1)} s) ` +
        `load ${row.loadStart.toFixed(1)}→${row.load.toFixed(1)} ${row.kinds.join(',')}`,
    );
  }

  const writeAll = (partial: boolean) => writeFigures(rows, peak, partial, startedAt);
  try {
    await worker.runUntil(async () => {
      // The heaviest job first: the largest size the ladder needs is what a static "peak" configuration must
      // give every job. Per (job, repeat) the three measured strategies run in one of ORDERS, rotated over jobs
      // and repeats, so that no strategy always runs first (after another job's teardown) or last; (d) always
      // follows its own (c), whose history it learns from. (a) takes the largest size any ladder needed so far;
      // until one has (the first job of the first repeat, without BENCH_SPARK_PEAK) (a) runs after (c).
      // (b) is (c)'s first attempt (the same configuration, no history, and no retry).
      // Repeats are the outer loop, so a run cut short still has every job at least once.
      for (let repeat = 1; repeat <= REPEATS; repeat++) {
        for (const [jobIndex, job] of JOBS.entries()) {
          const name = `bench-${job}-ladder-${tag}-r${repeat}`;
          let order = ORDERS[(repeat - 1 + jobIndex) % ORDERS.length]!;
          const peakKnown = PEAK_OVERRIDE !== undefined || rows.some((r) => r.finalExecutorMemory !== null);
          if (!peakKnown && order[0] === 'a-static-peak') order = ORDERS[0]!;
          for (const [slot, strategy] of order.entries()) {
            if (strategy === 'a-static-peak') {
              peak = PEAK_OVERRIDE ?? formatMemoryMib(Math.max(parseMemoryMib(AVERAGE), ...peakNeeds(rows).values()));
              await runJob(job, strategy, repeat, `bench-${job}-peak-${tag}-r${repeat}`, peak, false, slot);
            } else {
              await runJob(job, strategy, repeat, name, AVERAGE, true, slot);
            }
          }
          writeAll(true);
        }
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
      sparkJobMs: r.firstAttempt.sparkJobMs,
      attemptGb: r.attemptGb.slice(0, 1),
      finalExecutorMemory: r.firstAttempt.succeeded ? r.startExecutorMemory : null,
      kinds: r.kinds.slice(0, 1),
    }));
}

/** The median (the mean of the middle two for an even count). */
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** One job under one strategy: medians over its repeats. */
interface JobSummary {
  job: string;
  strategy: Strategy;
  repeats: number;
  /** Every repeat completed the job. */
  succeeded: boolean;
  failedRepeats: number;
  attempts: number;
  gbHours: number;
  wallMs: number;
  wallMinMs: number;
  wallMaxMs: number;
  sparkJobMs: number;
  finalExecutorMemory: string | null;
}

function summarize(rows: RunRow[]): JobSummary[] {
  const out: JobSummary[] = [];
  for (const strategy of STRATEGIES) {
    for (const job of [...new Set(rows.map((r) => r.job))]) {
      const rs = rows.filter((r) => r.strategy === strategy && r.job === job);
      if (rs.length === 0) continue;
      const walls = rs.map((r) => r.wallMs);
      out.push({
        job,
        strategy,
        repeats: rs.length,
        succeeded: rs.every((r) => r.succeeded),
        failedRepeats: rs.filter((r) => !r.succeeded).length,
        attempts: median(rs.map((r) => r.attempts)),
        gbHours: median(rs.map((r) => r.gbHours)),
        wallMs: median(walls),
        wallMinMs: Math.min(...walls),
        wallMaxMs: Math.max(...walls),
        sparkJobMs: median(rs.map((r) => r.sparkJobMs)),
        finalExecutorMemory: rs.find((r) => r.finalExecutorMemory)?.finalExecutorMemory ?? null,
      });
    }
  }
  return out;
}

function writeFigures(measured: RunRow[], peak: string, partial: boolean, startedAt: string): void {
  const rows = [...measured, ...staticAverageRows(measured)];
  // Only jobs that have all strategies count, so a partial run still compares like with like.
  const complete = new Set(rows.filter((r) => r.strategy === 'a-static-peak').map((r) => r.job));
  const summaries = summarize(rows.filter((r) => complete.has(r.job)));
  const by = (s: Strategy) => summaries.filter((r) => r.strategy === s);
  const sum = (rs: JobSummary[], f: (r: JobSummary) => number) => rs.reduce((acc, r) => acc + f(r), 0);
  const a = by('a-static-peak');
  const b = by('b-static-average');
  const c = by('c-ladder');
  const d = by('d-ladder-learned');
  if (a.length === 0) return;
  const round = (v: number, digits = 5) => Number(v.toFixed(digits));
  const gbA = sum(a, (r) => r.gbHours);
  const gbD = sum(d, (r) => r.gbHours);
  const attemptsD = sum(d, (r) => r.attempts) / d.length;
  const loads = measured.map((r) => r.load);
  // Wall-time-normalized GB·h: every attempt of a job is charged the job's typical wall time (the median over all
  // its successful attempts, any strategy), so only the memory held and the number of attempts differ.
  const typicalWall = new Map<string, number>();
  for (const job of complete) {
    const walls = measured.flatMap((r) => (r.job === job && r.successWallMs !== null ? [r.successWallMs] : []));
    typicalWall.set(job, walls.length ? median(walls) : 0);
  }
  const normalized = (s: Strategy) => {
    let total = 0;
    for (const job of complete) {
      const rs = rows.filter((r) => r.strategy === s && r.job === job);
      if (rs.length === 0) continue;
      total +=
        median(rs.map((r) => r.attemptGb.reduce((acc, gb) => acc + gb, 0))) * (typicalWall.get(job)! / 3_600_000);
    }
    return total;
  };
  const normA = normalized('a-static-peak');
  const normD = normalized('d-ladder-learned');
  // Per repeat: each strategy's suite total (only repeats where every complete job ran it), and (d)/(a) paired
  // within the repeat; their medians over repeats are a second view of the goal that a single noisy run moves less.
  const repeats = [...new Set(rows.map((r) => r.repeat))].sort((x, y) => x - y);
  const suiteTotals = (s: Strategy) =>
    repeats.flatMap((rep) => {
      const rs = rows.filter((r) => r.strategy === s && r.repeat === rep && complete.has(r.job));
      return rs.length === complete.size ? [{ repeat: rep, gbHours: rs.reduce((acc, r) => acc + r.gbHours, 0) }] : [];
    });
  const totalsA = suiteTotals('a-static-peak');
  const totalsD = suiteTotals('d-ladder-learned');
  const pairedRatios = totalsD.flatMap((t) => {
    const peer = totalsA.find((x) => x.repeat === t.repeat);
    return peer && peer.gbHours > 0 ? [t.gbHours / peer.gbHours] : [];
  });
  /** The 1-minute load average over a strategy's runs (mean of start and end per run): how fair the comparison was. */
  const loadOf = (s: Strategy) => {
    const ls = measured.filter((r) => r.strategy === s).map((r) => (r.loadStart + r.load) / 2);
    return ls.length ? median(ls) : 0;
  };
  const slotsOf = (s: Strategy) =>
    [0, 1, 2].map((slot) => measured.filter((r) => r.strategy === s && r.slot === slot).length).join('/');
  // The wall-time spread of a job under a strategy: (max − min) / median over its repeats.
  const spreads = summaries.filter((s) => s.repeats > 1).map((s) => (s.wallMaxMs - s.wallMinMs) / s.wallMs);
  const figures: Figure[] = [
    {
      name: 'gb_hours_d_ladder_learned',
      value: round(gbD),
      unit: 'GB·h (sum over jobs of the median over repeats)',
      peer: { name: '(a) static peak', value: round(gbA) },
      ratio: round(gbD / gbA, 3),
      ratioMeaning: '(d) / (a); lower is better',
      goal: '(d) ≥ 30% fewer GB·h than (a): ratio ≤ 0.70',
    },
    {
      name: 'gb_hours_d_ladder_learned_wall_normalized',
      value: round(normD),
      unit: 'GB·h with every attempt charged its job’s median successful wall time (memory and attempts only)',
      peer: { name: '(a) static peak, same normalization', value: round(normA) },
      ratio: round(normD / normA, 3),
      ratioMeaning: '(d) / (a); lower is better; a cross-check that removes wall-time noise, not the goal figure',
      goal: null,
    },
    {
      name: 'gb_hours_d_ladder_learned_per_repeat_ratio_median',
      value: round(pairedRatios.length ? median(pairedRatios) : NaN, 3),
      unit: `(d) / (a) suite GB·h paired within each repeat, median over ${pairedRatios.length} repeat(s): ${pairedRatios.map((r) => r.toFixed(3)).join(', ')}`,
      peer: null,
      ratio: null,
      goal: null,
    },
    ...(['a-static-peak', 'c-ladder', 'd-ladder-learned'] as const).map((s) => ({
      name: `gb_hours_suite_median_${s.replaceAll('-', '_')}`,
      value: round(suiteTotals(s).length ? median(suiteTotals(s).map((t) => t.gbHours)) : NaN),
      unit: `GB·h, the whole suite per repeat, median over repeats (${suiteTotals(s)
        .map((t) => t.gbHours.toFixed(4))
        .join(', ')})`,
      peer: null,
      ratio: null,
      goal: null,
    })),
    ...(['a-static-peak', 'b-static-average', 'c-ladder'] as const).map((s) => ({
      name: `gb_hours_wall_normalized_${s.replaceAll('-', '_')}`,
      value: round(normalized(s)),
      unit: 'GB·h with every attempt charged its job’s median successful wall time',
      peer: null,
      ratio: null,
      goal: null,
    })),
    ...(['a-static-peak', 'c-ladder', 'd-ladder-learned'] as const).map((s) => ({
      name: `load_average_${s.replaceAll('-', '_')}`,
      value: round(loadOf(s), 2),
      unit: `1-minute load average during this strategy's runs (median over runs of the mean of start and end); runs in slot 1st/2nd/3rd of their (job, repeat): ${slotsOf(s)}`,
      peer: null,
      ratio: null,
      goal: null,
    })),
    {
      name: 'attempts_per_job_d_ladder_learned',
      value: round(sum(d, (r) => r.attempts) / d.length, 2),
      unit: 'attempts/job (median over repeats, mean over jobs)',
      peer: null,
      ratio: null,
      goal: '≤ 1.2 attempts per job, every job completed',
    },
    {
      name: 'jobs_completed_d_ladder_learned',
      value: d.filter((r) => r.succeeded).length,
      unit: `of ${d.length} jobs (in every repeat)`,
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
      value: round(sum(b, (r) => r.failedRepeats) / sum(b, (r) => r.repeats), 3),
      unit: 'failed runs / runs',
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
    ...STRATEGIES.map((s) => ({
      name: `wall_seconds_${s.replaceAll('-', '_')}`,
      value: round(sum(by(s), (r) => r.wallMs) / 1000, 1),
      unit: 's (all jobs, sequential; median over repeats)',
      peer: null,
      ratio: null,
      goal: null,
    })),
    ...STRATEGIES.map((s) => ({
      name: `spark_job_share_${s.replaceAll('-', '_')}`,
      value: round(sum(by(s), (r) => r.sparkJobMs) / sum(by(s), (r) => r.wallMs), 3),
      unit: 'share of wall time inside Spark jobs (the rest: JVM and application start-up and shutdown)',
      peer: null,
      ratio: null,
      goal: null,
    })),
    {
      name: 'wall_spread_median',
      value: round(spreads.length ? median(spreads) : 0, 3),
      unit: '(max − min) / median wall time of one job under one strategy across repeats; median over pairs',
      peer: null,
      ratio: null,
      goal: null,
    },
    {
      name: 'wall_spread_max',
      value: round(spreads.length ? Math.max(...spreads) : 0, 3),
      unit: 'the largest such spread',
      peer: null,
      ratio: null,
      goal: null,
    },
  ];
  const file = writeResults('spark', 'npm run bench:spark', figures, [
    ...(partial
      ? [
          `PARTIAL: ${measured.filter((r) => r.strategy === 'a-static-peak').length} of ${JOBS.length * REPEATS} (job, repeat) pairs done when this was written`,
        ]
      : []),
    `jobs: ${[...complete].join(', ')}; ${REPEATS} repeat(s) per (job, strategy), each with its own history`,
    'strategy order per (job, repeat) rotates over c→d→a, a→c→d, c→a→d (d always after its own c)',
    `run started ${startedAt}; 1-minute load average at the end of each run: min ${Math.min(...loads).toFixed(1)}, median ${median(loads).toFixed(1)}, max ${Math.max(...loads).toFixed(1)}`,
    "(b) is (c)'s first attempt: the same configuration, run with no history and no retry",
    'spark.task.maxFailures=1 for every strategy, so a failing attempt ends at its first lost task',
    `master ${MASTER}, executor cores 1, driver 512m; static peak size ${peak} (per job the smallest size that succeeded above every size that ran out of memory, in any ladder run so far; the largest over jobs), average size ${AVERAGE}, ladder cap ${CAP}`,
    'GB·h = (driver + executor containers, with Spark default overheads) × attempt wall time; failed attempts count; per job the median over repeats',
    'machine shared with other engineers during the run: wall times carry their load',
  ]);
  writeFileSync(
    path.join(REPO_ROOT, 'bench/results/spark-runs.json'),
    JSON.stringify({ date: new Date().toISOString(), repeats: REPEATS, summaries, rows }, null, 2) + '\n',
  );
  console.log(`wrote ${file}`);
  for (const s of summaries) {
    console.log(
      `${s.job.padEnd(18)} ${s.strategy.padEnd(17)} ${s.succeeded ? 'ok  ' : `FAIL×${s.failedRepeats}`} attempts ${s.attempts} ` +
        `${s.gbHours.toFixed(5)} GB·h wall ${(s.wallMs / 1000).toFixed(1)} s [${(s.wallMinMs / 1000).toFixed(1)}–${(s.wallMaxMs / 1000).toFixed(1)}]`,
    );
  }
  console.log(
    `(d)/(a) GB·h = ${(gbD / gbA).toFixed(3)} (goal ≤ 0.70); wall-normalized ${(normD / normA).toFixed(3)}; ` +
      `paired per repeat ${pairedRatios.map((r) => r.toFixed(3)).join(', ')}; ` +
      `load a ${loadOf('a-static-peak').toFixed(1)} c ${loadOf('c-ladder').toFixed(1)} d ${loadOf('d-ladder-learned').toFixed(1)}; ` +
      `(d) attempts/job = ${attemptsD.toFixed(2)} (goal ≤ 1.2)`,
  );
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
