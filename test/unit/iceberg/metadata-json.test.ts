import { describe, expect, it } from 'vitest';
import {
  CorruptMetadataError,
  InvalidPartitionSpecError,
  InvalidTableConfigError,
  UnsupportedFormatVersionError,
} from '../../../lib/iceberg/errors.js';
import {
  currentSchema,
  currentSnapshot,
  defaultPartitionSpec,
  defaultSortOrder,
  newSnapshotId,
  newTableMetadata,
  parseTableMetadata,
  serializeTableMetadata,
} from '../../../lib/iceberg/metadata-json.js';
import { Transforms } from '../../../lib/iceberg/transforms.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';

const FILE = 's3://warehouse/db/orders/metadata/00003-6ab1d1d8-6a3b-4fd5-9c53-2bb3c2d4f5a6.metadata.json';

/**
 * A v2 table after three commits (append, schema change + repartition, upsert via position deletes), written the
 * way Java's TableMetadataParser writes it: compact, Java's key order, `statistics` arrays present. Snapshot ids
 * are above 2^53, so any trip through a JS number would change them.
 */
const JAVA_METADATA = [
  '{"format-version":2,"table-uuid":"9c12d441-03fe-4693-9a96-a0705ddf69c1","location":"s3://warehouse/db/orders",',
  '"last-sequence-number":3,"last-updated-ms":1760000300000,"last-column-id":5,"current-schema-id":1,',
  '"schemas":[{"type":"struct","schema-id":0,"identifier-field-ids":[1],"fields":[',
  '{"id":1,"name":"id","required":true,"type":"long"},{"id":2,"name":"name","required":false,"type":"string"},',
  '{"id":3,"name":"updated_at","required":false,"type":"timestamptz"}]},',
  '{"type":"struct","schema-id":1,"identifier-field-ids":[1],"fields":[',
  '{"id":1,"name":"id","required":true,"type":"long"},{"id":2,"name":"name","required":false,"type":"string"},',
  '{"id":3,"name":"updated_at","required":false,"type":"timestamptz"},',
  '{"id":4,"name":"tags","required":false,"type":{"type":"list","element-id":5,"element":"string","element-required":true},',
  '"doc":"free-form labels"}]}],',
  '"default-spec-id":1,"partition-specs":[{"spec-id":0,"fields":[]},{"spec-id":1,"fields":[',
  '{"name":"updated_at_day","transform":"day","source-id":3,"field-id":1000},',
  '{"name":"id_bucket","transform":"bucket[16]","source-id":1,"field-id":1001}]}],"last-partition-id":1001,',
  '"default-sort-order-id":1,"sort-orders":[{"order-id":0,"fields":[]},{"order-id":1,"fields":[',
  '{"transform":"identity","source-id":1,"direction":"asc","null-order":"nulls-first"}]}],',
  '"properties":{"write.format.default":"parquet","write.parquet.compression-codec":"zstd","cdc.source":"pg:orders"},',
  '"current-snapshot-id":8744736658442914487,',
  '"refs":{"main":{"snapshot-id":8744736658442914487,"type":"branch"},',
  '"first-load":{"snapshot-id":3051729675574597004,"type":"tag","max-ref-age-ms":9223372036854775807}},',
  '"snapshots":[',
  '{"sequence-number":1,"snapshot-id":3051729675574597004,"timestamp-ms":1760000000000,',
  '"summary":{"operation":"append","added-data-files":"1","added-records":"100","added-files-size":"2345",',
  '"total-records":"100","total-data-files":"1","total-delete-files":"0","total-files-size":"2345",',
  '"total-position-deletes":"0","total-equality-deletes":"0"},',
  '"manifest-list":"s3://warehouse/db/orders/metadata/snap-3051729675574597004-1-0a1b2c3d-0000-4000-8000-000000000001.avro",',
  '"schema-id":0},',
  '{"sequence-number":2,"snapshot-id":6193845722093751555,"parent-snapshot-id":3051729675574597004,',
  '"timestamp-ms":1760000100000,"summary":{"operation":"append","added-data-files":"2","added-records":"40",',
  '"total-records":"140","cdc.commit-lsn":"0/16B3748"},',
  '"manifest-list":"s3://warehouse/db/orders/metadata/snap-6193845722093751555-1-0a1b2c3d-0000-4000-8000-000000000002.avro",',
  '"schema-id":1},',
  '{"sequence-number":3,"snapshot-id":8744736658442914487,"parent-snapshot-id":6193845722093751555,',
  '"timestamp-ms":1760000300000,"summary":{"operation":"overwrite","added-position-delete-files":"1",',
  '"added-position-deletes":"3","added-records":"3","total-records":"143","cdc.commit-lsn":"0/16B3A10"},',
  '"manifest-list":"s3://warehouse/db/orders/metadata/snap-8744736658442914487-1-0a1b2c3d-0000-4000-8000-000000000003.avro",',
  '"schema-id":1}],',
  '"statistics":[],"partition-statistics":[],',
  '"snapshot-log":[{"timestamp-ms":1760000000000,"snapshot-id":3051729675574597004},',
  '{"timestamp-ms":1760000100000,"snapshot-id":6193845722093751555},',
  '{"timestamp-ms":1760000300000,"snapshot-id":8744736658442914487}],',
  '"metadata-log":[{"timestamp-ms":1759999990000,"metadata-file":"s3://warehouse/db/orders/metadata/00000-a.metadata.json"},',
  '{"timestamp-ms":1760000000000,"metadata-file":"s3://warehouse/db/orders/metadata/00001-b.metadata.json"},',
  '{"timestamp-ms":1760000100000,"metadata-file":"s3://warehouse/db/orders/metadata/00002-c.metadata.json"}]}',
].join('');

