import { describe, expect, it } from 'vitest';
import { InvalidPartitionSpecError } from '../../../lib/iceberg/errors.js';
import {
  buildPartitionSpec,
  escapePathSegment,
  parsePartitionSpec,
  partitionPath,
  partitionSpecToJson,
  partitionType,
  partitionValues,
  specsEquivalent,
  unpartitionedSpec,
  validatePartitionSpec,
  type PartitionSpec,
} from '../../../lib/iceberg/partition-spec.js';
import { Transforms } from '../../../lib/iceberg/transforms.js';
import { parseSchema, Types, type Schema } from '../../../lib/iceberg/types.js';
import {
  parseDecimal,
  timestampFromIso,
  timestamptzFromIso,
  type PrimitiveValue,
} from '../../../lib/iceberg/values.js';

const schema: Schema = parseSchema({
  type: 'struct',
  'schema-id': 0,
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'category', required: false, type: 'string' },
    { id: 3, name: 'ts', required: false, type: 'timestamptz' },
    { id: 4, name: 'price', required: false, type: 'decimal(10, 2)' },
    { id: 5, name: 'payload', required: false, type: 'binary' },
    {
      id: 6,
      name: 'tags',
      required: false,
      type: { type: 'list', 'element-id': 7, element: 'string', 'element-required': true },
    },
    {
      id: 8,
      name: 'loc',
      required: false,
      type: { type: 'struct', fields: [{ id: 9, name: 'city', required: false, type: 'string' }] },
    },
    { id: 10, name: 'score', required: false, type: 'double' },
  ],
});

describe('partition spec JSON', () => {
  it('round-trips the spec example with Java’s key order', () => {
    const json = {
      'spec-id': 1,
      fields: [
        { name: 'ts_day', transform: 'day', 'source-id': 3, 'field-id': 1000 },
        { name: 'id_bucket', transform: 'bucket[16]', 'source-id': 1, 'field-id': 1001 },
      ],
    };
    const spec = parsePartitionSpec(json);
    expect(spec.fields[1]).toEqual({ sourceId: 1, fieldId: 1001, name: 'id_bucket', transform: Transforms.bucket(16) });
    expect(JSON.stringify(partitionSpecToJson(spec))).toBe(JSON.stringify(json));
  });

  it('names the field on bad input', () => {
    expect(() =>
      parsePartitionSpec({
        'spec-id': 0,
        fields: [{ name: 'b', transform: 'bucket[0]', 'source-id': 1, 'field-id': 1000 }],
      }),
    ).toThrow('invalid Iceberg partition spec at fields[0].transform: the number of buckets must be in 1..2147483647');
    expect(() =>
      parsePartitionSpec({ 'spec-id': 0, fields: [{ name: 'b', transform: 'day', 'source-id': 1 }] }),
    ).toThrow(/fields\[0\]\.field-id: required field is missing/);
    expect(() =>
      parsePartitionSpec({
        'spec-id': 0,
        fields: [
          { name: 'a', transform: 'day', 'source-id': 3, 'field-id': 1000 },
          { name: 'a', transform: 'identity', 'source-id': 2, 'field-id': 1001 },
        ],
      }),
    ).toThrow(/"a" is used twice/);
  });

  it('refuses v3 multi-argument fields', () => {
    expect(() =>
      parsePartitionSpec({
        'spec-id': 0,
        fields: [{ name: 'z', transform: 'zorder', 'source-ids': [1, 2], 'field-id': 1000 }],
      }),
    ).toThrow(/format v3/);
  });
});

