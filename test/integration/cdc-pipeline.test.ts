import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCdcActivities } from '../../activities/cdc-activities.js';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { startCdcOnboard } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import { dropSlot } from '../../lib/cdc/slot.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { currentSnapshot } from '../../lib/iceberg/metadata-json.js';
import { createSourcePools, openWarehouse, type SourcePools, type Warehouse } from '../../lib/stack/warehouse.js';
import {
  cdcPublicationName,
  cdcSlotName,
  type CdcMergeInput,
  type CdcMergeProgress,
  type MergeBatchResult,
} from '../../schemas/cdc.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import {
  cdcMergeFlushSignal,
  cdcMergePauseSignal,
  cdcMergeProgressQuery,
  cdcMergeResumeSignal,
} from '../../workflows/cdc-merge.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { readWithPyiceberg, type CatalogRef } from '../interop/engines.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

// The real PostgreSQL (wal_level=logical) and Temporal dev server from globalSetup, a private SQLite catalog and
// file:// warehouse, and an in-process cpu worker with the CDC activities. Slots belong to one database, so this
// file works in its own database. SLUICE_RECORD_HISTORIES=1 also writes test/histories/cdc-*.json for the replay
// tests (see docs/cdc-pipeline.md).
const postgresUrl = inject('postgresUrl');
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const database = `sluice_cdc_pipeline_${suffix}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();
const recordHistories = process.env.SLUICE_RECORD_HISTORIES === '1';

let admin: pg.Client;
let db: pg.Client;
let dir: string;
let warehouse: Warehouse;
let pools: SourcePools;
let catalogRef: CatalogRef;
let t: Awaited<ReturnType<typeof connectToTestServer>>;
let worker: Worker;
let running: Promise<void>;
let base: string;
const slotsToDrop: string[] = [];

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cdc-pipeline-'));
  warehouse = await openWarehouse({
    warehouse: `file://${dir}/wh`,
    catalogName: 'cdc_it',
    catalog: { type: 'sqlite', path: path.join(dir, 'catalog.db') },
  });
  catalogRef = { uri: `sqlite:///${path.join(dir, 'catalog.db')}`, name: 'cdc_it', warehouse: warehouse.warehouse };
  pools = createSourcePools();
  t = await connectToTestServer();
  base = uniqueQueue('cdc');
  worker = await createCpuWorker({
    connection: t.nativeConnection,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: testWorkflowBundle() },
    shutdownGraceTime: '1s',
    cdc: { catalog: warehouse.catalog, io: warehouse.io, pgPoolFor: pools.poolFor, heartbeatIntervalMs: 1000 },
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await t?.close();
  await pools?.close();
  for (const slot of slotsToDrop) await dropSlot(db, slot).catch(() => undefined);
  await db?.end();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
  await warehouse?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `SELECT *` of orders in the interop harness's canonical JSON encoding (docs/interop.md). */
async function sourceRows(exceptIds: number[] = []) {
  const result = await db.query(
    `SELECT id::text AS id, customer, amount::text AS amount, qty, status, note,
            to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS updated_at
       FROM orders WHERE NOT (orders.id = ANY($1::bigint[])) ORDER BY orders.id`,
    [exceptIds],
  );
  return result.rows as Record<string, unknown>[];
}

async function currentLsn(): Promise<bigint> {
  return parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
}

async function progressOf(handle: WorkflowHandle): Promise<CdcMergeProgress | undefined> {
  try {
    return await handle.query(cdcMergeProgressQuery);
  } catch {
    return undefined; // between runs of a continue-as-new
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Random hex does not compress, so a 6.4 KB note is stored out of line: updates that leave it alone send it as
// "unchanged TOAST", and the merge must take it from the Iceberg table's current row.
const BIG_NOTE = `(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, 200) g)`;

describe('cdc-onboard + cdc-merge on PostgreSQL, Temporal and Iceberg', () => {
  it('copies a table, merges a live workload exactly once, and matches SELECT * row for row', async () => {
    const sourceName = `it${suffix}`;
    await db.query(`CREATE TABLE orders (
      id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), qty int, status text, note text,
      updated_at timestamptz)`);
    await db.query('ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL');
    await db.query(`INSERT INTO orders
      SELECT g, 'customer ' || (g % 37), (g * 1.25)::numeric(12,2), g % 11, 'new',
             CASE WHEN g % 3 = 0 THEN ${BIG_NOTE} WHEN g % 3 = 1 THEN 'short ' || g END,
             timestamptz '2024-02-29 12:34:56.789012+00' + g * interval '1 minute 0.000001 second'
        FROM generate_series(1, 500) g`);

    const onboardInput = {
      source: { connectionString: databaseUrl },
      sourceName,
      table: 'public.orders',
      buckets: 4,
      merge: { maxChangesPerBatch: 100, pollIntervalMs: 200, idleIntervalMs: 800, iterationsPerRun: 3 },
    };
    const onboard = await startCdcOnboard(t.client, onboardInput, { taskQueue: base });
    const icebergTable = `${sourceName}.public.orders`;
    slotsToDrop.push(`sluice_${sourceName}`);
    expect(onboard.workflowId).toBe(`cdc-onboard/${sourceName}/public.orders`);
    const onboarded = await onboard.result();
    expect(onboarded.onboard).toMatchObject({ icebergTable, key: ['id'], rowsCopied: 500, alreadyOnboarded: false });
    expect(onboarded).toMatchObject({ mergeWorkflowId: `cdc/${sourceName}`, mergeStarted: true });
    expect(onboarded.mergeRunId).toMatch(/./);
    const merge = t.client.workflow.getHandle(`cdc/${sourceName}`);

    // Onboarding again is harmless: the table keeps its watermark and the running merge is left alone.
    const onboardAgain = await startCdcOnboard(t.client, onboardInput, { taskQueue: base });
    const again = await onboardAgain.result();
    expect(again.onboard).toMatchObject({
      alreadyOnboarded: true,
      rowsCopied: 0,
      watermark: onboarded.onboard.watermark,
    });
    expect(again).toMatchObject({ mergeStarted: false, mergeRunId: null });

    // A second slot from here on re-delivers the whole workload later, to prove the watermark makes a replay apply
    // nothing.
    const replaySlot = `replay_${suffix}`;
    await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [replaySlot]);
    slotsToDrop.push(replaySlot);

    const workload: string[][] = [
      [
        `INSERT INTO orders SELECT g, 'late ' || g, g * 0.5, 1, 'new', CASE WHEN g % 2 = 0 THEN ${BIG_NOTE} END,
           now() FROM generate_series(501, 700) g`,
      ],
      ["UPDATE orders SET amount = amount + 1, status = 'paid', updated_at = now() WHERE id % 5 = 0"],
      ['DELETE FROM orders WHERE id % 7 = 0'],
      // Key changes: the old key's row goes, and its unchanged TOASTed note must follow to the new key.
      ['UPDATE orders SET id = id + 10000, qty = qty + 1 WHERE id BETWEEN 20 AND 29'],
      [
        "INSERT INTO orders VALUES (900, 'x', 1.00, 1, 'new', NULL, now())",
        "UPDATE orders SET status = 'a' WHERE id = 900",
        "UPDATE orders SET status = 'b', amount = -3.10 WHERE id = 900",
        'DELETE FROM orders WHERE id = 901',
        "INSERT INTO orders VALUES (901, 'y', NULL, NULL, NULL, 'gone soon', NULL)",
        'DELETE FROM orders WHERE id = 901',
        "INSERT INTO orders VALUES (901, 'y2', 2.00, 2, 'new', NULL, NULL)",
      ],
      [`UPDATE orders SET note = ${BIG_NOTE} WHERE id IN (2, 4, 8)`],
      // Iceberg cannot hold an infinite timestamp: the row is quarantined, the rest of the batch still applies.
      ["INSERT INTO orders VALUES (999999, 'bad', 1.00, 1, 'new', NULL, 'infinity')"],
      ...Array.from({ length: 8 }, (_, i) => [`UPDATE orders SET qty = ${i} WHERE id = ${30 + i * 3}`]),
    ];
    for (const statements of workload) {
      await db.query('BEGIN');
      for (const sql of statements) await db.query(sql);
      await db.query('COMMIT');
      await pause(120);
    }
    const target = await currentLsn();

    const caughtUp = await eventually(
      async () => {
        const p = await progressOf(merge);
        return p?.confirmedLsn !== undefined && parseLsn(p.confirmedLsn) >= target ? p : undefined;
      },
      30_000,
      'the merge to reach the source LSN after the workload',
    );
    expect(caughtUp.rowsMerged).toBeGreaterThan(300);
    expect(caughtUp.batches).toBeGreaterThan(3);
    expect(caughtUp.runs).toBeGreaterThan(1); // continued as new, carrying its counters
    expect(caughtUp.quarantined).toBe(1);
    expect(caughtUp.lastCommitTime).toBeDefined();
    expect(caughtUp.lagBytes).toMatch(/^\d+$/);
    expect(caughtUp).toMatchObject({ sourceName, slot: `sluice_${sourceName}`, tables: [icebergTable], paused: false });

    // The slot itself moved past the workload, so the source can drop that WAL.
    const slot = await db.query<{ lsn: string }>(
      'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
      [`sluice_${sourceName}`],
    );
    expect(parseLsn(slot.rows[0]!.lsn)).toBeGreaterThanOrEqual(target);

    // An independent reader sees exactly the source (minus the quarantined row).
    const py = await readWithPyiceberg(catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(py.schema.find((c) => c.name === 'id')).toEqual({ name: 'id', type: 'long', required: true });
    const expected = await sourceRows([999999]);
    expect(expected.length).toBeGreaterThan(550);
    expect(py.rows).toEqual(expected);
    const quarantine = readFileSync(
      path.join(dir, 'wh/_quarantine', sourceName, `${new Date().toISOString().slice(0, 10)}.jsonl`),
      'utf8',
    )
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { errorKind: string; table: string; message: string });
    expect(quarantine).toHaveLength(1);
    expect(quarantine[0]).toMatchObject({ errorKind: 'value-conversion', table: 'public.orders' });

    // Pause, then replay the whole workload from the second slot: every change is at or below the watermark.
    await merge.signal(cdcMergePauseSignal);
    const paused = await eventually(
      async () => {
        const p = await progressOf(merge);
        return p?.phase === 'paused' ? p : undefined;
      },
      10_000,
      'pause',
    );
    const pausedRunId = (await merge.describe()).runId;
    const before = currentSnapshot((await warehouse.catalog.loadTable(icebergTable)).metadata)!.snapshotId;
    const acts = createCdcActivities({ catalog: warehouse.catalog, io: warehouse.io, pgPoolFor: pools.poolFor });
    const replay: MergeBatchResult = await new MockActivityEnvironment().run(acts.mergeBatch, {
      connectionString: databaseUrl,
      sourceName,
      tables: [{ source: 'public.orders', icebergTable }],
      slot: replaySlot,
      publication: `sluice_${sourceName}`,
      maxChanges: 100_000,
    });
    expect(replay.changes).toBeGreaterThan(300);
    expect(replay.merged).toBe(0);
    expect(replay.skippedBelowWatermark).toBe(replay.changes);
    expect(replay.quarantined).toBe(0);
    expect(replay.tables[0]!.snapshotId).toBeNull();
    expect(currentSnapshot((await warehouse.catalog.loadTable(icebergTable)).metadata)!.snapshotId).toBe(before);

    // While paused, a flush merges exactly one batch and the merge stays paused.
    await db.query("UPDATE orders SET status = 'flushed' WHERE id = 1");
    const flushLsn = await currentLsn();
    await merge.signal(cdcMergeFlushSignal);
    const flushed = await eventually(
      async () => {
        const p = await progressOf(merge);
        return p?.confirmedLsn !== undefined && parseLsn(p.confirmedLsn) >= flushLsn && p.phase === 'paused'
          ? p
          : undefined;
      },
      10_000,
      'the flushed batch',
    );
    expect(flushed.batches).toBe(paused.batches + 1);
    expect(flushed.rowsMerged).toBe(paused.rowsMerged + 1);

    // Resumed, it applies what came in meanwhile, and the table still equals the source.
    await db.query("UPDATE orders SET status = 'after-pause' WHERE id IN (1, 2)");
    await db.query('DELETE FROM orders WHERE id = 3');
    await merge.signal(cdcMergeResumeSignal);
    const afterResume = await currentLsn();
    await eventually(
      async () => {
        const p = await progressOf(merge);
        return !p?.paused && p?.confirmedLsn !== undefined && parseLsn(p.confirmedLsn) >= afterResume ? p : undefined;
      },
      15_000,
      'the resumed merge to catch up',
    );
    const final = await readWithPyiceberg(catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(final.rows).toEqual(await sourceRows([999999]));
    expect(final.rows.filter((r) => r.status === 'after-pause').map((r) => r.id)).toEqual(['1', '2']);

    const described = await merge.describe();
    expect(described.typedSearchAttributes.get(SearchAttributes.pipeline)).toBe('cdc-merge');
    expect(described.typedSearchAttributes.get(SearchAttributes.dataset)).toBe(icebergTable);

    // A cancel ends the loop between batches, as cancelled.
    await merge.cancel();
    const err = await merge.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);

    if (recordHistories) {
      const mergeId = merge.workflowId;
      const runs = new Map([
        ['cdc-merge-first-run', onboarded.mergeRunId!],
        ['cdc-merge-paused-run', pausedRunId],
        ['cdc-merge-cancelled-run', (await merge.describe()).runId],
      ]);
      const written = new Set<string>();
      const record = async (name: string, handle: WorkflowHandle) => {
        const history = await handle.fetchHistory();
        writeFileSync(path.join(REPO_ROOT, 'test/histories', `${name}.json`), historyToJSON(history) + '\n');
      };
      await record('cdc-onboard', t.client.workflow.getHandle(onboard.workflowId, onboard.firstExecutionRunId));
      await record(
        'cdc-onboard-again',
        t.client.workflow.getHandle(onboardAgain.workflowId, onboardAgain.firstExecutionRunId),
      );
      for (const [name, runId] of runs) {
        if (written.has(runId)) continue;
        written.add(runId);
        await record(name, t.client.workflow.getHandle(mergeId, runId));
      }
    }
  });

  it('fails onboarding with a typed, non-retryable InvalidInput for a table without a primary key', async () => {
    await db.query('CREATE TABLE no_key (a int, b text)');
    const handle = await startCdcOnboard(
      t.client,
      { source: { connectionString: databaseUrl }, sourceName: `nokey${suffix}`, table: 'public.no_key' },
      { taskQueue: base },
    );
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const activityFailure = (err as WorkflowFailedError).cause;
    expect(activityFailure).toBeInstanceOf(ActivityFailure);
    const cause = (activityFailure as ActivityFailure).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('InvalidInput');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toMatch(/has no primary key/);
    const slots = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [`sluice_nokey${suffix}`]);
    expect(slots.rows).toHaveLength(0);
  });

  it('the typed client rejects a bad input before starting anything', async () => {
    await expect(
      startCdcOnboard(
        t.client,
        { source: { connectionString: databaseUrl }, sourceName: 'Bad-Name', table: 'orders' },
        { taskQueue: base },
      ),
    ).rejects.toThrow(/sourceName[\s\S]*table/);
  });

  it('scheduled mode: each run merges until caught up and completes; a Schedule runs it per tick', async () => {
    const sourceName = `sc${suffix}`;
    await db.query('CREATE TABLE ticks (id bigint PRIMARY KEY, v int NOT NULL, label text)');
    await db.query("INSERT INTO ticks SELECT g, g, 'start' FROM generate_series(1, 50) g");
    const merge = { mode: 'scheduled' as const, maxChangesPerBatch: 20, pollIntervalMs: 200, idleIntervalMs: 400 };
    const onboard = await startCdcOnboard(
      t.client,
      { source: { connectionString: databaseUrl }, sourceName, table: 'public.ticks', buckets: 2, merge },
      { taskQueue: base },
    );
    slotsToDrop.push(cdcSlotName(sourceName));
    const onboarded = await onboard.result();
    expect(onboarded.mergeStarted).toBe(true);
    const icebergTable = `${sourceName}.public.ticks`;
    // The merge that onboarding started is a scheduled-mode run: nothing to catch up, so it completes by itself.
    const first = await t.client.workflow.getHandle(`cdc/${sourceName}`).result();
    expect(first).toMatchObject({ runs: 1, paused: false });

    await db.query("INSERT INTO ticks SELECT g, g, 'late' FROM generate_series(51, 90) g");
    await db.query("UPDATE ticks SET v = v * 10, label = 'updated' WHERE id % 4 = 0");
    await db.query('DELETE FROM ticks WHERE id % 9 = 0');
    const target = await currentLsn();

    const mergeInput: CdcMergeInput = {
      source: { connectionString: databaseUrl },
      sourceName,
      tables: [{ source: 'public.ticks', icebergTable }],
      slot: cdcSlotName(sourceName),
      publication: cdcPublicationName(sourceName),
      ...merge,
    };
    const scheduleId = `cdc-tick-${suffix}`;
    const schedule = await t.client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '2s' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'cdcMerge',
        args: [mergeInput],
        taskQueue: base,
        workflowId: `cdc/${sourceName}/tick`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
    try {
      // The slot reaches the workload only through a scheduled run that caught up and completed.
      await eventually(
        async () => {
          const slot = await db.query<{ lsn: string }>(
            'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
            [cdcSlotName(sourceName)],
          );
          return parseLsn(slot.rows[0]!.lsn) >= target ? true : undefined;
        },
        60_000,
        'a scheduled run to merge the workload',
      );
      const runs = await eventually(
        async () => {
          const described = await schedule.describe();
          const done = [];
          for (const action of described.info.recentActions) {
            const handle = t.client.workflow.getHandle(
              action.action.workflow.workflowId,
              action.action.workflow.firstExecutionRunId,
            );
            if ((await handle.describe()).status.name === 'COMPLETED') done.push(handle);
          }
          return done.length >= 2 ? done : undefined;
        },
        60_000,
        'two completed scheduled runs',
      );
      const results = await Promise.all(runs.map((h) => h.result() as Promise<{ rowsMerged: number }>));
      if (recordHistories) {
        const history = await runs[0]!.fetchHistory();
        writeFileSync(
          path.join(REPO_ROOT, 'test/histories/cdc-merge-scheduled-run.json'),
          historyToJSON(history) + '\n',
        );
      }
      expect(results.reduce((n, r) => n + r.rowsMerged, 0)).toBeGreaterThanOrEqual(40 + 22 + 10);

      const py = await readWithPyiceberg(catalogRef, { table: icebergTable, orderBy: ['id'] });
      const expected = await db.query('SELECT id::text AS id, v, label FROM ticks ORDER BY ticks.id');
      expect(py.rows).toEqual(expected.rows);
    } finally {
      await schedule.delete();
    }
  }, 180_000);
});
