import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startCdcOnboard } from '../../client/pipelines.js';
import { CDC_WATERMARK_PROPERTY } from '../../lib/cdc/collapse.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { dropSlot } from '../../lib/cdc/slot.js';
import { REPO_ROOT } from '../../lib/config.js';
import { createOrdersTable, runOrdersWorkload, type WorkloadResult } from '../../lib/stack/demo-workload.js';
import { startProcess, tailLog, type ManagedProcess } from '../../lib/stack/managed-process.js';
import { openWarehouse, type Warehouse } from '../../lib/stack/warehouse.js';
import { readWithPyiceberg, type CatalogRef } from '../interop/engines.js';
import { connectToTestServer, uniqueQueue } from '../fixtures/temporal.js';

// The exactly-once proof. The cpu worker runs as a separate OS process (`sluice worker --pool cpu`) while a
// workload writes inserts, updates and deletes to a real PostgreSQL table, and it is killed with SIGKILL again and
// again: by itself at each test-only crash point (SLUICE_TEST_CRASH_AT, lib/cdc/crash-points.ts) — before the
// write, after a file write, after the Iceberg commit, after the slot advance — and by this test at random moments.
// A fresh worker takes over each time. At each checkpoint the Iceberg table read by pyiceberg must equal the source
// row for row, the watermarks in the snapshot summaries must only grow (no transaction applied twice), and every
// quarantined change must be in the quarantine exactly once (none lost to a crash after the commit).
const postgresUrl = inject('postgresUrl');
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const database = `sluice_cdc_kill_${suffix}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();
const sourceName = `kill${suffix}`;
const icebergTable = `${sourceName}.public.orders`;
const slot = `sluice_${sourceName}`;

type Round = { crashAt: 'before-write' | 'after-write' | 'after-commit' | 'after-advance' } | { killAfterMs: number };

// Every crash point at least once, and random external kills. A checkpoint follows the rounds marked so.
const ROUNDS: (Round & { checkpoint?: boolean })[] = [
  { crashAt: 'before-write' },
  { crashAt: 'after-write' },
  { killAfterMs: 500 + Math.floor(Math.random() * 2500), checkpoint: true },
  { crashAt: 'after-commit' },
  { crashAt: 'after-advance' },
  { killAfterMs: 500 + Math.floor(Math.random() * 2500), checkpoint: true },
];

let admin: pg.Client;
let db: pg.Client;
let workloadDb: pg.Client;
let dir: string;
let logDir: string;
let configPath: string;
let warehouse: Warehouse;
let catalogRef: CatalogRef;
let t: Awaited<ReturnType<typeof connectToTestServer>>;
let base: string;
const workers: ManagedProcess[] = [];

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  workloadDb = new pg.Client({ connectionString: databaseUrl });
  await workloadDb.connect();
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cdc-kill-'));
  logDir = path.join(dir, 'logs');
  // The worker processes open this catalog and warehouse (temporal-dev.yml `defaults` of a private config).
  configPath = path.join(dir, 'stack.yml');
  writeFileSync(
    configPath,
    [
      'defaults:',
      `  warehouse: file://${dir}/wh`,
      '  catalogName: kill_loop',
      '  catalog:',
      '    type: sqlite',
      `    path: ${dir}/catalog.db`,
      '',
    ].join('\n'),
  );
  warehouse = await openWarehouse({
    warehouse: `file://${dir}/wh`,
    catalogName: 'kill_loop',
    catalog: { type: 'sqlite', path: path.join(dir, 'catalog.db') },
  });
  catalogRef = { uri: `sqlite:///${path.join(dir, 'catalog.db')}`, name: 'kill_loop', warehouse: warehouse.warehouse };
  t = await connectToTestServer();
  base = uniqueQueue('cdc-kill');
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.kill()));
  await t?.client.workflow
    .getHandle(`cdc/${sourceName}`)
    .terminate('test over')
    .catch(() => undefined);
  await t?.close();
  await dropSlot(db, slot).catch(() => undefined);
  await Promise.allSettled([db?.end(), workloadDb?.end()]);
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
  await warehouse?.close();
  if (dir && !process.env.SLUICE_KEEP_TEST_LOGS) rmSync(dir, { recursive: true, force: true });
});

