import { describe, expect, it } from 'vitest';
import { decodeAvroFile, encodeAvroFile } from '../../../lib/iceberg/avro/container-file.js';
import { CorruptAvroFileError } from '../../../lib/iceberg/avro/errors.js';
import type { AvroSchema } from '../../../lib/iceberg/avro/schema.js';
import type { DataFile, ManifestEntry, PartitionValue } from '../../../lib/iceberg/data-file.js';
import { InvalidValueError, UnsupportedFormatVersionError } from '../../../lib/iceberg/errors.js';
import {
  encodePartitionBound,
  inheritManifestMetadata,
  manifestAvroSchema,
  readManifest,
  writeManifest,
  type BoundEncoder,
} from '../../../lib/iceberg/manifest.js';
import {
  buildPartitionSpec,
  partitionSpecToJson,
  partitionType,
  unpartitionedSpec,
  type PartitionSpec,
} from '../../../lib/iceberg/partition-spec.js';
import { parseSchema, schemaToJson, Types, type Schema } from '../../../lib/iceberg/types.js';

const SNAPSHOT = 8744736658442914487n; // above 2^53, as Java's random ids are
const OLD_SNAPSHOT = 3051729675574597004n;

/** A column of every primitive type, each partitioned by identity, plus day() and bucket() partitions. */
const COLUMNS: [string, string][] = [
  ['id', 'long'],
  ['name', 'string'],
  ['ts', 'timestamptz'],
  ['amount', 'decimal(9, 2)'],
  ['u', 'uuid'],
  ['d', 'date'],
  ['dbl', 'double'],
  ['flag', 'boolean'],
  ['bin', 'binary'],
  ['fx', 'fixed[3]'],
  ['i', 'int'],
  ['tm', 'time'],
  ['local_ts', 'timestamp'],
  ['fl', 'float'],
  ['big', 'decimal(38, 10)'],
];

const SCHEMA: Schema = parseSchema({
  type: 'struct',
  'schema-id': 3,
  'identifier-field-ids': [1],
  fields: COLUMNS.map(([name, type], i) => ({ id: i + 1, name, required: i === 0, type })),
});

const SPEC: PartitionSpec = buildPartitionSpec({
  schema: SCHEMA,
  specId: 2,
  fields: [
    { sourceColumn: 'ts', transform: 'day' },
    { sourceColumn: 'id', transform: 'bucket[16]' },
    ...COLUMNS.map(([name]) => ({ sourceColumn: name, transform: 'identity' })),
  ],
}).spec;

const PARTITION_TYPE = partitionType(SPEC, SCHEMA);

function tuple(i: number): PartitionValue[] {
  return [
    19723 + i, // ts_day
    i % 16, // id_bucket
    8744736658442914487n - BigInt(i), // id
    i === 2 ? null : `name-${i}`,
    1700000000123456n + BigInt(i),
    { unscaled: -123456n + BigInt(i), scale: 2 },
    'f79c3e09-677c-4bbd-a479-3f349cb785e7',
    -719162 + i,
    i === 1 ? Number.NaN : 1.5 * i,
    i % 2 === 0,
    new Uint8Array([i, 0, 255]),
    new Uint8Array([1, 2, i]),
    -2147483648 + i,
    86399999999n - BigInt(i),
    -62135596800000000n + BigInt(i),
    0.25 * i,
    { unscaled: -(10n ** 37n) + BigInt(i), scale: 10 },
  ];
}

