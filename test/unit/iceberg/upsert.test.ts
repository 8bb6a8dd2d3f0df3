import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import { scanTable } from '../../../lib/iceberg/scan.js';
import { InvalidChangesError, KeyIndexCache, upsertRows, type ChangeOp } from '../../../lib/iceberg/upsert.js';
import { RowLevelConflictError } from '../../../lib/iceberg/errors.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { TableMetadata } from '../../../lib/iceberg/metadata-json.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
    { id: 3, name: 'qty', required: false, type: Types.int },
  ],
};

type Row = { name: string | null; qty: number | null };

function changes(list: [ChangeOp, number, string | null, number | null][]) {
  return {
    ops: list.map((c) => c[0]),
    columns: new Map<number, unknown[]>([
      [1, list.map((c) => BigInt(c[1]))],
      [2, list.map((c) => c[2])],
      [3, list.map((c) => c[3])],
    ]),
  };
}

describe('upsert with position deletes', () => {
  let temp: TempCatalog;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-upsert-');
    ({ io, catalog } = temp);
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }] });
  });
  afterEach(() => temp.cleanup());

  async function tableRows(): Promise<Map<bigint, Row>> {
    const { metadata } = await catalog.loadTable('db.t');
    const out = new Map<bigint, Row>();
    for await (const b of scanTable(io, metadata)) {
      for (let i = 0; i < b.rowCount; i++) {
        const id = b.columns.get(1)![i] as bigint;
        expect(out.has(id), `duplicate live row for key ${id}`).toBe(false);
        out.set(id, { name: b.columns.get(2)![i] as string | null, qty: b.columns.get(3)![i] as number | null });
      }
    }
    return out;
  }

  it('turns updates and deletes into position deletes plus inserts, matching a reference model over several rounds', async () => {
    const model = new Map<bigint, Row>();
    const apply = (list: [ChangeOp, number, string | null, number | null][]) => {
      for (const [op, id, name, qty] of list) {
        if (op === 'delete') model.delete(BigInt(id));
        else model.set(BigInt(id), { name, qty });
      }
    };
    const initial: [ChangeOp, number, string | null, number | null][] = Array.from({ length: 40 }, (_, i) => [
      'upsert',
      i,
      `v0-${i}`,
      i,
    ]);
    await appendColumns(catalog, io, 'db.t', changes(initial));
    apply(initial);
    const cache = new KeyIndexCache();
    for (let round = 1; round <= 4; round++) {
      const batch: [ChangeOp, number, string | null, number | null][] = [];
      for (let i = round; i < 50; i += 3)
        batch.push(i % 2 ? ['upsert', i, `v${round}-${i}`, i * round] : ['delete', i, null, null]);
      batch.push(['upsert', 7, 'first', 1], ['upsert', 7, 'second', 2]); // the last change per key wins
      const result = await upsertRows(catalog, io, 'db.t', {
        ...changes(batch),
        keyIndex: cache,
        snapshotProperties: { 'sluice.round': String(round) },
      });
      apply(batch);
      expect(result.snapshotId).toBeDefined();
      expect(result.deleteFiles.every((f) => f.content === 'position-deletes')).toBe(true);
      expect(await tableRows()).toEqual(model);
    }
    const { metadata } = await catalog.loadTable('db.t');
    const last = metadata.snapshots.at(-1)!;
    expect(last.summary.operation).toBe('overwrite');
    expect(last.summary['sluice.round']).toBe('4');
    expect(last.summary['total-records']).toBeDefined();
  });

  it('counts inserts, updates, deletes and deletes of missing keys', async () => {
    await appendColumns(
      catalog,
      io,
      'db.t',
      changes([
        ['upsert', 1, 'a', 1],
        ['upsert', 2, 'b', 2],
      ]),
    );
    const r = await upsertRows(
      catalog,
      io,
      'db.t',
      changes([
        ['upsert', 1, 'a2', 10],
        ['upsert', 3, 'c', 3],
        ['delete', 2, null, null],
        ['delete', 99, null, null],
      ]),
    );
    expect(r).toMatchObject({ inserted: 1, updated: 1, deleted: 1, missingDeletes: 1 });
    expect(await tableRows()).toEqual(
      new Map([
        [1n, { name: 'a2', qty: 10 }],
        [3n, { name: 'c', qty: 3 }],
      ]),
    );
    const noop = await upsertRows(catalog, io, 'db.t', changes([['delete', 42, null, null]]));
    expect(noop.snapshotId).toBeUndefined();
  });

  it('two writers replacing the same row: the later commit gets a typed conflict, and there is no duplicate', async () => {
    await appendColumns(catalog, io, 'db.t', changes([['upsert', 5, 'orig', 0]]));
    // Writer B loads the table, then stalls on its first file write until writer A has committed.
    let releaseB!: () => void;
    const aCommitted = new Promise<void>((resolve) => (releaseB = resolve));
    const stalledIo = Object.create(io) as LocalFileIO;
    let stalled = false;
    stalledIo.write = async (uri, bytes) => {
      if (!stalled) {
        stalled = true;
        await aCommitted;
      }
      return io.write(uri, bytes);
    };
    const b = upsertRows(catalog, stalledIo, 'db.t', changes([['upsert', 5, 'from-b', 2]]));
    await new Promise((r) => setTimeout(r, 50));
    await upsertRows(catalog, io, 'db.t', changes([['upsert', 5, 'from-a', 1]]));
    releaseB();
    const err = await b.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RowLevelConflictError);
    expect((err as RowLevelConflictError).failureType).toBe('CommitConflict');
    expect(await tableRows()).toEqual(new Map([[5n, { name: 'from-a', qty: 1 }]]));
    // Run again on the fresh table, B lands on top of A.
    await upsertRows(catalog, io, 'db.t', changes([['upsert', 5, 'from-b', 2]]));
    expect(await tableRows()).toEqual(new Map([[5n, { name: 'from-b', qty: 2 }]]));
  });

  it('a concurrent append of other keys does not conflict: the upsert retries and lands', async () => {
    await appendColumns(catalog, io, 'db.t', changes([['upsert', 5, 'orig', 0]]));
    let release!: () => void;
    const appended = new Promise<void>((resolve) => (release = resolve));
    const stalledIo = Object.create(io) as LocalFileIO;
    let stalled = false;
    stalledIo.write = async (uri, bytes) => {
      if (!stalled) {
        stalled = true;
        await appended;
      }
      return io.write(uri, bytes);
    };
    const upsert = upsertRows(catalog, stalledIo, 'db.t', changes([['upsert', 5, 'new', 1]]));
    await new Promise((r) => setTimeout(r, 50));
    await appendColumns(catalog, io, 'db.t', changes([['upsert', 1000, 'other', 9]]));
    release();
    const result = await upsert;
    // It committed on top of the concurrent append (sequence 2), after validating that the append holds none of its keys.
    expect(result.sequenceNumber).toBe(3n);
    expect(await tableRows()).toEqual(
      new Map([
        [5n, { name: 'new', qty: 1 }],
        [1000n, { name: 'other', qty: 9 }],
      ]),
    );
  });

  it('a validate hook sees the metadata of every commit attempt: two attempts of one batch do not both land', async () => {
    // Two attempts of the same CDC batch insert the same new key. The row-level check would also refuse the slower
    // one (its key is in a file added meanwhile); the hook runs first and refuses it for the real reason.
    await appendColumns(catalog, io, 'db.t', {
      ...changes([['upsert', 5, 'orig', 0]]),
      snapshotProperties: { w: '1' },
    });
    const batch = () => ({ ...changes([['upsert', 7, 'seven', 7]]), snapshotProperties: { w: '2' } });
    const watermarkUnchanged = (current: TableMetadata) => {
      const summary = current.snapshots.find((s) => s.snapshotId === current.currentSnapshotId)?.summary;
      if (summary?.w !== '1') throw new Error(`watermark moved to ${summary?.w}`);
    };
    let release!: () => void;
    const committed = new Promise<void>((resolve) => (release = resolve));
    const stalledIo = Object.create(io) as LocalFileIO;
    let stalled = false;
    stalledIo.write = async (uri, bytes) => {
      if (!stalled) {
        stalled = true;
        await committed;
      }
      return io.write(uri, bytes);
    };
    const slow = upsertRows(catalog, stalledIo, 'db.t', { ...batch(), validate: watermarkUnchanged });
    await new Promise((r) => setTimeout(r, 50));
    await upsertRows(catalog, io, 'db.t', { ...batch(), validate: watermarkUnchanged });
    release();
    await expect(slow).rejects.toThrow(/watermark moved to 2/);
    expect(await tableRows()).toEqual(
      new Map([
        [5n, { name: 'orig', qty: 0 }],
        [7n, { name: 'seven', qty: 7 }],
      ]),
    );
  });

  it('refuses a table without a primary key and a change with a null key, naming them', async () => {
    await catalog.createTable('db.nokey', { schema: { ...schema, identifierFieldIds: [] } });
    await expect(upsertRows(catalog, io, 'db.nokey', changes([['upsert', 1, 'a', 1]]))).rejects.toThrow(
      /has no primary key/,
    );
    const bad = changes([['upsert', 1, 'a', 1]]);
    bad.columns.set(1, [null]);
    await expect(upsertRows(catalog, io, 'db.t', bad)).rejects.toThrow(InvalidChangesError);
    await expect(upsertRows(catalog, io, 'db.t', bad)).rejects.toThrow(/null key column "id"/);
  });
});