/** Parses the fixture after `edit` changed its JSON (edited with lossless-safe string replacement). */
function parseEdited(edit: (text: string) => string): () => unknown {
  const text = edit(JAVA_METADATA);
  if (text === JAVA_METADATA) throw new Error('the edit did not change the fixture');
  return () => parseTableMetadata(text, FILE);
}

function corruptionOf(fn: () => unknown): CorruptMetadataError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CorruptMetadataError) return err;
    throw err;
  }
  throw new Error('expected a CorruptMetadataError');
}

describe('reading and writing table metadata', () => {
  it('round-trips a Java-written v2 file byte for byte', () => {
    expect(serializeTableMetadata(parseTableMetadata(JAVA_METADATA, FILE))).toBe(JAVA_METADATA);
  });

  it('keeps 64-bit ids, sequence numbers and timestamps exact as bigints', () => {
    const metadata = parseTableMetadata(JAVA_METADATA, FILE);
    expect(metadata.currentSnapshotId).toBe(8744736658442914487n);
    // What JSON.parse would have produced instead:
    expect(BigInt(Number('8744736658442914487'))).not.toBe(8744736658442914487n);
    expect(metadata.snapshots.map((s) => s.snapshotId)).toEqual([
      3051729675574597004n,
      6193845722093751555n,
      8744736658442914487n,
    ]);
    expect(metadata.snapshots[2]?.parentSnapshotId).toBe(6193845722093751555n);
    expect(metadata.snapshots[0]?.sequenceNumber).toBe(1n);
    expect(metadata.lastSequenceNumber).toBe(3n);
    expect(metadata.lastUpdatedMs).toBe(1760000300000n);
    expect(metadata.refs['first-load']).toEqual({
      snapshotId: 3051729675574597004n,
      type: 'tag',
      maxRefAgeMs: 9223372036854775807n,
    });
    expect(metadata.snapshotLog[0]).toEqual({ timestampMs: 1760000000000n, snapshotId: 3051729675574597004n });
  });

  it('exposes the parsed model', () => {
    const metadata = parseTableMetadata(JAVA_METADATA, FILE);
    expect(currentSchema(metadata).fields.map((f) => f.name)).toEqual(['id', 'name', 'updated_at', 'tags']);
    expect(defaultPartitionSpec(metadata).fields.map((f) => f.transform)).toEqual([
      Transforms.day,
      Transforms.bucket(16),
    ]);
    expect(defaultSortOrder(metadata).orderId).toBe(1);
    expect(currentSnapshot(metadata)?.summary).toMatchObject({ operation: 'overwrite', 'cdc.commit-lsn': '0/16B3A10' });
    expect(metadata.properties['cdc.source']).toBe('pg:orders');
  });

  it('keeps unknown keys, with numbers beyond 64 bits, and writes them back', () => {
    const withExtras = JAVA_METADATA.replace(
      '"schema-id":0},',
      '"schema-id":0,"x-vendor":{"checkpoint":123456789012345678901234567890}},',
    ).replace(/}$/, ',"x-table-flag":true,"x-big":18446744073709551616}');
    const metadata = parseTableMetadata(withExtras, FILE);
    expect(Object.keys(metadata.extra)).toEqual(['x-table-flag', 'x-big']);
    expect(serializeTableMetadata(metadata)).toBe(withExtras);
  });

  it('reads Java’s -1 and an absent field as “no current snapshot”, and writes -1 like Java', () => {
    const empty = newTableMetadata({
      schema: { schemaId: 0, identifierFieldIds: [], fields: [{ id: 1, name: 'a', required: false, type: Types.int }] },
      location: 's3://b/t',
      tableUuid: '9c12d441-03fe-4693-9a96-a0705ddf69c1',
      nowMs: 1n,
    });
    const text = serializeTableMetadata(empty);
    expect(text).toContain('"current-snapshot-id":-1,');
    expect(parseTableMetadata(text, FILE).currentSnapshotId).toBeNull();
    expect(parseTableMetadata(text.replace('"current-snapshot-id":-1,', ''), FILE).currentSnapshotId).toBeNull();
    expect(
      parseTableMetadata(text.replace('"current-snapshot-id":-1,', '"current-snapshot-id":null,'), FILE)
        .currentSnapshotId,
    ).toBeNull();
  });

  it('adds the main branch when refs is absent, as the spec requires', () => {
    const withoutRefs = JAVA_METADATA.replace(/"refs":\{.*?\}\},/, '');
    const metadata = parseTableMetadata(withoutRefs, FILE);
    expect(metadata.refs).toEqual({ main: { snapshotId: 8744736658442914487n, type: 'branch' } });
  });

  it('reads a snapshot without sequence-number (carried over from v1) as 0 and omits it again on write', () => {
    const upgraded = JAVA_METADATA.replace(
      '{"sequence-number":1,"snapshot-id":3051729675574597004',
      '{"snapshot-id":3051729675574597004',
    );
    const metadata = parseTableMetadata(upgraded, FILE);
    expect(metadata.snapshots[0]?.sequenceNumber).toBe(0n);
    expect(serializeTableMetadata(metadata)).toBe(upgraded);
  });

  it('reads other writers’ key orders and pretty-printing to the same model', () => {
    const metadata = parseTableMetadata(JAVA_METADATA, FILE);
    const pretty = serializeTableMetadata(metadata, { pretty: true });
    expect(pretty).toContain('\n  "format-version": 2,');
    expect(parseTableMetadata(pretty, FILE)).toEqual(metadata);
  });
});