function dataFile(i: number, overrides: Partial<DataFile> = {}): DataFile {
  return {
    content: 'data',
    filePath: `s3://warehouse/db/orders/data/ts_day=2024-01-0${i}/0000${i}-0-abc.parquet`,
    fileFormat: 'PARQUET',
    partition: tuple(i),
    specId: SPEC.specId,
    recordCount: 1000n + BigInt(i),
    fileSizeInBytes: 2n ** 40n + BigInt(i),
    columnSizes: new Map([
      [1, 800n],
      [2, 2n ** 60n],
    ]),
    valueCounts: new Map([
      [1, 1000n],
      [2, 1000n],
    ]),
    nullValueCounts: new Map([
      [1, 0n],
      [2, 17n],
    ]),
    nanValueCounts: new Map([[7, 1n]]),
    lowerBounds: new Map([[1, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])]]),
    upperBounds: new Map([[1, new Uint8Array([0xb7, 0x8a, 0xd3, 0xc4, 0xa8, 0x8b, 0x5b, 0x79])]]),
    keyMetadata: new Uint8Array([9, 9]),
    splitOffsets: [4n, 2n ** 33n],
    sortOrderId: 1,
    ...overrides,
  };
}

const ENTRIES: ManifestEntry[] = [
  { status: 'added', snapshotId: SNAPSHOT, sequenceNumber: null, fileSequenceNumber: null, dataFile: dataFile(1) },
  { status: 'existing', snapshotId: OLD_SNAPSHOT, sequenceNumber: 3n, fileSequenceNumber: 4n, dataFile: dataFile(2) },
  { status: 'deleted', snapshotId: SNAPSHOT, sequenceNumber: 2n, fileSequenceNumber: 2n, dataFile: dataFile(3) },
];

function write(entries: readonly ManifestEntry[], extra: { encodeBound?: BoundEncoder; snapshotId?: bigint } = {}) {
  return writeManifest({ schema: SCHEMA, spec: SPEC, formatVersion: 2, content: 'data', entries, ...extra });
}

/** Every record field and array in a schema, to check that none lacks its Iceberg id. */
function walk(schema: AvroSchema, visit: (node: Record<string, unknown>, kind: 'field' | 'type') => void): void {
  if (Array.isArray(schema)) {
    for (const branch of schema as AvroSchema[]) walk(branch, visit);
  } else if (typeof schema === 'object') {
    const node = schema as Record<string, unknown>;
    visit(node, 'type');
    if (Array.isArray(node.fields)) {
      for (const field of node.fields as Record<string, unknown>[]) {
        visit(field, 'field');
        walk(field.type as AvroSchema, visit);
      }
    }
    if (node.items !== undefined) walk(node.items as AvroSchema, visit);
  }
}

