import { describe, expect, it } from 'vitest';
import {
  applyTransform,
  bindTransform,
  canTransform,
  hashValue,
  murmur3x86_32,
  parseTransform,
  transformedValueToHumanString,
  transformResultType,
  transformToString,
  Transforms,
} from '../../../lib/iceberg/transforms.js';
import { InvalidTransformError, InvalidValueError } from '../../../lib/iceberg/errors.js';
import { Types, type PrimitiveType } from '../../../lib/iceberg/types.js';
import {
  dateFromIso,
  parseDecimal,
  timeFromIso,
  timestampFromIso,
  timestamptzFromIso,
  type PrimitiveValue,
} from '../../../lib/iceberg/values.js';

const bytes = (...values: number[]) => new Uint8Array(values);

describe('Murmur3 x86_32', () => {
  // Reference values of the algorithm itself (seed 0), checked against Guava's murmur3_32_fixed.
  it('matches the reference hash for empty input and inputs with 1, 2 and 3 tail bytes', () => {
    expect(murmur3x86_32(new Uint8Array())).toBe(0);
    expect(murmur3x86_32(new TextEncoder().encode('a'))).toBe(0x3c2569b2 | 0);
    expect(murmur3x86_32(new TextEncoder().encode('ab'))).toBe(0x9bbfd75f | 0);
    expect(murmur3x86_32(new TextEncoder().encode('abc'))).toBe(0xb3dd93fa | 0);
    expect(murmur3x86_32(new TextEncoder().encode('abcd'))).toBe(0x43ed676a | 0);
  });
});

describe('bucket hash (spec Appendix B test vectors)', () => {
  const vectors: [string, PrimitiveType, PrimitiveValue, number][] = [
    ['int 34', Types.int, 34, 2017239379],
    ['long 34L', Types.long, 34n, 2017239379],
    ['decimal 14.20', Types.decimal(9, 2), parseDecimal('14.20'), -500754589],
    ['date 2017-11-16', Types.date, dateFromIso('2017-11-16'), -653330422],
    ['time 22:31:08', Types.time, timeFromIso('22:31:08'), -662762989],
    ['timestamp 2017-11-16T22:31:08', Types.timestamp, timestampFromIso('2017-11-16T22:31:08'), -2047944441],
    [
      'timestamp 2017-11-16T22:31:08.000001',
      Types.timestamp,
      timestampFromIso('2017-11-16T22:31:08.000001'),
      -1207196810,
    ],
    [
      'timestamptz 2017-11-16T14:31:08-08:00',
      Types.timestamptz,
      timestamptzFromIso('2017-11-16T14:31:08-08:00'),
      -2047944441,
    ],
    [
      'timestamptz 2017-11-16T14:31:08.000001-08:00',
      Types.timestamptz,
      timestamptzFromIso('2017-11-16T14:31:08.000001-08:00'),
      -1207196810,
    ],
    ['string iceberg', Types.string, 'iceberg', 1210000089],
    ['uuid f79c3e09-…', Types.uuid, 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 1488055340],
    ['fixed 00 01 02 03', Types.fixed(4), bytes(0, 1, 2, 3), -188683207],
    ['binary 00 01 02 03', Types.binary, bytes(0, 1, 2, 3), -188683207],
    // "Not currently valid for bucketing" but specified, and they exercise the long encoding further.
    ['boolean true', Types.boolean, true, 1392991556],
    ['float 1.0F', Types.float, 1, -142385009],
    ['float 0.0F', Types.float, 0, 1669671676],
    ['float -0.0F', Types.float, -0, 1669671676],
    ['double 1.0D', Types.double, 1, -142385009],
    ['double -0.0D', Types.double, -0, 1669671676],
  ];
  it.each(vectors)('%s', (_name, type, value, expected) => {
    expect(hashValue(type, value)).toBe(expected);
  });

  it('hashes "34" differently from 34, as the spec notes for int→string promotion', () => {
    expect(hashValue(Types.string, '34')).toBe(-427558391);
  });

  it('hashes an uppercase UUID string like its lowercase form', () => {
    expect(hashValue(Types.uuid, 'F79C3E09-677C-4BBD-A479-3F349CB785E7')).toBe(1488055340);
  });

  it('hashes every NaN bit pattern alike', () => {
    const otherNaN = new DataView(new ArrayBuffer(8));
    otherNaN.setBigUint64(0, 0x7ff0000000000001n);
    expect(hashValue(Types.double, otherNaN.getFloat64(0))).toBe(hashValue(Types.double, Number.NaN));
  });

  it('hashes decimals by their minimal two’s-complement bytes, independent of scale', () => {
    // 14.20 and 1.420 have the same unscaled value 1420.
    expect(hashValue(Types.decimal(9, 3), parseDecimal('1.420'))).toBe(-500754589);
    // Negative and boundary values need a sign byte: 128 is 00 80, -128 is 80, -129 is FF 7F. The literal
    // values come from Guava's murmur3_32_fixed over Java's BigInteger.toByteArray().
    expect(hashValue(Types.decimal(3, 0), parseDecimal('128'))).toBe(1544076949);
    expect(hashValue(Types.decimal(3, 0), parseDecimal('-129'))).toBe(-435537839);
    expect(hashValue(Types.decimal(3, 0), parseDecimal('128'))).toBe(murmur3x86_32(bytes(0x00, 0x80)));
    expect(hashValue(Types.decimal(3, 0), parseDecimal('-128'))).toBe(murmur3x86_32(bytes(0x80)));
    expect(hashValue(Types.decimal(3, 0), parseDecimal('-129'))).toBe(murmur3x86_32(bytes(0xff, 0x7f)));
    expect(hashValue(Types.decimal(3, 0), parseDecimal('0'))).toBe(murmur3x86_32(bytes(0x00)));
  });

  it('hashes non-ASCII strings as UTF-8, counting a surrogate pair as one 4-byte character', () => {
    // -609850616 is Guava's murmur3_32_fixed().hashString("é😀", UTF_8), which Java's bucket transform uses.
    expect(hashValue(Types.string, 'é😀')).toBe(-609850616);
    expect(hashValue(Types.string, 'é😀')).toBe(murmur3x86_32(bytes(0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80)));
  });

  it('refuses values with the wrong representation', () => {
    expect(() => hashValue(Types.long, 34)).toThrow(InvalidValueError);
    expect(() => hashValue(Types.int, 2 ** 31)).toThrow(/32-bit integer/);
    expect(() => hashValue(Types.decimal(9, 2), parseDecimal('14.2'))).toThrow(/scale 2/);
    expect(() => hashValue(Types.fixed(4), bytes(1, 2, 3))).toThrow(/4 bytes/);
    expect(() => hashValue(Types.string, 'a\ud800b')).toThrow(/lone surrogate/);
  });
});

