import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import {
  DELETE_FILE_PATH_FIELD_ID,
  DELETE_POS_FIELD_ID,
  POSITION_DELETE_SCHEMA,
  ParquetReadError,
  readPositionDeletePositions,
  writePositionDeleteFile,
  readParquetBatches,
  readParquetFile,
  readParquetFooter,
  readParquetRows,
  rowsToColumns,
  writeParquetDataFile,
} from '../../../lib/iceberg/parquet/index.js';
import { decodeStruct, encodeStruct } from '../../../lib/iceberg/parquet/thrift.js';
import { readRawFooter } from '../../../lib/iceberg/parquet/footer.js';
import { encodeParquet } from '../../../lib/iceberg/parquet/wasm-encode.js';
import { Types, type NestedField, type Schema } from '../../../lib/iceberg/types.js';

const field = (id: number, name: string, type: NestedField['type'], required = false): NestedField => ({
  id,
  name,
  required,
  type,
});

// The schema the file was written with.
const written: Pick<Schema, 'fields'> = {
  fields: [
    field(1, 'id', Types.long, true),
    field(2, 'qty', Types.int),
    field(3, 'ratio', Types.float),
    field(4, 'price', Types.decimal(5, 2)),
    field(5, 'customer', {
      kind: 'struct',
      fields: [field(6, 'name', Types.string), field(7, 'tier', Types.int)],
    }),
    field(8, 'dropped', Types.string),
  ],
};
const rows = [
  [1n, 10, 0.5, { unscaled: 12345n, scale: 2 }, ['ann', 1], 'x'],
  [2n, null, null, null, null, 'y'],
];

async function writtenFile(): Promise<Uint8Array> {
  return (await writeParquetDataFile({ schema: written, columns: rowsToColumns(written, rows) })).bytes;
}