describe('writeManifest / readManifest', () => {
  for (const codec of ['deflate', 'null'] as const) {
    it(`round-trips every partition type, metrics maps by field id and 64-bit values (${codec})`, () => {
      const { bytes } = writeManifest({
        schema: SCHEMA,
        spec: SPEC,
        formatVersion: 2,
        content: 'data',
        entries: ENTRIES,
        codec,
      });
      const read = readManifest(bytes, { partitionType: PARTITION_TYPE });
      expect(read.entries).toEqual(ENTRIES);
      expect(read.formatVersion).toBe(2);
      expect(read.content).toBe('data');
      expect(read.partitionSpecId).toBe(SPEC.specId);
      expect(decodeAvroFile(bytes).codec).toBe(codec);
    });
  }

  it('derives partition types from the file when no partition type is given', () => {
    const { bytes } = write(ENTRIES);
    expect(readManifest(bytes).entries.map((e) => e.dataFile.partition)).toEqual(
      ENTRIES.map((e) => e.dataFile.partition),
    );
  });

  it('leaves absent metrics absent instead of inventing empty maps', () => {
    const bare: DataFile = {
      content: 'data',
      filePath: 's3://b/t/data/x.parquet',
      fileFormat: 'PARQUET',
      partition: tuple(4),
      specId: SPEC.specId,
      recordCount: 0n,
      fileSizeInBytes: 4n,
    };
    const { bytes } = write([
      { status: 'added', snapshotId: null, sequenceNumber: null, fileSequenceNumber: null, dataFile: bare },
    ]);
    const [entry] = readManifest(bytes).entries;
    expect(entry?.dataFile).toEqual(bare);
    for (const key of ['columnSizes', 'lowerBounds', 'keyMetadata', 'splitOffsets', 'equalityIds', 'sortOrderId']) {
      expect(entry?.dataFile).not.toHaveProperty(key);
    }
  });

  it('writes the header keys of the spec: schema, schema-id, partition-spec, partition-spec-id, format-version, content', () => {
    const { bytes } = write(ENTRIES);
    const { metadata } = readManifest(bytes);
    expect(Object.keys(metadata).sort()).toEqual(
      ['content', 'format-version', 'partition-spec', 'partition-spec-id', 'schema', 'schema-id'].sort(),
    );
    expect(JSON.parse(metadata.schema as string)).toEqual(schemaToJson(SCHEMA));
    expect(metadata['schema-id']).toBe('3');
    expect(JSON.parse(metadata['partition-spec'] as string)).toEqual(partitionSpecToJson(SPEC).fields);
    expect(metadata['partition-spec-id']).toBe('2');
    expect(metadata['format-version']).toBe('2');
    expect(metadata.content).toBe('data');
  });

  it('puts a field-id on every field and Java record names into the Avro header schema', () => {
    const { schema } = decodeAvroFile(write(ENTRIES).bytes);
    const names: string[] = [];
    walk(schema, (node, kind) => {
      if (kind === 'field') expect(node['field-id'], `field ${String(node.name)}`).toBeTypeOf('number');
      if (node.type === 'record') names.push(node.name as string);
      if (node.type === 'array' && node.logicalType !== 'map') expect(node['element-id']).toBeTypeOf('number');
    });
    expect(names).toEqual([
      'manifest_entry',
      'r2',
      'r102',
      'k117_v118',
      'k119_v120',
      'k121_v122',
      'k138_v139',
      'k126_v127',
      'k129_v130',
    ]);
  });

  it('declares partition fields optional, with default null, partition field ids and Appendix A logical types', () => {
    const schema = manifestAvroSchema(PARTITION_TYPE);
    const dataFileRecord = schema.fields.find((f) => f.name === 'data_file')?.type as unknown as {
      fields: { name: string; type: unknown }[];
    };
    const partition = dataFileRecord.fields.find((f) => f.name === 'partition')?.type as {
      name: string;
      fields: Record<string, unknown>[];
    };
    expect(partition.name).toBe('r102');
    const byName = new Map(partition.fields.map((f) => [f.name as string, f]));
    expect(byName.get('ts_day')).toEqual({
      name: 'ts_day',
      type: ['null', { type: 'int', logicalType: 'date' }],
      default: null,
      'field-id': 1000,
    });
    expect(byName.get('ts')?.type).toEqual([
      'null',
      { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true },
    ]);
    expect(byName.get('local_ts')?.type).toEqual([
      'null',
      { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false },
    ]);
    expect(byName.get('amount')?.type).toEqual([
      'null',
      { type: 'fixed', name: 'decimal_9_2', size: 4, logicalType: 'decimal', precision: 9, scale: 2 },
    ]);
    expect(byName.get('big')?.type).toEqual([
      'null',
      { type: 'fixed', name: 'decimal_38_10', size: 16, logicalType: 'decimal', precision: 38, scale: 10 },
    ]);
    expect(byName.get('u')?.type).toEqual([
      'null',
      { type: 'fixed', name: 'uuid_fixed', size: 16, logicalType: 'uuid' },
    ]);
    expect(byName.get('bin')?.type).toEqual(['null', 'bytes']);
    expect([...byName.values()].every((f) => f.default === null && Array.isArray(f.type))).toBe(true);
  });

  it('gives partition names that are not Avro names a sanitized name and keeps the original', () => {
    const schema = parseSchema({
      type: 'struct',
      'schema-id': 0,
      fields: [{ id: 1, name: 'order-date', required: false, type: 'date' }],
    });
    const spec = buildPartitionSpec({
      schema,
      specId: 0,
      fields: [{ sourceColumn: 'order-date', transform: 'identity' }],
    }).spec;
    const entry: ManifestEntry = {
      status: 'added',
      snapshotId: null,
      sequenceNumber: null,
      fileSequenceNumber: null,
      dataFile: { ...dataFile(1), partition: [19000], specId: 0 },
    };
    const { bytes } = writeManifest({ schema, spec, formatVersion: 2, content: 'data', entries: [entry] });
    expect(JSON.stringify(decodeAvroFile(bytes).schema)).toContain(
      '"name":"order_x2Ddate","type":["null",{"type":"int","logicalType":"date"}],"default":null,"iceberg-field-name":"order-date","field-id":1000',
    );
    expect(readManifest(bytes).entries[0]?.dataFile.partition).toEqual([19000]);
  });

  it('writes an unpartitioned manifest with an empty r102 record and no partition summaries', () => {
    const entry: ManifestEntry = {
      status: 'added',
      snapshotId: null,
      sequenceNumber: null,
      fileSequenceNumber: null,
      dataFile: { ...dataFile(1), partition: [], specId: 0 },
    };
    const { bytes, summary } = writeManifest({
      schema: SCHEMA,
      spec: unpartitionedSpec(0),
      formatVersion: 2,
      content: 'data',
      entries: [entry],
    });
    expect(summary.partitions).toEqual([]);
    expect(readManifest(bytes).entries).toEqual([entry]);
  });

  it('round-trips a delete manifest with position and equality delete files', () => {
    // Position deletes are sorted by file and position, not by a table order, so they carry no sort order id.
    const { sortOrderId: _unused, ...positionDeletes } = dataFile(1, {
      content: 'position-deletes',
      referencedDataFile: 's3://b/t/data/a.parquet',
    });
    const entries: ManifestEntry[] = [
      positionDeletes,
      dataFile(2, { content: 'equality-deletes', equalityIds: [1, 4] }),
    ].map((file) => ({
      status: 'added',
      snapshotId: null,
      sequenceNumber: null,
      fileSequenceNumber: null,
      dataFile: file,
    }));
    const { bytes, summary } = writeManifest({
      schema: SCHEMA,
      spec: SPEC,
      formatVersion: 2,
      content: 'deletes',
      entries,
    });
    const read = readManifest(bytes);
    expect(read.content).toBe('deletes');
    expect(read.metadata.content).toBe('deletes');
    expect(read.entries).toEqual(entries);
    expect(summary.content).toBe('deletes');
  });

  it('widens partition values to the requested type (an int partition read after promotion to long)', () => {
    const schema = parseSchema({
      type: 'struct',
      'schema-id': 0,
      fields: [{ id: 1, name: 'n', required: false, type: 'int' }],
    });
    const spec = buildPartitionSpec({ schema, specId: 0, fields: [{ sourceColumn: 'n', transform: 'identity' }] }).spec;
    const entry: ManifestEntry = {
      status: 'added',
      snapshotId: null,
      sequenceNumber: null,
      fileSequenceNumber: null,
      dataFile: { ...dataFile(1), partition: [7], specId: 0 },
    };
    const { bytes } = writeManifest({ schema, spec, formatVersion: 2, content: 'data', entries: [entry] });
    const promoted = { kind: 'struct' as const, fields: [{ id: 1000, name: 'n', required: false, type: Types.long }] };
    expect(readManifest(bytes, { partitionType: promoted }).entries[0]?.dataFile.partition).toEqual([7n]);
  });
});

