import { parquetMetadata, readOffsetIndex, type FileMetaData, type SchemaElement } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeBound } from '../../../lib/iceberg/bounds.js';
import {
  DELETE_FILE_PATH_FIELD_ID,
  DELETE_POS_FIELD_ID,
  ParquetWriteError,
  closeEncodePool,
  readParquetFooter,
  readParquetRows,
  rowsToColumns,
  writeParquetDataFile,
  writePositionDeleteFile,
  type ColumnValues,
} from '../../../lib/iceberg/parquet/index.js';
import { Types, type NestedField, type Schema } from '../../../lib/iceberg/types.js';

afterAll(closeEncodePool);

/** hyparquet (an independent, pure-JS Parquet reader) decodes the footer. */
function hyparquetFooter(bytes: Uint8Array): FileMetaData {
  return parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
}

function element(md: FileMetaData, name: string): SchemaElement {
  const found = md.schema.filter((e) => e.name === name);
  expect(found, `schema element "${name}"`).toHaveLength(1);
  return found[0] as SchemaElement;
}

const hex = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('hex');

const field = (id: number, name: string, type: NestedField['type'], required = false): NestedField => ({
  id,
  name,
  required,
  type,
});

/** Every primitive type, once optional and once required. */
const PRIMITIVES: [string, NestedField['type']][] = [
  ['b', Types.boolean],
  ['i', Types.int],
  ['l', Types.long],
  ['f', Types.float],
  ['d', Types.double],
  ['dt', Types.date],
  ['tm', Types.time],
  ['ts', Types.timestamp],
  ['tz', Types.timestamptz],
  ['s', Types.string],
  ['u', Types.uuid],
  ['fx', Types.fixed(3)],
  ['bin', Types.binary],
  ['dec9', Types.decimal(9, 2)],
  ['dec18', Types.decimal(18, 4)],
  ['dec38', Types.decimal(38, 10)],
];

const primitiveSchema: Pick<Schema, 'fields'> = {
  fields: [
    ...PRIMITIVES.map(([name, type], i) => field(i + 1, name, type)),
    ...PRIMITIVES.map(([name, type], i) => field(i + 101, `${name}_req`, type, true)),
  ],
};

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

// Edge values of every type; the optional columns also get a null row.
const primitiveRows: unknown[][] = [
  [
    true,
    -2147483648,
    -(2n ** 63n),
    -3.5,
    -0,
    -719162,
    0n,
    -62135596800000000n,
    1n,
    'plain',
    '00000000-0000-0000-0000-000000000000',
    bytes(0, 0, 0),
    bytes(),
    { unscaled: -999999999n, scale: 2 },
    { unscaled: -(10n ** 18n - 1n), scale: 4 },
    { unscaled: -(10n ** 38n - 1n), scale: 10 },
  ],
  [
    false,
    2147483647,
    2n ** 63n - 1n,
    Infinity,
    NaN,
    2932896,
    86_399_999_999n,
    253402300799999999n,
    -1n,
    'ünïcödé 😀 \u{10FFFF}',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    bytes(255, 255, 255),
    bytes(0, 255, 1, 128),
    { unscaled: 999999999n, scale: 2 },
    { unscaled: 10n ** 18n - 1n, scale: 4 },
    { unscaled: 10n ** 38n - 1n, scale: 10 },
  ],
  [
    true,
    0,
    0n,
    1.5,
    Number.MIN_VALUE,
    0,
    1n,
    0n,
    1_700_000_000_123_456n,
    '',
    'f79c3e09-677c-4bbd-a479-3f349cb785e7',
    bytes(1, 2, 3),
    bytes(7),
    { unscaled: 0n, scale: 2 },
    { unscaled: 12345n, scale: 4 },
    { unscaled: 1n, scale: 10 },
  ],
].flatMap((values) => [[...values, ...values]]);
primitiveRows.push([...PRIMITIVES.map(() => null), ...(primitiveRows[0] as unknown[]).slice(PRIMITIVES.length)]);

