import { describe, expect, it } from 'vitest';
import { decimalFromText, fastDecimal, fastTimestamp, timestampFromPgText } from '../../../lib/cdc/pg-types.js';

// The regex-free fast paths of the text conversion must give the full path's value wherever they give one, and
// leave everything else (other forms, out-of-range fields, malformed text) to it.

/** A deterministic PRNG, so that every run checks the same cases. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fail = (problem: string): never => {
  throw new Error(problem);
};

function full<T>(work: () => T): T | 'refused' {
  try {
    return work();
  } catch {
    return 'refused';
  }
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

describe('fastTimestamp', () => {
  it('matches the full path on the forms PostgreSQL writes, and on edge cases', () => {
    const cases = [
      '1970-01-01 00:00:00',
      '1970-01-01 00:00:00+00',
      '2024-01-31 13:45:00.000001',
      '2024-01-31 19:15:00+05:30',
      '2024-01-31 08:45:00.5-05',
      '1900-01-01 00:19:32+00:19:32',
      '1969-12-31 23:59:59.999999+00',
      '2024-02-29 12:00:00+00',
      '2023-02-29 12:00:00+00',
      '2024-04-31 12:00:00+00',
      '2024-13-01 12:00:00+00',
      '2024-00-10 12:00:00+00',
      '2024-01-00 12:00:00+00',
      '2024-01-01 24:00:00+00',
      '2024-01-01 23:60:00+00',
      '2024-01-01 23:59:60+00',
      '2024-01-01 12:00:00.+00',
      '2024-01-01 12:00:00.1234567+00',
      '2024-01-01T12:00:00+00',
      '2024-01-01 12:00:00+0530',
      '2024-01-01 12:00:00+05:3',
      '2024-01-01 12:00:00 BC',
      '0044-03-15 12:00:00+00 BC',
      '12024-01-01 12:00:00+00',
      '1600-01-01 00:00:00+00',
      '2300-01-01 00:00:00+00',
      'infinity',
      '-infinity',
      '2024-01-01 12:00:00+00x',
      '2024-01-01 12:00:00',
      '',
    ];
    for (const text of cases) {
      for (const withZone of [false, true]) {
        const fast = fastTimestamp(text, withZone);
        const expected = full(() => timestampFromPgText(text, withZone, fail));
        if (fast !== undefined) expect([text, withZone, fast]).toEqual([text, withZone, expected]);
      }
    }
    expect(fastTimestamp('2024-01-31 19:15:00+05:30', true)).toBe(1706708700000000n);
    expect(fastTimestamp('2024-01-31 13:45:00.000001', false)).toBe(1706708700000001n);
  });

  it('matches the full path on random timestamps', () => {
    const random = prng(7);
    const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    let fastHits = 0;
    for (let k = 0; k < 8000; k++) {
      const date = `${pad(int(1650, 2300), 4)}-${pad(int(0, 13))}-${pad(int(0, 32))}`;
      const time = `${pad(int(0, 24))}:${pad(int(0, 60))}:${pad(int(0, 60))}`;
      const fraction = random() < 0.5 ? '' : `.${String(int(0, 9_999_999)).slice(0, int(1, 7))}`;
      const offset =
        random() < 0.2
          ? ''
          : `${random() < 0.5 ? '+' : '-'}${pad(int(0, 14))}${random() < 0.5 ? '' : `:${pad(int(0, 59))}`}`;
      const text = `${date} ${time}${fraction}${offset}`;
      for (const withZone of [false, true]) {
        const fast = fastTimestamp(text, withZone);
        if (fast === undefined) continue;
        fastHits++;
        expect([text, fast]).toEqual([text, full(() => timestampFromPgText(text, withZone, fail))]);
      }
    }
    expect(fastHits).toBeGreaterThan(2000);
  });
});

describe('fastDecimal', () => {
  it('matches the full path on edge cases and random decimals', () => {
    const cases = ['0', '-0', '7', '123.45', '-0.50', '1.005', '1234.5', '12abc', 'NaN', '.5', '5.', '+1', '--1'];
    const random = prng(11);
    for (let k = 0; k < 8000; k++) {
      const intPart = String(Math.floor(random() * 10 ** Math.floor(random() * 17)));
      const fraction =
        random() < 0.3 ? '' : `.${String(Math.floor(random() * 10 ** 8)).slice(0, 1 + Math.floor(random() * 8))}`;
      cases.push(`${random() < 0.3 ? '-' : ''}${intPart}${fraction}`);
    }
    let fastHits = 0;
    for (const text of cases) {
      for (const [precision, scale] of [
        [10, 2],
        [5, 2],
        [12, 0],
        [15, 4],
        [18, 6],
        [38, 10],
        [38, 18],
      ] as const) {
        const fast = fastDecimal(text, precision, scale);
        if (fast === undefined) continue;
        fastHits++;
        expect([text, precision, scale, fast]).toEqual([
          text,
          precision,
          scale,
          full(() => decimalFromText(text, precision, scale, fail)),
        ]);
      }
    }
    expect(fastHits).toBeGreaterThan(8000);
  });
});
