import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { RowLevelConflictError } from '../../../lib/iceberg/errors.js';
import * as x from '../../../lib/iceberg/expressions.js';
import { compactTable } from '../../../lib/iceberg/maintenance/index.js';
import { deleteWhere, InvalidOverwriteError, overwriteRows } from '../../../lib/iceberg/overwrite.js';
import { liveEntries, planFiles, scanTable } from '../../../lib/iceberg/scan.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import { upsertRows } from '../../../lib/iceberg/upsert.js';
import { currentSnapshot } from '../../../lib/iceberg/metadata-json.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'region', required: true, type: Types.string },
    { id: 3, name: 'qty', required: false, type: Types.int },
  ],
};

type Row = [bigint, string, number | null];

function columns(rows: readonly Row[]) {
  return new Map<number, unknown[]>([
    [1, rows.map((r) => r[0])],
    [2, rows.map((r) => r[1])],
    [3, rows.map((r) => r[2])],
  ]);
}

function rowsOf(n: number, from = 0): Row[] {
  return Array.from({ length: n }, (_, i): Row => {
    const id = from + i;
    return [BigInt(id), ['eu', 'us', 'ap'][id % 3]!, id % 7 === 0 ? null : id];
  });
}

const byId = (a: Row, b: Row) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

describe('copy-on-write deletes and overwrites', () => {
  let temp: TempCatalog;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-cow-');
    ({ io, catalog } = temp);
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'region', transform: 'identity' }] });
  });
  afterEach(() => temp.cleanup());

  async function tableRows(snapshotId?: bigint): Promise<Row[]> {
    const { metadata } = await catalog.loadTable('db.t');
    const out: Row[] = [];
    for await (const b of scanTable(io, metadata, snapshotId === undefined ? {} : { snapshotId })) {
      for (let i = 0; i < b.rowCount; i++) {
        out.push([
          b.columns.get(1)![i] as bigint,
          b.columns.get(2)![i] as string,
          b.columns.get(3)![i] as number | null,
        ]);
      }
    }
    return out.sort(byId);
  }

  async function liveFiles() {
    const { metadata } = await catalog.loadTable('db.t');
    const snap = currentSnapshot(metadata)!;
    return (await liveEntries(io, metadata, snap)).flatMap((m) => m.entries.map((e) => e.dataFile));
  }

  it('deletes matching rows by rewriting only the files that hold them, in one overwrite snapshot', async () => {
    // Two appends: 6 files (3 regions × 2).
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30, 100)) });
    const before = await liveFiles();
    expect(before).toHaveLength(6);
    const beforeSnapshot = currentSnapshot((await catalog.loadTable('db.t')).metadata)!.snapshotId;

    // Only 'us' rows with qty >= 20: the 'eu' and 'ap' files are pruned by partition, the first 'us' file (ids < 30)
    // is rewritten without ids 22 and 25; the second 'us' file (ids ≥ 100) is pruned by its id metrics.
    const result = await deleteWhere(catalog, io, 'db.t', {
      filter: x.and(x.eq('region', 'us'), x.gtEq('qty', 20), x.lt('id', 50)),
      snapshotProperties: { 'sluice.reason': 'gdpr' },
    });
    const expected = [...rowsOf(30), ...rowsOf(30, 100)]
      .filter((r) => !(r[1] === 'us' && r[2] !== null && r[2] >= 20 && r[0] < 50n))
      .sort(byId);
    expect(await tableRows()).toEqual(expected);
    expect(result.operation).toBe('overwrite');
    expect(result.deletedRows).toBe(2n); // ids 22 and 25 (id 28's qty is null)
    expect(result.removedDataFiles).toHaveLength(1);
    expect(result.rewrittenDataFiles).toEqual(result.removedDataFiles);
    expect(result.addedDataFiles).toHaveLength(1);

    const after = await liveFiles();
    const untouched = before.filter((f) => !result.removedDataFiles.includes(f.filePath)).map((f) => f.filePath);
    expect(after.map((f) => f.filePath).sort()).toEqual(
      [...untouched, ...result.addedDataFiles.map((f) => f.filePath)].sort(),
    );
    const { metadata } = await catalog.loadTable('db.t');
    const snap = currentSnapshot(metadata)!;
    expect(snap.summary).toMatchObject({
      operation: 'overwrite',
      'deleted-data-files': '1',
      'added-data-files': '1',
      'sluice.reason': 'gdpr',
      'total-records': String(expected.length),
      'total-data-files': '6',
    });
    // The old snapshot still reads the old rows: nothing was changed in place.
    expect(await tableRows(beforeSnapshot)).toHaveLength(60);
  });

  it('drops whole files without writing when every row matches, as a delete snapshot', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    const result = await deleteWhere(catalog, io, 'db.t', { filter: x.eq('region', 'ap') });
    expect(result.operation).toBe('delete');
    expect(result.addedDataFiles).toEqual([]);
    expect(result.rewrittenDataFiles).toEqual([]);
    expect(result.deletedRows).toBe(10n);
    expect(await tableRows()).toEqual(rowsOf(30).filter((r) => r[1] !== 'ap'));
    // A filter that matches nothing commits nothing.
    const none = await deleteWhere(catalog, io, 'db.t', { filter: x.gt('id', 1000) });
    expect(none.snapshotId).toBeUndefined();
  });

  it('keeps rows whose filter column is null (a comparison with null is false)', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    await deleteWhere(catalog, io, 'db.t', { filter: x.lt('qty', 1000) });
    expect(await tableRows()).toEqual(rowsOf(30).filter((r) => r[2] === null));
  });

  it('applies existing position deletes to rewritten files and drops delete files left without targets', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    // Merge-on-read deletes of ids 1 (us) and 3 (eu), and an update of 4 (us).
    await upsertRows(catalog, io, 'db.t', {
      ops: ['delete', 'delete', 'upsert'],
      columns: columns([
        [1n, 'us', 1],
        [3n, 'eu', 3],
        [4n, 'us', 444],
      ]),
    });
    const deleteFilesBefore = (await liveFiles()).filter((f) => f.content === 'position-deletes');
    expect(deleteFilesBefore).toHaveLength(2); // one per partition (us, eu)

    const result = await deleteWhere(catalog, io, 'db.t', { filter: x.eq('id', 6n) }); // an eu row
    // The eu file is rewritten without id 6 and without id 3 (deleted earlier): the eu delete file has no target left.
    const model = rowsOf(30)
      .filter((r) => r[0] !== 1n && r[0] !== 3n && r[0] !== 4n && r[0] !== 6n)
      .concat([[4n, 'us', 444]])
      .sort(byId);
    expect(await tableRows()).toEqual(model);
    expect(result.removedDeleteFiles).toHaveLength(1);
    const live = await liveFiles();
    expect(live.filter((f) => f.content === 'position-deletes')).toHaveLength(1);
    const rewritten = result.addedDataFiles[0]!;
    expect(rewritten.recordCount).toBe(8n); // 10 eu rows − id 3 (deleted before) − id 6
    const { metadata } = await catalog.loadTable('db.t');
    expect(currentSnapshot(metadata)!.summary).toMatchObject({
      'removed-position-delete-files': '1',
      'removed-delete-files': '1',
      'total-delete-files': '1',
    });
    // The remaining delete file still applies to the untouched us file.
    const tasks = await planFiles(io, metadata);
    expect(tasks.filter((t) => t.positionDeletes.length > 0)).toHaveLength(1);
  });

  it('overwrites the rows matching a filter with new rows, and refuses new rows outside the filter', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    const fresh: Row[] = [
      [1000n, 'eu', 1],
      [1001n, 'eu', 2],
    ];
    const result = await overwriteRows(catalog, io, 'db.t', {
      overwrite: { filter: x.eq('region', 'eu') },
      columns: columns(fresh),
      snapshotProperties: { 'sluice.watermark': '42' },
    });
    expect(result.operation).toBe('overwrite');
    expect(result.addedRows).toBe(2n);
    expect(await tableRows()).toEqual([...rowsOf(30).filter((r) => r[1] !== 'eu'), ...fresh].sort(byId));
    const { metadata } = await catalog.loadTable('db.t');
    expect(currentSnapshot(metadata)!.summary['sluice.watermark']).toBe('42');
    expect(metadata.snapshots).toHaveLength(2);

    const before = (await catalog.loadTable('db.t')).metadataLocation;
    const err = await overwriteRows(catalog, io, 'db.t', {
      overwrite: { filter: x.eq('region', 'eu') },
      columns: columns([[2000n, 'us', 1]]),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOverwriteError);
    expect((err as InvalidOverwriteError).failureType).toBe('InvalidInput');
    expect((await catalog.loadTable('db.t')).metadataLocation).toBe(before);
  });

  it('dynamic partition overwrite replaces exactly the partitions the new rows fall in', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    await upsertRows(catalog, io, 'db.t', { ops: ['delete'], columns: columns([[2n, 'ap', 2]]) });
    const fresh: Row[] = [
      [500n, 'ap', 5],
      [501n, 'new', 6],
    ];
    const result = await overwriteRows(catalog, io, 'db.t', {
      overwrite: { partitions: 'dynamic' },
      columns: columns(fresh),
    });
    expect(await tableRows()).toEqual([...rowsOf(30).filter((r) => r[1] !== 'ap'), ...fresh].sort(byId));
    expect(result.deletedRows).toBe(9n); // 10 ap rows, one already deleted
    expect(result.removedDeleteFiles).toHaveLength(1);
    expect((await liveFiles()).some((f) => f.content !== 'data')).toBe(false);
  });

  it('works after compaction and on an empty table', async () => {
    const onEmpty = await deleteWhere(catalog, io, 'db.t', { filter: x.eq('id', 1n) });
    expect(onEmpty.snapshotId).toBeUndefined();
    const first = await overwriteRows(catalog, io, 'db.t', {
      overwrite: { partitions: 'dynamic' },
      columns: columns(rowsOf(6)),
    });
    expect(first.operation).toBe('overwrite');
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(6, 10)) });
    await compactTable(catalog, io, 'db.t', { minInputFiles: 2 });
    await deleteWhere(catalog, io, 'db.t', { filter: x.isIn('id', [0n, 11n]) });
    expect(await tableRows()).toEqual(
      [...rowsOf(6), ...rowsOf(6, 10)].filter((r) => r[0] !== 0n && r[0] !== 11n).sort(byId),
    );
  });

  it('a concurrent delete of rows in a file being rewritten forces a redo; out of retries it is a typed conflict', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(30)) });
    // The CoW delete stalls on its first file write until a merge-on-read delete of the same file has committed.
    let stalls = 0;
    let maxStalls = 1;
    let nextId = 1n; // us rows, in the same data file as the CoW targets
    const stalledIo = Object.create(io) as LocalFileIO;
    stalledIo.write = async (uri, bytes) => {
      if (uri.endsWith('.parquet') && stalls < maxStalls) {
        stalls++;
        nextId += 3n;
        await upsertRows(catalog, io, 'db.t', {
          ops: ['delete'],
          columns: columns([[nextId, 'us', 0]]),
        });
      }
      return io.write(uri, bytes);
    };
    // One conflict, then the redo on fresh state lands; both deletes are kept.
    const result = await deleteWhere(catalog, stalledIo, 'db.t', { filter: x.eq('id', 10n) });
    expect(result.conflictRetries).toBe(1);
    expect(await tableRows()).toEqual(rowsOf(30).filter((r) => r[0] !== 4n && r[0] !== 10n));

    // Every try loses: a typed, retryable conflict, and nothing of the failed write is left on disk.
    stalls = 0;
    maxStalls = 100;
    nextId = 13n; // the racing upserts delete 16 and 19
    const filesBefore = listFiles(temp.dir);
    const err = await deleteWhere(catalog, stalledIo, 'db.t', {
      filter: x.eq('id', 22n),
      maxConflictRetries: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowLevelConflictError);
    expect((err as RowLevelConflictError).failureType).toBe('CommitConflict');
    expect(stalls).toBe(2);
    const model = rowsOf(30).filter((r) => ![4n, 10n, 16n, 19n].includes(r[0]));
    expect(await tableRows()).toEqual(model);
    // Only the two concurrent upserts' files (a delete file, its manifest, a manifest list and a metadata file
    // each) are new; the CoW tries left nothing behind.
    const added = listFiles(temp.dir).filter((f) => !filesBefore.includes(f));
    expect(added.filter((f) => f.endsWith('.parquet'))).toHaveLength(2);
    expect(added).toHaveLength(8);
  });

  it('serializable isolation: a concurrent append of rows the filter covers is a conflict; snapshot isolation lets it in', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(rowsOf(9)) });
    let appended = false;
    const racingIo = Object.create(io) as LocalFileIO;
    racingIo.write = async (uri, bytes) => {
      if (uri.endsWith('.parquet') && !appended) {
        appended = true;
        await appendColumns(catalog, io, 'db.t', { columns: columns([[3n, 'us', 5]]) });
      }
      return io.write(uri, bytes);
    };
    const err = await deleteWhere(catalog, racingIo, 'db.t', {
      filter: x.and(x.eq('region', 'us'), x.lt('id', 5n)),
      maxConflictRetries: 0,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowLevelConflictError);

    appended = false;
    await appendColumns(catalog, io, 'db.t', { columns: columns([[901n, 'us', 6]]) });
    const racing2 = Object.create(io) as LocalFileIO;
    racing2.write = async (uri, bytes) => {
      if (uri.endsWith('.parquet') && !appended) {
        appended = true;
        await appendColumns(catalog, io, 'db.t', { columns: columns([[2n, 'us', 7]]) });
      }
      return io.write(uri, bytes);
    };
    const ok = await deleteWhere(catalog, racing2, 'db.t', {
      filter: x.and(x.eq('region', 'us'), x.lt('id', 5n)),
      isolation: 'snapshot',
      maxConflictRetries: 0,
    });
    expect(ok.conflictRetries).toBe(0);
    const us = (await tableRows()).filter((r) => r[1] === 'us').map((r) => r[0]);
    // The racing row (id 2) landed after the delete planned, so snapshot isolation keeps it.
    expect(us).toEqual([2n, 7n, 901n]);
  });
});

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && !entry.name.startsWith('catalog.db')) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}