describe('writeManifest snapshot ids and validation', () => {
  const added = (snapshotId: bigint | null): ManifestEntry => ({
    status: 'added',
    snapshotId,
    sequenceNumber: null,
    fileSequenceNumber: null,
    dataFile: dataFile(1),
  });

  it('writes the snapshot id into added and deleted entries that have none, and keeps null without one', () => {
    const deleted: ManifestEntry = { ...ENTRIES[2]!, snapshotId: null };
    const withId = readManifest(write([added(null), deleted], { snapshotId: SNAPSHOT }).bytes).entries;
    expect(withId.map((e) => e.snapshotId)).toEqual([SNAPSHOT, SNAPSHOT]);
    const without = readManifest(write([added(null)]).bytes).entries;
    expect(without[0]?.snapshotId).toBeNull();
  });

  const cases: [string, ManifestEntry, RegExp][] = [
    [
      'an existing entry without sequence numbers',
      { ...ENTRIES[1]!, sequenceNumber: null },
      /entry 0 .*status existing but a null sequence number/,
    ],
    [
      'a deleted entry without a file sequence number',
      { ...ENTRIES[2]!, fileSequenceNumber: null },
      /status deleted but a null sequence number/,
    ],
    ['an existing entry without a snapshot id', { ...ENTRIES[1]!, snapshotId: null }, /no snapshotId/],
    ['a file of another spec', { ...added(null), dataFile: dataFile(1, { specId: 9 }) }, /partition spec 9/],
    [
      'a delete file in a data manifest',
      { ...added(null), dataFile: dataFile(1, { content: 'position-deletes' }) },
      /holds position-deletes but this is a data manifest/,
    ],
    [
      'a partition tuple of the wrong length',
      { ...added(null), dataFile: dataFile(1, { partition: [1] }) },
      /has 1 partition values but spec 2 has 17 fields/,
    ],
    [
      'a partition value of the wrong representation',
      { ...added(null), dataFile: dataFile(1, { partition: tuple(1).map((v, i) => (i === 2 ? 5 : v)) }) },
      /partition field "id".*bigint/,
    ],
  ];
  for (const [what, entry, message] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => write([entry])).toThrow(InvalidValueError);
      expect(() => write([entry])).toThrow(message);
    });
  }

  it('refuses an equality delete file without equality ids', () => {
    const entry = { ...added(null), dataFile: dataFile(1, { content: 'equality-deletes' }) };
    expect(() =>
      writeManifest({ schema: SCHEMA, spec: SPEC, formatVersion: 2, content: 'deletes', entries: [entry] }),
    ).toThrow(/equality delete file without equalityIds/);
  });
});

