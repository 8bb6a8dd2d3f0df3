import { InvalidValueError } from './errors.js';
import { typeToString, type PrimitiveType } from './types.js';
import { checkValue, decimalToMinimalBytes, uuidToBytes, type DecimalValue, type PrimitiveValue } from './values.js';

/**
 * Column bounds as manifests store them: the spec's single-value binary serialization (Appendix D), the order
 * in which bounds are compared, and the truncation that `write.metadata.metrics.default = truncate(16)` applies
 * to string and binary bounds.
 *
 * | type | bytes |
 * |---|---|
 * | boolean | `00` false, `01` true |
 * | int, date | 4-byte little-endian two's complement |
 * | long, time, timestamp, timestamptz | 8-byte little-endian two's complement |
 * | float, double | IEEE 754, 4 or 8 bytes little-endian |
 * | string | UTF-8, no length prefix |
 * | uuid | the 16 bytes, big-endian |
 * | fixed, binary | the bytes as they are |
 * | decimal | unscaled value as minimal two's-complement big-endian bytes |
 */

/** The default bound truncation width, from Iceberg's `write.metadata.metrics.default` = `truncate(16)`. */
export const DEFAULT_BOUND_TRUNCATE_LENGTH = 16;

const utf8Encoder = new TextEncoder();
// `fatal` so that a corrupt bound is reported instead of decoded into U+FFFD.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Serializes one value to its Appendix D bytes.
 *
 * @throws InvalidValueError when `value` does not have the representation `type` requires (see `values.ts`).
 */
export function encodeBound(type: PrimitiveType, value: PrimitiveValue): Uint8Array {
  checkValue(type, value);
  switch (type.kind) {
    case 'boolean':
      return Uint8Array.of(value ? 1 : 0);
    case 'int':
    case 'date': {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setInt32(0, value as number, true);
      return bytes;
    }
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz': {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigInt64(0, value as bigint, true);
      return bytes;
    }
    case 'float': {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setFloat32(0, value as number, true);
      return bytes;
    }
    case 'double': {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setFloat64(0, value as number, true);
      return bytes;
    }
    case 'string':
      return utf8Encoder.encode(value as string);
    case 'uuid':
      return uuidToBytes(value as string);
    case 'fixed':
    case 'binary':
      return Uint8Array.from(value as Uint8Array);
    case 'decimal':
      return decimalToMinimalBytes((value as DecimalValue).unscaled);
  }
}

/**
 * Reads a value back from its Appendix D bytes.
 *
 * Bounds written before a type promotion keep their old width, so a 4-byte bound decodes for `long` (int → long)
 * and for `double` (float → double), as the spec's promotion rules require of readers.
 *
 * @throws InvalidValueError when the byte count does not fit the type, or a string bound is not valid UTF-8.
 */
export function decodeBound(type: PrimitiveType, bytes: Uint8Array): PrimitiveValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (expected: string): never => {
    throw new InvalidValueError(typeToString(type), `a bound must be ${expected}, got ${bytes.length} bytes`);
  };
  switch (type.kind) {
    case 'boolean':
      if (bytes.length !== 1) bad('1 byte');
      return bytes[0] !== 0;
    case 'int':
    case 'date':
      if (bytes.length !== 4) bad('4 bytes');
      return view.getInt32(0, true);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      if (bytes.length === 4 && type.kind === 'long') return BigInt(view.getInt32(0, true));
      if (bytes.length !== 8) bad('8 bytes');
      return view.getBigInt64(0, true);
    case 'float':
      if (bytes.length !== 4) bad('4 bytes');
      return view.getFloat32(0, true);
    case 'double':
      if (bytes.length === 4) return view.getFloat32(0, true);
      if (bytes.length !== 8) bad('8 bytes');
      return view.getFloat64(0, true);
    case 'string':
      try {
        return utf8Decoder.decode(bytes);
      } catch {
        return bad('valid UTF-8');
      }
    case 'uuid':
      if (bytes.length !== 16) bad('16 bytes');
      return uuidFromBytes(bytes);
    case 'fixed':
    case 'binary':
      return Uint8Array.from(bytes);
    case 'decimal':
      if (bytes.length === 0) bad('at least 1 byte');
      return { unscaled: bigintFromTwosComplement(bytes), scale: type.scale };
  }
}