describe('bucket[N]', () => {
  it('is (hash & Integer.MAX_VALUE) % N, always non-negative', () => {
    // hash(34) = 2017239379 → 2017239379 % 16 = 3
    expect(applyTransform(Transforms.bucket(16), Types.int, 34)).toBe(3);
    // A negative hash loses its sign bit first: -2047944441 & 0x7fffffff = 99539207 → % 16 = 7
    expect(applyTransform(Transforms.bucket(16), Types.timestamp, timestampFromIso('2017-11-16T22:31:08'))).toBe(7);
    expect(applyTransform(Transforms.bucket(100), Types.string, 'iceberg')).toBe(1210000089 % 100);
  });

  it('gives int and long the same bucket, so int→long promotion keeps partitions', () => {
    for (const v of [-5, 0, 1, 34, 2147483647, -2147483648]) {
      expect(applyTransform(Transforms.bucket(7), Types.int, v)).toBe(
        applyTransform(Transforms.bucket(7), Types.long, BigInt(v)),
      );
    }
  });

  it('maps null to null', () => {
    expect(applyTransform(Transforms.bucket(16), Types.long, null)).toBeNull();
  });
});

describe('truncate[W]', () => {
  it('truncates ints and longs toward negative infinity', () => {
    const t10 = Transforms.truncate(10);
    expect(applyTransform(t10, Types.int, 1)).toBe(0);
    expect(applyTransform(t10, Types.int, -1)).toBe(-10);
    expect(applyTransform(t10, Types.int, -10)).toBe(-10);
    expect(applyTransform(t10, Types.int, -11)).toBe(-20);
    expect(applyTransform(t10, Types.long, -1n)).toBe(-10n);
    expect(applyTransform(t10, Types.long, 9223372036854775807n)).toBe(9223372036854775800n);
  });

  it('refuses a result outside the type instead of wrapping around', () => {
    expect(() => applyTransform(Transforms.truncate(10), Types.int, -2147483648)).toThrow(InvalidValueError);
    expect(() => applyTransform(Transforms.truncate(10), Types.long, -(2n ** 63n))).toThrow(InvalidValueError);
  });

  it('truncates decimals on the unscaled value, keeping the scale (spec example 10.65 → 10.50)', () => {
    expect(applyTransform(Transforms.truncate(50), Types.decimal(9, 2), parseDecimal('10.65'))).toEqual(
      parseDecimal('10.50'),
    );
    expect(applyTransform(Transforms.truncate(10), Types.decimal(9, 2), parseDecimal('-0.05'))).toEqual(
      parseDecimal('-0.10'),
    );
  });

  it('truncates strings to code points, never splitting a surrogate pair', () => {
    expect(applyTransform(Transforms.truncate(3), Types.string, 'iceberg')).toBe('ice');
    expect(applyTransform(Transforms.truncate(2), Types.string, '😀😁😂')).toBe('😀😁');
    expect(applyTransform(Transforms.truncate(3), Types.string, 'aé😀b')).toBe('aé😀');
    expect(applyTransform(Transforms.truncate(5), Types.string, 'ab')).toBe('ab');
  });

  it('truncates binary to bytes', () => {
    expect(applyTransform(Transforms.truncate(3), Types.binary, bytes(1, 2, 3, 4, 5))).toEqual(bytes(1, 2, 3));
  });
});

