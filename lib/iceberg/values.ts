import { InvalidValueError } from './errors.js';
import { typeToString, type PrimitiveType } from './types.js';

/**
 * How primitive values are represented in JavaScript, and the conversions the transforms and partition paths
 * need. The representation keeps every value exact:
 *
 * | Iceberg type | JS value |
 * |---|---|
 * | boolean | `boolean` |
 * | int, date (days from 1970-01-01) | `number` (32-bit integer) |
 * | long, time (µs from midnight), timestamp, timestamptz (µs from epoch, UTC) | `bigint` |
 * | float, double | `number` |
 * | decimal(P,S) | {@link DecimalValue}: unscaled `bigint` + scale |
 * | string | `string` (well-formed Unicode) |
 * | uuid | `string`, `8-4-4-4-12` hex |
 * | fixed[L], binary | `Uint8Array` |
 */

/** A decimal as its unscaled integer and scale: `14.20` is `{ unscaled: 1420n, scale: 2 }`. */
export interface DecimalValue {
  readonly unscaled: bigint;
  readonly scale: number;
}

/** Any primitive value, in the representation described above. */
export type PrimitiveValue = boolean | number | bigint | string | Uint8Array | DecimalValue;

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const MICROS_PER_SECOND = 1_000_000n;
const MICROS_PER_DAY = 86_400_000_000n;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// With the `u` flag a matched surrogate can only be a lone one: pairs form a single code point.
const LONE_SURROGATE = /\p{Surrogate}/u;

export function isDecimalValue(value: unknown): value is DecimalValue {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as DecimalValue).unscaled === 'bigint' &&
    typeof (value as DecimalValue).scale === 'number'
  );
}

/** Whether `n` fits a signed 32-bit int. */
export function isInt32(n: number): boolean {
  return Number.isInteger(n) && n >= INT_MIN && n <= INT_MAX;
}

/** Whether `n` fits a signed 64-bit long. */
export function isInt64(n: bigint): boolean {
  return n >= LONG_MIN && n <= LONG_MAX;
}

function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (isDecimalValue(value)) return `{ unscaled: ${value.unscaled}n, scale: ${value.scale} }`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  return typeof value === 'object' ? Object.prototype.toString.call(value) : String(value);
}

/**
 * Checks that `value` has the representation `type` requires and is in range.
 *
 * @throws InvalidValueError saying what was expected.
 */
export function checkValue(type: PrimitiveType, value: unknown): asserts value is PrimitiveValue {
  switch (type.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') badValue(type, value, 'a boolean');
      return;
    case 'int':
      if (typeof value !== 'number' || !isInt32(value)) badValue(type, value, 'a number that is a 32-bit integer');
      return;
    case 'date':
      if (typeof value !== 'number' || !isInt32(value))
        badValue(type, value, 'days from 1970-01-01 as a 32-bit integer number');
      return;
    case 'long':
    case 'timestamp':
    case 'timestamptz':
      if (typeof value !== 'bigint' || !isInt64(value))
        badValue(type, value, 'a bigint in the 64-bit range (microseconds for times)');
      return;
    case 'time':
      if (typeof value !== 'bigint' || value < 0n || value >= MICROS_PER_DAY) {
        badValue(type, value, 'microseconds from midnight as a bigint in 0..86399999999');
      }
      return;
    case 'float':
    case 'double':
      if (typeof value !== 'number') badValue(type, value, 'a number');
      return;
    case 'decimal': {
      if (!isDecimalValue(value)) return badValue(type, value, '{ unscaled: bigint, scale: number }');
      if (value.scale !== type.scale) badValue(type, value, `scale ${type.scale}`);
      const limit = decimalLimit(type.precision);
      if (value.unscaled >= limit || value.unscaled <= -limit)
        badValue(type, value, `at most ${type.precision} digits`);
      return;
    }
    case 'string':
      if (typeof value !== 'string') return badValue(type, value, 'a string');
      if (LONE_SURROGATE.test(value)) badValue(type, value, 'a well-formed Unicode string (it has a lone surrogate)');
      return;
    case 'uuid':
      if (typeof value !== 'string' || !UUID_PATTERN.test(value))
        badValue(type, value, 'a UUID string like f79c3e09-677c-…');
      return;
    case 'fixed':
      if (!(value instanceof Uint8Array) || value.length !== type.length)
        badValue(type, value, `a Uint8Array of ${type.length} bytes`);
      return;
    case 'binary':
      if (!(value instanceof Uint8Array)) badValue(type, value, 'a Uint8Array');
      return;
  }
}

/** Throws the error of {@link checkValue} (a module-level function: no closure allocated per checked value). */
function badValue(type: PrimitiveType, value: unknown, expected: string): never {
  throw new InvalidValueError(typeToString(type), `expected ${expected}, got ${describeValue(value)}`);
}

