import { describe, expect, it } from 'vitest';
import { SourceTableError, ValueConversionError } from '../../../lib/cdc/errors.js';
import {
  icebergTypeForPg,
  numericTypmod,
  parsePgArray,
  pgTextToIceberg,
  sessionSettingsSql,
  type PgType,
} from '../../../lib/cdc/pg-types.js';
import { Types, typeToString, type IcebergType } from '../../../lib/iceberg/types.js';
import { checkValue, daysFromCivil } from '../../../lib/iceberg/values.js';

const base = (name: string, typmod = -1, display = name): PgType => ({ kind: 'base', name, typmod, display });
const array = (element: PgType): PgType => ({
  kind: 'array',
  name: `_${element.name}`,
  typmod: element.typmod,
  element,
  display: `${element.display}[]`,
});
// numeric(p,s) typmod as PostgreSQL stores it: ((p << 16) | (s & 0x7ff)) + 4.
const numericMod = (p: number, s: number) => ((p << 16) | (s & 0x7ff)) + 4;
const mapped = (type: PgType, options = {}) => typeToString(icebergTypeForPg(type, options));
const list = (element: IcebergType): IcebergType => ({ kind: 'list', elementId: 0, elementRequired: false, element });

describe('PostgreSQL → Iceberg types', () => {
  it('maps every common type', () => {
    expect(mapped(base('int2'))).toBe('int');
    expect(mapped(base('int4'))).toBe('int');
    expect(mapped(base('int8'))).toBe('long');
    expect(mapped(base('float4'))).toBe('float');
    expect(mapped(base('float8'))).toBe('double');
    expect(mapped(base('bool'))).toBe('boolean');
    for (const t of ['text', 'varchar', 'bpchar', 'json', 'jsonb', 'timetz', 'interval', 'inet', 'citext']) {
      expect(mapped(base(t)), t).toBe('string');
    }
    expect(mapped(base('bytea'))).toBe('binary');
    expect(mapped(base('date'))).toBe('date');
    expect(mapped(base('time', 3))).toBe('time');
    expect(mapped(base('timestamp'))).toBe('timestamp');
    expect(mapped(base('timestamptz', 6))).toBe('timestamptz');
    expect(mapped(base('uuid'))).toBe('uuid');
    expect(mapped({ kind: 'enum', name: 'mood', typmod: -1, display: 'mood' })).toBe('string');
    expect(mapped(array(base('int4')))).toBe('list<int>');
    expect(mapped(array(base('numeric', numericMod(10, 2))))).toBe('list<decimal(10, 2)>');
  });

  it('maps numeric(p,s) exactly, including negative scales and scale above precision', () => {
    expect(numericTypmod(numericMod(10, 2))).toEqual({ precision: 10, scale: 2 });
    expect(numericTypmod(-1)).toBeUndefined();
    expect(mapped(base('numeric', numericMod(10, 2)))).toBe('decimal(10, 2)');
    expect(mapped(base('numeric', numericMod(38, 0)))).toBe('decimal(38, 0)');
    // numeric(3,-2) holds 12300 (5 digits); numeric(3,5) holds 0.00123 (5 fraction digits).
    expect(numericTypmod(numericMod(3, -2))).toEqual({ precision: 3, scale: -2 });
    expect(mapped(base('numeric', numericMod(3, -2)))).toBe('decimal(5, 0)');
    expect(mapped(base('numeric', numericMod(3, 5)))).toBe('decimal(5, 5)');
  });

  it('maps unconstrained and over-wide numerics to decimal(38, …) or to string, as chosen', () => {
    expect(mapped(base('numeric'))).toBe('decimal(38, 18)');
    expect(mapped(base('numeric'), { wideNumeric: 'string' })).toBe('string');
    expect(mapped(base('numeric', numericMod(50, 10)))).toBe('decimal(38, 10)');
    expect(mapped(base('numeric', numericMod(50, 10)), { wideNumeric: 'string' })).toBe('string');
  });

  it('refuses unmapped types with an error naming the table and column', () => {
    const point = base('point');
    expect(() => icebergTypeForPg(point, {}, { table: 'public.shapes', name: 'center' })).toThrow(SourceTableError);
    try {
      icebergTypeForPg(
        { kind: 'other', name: 'int4range', typmod: -1, display: 'int4range' },
        {},
        {
          table: 'public.t',
          name: 'r',
        },
      );
    } catch (err) {
      expect(err).toBeInstanceOf(SourceTableError);
      expect((err as SourceTableError).kind).toBe('unsupported-type');
      expect((err as SourceTableError).failureType).toBe('Unsupported');
      expect((err as Error).message).toMatch(/column "r" of table "public\.t" has type int4range/);
    }
  });

  it('pins the session formats the conversions rely on', () => {
    const sql = sessionSettingsSql(true);
    expect(sql).toContain("SET LOCAL DateStyle = 'ISO, YMD'");
    expect(sql).toContain("SET LOCAL bytea_output = 'hex'");
    expect(sessionSettingsSql()).not.toContain('LOCAL');
  });
});