describe('year, month, day, hour', () => {
  const ts = (iso: string) => timestampFromIso(iso);
  it('counts from 1970 for dates and timestamps', () => {
    expect(applyTransform(Transforms.year, Types.date, dateFromIso('2017-11-16'))).toBe(47);
    expect(applyTransform(Transforms.month, Types.date, dateFromIso('2017-11-16'))).toBe(47 * 12 + 10);
    expect(applyTransform(Transforms.day, Types.date, dateFromIso('2017-11-16'))).toBe(17486);
    expect(applyTransform(Transforms.day, Types.timestamp, ts('2017-11-16T22:31:08'))).toBe(17486);
    expect(applyTransform(Transforms.hour, Types.timestamp, ts('2017-11-16T22:31:08'))).toBe(17486 * 24 + 22);
    expect(applyTransform(Transforms.day, Types.timestamptz, timestamptzFromIso('2017-11-16T20:00:00-08:00'))).toBe(
      17487,
    );
  });

  it('rounds toward negative infinity before 1970', () => {
    expect(applyTransform(Transforms.year, Types.date, dateFromIso('1969-12-31'))).toBe(-1);
    expect(applyTransform(Transforms.year, Types.date, dateFromIso('1969-01-01'))).toBe(-1);
    expect(applyTransform(Transforms.year, Types.date, dateFromIso('1968-12-31'))).toBe(-2);
    expect(applyTransform(Transforms.month, Types.date, dateFromIso('1969-12-01'))).toBe(-1);
    expect(applyTransform(Transforms.month, Types.date, dateFromIso('1969-11-30'))).toBe(-2);
    expect(applyTransform(Transforms.day, Types.timestamp, ts('1969-12-31T23:59:59.999999'))).toBe(-1);
    expect(applyTransform(Transforms.hour, Types.timestamp, ts('1969-12-31T23:59:59.999999'))).toBe(-1);
    expect(applyTransform(Transforms.year, Types.timestamp, ts('1969-12-31T23:59:59.999999'))).toBe(-1);
    expect(applyTransform(Transforms.month, Types.timestamp, -1n)).toBe(-1);
    expect(applyTransform(Transforms.year, Types.date, dateFromIso('1900-03-01'))).toBe(-70);
  });

  it('follows the spec where Java is off by one: a pre-1970 .999999 just after a unit boundary', () => {
    // 1969-12-31T00:00:00.999999 is in day -1. Java's DateTimeUtil.convertMicros returns -2 here (checked on
    // Java 17 with the same arithmetic); the spec and pyiceberg say -1.
    expect(applyTransform(Transforms.day, Types.timestamp, ts('1969-12-31T00:00:00.999999'))).toBe(-1);
    expect(applyTransform(Transforms.hour, Types.timestamp, ts('1969-12-31T23:00:00.999999'))).toBe(-1);
  });

  it('has the result types of the spec table', () => {
    expect(transformResultType(Transforms.day, Types.timestamp)).toEqual(Types.date);
    expect(transformResultType(Transforms.hour, Types.timestamptz)).toEqual(Types.int);
    expect(transformResultType(Transforms.bucket(4), Types.string)).toEqual(Types.int);
    expect(transformResultType(Transforms.truncate(4), Types.string)).toEqual(Types.string);
    expect(transformResultType(Transforms.identity, Types.decimal(9, 2))).toEqual(Types.decimal(9, 2));
  });
});

describe('identity and void', () => {
  it('identity returns the value; void always null', () => {
    expect(applyTransform(Transforms.identity, Types.string, 'x')).toBe('x');
    expect(applyTransform(Transforms.void, Types.string, 'x')).toBeNull();
    expect(applyTransform(Transforms.void, Types.long, 5n)).toBeNull();
  });
});