describe('writeParquetDataFile: primitive types', () => {
  it('round-trips every primitive type, with nulls, through write and read', async () => {
    const { bytes: file, recordCount } = await writeParquetDataFile({
      schema: primitiveSchema,
      columns: rowsToColumns(primitiveSchema, primitiveRows),
    });
    expect(recordCount).toBe(4n);
    const rows = readParquetRows(file, { schema: primitiveSchema });
    expect(rows).toHaveLength(4);
    // float is stored as float32: -3.5, Infinity and 1.5 are exact in float32.
    expect(rows).toEqual(primitiveRows);
    expect(Object.is((rows[0] as unknown[])[4], -0)).toBe(true);
  });

  it('writes the spec types, field ids and repetitions in the footer (read by hyparquet)', async () => {
    const { bytes: file } = await writeParquetDataFile({
      schema: primitiveSchema,
      columns: rowsToColumns(primitiveSchema, primitiveRows),
    });
    const md = hyparquetFooter(file);
    for (const f of primitiveSchema.fields) {
      const e = element(md, f.name);
      expect(e.field_id, f.name).toBe(f.id);
      expect(e.repetition_type, f.name).toBe(f.required ? 'REQUIRED' : 'OPTIONAL');
    }
    const physical = (name: string) => element(md, name).type;
    const logical = (name: string) => element(md, name).logical_type;
    expect(physical('b')).toBe('BOOLEAN');
    expect(physical('i')).toBe('INT32');
    expect(physical('l')).toBe('INT64');
    expect(physical('f')).toBe('FLOAT');
    expect(physical('d')).toBe('DOUBLE');
    expect([physical('dt'), logical('dt')]).toEqual(['INT32', { type: 'DATE' }]);
    expect([physical('tm'), logical('tm')]).toEqual([
      'INT64',
      { type: 'TIME', isAdjustedToUTC: false, unit: 'MICROS' },
    ]);
    expect([physical('ts'), logical('ts')]).toEqual([
      'INT64',
      { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' },
    ]);
    expect([physical('tz'), logical('tz')]).toEqual([
      'INT64',
      { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
    ]);
    expect([physical('s'), logical('s')]).toEqual(['BYTE_ARRAY', { type: 'STRING' }]);
    expect([physical('u'), element(md, 'u').type_length, logical('u')]).toEqual([
      'FIXED_LEN_BYTE_ARRAY',
      16,
      { type: 'UUID' },
    ]);
    expect([physical('fx'), element(md, 'fx').type_length, logical('fx')]).toEqual([
      'FIXED_LEN_BYTE_ARRAY',
      3,
      undefined,
    ]);
    expect([physical('bin'), logical('bin')]).toEqual(['BYTE_ARRAY', undefined]);
    // Decimals by precision: INT32 up to 9 digits, INT64 up to 18, else the minimal fixed width.
    expect([physical('dec9'), logical('dec9')]).toEqual(['INT32', { type: 'DECIMAL', precision: 9, scale: 2 }]);
    expect([physical('dec18'), logical('dec18')]).toEqual(['INT64', { type: 'DECIMAL', precision: 18, scale: 4 }]);
    expect([physical('dec38'), element(md, 'dec38').type_length, logical('dec38')]).toEqual([
      'FIXED_LEN_BYTE_ARRAY',
      16,
      { type: 'DECIMAL', precision: 38, scale: 10 },
    ]);
    for (const column of md.row_groups.flatMap((rg) => rg.columns)) {
      expect(column.meta_data?.codec).toBe('ZSTD');
    }
  });
});

describe('writeParquetDataFile: nested types', () => {
  const nestedSchema: Pick<Schema, 'fields'> = {
    fields: [
      field(1, 'id', Types.long, true),
      field(2, 'address', {
        kind: 'struct',
        fields: [field(3, 'street', Types.string, true), field(4, 'zip', Types.int)],
      }),
      field(5, 'tags', { kind: 'list', elementId: 6, elementRequired: false, element: Types.string }),
      field(7, 'attrs', {
        kind: 'map',
        keyId: 8,
        key: Types.string,
        valueId: 9,
        valueRequired: false,
        value: Types.long,
      }),
      field(10, 'points', {
        kind: 'list',
        elementId: 11,
        elementRequired: true,
        element: { kind: 'struct', fields: [field(12, 'x', Types.double, true), field(13, 'y', Types.double)] },
      }),
    ],
  };
  const nestedRows: unknown[][] = [
    [1n, ['Main St', 12345], ['a', null, 'b'], new Map([['k', 1n]]), [[1.5, null]]],
    [2n, null, null, null, null],
    [3n, { street: 'Side St' }, [], [['x', null]], [{ x: NaN, y: 2 }, [-1, 0]]],
  ];

  it('round-trips structs, lists and maps (structs read back as arrays in field order)', async () => {
    const { bytes: file } = await writeParquetDataFile({
      schema: nestedSchema,
      columns: rowsToColumns(nestedSchema, nestedRows),
    });
    expect(readParquetRows(file, { schema: nestedSchema })).toEqual([
      [1n, ['Main St', 12345], ['a', null, 'b'], new Map([['k', 1n]]), [[1.5, null]]],
      [2n, null, null, null, null],
      [
        3n,
        ['Side St', null],
        [],
        new Map([['x', null]]),
        [
          [NaN, 2],
          [-1, 0],
        ],
      ],
    ]);
  });

  it('puts field ids on every nested column and uses 3-level lists and maps', async () => {
    const { bytes: file } = await writeParquetDataFile({
      schema: nestedSchema,
      columns: rowsToColumns(nestedSchema, nestedRows),
    });
    const footer = readParquetFooter(file);
    const md = hyparquetFooter(file);
    expect(footer.leaves.map((l) => [l.path.join('.'), l.node.fieldId, l.node.repetition])).toEqual([
      ['id', 1, 'REQUIRED'],
      ['address.street', 3, 'REQUIRED'],
      ['address.zip', 4, 'OPTIONAL'],
      ['tags.list.element', 6, 'OPTIONAL'],
      ['attrs.key_value.key', 8, 'REQUIRED'],
      ['attrs.key_value.value', 9, 'OPTIONAL'],
      ['points.list.element.x', 12, 'REQUIRED'],
      ['points.list.element.y', 13, 'OPTIONAL'],
    ]);
    expect([element(md, 'address').field_id, element(md, 'tags').field_id, element(md, 'attrs').field_id]).toEqual([
      2, 5, 7,
    ]);
    expect(element(md, 'tags').logical_type).toEqual({ type: 'LIST' });
    expect(element(md, 'attrs').logical_type).toEqual({ type: 'MAP' });
    const repeated = md.schema.filter((e) => e.repetition_type === 'REPEATED').map((e) => [e.name, e.field_id]);
    expect(repeated).toEqual([
      ['list', undefined],
      ['key_value', undefined],
      ['list', undefined],
    ]);
    const points = md.schema.filter((e) => e.field_id === 11);
    expect(points.map((e) => e.repetition_type)).toEqual(['REQUIRED']);
  });

  it('counts values and nulls of nested columns as the Parquet footer does, and keeps no bounds inside lists', async () => {
    const { metrics } = await writeParquetDataFile({
      schema: nestedSchema,
      columns: rowsToColumns(nestedSchema, nestedRows),
    });
    // tags: ['a', null, 'b'] → 3 entries; null list → 1; [] → 1: five level entries, three of them null.
    expect(metrics.valueCounts?.get(6)).toBe(5n);
    expect(metrics.nullValueCounts?.get(6)).toBe(3n);
    // address.zip: one value per row; null in row 2 (null struct) and row 3 (missing zip).
    expect(metrics.valueCounts?.get(4)).toBe(3n);
    expect(metrics.nullValueCounts?.get(4)).toBe(2n);
    expect(metrics.nullValueCounts?.get(3)).toBe(1n);
    // Struct fields keep bounds; list and map leaves keep counts only.
    expect(hex(metrics.lowerBounds?.get(3))).toBe(hex(encodeBound(Types.string, 'Main St')));
    expect(hex(metrics.upperBounds?.get(4))).toBe(hex(encodeBound(Types.int, 12345)));
    for (const id of [6, 8, 9, 12, 13]) expect(metrics.lowerBounds?.has(id), `field ${id}`).toBe(false);
    // points.x has one NaN among its values.
    expect(metrics.nanValueCounts?.get(12)).toBe(1n);
    expect(metrics.nanValueCounts?.get(13)).toBe(0n);
    expect([...(metrics.columnSizes?.keys() ?? [])].sort((a, b) => a - b)).toEqual([1, 3, 4, 6, 8, 9, 12, 13]);
  });
});

describe('writeParquetDataFile: metrics', () => {
  const schema: Pick<Schema, 'fields'> = {
    fields: [
      field(1, 'id', Types.long, true),
      field(2, 'name', Types.string),
      field(3, 'score', Types.double),
      field(4, 'ratio', Types.float),
      field(5, 'blob', Types.binary),
      field(6, 'day', Types.date),
      field(7, 'flag', Types.boolean),
      field(8, 'price', Types.decimal(10, 2)),
    ],
  };
  const long = 'abcdefghijklmnopqrstuvwxyz';
  const rows: unknown[][] = [
    [5n, long, 2.5, NaN, bytes(...Array.from({ length: 20 }, (_, i) => i)), 100, false, { unscaled: -150n, scale: 2 }],
    [-3n, 'b', NaN, 1.25, bytes(0xff), null, false, null],
    [9n, null, null, null, null, -5, null, { unscaled: 9999n, scale: 2 }],
    [0n, 'zz', -0, NaN, bytes(), 7, false, { unscaled: 0n, scale: 2 }],
  ];

  it('match hand-computed counts, NaN counts and Appendix D bounds, with strings cut to 16 characters', async () => {
    const { metrics, recordCount } = await writeParquetDataFile({ schema, columns: rowsToColumns(schema, rows) });
    expect(recordCount).toBe(4n);
    expect(Object.fromEntries(metrics.valueCounts ?? [])).toEqual({
      1: 4n,
      2: 4n,
      3: 4n,
      4: 4n,
      5: 4n,
      6: 4n,
      7: 4n,
      8: 4n,
    });
    expect(Object.fromEntries(metrics.nullValueCounts ?? [])).toEqual({
      1: 0n,
      2: 1n,
      3: 1n,
      4: 1n,
      5: 1n,
      6: 1n,
      7: 1n,
      8: 1n,
    });
    expect(Object.fromEntries(metrics.nanValueCounts ?? [])).toEqual({ 3: 1n, 4: 2n });
    const lower = (id: number) => hex(metrics.lowerBounds?.get(id));
    const upper = (id: number) => hex(metrics.upperBounds?.get(id));
    expect([lower(1), upper(1)]).toEqual(['fdffffffffffffff', '0900000000000000']);
    // "abcdefghijklmnop" / "zz": the lower bound is a 16-character prefix; "zz" is short and kept.
    expect([lower(2), upper(2)]).toEqual([Buffer.from('abcdefghijklmnop').toString('hex'), '7a7a']);
    // NaN is left out of the bounds; -0 is the lowest double here.
    expect([lower(3), upper(3)]).toEqual(['0000000000000080', '0000000000000440']);
    expect([lower(4), upper(4)]).toEqual(['0000a03f', '0000a03f']);
    // Binary: the empty value is the lowest; 0xff is the highest and short enough to keep.
    expect([lower(5), upper(5)]).toEqual(['', 'ff']);
    expect([lower(6), upper(6)]).toEqual(['fbffffff', '64000000']);
    expect([lower(7), upper(7)]).toEqual(['00', '00']);
    expect([lower(8), upper(8)]).toEqual(['ff6a', '270f']);
    for (const id of [1, 2, 3, 4, 5, 6, 7, 8]) expect(metrics.columnSizes?.get(id)).toBeGreaterThan(0n);
  });

  it('column sizes are the compressed sizes of the column chunks in the footer', async () => {
    const { bytes: file, metrics } = await writeParquetDataFile({
      schema,
      columns: rowsToColumns(schema, rows),
      maxRowGroupRows: 2,
    });
    const md = hyparquetFooter(file);
    expect(md.row_groups).toHaveLength(2);
    const sizes = new Map<number, bigint>();
    md.row_groups.forEach((rg) =>
      rg.columns.forEach((c, i) => {
        const id = (schema.fields[i] as NestedField).id;
        sizes.set(id, (sizes.get(id) ?? 0n) + BigInt(c.meta_data?.total_compressed_size ?? 0));
      }),
    );
    expect(metrics.columnSizes).toEqual(sizes);
  });

  it('truncates an upper bound by incrementing the 16th character', async () => {
    const { metrics } = await writeParquetDataFile({
      schema: { fields: [field(1, 's', Types.string)] },
      columns: new Map([[1, ['a', long]]]),
    });
    expect(Buffer.from(metrics.upperBounds?.get(1) ?? []).toString()).toBe('abcdefghijklmnoq');
    expect(Buffer.from(metrics.lowerBounds?.get(1) ?? []).toString()).toBe('a');
  });

  it('orders string bounds by code point, also after ASCII values', async () => {
    // JavaScript's `<` puts U+10000 (a surrogate pair) before U+FFFF; UTF-8 and Iceberg put it after.
    const { metrics } = await writeParquetDataFile({
      schema: { fields: [field(1, 's', Types.string)] },
      columns: new Map([[1, ['b', '\uffff', 'a', '\u{10000}', '\ue000']]]),
    });
    expect(hex(metrics.lowerBounds?.get(1))).toBe('61');
    expect(hex(metrics.upperBounds?.get(1))).toBe('f0908080');
  });

  it('follows per-column metrics modes (full, counts, none)', async () => {
    const { metrics } = await writeParquetDataFile({
      schema,
      columns: rowsToColumns(schema, rows),
      metricsModes: new Map([
        [2, 'full'],
        [3, 'counts'],
        [5, 'none'],
      ]),
    });
    expect(Buffer.from(metrics.lowerBounds?.get(2) ?? []).toString()).toBe(long);
    expect(metrics.lowerBounds?.has(3)).toBe(false);
    expect(metrics.nanValueCounts?.get(3)).toBe(1n);
    expect(metrics.valueCounts?.has(5)).toBe(false);
    expect(metrics.columnSizes?.has(5)).toBe(true);
  });

  it('writes and reads a file without rows', async () => {
    const {
      bytes: file,
      recordCount,
      metrics,
    } = await writeParquetDataFile({
      schema,
      columns: rowsToColumns(schema, []),
    });
    expect(recordCount).toBe(0n);
    expect(hyparquetFooter(file).num_rows).toBe(0n);
    expect(metrics.lowerBounds?.size).toBe(0);
    expect(readParquetRows(file, { schema })).toEqual([]);
  });

  it('keeps no bounds for a column of nulls and writes all nulls for an omitted optional column', async () => {
    const { metrics, bytes: file } = await writeParquetDataFile({
      schema,
      columns: new Map<number, ColumnValues>([[1, [1n, 2n]]]),
    });
    expect(metrics.nullValueCounts?.get(2)).toBe(2n);
    expect(metrics.lowerBounds?.has(2)).toBe(false);
    expect(readParquetRows(file, { schema })).toEqual([
      [1n, null, null, null, null, null, null, null],
      [2n, null, null, null, null, null, null, null],
    ]);
  });
});

describe('writeParquetDataFile: row groups and parallel encoding', () => {
  const schema: Pick<Schema, 'fields'> = {
    fields: [field(1, 'id', Types.long, true), field(2, 'name', Types.string), field(3, 'u', Types.uuid)],
  };
  const n = 120_000;
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
  const names = Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : `name-${i % 977}`));
  const uuids = Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
  const columns = new Map<number, ColumnValues>([
    [1, ids],
    [2, names],
    [3, uuids],
  ]);

  it('joins row groups encoded on worker threads into one valid file', async () => {
    const {
      bytes: file,
      metrics,
      splitOffsets,
      recordCount,
    } = await writeParquetDataFile({
      schema,
      columns,
      parallelism: 3,
    });
    expect(recordCount).toBe(BigInt(n));
    const md = hyparquetFooter(file);
    expect(md.num_rows).toBe(BigInt(n));
    expect(md.row_groups.map((rg) => Number(rg.num_rows))).toEqual([40_000, 40_000, 40_000]);
    expect(splitOffsets).toHaveLength(3);
    expect(splitOffsets[0]).toBe(4n);
    expect([...splitOffsets].sort((a, b) => (a < b ? -1 : 1))).toEqual(splitOffsets);
    // Every moved offset index must point at the moved pages: the first page of each chunk starts the chunk.
    const buffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
    for (const rg of md.row_groups) {
      for (const chunk of rg.columns) {
        const at = Number(chunk.offset_index_offset);
        const index = readOffsetIndex({
          view: new DataView(buffer, at, chunk.offset_index_length as number),
          offset: 0,
        });
        const first = index.page_locations[0];
        const dictionary = chunk.meta_data?.dictionary_page_offset;
        expect(first?.offset).toBe(chunk.meta_data?.data_page_offset);
        expect(Number(dictionary ?? chunk.meta_data?.data_page_offset)).toBeGreaterThanOrEqual(4);
      }
    }
    expect(metrics.valueCounts?.get(2)).toBe(BigInt(n));
    expect(metrics.nullValueCounts?.get(2)).toBe(BigInt(n / 5));
    expect(hex(metrics.upperBounds?.get(1))).toBe(hex(encodeBound(Types.long, BigInt(n - 1))));
    expect(hex(metrics.upperBounds?.get(3))).toBe(hex(encodeBound(Types.uuid, uuids[n - 1] as string)));
    expect(element(md, 'u').logical_type).toEqual({ type: 'UUID' });
    const rows = readParquetRows(file, { schema });
    expect(rows).toHaveLength(n);
    expect(rows[0]).toEqual([0n, null, uuids[0]]);
    expect(rows[n - 1]).toEqual([BigInt(n - 1), names[n - 1], uuids[n - 1]]);
    expect(rows.every((row, i) => row[0] === BigInt(i) && row[1] === names[i] && row[2] === uuids[i])).toBe(true);
  });

  it('writes the same rows and counts on the calling thread', async () => {
    const parallel = await writeParquetDataFile({ schema, columns, parallelism: 2 });
    const inline = await writeParquetDataFile({ schema, columns, parallelism: 1 });
    expect(hyparquetFooter(inline.bytes).row_groups).toHaveLength(1);
    expect(inline.metrics.valueCounts).toEqual(parallel.metrics.valueCounts);
    expect(inline.metrics.nullValueCounts).toEqual(parallel.metrics.nullValueCounts);
    expect(inline.metrics.lowerBounds).toEqual(parallel.metrics.lowerBounds);
    expect(inline.metrics.upperBounds).toEqual(parallel.metrics.upperBounds);
  });

  it('writes longs and timestamps with DELTA_BINARY_PACKED when asked, and reads them back', async () => {
    const times = Array.from({ length: 1000 }, (_, i) => (i % 7 === 0 ? null : 1_700_000_000_000_000n + BigInt(i)));
    const deltaSchema = { fields: [field(1, 'id', Types.long, true), field(2, 'at', Types.timestamptz)] };
    const { bytes: file } = await writeParquetDataFile({
      schema: deltaSchema,
      columns: new Map<number, ColumnValues>([
        [1, ids.subarray(0, 1000)],
        [2, times],
      ]),
      integerEncoding: 'delta',
    });
    for (const column of hyparquetFooter(file).row_groups[0]?.columns ?? []) {
      expect(column.meta_data?.encodings).toContain('DELTA_BINARY_PACKED');
      expect(column.meta_data?.encodings).not.toContain('RLE_DICTIONARY');
    }
    const rows = readParquetRows(file, { schema: deltaSchema });
    expect(rows.map((r) => r[1])).toEqual(times);
    expect(rows.map((r) => r[0])).toEqual([...ids.subarray(0, 1000)]);
  });

  it('cuts row groups at the byte target', async () => {
    const { bytes: file } = await writeParquetDataFile({
      schema,
      columns,
      parallelism: 1,
      targetRowGroupBytes: 1024 * 1024,
    });
    // About 8 + 10 + 16 bytes per row (a sample of the strings gives their length): ~4 MB in 1 MiB row groups.
    const groups = hyparquetFooter(file).row_groups;
    expect(groups.length).toBe(4);
    for (const group of groups) expect(Number(group.total_byte_size)).toBeLessThanOrEqual(1024 * 1024);
  });
});