describe('PostgreSQL text → Iceberg values', () => {
  const convert = (type: IcebergType, text: string | null) => pgTextToIceberg(type, text);
  const fails = (type: IcebergType, text: string, pattern: RegExp) => {
    expect(() => convert(type, text), text).toThrow(ValueConversionError);
    expect(() => convert(type, text)).toThrow(pattern);
  };

  it('converts integers with range checks', () => {
    expect(convert(Types.int, '-32768')).toBe(-32768);
    expect(convert(Types.int, '2147483647')).toBe(2147483647);
    fails(Types.int, '2147483648', /32-bit/);
    fails(Types.int, '1.5', /32-bit/);
    fails(Types.int, 'abc', /32-bit/);
    expect(convert(Types.long, '9223372036854775807')).toBe(9223372036854775807n);
    expect(convert(Types.long, '-9223372036854775808')).toBe(-9223372036854775808n);
    fails(Types.long, '9223372036854775808', /64-bit/);
  });

  it('keeps null as null for every type', () => {
    for (const type of [Types.int, Types.string, Types.decimal(5, 2), Types.timestamptz, list(Types.int)]) {
      expect(convert(type, null)).toBeNull();
    }
  });

  it('converts numerics exactly to unscaled bigints, refusing rounding, NaN and overflow', () => {
    expect(convert(Types.decimal(10, 2), '123.45')).toEqual({ unscaled: 12345n, scale: 2 });
    expect(convert(Types.decimal(10, 2), '-0.50')).toEqual({ unscaled: -50n, scale: 2 });
    expect(convert(Types.decimal(10, 2), '7')).toEqual({ unscaled: 700n, scale: 2 });
    // Trailing zeros beyond the scale lose nothing.
    expect(convert(Types.decimal(38, 18), '1.500000000000000000000')).toEqual({
      unscaled: 15n * 10n ** 17n,
      scale: 18,
    });
    expect(convert(Types.decimal(38, 0), '99999999999999999999999999999999999999')).toEqual({
      unscaled: 10n ** 38n - 1n,
      scale: 0,
    });
    fails(Types.decimal(10, 2), '1.005', /rounding/);
    fails(Types.decimal(5, 2), '1234.5', /more than 5 digits/);
    fails(Types.decimal(38, 18), 'NaN', /NaN or infinity/);
    fails(Types.decimal(38, 18), 'Infinity', /NaN or infinity/);
    fails(Types.decimal(38, 18), '12abc', /plain decimal/);
    const value = convert(Types.decimal(10, 2), '123.45');
    expect(() => checkValue(Types.decimal(10, 2), value)).not.toThrow();
  });

  it('converts floats, including special values and float32 rounding', () => {
    expect(convert(Types.double, '3.141592653589793')).toBe(3.141592653589793);
    expect(convert(Types.double, '1e+300')).toBe(1e300);
    expect(convert(Types.double, '-1.5e-07')).toBe(-1.5e-7);
    expect(convert(Types.double, 'NaN')).toBeNaN();
    expect(convert(Types.double, '-Infinity')).toBe(-Infinity);
    expect(convert(Types.float, '1.1')).toBe(Math.fround(1.1));
    fails(Types.double, 'one', /number/);
  });

  it('converts booleans, strings, uuids, json and bytea', () => {
    expect(convert(Types.boolean, 't')).toBe(true);
    expect(convert(Types.boolean, 'f')).toBe(false);
    fails(Types.boolean, 'yes', /t or f/);
    expect(convert(Types.string, '  padded  ')).toBe('  padded  ');
    expect(convert(Types.string, '{"a": [1, 2]}')).toBe('{"a": [1, 2]}');
    expect(convert(Types.uuid, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    fails(Types.uuid, 'not-a-uuid', /UUID/);
    expect(convert(Types.binary, '\\x00ff10')).toEqual(new Uint8Array([0, 255, 16]));
    expect(convert(Types.binary, '\\x')).toEqual(new Uint8Array([]));
    // The legacy escape format: printable bytes as is, others as \ooo, backslash doubled.
    expect(convert(Types.binary, 'a\\000\\\\b\\377')).toEqual(new Uint8Array([97, 0, 92, 98, 255]));
    fails(Types.binary, '\\x0', /hex/);
  });

  it('converts dates, including BC, far future, and refuses infinity', () => {
    expect(convert(Types.date, '1970-01-01')).toBe(0);
    expect(convert(Types.date, '2024-02-29')).toBe(daysFromCivil(2024, 2, 29));
    expect(convert(Types.date, '1969-12-31')).toBe(-1);
    expect(convert(Types.date, '0001-01-01')).toBe(daysFromCivil(1, 1, 1));
    // 1 BC is ISO year 0, 44 BC is year -43.
    expect(convert(Types.date, '0001-12-31 BC')).toBe(daysFromCivil(0, 12, 31));
    expect(convert(Types.date, '0044-03-15 BC')).toBe(daysFromCivil(-43, 3, 15));
    expect(convert(Types.date, '10000-01-01')).toBe(daysFromCivil(10000, 1, 1));
    fails(Types.date, 'infinity', /infinity/);
    fails(Types.date, '-infinity', /infinity/);
    fails(Types.date, '2023-02-29', /calendar date/);
    fails(Types.date, '01/02/2024', /ISO date/);
  });

  it('converts times to microseconds and refuses 24:00:00', () => {
    expect(convert(Types.time, '00:00:00')).toBe(0n);
    expect(convert(Types.time, '13:45:07.123456')).toBe(((13n * 60n + 45n) * 60n + 7n) * 1_000_000n + 123456n);
    expect(convert(Types.time, '23:59:59.5')).toBe(86_399_500_000n);
    fails(Types.time, '24:00:00', /24:00:00/);
    fails(Types.time, '12:00:00+02', /without a zone/);
  });

  it('converts timestamps to microseconds exactly, before 1970 and with fractions', () => {
    expect(convert(Types.timestamp, '1970-01-01 00:00:00')).toBe(0n);
    expect(convert(Types.timestamp, '2024-01-31 13:45:00.000001')).toBe(1706708700000001n);
    // Before 1970 the fraction still counts forward from the second: .25 s after 23:59:59 on 1969-12-31.
    expect(convert(Types.timestamp, '1969-12-31 23:59:59.25')).toBe(-750_000n);
    expect(convert(Types.timestamp, '1900-01-01 00:00:00.000001')).toBe(-2208988800000000n + 1n);
    expect(convert(Types.timestamp, '0044-03-15 12:00:00 BC')).toBe(
      BigInt(daysFromCivil(-43, 3, 15)) * 86_400_000_000n + 12n * 3_600_000_000n,
    );
    fails(Types.timestamp, 'infinity', /infinity/);
    fails(Types.timestamp, '2024-01-31 13:45:00+00', /no time zone|has a UTC offset/);
  });

  it('converts timestamptz with any offset to UTC microseconds', () => {
    expect(convert(Types.timestamptz, '2024-01-31 13:45:00+00')).toBe(1706708700000000n);
    expect(convert(Types.timestamptz, '2024-01-31 19:15:00+05:30')).toBe(1706708700000000n);
    expect(convert(Types.timestamptz, '2024-01-31 08:45:00.5-05')).toBe(1706708700500000n);
    // Historic local mean time offsets have seconds (Amsterdam before 1937: +00:19:32).
    expect(convert(Types.timestamptz, '1900-01-01 00:19:32+00:19:32')).toBe(-2208988800000000n);
    expect(convert(Types.timestamptz, '1969-12-31 23:59:59.999999+00')).toBe(-1n);
    fails(Types.timestamptz, '2024-01-31 13:45:00', /UTC offset/);
    fails(Types.timestamptz, '-infinity', /infinity/);
  });

  it('converts arrays with quoting, escapes and NULL elements', () => {
    expect(convert(list(Types.int), '{1,2,3}')).toEqual([1, 2, 3]);
    expect(convert(list(Types.int), '{}')).toEqual([]);
    expect(convert(list(Types.int), '{1,NULL,3}')).toEqual([1, null, 3]);
    expect(convert(list(Types.string), '{a,"b c",NULL,"NULL","q\\"x","back\\\\slash",""}')).toEqual([
      'a',
      'b c',
      null,
      'NULL',
      'q"x',
      'back\\slash',
      '',
    ]);
    expect(convert(list(Types.string), '{"{not nested}","a,b"}')).toEqual(['{not nested}', 'a,b']);
    expect(convert(list(Types.decimal(10, 2)), '{1.50,-2.25}')).toEqual([
      { unscaled: 150n, scale: 2 },
      { unscaled: -225n, scale: 2 },
    ]);
    expect(convert(list(Types.timestamptz), '{"2024-01-31 13:45:00+00"}')).toEqual([1706708700000000n]);
    expect(convert(list(Types.int), '[0:2]={7,8,9}')).toEqual([7, 8, 9]);
    fails(list(Types.int), '{{1,2},{3,4}}', /multi-dimensional/);
    fails(list(Types.int), '{1,x}', /32-bit/);
    fails(list(Types.int), '{1,2', /unterminated|expected/);
  });

  it('parses array literals into element texts', () => {
    expect(parsePgArray('{ a , b }')).toEqual(['a', 'b']);
    expect(parsePgArray('{"",null}')).toEqual(['', null]);
    expect(parsePgArray('{\\NULL}')).toEqual(['NULL']);
    expect(() => parsePgArray('1,2')).toThrow(/starts with/);
  });
});
