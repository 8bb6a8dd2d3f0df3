import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCdcTableMaintenance } from '../../client/pipelines.js';
import { desiredSchedule } from '../../client/schedules.js';
import { readWatermark, watermarkProperties } from '../../lib/cdc/collapse.js';
import { commitNewManifests } from '../../lib/iceberg/append.js';
import { currentSnapshot, newSnapshotId } from '../../lib/iceberg/metadata-json.js';
import { noChanges } from '../../lib/iceberg/table-update.js';
import { ScheduleConfig } from '../../schemas/stack-config.js';
import { readWithPyiceberg } from '../interop/engines.js';
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