describe('building specs with v2 field ids', () => {
  it('assigns ids from 1000 and Java’s default names', () => {
    const { spec, lastPartitionId } = buildPartitionSpec({
      schema,
      specId: 0,
      fields: [
        { sourceColumn: 'id', transform: 'bucket[16]' },
        { sourceColumn: 'ts', transform: Transforms.day },
        { sourceColumn: 'category', transform: 'identity' },
        { sourceColumn: 'loc.city', transform: 'truncate[3]' },
      ],
    });
    expect(spec.fields.map((f) => [f.name, f.fieldId, f.sourceId])).toEqual([
      ['id_bucket', 1000, 1],
      ['ts_day', 1001, 3],
      ['category', 1002, 2],
      ['loc.city_trunc', 1003, 9],
    ]);
    expect(lastPartitionId).toBe(1003);
  });

  it('continues after last-partition-id and reuses the id of an equivalent historical field', () => {
    const old: PartitionSpec = {
      specId: 0,
      fields: [
        { sourceId: 3, fieldId: 1000, name: 'ts_day', transform: Transforms.day },
        { sourceId: 1, fieldId: 1001, name: 'id_bucket', transform: Transforms.bucket(16) },
      ],
    };
    // Spec 1 dropped id_bucket; spec 2 adds it back and adds a new field.
    const { spec, lastPartitionId } = buildPartitionSpec({
      schema,
      specId: 2,
      existingSpecs: [old, { specId: 1, fields: [old.fields[0]!] }],
      lastPartitionId: 1001,
      fields: [
        { sourceColumn: 'ts', transform: 'day' },
        { sourceColumn: 'id', transform: 'bucket[16]' },
        { sourceColumn: 'id', transform: 'bucket[8]', name: 'id_bucket_8' },
      ],
    });
    expect(spec.fields.map((f) => f.fieldId)).toEqual([1000, 1001, 1002]);
    expect(lastPartitionId).toBe(1002);
  });

  it('does not reuse an id when an explicit name differs', () => {
    const old: PartitionSpec = {
      specId: 0,
      fields: [{ sourceId: 3, fieldId: 1000, name: 'ts_day', transform: Transforms.day }],
    };
    const { spec } = buildPartitionSpec({
      schema,
      specId: 1,
      existingSpecs: [old],
      lastPartitionId: 1000,
      fields: [{ sourceColumn: 'ts', transform: 'day', name: 'event_day' }],
    });
    expect(spec.fields[0]?.fieldId).toBe(1001);
  });

  it('refuses unknown columns, non-primitive or repeated sources, and inapplicable transforms', () => {
    const build = (fields: Parameters<typeof buildPartitionSpec>[0]['fields']) => () =>
      buildPartitionSpec({ schema, specId: 0, fields });
    expect(build([{ sourceColumn: 'missing', transform: 'identity' }])).toThrow(/column "missing" is not in schema 0/);
    expect(build([{ sourceColumn: 'loc', transform: 'identity' }])).toThrow(/is a struct; partition by primitives/);
    expect(build([{ sourceColumn: 'tags.element', transform: 'identity' }])).toThrow(/inside a list or map/);
    expect(build([{ sourceColumn: 'score', transform: 'bucket[4]' }])).toThrow(/column "score": bucket applies to/);
    expect(
      build([
        { sourceColumn: 'ts', transform: 'day' },
        { sourceColumn: 'ts', transform: 'hour' },
      ]),
    ).toThrow(/redundant with "ts_day"/);
    expect(build([{ sourceColumn: 'id', transform: 'bucket[4]', name: 'category' }])).toThrow(
      /"category" is also a schema column/,
    );
    expect(
      build([
        { sourceColumn: 'id', transform: 'bucket[4]', name: 'x' },
        { sourceColumn: 'ts', transform: 'day', name: 'x' },
      ]),
    ).toThrow(InvalidPartitionSpecError);
  });

  it('treats specs with the same fields as equivalent regardless of ids', () => {
    const a = buildPartitionSpec({ schema, specId: 0, fields: [{ sourceColumn: 'ts', transform: 'day' }] }).spec;
    const b: PartitionSpec = { specId: 5, fields: [{ ...a.fields[0]!, fieldId: 1042 }] };
    expect(specsEquivalent(a, b)).toBe(true);
    expect(specsEquivalent(a, unpartitionedSpec())).toBe(false);
  });
});

describe('partition tuples and paths', () => {
  const { spec } = buildPartitionSpec({
    schema,
    specId: 0,
    fields: [
      { sourceColumn: 'id', transform: 'bucket[16]' },
      { sourceColumn: 'ts', transform: 'day' },
    ],
  });

  it('computes the tuple and the partition type', () => {
    const row: Record<number, PrimitiveValue | null> = { 1: 34n, 3: timestamptzFromIso('2017-11-16T14:31:08-08:00') };
    expect(partitionValues(spec, schema, (id) => row[id] ?? null)).toEqual([3, 17486]);
    expect(partitionType(spec, schema)).toEqual({
      kind: 'struct',
      fields: [
        { id: 1000, name: 'id_bucket', required: false, type: Types.int },
        { id: 1001, name: 'ts_day', required: false, type: Types.date },
      ],
    });
  });

  it('produces Java’s Hive-style paths', () => {
    expect(partitionPath(spec, schema, [3, 17486])).toBe('id_bucket=3/ts_day=2017-11-16');
    expect(partitionPath(spec, schema, [null, null])).toBe('id_bucket=null/ts_day=null');
  });

  it('URL-encodes names and values like Java’s URLEncoder', () => {
    const identity = buildPartitionSpec({
      schema,
      specId: 1,
      fields: [
        { sourceColumn: 'category', transform: 'identity' },
        { sourceColumn: 'ts', transform: 'identity', name: 'at time' },
        { sourceColumn: 'price', transform: 'identity' },
        { sourceColumn: 'payload', transform: 'truncate[2]' },
      ],
    }).spec;
    const path = partitionPath(identity, schema, [
      'a/b c~*é',
      timestampFromIso('2017-11-16T22:31:08'),
      parseDecimal('14.20'),
      new Uint8Array([0xfb, 0xff]),
    ]);
    expect(path).toBe(
      'category=a%2Fb+c%7E*%C3%A9/at+time=2017-11-16T22%3A31%3A08%2B00%3A00/price=14.20/payload_trunc=%2B%2F8%3D',
    );
    expect(escapePathSegment("a b~*'()!")).toBe('a+b%7E*%27%28%29%21');
  });

  it('refuses a tuple of the wrong length', () => {
    expect(() => partitionPath(spec, schema, [1])).toThrow(/1 values but spec 0 has 2 fields/);
  });

  it('validates a parsed spec against a schema', () => {
    const parsed = parsePartitionSpec({
      'spec-id': 0,
      fields: [{ name: 'p', transform: 'hour', 'source-id': 2, 'field-id': 1000 }],
    });
    expect(() => validatePartitionSpec(parsed, schema, 'partition-specs[0]')).toThrow(
      'invalid Iceberg partition spec at partition-specs[0].fields[0].transform: column "category": hour applies to timestamp and timestamptz, not string',
    );
  });
});