describe('validation names the file and the field', () => {
  it('reports bad JSON and duplicate keys', () => {
    const err = corruptionOf(() => parseTableMetadata('{"format-version":2,', FILE));
    expect(err.file).toBe(FILE);
    expect(err.message).toContain(`table metadata file "${FILE}" is invalid: not valid JSON`);
    expect(corruptionOf(parseEdited((t) => t.replace('"location"', '"table-uuid":"x","location"'))).message).toMatch(
      /Duplicate key 'table-uuid'/,
    );
  });

  it('refuses format versions other than 2', () => {
    expect(parseEdited((t) => t.replace('"format-version":2', '"format-version":1'))).toThrow(
      UnsupportedFormatVersionError,
    );
    expect(parseEdited((t) => t.replace('"format-version":2', '"format-version":3'))).toThrow(/format-version 3/);
  });

  const cases: [string, (text: string) => string, string, RegExp][] = [
    ['a missing required field', (t) => t.replace('"last-sequence-number":3,', ''), 'last-sequence-number', /missing/],
    ['a bad uuid', (t) => t.replace('9c12d441-03fe', '9c12d441'), 'table-uuid', /expected a UUID/],
    [
      'a fractional id',
      (t) => t.replace('"snapshot-id":3051729675574597004,"timestamp', '"snapshot-id":1.5,"timestamp'),
      'snapshots[0].snapshot-id',
      /64-bit integer, got 1\.5/,
    ],
    [
      'an id above 2^63',
      (t) => t.replace('"current-snapshot-id":8744736658442914487', '"current-snapshot-id":9223372036854775808'),
      'current-snapshot-id',
      /64-bit integer/,
    ],
    [
      'a string where a number belongs',
      (t) => t.replace('"last-column-id":5', '"last-column-id":"5"'),
      'last-column-id',
      /32-bit integer/,
    ],
    [
      'an unknown current schema',
      (t) => t.replace('"current-schema-id":1', '"current-schema-id":7'),
      'current-schema-id',
      /schema 7 is not in schemas/,
    ],
    [
      'an unknown default spec',
      (t) => t.replace('"default-spec-id":1', '"default-spec-id":4'),
      'default-spec-id',
      /spec 4/,
    ],
    [
      'an unknown default sort order',
      (t) => t.replace('"default-sort-order-id":1', '"default-sort-order-id":2'),
      'default-sort-order-id',
      /sort order 2/,
    ],
    [
      'a last-column-id below used ids',
      (t) => t.replace('"last-column-id":5', '"last-column-id":4'),
      'last-column-id',
      /uses field id 5/,
    ],
    [
      'a last-partition-id below used ids',
      (t) => t.replace('"last-partition-id":1001', '"last-partition-id":1000'),
      'last-partition-id',
      /uses field id 1001/,
    ],
    [
      'a sequence number above last-sequence-number',
      (t) => t.replace('"last-sequence-number":3', '"last-sequence-number":2'),
      'snapshots[2].sequence-number',
      /3 is greater than last-sequence-number 2/,
    ],
    [
      'a current snapshot that does not exist',
      (t) =>
        t
          .replaceAll('8744736658442914487', '8744736658442914488')
          .replace('"current-snapshot-id":8744736658442914488', '"current-snapshot-id":1'),
      'current-snapshot-id',
      /snapshot 1 is not in snapshots/,
    ],
    [
      'a main branch that disagrees',
      (t) => t.replace('"main":{"snapshot-id":8744736658442914487', '"main":{"snapshot-id":6193845722093751555'),
      'refs.main.snapshot-id',
      /main points at snapshot 6193845722093751555, but current-snapshot-id is 8744736658442914487/,
    ],
    [
      'a ref to a missing snapshot',
      (t) => t.replace('"first-load":{"snapshot-id":3051729675574597004', '"first-load":{"snapshot-id":42'),
      'refs.first-load.snapshot-id',
      /snapshot 42 is not in snapshots/,
    ],
    ['a bad ref type', (t) => t.replace('"type":"tag"', '"type":"label"'), 'refs.first-load.type', /"branch" or "tag"/],
    [
      'an unknown operation',
      (t) => t.replace('"operation":"overwrite"', '"operation":"upsert"'),
      'snapshots[2].summary.operation',
      /got "upsert"/,
    ],
    [
      'a non-string summary value',
      (t) => t.replace('"added-records":"40"', '"added-records":40'),
      'snapshots[1].summary.added-records',
      /JSON string/,
    ],
    [
      'duplicate snapshot ids',
      (t) => t.replace('"snapshot-id":6193845722093751555,"parent', '"snapshot-id":3051729675574597004,"parent'),
      'snapshots[1].snapshot-id',
      /used by an earlier entry/,
    ],
    [
      'an unordered snapshot log',
      (t) => t.replace('{"timestamp-ms":1760000100000,"snapshot-id"', '{"timestamp-ms":1750000000000,"snapshot-id"'),
      'snapshot-log[1].timestamp-ms',
      /time order/,
    ],
    [
      'a metadata log after last-updated-ms',
      (t) => t.replace('"timestamp-ms":1760000100000,"metadata-file"', '"timestamp-ms":1770000000000,"metadata-file"'),
      'last-updated-ms',
      /before the last metadata-log entry/,
    ],
    [
      'an empty sort-orders list',
      (t) => t.replace(/"sort-orders":\[.*?\}\]\}\],/, '"sort-orders":[],'),
      'sort-orders',
      /at least one entry/,
    ],
    [
      'a bad schema type',
      (t) => t.replace('"type":"timestamptz"}]},', '"type":"timestamp_ns"}]},'),
      'schemas[0].fields[2].type',
      /format v3/,
    ],
    [
      'a bad transform',
      (t) => t.replace('"transform":"bucket[16]"', '"transform":"bucket[0]"'),
      'partition-specs[1].fields[1].transform',
      /number of buckets/,
    ],
    [
      'a v1-only manifests list',
      (t) =>
        t.replace(
          '"manifest-list":"s3://warehouse/db/orders/metadata/snap-3051729675574597004-1-0a1b2c3d-0000-4000-8000-000000000001.avro"',
          '"manifests":[]',
        ),
      'snapshots[0]',
      /v1-only/,
    ],
  ];
  it.each(cases)('%s', (_name, edit, jsonPath, problem) => {
    const err = corruptionOf(parseEdited(edit));
    expect(err.kind).toBe('corrupt-metadata');
    expect(err.failureType).toBe('Corrupt');
    expect(err.file).toBe(FILE);
    expect(err.jsonPath).toBe(jsonPath);
    expect(err.problem).toMatch(problem);
    expect(err.message).toContain(`table metadata file "${FILE}" is invalid at ${jsonPath}: `);
  });
});