describe('writeParquetDataFile: bad input', () => {
  const schema: Pick<Schema, 'fields'> = {
    fields: [
      field(1, 'id', Types.long, true),
      field(2, 'name', Types.string),
      field(3, 'address', { kind: 'struct', fields: [field(4, 'zip', Types.int, true)] }),
      field(5, 'tags', { kind: 'list', elementId: 6, elementRequired: true, element: Types.string }),
    ],
  };

  const attempt = async (columns: Map<number, ColumnValues>): Promise<ParquetWriteError> => {
    const err = await writeParquetDataFile({ schema, columns }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParquetWriteError);
    const error = err as ParquetWriteError;
    expect(error.kind).toBe('invalid-column-value');
    expect(error.failureType).toBe('InvalidInput');
    return error;
  };

  it('names the column and row of a null in a required field', async () => {
    const err = await attempt(new Map([[1, [1n, null]]]));
    expect([err.column, err.fieldId, err.row]).toEqual(['id', 1, 1]);
    expect(err.message).toMatch(/column "id" \(field id 1\) at row 1: the field is required/);
  });

  it('names the column of a value of the wrong type', async () => {
    const err = await attempt(
      new Map<number, ColumnValues>([
        [1, [1n, 2n]],
        [2, ['ok', 42]],
      ]),
    );
    expect([err.column, err.row]).toEqual(['name', 1]);
    expect(err.message).toMatch(/expected a string for string, got 42/);
    const long = await attempt(new Map([[1, [1]]]));
    expect(long.message).toMatch(/expected a bigint in the 64-bit range for long, got 1/);
  });

  it('names nested columns with dotted paths', async () => {
    const zip = await attempt(
      new Map<number, ColumnValues>([
        [1, [1n, 2n]],
        [3, [{ zip: 1 }, { zip: null }]],
      ]),
    );
    expect([zip.column, zip.fieldId, zip.row]).toEqual(['address.zip', 4, 1]);
    const element = await attempt(
      new Map<number, ColumnValues>([
        [1, [1n, 2n]],
        [5, [['a'], ['b', null]]],
      ]),
    );
    expect([element.column, element.fieldId, element.row]).toEqual(['tags.element', 6, 1]);
  });

  it('accepts a null struct around a required field', async () => {
    const { bytes: file } = await writeParquetDataFile({
      schema,
      columns: new Map<number, ColumnValues>([
        [1, [1n]],
        [3, [null]],
      ]),
    });
    expect(readParquetRows(file, { schema })).toEqual([[1n, null, null, null]]);
  });

  it('refuses a missing required column, unknown ids, uneven columns and lone surrogates', async () => {
    expect((await attempt(new Map([[2, ['a']]]))).message).toMatch(/"id" .*required but no values were given/);
    expect((await attempt(new Map([[4, [1]]]))).message).toMatch(/no top-level field with this id/);
    expect(
      (
        await attempt(
          new Map<number, ColumnValues>([
            [1, [1n, 2n]],
            [2, ['a']],
          ]),
        )
      ).message,
    ).toMatch(/"name" .*has 1 values but column "id" has 2/);
    expect(
      (
        await attempt(
          new Map<number, ColumnValues>([
            [1, [1n]],
            [2, ['\ud800']],
          ]),
        )
      ).message,
    ).toMatch(/lone surrogate/);
  });
});

