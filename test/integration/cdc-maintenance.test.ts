import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCdcTableMaintenance } from '../../client/pipelines.js';
import { desiredSchedule } from '../../client/schedules.js';
import { readWatermark, watermarkProperties } from '../../lib/cdc/collapse.js';
import { commitNewManifests } from '../../lib/iceberg/append.js';
import { currentSnapshot, newSnapshotId } from '../../lib/iceberg/metadata-json.js';
import { noChanges } from '../../lib/iceberg/table-update.js';
import { ScheduleConfig } from '../../schemas/stack-config.js';
import { readWithDuckdb, readWithPyiceberg } from '../interop/engines.js';
import { startCdcHarness, type CdcHarness } from './cdc-ops-harness.js';

// The per-table maintenance workflow against a table that a running merge keeps changing (real PostgreSQL,
// Temporal, file:// warehouse): it compacts when deletes or small files pass their thresholds, expires snapshots
// and removes orphan files, and the table still equals the source, before and after more merges.
let h: CdcHarness;
beforeAll(async () => {
  h = await startCdcHarness('cdc_maint');
});
afterAll(async () => {
  await h?.close();
});

describe('cdc-table-maintenance', () => {
  it('compacts a churned table by its thresholds, expires snapshots, removes orphans, and reports it', async () => {
    await h.db.query('CREATE TABLE m (id int PRIMARY KEY, n int NOT NULL)');
    await h.db.query('INSERT INTO m SELECT g, 0 FROM generate_series(1, 200) g');
    const { merge, icebergTable } = await h.onboard('mnt', 'm');
    for (let i = 1; i <= 5; i++) {
      await h.db.query(`UPDATE m SET n = ${i} WHERE id % 5 = ${i % 5}`);
      await h.caughtUp(merge);
    }
    await h.db.query('DELETE FROM m WHERE id > 180');
    await h.caughtUp(merge);
    // An orphan: a file nobody references, as a crashed writer leaves behind.
    const orphan = `${h.warehouse.warehouse}/${icebergTable.replaceAll('.', '/')}/data/orphan-from-a-crash.parquet`;
    await h.warehouse.io.write(orphan, 'not referenced');

    // A compaction that raced a merge commit leaves an older watermark on top (simulated here with an empty
    // snapshot); maintenance puts the newest one back after its own compaction.
    const before = (await h.warehouse.catalog.loadTable(icebergTable)).metadata;
    const newest = readWatermark(currentSnapshot(before)!.summary)!;
    await commitNewManifests(h.warehouse.catalog, h.warehouse.io, icebergTable, {
      snapshotId: newSnapshotId(before.snapshots.map((s) => s.snapshotId)),
      manifests: [],
      operation: 'append',
      changes: noChanges(),
      snapshotProperties: watermarkProperties(newest - 1n),
    });

    const handle = await startCdcTableMaintenance(
      h.t.client,
      {
        icebergTable,
        deletedRowsRatio: 0.2,
        smallFiles: 1000,
        expireOlderThanMs: 0,
        orphanOlderThanMs: 0,
        forceOrphanAge: true,
      },
      { taskQueue: h.base },
    );
    const report = await handle.result();
    await h.recordHistory('cdc-table-maintenance', handle);
    expect(report.before.deletedRatio).toBeGreaterThanOrEqual(0.2);
    expect(report.compactionReason).toMatch(/% of rows deleted/);
    expect(report.compaction?.rewrittenDataFiles).toBeGreaterThan(0);
    expect(report.after.deleteFiles).toBe(0);
    expect(report.after.deletedRecords).toBe(0);
    expect(report.after.dataFiles).toBeLessThan(report.before.dataFiles);
    expect(report.expiry.expiredSnapshots).toBeGreaterThan(0);
    expect(report.after.snapshots).toBe(1);
    expect(report.orphans.orphanFilesRemoved).toBeGreaterThanOrEqual(1);
    expect(await h.warehouse.io.exists(orphan)).toBe(false);
    const maintained = (await h.warehouse.catalog.loadTable(icebergTable)).metadata;
    expect(readWatermark(currentSnapshot(maintained)!.summary)).toBe(newest);
    const rows = async () => (await h.db.query('SELECT id, n FROM m ORDER BY id')).rows;
    expect((await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] })).rows).toEqual(
      await rows(),
    );

    // The merge goes on on the compacted table (its watermark survived), and a healthy table is left alone.
    await h.db.query('UPDATE m SET n = 99 WHERE id <= 3');
    await h.caughtUp(merge);
    expect((await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] })).rows).toEqual(
      await rows(),
    );
    const again = await (
      await startCdcTableMaintenance(h.t.client, { icebergTable, deletedRowsRatio: 0.5 }, { taskQueue: h.base })
    ).result();
    expect(again.compaction).toBeNull();
    expect(again.compactionReason).toMatch(/^not needed/);
  });

  it('compacts beside a merge that keeps committing, without pausing it, and the table still equals the source', async () => {
    await h.db.query('CREATE TABLE busy (id int PRIMARY KEY, n int NOT NULL)');
    await h.db.query('INSERT INTO busy SELECT g, 0 FROM generate_series(1, 3000) g');
    const { merge, icebergTable } = await h.onboard('busy', 'busy', { pollIntervalMs: 100, idleIntervalMs: 200 });
    // Churn first, so that every bucket has files with deletes to rewrite.
    for (let i = 1; i <= 3; i++) {
      await h.db.query(`UPDATE busy SET n = ${i} WHERE id % 3 = ${i % 3}`);
      await h.caughtUp(merge);
    }
    // A writer that keeps changing rows (updates, deletes, re-inserts) while maintenance runs.
    let writing = true;
    let round = 0;
    const writer = (async () => {
      while (writing) {
        round++;
        await h.db.query(`UPDATE busy SET n = n + 1 WHERE id % 7 = ${round % 7}`);
        await h.db.query(`DELETE FROM busy WHERE id % 97 = ${round % 97}`);
        await h.db.query(
          `INSERT INTO busy SELECT g, ${round} FROM generate_series(1, 3000) g WHERE g % 89 = ${round % 89} ` +
            'ON CONFLICT (id) DO UPDATE SET n = excluded.n',
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const compactions = [];
    try {
      // Maintenance runs while the merge keeps committing, until two of them have compacted.
      for (let run = 0; run < 6 && compactions.length < 2; run++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const handle = await startCdcTableMaintenance(
          h.t.client,
          { icebergTable, deletedRowsRatio: 0.01, smallFiles: 2, expireOlderThanMs: 60_000, retainLast: 5 },
          { taskQueue: h.base },
        );
        const report = await handle.result();
        if (report.compaction?.snapshotId) compactions.push(report.compaction);
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(compactions).toHaveLength(2);
    // The merge was never paused, and it kept going.
    const progress = await h.caughtUp(merge, 60_000);
    expect(progress.paused).toBe(false);
    const metadata = (await h.warehouse.catalog.loadTable(icebergTable)).metadata;
    // The compactions' snapshots did not set the watermark back.
    const head = readWatermark(currentSnapshot(metadata)!.summary)!;
    const replaces = metadata.snapshots.filter((s) => s.summary.operation === 'replace');
    expect(replaces.length).toBeGreaterThan(0);
    for (const s of replaces) expect(readWatermark(s.summary)! <= head).toBe(true);
    const source = (await h.db.query('SELECT id, n FROM busy ORDER BY id')).rows;
    expect((await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] })).rows).toEqual(source);
    expect((await readWithDuckdb({ catalog: h.catalogRef, table: icebergTable }, { orderBy: ['id'] })).rows).toEqual(
      source,
    );
  });

  it('runs on a Schedule from a temporal-dev.yml entry (docs/cdc-pipeline.md)', () => {
    const entry = ScheduleConfig.parse({
      id: 'cdc-maintenance-shop-orders',
      pipeline: 'cdc-table-maintenance',
      spec: { every: ['1h'] },
      input: { icebergTable: 'shop.public.orders' },
      overlap: 'SKIP',
    });
    const schedule = desiredSchedule(entry, 'sluice');
    expect(schedule.options.action).toMatchObject({ type: 'startWorkflow', workflowType: 'cdcTableMaintenance' });
    expect(schedule.input).toMatchObject({ icebergTable: 'shop.public.orders', deletedRowsRatio: 0.1 });
  });
});
