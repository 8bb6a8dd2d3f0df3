import { describe, expect, it } from 'vitest';
import {
  compareFloats,
  compareStrings,
  compareValues,
  decodeBound,
  encodeBound,
  truncateLowerBound,
  truncateUpperBound,
} from '../../../lib/iceberg/bounds.js';
import { InvalidValueError } from '../../../lib/iceberg/errors.js';
import { Types, type PrimitiveType } from '../../../lib/iceberg/types.js';
import type { PrimitiveValue } from '../../../lib/iceberg/values.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

// Every expected byte string below was worked out by hand from Appendix D.
const VECTORS: [string, PrimitiveType, PrimitiveValue, string][] = [
  ['boolean false', Types.boolean, false, '00'],
  ['boolean true', Types.boolean, true, '01'],
  ['int 1', Types.int, 1, '01000000'],
  ['int -1', Types.int, -1, 'ffffffff'],
  ['int 0x12345678', Types.int, 0x12345678, '78563412'],
  ['int min', Types.int, -2147483648, '00000080'],
  ['date 1970-01-02', Types.date, 1, '01000000'],
  ['date 1969-12-31', Types.date, -1, 'ffffffff'],
  ['long 0x0102030405060708', Types.long, 0x0102030405060708n, '0807060504030201'],
  ['long -2', Types.long, -2n, 'feffffffffffffff'],
  ['long max', Types.long, 2n ** 63n - 1n, 'ffffffffffffff7f'],
  ['time 00:00:01', Types.time, 1_000_000n, '40420f0000000000'],
  ['timestamp 1 µs', Types.timestamp, 1n, '0100000000000000'],
  ['timestamptz -1 µs', Types.timestamptz, -1n, 'ffffffffffffffff'],
  ['float 1.0', Types.float, 1, '0000803f'],
  ['float -2.5', Types.float, -2.5, '000020c0'],
  ['double 1.0', Types.double, 1, '000000000000f03f'],
  ['double -0.0', Types.double, -0, '0000000000000080'],
  ['double Infinity', Types.double, Infinity, '000000000000f07f'],
  ['string ascii', Types.string, 'iceberg', '69636562657267'],
  ['string é', Types.string, 'é', 'c3a9'],
  ['string emoji', Types.string, '😀', 'f09f9880'],
  ['string empty', Types.string, '', ''],
  ['uuid', Types.uuid, 'f79c3e09-677c-4bbd-a479-3f349cb785e7', 'f79c3e09677c4bbda4793f349cb785e7'],
  ['fixed[3]', Types.fixed(3), fromHex('00ff10'), '00ff10'],
  ['binary', Types.binary, fromHex('deadbeef'), 'deadbeef'],
  ['decimal 14.20', Types.decimal(9, 2), { unscaled: 1420n, scale: 2 }, '058c'],
  ['decimal 0', Types.decimal(9, 2), { unscaled: 0n, scale: 2 }, '00'],
  ['decimal -1', Types.decimal(9, 2), { unscaled: -1n, scale: 2 }, 'ff'],
  ['decimal 127', Types.decimal(9, 0), { unscaled: 127n, scale: 0 }, '7f'],
  ['decimal 128 (sign byte)', Types.decimal(9, 0), { unscaled: 128n, scale: 0 }, '0080'],
  ['decimal -128', Types.decimal(9, 0), { unscaled: -128n, scale: 0 }, '80'],
  ['decimal -129', Types.decimal(9, 0), { unscaled: -129n, scale: 0 }, 'ff7f'],
  [
    'decimal 10^38-1',
    Types.decimal(38, 0),
    { unscaled: 10n ** 38n - 1n, scale: 0 },
    '4b3b4ca85a86c47a098a223fffffffff',
  ],
];

describe('encodeBound / decodeBound (Appendix D)', () => {
  it.each(VECTORS)('%s', (_name, type, value, expected) => {
    const bytes = encodeBound(type, value);
    expect(hex(bytes)).toBe(expected);
    expect(decodeBound(type, bytes)).toEqual(value);
  });

  it('decodes uuids in lowercase and accepts uppercase input', () => {
    const bytes = encodeBound(Types.uuid, 'F79C3E09-677C-4BBD-A479-3F349CB785E7');
    expect(decodeBound(Types.uuid, bytes)).toBe('f79c3e09-677c-4bbd-a479-3f349cb785e7');
  });

  it('decodes bounds written before a promotion (int → long, float → double)', () => {
    expect(decodeBound(Types.long, fromHex('ffffffff'))).toBe(-1n);
    expect(decodeBound(Types.double, fromHex('0000803f'))).toBe(1);
  });

  it('refuses bytes of the wrong length or invalid UTF-8', () => {
    expect(() => decodeBound(Types.int, fromHex('0100'))).toThrow(InvalidValueError);
    expect(() => decodeBound(Types.timestamp, fromHex('01000000'))).toThrow(/8 bytes/);
    expect(() => decodeBound(Types.uuid, fromHex('00'))).toThrow(/16 bytes/);
    expect(() => decodeBound(Types.string, fromHex('c3'))).toThrow(/UTF-8/);
  });

  it('refuses values of the wrong representation', () => {
    expect(() => encodeBound(Types.long, 1)).toThrow(InvalidValueError);
    expect(() => encodeBound(Types.decimal(3, 2), { unscaled: 1000n, scale: 2 })).toThrow(/3 digits/);
  });
});

