import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import path from 'node:path';
import pg from 'pg';
import { connectClient } from '../../client/connection.js';
import { startCdcFileMerge, startCdcOnboard, startPipeline, type PipelineName } from '../../client/pipelines.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { REPO_ROOT, sluiceEnv } from '../../lib/config.js';
import {
  createOrdersTable,
  DEMO_CHANGE_TOPIC,
  diffOrders,
  FreshnessTracker,
  readIcebergOrders,
  readSourceOrders,
  runOrdersChangeFileWorkload,
  runOrdersWorkload,
} from '../../lib/stack/demo-workload.js';
import { openWarehouse, type Warehouse } from '../../lib/stack/warehouse.js';
import { runIntentIndexDemo } from '../../lib/stack/demo-intent-index.js';
import { runCollectionsDemo } from '../../lib/stack/demo-collections.js';
import { poolEmbedder } from '../../lib/embedding/index.js';
import { InferencePool } from '../../lib/inference/index.js';
import {
  cdcFileMergeWorkflowId,
  cdcMergeWorkflowId,
  cdcOnboardWorkflowId,
  type CdcFileMergeProgress,
  type CdcMergeProgress,
} from '../../schemas/cdc.js';
import type { ActivityFanOutResult, PoolCheckResult } from '../../schemas/platform.js';
import { PROGRESS_QUERY } from '../../schemas/progress.js';
import type { StackConfig } from '../../schemas/stack-config.js';
import { baseTaskQueue, globals, stackConfig } from '../context.js';
import { startLocalStack, waitForStackWorkers, type LocalStack } from '../local-stack.js';
import { uiWorkflowUrl, watchProgress } from '../progress-view.js';
import { holdUntilSignal } from './up.js';

/** One demo run: a pipeline, its demo input, and how to summarize its result in one line. */
interface DemoRun {
  pipeline: PipelineName;
  input: unknown;
  summarize(result: unknown): string;
}

/** The demo runs every pipeline that exists on demo data; each pipeline issue appends its own run here. */
const DEMO_RUNS: DemoRun[] = [
  {
    pipeline: 'pool-check',
    input: { cpuActivities: 16, gpuSteps: 4, matrixSize: 128 },
    summarize: (r) => {
      const p = r as PoolCheckResult;
      return `${p.cpuActivities} CPU activities (${p.cpuUnits} units); ${p.gpuSteps.length} GPU steps pinned to ${p.gpuHostsUsed.join(', ')}`;
    },
  },
  {
    pipeline: 'activity-fan-out',
    input: { count: 200, mode: 'parallel' },
    summarize: (r) => `${(r as ActivityFanOutResult).completed} no-op activities completed`,
  },
];

/**
 * The CDC run: a live workload on the stack's private PostgreSQL, merged continuously into the warehouse of
 * temporal-dev.yml `defaults` (the one the cpu workers open).
 */
const CDC_DEMO = {
  label: 'cdc (orders)',
  database: 'demo',
  sourceName: 'demo',
  table: 'public.orders',
  icebergTable: 'demo.orders',
  buckets: 16,
  initialRows: 1000,
  changesPerSecond: 200,
  durationMs: 15_000,
  merge: { pollIntervalMs: 500, idleIntervalMs: 2000 },
  progressPollMs: 100,
  onboardTimeoutMs: 120_000,
  catchUpTimeoutMs: 60_000,
} as const;

/** The CDC run from Debezium change files, where no PostgreSQL can be started (or `--cdc-source files`). */
const CDC_FILE_DEMO = {
  label: 'cdc (orders, files)',
  sourceName: 'demo_files',
  icebergTable: 'demo.orders_files',
  buckets: 16,
  initialRows: 1000,
  changesPerSecond: 200,
  filesPerSecond: 2,
  durationMs: 15_000,
  merge: { pollIntervalMs: 250, idleIntervalMs: 1000 },
  progressPollMs: 100,
  catchUpTimeoutMs: 60_000,
} as const;