const DECIMAL_LIMITS: bigint[] = [];

/** 10^precision, the bound of a decimal's unscaled value, computed once per precision. */
function decimalLimit(precision: number): bigint {
  return (DECIMAL_LIMITS[precision] ??= 10n ** BigInt(precision));
}

// ---- dates and times --------------------------------------------------------------------------------------

/** Floor division for bigints (JS `/` truncates toward zero, which is wrong before 1970). */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Floor modulo for bigints: the result has the sign of `b`. */
export function floorMod(a: bigint, b: bigint): bigint {
  return a - floorDiv(a, b) * b;
}

/** A proleptic Gregorian calendar date (the calendar Java's `LocalDate` and ISO 8601 use). */
export interface CivilDate {
  readonly year: number;
  /** 1..12 */
  readonly month: number;
  /** 1..31 */
  readonly day: number;
}

// Days-from-civil arithmetic on 400-year eras (146097 days each), shifted so that years start on March 1st and
// the leap day is the last day of the year. Exact for any int32 day count, negative ones included.
const DAYS_PER_ERA = 146097;
const EPOCH_SHIFT = 719468; // days from 0000-03-01 to 1970-01-01

/** Days from 1970-01-01 to the given date (negative before 1970). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthFromMarch = month > 2 ? month - 3 : month + 9;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * DAYS_PER_ERA + dayOfEra - EPOCH_SHIFT;
}

/** The calendar date `days` after 1970-01-01. */
export function civilFromDays(days: number): CivilDate {
  const z = days + EPOCH_SHIFT;
  const era = Math.floor(z / DAYS_PER_ERA);
  const dayOfEra = z - era * DAYS_PER_ERA;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

function daysInMonth(year: number, month: number): number {
  return daysFromCivil(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) - daysFromCivil(year, month, 1);
}

const ISO_DATE = /^([+-]?\d{4,})-(\d{2})-(\d{2})$/;
const ISO_TIME = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/;
const ISO_OFFSET = /(Z|[+-]\d{2}:\d{2})$/;

function dateOrThrow(text: string, type: string): number {
  const m = ISO_DATE.exec(text);
  const year = Number(m?.[1]);
  const month = Number(m?.[2]);
  const day = Number(m?.[3]);
  if (!m || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new InvalidValueError(type, `expected an ISO-8601 date like 2017-11-16, got ${JSON.stringify(text)}`);
  }
  return daysFromCivil(year, month, day);
}

function timeOrThrow(text: string, type: string): bigint {
  const m = ISO_TIME.exec(text);
  const hour = Number(m?.[1]);
  const minute = Number(m?.[2]);
  const second = Number(m?.[3] ?? '0');
  if (!m || hour > 23 || minute > 59 || second > 59) {
    throw new InvalidValueError(
      type,
      `expected an ISO-8601 time like 22:31:08.123456 (at most microseconds), got ${JSON.stringify(text)}`,
    );
  }
  const fraction = BigInt((m[4] ?? '').padEnd(6, '0'));
  return BigInt(hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND + fraction;
}

/** Days from epoch for an ISO date such as `2017-11-16`. */
export function dateFromIso(text: string): number {
  return dateOrThrow(text, 'date');
}

/** Microseconds from midnight for an ISO time such as `22:31:08` or `22:31:08.000001`. */
export function timeFromIso(text: string): bigint {
  return timeOrThrow(text, 'time');
}

/** Microseconds from epoch for a zone-less ISO timestamp such as `2017-11-16T22:31:08`. */
export function timestampFromIso(text: string): bigint {
  const t = text.indexOf('T');
  if (t < 0 || ISO_OFFSET.test(text)) {
    throw new InvalidValueError('timestamp', `expected 2017-11-16T22:31:08 (no zone), got ${JSON.stringify(text)}`);
  }
  const days = dateOrThrow(text.slice(0, t), 'timestamp');
  return BigInt(days) * MICROS_PER_DAY + timeOrThrow(text.slice(t + 1), 'timestamp');
}

/**
 * Microseconds from epoch (UTC) for an ISO timestamp with a zone, such as `2017-11-16T14:31:08-08:00` or
 * `2017-11-16T22:31:08Z`.
 */
export function timestamptzFromIso(text: string): bigint {
  const offset = ISO_OFFSET.exec(text);
  if (!offset) {
    throw new InvalidValueError('timestamptz', `expected a zone (Z or ±HH:MM), got ${JSON.stringify(text)}`);
  }
  const zone = offset[1] as string;
  const local = timestampFromIso(text.slice(0, text.length - zone.length));
  if (zone === 'Z') return local;
  const sign = zone.startsWith('-') ? -1n : 1n;
  const minutes = BigInt(Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  return local - sign * minutes * 60n * MICROS_PER_SECOND;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Java's `String.format("%04d", n)`: zero-padded to 4 characters, the sign counting as one. */
function javaPad4(n: number): string {
  return n < 0 ? `-${pad(-n, 3)}` : pad(n, 4);
}

/** Java's ISO_LOCAL_DATE year: 4 digits, `+` above 9999, `-` before year 0. */
function isoYear(year: number): string {
  if (year > 9999) return `+${year}`;
  return year < 0 ? `-${pad(-year, 4)}` : pad(year, 4);
}

/** A date the way Java's partition paths print it (`TransformUtil.humanDay`): `2017-11-16`. */
export function humanDate(days: number): string {
  const { year, month, day } = civilFromDays(days);
  return `${javaPad4(year)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** ISO date for a JSON single value (Appendix D): `2017-11-16`. */
export function isoDate(days: number): string {
  const { year, month, day } = civilFromDays(days);
  return `${isoYear(year)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** Fraction digits with trailing zeros dropped, as `DateTimeFormatter.ISO_LOCAL_TIME` prints them. */
function fractionTrimmed(micros: number): string {
  return micros === 0 ? '' : `.${pad(micros, 6).replace(/0+$/, '')}`;
}

/** A time the way Java's `LocalTime.toString()` prints it: `22:31`, `22:31:08`, `22:31:08.500`, `…08.000001`. */
export function humanTime(microsFromMidnight: bigint): string {
  const micros = Number(microsFromMidnight);
  const totalSeconds = Math.floor(micros / 1e6);
  const fraction = micros - totalSeconds * 1e6;
  const hh = pad(Math.floor(totalSeconds / 3600), 2);
  const mm = pad(Math.floor(totalSeconds / 60) % 60, 2);
  const ss = totalSeconds % 60;
  let text = `${hh}:${mm}`;
  if (ss > 0 || fraction > 0) {
    text += `:${pad(ss, 2)}`;
    // LocalTime prints milliseconds when the rest is zero, otherwise microseconds (we have no nanoseconds).
    if (fraction > 0) text += fraction % 1000 === 0 ? `.${pad(fraction / 1000, 3)}` : `.${pad(fraction, 6)}`;
  }
  return text;
}

/** A zone-less timestamp as Java's `ISO_LOCAL_DATE_TIME` prints it: `2017-11-16T22:31:08`, `…08.5`. */
export function humanTimestamp(micros: bigint): string {
  const days = floorDiv(micros, MICROS_PER_DAY);
  const ofDay = Number(micros - days * MICROS_PER_DAY);
  const seconds = Math.floor(ofDay / 1e6);
  const fraction = ofDay - seconds * 1e6;
  const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  return `${isoDate(Number(days))}T${time}${fractionTrimmed(fraction)}`;
}

/** A UTC timestamp as Java's partition paths print it: `2017-11-16T22:31:08+00:00`. */
export function humanTimestamptz(micros: bigint): string {
  return `${humanTimestamp(micros)}+00:00`;
}

// ---- decimals ----------------------------------------------------------------------------------------------

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * Parses a plain decimal string; the scale is the number of digits after the point (`"14.20"` → scale 2).
 *
 * @throws InvalidValueError when the text is not a plain decimal number.
 */
export function parseDecimal(text: string): DecimalValue {
  const m = DECIMAL_TEXT.exec(text.trim());
  const whole = m?.[2] ?? '';
  const fraction = m?.[3] ?? '';
  if (!m || whole.length + fraction.length === 0) {
    throw new InvalidValueError('decimal', `expected a plain decimal number like 14.20, got ${JSON.stringify(text)}`);
  }
  const magnitude = BigInt(`${whole}${fraction}` || '0');
  return { unscaled: m[1] === '-' ? -magnitude : magnitude, scale: fraction.length };
}

/** Plain decimal text with exactly `scale` fraction digits: `{1420n, 2}` → `"14.20"`. */
export function decimalToPlainString(value: DecimalValue): string {
  const negative = value.unscaled < 0n;
  const digits = (negative ? -value.unscaled : value.unscaled).toString();
  if (value.scale <= 0) return `${negative ? '-' : ''}${digits}${'0'.repeat(-value.scale)}`;
  const padded = digits.padStart(value.scale + 1, '0');
  const point = padded.length - value.scale;
  return `${negative ? '-' : ''}${padded.slice(0, point)}.${padded.slice(point)}`;
}

/**
 * The decimal the way Java's `BigDecimal.toString()` prints it, which is what Java puts in partition paths: plain
 * notation unless the adjusted exponent is below -6, then scientific (`1E-10`).
 */
export function decimalToJavaString(value: DecimalValue): string {
  const negative = value.unscaled < 0n;
  const digits = (negative ? -value.unscaled : value.unscaled).toString();
  const adjusted = -value.scale + (digits.length - 1);
  if (value.scale >= 0 && adjusted >= -6) return decimalToPlainString(value);
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${negative ? '-' : ''}${mantissa}E${adjusted >= 0 ? '+' : ''}${adjusted}`;
}

/**
 * The unscaled value as the minimum number of two's-complement big-endian bytes, the form the spec uses for
 * decimal hashing (Appendix B) and single-value serialization (Appendix D). Zero is one byte, `00`.
 */
export function decimalToMinimalBytes(unscaled: bigint): Uint8Array {
  // Enough bytes that the top bit is the sign bit: Java's BigInteger.toByteArray().
  let byteCount = 1;
  while (unscaled >= 1n << BigInt(8 * byteCount - 1) || unscaled < -(1n << BigInt(8 * byteCount - 1))) byteCount += 1;
  const bytes = new Uint8Array(byteCount);
  let v = BigInt.asUintN(8 * byteCount, unscaled);
  for (let i = byteCount - 1; i >= 0; i -= 1) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytes;
}

// ---- other conversions -------------------------------------------------------------------------------------

/** The 16 big-endian bytes of a UUID string (spec Appendix B note 4). */
export function uuidToBytes(uuid: string): Uint8Array {
  if (!UUID_PATTERN.test(uuid))
    throw new InvalidValueError('uuid', `expected a UUID string, got ${JSON.stringify(uuid)}`);
  const hex = uuid.replace(/-/g, '');
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i += 1) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

const utf8 = new TextEncoder();

/** UTF-8 bytes of a well-formed string. */
export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}

/**
 * Java's `Double.toString`: the shortest digits that identify the double (as JS uses), laid out as plain
 * decimal with at least one fraction digit when 10^-3 ≤ |x| < 10^7, and as `d.dddE±n` otherwise.
 */
export function javaDoubleToString(x: number): string {
  return javaFloatingLayout(x, x.toExponential());
}

/** Java's `Float.toString` for a value that is a float32: shortest digits that identify the float. */
export function javaFloatToString(x: number): string {
  const f = Math.fround(x);
  if (!Number.isFinite(f) || f === 0) return javaFloatingLayout(f, f.toExponential());
  for (let digits = 1; digits <= 9; digits += 1) {
    const text = f.toExponential(digits - 1);
    if (Math.fround(Number(text)) === f) return javaFloatingLayout(f, text);
  }
  return javaFloatingLayout(f, f.toExponential(8));
}

function javaFloatingLayout(x: number, exponential: string): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exponential);
  if (!m) return String(x);
  const sign = m[1] as string;
  const digits = `${m[2] as string}${m[3] ?? ''}`;
  const exponent = Number(m[4]);
  const abs = Math.abs(x);
  if (abs >= 1e-3 && abs < 1e7) {
    const pointAt = exponent + 1;
    if (pointAt <= 0) return `${sign}0.${'0'.repeat(-pointAt)}${digits}`;
    const whole = digits.slice(0, pointAt).padEnd(pointAt, '0');
    const fraction = digits.slice(pointAt);
    return `${sign}${whole}.${fraction === '' ? '0' : fraction}`;
  }
  const fraction = digits.slice(1);
  return `${sign}${digits[0] as string}.${fraction === '' ? '0' : fraction}E${exponent}`;
}

/** Standard base64 with padding, as Java prints fixed and binary partition values. */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * The value the way Java's `Transform.toHumanString(type, value)` prints it, which is what appears in Java's
 * partition paths. `null` prints as `null`.
 */
export function valueToHumanString(type: PrimitiveType, value: PrimitiveValue | null): string {
  if (value === null) return 'null';
  checkValue(type, value);
  switch (type.kind) {
    case 'date':
      return humanDate(value as number);
    case 'time':
      return humanTime(value as bigint);
    case 'timestamp':
      return humanTimestamp(value as bigint);
    case 'timestamptz':
      return humanTimestamptz(value as bigint);
    case 'fixed':
    case 'binary':
      return base64(value as Uint8Array);
    case 'decimal':
      return decimalToJavaString(value as DecimalValue);
    case 'float':
      return javaFloatToString(value as number);
    case 'double':
      return javaDoubleToString(value as number);
    case 'uuid':
      return (value as string).toLowerCase();
    case 'boolean':
    case 'int':
    case 'long':
    case 'string':
      return String(value);
  }
}

function tupleReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

/**
 * A stable string for a tuple of values (a primary key, a partition tuple), usable as a `Map` key: bigints, bytes
 * and decimals included. Equal tuples of the same column types give equal strings. A single int, long or string
 * skips JSON, since this runs once per row on write and scan paths.
 */
export function tupleKey(values: readonly unknown[]): string {
  if (values.length === 1) {
    const v = values[0];
    if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'string') return `${typeof v}:${String(v)}`;
  }
  return JSON.stringify(values, tupleReplacer);
}