/** `sluice worker --pool cpu` as its own process on this test's queue, optionally with crash points armed. */
function spawnCpuWorker(name: string, crashAt?: string): ManagedProcess {
  const worker = startProcess(
    name,
    process.execPath,
    [path.join(REPO_ROOT, 'bin/sluice.js'), 'worker', '--pool', 'cpu', '--metrics-port', 'off'],
    {
      logDir,
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_NAMESPACE: 'default',
        SLUICE_CONFIG: configPath,
        SLUICE_TASK_QUEUE: base,
        SLUICE_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
        SLUICE_LOG_LEVEL: 'warn',
        SLUICE_TEST_CRASH_AT: crashAt ?? '',
      },
    },
  );
  workers.push(worker);
  return worker;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The source table in the interop harness's canonical JSON (docs/interop.md), without the rows whose infinite
 * timestamp Iceberg cannot hold (their inserts are quarantined; a workload update makes such a row applicable).
 */
async function sourceRows() {
  const result = await db.query(
    `SELECT id::text AS id, customer, status, amount::text AS amount,
            to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS updated_at
       FROM orders WHERE updated_at <> 'infinity' ORDER BY orders.id`,
  );
  return result.rows as Record<string, unknown>[];
}

// Before each round, one insert that the merge must quarantine (an infinite timestamp), so that the crash points
// also hit batches with quarantined changes: each must be in the quarantine exactly once afterwards.
// Negative ids: the workload inserts above the table's largest id.
let badInserts = 0;
async function insertQuarantinedRow(): Promise<void> {
  await db.query(`INSERT INTO orders VALUES (${-1 - badInserts}, 'bad', 'new', 1, 'infinity')`);
  badInserts++;
}

/** Every record in the source's quarantine files, duplicates included. */
function quarantineLines(): { errorKind: string; origin: string }[] {
  const quarantineDir = path.join(dir, 'wh', '_quarantine', sourceName);
  if (!existsSync(quarantineDir)) return [];
  return readdirSync(quarantineDir)
    .filter((f) => /^\d{4}-\d{2}-\d{2}\.jsonl$/.test(f))
    .flatMap((f) => readFileSync(path.join(quarantineDir, f), 'utf8').split('\n'))
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { errorKind: string; origin: string });
}