describe('readParquetFile: projection by field id', () => {
  it('reads renamed, reordered, promoted, added and dropped columns as the read schema says', async () => {
    const file = await writtenFile();
    // Later schema: qty renamed and promoted to long, ratio promoted to double, price widened, a nested field
    // renamed, a new optional column and a new nested field added, and `dropped` removed; order changed.
    const evolved: Pick<Schema, 'fields'> = {
      fields: [
        field(9, 'added', Types.string),
        field(2, 'quantity', Types.long),
        field(1, 'id', Types.long, true),
        field(3, 'ratio', Types.double),
        field(4, 'price', Types.decimal(10, 2)),
        field(5, 'buyer', {
          kind: 'struct',
          fields: [field(7, 'level', Types.int), field(10, 'email', Types.string), field(6, 'full_name', Types.string)],
        }),
      ],
    };
    expect(readParquetRows(file, { schema: evolved })).toEqual([
      [null, 10n, 1n, 0.5, { unscaled: 12345n, scale: 2 }, [1, null, 'ann']],
      [null, null, 2n, null, null, null],
    ]);
  });

  it('refuses a required field that the file lacks, naming it', async () => {
    const file = await writtenFile();
    const schema = { fields: [field(1, 'id', Types.long, true), field(42, 'region', Types.string, true)] };
    expect(() => readParquetRows(file, { schema })).toThrow(ParquetReadError);
    expect(() => readParquetRows(file, { schema })).toThrow(/required field "region" \(field id 42\) has no column/);
    const nested = {
      fields: [field(5, 'customer', { kind: 'struct', fields: [field(43, 'email', Types.string, true)] })],
    };
    expect(() => readParquetRows(file, { schema: nested })).toThrow(/"customer.email" \(field id 43\)/);
  });

  it('refuses a column whose type cannot be read as the field type', async () => {
    const file = await writtenFile();
    const schema = { fields: [field(1, 'id', Types.int, true)] };
    expect(() => readParquetRows(file, { schema })).toThrow(/column "id" holds Int64, which cannot be read as int/);
    const narrower = { fields: [field(4, 'price', Types.decimal(4, 2))] };
    expect(() => readParquetRows(file, { schema: narrower })).toThrow(/cannot be read as decimal\(4, 2\)/);
  });

  it('refuses bytes that are not Parquet', () => {
    const err = (() => {
      try {
        readParquetRows(new TextEncoder().encode('not a parquet file'), written as never);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ParquetReadError);
    expect((err as ParquetReadError).failureType).toBe('Corrupt');
  });
});

describe('readParquetBatches', () => {
  it('yields one batch per row group, and only the row groups asked for', async () => {
    const schema = { fields: [field(1, 'id', Types.long, true), field(2, 's', Types.string)] };
    const ids = Array.from({ length: 10 }, (_, i) => BigInt(i));
    const { bytes: file } = await writeParquetDataFile({
      schema,
      columns: new Map<number, unknown[]>([
        [1, ids],
        [2, ids.map((i) => `v${i}`)],
      ]),
      maxRowGroupRows: 4,
    });
    expect(readParquetFooter(file).rowGroups.map((rg) => rg.numRows)).toEqual([4n, 4n, 2n]);
    const batches = [...readParquetBatches(file, { schema })];
    expect(batches.map((b) => b.rowCount)).toEqual([4, 4, 2]);
    expect(batches[2]?.columns.get(2)).toEqual(['v8', 'v9']);
    const picked = readParquetFile(file, { schema, rowGroups: [1] });
    expect(picked.rowCount).toBe(4);
    expect(picked.columns.get(1)).toEqual([4n, 5n, 6n, 7n]);
    expect(() => readParquetFile(file, { schema, rowGroups: [3] })).toThrow(/row group 3 does not exist/);
  });
});

describe('Thrift compact codec', () => {
  it('re-encodes a footer written by parquet-rs to the same bytes', () => {
    const table = tableFromArrays({ n: Int32Array.of(1, 2, 3), s: ['a', 'b', null] });
    const file = encodeParquet(tableToIPC(table, 'stream'), {
      maxRowGroupRows: 10,
      plainColumns: [],
      deltaColumns: [],
      createdBy: 'x',
    });
    const { footerStart } = readRawFooter(file);
    const original = file.subarray(footerStart, file.length - 8);
    const { value, end } = decodeStruct(original);
    expect(end).toBe(original.length);
    expect(Buffer.from(encodeStruct(value)).equals(Buffer.from(original))).toBe(true);
  });
});

describe('position-delete files, fast path', () => {
  it('reads the same positions per data file as the general reader, with runs of paths and large positions', async () => {
    const paths: string[] = [];
    const positions: bigint[] = [];
    const dataFiles = ['s3://b/data/a.parquet', 's3://b/data/b.parquet', 's3://b/data/ü-é.parquet'];
    for (let i = 0; i < 3000; i++) {
      paths.push(dataFiles[(i * 7) % 3]!);
      positions.push(BigInt(i) * 1_000_003n + (i === 2999 ? 2n ** 40n : 0n));
    }
    const written = await writePositionDeleteFile({ filePaths: paths, positions });
    const fast = readPositionDeletePositions(written.bytes);
    const general = readParquetFile(written.bytes, { schema: POSITION_DELETE_SCHEMA });
    const expected = new Map<string, number[]>();
    const p = general.columns.get(DELETE_FILE_PATH_FIELD_ID) as string[];
    const q = general.columns.get(DELETE_POS_FIELD_ID) as bigint[];
    for (let i = 0; i < general.rowCount; i++) {
      const list = expected.get(p[i]!) ?? [];
      list.push(Number(q[i]));
      expected.set(p[i]!, list);
    }
    expect(fast).toEqual(expected);
    expect([...fast.keys()].sort()).toEqual([...dataFiles].sort());
    expect(Math.max(...fast.get(dataFiles[(2999 * 7) % 3]!)!)).toBe(2999 * 1_000_003 + 2 ** 40);
  });

  it('refuses bytes that are not Parquet with a typed error', () => {
    expect(() => readPositionDeletePositions(new Uint8Array([1, 2, 3, 4]))).toThrow(ParquetReadError);
  });
});
