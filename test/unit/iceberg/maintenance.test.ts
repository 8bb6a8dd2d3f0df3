import { utimesSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns, commitNewManifests, writeAddedManifest } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import type { DataFile } from '../../../lib/iceberg/data-file.js';
import {
  compactTable,
  expireSnapshots,
  removeOrphanFiles,
  rewriteManifests,
  UnsafeOrphanThresholdError,
  type MaintenanceCatalog,
} from '../../../lib/iceberg/maintenance/index.js';
import { readManifestList } from '../../../lib/iceberg/manifest-list.js';
import { currentSnapshot, newSnapshotId, type TableMetadata } from '../../../lib/iceberg/metadata-json.js';
import { writeParquetDataFile, writePositionDeleteFile } from '../../../lib/iceberg/parquet/index.js';
import { planFiles, scanTable, type SnapshotSelector } from '../../../lib/iceberg/scan.js';
import { noChanges } from '../../../lib/iceberg/table-update.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
  ],
};

const DAY_MS = 24 * 60 * 60 * 1000;

describe('table maintenance', () => {
  let temp: TempCatalog<LocalFileIO>;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-maintenance-');
    ({ io, catalog } = temp);
  });
  afterEach(() => temp.cleanup());

  const cols = (ids: number[]) =>
    new Map<number, unknown[]>([
      [1, ids.map(BigInt)],
      [2, ids.map((i) => (i % 3 === 0 ? null : `n${i}`))],
    ]);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const load = async () => (await catalog.loadTable('db.t')).metadata;

  async function rows(selector: SnapshotSelector = {}): Promise<[bigint, string | null][]> {
    const out: [bigint, string | null][] = [];
    for await (const batch of scanTable(io, await load(), selector)) {
      const ids = batch.columns.get(1)!;
      const names = batch.columns.get(2)!;
      for (let i = 0; i < batch.rowCount; i++) out.push([ids[i] as bigint, names[i] as string | null]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  const expectedRows = (ids: number[]) =>
    ids.map((i) => [BigInt(i), i % 3 === 0 ? null : `n${i}`] as [bigint, string | null]);

  async function commitDeleteFile(file: DataFile): Promise<void> {
    const metadata = await load();
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const manifest = await writeAddedManifest(io, metadata, snapshotId, [file], 'deletes');
    const positional = file.content === 'position-deletes';
    await commitNewManifests(catalog, io, 'db.t', {
      snapshotId,
      manifests: [manifest],
      operation: 'delete',
      changes: {
        ...noChanges(),
        ...(positional
          ? { addedPositionDeleteFiles: 1, addedPositionDeletes: file.recordCount }
          : { addedEqualityDeleteFiles: 1, addedEqualityDeletes: file.recordCount }),
        addedFilesSize: file.fileSizeInBytes,
      },
    });
  }

  /** Commits one position-delete file for `[data file, position]` pairs (of an unpartitioned table). */
  async function deleteRows(rowsToDelete: [string, bigint][]): Promise<string> {
    const written = await writePositionDeleteFile({
      filePaths: rowsToDelete.map(([file]) => file),
      positions: rowsToDelete.map(([, pos]) => pos),
    });
    const deletePath = `${(await load()).location}/data/pos-deletes-${newSnapshotId()}.parquet`;
    await io.write(deletePath, written.bytes);
    await commitDeleteFile({
      content: 'position-deletes',
      filePath: deletePath,
      fileFormat: 'PARQUET',
      partition: [],
      specId: 0,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      ...(written.referencedDataFile ? { referencedDataFile: written.referencedDataFile } : {}),
    });
    return deletePath;
  }

  const deletePositions = (target: string, positions: bigint[]) => deleteRows(positions.map((pos) => [target, pos]));

  /** Commits an equality delete on `id` (unpartitioned, so it applies to every older data file). */
  async function deleteIds(ids: number[]): Promise<string> {
    const written = await writeParquetDataFile({
      schema: { fields: [schema.fields[0]!] },
      columns: new Map([[1, ids.map(BigInt)]]),
    });
    const deletePath = `${(await load()).location}/data/eq-deletes-${newSnapshotId()}.parquet`;
    await io.write(deletePath, written.bytes);
    await commitDeleteFile({
      content: 'equality-deletes',
      filePath: deletePath,
      fileFormat: 'PARQUET',
      partition: [],
      specId: 0,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      equalityIds: [1],
      ...written.metrics,
    });
    return deletePath;
  }

  /** Every file under the table location, as URIs. */
  async function listFiles(): Promise<Set<string>> {
    const files = new Set<string>();
    for await (const file of io.list(`${(await load()).location}/`)) files.add(file.uri);
    return files;
  }

  /**
   * A catalog whose commit runs `race` after the operation's first attempt has built its metadata and before
   * that attempt's compare-and-swap: exactly the window in which a concurrent writer can win.
   */
  function racingCatalog(race: () => Promise<void>): MaintenanceCatalog {
    return {
      loadTable: (table) => catalog.loadTable(table),
      commitWithRetry: (table, update, options) =>
        catalog.commitWithRetry(
          table,
          async (current, attempt) => {
            const next = await update(current, attempt);
            if (attempt.attempt === 1) await race();
            return next;
          },
          { ...options, minWaitMs: 1, maxWaitMs: 5 },
        ),
    };
  }

  async function appendBatches(batches: number[][]): Promise<bigint[]> {
    const ids: bigint[] = [];
    for (const batch of batches)
      ids.push((await appendColumns(catalog, io, 'db.t', { columns: cols(batch) })).snapshotId);
    return ids;
  }

  describe('compactTable', () => {
    it('merges small files, rewrites files with deletes, drops the deletes, and keeps rows and time travel', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 10), range(11, 20), range(21, 30), range(31, 40)]);
      const tasks = await planFiles(io, await load());
      const first = tasks.find((t) => t.dataFile.recordCount === 10n && t.dataFile.filePath.includes('/data/'))!;
      await deletePositions(first.dataFile.filePath, [0n, 5n]);
      await deleteIds([25, 26]);
      const before = await rows();
      const beforeSnapshot = (await load()).currentSnapshotId!;
      expect(before).toHaveLength(36);
      const plannedBefore = await planFiles(io, await load());
      expect(plannedBefore).toHaveLength(4);
      expect(plannedBefore.some((t) => t.positionDeletes.length > 0)).toBe(true);

      const result = await compactTable(catalog, io, 'db.t', { minInputFiles: 2 });

      expect(result.snapshotId).toBeDefined();
      expect(result.rewrittenDataFiles).toHaveLength(4);
      expect(result.addedDataFiles).toHaveLength(1);
      expect(result.removedDeleteFiles).toHaveLength(2);
      expect(result.rewrittenRows).toBe(36n);
      expect(await rows()).toEqual(before);
      const metadata = await load();
      const planned = await planFiles(io, metadata);
      expect(planned).toHaveLength(1);
      expect(planned[0]!.positionDeletes).toHaveLength(0);
      expect(planned[0]!.equalityDeletes).toHaveLength(0);
      // The new file keeps the starting snapshot's data sequence number; the commit itself got the next one.
      expect(planned[0]!.dataSequenceNumber).toBe(result.dataSequenceNumber);
      expect(result.sequenceNumber).toBe(result.dataSequenceNumber! + 1n);
      expect(currentSnapshot(metadata)!.summary).toMatchObject({
        operation: 'replace',
        'deleted-data-files': '4',
        'added-data-files': '1',
        'removed-delete-files': '2',
        'total-data-files': '1',
        'total-delete-files': '0',
        'total-records': '36',
      });
      // Time travel: the snapshot before the compaction, and the very first one, still read as they did.
      expect(await rows({ snapshotId: beforeSnapshot })).toEqual(before);
      expect(await rows({ snapshotId: metadata.snapshots[0]!.snapshotId })).toEqual(expectedRows(range(1, 10)));
      // Nothing left to do: a second run commits nothing.
      expect((await compactTable(catalog, io, 'db.t', { minInputFiles: 2 })).snapshotId).toBeUndefined();
    });

    it('drops manifests that only record earlier removals on the next compaction', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 3), range(4, 6)]);
      const first = await compactTable(catalog, io, 'db.t', { minInputFiles: 2 });
      const manifestsOf = async () =>
        readManifestList(await io.read(currentSnapshot(await load())!.manifestList)).manifests;
      // The compaction's own snapshot keeps the rewritten manifests: they record what it removed.
      expect((await manifestsOf()).filter((m) => m.addedFilesCount === 0 && m.existingFilesCount === 0)).toHaveLength(
        2,
      );
      await appendBatches([range(7, 9)]);
      const second = await compactTable(catalog, io, 'db.t', { minInputFiles: 2 });
      const manifests = await manifestsOf();
      const withoutLiveFiles = manifests.filter((m) => m.addedFilesCount === 0 && m.existingFilesCount === 0);
      expect(withoutLiveFiles.every((m) => m.addedSnapshotId === second.snapshotId)).toBe(true);
      expect(manifests.some((m) => m.addedSnapshotId === first.snapshotId)).toBe(false);
      expect(await rows()).toEqual(expectedRows(range(1, 9)));
    });

    it('compacts each partition of a partitioned table separately', async () => {
      await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[3]' }] });
      await appendBatches([range(1, 12), range(13, 24), range(25, 36)]);
      const before = await rows();
      const filesBefore = await planFiles(io, await load());
      const partitions = new Set(filesBefore.map((t) => JSON.stringify(t.dataFile.partition)));
      expect(filesBefore.length).toBe(partitions.size * 3);

      const result = await compactTable(catalog, io, 'db.t', { minInputFiles: 3 });

      expect(result.rewrittenPartitions).toBe(partitions.size);
      const after = await planFiles(io, await load());
      expect(after).toHaveLength(partitions.size);
      expect(new Set(after.map((t) => JSON.stringify(t.dataFile.partition)))).toEqual(partitions);
      expect(after.every((t) => t.dataFile.filePath.includes('/data/id_bucket='))).toBe(true);
      expect(await rows()).toEqual(before);
    });

    it('leaves partitions below minInputFiles alone', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 3), range(4, 6)]);
      const result = await compactTable(catalog, io, 'db.t', { minInputFiles: 3 });
      expect(result.snapshotId).toBeUndefined();
      expect(await planFiles(io, await load())).toHaveLength(2);
    });

    it('keeps an append that commits while the compaction is committing', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 5), range(6, 10), range(11, 15)]);
      const before = await rows();
      let appended: string[] = [];
      const racing = racingCatalog(async () => {
        appended = (await appendColumns(catalog, io, 'db.t', { columns: cols(range(100, 104)) })).dataFiles.map(
          (f) => f.filePath,
        );
      });

      const result = await compactTable(racing, io, 'db.t', { minInputFiles: 2 });

      expect(result.attempts).toBe(2);
      expect(await rows()).toEqual([...before, ...expectedRows(range(100, 104))]);
      const live = (await planFiles(io, await load())).map((t) => t.dataFile.filePath);
      expect(live).toEqual(expect.arrayContaining(appended));
      expect(live).toHaveLength(2);
      // The manifest list of the attempt that lost the race was cleaned up.
      const lists = [...(await listFiles())].filter((f) => f.includes(`/snap-${result.snapshotId}-`));
      expect(lists).toHaveLength(1);
    });

    it('carries a position delete that lands on a file it rewrites over to the new file, and loses no delete', async () => {
      await catalog.createTable('db.t', { schema });
      const first = await appendColumns(catalog, io, 'db.t', { columns: cols(range(1, 5)) });
      const second = await appendColumns(catalog, io, 'db.t', { columns: cols(range(6, 10)) });
      const target = first.dataFiles[0]!.filePath;
      const other = second.dataFiles[0]!.filePath;
      const filesBefore = await listFiles();
      let deletePath = '';
      // One delete file for two data files: no referenced_data_file, so the commit must look inside it.
      const racing = racingCatalog(async () => {
        deletePath = await deleteRows([
          [target, 1n],
          [other, 0n],
        ]);
      });

      const result = await compactTable(racing, io, 'db.t', { minInputFiles: 2 });

      expect(result.attempts).toBe(2);
      // Ids 2 and 6 stay deleted: the commit added a position delete for their rows in the new file.
      expect(await rows()).toEqual(expectedRows([1, 3, 4, 5, 7, 8, 9, 10]));
      expect(result.rebasedFrom).toEqual([deletePath]);
      expect(result.rebasedDeletes).toBe(2n);
      expect(result.rebasedDeleteFiles).toHaveLength(1);
      expect(result.rebasedDeleteFiles[0]!.referencedDataFile).toBe(result.addedDataFiles[0]!.filePath);
      // The concurrent delete file named only rewritten files, so it is gone from the table.
      expect(result.removedDeleteFiles).toContain(deletePath);
      const planned = await planFiles(io, await load());
      expect(planned.map((t) => t.dataFile.filePath)).toEqual([result.addedDataFiles[0]!.filePath]);
      expect(planned[0]!.positionDeletes.map((d) => d.filePath)).toEqual([result.rebasedDeleteFiles[0]!.filePath]);
      expect(currentSnapshot(await load())!.summary).toMatchObject({
        operation: 'replace',
        'added-position-deletes': '2',
        'total-records': '10',
      });
      // The first attempt's rebased files (none: the delete came after its build), manifests and list were
      // cleaned up; what is left new is the delete commit's files and the compaction's own.
      const newParquet = [...(await listFiles())].filter((f) => !filesBefore.has(f) && f.endsWith('.parquet'));
      expect(newParquet.sort()).toEqual(
        [deletePath, result.addedDataFiles[0]!.filePath, result.rebasedDeleteFiles[0]!.filePath].sort(),
      );
    });

    it('keeps applying an equality delete committed while the compaction is committing', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 5), range(6, 10)]);
      const racing = racingCatalog(async () => {
        await deleteIds([3, 7]);
      });

      const result = await compactTable(racing, io, 'db.t', { minInputFiles: 2 });

      expect(result.attempts).toBe(2);
      expect(await rows()).toEqual(expectedRows([1, 2, 4, 5, 6, 8, 9, 10]));
      const planned = await planFiles(io, await load());
      expect(planned).toHaveLength(1);
      // The delete outlives the compaction and still applies to the rewritten file (lower sequence number).
      expect(planned[0]!.equalityDeletes).toHaveLength(1);
    });
  });

  describe('expireSnapshots', () => {
    it('expires old snapshots, keeps the current one, and deletes exactly the unreachable files', async () => {
      await catalog.createTable('db.t', { schema });
      const appended = await appendBatches([range(1, 4), range(5, 8), range(9, 12)]);
      await compactTable(catalog, io, 'db.t', { minInputFiles: 2 });
      const before = await rows();
      const current = (await load()).currentSnapshotId!;
      const filesBefore = await listFiles();

      const dry = await expireSnapshots(catalog, io, 'db.t', { olderThanMs: Date.now() + 1, dryRun: true });
      expect(dry.expiredSnapshotIds.sort()).toEqual([...appended].sort());
      expect(await listFiles()).toEqual(filesBefore);
      expect((await load()).snapshots).toHaveLength(4);

      const result = await expireSnapshots(catalog, io, 'db.t', { olderThanMs: Date.now() + 1 });

      expect(result.expiredSnapshotIds.sort()).toEqual([...appended].sort());
      expect(result.files).toEqual(dry.files);
      const metadata = await load();
      expect(metadata.snapshots.map((s) => s.snapshotId)).toEqual([current]);
      expect(metadata.snapshotLog.map((e) => e.snapshotId)).toEqual([current]);
      expect(await rows()).toEqual(before);
      const filesAfter = await listFiles();
      const gone = [...filesBefore].filter((f) => !filesAfter.has(f)).sort();
      const reported = Object.values(result.files).flat().sort();
      expect(gone).toEqual(reported);
      expect(result.files.manifestLists).toHaveLength(3);
      expect(result.files.dataFiles).toHaveLength(3);
      // Everything the current snapshot reaches is still there.
      const list = currentSnapshot(metadata)!.manifestList;
      expect(filesAfter.has(list)).toBe(true);
      for (const m of readManifestList(await io.read(list)).manifests)
        expect(filesAfter.has(m.manifestPath)).toBe(true);
      for (const t of await planFiles(io, metadata)) expect(filesAfter.has(t.dataFile.filePath)).toBe(true);
      await expect(rows({ snapshotId: appended[0]! })).rejects.toThrow(/no snapshot/);
    });

    it('honours retainLast, the age default, tags and dry runs', async () => {
      await catalog.createTable('db.t', { schema });
      const [s1, s2, s3] = await appendBatches([range(1, 2), range(3, 4), range(5, 6)]);
      // Nothing is 5 days old: the default policy expires nothing.
      expect((await expireSnapshots(catalog, io, 'db.t')).expiredSnapshotIds).toEqual([]);
      // A tag keeps its snapshot (and the files it reaches) alive.
      await catalog.commitWithRetry('db.t', (m: TableMetadata) => ({
        ...m,
        refs: { ...m.refs, audit: { snapshotId: s1!, type: 'tag' } },
      }));
      const result = await expireSnapshots(catalog, io, 'db.t', { olderThanMs: Date.now() + 1, retainLast: 2 });
      expect(result.expiredSnapshotIds).toEqual([]);
      const metadata = await load();
      expect(metadata.snapshots.map((s) => s.snapshotId)).toEqual([s1, s2, s3]);
      // A tag past its max-ref-age goes, and then its snapshot with it.
      await catalog.commitWithRetry('db.t', (m: TableMetadata) => ({
        ...m,
        refs: { ...m.refs, audit: { snapshotId: s1!, type: 'tag', maxRefAgeMs: 1n } },
      }));
      const later = await expireSnapshots(catalog, io, 'db.t', {
        olderThanMs: Date.now() + 1,
        retainLast: 2,
        nowMs: Date.now() + 1000,
      });
      expect(later.removedRefs).toEqual(['audit']);
      expect(later.expiredSnapshotIds).toEqual([s1]);
      expect(later.files.dataFiles).toEqual([]); // s1's file is still live in s2 and s3
      expect(await rows()).toEqual(expectedRows(range(1, 6)));
    });
  });

  describe('removeOrphanFiles', () => {
    it('deletes old unreferenced files and keeps fresh ones and every referenced file', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 4), range(5, 8)]);
      await compactTable(catalog, io, 'db.t', { minInputFiles: 2 });
      const location = (await load()).location;
      const toPath = (uri: string) => uri.slice('file://'.length);
      const old = new Date(Date.now() - 4 * DAY_MS);
      const orphan = `${location}/data/failed-write.parquet`;
      const fresh = `${location}/data/in-flight.parquet`;
      writeFileSync(toPath(orphan), 'x');
      // Every file is old, referenced or not: only references may keep them.
      for (const uri of await listFiles()) utimesSync(toPath(uri), old, old);
      writeFileSync(toPath(fresh), 'y');
      const referenced = [...(await listFiles())].filter((f) => f !== orphan && f !== fresh);
      const before = await rows();

      const dry = await removeOrphanFiles(catalog, io, 'db.t', { dryRun: true });
      expect(dry.orphanFiles).toEqual([orphan]);
      expect((await listFiles()).has(orphan)).toBe(true);

      const result = await removeOrphanFiles(catalog, io, 'db.t');

      expect(result.orphanFiles).toEqual([orphan]);
      expect(result.recentUnreferencedFiles).toEqual([fresh]);
      const after = await listFiles();
      expect(after.has(orphan)).toBe(false);
      expect(after.has(fresh)).toBe(true);
      for (const f of referenced) expect(after.has(f)).toBe(true);
      expect(await rows()).toEqual(before);
      // Time travel to the pre-compaction snapshots still works: their files were referenced.
      expect(await rows({ snapshotId: (await load()).snapshots[0]!.snapshotId })).toEqual(expectedRows(range(1, 4)));
    });

    it('refuses thresholds under an hour unless forced', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 2)]);
      const error = await removeOrphanFiles(catalog, io, 'db.t', { olderThanMs: 60_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsafeOrphanThresholdError);
      expect((error as Error).message).toMatch(/in flight/);
      const forced = await removeOrphanFiles(catalog, io, 'db.t', { olderThanMs: 0, force: true });
      expect(forced.orphanFiles).toEqual([]);
      expect(await rows()).toEqual(expectedRows(range(1, 2)));
    });
  });

  describe('rewriteManifests', () => {
    it('merges small manifests into one and keeps rows, sequence numbers and deletes', async () => {
      await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[2]' }] });
      await appendBatches([range(1, 3), range(4, 6), range(7, 9), range(10, 12)]);
      const beforeTasks = await planFiles(io, await load());
      const seqBefore = new Map(beforeTasks.map((t) => [t.dataFile.filePath, t.dataSequenceNumber]));
      const before = await rows();
      const manifestsBefore = readManifestList(await io.read(currentSnapshot(await load())!.manifestList)).manifests;
      expect(manifestsBefore).toHaveLength(4);

      const result = await rewriteManifests(catalog, io, 'db.t');

      expect(result.replacedManifests).toHaveLength(4);
      expect(result.addedManifests).toHaveLength(1);
      const metadata = await load();
      const manifestsAfter = readManifestList(await io.read(currentSnapshot(metadata)!.manifestList)).manifests;
      expect(manifestsAfter).toHaveLength(1);
      expect(manifestsAfter[0]!.existingFilesCount).toBe(beforeTasks.length);
      expect(currentSnapshot(metadata)!.summary).toMatchObject({
        operation: 'replace',
        'manifests-created': '1',
        'manifests-replaced': '4',
        'total-records': '12',
      });
      expect(await rows()).toEqual(before);
      const afterTasks = await planFiles(io, metadata);
      expect(new Map(afterTasks.map((t) => [t.dataFile.filePath, t.dataSequenceNumber]))).toEqual(seqBefore);
    });

    it('carries an append that commits while it is committing', async () => {
      await catalog.createTable('db.t', { schema });
      await appendBatches([range(1, 3), range(4, 6), range(7, 9)]);
      const racing = racingCatalog(async () => {
        await appendColumns(catalog, io, 'db.t', { columns: cols([50]) });
      });
      const result = await rewriteManifests(racing, io, 'db.t');
      expect(result.attempts).toBe(2);
      expect(await rows()).toEqual(expectedRows([...range(1, 9), 50]));
      const manifests = readManifestList(await io.read(currentSnapshot(await load())!.manifestList)).manifests;
      expect(manifests).toHaveLength(2);
    });
  });
});