describe('writePositionDeleteFile', () => {
  it('writes required file_path and pos with the reserved field ids, sorted by path then position', async () => {
    const paths = [
      's3://b/t/data/b.parquet',
      's3://b/t/data/a.parquet',
      's3://b/t/data/b.parquet',
      's3://b/t/data/a.parquet',
    ];
    const result = await writePositionDeleteFile({ filePaths: paths, positions: [7n, 10n, 2n, 3n] });
    const md = hyparquetFooter(result.bytes);
    expect(md.schema.slice(1).map((e) => [e.name, e.field_id, e.repetition_type, e.type])).toEqual([
      ['file_path', DELETE_FILE_PATH_FIELD_ID, 'REQUIRED', 'BYTE_ARRAY'],
      ['pos', DELETE_POS_FIELD_ID, 'REQUIRED', 'INT64'],
    ]);
    const schema = {
      fields: [
        field(DELETE_FILE_PATH_FIELD_ID, 'file_path', Types.string, true),
        field(DELETE_POS_FIELD_ID, 'pos', Types.long, true),
      ],
    };
    expect(readParquetRows(result.bytes, { schema })).toEqual([
      ['s3://b/t/data/a.parquet', 3n],
      ['s3://b/t/data/a.parquet', 10n],
      ['s3://b/t/data/b.parquet', 2n],
      ['s3://b/t/data/b.parquet', 7n],
    ]);
    expect(result.referencedDataFile).toBeUndefined();
    // Paths are longer than 16 characters, and delete files keep them whole.
    expect(Buffer.from(result.metrics.lowerBounds?.get(DELETE_FILE_PATH_FIELD_ID) ?? []).toString()).toBe(
      's3://b/t/data/a.parquet',
    );
    expect(Buffer.from(result.metrics.upperBounds?.get(DELETE_FILE_PATH_FIELD_ID) ?? []).toString()).toBe(
      's3://b/t/data/b.parquet',
    );
    expect(hex(result.metrics.upperBounds?.get(DELETE_POS_FIELD_ID))).toBe('0a00000000000000');
  });

  it('sets referencedDataFile when every row targets one file', async () => {
    const result = await writePositionDeleteFile({
      filePaths: ['f.parquet', 'f.parquet'],
      positions: BigInt64Array.of(1n, 0n),
    });
    expect(result.referencedDataFile).toBe('f.parquet');
    expect(result.recordCount).toBe(2n);
  });

  it('refuses negative positions and uneven columns', async () => {
    await expect(writePositionDeleteFile({ filePaths: ['f'], positions: [-1n] })).rejects.toThrow(
      /column "pos" \(field id 2147483545\) at row 0/,
    );
    await expect(writePositionDeleteFile({ filePaths: ['f', 'g'], positions: [1n] })).rejects.toThrow(
      ParquetWriteError,
    );
  });
});