describe('creating table metadata', () => {
  const userSchema: Schema = {
    schemaId: 7,
    identifierFieldIds: [10],
    fields: [
      { id: 10, name: 'id', required: true, type: Types.long },
      { id: 30, name: 'updated_at', required: false, type: Types.timestamptz },
      {
        id: 20,
        name: 'address',
        required: false,
        type: { kind: 'struct', fields: [{ id: 21, name: 'city', required: false, type: Types.string }] },
      },
    ],
  };
  const options = {
    schema: userSchema,
    location: 's3://warehouse/db/orders/',
    tableUuid: '9C12D441-03FE-4693-9A96-A0705DDF69C1',
    nowMs: 1760000000000n,
  };

  it('reassigns column ids from 1 in Java’s order and keeps identifier fields pointing at the same columns', () => {
    const metadata = newTableMetadata(options);
    const schema = currentSchema(metadata);
    expect(schema.schemaId).toBe(0);
    expect(schema.fields.map((f) => [f.name, f.id])).toEqual([
      ['id', 1],
      ['updated_at', 2],
      ['address', 3],
    ]);
    expect(schema.fields[2]?.type).toEqual({
      kind: 'struct',
      fields: [{ id: 4, name: 'city', required: false, type: Types.string }],
    });
    expect(schema.identifierFieldIds).toEqual([1]);
    expect(metadata.lastColumnId).toBe(4);
  });

  it('starts empty: sequence 0, no snapshots, unpartitioned spec 0 with last-partition-id 999, unsorted order 0', () => {
    const metadata = newTableMetadata(options);
    expect(metadata).toMatchObject({
      formatVersion: 2,
      tableUuid: '9c12d441-03fe-4693-9a96-a0705ddf69c1',
      location: 's3://warehouse/db/orders',
      lastSequenceNumber: 0n,
      lastUpdatedMs: 1760000000000n,
      currentSnapshotId: null,
      snapshots: [],
      refs: {},
      partitionSpecs: [{ specId: 0, fields: [] }],
      defaultSpecId: 0,
      lastPartitionId: 999,
      sortOrders: [{ orderId: 0, fields: [] }],
      defaultSortOrderId: 0,
      properties: { 'write.parquet.compression-codec': 'zstd' },
    });
    expect(parseTableMetadata(serializeTableMetadata(metadata), FILE)).toEqual(metadata);
  });

  it('rebuilds a spec and sort order given on the caller’s ids with fresh ids', () => {
    const metadata = newTableMetadata({
      ...options,
      partitionSpec: {
        specId: 5,
        fields: [
          { sourceId: 30, fieldId: 2000, name: 'day', transform: Transforms.day },
          { sourceId: 10, fieldId: 2001, name: 'id_bucket', transform: Transforms.bucket(8) },
        ],
      },
      sortOrder: {
        orderId: 3,
        fields: [{ sourceId: 21, transform: Transforms.identity, direction: 'desc', nullOrder: 'nulls-last' }],
      },
      properties: { 'write.parquet.compression-codec': 'snappy', 'format-version': '2', owner: 'cdc' },
    });
    expect(defaultPartitionSpec(metadata)).toEqual({
      specId: 0,
      fields: [
        { sourceId: 2, fieldId: 1000, name: 'day', transform: Transforms.day },
        { sourceId: 1, fieldId: 1001, name: 'id_bucket', transform: Transforms.bucket(8) },
      ],
    });
    expect(metadata.lastPartitionId).toBe(1001);
    expect(defaultSortOrder(metadata)).toEqual({
      orderId: 1,
      fields: [{ sourceId: 4, transform: Transforms.identity, direction: 'desc', nullOrder: 'nulls-last' }],
    });
    // The caller's codec wins over the default; reserved properties are not stored.
    expect(metadata.properties).toEqual({ 'write.parquet.compression-codec': 'snappy', owner: 'cdc' });
  });

  it('accepts partition fields by column name', () => {
    const metadata = newTableMetadata({
      ...options,
      partitionSpec: [{ sourceColumn: 'address.city', transform: 'truncate[2]' }],
    });
    expect(defaultPartitionSpec(metadata).fields).toEqual([
      { sourceId: 4, fieldId: 1000, name: 'address.city_trunc', transform: Transforms.truncate(2) },
    ]);
  });

  it('refuses relative locations, other format versions and specs that do not fit the schema', () => {
    expect(() => newTableMetadata({ ...options, location: 'warehouse/orders' })).toThrow(InvalidTableConfigError);
    expect(() => newTableMetadata({ ...options, properties: { 'format-version': '3' } })).toThrow(
      UnsupportedFormatVersionError,
    );
    expect(() =>
      newTableMetadata({ ...options, partitionSpec: [{ sourceColumn: 'address', transform: 'identity' }] }),
    ).toThrow(InvalidPartitionSpecError);
  });
});

describe('snapshot ids', () => {
  it('are positive 63-bit values that avoid existing ids', () => {
    const existing = new Set<bigint>();
    for (let i = 0; i < 200; i += 1) {
      const id = newSnapshotId(existing);
      expect(id > 0n && id < 2n ** 63n).toBe(true);
      expect(existing.has(id)).toBe(false);
      existing.add(id);
    }
  });
});