/** The `8-4-4-4-12` lowercase form of 16 big-endian UUID bytes. */
export function uuidFromBytes(bytes: Uint8Array): string {
  let hex = '';
  for (let i = 0; i < 16; i += 1) hex += (bytes[i] ?? 0).toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A big-endian two's-complement integer of any length (decimal bounds, Parquet decimal statistics). */
export function bigintFromTwosComplement(bytes: Uint8Array): bigint {
  let unsigned = 0n;
  for (const byte of bytes) unsigned = (unsigned << 8n) | BigInt(byte);
  return BigInt.asIntN(8 * bytes.length, unsigned);
}

// ---- ordering ---------------------------------------------------------------------------------------------

/**
 * Compares two strings by Unicode code point, which is the order of their UTF-8 bytes and the order Iceberg and
 * Parquet use for string bounds. JavaScript's `<` compares UTF-16 code units, which puts U+E000..U+FFFF after
 * every supplementary character; this does not.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      // A surrogate stands for a code point above U+FFFF: lift it above every BMP code unit.
      const cx = x >= 0xd800 && x <= 0xdfff ? x + 0x10000 : x;
      const cy = y >= 0xd800 && y <= 0xdfff ? y + 0x10000 : y;
      return cx - cy;
    }
  }
  return a.length - b.length;
}

/** Compares byte arrays as unsigned bytes, lexicographically (binary, fixed and UUID order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * Compares two floating-point values the way Java's `Float.compare`/`Double.compare` do, which Iceberg uses for
 * bounds: -0 sorts before +0 and NaN after everything.
 */
export function compareFloats(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) {
    if (a !== 0) return 0;
    return (Object.is(a, -0) ? 0 : 1) - (Object.is(b, -0) ? 0 : 1);
  }
  return (Number.isNaN(a) ? 1 : 0) - (Number.isNaN(b) ? 1 : 0);
}

/**
 * Compares two non-null values of one type in Iceberg's order (the order bounds are computed in). Returns a
 * negative number, zero or a positive number.
 */
export function compareValues(type: PrimitiveType, a: PrimitiveValue, b: PrimitiveValue): number {
  switch (type.kind) {
    case 'boolean':
      return Number(a) - Number(b);
    case 'int':
    case 'date':
      return (a as number) - (b as number);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return a === b ? 0 : (a as bigint) < (b as bigint) ? -1 : 1;
    case 'float':
    case 'double':
      return compareFloats(a as number, b as number);
    case 'string':
      return compareStrings(a as string, b as string);
    case 'uuid': {
      // Lowercase hex digits sort like the bytes they spell.
      const x = (a as string).toLowerCase();
      const y = (b as string).toLowerCase();
      return x === y ? 0 : x < y ? -1 : 1;
    }
    case 'fixed':
    case 'binary':
      return compareBytes(a as Uint8Array, b as Uint8Array);
    case 'decimal': {
      const x = (a as DecimalValue).unscaled;
      const y = (b as DecimalValue).unscaled;
      return x === y ? 0 : x < y ? -1 : 1;
    }
  }
}

// ---- truncation -------------------------------------------------------------------------------------------

/** The first `length` code points of `text` (a surrogate pair counts once and is never split). */
function codePointPrefix(text: string, length: number): string {
  // Fast path: a string with at most `length` UTF-16 units has at most `length` code points.
  if (text.length <= length) return text;
  let end = 0;
  for (let count = 0; count < length && end < text.length; count += 1) {
    const unit = text.charCodeAt(end);
    end += unit >= 0xd800 && unit <= 0xdbff && end + 1 < text.length ? 2 : 1;
  }
  return text.slice(0, end);
}

/**
 * A lower bound for `value` that is at most `length` code points (strings) or bytes (binary) long: its prefix.
 * A prefix sorts before or equal to the value, so it is still a valid lower bound.
 */
export function truncateLowerBound(value: string, length: number): string;
export function truncateLowerBound(value: Uint8Array, length: number): Uint8Array;
export function truncateLowerBound(value: string | Uint8Array, length: number): string | Uint8Array;
export function truncateLowerBound(value: string | Uint8Array, length: number): string | Uint8Array {
  checkTruncateLength(length);
  if (typeof value === 'string') return codePointPrefix(value, length);
  return value.length <= length ? value : value.slice(0, length);
}

/**
 * An upper bound for `value` that is at most `length` code points (strings) or bytes (binary) long, or `null`
 * when none exists. A value that fits is returned as it is. Otherwise the prefix's last code point (byte) is
 * incremented, dropping trailing code points (bytes) that are already at their maximum (U+10FFFF, 0xFF); the
 * surrogate range is skipped, so the result is always well-formed Unicode.
 */
export function truncateUpperBound(value: string, length: number): string | null;
export function truncateUpperBound(value: Uint8Array, length: number): Uint8Array | null;
export function truncateUpperBound(value: string | Uint8Array, length: number): string | Uint8Array | null;
export function truncateUpperBound(value: string | Uint8Array, length: number): string | Uint8Array | null {
  checkTruncateLength(length);
  if (typeof value === 'string') {
    const prefix = codePointPrefix(value, length);
    if (prefix.length === value.length) return value;
    const codePoints = Array.from(prefix, (ch) => ch.codePointAt(0) as number);
    for (let i = codePoints.length - 1; i >= 0; i -= 1) {
      let next = (codePoints[i] as number) + 1;
      if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
      if (next <= 0x10ffff) {
        codePoints.length = i + 1;
        codePoints[i] = next;
        return String.fromCodePoint(...codePoints);
      }
    }
    return null;
  }
  if (value.length <= length) return value;
  const prefix = value.slice(0, length);
  for (let i = prefix.length - 1; i >= 0; i -= 1) {
    if ((prefix[i] as number) < 0xff) {
      prefix[i] = (prefix[i] as number) + 1;
      return prefix.slice(0, i + 1);
    }
  }
  return null;
}

function checkTruncateLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 1) {
    throw new InvalidValueError('truncate', `the truncation length must be a positive integer, got ${length}`);
  }
}
