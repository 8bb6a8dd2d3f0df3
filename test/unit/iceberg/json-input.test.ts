import { describe, expect, it } from 'vitest';
import { parse } from 'lossless-json';
import { expectInt, expectLong, type Fail } from '../../../lib/iceberg/json-input.js';

const fail: Fail = (path, problem) => {
  throw new Error(`${path}: ${problem}`);
};

describe('JSON number readers', () => {
  it('reads longs from lossless numbers exactly and ints within 32 bits', () => {
    const doc = parse('{"id":8744736658442914487,"n":-2147483648}') as Record<string, unknown>;
    expect(expectLong(doc.id, 'id', fail)).toBe(8744736658442914487n);
    expect(expectInt(doc.n, 'n', fail)).toBe(-2147483648);
    expect(() => expectInt(2147483648, 'n', fail)).toThrow('n: expected a 32-bit integer, got 2147483648');
  });

  it('refuses a long that JSON.parse already rounded, instead of trusting it', () => {
    const rounded = (JSON.parse('{"id":8744736658442914487}') as { id: number }).id;
    expect(() => expectLong(rounded, 'id', fail)).toThrow(
      /lost precision in JSON.parse; parse the document with lossless-json/,
    );
    expect(expectLong(42, 'id', fail)).toBe(42n);
  });

  it('refuses exponents and fractions for integers', () => {
    const doc = parse('{"a":1e3,"b":1.0}') as Record<string, unknown>;
    expect(() => expectLong(doc.a, 'a', fail)).toThrow(/64-bit integer, got 1e3/);
    expect(() => expectInt(doc.b, 'b', fail)).toThrow(/32-bit integer, got 1.0/);
  });
});