describe('manifest summary', () => {
  it('counts files and rows per status and takes the minimum sequence number of live entries only', () => {
    const { summary } = write(ENTRIES, { snapshotId: SNAPSHOT });
    expect(summary).toMatchObject({
      partitionSpecId: 2,
      content: 'data',
      addedSnapshotId: SNAPSHOT,
      addedFilesCount: 1,
      existingFilesCount: 1,
      deletedFilesCount: 1,
      addedRowsCount: 1001n,
      existingRowsCount: 1002n,
      deletedRowsCount: 1003n,
      // The deleted entry has sequence number 2, but only live files count.
      minSequenceNumber: 3n,
    });
  });

  it('leaves the minimum sequence number unassigned when every live entry inherits', () => {
    expect(write([ENTRIES[0]!]).summary.minSequenceNumber).toBeNull();
  });

  it('summarizes each partition field over all entries: nulls, NaNs and Appendix D bounds', () => {
    const { partitions } = write(ENTRIES).summary;
    const field = (name: string) => partitions[SPEC.fields.findIndex((f) => f.name === name)];
    const hex = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('hex') : bytes);

    expect(partitions).toHaveLength(SPEC.fields.length);
    // day 19724..19726 as 4-byte little-endian ints
    expect([hex(field('ts_day')?.lowerBound), hex(field('ts_day')?.upperBound)]).toEqual(['0c4d0000', '0e4d0000']);
    // entry 2 has a null name
    expect(field('name')).toEqual({
      containsNull: true,
      containsNan: false,
      lowerBound: new TextEncoder().encode('name-1'),
      upperBound: new TextEncoder().encode('name-3'),
    });
    // entry 1 has NaN: flagged, and left out of the bounds
    expect(field('dbl')?.containsNan).toBe(true);
    expect(field('dbl')?.lowerBound).toEqual(encodePartitionBound(Types.double, 3));
    expect(field('dbl')?.upperBound).toEqual(encodePartitionBound(Types.double, 4.5));
    // decimal: minimal two's complement of the unscaled value; -123455 is fe1dc1
    expect(hex(field('amount')?.lowerBound)).toBe('fe1dc1');
    // 63-bit long: 8 bytes little-endian
    expect(hex(field('id')?.upperBound)).toBe('b68ad3c4a88b5b79');
    expect(hex(field('u')?.lowerBound)).toBe('f79c3e09677c4bbda4793f349cb785e7');
  });

  it('orders values as Iceberg does: -0.0 before +0.0, strings by code point, uuids unsigned', () => {
    const schema = parseSchema({
      type: 'struct',
      'schema-id': 0,
      fields: [
        { id: 1, name: 'x', required: false, type: 'double' },
        { id: 2, name: 's', required: false, type: 'string' },
        { id: 3, name: 'u', required: false, type: 'uuid' },
      ],
    });
    const spec = buildPartitionSpec({
      schema,
      specId: 0,
      fields: ['x', 's', 'u'].map((c) => ({ sourceColumn: c, transform: 'identity' })),
    }).spec;
    const entries = (
      [
        [0, '\uffff', '7fffffff-ffff-ffff-ffff-ffffffffffff'],
        [-0, '😀', '80000000-0000-0000-0000-000000000000'],
      ] as PartitionValue[][]
    ).map((partition): ManifestEntry => ({
      status: 'added',
      snapshotId: null,
      sequenceNumber: null,
      fileSequenceNumber: null,
      dataFile: { ...dataFile(1), specId: 0, partition },
    }));
    const [x, s, u] = writeManifest({ schema, spec, formatVersion: 2, content: 'data', entries }).summary.partitions;
    expect(x?.lowerBound).toEqual(encodePartitionBound(Types.double, -0));
    expect(x?.upperBound).toEqual(encodePartitionBound(Types.double, 0));
    // UTF-16 order would put the emoji (a surrogate pair, 0xD83D…) first; code point order puts it last.
    expect(s?.lowerBound).toEqual(new TextEncoder().encode('\uffff'));
    expect(s?.upperBound).toEqual(new TextEncoder().encode('😀'));
    // java.util.UUID#compareTo (signed) would order these the other way round.
    expect(Buffer.from(u!.lowerBound!).toString('hex')).toBe('7fffffffffffffffffffffffffffffff');
    expect(Buffer.from(u!.upperBound!).toString('hex')).toBe('80000000000000000000000000000000');
  });

  it('uses an injected bound encoder (bounds.ts) for every bound', () => {
    const calls: string[] = [];
    const encodeBound: BoundEncoder = (type, value) => {
      calls.push(`${type.kind}:${typeof value}`);
      return new Uint8Array([0x42]);
    };
    const { partitions } = write(ENTRIES, { encodeBound }).summary;
    expect(calls).toHaveLength(SPEC.fields.length * 2);
    expect(calls.slice(0, 2)).toEqual(['date:number', 'date:number']); // ts_day's lower and upper bound values
    expect(partitions.every((p) => p.lowerBound?.[0] === 0x42 && p.upperBound?.[0] === 0x42)).toBe(true);
  });

  it('encodes every partition type in Appendix D form by default', () => {
    const hex = (type: Parameters<typeof encodePartitionBound>[0], value: Parameters<typeof encodePartitionBound>[1]) =>
      Buffer.from(encodePartitionBound(type, value)).toString('hex');
    expect(hex(Types.boolean, true)).toBe('01');
    expect(hex(Types.int, -2)).toBe('feffffff');
    expect(hex(Types.date, 19723)).toBe('0b4d0000');
    expect(hex(Types.long, 1n)).toBe('0100000000000000');
    expect(hex(Types.timestamptz, -1n)).toBe('ffffffffffffffff');
    expect(hex(Types.time, 1000n)).toBe('e803000000000000');
    expect(hex(Types.float, 1)).toBe('0000803f');
    expect(hex(Types.double, 1)).toBe('000000000000f03f');
    expect(hex(Types.string, 'iceberg')).toBe('69636562657267');
    expect(hex(Types.uuid, 'f79c3e09-677c-4bbd-a479-3f349cb785e7')).toBe('f79c3e09677c4bbda4793f349cb785e7');
    expect(hex(Types.decimal(9, 2), { unscaled: 1420n, scale: 2 })).toBe('058c');
    expect(hex(Types.fixed(2), new Uint8Array([0, 255]))).toBe('00ff');
    expect(hex(Types.binary, new Uint8Array([]))).toBe('');
  });
});

