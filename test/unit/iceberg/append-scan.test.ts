import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns, commitNewManifests, writeAddedManifest } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import { noChanges } from '../../../lib/iceberg/table-update.js';
import { newSnapshotId } from '../../../lib/iceberg/metadata-json.js';
import { writePositionDeleteFile } from '../../../lib/iceberg/parquet/index.js';
import { planFiles, scanTable } from '../../../lib/iceberg/scan.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';
import type { DataFile } from '../../../lib/iceberg/data-file.js';
import { TableWriteError } from '../../../lib/iceberg/errors.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
  ],
};

async function allRows(catalog: SqlCatalog, io: LocalFileIO, selector = {}) {
  const { metadata } = await catalog.loadTable('db.t');
  const rows: [bigint, string | null][] = [];
  for await (const batch of scanTable(io, metadata, selector)) {
    const ids = batch.columns.get(1)!;
    const names = batch.columns.get(2)!;
    for (let i = 0; i < batch.rowCount; i++) rows.push([ids[i] as bigint, names[i] as string | null]);
  }
  return rows.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

describe('append and scan', () => {
  let temp: TempCatalog;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-append-');
    ({ io, catalog } = temp);
  });
  afterEach(() => temp.cleanup());

  const cols = (ids: number[]) =>
    new Map<number, unknown[]>([
      [1, ids.map(BigInt)],
      [2, ids.map((i) => (i % 3 === 0 ? null : `n${i}`))],
    ]);

  it('appends to a bucketed table, splits files by partition, and reads every row back', async () => {
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }] });
    const first = await appendColumns(catalog, io, 'db.t', { columns: cols([1, 2, 3, 4, 5, 6, 7, 8]) });
    expect(first.sequenceNumber).toBe(1n);
    expect(first.dataFiles.length).toBeGreaterThan(1);
    expect(first.dataFiles.every((f) => f.filePath.includes('/data/id_bucket='))).toBe(true);
    expect(first.dataFiles.reduce((n, f) => n + f.recordCount, 0n)).toBe(8n);
    const second = await appendColumns(catalog, io, 'db.t', {
      columns: cols([9, 10]),
      snapshotProperties: { 'sluice.watermark': '0/16B3748' },
    });
    expect(second.sequenceNumber).toBe(2n);

    const rows = await allRows(catalog, io);
    expect(rows.map((r) => r[0])).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n]);
    expect(rows[2]).toEqual([3n, null]);
    expect(rows[3]).toEqual([4n, 'n4']);

    const { metadata } = await catalog.loadTable('db.t');
    const current = metadata.snapshots.at(-1)!;
    expect(current.summary).toMatchObject({
      operation: 'append',
      'added-records': '2',
      'total-records': '10',
      'sluice.watermark': '0/16B3748',
    });
    // Time travel: the first snapshot still reads its 8 rows.
    expect(await allRows(catalog, io, { snapshotId: first.snapshotId })).toHaveLength(8);
    expect(await allRows(catalog, io, { asOfTimestampMs: metadata.snapshotLog[0]!.timestampMs })).toHaveLength(8);
  });

  it('applies position deletes to data files with a lower or equal sequence number only', async () => {
    await catalog.createTable('db.t', { schema });
    const appended = await appendColumns(catalog, io, 'db.t', { columns: cols([1, 2, 3, 4]) });
    const target = appended.dataFiles[0]!.filePath;
    const written = await writePositionDeleteFile({ filePaths: [target, target], positions: [1n, 3n] });
    const { metadata } = await catalog.loadTable('db.t');
    const deletePath = `${metadata.location}/data/deletes-1.parquet`;
    await io.write(deletePath, written.bytes);
    const deleteFile: DataFile = {
      content: 'position-deletes',
      filePath: deletePath,
      fileFormat: 'PARQUET',
      partition: [],
      specId: 0,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      ...(written.referencedDataFile ? { referencedDataFile: written.referencedDataFile } : {}),
    };
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const manifest = await writeAddedManifest(io, metadata, snapshotId, [deleteFile], 'deletes');
    await commitNewManifests(catalog, io, 'db.t', {
      snapshotId,
      manifests: [manifest],
      operation: 'delete',
      changes: { ...noChanges(), addedPositionDeleteFiles: 1, addedPositionDeletes: 2n },
    });
    await appendColumns(catalog, io, 'db.t', { columns: cols([5]) });

    expect((await allRows(catalog, io)).map((r) => r[0])).toEqual([1n, 3n, 5n]);
    const tasks = await planFiles(io, (await catalog.loadTable('db.t')).metadata);
    const byPath = new Map(tasks.map((t) => [t.dataFile.filePath, t.positionDeletes.length]));
    expect(byPath.get(target)).toBe(1);
    // The file appended after the delete (higher sequence number) is not touched by it.
    expect([...byPath.values()].filter((n) => n === 0)).toHaveLength(1);
  });

  it('a write that does not fit the schema names the table, the file and the column, and commits nothing', async () => {
    await catalog.createTable('db.t', { schema });
    const before = (await catalog.loadTable('db.t')).metadataLocation;
    const wrongType = new Map<number, unknown[]>([
      [1, [1n, 2n]],
      [2, ['a', 42]],
    ]);
    const err = await appendColumns(catalog, io, 'db.t', { columns: wrongType }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TableWriteError);
    expect((err as TableWriteError).failureType).toBe('InvalidInput');
    expect((err as TableWriteError).message).toMatch(
      /cannot write to table file:\/\/.*\/db\/t, column "name" \(file file:\/\/.*\.parquet\)/,
    );
    expect((err as TableWriteError).message).toMatch(/input row 1/);
    const missingRequired = new Map<number, unknown[]>([[2, ['a']]]);
    await expect(appendColumns(catalog, io, 'db.t', { columns: missingRequired })).rejects.toThrow(/column "id"/);
    const nullKey = new Map<number, unknown[]>([[1, [null]]]);
    await expect(appendColumns(catalog, io, 'db.t', { columns: nullKey })).rejects.toThrow(TableWriteError);
    expect((await catalog.loadTable('db.t')).metadataLocation).toBe(before);
  });

  it('reads each delete file once per scan, however many data files it applies to', async () => {
    await catalog.createTable('db.t', { schema });
    const first = await appendColumns(catalog, io, 'db.t', { columns: cols([1, 2]) });
    const second = await appendColumns(catalog, io, 'db.t', { columns: cols([3, 4]) });
    const paths = [first.dataFiles[0]!.filePath, second.dataFiles[0]!.filePath];
    const written = await writePositionDeleteFile({ filePaths: paths, positions: [0n, 1n] });
    const { metadata } = await catalog.loadTable('db.t');
    const deletePath = `${metadata.location}/data/deletes-shared.parquet`;
    await io.write(deletePath, written.bytes);
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const manifest = await writeAddedManifest(
      io,
      metadata,
      snapshotId,
      [
        {
          content: 'position-deletes',
          filePath: deletePath,
          fileFormat: 'PARQUET',
          partition: [],
          specId: 0,
          recordCount: 2n,
          fileSizeInBytes: BigInt(written.bytes.length),
          ...written.metrics,
        },
      ],
      'deletes',
    );
    await commitNewManifests(catalog, io, 'db.t', {
      snapshotId,
      manifests: [manifest],
      operation: 'delete',
      changes: { ...noChanges(), addedPositionDeleteFiles: 1, addedPositionDeletes: 2n },
    });

    const reads = new Map<string, number>();
    const counting = Object.create(io) as LocalFileIO;
    counting.read = async (uri) => {
      reads.set(uri, (reads.get(uri) ?? 0) + 1);
      return io.read(uri);
    };
    const rows: bigint[] = [];
    for await (const b of scanTable(counting, (await catalog.loadTable('db.t')).metadata))
      rows.push(...(b.columns.get(1) as bigint[]));
    expect(rows.sort()).toEqual([2n, 3n]);
    expect(reads.get(deletePath)).toBe(1);
  });
});
