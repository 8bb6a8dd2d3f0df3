/**
 * The CDC benchmark (issue 4), on a private PostgreSQL 15 cluster, a Temporal dev server (in memory) and one
 * `sluice worker --pool cpu` process, with a SQLite catalog and a file:// warehouse in a temp dir:
 *   1. freshness: a 1M-row `orders` table, a workload of mixed inserts, updates and deletes at 1,000 changes/s for
 *      10 minutes, and a marker row committed every second; a pyiceberg probe (bench/cdc/probe.py) polls the table
 *      for the markers. p50/p95/p99 from source commit to visible to pyiceberg; ratios against the reference
 *      system's 15-minute MERGE INTO cadence and the Kafka Connect Iceberg sink's 5-minute commits.
 *   2. catch-up: a backlog of 1M changes on a second 1M-row table, merged from a standing start: changes/s.
 *   3. table health after run 1: data and delete files per bucket, full-scan time versus the same table compacted,
 *      timed with pyiceberg, DuckDB and Spark (`--scan-engines pyiceberg,duckdb,spark`, the default; probe.py scan).
 *   4. retained WAL of the slot, sampled through run 1: max and trend.
 *   During run 1 `cdc-table-maintenance` runs every `--maintenance-every` minutes (default 3; 0 for none; fractions
 *   allowed) beside the running merge: the compaction carries the merge's concurrent deletes over to its new files
 *   (lib/iceberg/maintenance/compact.ts), so nothing pauses. `--pause-merge 1` restores the old procedure (pause the
 *   merge, compact, resume once the compaction has committed) for comparison; `--maintenance-worker 1` runs it on a
 *   second worker process of its own task queue. The merge polls every `--poll-ms` (default 100) while there is work.
 * Run: `npm run bench:cdc` (`-- --minutes 2` for a shorter run 1; `--rows`, `--rate`, `--backlog`; `freshness` or
 * `catchup` alone; `--batch N` for the catch-up merge's batch bound, default 100000). Writes bench/results/cdc.json.
 */
