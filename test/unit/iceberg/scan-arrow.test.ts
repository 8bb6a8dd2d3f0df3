import {
  DateUnit,
  TimeUnit,
  Type,
  tableFromIPC,
  tableToIPC,
  type DateDay,
  type Decimal,
  type FixedSizeBinary,
  type Int,
  type RecordBatch,
  type Timestamp,
  type Vector,
} from 'apache-arrow';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns } from '../../../lib/iceberg/append.js';
import { arrowScanSchema, scanToArrow, scanToArrowTable } from '../../../lib/iceberg/arrow-scan.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import { and, eq, gt, lt } from '../../../lib/iceberg/expressions.js';
import { readParquetFooter } from '../../../lib/iceberg/parquet/index.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { DecimalValue } from '../../../lib/iceberg/values.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

/** Records every file read, to see how far a scan has read when a batch comes out. */
class CountingFileIO extends LocalFileIO {
  readonly reads: string[] = [];
  override async read(uri: string): Promise<Uint8Array> {
    this.reads.push(uri);
    return super.read(uri);
  }
}

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
    { id: 3, name: 'price', required: false, type: Types.decimal(10, 2) },
    { id: 4, name: 'day', required: false, type: Types.date },
    { id: 5, name: 'ts', required: false, type: Types.timestamp },
    { id: 6, name: 'tstz', required: false, type: Types.timestamptz },
    { id: 7, name: 'uid', required: false, type: Types.uuid },
    { id: 8, name: 'score', required: false, type: Types.double },
    { id: 9, name: 'small', required: false, type: Types.int },
    { id: 10, name: 'flag', required: false, type: Types.boolean },
    {
      id: 11,
      name: 'address',
      required: false,
      type: { kind: 'struct', fields: [{ id: 13, name: 'city', required: false, type: Types.string }] },
    },
    {
      id: 12,
      name: 'tags',
      required: false,
      type: { kind: 'list', elementId: 14, elementRequired: false, element: Types.string },
    },
  ],
};

const T0 = BigInt(Date.UTC(2024, 4, 1)) * 1000n;
const uuidOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