const NO_COUNTS = { inserts: 0, updates: 0, deletes: 0 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const message = (err: unknown): string =>
  err instanceof WorkflowFailedError && err.cause
    ? `${err.message}: ${err.cause.message}`
    : err instanceof Error
      ? err.message
      : String(err);

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Terminates a still-running workflow of an earlier demo (its source cluster is gone). */
async function terminateIfRunning(client: Client, workflowId: string, say: (line: string) => void): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    if ((await handle.describe()).status.name !== 'RUNNING') return;
  } catch {
    return; // not found
  }
  say(`cdc: terminating ${workflowId} of an earlier demo run (its PostgreSQL is gone)`);
  await handle.terminate('replaced by a new sluice demo run');
}

async function mergeProgress(handle: WorkflowHandle): Promise<CdcMergeProgress | undefined> {
  try {
    return await handle.query<CdcMergeProgress>(PROGRESS_QUERY);
  } catch {
    return undefined; // between runs of a continue-as-new, or no worker yet
  }
}

interface CdcDemoContext {
  client: Client;
  config: StackConfig;
  namespace: string;
  stack: LocalStack;
  say: (line: string) => void;
  keepRunning: boolean;
  /** `--cdc-source files`: the change-file source even where PostgreSQL could run. */
  forceFiles: boolean;
}

/** A summary row for the demo's CDC run, and whether it failed. */
interface DemoRow {
  text: string;
  failed: boolean;
}

/**
 * The embedding part: an `embedding-backfill` run builds the Text-to-SQL-style intent index (past query summaries
 * plus table governance metadata) on the stack's GPU worker, publishes `intents@current`, and searches it with a
 * tier filter (lib/stack/demo-intent-index.ts).
 */
async function runIntentDemo(client: Client, config: StackConfig, say: (line: string) => void): Promise<DemoRow> {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  let warehouse: Warehouse | undefined;
  const pool = new InferencePool({ provider: 'cpu' });
  try {
    warehouse = await openWarehouse(config.defaults, { baseDir: REPO_ROOT, s3: sluiceEnv.s3 });
    const hits = await withTimeout(
      runIntentIndexDemo({
        client,
        taskQueue: baseTaskQueue(config),
        catalog: warehouse.catalog,
        io: warehouse.io,
        embedder: poolEmbedder(pool),
        indexRoot: `${warehouse.warehouse.replace(/\/+$/, '')}/indexes`,
        print: (line) => say(`intent index: ${line}`),
      }),
      300_000,
      'the intent-index backfill',
    );
    const top = hits[0];
    return {
      text:
        `  ✓ ${'embedding-backfill'.padEnd(18)} ${seconds()} s  index intents@current: ${hits.length} gold-tier hits` +
        (top ? `, best ${top.score.toFixed(3)} on ${String(top.metadata.table_name)}` : ''),
      failed: false,
    };
  } catch (err) {
    say(`intent index failed: ${err instanceof Error ? err.message : String(err)}`);
    return { text: `  ✗ ${'embedding-backfill'.padEnd(18)} ${seconds()} s  ${String(err)}`, failed: true };
  } finally {
    await Promise.allSettled([pool.close(), warehouse?.close()]);
  }
}

/**
 * The collections part: a `collections-build` run over a synthetic catalog (zero-shot dual-encoder extractor unless
 * SLUICE_VLM_URL is set), approved at its human checkpoint by the demo, gated on P@10/R@10, then published
 * (lib/stack/demo-collections.ts).
 */
async function runCollectionsDemoRow(
  client: Client,
  config: StackConfig,
  say: (line: string) => void,
): Promise<DemoRow> {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  let warehouse: Warehouse | undefined;
  try {
    warehouse = await openWarehouse(config.defaults, { baseDir: REPO_ROOT, s3: sluiceEnv.s3 });
    const { summary } = await withTimeout(
      runCollectionsDemo({
        client,
        taskQueue: baseTaskQueue(config),
        catalog: warehouse.catalog,
        io: warehouse.io,
        warehouse: warehouse.warehouse,
        print: (line) => say(`collections: ${line}`),
      }),
      600_000,
      'the collections build',
    );
    const p = summary.published!;
    const ev = p.evaluation;
    return {
      text:
        `  ✓ ${'collections-build'.padEnd(18)} ${seconds()} s  ${p.collections} collections over ${summary.catalogItems} items` +
        (ev ? `, P@10 ${ev.precisionAt10.toFixed(3)}, R@10 ${ev.recallAt10.toFixed(3)}` : '') +
        `, extractor ${summary.extractor}, VLM calls ${summary.vlm.calls}`,
      failed: false,
    };
  } catch (err) {
    say(`collections failed: ${err instanceof Error ? err.message : String(err)}`);
    return { text: `  ✗ ${'collections-build'.padEnd(18)} ${seconds()} s  ${String(err)}`, failed: true };
  } finally {
    await warehouse?.close();
  }
}