describe('readManifest of other writers’ shapes', () => {
  /** A v1 manifest as old Java wrote it: no content or sequence numbers, required snapshot_id, block size. */
  function v1Manifest(): Uint8Array {
    const schema = {
      type: 'record',
      name: 'manifest_entry',
      fields: [
        { name: 'status', type: 'int', 'field-id': 0 },
        { name: 'snapshot_id', type: 'long', 'field-id': 1 },
        {
          name: 'data_file',
          'field-id': 2,
          type: {
            type: 'record',
            name: 'r2',
            fields: [
              { name: 'file_path', type: 'string', 'field-id': 100 },
              { name: 'file_format', type: 'string', 'field-id': 101 },
              {
                name: 'partition',
                'field-id': 102,
                type: {
                  type: 'record',
                  name: 'r102',
                  fields: [
                    {
                      name: 'd',
                      type: ['null', { type: 'int', logicalType: 'date' }],
                      default: null,
                      'field-id': 1000,
                    },
                  ],
                },
              },
              { name: 'record_count', type: 'long', 'field-id': 103 },
              { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
              { name: 'block_size_in_bytes', type: 'long', 'field-id': 105 },
              {
                name: 'distinct_counts',
                type: [
                  'null',
                  {
                    type: 'array',
                    logicalType: 'map',
                    items: {
                      type: 'record',
                      name: 'k123_v124',
                      fields: [
                        { name: 'key', type: 'int', 'field-id': 123 },
                        { name: 'value', type: 'long', 'field-id': 124 },
                      ],
                    },
                  },
                ],
                default: null,
                'field-id': 111,
              },
            ],
          },
        },
      ],
    };
    return encodeAvroFile({
      schema,
      metadata: { schema: '{"type":"struct","fields":[]}', 'partition-spec': '[]' },
      records: [
        {
          status: 1,
          snapshot_id: OLD_SNAPSHOT,
          data_file: {
            file_path: 's3://b/t/data/v1.parquet',
            file_format: 'parquet',
            partition: { d: 17000 },
            record_count: 5n,
            file_size_in_bytes: 100n,
            block_size_in_bytes: 67108864n,
            distinct_counts: [{ key: 1, value: 5n }],
          },
        },
      ],
    });
  }

  it('reads a v1 manifest with the spec defaults and ignores deprecated fields', () => {
    const read = readManifest(v1Manifest());
    expect(read.formatVersion).toBe(1);
    expect(read.content).toBe('data');
    expect(read.partitionSpecId).toBeUndefined();
    expect(read.entries).toEqual([
      {
        status: 'added',
        snapshotId: OLD_SNAPSHOT,
        sequenceNumber: null,
        fileSequenceNumber: null,
        dataFile: {
          content: 'data',
          filePath: 's3://b/t/data/v1.parquet',
          fileFormat: 'PARQUET', // v1 writers used lower case
          partition: [17000],
          specId: 0,
          recordCount: 5n,
          fileSizeInBytes: 100n,
        },
      },
    ]);
  });

  it('ignores fields it does not know, such as v3 first_row_id and content_offset', () => {
    const base = manifestAvroSchema(PARTITION_TYPE);
    const dataFileField = base.fields[4]!;
    const dataFileRecord = dataFileField.type as unknown as { fields: unknown[] };
    const extended = {
      ...base,
      fields: [
        ...base.fields.slice(0, 4),
        {
          ...dataFileField,
          type: {
            ...dataFileRecord,
            fields: [
              ...dataFileRecord.fields,
              { name: 'first_row_id', type: ['null', 'long'], default: null, 'field-id': 142 },
              { name: 'content_offset', type: ['null', 'long'], default: null, 'field-id': 144 },
            ],
          },
        },
      ],
    } as AvroSchema;
    const [written] = decodeAvroFile(write([ENTRIES[0]!]).bytes).records as Record<string, Record<string, unknown>>[];
    const bytes = encodeAvroFile({
      schema: extended,
      metadata: { 'format-version': '2', content: 'data', 'partition-spec-id': '2' },
      records: [{ ...written, data_file: { ...written!.data_file, first_row_id: 7n, content_offset: 4n } }],
    });
    expect(readManifest(bytes, { partitionType: PARTITION_TYPE }).entries).toEqual([ENTRIES[0]]);
  });

  it('refuses format versions above 2 and damaged entries', () => {
    const bytes = write([ENTRIES[0]!]).bytes;
    const decoded = decodeAvroFile(bytes);
    const v3 = encodeAvroFile({
      schema: decoded.schema,
      metadata: { ...decoded.metadata, 'format-version': '3' },
      records: decoded.records,
    });
    expect(() => readManifest(v3, { file: 's3://b/m.avro' })).toThrow(UnsupportedFormatVersionError);
    const badStatus = encodeAvroFile({
      schema: decoded.schema,
      metadata: decoded.metadata,
      records: decoded.records.map((r) => ({ ...(r as object), status: 7 })),
    });
    expect(() => readManifest(badStatus, { file: 's3://b/m.avro' })).toThrow(CorruptAvroFileError);
    expect(() => readManifest(badStatus, { file: 's3://b/m.avro' })).toThrow(/manifest "s3:\/\/b\/m.avro".*status 7/);
  });
});

describe('inheritManifestMetadata', () => {
  const manifest = { manifestPath: 's3://b/m.avro', sequenceNumber: 7n, addedSnapshotId: SNAPSHOT, partitionSpecId: 5 };

  it('gives added entries the manifest sequence number and snapshot id, and keeps explicit values', () => {
    const inherited = inheritManifestMetadata(
      [
        { ...ENTRIES[0]!, snapshotId: null },
        ENTRIES[1]!,
        { ...ENTRIES[0]!, sequenceNumber: 1n, fileSequenceNumber: null },
      ],
      manifest,
    );
    expect(inherited.map((e) => [e.snapshotId, e.sequenceNumber, e.fileSequenceNumber])).toEqual([
      [SNAPSHOT, 7n, 7n],
      [OLD_SNAPSHOT, 3n, 4n],
      // A file added with an older data sequence number keeps it; its file sequence number is the commit's.
      [SNAPSHOT, 1n, 7n],
    ]);
    expect(inherited.every((e) => e.dataFile.specId === 5)).toBe(true);
    expect(ENTRIES[0]!.dataFile.specId).toBe(SPEC.specId); // input untouched
  });

  it('gives every entry of a v1 manifest (sequence number 0) sequence number 0', () => {
    const existing: ManifestEntry = { ...ENTRIES[1]!, sequenceNumber: null, fileSequenceNumber: null };
    const [entry] = inheritManifestMetadata([existing], { ...manifest, sequenceNumber: 0n });
    expect([entry?.sequenceNumber, entry?.fileSequenceNumber]).toEqual([0n, 0n]);
  });

  it('does not invent sequence numbers for existing entries of a v2 manifest', () => {
    const existing: ManifestEntry = { ...ENTRIES[1]!, sequenceNumber: null, fileSequenceNumber: null };
    expect(inheritManifestMetadata([existing], manifest)[0]?.sequenceNumber).toBeNull();
  });

  it('refuses a manifest whose sequence number is not assigned yet', () => {
    expect(() => inheritManifestMetadata(ENTRIES, { ...manifest, sequenceNumber: null })).toThrow(
      /no sequence number yet/,
    );
  });
});
