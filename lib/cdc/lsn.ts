import { InvalidLsnError } from './errors.js';

/**
 * PostgreSQL log sequence numbers. An LSN is a 64-bit byte position in the WAL, printed as two hex halves
 * (`0/16B3748`, or zero-padded `00000000/016B3748` as pgoutput messages carry it). Compare LSNs as `bigint`, never
 * as strings: `'0/9' > '0/10'` as text.
 */

/** The largest LSN, `FFFFFFFF/FFFFFFFF`. */
export const MAX_LSN = (1n << 64n) - 1n;

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses `X/Y` (either form) into a bigint.
 *
 * @throws InvalidLsnError when the text is not an LSN.
 */
export function parseLsn(text: string): bigint {
  const m = LSN_PATTERN.exec(text.trim());
  if (!m) throw new InvalidLsnError(text);
  const high = parseInt(m[1] as string, 16);
  const low = parseInt(m[2] as string, 16);
  // Below 2^53 the position is exact as a number, and one BigInt is cheaper than two and a shift (the reader
  // parses one LSN per message).
  return high < 0x200000 ? BigInt(high * 0x100000000 + low) : (BigInt(high) << 32n) | BigInt(low);
}

/** Whether `text` is an LSN in either form. */
export function isLsn(text: string): boolean {
  return LSN_PATTERN.test(text.trim());
}

/**
 * Formats an LSN as PostgreSQL prints it (`0/16B3748`: upper-case hex, no padding), the form `pg_lsn` accepts.
 *
 * @throws InvalidLsnError when the value is negative or above 64 bits.
 */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new InvalidLsnError(String(lsn));
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** `-1`, `0` or `1` as `a` is before, at or after `b`. Accepts strings in either form or bigints. */
export function compareLsn(a: bigint | string, b: bigint | string): -1 | 0 | 1 {
  const x = typeof a === 'bigint' ? a : parseLsn(a);
  const y = typeof b === 'bigint' ? b : parseLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Bytes of WAL from `from` to `to` (negative when `to` is earlier), like `pg_wal_lsn_diff(to, from)`. */
export function lsnDistance(from: bigint | string, to: bigint | string): bigint {
  return (typeof to === 'bigint' ? to : parseLsn(to)) - (typeof from === 'bigint' ? from : parseLsn(from));
}

/** The later of the LSNs; `undefined` when none is given. */
export function maxLsn(...lsns: readonly (bigint | undefined)[]): bigint | undefined {
  let max: bigint | undefined;
  for (const lsn of lsns) if (lsn !== undefined && (max === undefined || lsn > max)) max = lsn;
  return max;
}