describe('parsing and string forms', () => {
  it('round-trips every transform string', () => {
    for (const text of ['identity', 'bucket[16]', 'truncate[4]', 'year', 'month', 'day', 'hour', 'void']) {
      expect(transformToString(parseTransform(text))).toBe(text);
    }
  });

  it('reads names case-insensitively, like Java', () => {
    expect(parseTransform('BUCKET[8]')).toEqual({ kind: 'bucket', numBuckets: 8 });
    expect(parseTransform('Day')).toEqual({ kind: 'day' });
  });

  it('keeps unknown transforms (readers must tolerate them) but refuses to apply them', () => {
    const zorder = parseTransform('zorder');
    expect(zorder).toEqual({ kind: 'unknown', name: 'zorder' });
    expect(transformToString(zorder)).toBe('zorder');
    expect(() => bindTransform(zorder, Types.int)).toThrow(InvalidTransformError);
  });

  it('refuses zero or out-of-range bucket counts and widths', () => {
    expect(() => parseTransform('bucket[0]')).toThrow(InvalidTransformError);
    expect(() => parseTransform('truncate[0]')).toThrow(/width/);
    expect(() => parseTransform('bucket[2147483648]')).toThrow(/1\.\.2147483647/);
  });
});

describe('which transforms apply to which types', () => {
  it('follows the spec table', () => {
    expect(canTransform(Transforms.bucket(4), Types.uuid)).toBe(true);
    expect(canTransform(Transforms.bucket(4), Types.boolean)).toBe(false);
    expect(canTransform(Transforms.bucket(4), Types.double)).toBe(false);
    expect(canTransform(Transforms.truncate(4), Types.fixed(4))).toBe(false);
    expect(canTransform(Transforms.truncate(4), Types.binary)).toBe(true);
    expect(canTransform(Transforms.hour, Types.date)).toBe(false);
    expect(canTransform(Transforms.day, Types.date)).toBe(true);
    expect(canTransform(Transforms.year, Types.time)).toBe(false);
    expect(
      canTransform(Transforms.identity, { kind: 'list', elementId: 2, elementRequired: true, element: Types.int }),
    ).toBe(false);
  });

  it('names the transform, the column and the accepted types when binding fails', () => {
    expect(() => bindTransform(Transforms.hour, Types.date, 'created_on')).toThrow(
      'invalid transform "hour" on column "created_on": hour applies to timestamp and timestamptz, not date',
    );
  });
});

describe('human strings for partition paths (Java Transform.toHumanString)', () => {
  const human = (transform: ReturnType<typeof parseTransform>, type: PrimitiveType, value: PrimitiveValue | null) =>
    transformedValueToHumanString(transform, type, applyTransform(transform, type, value));

  it('prints time-transform ordinals as dates', () => {
    const ts = timestampFromIso('2017-11-16T22:31:08');
    expect(human(Transforms.year, Types.timestamp, ts)).toBe('2017');
    expect(human(Transforms.month, Types.timestamp, ts)).toBe('2017-11');
    expect(human(Transforms.day, Types.timestamp, ts)).toBe('2017-11-16');
    expect(human(Transforms.hour, Types.timestamp, ts)).toBe('2017-11-16-22');
    expect(human(Transforms.month, Types.date, dateFromIso('1969-12-31'))).toBe('1969-12');
    expect(human(Transforms.hour, Types.timestamp, timestampFromIso('1969-12-31T23:59:59'))).toBe('1969-12-31-23');
  });

  it('prints identity values by type', () => {
    expect(human(Transforms.identity, Types.timestamp, timestampFromIso('2017-11-16T22:31:08'))).toBe(
      '2017-11-16T22:31:08',
    );
    expect(human(Transforms.identity, Types.timestamp, timestampFromIso('2017-11-16T22:31:00.500'))).toBe(
      '2017-11-16T22:31:00.5',
    );
    expect(human(Transforms.identity, Types.timestamptz, timestamptzFromIso('2017-11-16T14:31:08-08:00'))).toBe(
      '2017-11-16T22:31:08+00:00',
    );
    expect(human(Transforms.identity, Types.time, timeFromIso('22:31:00'))).toBe('22:31');
    expect(human(Transforms.identity, Types.time, timeFromIso('22:31:08.5'))).toBe('22:31:08.500');
    expect(human(Transforms.identity, Types.date, dateFromIso('2017-11-16'))).toBe('2017-11-16');
    expect(human(Transforms.identity, Types.decimal(9, 2), parseDecimal('14.20'))).toBe('14.20');
    expect(human(Transforms.identity, Types.decimal(38, 10), { unscaled: 1n, scale: 10 })).toBe('1E-10');
    expect(human(Transforms.identity, Types.double, 1)).toBe('1.0');
    expect(human(Transforms.identity, Types.double, 1e7)).toBe('1.0E7');
    expect(human(Transforms.identity, Types.float, Math.fround(0.1))).toBe('0.1');
    expect(human(Transforms.identity, Types.binary, bytes(0, 1, 2, 3))).toBe('AAECAw==');
    expect(human(Transforms.identity, Types.boolean, false)).toBe('false');
    expect(human(Transforms.truncate(4), Types.string, 'iceberg')).toBe('iceb');
    expect(human(Transforms.bucket(16), Types.int, 34)).toBe('3');
    expect(human(Transforms.identity, Types.long, null)).toBe('null');
  });
});