function columns(ids: number[]): Map<number, unknown[]> {
  return new Map<number, unknown[]>([
    [1, ids.map(BigInt)],
    [2, ids.map((i) => (i % 10 === 0 ? null : `n${i}`))],
    [3, ids.map((i): DecimalValue => ({ unscaled: BigInt(i * 101 - 500), scale: 2 }))],
    [4, ids.map((i) => 19844 + i)],
    [5, ids.map((i) => T0 + BigInt(i) * 1_000_001n)],
    [6, ids.map((i) => T0 - BigInt(i) * 7n)],
    [7, ids.map(uuidOf)],
    [8, ids.map((i) => i / 8)],
    [9, ids.map((i) => i * 3)],
    [10, ids.map((i) => i % 2 === 0)],
    [11, ids.map((i) => (i % 7 === 0 ? null : [`c${i % 3}`]))],
    [12, ids.map((i) => Array.from({ length: i % 3 }, (_, k) => `t${k}`))],
  ]);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function column(batch: { getChild(name: string): Vector | null }, name: string): Vector {
  const child = batch.getChild(name);
  if (!child) throw new Error(`no column ${name}`);
  return child;
}

/** The raw values buffer of a single-chunk vector (timestamps as µs, dates as days). */
function raw<T>(vector: Vector): T {
  return vector.data[0]!.values as T;
}

describe('scans as Arrow record batches', () => {
  let temp: TempCatalog<CountingFileIO>;
  let io: CountingFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-scan-arrow-', () => new CountingFileIO({}));
    ({ io, catalog } = temp);
    await catalog.createTable('db.t', { schema });
  });
  afterEach(() => temp.cleanup());

  it('maps Iceberg types to Arrow types and keeps every value', async () => {
    const ids = range(1, 40);
    await appendColumns(catalog, io, 'db.t', { columns: columns(ids) });
    const { metadata } = await catalog.loadTable('db.t');
    const table = await scanToArrowTable(io, metadata);
    expect(table.numRows).toBe(40);

    const types = Object.fromEntries(table.schema.fields.map((f) => [f.name, f.type]));
    expect(types.id!.typeId).toBe(Type.Int);
    expect([(types.id as Int).bitWidth, (types.id as Int).isSigned]).toEqual([64, true]);
    expect(types.name!.typeId).toBe(Type.Utf8);
    expect(types.price!.typeId).toBe(Type.Decimal);
    expect((types.price as Decimal).precision).toBe(10);
    expect((types.price as Decimal).scale).toBe(2);
    expect((types.price as Decimal).bitWidth).toBe(128);
    expect([types.day!.typeId, (types.day as DateDay).unit]).toEqual([Type.Date, DateUnit.DAY]);
    expect([(types.ts as Timestamp).unit, (types.ts as Timestamp).timezone ?? null]).toEqual([
      TimeUnit.MICROSECOND,
      null,
    ]);
    expect([(types.tstz as Timestamp).unit, (types.tstz as Timestamp).timezone]).toEqual([TimeUnit.MICROSECOND, 'UTC']);
    expect([types.uid!.typeId, (types.uid as FixedSizeBinary).byteWidth]).toEqual([Type.FixedSizeBinary, 16]);
    expect(types.score!.typeId).toBe(Type.Float);
    expect((types.small as Int).bitWidth).toBe(32);
    expect(types.flag!.typeId).toBe(Type.Bool);
    expect(types.address!.typeId).toBe(Type.Struct);
    expect(types.tags!.typeId).toBe(Type.List);
    // Nullability and field ids follow the Iceberg schema.
    expect(table.schema.fields.map((f) => f.nullable)).toEqual(schema.fields.map((f) => !f.required));
    expect(table.schema.fields.map((f) => f.metadata.get('PARQUET:field_id'))).toEqual(
      schema.fields.map((f) => String(f.id)),
    );

    const sorted = [...table.toArray()]
      .map((_, r) => r)
      .sort((a, b) => Number(column(table, 'id').get(a) - column(table, 'id').get(b)));
    const expected = columns(ids);
    for (const [k, r] of sorted.entries()) {
      expect(column(table, 'id').get(r)).toBe(expected.get(1)![k]);
      expect(column(table, 'name').get(r)).toBe(expected.get(2)![k]);
      expect(String(column(table, 'price').get(r))).toBe(String((expected.get(3)![k] as DecimalValue).unscaled));
      expect(column(table, 'uid').get(r)).toEqual(
        Uint8Array.from(Buffer.from(uuidOf(ids[k]!).replace(/-/g, ''), 'hex')),
      );
      expect(column(table, 'score').get(r)).toBe(expected.get(8)![k]);
      expect(column(table, 'flag').get(r)).toBe(expected.get(10)![k]);
      const address = column(table, 'address').get(r) as { toJSON(): unknown } | null;
      const expectedAddress = expected.get(11)![k] as [string] | null;
      expect(address === null ? null : address.toJSON()).toEqual(
        expectedAddress === null ? null : { city: expectedAddress[0] },
      );
      expect([...((column(table, 'tags').get(r) as Vector | null) ?? [])]).toEqual(expected.get(12)![k]);
    }
    // Exact µs and days, read from the buffers (Vector.get rounds timestamps to ms).
    const byId = new Map(sorted.map((r, k) => [r, k]));
    const ts = raw<BigInt64Array>(column(table, 'ts'));
    const tstz = raw<BigInt64Array>(column(table, 'tstz'));
    const day = raw<Int32Array>(column(table, 'day'));
    for (const [r, k] of byId) {
      expect(ts[r]).toBe(expected.get(5)![k]);
      expect(tstz[r]).toBe(expected.get(6)![k]);
      expect(day[r]).toBe(expected.get(4)![k]);
    }

    // The batches are valid Arrow: they survive an IPC round trip.
    const back = tableFromIPC(tableToIPC(table));
    expect(back.numRows).toBe(40);
    expect(String(back.schema.fields.map((f) => f.type))).toBe(String(table.schema.fields.map((f) => f.type)));
  });

  it('yields one batch per row group, lazily, never more rows than a row group', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(range(1, 100)), maxRowGroupRows: 25 });
    await appendColumns(catalog, io, 'db.t', { columns: columns(range(101, 160)), maxRowGroupRows: 25 });
    const { metadata } = await catalog.loadTable('db.t');
    const dataFiles = [...new Set((await scanFiles()).filter((uri) => uri.endsWith('.parquet')))];
    expect(dataFiles).toHaveLength(2);
    const rowGroups: number[] = [];
    for (const file of dataFiles) {
      for (const group of readParquetFooter(await io.read(file)).rowGroups) rowGroups.push(Number(group.numRows));
    }
    const largest = Math.max(...rowGroups);
    expect(largest).toBeLessThanOrEqual(25);
    expect(rowGroups.length).toBeGreaterThanOrEqual(7);

    io.reads.length = 0;
    const iterator = scanToArrow(io, metadata)[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    // When the first batch comes out, only the first data file and (read ahead) the second have been read.
    expect(io.reads.filter((uri) => uri.endsWith('.parquet'))).toEqual(dataFiles.slice(0, 2));
    const batches: RecordBatch[] = [first.value as RecordBatch];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) batches.push(next.value);
    expect(batches.map((b) => b.numRows).sort()).toEqual([...rowGroups].sort());
    expect(batches.every((b) => b.numRows <= largest)).toBe(true);
    expect(batches.reduce((n, b) => n + b.numRows, 0)).toBe(160);

    async function scanFiles(): Promise<string[]> {
      io.reads.length = 0;
      for await (const batch of scanToArrow(io, metadata)) void batch;
      return [...io.reads];
    }
  });

  it('filters and projects, with an empty table for no match', async () => {
    await appendColumns(catalog, io, 'db.t', { columns: columns(range(1, 50)), maxRowGroupRows: 10 });
    const { metadata } = await catalog.loadTable('db.t');
    const filter = and(gt('id', 12), lt('price', '2.00'), eq('flag', true));
    const table = await scanToArrowTable(io, metadata, { filter, columns: ['id', 'address.city'] });
    const expected = range(1, 50).filter((i) => i > 12 && i * 101 - 500 < 200 && i % 2 === 0);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'address']);
    expect([...column(table, 'id')]).toEqual(expected.map(BigInt));
    expect(table.batches.every((b) => b.numRows <= 10)).toBe(true);

    const none = await scanToArrowTable(io, metadata, { filter: eq('id', 1000), columns: ['name'] });
    expect(none.numRows).toBe(0);
    expect(none.schema.fields.map((f) => [f.name, f.type.typeId])).toEqual([['name', Type.Utf8]]);
    expect(arrowScanSchema(metadata, { columns: ['tstz'] }).fields[0]!.type.toString()).toBe(
      'Timestamp<MICROSECOND, UTC>',
    );
  });
});