async function slotConfirmedLsn(): Promise<bigint> {
  const r = await db.query<{ lsn: string | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return r.rows[0]?.lsn ? parseLsn(r.rows[0].lsn) : 0n;
}

/** Waits until the slot is confirmed past everything the source has written now. */
async function waitForCatchUp(timeoutMs: number): Promise<void> {
  const target = parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
  const deadline = Date.now() + timeoutMs;
  while ((await slotConfirmedLsn()) < target) {
    if (Date.now() > deadline) throw new Error(`the merge did not catch up with the source within ${timeoutMs} ms`);
    await pause(200);
  }
}

/** Watermarks of the table's snapshots, oldest first. */
async function watermarkHistory(): Promise<bigint[]> {
  const { metadata } = await warehouse.catalog.loadTable(icebergTable);
  return [...metadata.snapshots]
    .sort((a, b) => (a.sequenceNumber < b.sequenceNumber ? -1 : 1))
    .map((s) => s.summary[CDC_WATERMARK_PROPERTY])
    .filter((w): w is string => w !== undefined)
    .map((w) => parseLsn(w));
}

describe('cdc-merge exactly once under kill -9', () => {
  it('matches the source row for row after every round of crashes at each point', { timeout: 240_000 }, async () => {
    const started = Date.now();
    const mark = (what: string) => console.log(`kill-loop ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
    await createOrdersTable(db, 300);
    let worker = spawnCpuWorker('worker-0');
    const onboard = await startCdcOnboard(
      t.client,
      {
        source: { connectionString: databaseUrl },
        sourceName,
        table: 'public.orders',
        buckets: 4,
        merge: {
          maxChangesPerBatch: 300,
          pollIntervalMs: 200,
          idleIntervalMs: 400,
          iterationsPerRun: 25,
          workerLossTimeoutMs: 2500,
        },
      },
      { taskQueue: base },
    );
    const onboarded = await withTimeout(onboard.result(), 60_000, 'the onboarding');
    expect(onboarded.onboard.rowsCopied).toBe(300);
    expect(onboarded.mergeStarted).toBe(true);
    mark('onboarded');

    let workload: { stop: AbortController; done: Promise<WorkloadResult> } | undefined;
    let seed = 1;
    const startWorkload = () => {
      const stop = new AbortController();
      const done = runOrdersWorkload(workloadDb, {
        changesPerSecond: 50,
        durationMs: 600_000,
        seed: seed++,
        signal: stop.signal,
      });
      workload = { stop, done };
    };
    const totals = { changes: 0, crashes: 0, kills: 0 };
    const checkpoint = async (label: string) => {
      workload!.stop.abort();
      totals.changes += (await workload!.done).changes;
      const clean = spawnCpuWorker(`clean-${label}`);
      await waitForCatchUp(60_000);
      mark(`caught up after ${label}`);
      const py = await readWithPyiceberg(catalogRef, { table: icebergTable, orderBy: ['id'] });
      const expected = await sourceRows();
      expect(py.rows.length, `rows after ${label}`).toBe(expected.length);
      expect(py.rows, `Iceberg equals the source after ${label}`).toEqual(expected);
      const marks = await watermarkHistory();
      for (let i = 1; i < marks.length; i++) {
        expect(marks[i]! > marks[i - 1]!, `snapshot ${i} applies only transactions after snapshot ${i - 1}`).toBe(true);
      }
      // Source changes = applied + quarantined: every quarantined insert is recorded once, none lost to a crash.
      const quarantined = quarantineLines();
      expect(quarantined.length, `quarantine records after ${label}`).toBe(badInserts);
      expect(new Set(quarantined.map((q) => q.origin)).size).toBe(badInserts);
      expect(quarantined.every((q) => q.errorKind === 'value-conversion')).toBe(true);
      mark(`checked ${label}`);
      await clean.kill();
      startWorkload();
    };

    startWorkload();
    await pause(2000);
    await worker.kill(); // the onboarding's worker dies mid-merge too
    totals.kills++;
    for (const [i, round] of ROUNDS.entries()) {
      await insertQuarantinedRow();
      if ('crashAt' in round) {
        worker = spawnCpuWorker(`round-${i}-${round.crashAt}`, `${round.crashAt}:1`);
        const exit = await withTimeout(worker.exited, 60_000, `a crash at ${round.crashAt}`);
        const log = readFileSync(worker.logFile, 'utf8');
        expect(exit.signal, `${worker.name} ended by SIGKILL\n${await tailLog(worker.logFile)}`).toBe('SIGKILL');
        expect(log).toContain(`SLUICE_TEST_CRASH ${round.crashAt}`);
        totals.crashes++;
        mark(`${worker.name} crashed`);
      } else {
        worker = spawnCpuWorker(`round-${i}-kill`);
        await pause(round.killAfterMs + 3000); // the process takes a few seconds to start polling
        await worker.kill();
        totals.kills++;
        mark(`${worker.name} killed`);
      }
      if (round.checkpoint) await checkpoint(`round ${i}`);
    }
    workload!.stop.abort();
    totals.changes += (await workload!.done).changes;
    expect(totals.crashes).toBe(4);
    expect(totals.changes).toBeGreaterThan(300);
  });
});
