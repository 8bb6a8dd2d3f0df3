import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { startSparkJob } from '../../client/pipelines.js';
import { sluiceEnv } from '../../lib/config.js';
import { SparkHistoryStore, type StoredSparkRun } from '../../lib/spark/history.js';
import { recommendSizing } from '../../lib/spark/sizing.js';
import { templateHash } from '../../lib/spark/template.js';
import { SparkJobSpec, type SparkAttemptRecord, type SparkJobResult } from '../../schemas/spark.js';
import { parseOrThrow } from '../../schemas/validation.js';
import { baseTaskQueue, clientFor, globals, stackConfig } from '../context.js';
import { uiWorkflowUrl, watchProgress } from '../progress-view.js';

/** Reads a job spec file (JSON or YAML) and validates it; errors name each bad field. */
export function readSparkSpec(file: string): SparkJobSpec {
  const text = readFileSync(file, 'utf8');
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new Error(
      `spec file ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
    );
  }
  return parseOrThrow(SparkJobSpec, raw, `Spark job spec ${file}`);
}

function attemptLine(a: SparkAttemptRecord): string {
  const r = a.resources;
  const what = a.outcome === 'failed' ? `${a.failureKind}` : a.outcome;
  const peak =
    a.peaks.peakJVMHeapMemory === undefined ? '' : `, peak heap ${Math.round(a.peaks.peakJVMHeapMemory / 2 ** 20)} MiB`;
  return (
    `    #${a.attempt} ${what.padEnd(22)} exec ${r.executorMemory} ×${r.executorInstances} (${r.executorCores} cores, ` +
    `task.cpus ${r.taskCpus}), driver ${r.driverMemory}  ${(a.wallMs / 1000).toFixed(1)} s, ` +
    `${a.cost.gbHours.toFixed(5)} GB·h${peak}  [${a.step}]`
  );
}

/** The `sluice spark sizing` report: each run with its attempts, then the recommendation. */
export function formatSizingReport(
  jobName: string,
  runs: readonly StoredSparkRun[],
  recommendation: ReturnType<typeof recommendSizing> | undefined,
): string {
  const lines = [`Spark job ${jobName}: ${runs.length} run(s) in the history`];
  for (const run of runs) {
    lines.push(
      `  ${run.startedAt}  ${run.outcome.padEnd(9)} ${run.attempts.length} attempt(s)  ` +
        `${run.gbHours.toFixed(5)} GB·h (${run.wastedGbHours.toFixed(5)} wasted), ${run.vcoreHours.toFixed(5)} vcore·h  template ${run.templateHash}`,
    );
    for (const a of run.attempts) lines.push(attemptLine(a));
  }
  if (recommendation) {
    const r = recommendation.resources;
    lines.push(
      `recommendation (${recommendation.source}, from ${recommendation.basedOnRuns} successful run(s)): executor ${r.executorMemory} ` +
        `×${r.executorInstances} (${r.executorCores} cores, task.cpus ${r.taskCpus}), driver ${r.driverMemory}` +
        (r.executorMemoryOverhead ? `, overhead ${r.executorMemoryOverhead}` : '') +
        (r.shufflePartitions ? `, ${r.shufflePartitions} shuffle partitions` : ''),
      `  why: ${recommendation.reason}`,
    );
  }
  return lines.join('\n');
}

function printResult(result: SparkJobResult): void {
  console.log(
    `${result.jobName}: ${result.outcome} after ${result.attempts.length} attempt(s); sizing ${result.sizing.source}`,
  );
  for (const a of result.attempts) console.log(attemptLine(a));
  const { total, wasted } = result.cost;
  console.log(
    `  total ${total.gbHours.toFixed(5)} GB·h, ${total.vcoreHours.toFixed(5)} vcore·h; wasted on failed attempts ` +
      `${wasted.gbHours.toFixed(5)} GB·h, ${wasted.vcoreHours.toFixed(5)} vcore·h`,
  );
}

export function registerSpark(program: Command): void {
  const spark = program.command('spark').description('Spark jobs with elastic executor retry (docs/spark.md)');

  spark
    .command('submit')
    .description('run a Spark job spec (JSON or YAML) as a spark-job workflow')
    .argument('<spec>', 'job spec file')
    .option('--id <workflowId>', 'workflow id (default: spark/<name>)')
    .option('--wait', 'show progress and print each attempt when it ends')
    .action(async (file: string, opts: { id?: string; wait?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const spec = readSparkSpec(file);
      const { client, connection, namespace } = await clientFor(g, config);
      try {
        const handle = await startSparkJob(client, { spec }, { workflowId: opts.id, taskQueue: baseTaskQueue(config) });
        console.log(`started spark-job ${spec.name}: ${handle.workflowId} (run ${handle.firstExecutionRunId})`);
        const url = uiWorkflowUrl(config, namespace, handle.workflowId);
        if (url) console.log(`  ${url}`);
        if (opts.wait) {
          await watchProgress(handle);
          printResult(await handle.result());
        }
      } finally {
        await connection.close();
      }
    });

  spark
    .command('sizing')
    .description("show a job's attempts history and the size its next run starts from")
    .argument('<job>', 'job name')
    .option('--spec <file>', "recommend for this spec's request and caps (default: the last run's request)")
    .option('--history-url <url>', 'PostgreSQL of the history (default: SLUICE_SPARK_HISTORY_URL)')
    .option('--limit <n>', 'runs to show', '10')
    .option('--json', 'print JSON')
    .action(async (job: string, opts: { spec?: string; historyUrl?: string; limit: string; json?: boolean }) => {
      const url = opts.historyUrl ?? sluiceEnv.spark.historyUrl;
      if (!url) throw new Error('no Spark history database: pass --history-url or set SLUICE_SPARK_HISTORY_URL');
      const store = SparkHistoryStore.connect(url);
      try {
        const spec = opts.spec ? readSparkSpec(opts.spec) : undefined;
        if (spec && spec.name !== job) throw new Error(`--spec is for job "${spec.name}", not "${job}"`);
        const hash = spec ? templateHash(spec) : await store.latestTemplateHash(job);
        const runs = hash ? await store.recentRuns(job, hash, Number(opts.limit)) : [];
        const request = spec?.resources ?? runs[0]?.requested;
        const recommendation = request ? recommendSizing(request, spec?.caps ?? {}, runs) : undefined;
        if (opts.json) console.log(JSON.stringify({ job, templateHash: hash, runs, recommendation }, null, 2));
        else console.log(formatSizingReport(job, runs, recommendation));
      } finally {
        await store.close();
      }
    });
}
