import { describe, expect, it } from 'vitest';
import { decodeAvroFile, encodeAvroFile } from '../../../lib/iceberg/avro/container-file.js';
import {
  avroFieldName,
  avroSchemaForPrimitive,
  decimalRequiredBytes,
  primitiveFromAvro,
  primitiveToAvro,
  primitiveTypeOfAvro,
} from '../../../lib/iceberg/avro/iceberg-types.js';
import { InvalidValueError } from '../../../lib/iceberg/errors.js';
import { Types, type PrimitiveType } from '../../../lib/iceberg/types.js';
import type { PrimitiveValue } from '../../../lib/iceberg/values.js';

const fail = (description: string): never => {
  throw new Error(`mismatch: ${description}`);
};

/** One sample per primitive type, in the values.ts representation. */
const SAMPLES: [PrimitiveType, PrimitiveValue][] = [
  [Types.boolean, true],
  [Types.int, -2147483648],
  [Types.long, 8744736658442914487n],
  [Types.float, 0.25],
  [Types.double, -1.5e300],
  [Types.date, -719162],
  [Types.time, 86399999999n],
  [Types.timestamp, -62135596800000000n],
  [Types.timestamptz, 1700000000123456n],
  [Types.string, 'Grüße 🧊'],
  [Types.uuid, 'f79c3e09-677c-4bbd-a479-3f349cb785e7'],
  [Types.fixed(3), new Uint8Array([0, 128, 255])],
  [Types.binary, new Uint8Array([])],
  [Types.decimal(9, 2), { unscaled: -123456789n, scale: 2 }],
  [Types.decimal(38, 0), { unscaled: 10n ** 38n - 1n, scale: 0 }],
];

describe('decimalRequiredBytes', () => {
  it('matches the minimum fixed sizes of the Avro/Parquet decimal tables for every precision', () => {
    const bytesForPrecision = [
      1, 1, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 11, 11, 11, 12, 12, 13, 13, 13, 14, 14, 15,
      15, 16, 16, 16,
    ];
    expect(bytesForPrecision.map((_, i) => decimalRequiredBytes(i + 1))).toEqual(bytesForPrecision);
  });
});

describe('avroFieldName', () => {
  it('keeps valid names and escapes the rest the way Java sanitizes them', () => {
    expect(avroFieldName('ts_day')).toBe('ts_day');
    expect(avroFieldName('address.city')).toBe('address_x2Ecity');
    expect(avroFieldName('1st')).toBe('_1st');
    expect(avroFieldName('a-b c')).toBe('a_x2Db_x20c');
  });
});

describe('avroSchemaForPrimitive', () => {
  it('gives the Appendix A Avro type with logical types and Java names', () => {
    const defined = new Set<string>();
    expect(avroSchemaForPrimitive(Types.date, defined)).toEqual({ type: 'int', logicalType: 'date' });
    expect(avroSchemaForPrimitive(Types.time, defined)).toEqual({ type: 'long', logicalType: 'time-micros' });
    expect(avroSchemaForPrimitive(Types.timestamp, defined)).toEqual({
      type: 'long',
      logicalType: 'timestamp-micros',
      'adjust-to-utc': false,
    });
    expect(avroSchemaForPrimitive(Types.timestamptz, defined)).toEqual({
      type: 'long',
      logicalType: 'timestamp-micros',
      'adjust-to-utc': true,
    });
    expect(avroSchemaForPrimitive(Types.uuid, defined)).toEqual({
      type: 'fixed',
      name: 'uuid_fixed',
      size: 16,
      logicalType: 'uuid',
    });
    expect(avroSchemaForPrimitive(Types.decimal(9, 2), defined)).toEqual({
      type: 'fixed',
      name: 'decimal_9_2',
      size: 4,
      logicalType: 'decimal',
      precision: 9,
      scale: 2,
    });
    expect(avroSchemaForPrimitive(Types.fixed(3), defined)).toEqual({ type: 'fixed', name: 'fixed_3', size: 3 });
    expect(avroSchemaForPrimitive(Types.binary, defined)).toBe('bytes');
  });

  it('defines a named type once and refers to it by name afterwards, as Avro requires', () => {
    const defined = new Set<string>();
    expect(typeof avroSchemaForPrimitive(Types.decimal(9, 2), defined)).toBe('object');
    expect(avroSchemaForPrimitive(Types.decimal(9, 2), defined)).toBe('decimal_9_2');
    expect(avroSchemaForPrimitive(Types.uuid, defined)).not.toBe('uuid_fixed');
    expect(avroSchemaForPrimitive(Types.uuid, defined)).toBe('uuid_fixed');
  });

  it('maps back to the same Iceberg type', () => {
    for (const [type] of SAMPLES) {
      expect(primitiveTypeOfAvro(avroSchemaForPrimitive(type, new Set()))).toEqual(type);
    }
    // pyiceberg and older writers may store a uuid as a string; nanosecond timestamps are v3.
    expect(primitiveTypeOfAvro({ type: 'string', logicalType: 'uuid' })).toEqual(Types.uuid);
    expect(primitiveTypeOfAvro({ type: 'long', logicalType: 'timestamp-nanos' })).toBeUndefined();
  });
});

describe('primitiveToAvro / primitiveFromAvro', () => {
  it('round-trips every primitive type through a real Avro file', () => {
    const defined = new Set<string>();
    const schema = {
      type: 'record',
      name: 'values',
      fields: SAMPLES.map(([type], i) => ({
        name: `f${i}`,
        type: ['null', avroSchemaForPrimitive(type, defined)],
        default: null,
      })),
    };
    const record = Object.fromEntries(SAMPLES.map(([type, value], i) => [`f${i}`, primitiveToAvro(type, value)]));
    const nulls = Object.fromEntries(SAMPLES.map(([type], i) => [`f${i}`, primitiveToAvro(type, null)]));
    const [back, backNulls] = decodeAvroFile(encodeAvroFile({ schema, records: [record, nulls] })).records as Record<
      string,
      unknown
    >[];
    SAMPLES.forEach(([type, value], i) => {
      expect(primitiveFromAvro(type, back?.[`f${i}`], fail)).toEqual(value);
      expect(primitiveFromAvro(type, backNulls?.[`f${i}`], fail)).toBeNull();
    });
  });

  it('stores decimals sign-extended in the fixed size for the precision, and uuids as 16 big-endian bytes', () => {
    expect([...(primitiveToAvro(Types.decimal(9, 2), { unscaled: -1n, scale: 2 }) as Uint8Array)]).toEqual([
      255, 255, 255, 255,
    ]);
    expect([...(primitiveToAvro(Types.decimal(9, 2), { unscaled: 9999n, scale: 2 }) as Uint8Array)]).toEqual([
      0, 0, 0x27, 0x0f,
    ]);
    expect([...(primitiveToAvro(Types.uuid, '00010203-0405-0607-0809-0a0b0c0d0e0f') as Uint8Array)]).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ]);
  });

  it('widens an int read where a long is expected (a promoted column)', () => {
    expect(primitiveFromAvro(Types.long, 42, fail)).toBe(42n);
  });

  it('refuses values of the wrong representation on write and on read', () => {
    expect(() => primitiveToAvro(Types.long, 42)).toThrow(InvalidValueError);
    expect(() => primitiveFromAvro(Types.fixed(4), Buffer.from([1, 2]), fail)).toThrow(/mismatch: 2 bytes/);
    expect(() => primitiveFromAvro(Types.string, 3n, fail)).toThrow(/mismatch: the long 3/);
  });
});