function row(mark: string, label: string, seconds: string, text: string): string {
  return `  ${mark} ${label.padEnd(18)} ${seconds.padStart(6)} s  ${text}`;
}

/**
 * Onboards `orders` from the stack's PostgreSQL, runs the workload while the merge runs, measures freshness from
 * the merge's watermark, then compares the Iceberg table with the source. The merge keeps running; a stack stop
 * cancels it before the workers stop.
 */
async function runCdcDemo(ctx: CdcDemoContext): Promise<DemoRow> {
  const { client, config, namespace, stack, say } = ctx;
  const d = CDC_DEMO;
  if (!stack.postgres) {
    const reason = ctx.forceFiles
      ? '--cdc-source files'
      : `no PostgreSQL could be started: ${(stack.postgresError ?? 'unknown reason').split('\n')[0]!.slice(0, 300)}`;
    say(`cdc: using the Debezium change-file source instead of PostgreSQL (${reason})`);
    return runCdcFileDemo(ctx, reason);
  }
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  const mergeId = cdcMergeWorkflowId(d.sourceName);
  const link = uiWorkflowUrl(config, namespace, mergeId) ?? mergeId;
  const connectionString = stack.postgres.url(d.database);
  const admin = new pg.Client({ connectionString: stack.postgres.url() });
  const db = new pg.Client({ connectionString });
  let warehouse: Warehouse | undefined;
  let polling = true;
  let poller: Promise<void> = Promise.resolve();
  try {
    // The catalog and warehouse the cpu workers open (temporal-dev.yml defaults, relative to the repository root).
    warehouse = await openWarehouse(config.defaults, { baseDir: REPO_ROOT, s3: sluiceEnv.s3 });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${d.database}`);
    await db.connect();
    await createOrdersTable(db, d.initialRows);

    // A fresh cluster each run: a merge or Iceberg table left by an earlier run belongs to a source that is gone.
    await terminateIfRunning(client, mergeId, say);
    await terminateIfRunning(client, cdcOnboardWorkflowId(d.sourceName, d.table), say);
    if (await warehouse.catalog.tableExists(d.icebergTable)) {
      say(`cdc: dropping ${d.icebergTable} of an earlier demo run`);
      await warehouse.catalog.dropTable(d.icebergTable, { purge: true });
    }

    say(`cdc: onboarding ${d.table} (${d.initialRows} rows) into ${d.icebergTable}`);
    const onboard = await startCdcOnboard(
      client,
      {
        source: { connectionString },
        sourceName: d.sourceName,
        table: d.table,
        icebergTable: d.icebergTable,
        buckets: d.buckets,
        merge: { ...d.merge },
      },
      { taskQueue: baseTaskQueue(config) },
    );
    say(`cdc-onboard: ${onboard.workflowId}`);
    const onboarded = await withTimeout(onboard.result(), d.onboardTimeoutMs, 'cdc-onboard');
    const merge = client.workflow.getHandle(onboarded.mergeWorkflowId ?? mergeId);
    stack.beforeStop(async () => {
      say(`cdc: cancelling ${merge.workflowId} (the batch in flight finishes first)`);
      await merge.cancel();
      await withTimeout(
        merge.result().then(
          () => undefined,
          () => undefined, // ends as cancelled
        ),
        30_000,
        `cancelling ${merge.workflowId}`,
      );
      say(`cdc: ${merge.workflowId} cancelled`);
    });
    say(`cdc: copied ${onboarded.onboard.rowsCopied} rows; ${merge.workflowId} merges continuously`);

    // Freshness: poll the merge's watermark (confirmedLsn: everything before it is committed to Iceberg).
    const tracker = new FreshnessTracker();
    poller = (async () => {
      while (polling) {
        const p = await mergeProgress(merge);
        if (p?.confirmedLsn) tracker.observed(parseLsn(p.confirmedLsn), Date.now());
        await sleep(d.progressPollMs);
      }
    })();

    say(`cdc: running the workload on orders for ${d.durationMs / 1000} s at ~${d.changesPerSecond} changes/s`);
    const workload = await runOrdersWorkload(db, {
      changesPerSecond: d.changesPerSecond,
      durationMs: d.durationMs,
      onCommit: (tx) => tracker.committed(tx),
    });
    const rate = Math.round(workload.changes / (workload.elapsedMs / 1000));
    say(
      `cdc: ${workload.changes} changes (${workload.inserts} inserts, ${workload.updates} updates, ` +
        `${workload.deletes} deletes) in ${workload.transactions.length} transactions; waiting for the merge`,
    );
    const deadline = Date.now() + d.catchUpTimeoutMs;
    while (tracker.waiting > 0 && Date.now() < deadline) await sleep(d.progressPollMs);
    polling = false;
    await poller;
    if (tracker.waiting > 0) {
      const p = await mergeProgress(merge);
      return {
        failed: true,
        text:
          row('✗', d.label, seconds(), `the merge did not catch up within ${d.catchUpTimeoutMs / 1000} s`) +
          `: ${tracker.waiting} transactions not in Iceberg (merge phase ${p?.phase ?? '?'}, ` +
          `watermark ${p?.confirmedLsn ?? 'none'})\n      ${link}`,
      };
    }
    const stats = tracker.stats()!;
    const freshness = `freshness p50 ${stats.p50.toFixed(2)} s, p95 ${stats.p95.toFixed(2)} s, max ${stats.max.toFixed(2)} s`;

    const source = await readSourceOrders(db);
    const table = await warehouse.catalog.loadTable(d.icebergTable);
    const iceberg = await readIcebergOrders(warehouse.io, table.metadata);
    const diffs = diffOrders(source, iceberg);
    const measured = `${workload.changes} changes in ${workload.transactions.length} transactions at ${rate}/s; ${freshness}`;
    const note =
      `      freshness: source commit → committed to Iceberg, measured by the merge's watermark ` +
      `(confirmedLsn, polled every ${d.progressPollMs} ms; the merge polls the slot every ${d.merge.pollIntervalMs} ms)`;
    if (diffs.length > 0) {
      return {
        failed: true,
        text:
          row(
            '✗',
            d.label,
            seconds(),
            `${measured}; Iceberg differs from the source (${iceberg.length} rows in Iceberg, ${source.length} in the source):`,
          ) +
          diffs.map((line) => `\n        ${line}`).join('') +
          `\n${note}\n      ${link}`,
      };
    }
    const after = ctx.keepRunning
      ? `\n      source: ${connectionString} (${merge.workflowId} keeps merging your changes while the stack is up)`
      : '';
    return {
      failed: false,
      text:
        row('✓', d.label, seconds(), `${measured}; Iceberg matches the source (${source.length} rows)`) +
        `\n${note}${after}\n      ${link}`,
    };
  } catch (err) {
    say(`cdc: failed: ${message(err)}`);
    return { failed: true, text: row('✗', d.label, seconds(), message(err).split('\n')[0]!) + `\n      ${link}` };
  } finally {
    polling = false;
    await poller.catch(() => undefined);
    await Promise.allSettled([db.end(), admin.end(), warehouse?.close()]);
  }
}

