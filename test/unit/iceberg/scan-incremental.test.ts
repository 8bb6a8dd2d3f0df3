import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns, commitNewManifests, writeAddedManifest, writeDataFiles } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import { gt } from '../../../lib/iceberg/expressions.js';
import { newSnapshotId } from '../../../lib/iceberg/metadata-json.js';
import {
  IncrementalScanError,
  planIncrementalAppends,
  scanIncremental,
  snapshotsBetween,
  type IncrementalScanOptions,
} from '../../../lib/iceberg/scan.js';
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

const cols = (ids: number[]) =>
  new Map<number, unknown[]>([
    [1, ids.map(BigInt)],
    [2, ids.map((i) => `n${i}`)],
  ]);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('incremental append scans', () => {
  let temp: TempCatalog<LocalFileIO>;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-scan-incr-');
    ({ io, catalog } = temp);
    await catalog.createTable('db.t', { schema });
  });
  afterEach(() => temp.cleanup());

  async function ids(options: IncrementalScanOptions): Promise<bigint[]> {
    const { metadata } = await catalog.loadTable('db.t');
    const out: bigint[] = [];
    for await (const batch of scanIncremental(io, metadata, options)) out.push(...(batch.columns.get(1) as bigint[]));
    return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Commits a snapshot with the given operation that adds `ids` as data files (none for `replace`). */
  async function commitOperation(operation: 'overwrite' | 'delete' | 'replace', added: number[] = []) {
    const { metadata } = await catalog.loadTable('db.t');
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const files = added.length ? await writeDataFiles(io, metadata, { columns: cols(added) }) : [];
    const manifests = files.length ? [await writeAddedManifest(io, metadata, snapshotId, files, 'data')] : [];
    await commitNewManifests(catalog, io, 'db.t', { snapshotId, manifests, operation, changes: noChanges() });
    return snapshotId;
  }

  it('reads the rows appended after one snapshot up to another', async () => {
    const s1 = await appendColumns(catalog, io, 'db.t', { columns: cols(range(1, 10)) });
    const s2 = await appendColumns(catalog, io, 'db.t', { columns: cols(range(11, 20)) });
    const s3 = await appendColumns(catalog, io, 'db.t', { columns: cols(range(21, 30)) });
    const { metadata } = await catalog.loadTable('db.t');
    expect(snapshotsBetween(metadata, s1.snapshotId, s3.snapshotId).map((s) => s.snapshotId)).toEqual([
      s2.snapshotId,
      s3.snapshotId,
    ]);

    const tasks = await planIncrementalAppends(io, metadata, {
      fromSnapshotIdExclusive: s1.snapshotId,
      toSnapshotId: s3.snapshotId,
    });
    expect(tasks.map((t) => t.dataFile.filePath).sort()).toEqual(
      [...s2.dataFiles, ...s3.dataFiles].map((f) => f.filePath).sort(),
    );
    expect(await ids({ fromSnapshotIdExclusive: s1.snapshotId, toSnapshotId: s3.snapshotId })).toEqual(
      range(11, 30).map(BigInt),
    );
    expect(await ids({ fromSnapshotIdExclusive: s1.snapshotId, toSnapshotId: s2.snapshotId })).toEqual(
      range(11, 20).map(BigInt),
    );
    // `to` defaults to the current snapshot; an empty range reads nothing.
    expect(await ids({ fromSnapshotIdExclusive: s2.snapshotId })).toEqual(range(21, 30).map(BigInt));
    expect(await ids({ fromSnapshotIdExclusive: s3.snapshotId, toSnapshotId: s3.snapshotId })).toEqual([]);

    // A filter prunes the appended files by their metrics and filters the rows.
    const filtered = await planIncrementalAppends(io, metadata, {
      fromSnapshotIdExclusive: s1.snapshotId,
      filter: gt('id', 25),
    });
    expect(filtered.map((t) => t.dataFile.filePath)).toEqual(s3.dataFiles.map((f) => f.filePath));
    expect(await ids({ fromSnapshotIdExclusive: s1.snapshotId, filter: gt('id', 25) })).toEqual(
      range(26, 30).map(BigInt),
    );
  });

  it('refuses a starting snapshot that is not an ancestor', async () => {
    const s1 = await appendColumns(catalog, io, 'db.t', { columns: cols([1]) });
    const s2 = await appendColumns(catalog, io, 'db.t', { columns: cols([2]) });
    const { metadata } = await catalog.loadTable('db.t');
    const plan = (from: bigint, to: bigint) =>
      planIncrementalAppends(io, metadata, { fromSnapshotIdExclusive: from, toSnapshotId: to });
    // Backwards: s2 is a descendant of s1, not an ancestor.
    const backwards = await plan(s2.snapshotId, s1.snapshotId).catch((err: unknown) => err);
    expect(backwards).toBeInstanceOf(IncrementalScanError);
    expect(backwards).toMatchObject({
      reason: 'not-an-ancestor',
      fromSnapshotId: s2.snapshotId,
      toSnapshotId: s1.snapshotId,
      failureType: 'InvalidInput',
    });
    expect(String(backwards)).toContain(`snapshot ${s2.snapshotId} is not an ancestor of snapshot ${s1.snapshotId}`);
    await expect(plan(123n, s2.snapshotId)).rejects.toMatchObject({ reason: 'not-an-ancestor' });
    await expect(plan(s1.snapshotId, 456n)).rejects.toThrow(/has no snapshot 456/);
  });

  it('fails on an overwrite or delete in the range, naming the snapshot and operation', async () => {
    const s1 = await appendColumns(catalog, io, 'db.t', { columns: cols([1, 2]) });
    const overwrite = await commitOperation('overwrite', [3]);
    const s3 = await appendColumns(catalog, io, 'db.t', { columns: cols([4]) });
    const { metadata } = await catalog.loadTable('db.t');
    const failure = await planIncrementalAppends(io, metadata, {
      fromSnapshotIdExclusive: s1.snapshotId,
      toSnapshotId: s3.snapshotId,
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(IncrementalScanError);
    expect(failure).toMatchObject({ reason: 'non-append-snapshot', operation: 'overwrite', snapshotId: overwrite });
    expect(String(failure)).toMatch(new RegExp(`overwrite operation in snapshot ${overwrite}`));
    // Starting at the overwrite itself leaves only the append.
    expect(await ids({ fromSnapshotIdExclusive: overwrite })).toEqual([4n]);

    const deleted = await commitOperation('delete');
    await appendColumns(catalog, io, 'db.t', { columns: cols([5]) });
    await expect(ids({ fromSnapshotIdExclusive: s3.snapshotId })).rejects.toMatchObject({
      operation: 'delete',
      snapshotId: deleted,
    });
  });

  it('skips replace snapshots, which add no new rows', async () => {
    const s1 = await appendColumns(catalog, io, 'db.t', { columns: cols([1]) });
    await appendColumns(catalog, io, 'db.t', { columns: cols([2]) });
    await commitOperation('replace');
    await appendColumns(catalog, io, 'db.t', { columns: cols([3]) });
    expect(await ids({ fromSnapshotIdExclusive: s1.snapshotId })).toEqual([2n, 3n]);
  });
});
