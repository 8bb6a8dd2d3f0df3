import { describe, expect, it } from 'vitest';
import { InvalidLsnError } from '../../../lib/cdc/errors.js';
import { MAX_LSN, compareLsn, formatLsn, isLsn, lsnDistance, maxLsn, parseLsn } from '../../../lib/cdc/lsn.js';

describe('LSNs', () => {
  it('parses both the short and the zero-padded form to the same bigint', () => {
    expect(parseLsn('0/ADD4258')).toBe(0xadd4258n);
    expect(parseLsn('00000000/0ADD4258')).toBe(0xadd4258n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('ffffffff/ffffffff')).toBe(MAX_LSN);
  });

  it('parses exactly on both sides of 2^53 (a number below, bigints above)', () => {
    for (const [high, low] of [
      [0x1fffffn, 0xffffffffn],
      [0x200000n, 0n],
      [0x200000n, 1n],
      [0x1fffffn, 0n],
      [0x7fffffffn, 0x80000001n],
    ] as const) {
      const text = `${high.toString(16)}/${low.toString(16)}`;
      expect(parseLsn(text)).toBe((high << 32n) | low);
      expect(formatLsn(parseLsn(text))).toBe(text.toUpperCase());
    }
  });

  it('formats as PostgreSQL prints it and round-trips', () => {
    expect(formatLsn(0xadd4258n)).toBe('0/ADD4258');
    expect(formatLsn((0x16n << 32n) | 0xb374d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    for (const text of ['0/0', '1/0', 'A/FFFFFFFF', 'FFFFFFFF/FFFFFFFF']) expect(formatLsn(parseLsn(text))).toBe(text);
  });

  it('compares numerically, where text comparison would be wrong', () => {
    expect('0/9' > '0/10').toBe(true);
    expect(compareLsn('0/9', '0/10')).toBe(-1);
    expect(compareLsn('00000000/00000010', '0/10')).toBe(0);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    expect(compareLsn(5n, '0/5')).toBe(0);
  });

  it('measures distances in bytes and picks the maximum', () => {
    expect(lsnDistance('0/1000', '0/1800')).toBe(0x800n);
    expect(lsnDistance('0/FFFFFFFF', '1/0')).toBe(1n);
    expect(lsnDistance('0/1800', '0/1000')).toBe(-0x800n);
    expect(maxLsn(3n, undefined, 7n, 5n)).toBe(7n);
    expect(maxLsn()).toBeUndefined();
  });

  it('refuses malformed LSNs with a typed error', () => {
    for (const bad of ['', '0', '0/', '/1', '0/G', '123456789/0', '0/1/2', '-1/0']) {
      expect(() => parseLsn(bad), bad).toThrow(InvalidLsnError);
      expect(isLsn(bad)).toBe(false);
    }
    expect(() => formatLsn(-1n)).toThrow(InvalidLsnError);
    expect(() => formatLsn(MAX_LSN + 1n)).toThrow(InvalidLsnError);
    try {
      parseLsn('nope');
    } catch (err) {
      expect((err as InvalidLsnError).failureType).toBe('InvalidInput');
      expect((err as Error).message).toContain('"nope"');
    }
  });
});