import { readFileSync, readdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { startCdcMerge, startCdcOnboard, startCdcTableMaintenance } from '../../client/pipelines.js';
import { devServerSearchAttributes } from '../../cli/local-stack.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { REPO_ROOT } from '../../lib/config.js';
import { compactTable } from '../../lib/iceberg/maintenance/compact.js';
import { planFiles } from '../../lib/iceberg/scan.js';
import { createOrdersTable, runOrdersWorkload } from '../../lib/stack/demo-workload.js';
import { startProcess, type ManagedProcess } from '../../lib/stack/managed-process.js';
import { startPostgresCluster, type PostgresCluster } from '../../lib/stack/postgres-cluster.js';
import { startTemporalDevServer } from '../../lib/stack/temporal-server.js';
import { openWarehouse, type Warehouse } from '../../lib/stack/warehouse.js';
import { CDC_MERGE_SIGNALS, cdcMergeWorkflowId, type CdcMergeProgress } from '../../schemas/cdc.js';
import { PROGRESS_QUERY } from '../../schemas/progress.js';
import { StackConfig } from '../../schemas/stack-config.js';
import { writeWorkflowBundle } from '../../workers/workflow-bundle.js';
import { median, quantile, writeResults, type Figure } from '../lib/results.js';
import { writeOrdersBacklog } from './backlog.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const mode = argv.find((a) => a === 'freshness' || a === 'catchup') ?? 'all';
const MINUTES = flag('minutes', 10);
const ROWS = flag('rows', 1_000_000);
const RATE = flag('rate', 1000);
const BACKLOG = flag('backlog', 1_000_000);
/** The catch-up merge's batch bound (`maxChangesPerBatch`). */
const CATCHUP_BATCH = flag('batch', 100_000);
/** Minutes between maintenance runs during the freshness run (0: none, as in runs A–D). */
const MAINTENANCE_EVERY_MIN = flag('maintenance-every', 3);
/** 1: pause the merge while the compaction runs (the procedure before compactions rebased concurrent deletes). */
const PAUSE_MERGE = flag('pause-merge', 0) === 1;
/**
 * `--maintenance-worker 1`: `cdc-table-maintenance` runs on its own task queue, served by a second
 * `sluice worker --pool cpu` process, as a deployment would run it (the compaction's Parquet encoding then never
 * holds the merge's event loop); 0 (default): one worker serves both.
 */
const MAINTENANCE_WORKER = flag('maintenance-worker', 0) === 1;
const ALL_SCAN_ENGINES = ['pyiceberg', 'duckdb', 'spark'] as const;
type ScanEngine = (typeof ALL_SCAN_ENGINES)[number];
/**
 * `--scan-engines pyiceberg,duckdb,spark` (default all three): the engines that time the table-health full scans,
 * each before and after the compaction (bench/cdc/probe.py scan --engine).
 */
const SCAN_ENGINES: ScanEngine[] = (() => {
  const i = argv.indexOf('--scan-engines');
  const list = i >= 0 ? (argv[i + 1] ?? '').split(',').filter(Boolean) : [...ALL_SCAN_ENGINES];
  for (const e of list) {
    if (!(ALL_SCAN_ENGINES as readonly string[]).includes(e)) {
      throw new Error(`--scan-engines: unknown engine ${e} (known: ${ALL_SCAN_ENGINES.join(', ')})`);
    }
  }
  if (list.length === 0) throw new Error('--scan-engines needs at least one engine');
  return list as ScanEngine[];
})();
/** `--scan-repeats N` (default 5): timed full scans per engine and table state; the figure is their median. */
const SCAN_REPEATS = flag('scan-repeats', 5);
/** The continuous merge's poll interval while there is work (ms). */
const POLL_MS = flag('poll-ms', 100);
const PYTHON = path.join(REPO_ROOT, '.tools/venv/bin/python');
const REFERENCE_S = 15 * 60;
const KAFKA_CONNECT_S = 5 * 60;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => console.log(`bench:cdc ${new Date().toISOString().slice(11, 19)} ${line}`);
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

interface Stack {
  dir: string;
  postgres: PostgresCluster;
  client: Client;
  warehouse: Warehouse;
  worker: ManagedProcess;
  catalogFile: string;
  taskQueue: string;
  /** Where `cdc-table-maintenance` runs: `taskQueue`, or a second worker's queue (`--maintenance-worker 1`). */
  maintenanceTaskQueue: string;
  close(): Promise<void>;
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds used so far by a PostgreSQL cluster: the postmaster, its exited children and its live ones. */
function postgresCpuSeconds(postgres: PostgresCluster): number {
  const postmaster = Number(readFileSync(path.join(postgres.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const stat = (pid: string) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const own = stat(String(postmaster));
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = stat(entry);
      if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100;
}

async function startStack(): Promise<Stack> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-cdc-'));
  const [postgres, server, bundle] = await Promise.all([
    startPostgresCluster({ settings: { max_wal_size: '4GB', shared_buffers: '256MB' } }),
    startTemporalDevServer({ logDir: dir, searchAttributes: devServerSearchAttributes(StackConfig.parse({})) }),
    writeWorkflowBundle(path.join(dir, 'bundle.cjs')),
  ]);
  const catalogFile = path.join(dir, 'catalog.db');
  const configPath = path.join(dir, 'stack.yml');
  writeFileSync(
    configPath,
    `defaults:\n  warehouse: file://${dir}/wh\n  catalogName: bench_cdc\n  catalog:\n    type: sqlite\n    path: ${catalogFile}\n`,
  );
  const taskQueue = 'bench-cdc';
  const startWorker = (name: string, queue: string) =>
    startProcess(
      name,
      process.execPath,
      [path.join(REPO_ROOT, 'bin/sluice.js'), 'worker', '--pool', 'cpu', '--metrics-port', 'off'],
      {
        logDir: dir,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: server.address,
          TEMPORAL_NAMESPACE: 'default',
          SLUICE_CONFIG: configPath,
          SLUICE_TASK_QUEUE: queue,
          SLUICE_WORKFLOW_BUNDLE: bundle,
          SLUICE_LOG_LEVEL: 'warn',
        },
      },
    );
  const worker = startWorker('worker', taskQueue);
  const maintenanceTaskQueue = MAINTENANCE_WORKER ? `${taskQueue}-maintenance` : taskQueue;
  const maintenanceWorker = MAINTENANCE_WORKER ? startWorker('maintenance-worker', maintenanceTaskQueue) : undefined;
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  const warehouse = await openWarehouse({
    warehouse: `file://${dir}/wh`,
    catalogName: 'bench_cdc',
    catalog: { type: 'sqlite', path: catalogFile },
  });
  return {
    dir,
    postgres,
    client,
    warehouse,
    worker,
    catalogFile,
    taskQueue,
    maintenanceTaskQueue,
    async close() {
      await Promise.all([worker.stop(5000), maintenanceWorker?.stop(5000)]);
      await connection.close();
      await warehouse.close();
      await Promise.allSettled([server.stop(), postgres.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function createDatabase(stack: Stack, name: string): Promise<pg.Client> {
  const admin = new pg.Client({ connectionString: stack.postgres.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const db = new pg.Client({ connectionString: stack.postgres.url(name) });
  await db.connect();
  return db;
}

function currentSnapshotId(table: { metadata: { currentSnapshotId: bigint | null } }): bigint | null {
  return table.metadata.currentSnapshotId;
}

async function currentLsn(db: pg.ClientBase): Promise<bigint> {
  return parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
}

async function slotState(db: pg.ClientBase, slot: string): Promise<{ confirmed: bigint; retained: number }> {
  const r = await db.query<{ confirmed: string | null; retained: string | null }>(
    `SELECT confirmed_flush_lsn::text AS confirmed, (pg_current_wal_lsn() - restart_lsn)::text AS retained
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = r.rows[0];
  return { confirmed: row?.confirmed ? parseLsn(row.confirmed) : 0n, retained: Number(row?.retained ?? 0) };
}

async function onboard(stack: Stack, database: string, sourceName: string, startMerge: boolean, merge: object) {
  const started = Date.now();
  const handle = await startCdcOnboard(
    stack.client,
    {
      source: { connectionString: stack.postgres.url(database) },
      sourceName,
      table: 'public.orders',
      buckets: 16,
      startMerge,
      merge,
    },
    { taskQueue: stack.taskQueue },
  );
  const result = await handle.result();
  return { result, seconds: (Date.now() - started) / 1000 };
}

/** Runs `probe.py` and calls `onMarkers` for each poll that saw new markers. */
function startProbe(stack: Stack, table: string, onLine: (line: Record<string, unknown>) => void) {
  const child = spawn(
    PYTHON,
    [
      path.join(REPO_ROOT, 'bench/cdc/probe.py'),
      'probe',
      '--catalog',
      stack.catalogFile,
      '--catalog-name',
      'bench_cdc',
      '--warehouse',
      stack.warehouse.warehouse,
      '--table',
      table,
      '--interval-ms',
      '250',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  createInterface({ input: child.stdout }).on('line', (line) => onLine(JSON.parse(line) as Record<string, unknown>));
  return child;
}

interface ScanTiming {
  engine: ScanEngine;
  ms: number[];
  rows: number;
}

/** Times full scans of the table with one engine (probe.py scan): one untimed warm-up, then `repeats` timed. */
async function pyScan(stack: Stack, table: string, engine: ScanEngine, repeats = SCAN_REPEATS): Promise<ScanTiming> {
  const child = spawn(
    PYTHON,
    [
      path.join(REPO_ROOT, 'bench/cdc/probe.py'),
      'scan',
      '--engine',
      engine,
      '--catalog',
      stack.catalogFile,
      '--catalog-name',
      'bench_cdc',
      '--warehouse',
      stack.warehouse.warehouse,
      '--table',
      table,
      '--repeats',
      String(repeats),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`probe.py scan --engine ${engine} exited with ${code}: ${out.slice(-500)}`);
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as ScanTiming;
  log(`scan ${engine}: ${result.ms.join(', ')} ms, ${result.rows} rows`);
  return result;
}

/** Live data and delete files per bucket of the table's current snapshot. */
async function filesPerBucket(stack: Stack, table: string) {
  const { metadata } = await stack.warehouse.catalog.loadTable(table);
  const tasks = await planFiles(stack.warehouse.io, metadata);
  const buckets = new Map<string, { data: number; deletes: Set<string>; rows: bigint }>();
  // Rows in data files with at least one position delete applied: what a reader must filter record by record.
  let rows = 0;
  let rowsInFilesWithDeletes = 0;
  for (const task of tasks) {
    rows += Number(task.dataFile.recordCount);
    if (task.positionDeletes.length > 0) rowsInFilesWithDeletes += Number(task.dataFile.recordCount);
    const key = String(task.dataFile.partition[0]);
    const b = buckets.get(key) ?? { data: 0, deletes: new Set<string>(), rows: 0n };
    b.data += 1;
    b.rows += task.dataFile.recordCount;
    for (const d of task.positionDeletes) b.deletes.add(d.filePath);
    buckets.set(key, b);
  }
  const data = [...buckets.values()].map((b) => b.data);
  const deletes = [...buckets.values()].map((b) => b.deletes.size);
  return {
    buckets: buckets.size,
    dataFilesMedian: median(data),
    dataFilesMax: Math.max(...data),
    deleteFilesMedian: median(deletes),
    deleteFilesMax: Math.max(...deletes),
    snapshots: metadata.snapshots.length,
    snapshotId: String(metadata.currentSnapshotId),
    rows,
    rowsInFilesWithDeletes,
  };
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

async function freshness(stack: Stack, figures: Figure[], notes: string[]): Promise<void> {
  const database = 'fresh';
  const sourceName = 'fresh';
  const table = `${sourceName}.public.orders`;
  const slot = `sluice_${sourceName}`;
  const db = await createDatabase(stack, database);
  const workloadDb = new pg.Client({ connectionString: stack.postgres.url(database) });
  const markerDb = new pg.Client({ connectionString: stack.postgres.url(database) });
  await Promise.all([workloadDb.connect(), markerDb.connect()]);
  log(`creating orders with ${ROWS} rows`);
  await createOrdersTable(db, ROWS);
  log('onboarding');
  const onboarded = await onboard(stack, database, sourceName, true, {
    maxChangesPerBatch: 20_000,
    pollIntervalMs: POLL_MS,
    idleIntervalMs: Math.max(POLL_MS, 250),
  });
  log(`onboarded ${onboarded.result.onboard.rowsCopied} rows in ${onboarded.seconds.toFixed(1)} s`);
  notes.push(`Onboarding copied ${onboarded.result.onboard.rowsCopied} rows in ${onboarded.seconds.toFixed(1)} s.`);

  // Markers: committed once a second on their own connection; the probe reports when pyiceberg first saw each.
  const markers = new Map<number, { committedAtMs: number; lsn: bigint; mergedAtMs?: number; seenAtMs?: number }>();
  const pollMs: number[] = [];
  const probe = startProbe(stack, table, (line) => {
    if (Array.isArray(line.pollMs)) pollMs.push(...(line.pollMs as number[]));
    if (Array.isArray(line.ids)) {
      for (const id of line.ids as number[]) {
        const m = markers.get(id);
        if (m && m.seenAtMs === undefined) m.seenAtMs = line.pollStartMs as number;
      }
    }
  });
  const wal: { t: number; retained: number }[] = [];
  let sampling = true;
  const started = Date.now();
  const sampler = (async () => {
    let lastWal = 0;
    while (sampling) {
      const state = await slotState(db, slot);
      const now = Date.now();
      for (const m of markers.values()) if (m.mergedAtMs === undefined && state.confirmed >= m.lsn) m.mergedAtMs = now;
      if (now - lastWal >= 5000) {
        wal.push({ t: (now - started) / 1000, retained: state.retained });
        lastWal = now;
      }
      await sleep(200);
    }
  })();
  const stop = new AbortController();
  const startMarkers = async () => {
    // Negative ids: the workload never picks them (it reads the live ids before the first marker).
    await sleep(2000);
    for (let k = 1; !stop.signal.aborted; k++) {
      const id = -k;
      const r = (await markerDb.query(
        `BEGIN; INSERT INTO orders VALUES (${id}, 'marker', 'new', 0, now()); COMMIT; SELECT pg_current_wal_lsn()::text AS lsn`,
      )) as unknown as pg.QueryResult<{ lsn: string }>[];
      markers.set(id, { committedAtMs: Date.now(), lsn: parseLsn(r[r.length - 1]!.rows[0]!.lsn) });
      await sleep(1000);
    }
  };
  log(`workload: ${RATE} changes/s for ${MINUTES} min`);
  const running = runOrdersWorkload(workloadDb, {
    changesPerSecond: RATE,
    durationMs: MINUTES * 60_000,
    changesPerTransaction: 10,
  });
  const markerLoop = startMarkers();
  const maintenance: MaintenanceRun[] = [];
  const maintenanceLoop =
    MAINTENANCE_EVERY_MIN > 0 ? maintain(stack, sourceName, table, stop.signal, maintenance) : null;
  const workload = await running;
  stop.abort();
  await markerLoop;
  await maintenanceLoop;
  const achieved = workload.changes / (workload.elapsedMs / 1000);
  log(`workload done: ${workload.changes} changes at ${achieved.toFixed(0)}/s; waiting for the last markers`);
  const deadline = Date.now() + 120_000;
  while ([...markers.values()].some((m) => m.seenAtMs === undefined) && Date.now() < deadline) await sleep(250);
  sampling = false;
  await sampler;
  probe.kill('SIGTERM');

  const all = [...markers.values()];
  const seen = all.filter((m) => m.seenAtMs !== undefined).map((m) => (m.seenAtMs! - m.committedAtMs) / 1000);
  const merged = all.filter((m) => m.mergedAtMs !== undefined).map((m) => (m.mergedAtMs! - m.committedAtMs) / 1000);
  const p = (q: number) => round(quantile(seen, q));
  const p95 = p(0.95);
  for (const [name, q] of [
    ['freshness_p50', 0.5],
    ['freshness_p95', 0.95],
    ['freshness_p99', 0.99],
  ] as const) {
    figures.push({
      name: `${name}_vs_reference`,
      value: p(q),
      unit: 's',
      peer: {
        name: 'reference system: Spark MERGE INTO every 15 min (best case of its 15 min–1 h)',
        value: REFERENCE_S,
      },
      ratio: round(REFERENCE_S / p(q), 1),
      ratioMeaning: 'reference ÷ ours (> 1: ours is fresher)',
      goal: name === 'freshness_p95' ? 'p95 ≤ 5 s' : null,
    });
  }
  figures.push({
    name: 'freshness_p95_vs_kafka_connect_sink',
    value: p95,
    unit: 's',
    peer: { name: 'Iceberg Kafka Connect sink, default 5-min commit interval', value: KAFKA_CONNECT_S },
    ratio: round(KAFKA_CONNECT_S / p95, 1),
    ratioMeaning: 'sink ÷ ours (> 1: ours is fresher)',
    goal: 'p95 ≤ 5 s',
  });
  if (maintenance.length > 0) {
    // The same markers without those committed while a maintenance run was compacting (or, with --pause-merge,
    // held the merge paused): what the merge achieves between maintenance windows.
    const during = (m: { committedAtMs: number }) =>
      maintenance.some((w) => m.committedAtMs >= w.startedAtMs && m.committedAtMs <= w.endedAtMs);
    const outside = all
      .filter((m) => m.seenAtMs !== undefined && !during(m))
      .map((m) => (m.seenAtMs! - m.committedAtMs) / 1000);
    figures.push({
      name: 'freshness_p95_outside_maintenance_windows',
      value: round(quantile(outside, 0.95)),
      unit: 's',
      peer: null,
      ratio: null,
      goal: null,
    });
    notes.push(
      `Maintenance: ${maintenance.length} runs of cdc-table-maintenance (every ${MAINTENANCE_EVERY_MIN} min; ` +
        (PAUSE_MERGE
          ? 'the merge paused until its compaction committed): '
          : 'beside the running merge, which never paused; the compaction carried its concurrent deletes over' +
            (MAINTENANCE_WORKER ? '; on a second worker process' : "; in the merge's worker process") +
            '): ') +
        maintenance
          .map((w) =>
            PAUSE_MERGE
              ? `at ${w.atS.toFixed(0)} s: the merge stopped after ${(w.pausedMs / 1000).toFixed(1)} s and resumed ` +
                `${(w.maintenanceMs / 1000).toFixed(1)} s later, when the compaction had committed (${w.what})`
              : `at ${w.atS.toFixed(0)} s: the compaction committed ${(w.maintenanceMs / 1000).toFixed(1)} s after ` +
                `the start (${w.what})`,
          )
          .join('; ') +
        `. Markers committed outside these windows (${outside.length}): p50 ${round(quantile(outside, 0.5))} s, ` +
        `p95 ${round(quantile(outside, 0.95))} s, p99 ${round(quantile(outside, 0.99))} s.`,
    );
  }
  figures.push({
    name: 'freshness_sustained_rate',
    value: round(achieved, 0),
    unit: 'changes/s',
    peer: null,
    ratio: null,
    goal: `${RATE} changes/s sustained for ${MINUTES} min`,
  });
  notes.push(
    `Freshness: ${seen.length} of ${all.length} markers seen by pyiceberg (one per second); source commit → ` +
      `merged (slot confirmed past it, sampled every 200 ms): p50 ${round(quantile(merged, 0.5))} s, p95 ` +
      `${round(quantile(merged, 0.95))} s; → visible to a pyiceberg poll: p50 ${p(0.5)} s, p95 ${p95} s, p99 ` +
      `${p(0.99)} s, max ${round(Math.max(...seen))} s. pyiceberg polls (load_table + filtered scan) took p50 ` +
      `${round(quantile(pollMs, 0.5) / 1000)} s, p95 ${round(quantile(pollMs, 0.95) / 1000)} s; a marker counts ` +
      'as visible at the start of the poll that saw it.',
    `Workload: ${workload.changes} changes (${workload.inserts} inserts, ${workload.updates} updates, ` +
      `${workload.deletes} deletes) in ${workload.transactions.length} transactions of 10 changes over ` +
      `${(workload.elapsedMs / 1000).toFixed(0)} s = ${achieved.toFixed(0)} changes/s (target ${RATE}/s).`,
  );

  // Retained WAL through the run.
  const retained = wal.map((w) => w.retained);
  const second = wal.filter((w) => w.t >= (wal.at(-1)?.t ?? 0) / 2);
  const trend = slope(second.map((w) => ({ x: w.t / 60, y: w.retained / 2 ** 20 })));
  figures.push({
    name: 'retained_wal_max',
    value: round(Math.max(...retained) / 2 ** 20, 1),
    unit: 'MiB',
    peer: null,
    ratio: null,
    goal: 'bounded throughout',
  });
  figures.push({
    name: 'retained_wal_trend_second_half',
    value: round(trend, 2),
    unit: 'MiB/min',
    peer: null,
    ratio: null,
    goal: '≈ 0 (bounded)',
  });
  notes.push(
    `Retained WAL sampled every 5 s (${wal.length} samples): median ${round(median(retained) / 2 ** 20, 1)} MiB, ` +
      `max ${round(Math.max(...retained) / 2 ** 20, 1)} MiB, least-squares trend over the second half ` +
      `${round(trend, 2)} MiB/min.`,
  );

  // Table health after the run, then the same table compacted.
  const health = await filesPerBucket(stack, table);
  log(`health: ${JSON.stringify(health)}`);
  const scanAll = async () => {
    const timings = new Map<ScanEngine, ScanTiming>();
    for (const engine of SCAN_ENGINES) timings.set(engine, await pyScan(stack, table, engine));
    return timings;
  };
  const beforeScans = await scanAll();
  const scannedSnapshot = String(currentSnapshotId(await stack.warehouse.catalog.loadTable(table)));
  log('compacting');
  const compactStarted = Date.now();
  await compactTable(stack.warehouse.catalog, stack.warehouse.io, table, { minInputFiles: 2 });
  const compactSeconds = (Date.now() - compactStarted) / 1000;
  const afterScans = await scanAll();
  const compacted = await filesPerBucket(stack, table);
  // Every engine, before and after the compaction, must read the same rows: the merge is idle by now, and a
  // compaction changes files, never rows. Anything else is a correctness bug, not a timing.
  const counts = [...beforeScans.values()]
    .map((t) => `${t.engine} ${t.rows} after the run`)
    .concat([...afterScans.values()].map((t) => `${t.engine} ${t.rows} compacted`));
  const rowSet = new Set([...beforeScans.values(), ...afterScans.values()].map((t) => t.rows));
  if (rowSet.size !== 1) {
    throw new Error(
      `table health: the engines read different row counts (${counts.join(', ')}); snapshot ${health.snapshotId} ` +
        `planned ${health.rows} rows before the scans, ${scannedSnapshot} was current after them, the compacted ` +
        `snapshot ${compacted.snapshotId} holds ${compacted.rows} data-file rows`,
    );
  }
  if (scannedSnapshot !== health.snapshotId) {
    throw new Error(
      `table health: the table changed while the engines scanned it (snapshot ${health.snapshotId} → ` +
        `${scannedSnapshot}); the merge was not idle`,
    );
  }
  figures.push({
    name: 'data_files_per_bucket_after_run',
    value: health.dataFilesMedian,
    unit: 'files (median over buckets)',
    peer: { name: 'compacted table', value: compacted.dataFilesMedian },
    ratio: round(health.dataFilesMedian / Math.max(1, compacted.dataFilesMedian), 1),
    ratioMeaning: 'after run ÷ compacted',
    goal: null,
  });
  const scanUnits: Record<ScanEngine, string> = {
    pyiceberg: 'pyiceberg scan().to_arrow()',
    duckdb: 'DuckDB 1.5.5 iceberg_scan(metadata.json) to Arrow',
    spark: 'Spark 4.1 + Iceberg 1.11 read.table() to the noop sink, local[2]',
  };
  for (const engine of SCAN_ENGINES) {
    const b = median(beforeScans.get(engine)!.ms);
    const a = median(afterScans.get(engine)!.ms);
    figures.push({
      // The pyiceberg figure keeps its original name, so earlier runs stay comparable.
      name: engine === 'pyiceberg' ? 'full_scan_vs_compacted' : `full_scan_vs_compacted_${engine}`,
      value: b,
      unit: `ms (${scanUnits[engine]}, median of ${SCAN_REPEATS})`,
      peer: { name: 'the same table compacted', value: a },
      ratio: round(b / a, 2),
      ratioMeaning: 'after run ÷ compacted (≤ 1.5 is the goal)',
      goal: '≤ 1.5×',
    });
  }
  const before = beforeScans.get('pyiceberg');
  const after = afterScans.get('pyiceberg');
  notes.push(
    `Table health after run 1: ${health.buckets} buckets, data files per bucket median ${health.dataFilesMedian} ` +
      `(max ${health.dataFilesMax}), position-delete files per bucket median ${health.deleteFilesMedian} (max ` +
      `${health.deleteFilesMax}), ${health.snapshots} snapshots; ${maintenance.length} maintenance runs during the run. Compaction ` +
      `(compactTable, minInputFiles 2) took ${compactSeconds.toFixed(1)} s and left ${compacted.dataFilesMedian} ` +
      `data files per bucket.` +
      (before && after
        ? ` Full scans (${before.rows} rows): ${before.ms.join(', ')} ms before, ${after.ms.join(', ')} ms compacted.`
        : ''),
    `Full-scan timings (ms; each engine in its own process per measurement, one untimed warm-up scan, then ${SCAN_REPEATS} timed ` +
      `scans that each load the table's current metadata; all read ${[...rowSet][0]} rows): ` +
      SCAN_ENGINES.map(
        (e) =>
          `${e} ${beforeScans.get(e)!.ms.join(', ')} after the run / ${afterScans.get(e)!.ms.join(', ')} compacted`,
      ).join('; ') +
      `. ${health.rowsInFilesWithDeletes} of ${health.rows} rows (data-file records, deleted ones included) are in ` +
      `data files with at least one position delete applied after the run (${compacted.rowsInFilesWithDeletes} of ` +
      `${compacted.rows} compacted): a reader filters those record by record.`,
  );
  await Promise.allSettled([db.end(), workloadDb.end(), markerDb.end()]);
}

interface MaintenanceRun {
  atS: number;
  startedAtMs: number;
  endedAtMs: number;
  pausedMs: number;
  maintenanceMs: number;
  what: string;
}

/**
 * What an operator schedules: every MAINTENANCE_EVERY_MIN minutes, `cdc-table-maintenance` (compaction by
 * threshold, snapshot expiry, orphan listing) beside the running merge. With PAUSE_MERGE, the old procedure: pause
 * the merge (it stops after its batch), run the maintenance, resume as soon as the compaction has committed.
 * A run's window is from its start to its compaction's commit (or the workflow's end when nothing was compacted).
 */
async function maintain(
  stack: Stack,
  sourceName: string,
  table: string,
  stop: AbortSignal,
  runs: MaintenanceRun[],
): Promise<void> {
  const merge = stack.client.workflow.getHandle(cdcMergeWorkflowId(sourceName));
  const started = Date.now();
  for (;;) {
    const due = started + (runs.length + 1) * MAINTENANCE_EVERY_MIN * 60_000;
    while (Date.now() < due && !stop.aborted) await sleep(250);
    if (stop.aborted) return;
    const startedAtMs = Date.now();
    if (PAUSE_MERGE) {
      await merge.signal(CDC_MERGE_SIGNALS.pause);
      while ((await merge.query<CdcMergeProgress>(PROGRESS_QUERY)).phase !== 'paused') await sleep(100);
    }
    const pausedAtMs = Date.now();
    const before = currentSnapshotId(await stack.warehouse.catalog.loadTable(table));
    let resumedAtMs: number | undefined;
    let compacted: { summary: Record<string, string> } | undefined;
    const resume = async () => {
      if (resumedAtMs !== undefined) return;
      resumedAtMs = Date.now();
      if (PAUSE_MERGE) await merge.signal(CDC_MERGE_SIGNALS.resume);
    };
    let what: string;
    try {
      const handle = await startCdcTableMaintenance(
        stack.client,
        // Expire snapshots older than a minute (a pyiceberg poll never reads one that old), keep the last 2.
        { icebergTable: table, expireOlderThanMs: 60_000, retainLast: 2 },
        { taskQueue: stack.maintenanceTaskQueue },
      );
      // The window ends when the compaction's snapshot is committed; expiry and the orphan listing follow.
      let finished = false;
      const result = handle.result().finally(() => (finished = true));
      while (!finished) {
        const now = await stack.warehouse.catalog.loadTable(table);
        const replace = now.metadata.snapshots.find(
          (x) => x.summary.operation === 'replace' && x.snapshotId !== before && x.timestampMs >= BigInt(pausedAtMs),
        );
        if (replace) {
          compacted = replace;
          await resume();
          break;
        }
        await sleep(200);
      }
      const r = await result;
      const carried = compacted
        ? `, carried over ${compacted.summary['added-position-deletes'] ?? 0} concurrent deletes in ` +
          `${compacted.summary['added-position-delete-files'] ?? 0} delete files`
        : '';
      what =
        `${r.compaction ? `compacted: ${r.compactionReason}` : r.compactionReason}; data files ` +
        `${r.before.dataFiles} → ${r.after.dataFiles}, delete files ${r.before.deleteFiles} → ${r.after.deleteFiles}` +
        `${carried}, ${r.expiry.expiredSnapshots} snapshots expired, the whole workflow took ` +
        `${((Date.now() - pausedAtMs) / 1000).toFixed(1)} s`;
    } finally {
      await resume();
    }
    const endedAtMs = resumedAtMs!;
    const run = {
      atS: (startedAtMs - started) / 1000,
      startedAtMs,
      endedAtMs,
      pausedMs: pausedAtMs - startedAtMs,
      maintenanceMs: endedAtMs - pausedAtMs,
      what,
    };
    runs.push(run);
    log(`maintenance: ${JSON.stringify(run)}`);
  }
}

async function catchUp(stack: Stack, figures: Figure[], notes: string[]): Promise<void> {
  const database = 'backlog';
  const sourceName = 'backlog';
  const slot = `sluice_${sourceName}`;
  const db = await createDatabase(stack, database);
  log(`catch-up: creating orders with ${ROWS} rows`);
  await createOrdersTable(db, ROWS);
  const onboarded = await onboard(stack, database, sourceName, false, {});
  log(`catch-up: onboarded in ${onboarded.seconds.toFixed(1)} s; writing a backlog of ${BACKLOG} changes`);
  const changes = await writeOrdersBacklog(db, ROWS, BACKLOG);
  const target = await currentLsn(db);
  log(`catch-up: backlog of ${changes} changes written; starting the merge`);
  const cpuBefore = cpuSeconds(stack.worker.child.pid!);
  const postgresBefore = postgresCpuSeconds(stack.postgres);
  const loadBefore = os.loadavg()[0]!;
  const started = Date.now();
  const handle = await startCdcMerge(
    stack.client,
    {
      source: { connectionString: stack.postgres.url(database) },
      sourceName,
      tables: [{ source: 'public.orders', icebergTable: `${sourceName}.public.orders` }],
      slot,
      publication: slot,
      maxChangesPerBatch: CATCHUP_BATCH,
      pollIntervalMs: 100,
    },
    { taskQueue: stack.taskQueue },
  );
  while ((await slotState(db, slot)).confirmed < target) await sleep(250);
  const seconds = (Date.now() - started) / 1000;
  const cpu = cpuSeconds(stack.worker.child.pid!) - cpuBefore;
  const postgresCpu = postgresCpuSeconds(stack.postgres) - postgresBefore;
  const loadAfter = os.loadavg()[0]!;
  const progress = await handle.query<CdcMergeProgress>(PROGRESS_QUERY);
  await handle.cancel();
  const rate = changes / seconds;
  log(
    `catch-up: ${changes} changes in ${seconds.toFixed(1)} s = ${rate.toFixed(0)}/s (worker CPU ${cpu.toFixed(1)} s)`,
  );
  figures.push({
    name: 'catch_up_rate',
    value: round(rate, 0),
    unit: 'changes/s',
    peer: null,
    ratio: null,
    goal: '≥ 50,000 changes/s on 2 cores',
  });
  figures.push({
    name: 'catch_up_worker_cpu',
    value: round(cpu, 1),
    unit: 'CPU s (the worker process, 1M changes)',
    peer: null,
    ratio: null,
    goal: null,
  });
  figures.push({
    name: 'catch_up_changes_per_worker_cpu_second',
    value: round(changes / cpu, 0),
    unit: 'changes per worker CPU-s',
    peer: null,
    ratio: null,
    goal: null,
  });
  figures.push({
    name: 'catch_up_postgres_cpu',
    value: round(postgresCpu, 1),
    unit: 'CPU s (all PostgreSQL processes: logical decoding, advances, the catalog reads)',
    peer: null,
    ratio: null,
    goal: null,
  });
  notes.push(
    `Catch-up: a backlog of ${changes} changes (transactions of 6,000 updates + 2,500 inserts + 1,500 deletes) on ` +
      `a ${ROWS}-row table, merged from a standing start with batches of up to ${CATCHUP_BATCH} changes ` +
      `(${progress.batches} batches) in ${seconds.toFixed(1)} s; the worker process used ${cpu.toFixed(1)} CPU s ` +
      `(${round(changes / cpu, 0)} changes per CPU second), PostgreSQL ${postgresCpu.toFixed(1)} CPU s; load ` +
      `average ${loadBefore.toFixed(1)} at the merge's start, ${loadAfter.toFixed(1)} at its end.`,
  );
  await db.end();
}

async function run(): Promise<void> {
  const command = `npm run bench:cdc -- ${argv.join(' ')}`.trim();
  const figures: Figure[] = [];
  const notes: string[] = [
    `Machine: ${os.cpus().length} cores shared with up to 7 other engineers working at the same time (load average ` +
      `at start ${os.loadavg()[0]!.toFixed(1)}); numbers are from a loaded machine.`,
  ];
  const stack = await startStack();
  try {
    if (mode === 'all' || mode === 'freshness') await freshness(stack, figures, notes);
    if (mode === 'all' || mode === 'catchup') await catchUp(stack, figures, notes);
    notes.push(`Load average at the end: ${os.loadavg()[0]!.toFixed(1)}.`);
    const file = writeResults(mode === 'all' ? 'cdc' : `cdc-${mode}`, command, figures, notes);
    log(`wrote ${file}`);
    for (const f of figures) log(`${f.name}: ${f.value} ${f.unit}${f.ratio === null ? '' : ` (ratio ${f.ratio})`}`);
  } finally {
    await stack.close();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