describe('ordering', () => {
  it('compares strings by code point, not UTF-16 unit', () => {
    // U+FFFF is one unit (0xFFFF); U+10000 is a surrogate pair starting 0xD800, which `<` puts first.
    expect('\u{10000}' < '\uffff').toBe(true);
    expect(compareStrings('\uffff', '\u{10000}')).toBeLessThan(0);
    expect(compareStrings('ab', 'abc')).toBeLessThan(0);
    expect(compareStrings('b', 'abc')).toBeGreaterThan(0);
    expect(compareStrings('x', 'x')).toBe(0);
  });

  it('orders floats like Java: -0 before +0, NaN last', () => {
    expect(compareFloats(-0, 0)).toBeLessThan(0);
    expect(compareFloats(0, -0)).toBeGreaterThan(0);
    expect(compareFloats(NaN, Infinity)).toBeGreaterThan(0);
    expect(compareFloats(1, 2)).toBeLessThan(0);
  });

  it('orders uuids, binary and decimals', () => {
    expect(
      compareValues(Types.uuid, '0f000000-0000-0000-0000-000000000000', 'F0000000-0000-0000-0000-000000000000'),
    ).toBeLessThan(0);
    expect(compareValues(Types.binary, fromHex('ff'), fromHex('ff00'))).toBeLessThan(0);
    expect(compareValues(Types.binary, fromHex('80'), fromHex('7f'))).toBeGreaterThan(0);
    expect(compareValues(Types.decimal(5, 2), { unscaled: -5n, scale: 2 }, { unscaled: 3n, scale: 2 })).toBeLessThan(0);
  });
});

describe('bound truncation', () => {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz';

  it('keeps a lower bound prefix of 16 code points', () => {
    expect(truncateLowerBound(alphabet, 16)).toBe('abcdefghijklmnop');
    expect(truncateLowerBound('short', 16)).toBe('short');
    // 20 emoji are 40 UTF-16 units; 16 code points are 32 units, and no pair is split.
    expect(truncateLowerBound('😀'.repeat(20), 16)).toBe('😀'.repeat(16));
    expect(truncateLowerBound(`${'a'.repeat(15)}😀😀`, 16)).toBe(`${'a'.repeat(15)}😀`);
  });

  it('increments the last code point of an upper bound prefix', () => {
    expect(truncateUpperBound(alphabet, 16)).toBe('abcdefghijklmnoq');
    expect(truncateUpperBound(`${'a'.repeat(15)}😀x`, 16)).toBe(`${'a'.repeat(15)}😁`);
    expect(truncateUpperBound('a'.repeat(16), 16)).toBe('a'.repeat(16));
  });

  it('skips maxed-out code points and the surrogate range', () => {
    expect(truncateUpperBound(`ab\u{10FFFF}z`, 3)).toBe('ac');
    expect(truncateUpperBound('\u{10FFFF}'.repeat(3), 2)).toBeNull();
    expect(truncateUpperBound('a\ud7ffz', 2)).toBe('a\ue000');
  });

  it('truncates binary bounds by bytes', () => {
    const bytes = Uint8Array.from({ length: 20 }, (_, i) => i);
    expect(hex(truncateLowerBound(bytes, 16))).toBe('000102030405060708090a0b0c0d0e0f');
    expect(hex(truncateUpperBound(bytes, 16) as Uint8Array)).toBe('000102030405060708090a0b0c0d0e10');
    expect(hex(truncateUpperBound(fromHex('01ffff02'), 3) as Uint8Array)).toBe('02');
    expect(truncateUpperBound(fromHex('ffffff00'), 3)).toBeNull();
    expect(hex(truncateUpperBound(fromHex('0102'), 16) as Uint8Array)).toBe('0102');
  });

  it('refuses a width below 1', () => {
    expect(() => truncateLowerBound('abc', 0)).toThrow(/positive integer/);
  });
});