/**
 * The CDC run without PostgreSQL: the same orders workload written as Debezium change files (the Kafka Connect
 * sink's layout) under the state directory, merged continuously by `cdc-file-merge` into the warehouse. Freshness is
 * from a file being stored to the merge's committed high-water mark covering it.
 */
async function runCdcFileDemo(ctx: CdcDemoContext, reason: string): Promise<DemoRow> {
  const { client, config, namespace, stack, say } = ctx;
  const d = CDC_FILE_DEMO;
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  const mergeId = cdcFileMergeWorkflowId(d.sourceName);
  const link = uiWorkflowUrl(config, namespace, mergeId) ?? mergeId;
  const prefix = `file://${path.join(sluiceEnv.stateDir, 'demo-cdc-files', String(started))}/`;
  let warehouse: Warehouse | undefined;
  let polling = true;
  let poller: Promise<void> = Promise.resolve();
  try {
    warehouse = await openWarehouse(config.defaults, { baseDir: REPO_ROOT, s3: sluiceEnv.s3 });
    await terminateIfRunning(client, mergeId, say);
    if (await warehouse.catalog.tableExists(d.icebergTable)) {
      say(`cdc: dropping ${d.icebergTable} of an earlier demo run`);
      await warehouse.catalog.dropTable(d.icebergTable, { purge: true });
    }
    const tracker = new FreshnessTracker();
    const io = warehouse.io;
    say(`cdc: writing Debezium change files of orders under ${prefix}`);
    // The snapshot file first: the merge creates the table from its Connect schema.
    const workload = runOrdersChangeFileWorkload(io, prefix, {
      initialRows: d.initialRows,
      changesPerSecond: d.changesPerSecond,
      filesPerSecond: d.filesPerSecond,
      durationMs: d.durationMs,
      onFile: (file) => tracker.committed({ committedAtMs: file.writtenAtMs, lsn: file.offset, ...NO_COUNTS }),
    });
    while (tracker.waiting === 0) await sleep(20);
    const handle = await startCdcFileMerge(
      client,
      {
        files: { prefix },
        sourceName: d.sourceName,
        table: 'public.orders',
        icebergTable: d.icebergTable,
        key: ['id'],
        buckets: d.buckets,
        ...d.merge,
      },
      { taskQueue: baseTaskQueue(config) },
    );
    say(`cdc-file-merge: ${handle.workflowId}`);
    stack.beforeStop(async () => {
      say(`cdc: cancelling ${handle.workflowId} (the batch in flight finishes first)`);
      await handle.cancel();
      await withTimeout(
        handle.result().then(
          () => undefined,
          () => undefined,
        ),
        30_000,
        `cancelling ${handle.workflowId}`,
      );
      say(`cdc: ${handle.workflowId} cancelled`);
    });
    poller = (async () => {
      while (polling) {
        try {
          const p = await handle.query<CdcFileMergeProgress>(PROGRESS_QUERY);
          const mark = p.watermark?.[`${DEMO_CHANGE_TOPIC}+0`];
          if (mark !== undefined) tracker.observed(BigInt(mark), Date.now());
        } catch {
          // between runs of a continue-as-new, or no worker yet
        }
        await sleep(d.progressPollMs);
      }
    })();
    const result = await workload;
    const rate = Math.round(result.changes / (result.elapsedMs / 1000));
    say(
      `cdc: ${result.changes} changes (${result.inserts} inserts, ${result.updates} updates, ${result.deletes} ` +
        `deletes) in ${result.files.length} files; waiting for the merge`,
    );
    const deadline = Date.now() + d.catchUpTimeoutMs;
    while (tracker.waiting > 0 && Date.now() < deadline) await sleep(d.progressPollMs);
    polling = false;
    await poller;
    if (tracker.waiting > 0) {
      return {
        failed: true,
        text:
          row('✗', d.label, seconds(), `the merge did not catch up within ${d.catchUpTimeoutMs / 1000} s`) +
          `: ${tracker.waiting} files not in Iceberg\n      ${link}`,
      };
    }
    const stats = tracker.stats()!;
    const freshness = `freshness p50 ${stats.p50.toFixed(2)} s, p95 ${stats.p95.toFixed(2)} s, max ${stats.max.toFixed(2)} s`;
    const table = await warehouse.catalog.loadTable(d.icebergTable);
    const iceberg = await readIcebergOrders(warehouse.io, table.metadata);
    const diffs = diffOrders(result.expected, iceberg);
    const measured = `${result.changes} changes in ${result.files.length} Debezium change files at ${rate}/s; ${freshness}`;
    const note =
      `      source: Debezium change files, not PostgreSQL (${reason}); freshness: file stored → covered by the ` +
      `merge's committed high-water mark (polled every ${d.progressPollMs} ms)`;
    if (diffs.length > 0) {
      return {
        failed: true,
        text:
          row('✗', d.label, seconds(), `${measured}; Iceberg differs from the change files:`) +
          diffs.map((line) => `\n        ${line}`).join('') +
          `\n${note}\n      ${link}`,
      };
    }
    return {
      failed: false,
      text:
        row('✓', d.label, seconds(), `${measured}; Iceberg matches the change files (${iceberg.length} rows)`) +
        `\n${note}\n      ${link}`,
    };
  } catch (err) {
    say(`cdc: failed: ${message(err)}`);
    return { failed: true, text: row('✗', d.label, seconds(), message(err).split('\n')[0]!) + `\n      ${link}` };
  } finally {
    polling = false;
    await poller.catch(() => undefined);
    await warehouse?.close();
  }
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('bring the local stack up, run every pipeline on demo data, print a summary with UI links')
    .option('--exit', 'stop the stack when the runs are done (default: keep it up until Ctrl-C)')
    .option(
      '--cdc-source <source>',
      'CDC source: "auto" (PostgreSQL, or Debezium change files when none can be started) or "files"',
      'auto',
    )
    .action(async (opts: { exit?: boolean; cdcSource: string }, cmd: Command) => {
      if (opts.cdcSource !== 'auto' && opts.cdcSource !== 'files') {
        throw new Error(`--cdc-source must be "auto" or "files", not "${opts.cdcSource}"`);
      }
      const forceFiles = opts.cdcSource === 'files';
      const g = globals(cmd);
      const configPath = g.config ?? sluiceEnv.configPath;
      const config = stackConfig(g);
      const say = (line: string) => console.log(`sluice demo: ${line}`);
      const stack = await startLocalStack(config, { configPath, say, postgres: !forceFiles });
      let connected: Awaited<ReturnType<typeof connectClient>>;
      try {
        connected = await connectClient({ address: stack.server.address, namespace: config.server.namespace });
      } catch (err) {
        await stack.stop();
        throw err;
      }
      const { client, connection, namespace } = connected;
      // Runs last among the stop hooks: the CDC run's hook still needs the connection to cancel its merge.
      stack.beforeStop(() => connection.close());
      const rows: string[] = [];
      let failed = 0;
      try {
        await waitForStackWorkers(stack, client, config);
        say('workers are polling; running the pipelines');
        for (const run of DEMO_RUNS) {
          const started = Date.now();
          const handle = await startPipeline(client, run.pipeline, run.input, { taskQueue: baseTaskQueue(config) });
          say(`${run.pipeline}: ${handle.workflowId}`);
          const status = await watchProgress(handle);
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          const link = uiWorkflowUrl(config, namespace, handle.workflowId) ?? handle.workflowId;
          if (status === 'COMPLETED') {
            rows.push(
              `  ✓ ${run.pipeline.padEnd(18)} ${seconds.padStart(6)} s  ${run.summarize(await handle.result())}\n      ${link}`,
            );
          } else {
            failed += 1;
            rows.push(`  ✗ ${run.pipeline.padEnd(18)} ${seconds.padStart(6)} s  ${status}\n      ${link}`);
          }
        }
        const cdc = await runCdcDemo({ client, config, namespace, stack, say, keepRunning: !opts.exit, forceFiles });
        rows.push(cdc.text);
        if (cdc.failed) failed += 1;
        const intent = await runIntentDemo(client, config, say);
        rows.push(intent.text);
        if (intent.failed) failed += 1;
        const collections = await runCollectionsDemoRow(client, config, say);
        rows.push(collections.text);
        if (collections.failed) failed += 1;
      } catch (err) {
        await stack.stop();
        throw err;
      }
      console.log('\nSluice demo summary');
      console.log(rows.join('\n'));
      if (stack.server.uiUrl) console.log(`\nTemporal UI: ${stack.server.uiUrl}`);
      for (const url of stack.metricsUrls) console.log(`metrics:     ${url}`);
      if (opts.exit) {
        await stack.stop();
      } else {
        say('the stack stays up; Ctrl-C stops it (or pass --exit)');
        await holdUntilSignal(stack, say);
      }
      if (failed > 0) process.exitCode = 1;
    });
}
