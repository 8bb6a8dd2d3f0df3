import { InvalidTransformError, InvalidValueError } from './errors.js';
import { Types, typeToString, type IcebergType, type PrimitiveType } from './types.js';
import { childPath, expectString, getOwn, required, type Fail, type JsonObject } from './json-input.js';
import {
  checkValue,
  civilFromDays,
  decimalToMinimalBytes,
  floorDiv,
  humanDate,
  isInt32,
  isInt64,
  utf8Bytes,
  uuidToBytes,
  valueToHumanString,
  type DecimalValue,
  type PrimitiveValue,
} from './values.js';

/**
 * Partition transforms (spec "Partition Transforms", "Bucket Transform Details", "Truncate Transform Details",
 * Appendix B). A transform is a plain object; {@link parseTransform} and {@link transformToString} convert to and
 * from the spec's string form (`identity`, `bucket[16]`, `truncate[4]`, `year`, `month`, `day`, `hour`, `void`).
 */
export type Transform =
  | { readonly kind: 'identity' }
  | { readonly kind: 'bucket'; readonly numBuckets: number }
  | { readonly kind: 'truncate'; readonly width: number }
  | { readonly kind: 'year' }
  | { readonly kind: 'month' }
  | { readonly kind: 'day' }
  | { readonly kind: 'hour' }
  | { readonly kind: 'void' }
  /**
   * A transform this engine does not know (a newer spec's). Readers must ignore such partition fields when
   * filtering; writers must not write with them. Kept so that metadata containing one still round-trips.
   */
  | { readonly kind: 'unknown'; readonly name: string };

/** Ready-made transforms. */
export const Transforms = {
  identity: { kind: 'identity' },
  year: { kind: 'year' },
  month: { kind: 'month' },
  day: { kind: 'day' },
  hour: { kind: 'hour' },
  void: { kind: 'void' },
  /** `bucket[N]`, N in 1..2147483647. */
  bucket(numBuckets: number): Transform {
    return parseTransform(`bucket[${numBuckets}]`);
  },
  /** `truncate[W]`, W in 1..2147483647. */
  truncate(width: number): Transform {
    return parseTransform(`truncate[${width}]`);
  },
} as const satisfies Record<string, Transform | ((n: number) => Transform)>;

const WITH_ARGUMENT = /^(\w+)\[(\d+)\]$/;
const INT_MAX = 2147483647;

/**
 * Parses the spec's transform string. Like Java, names are case-insensitive and an unrecognized name gives an
 * `unknown` transform rather than an error, because the spec requires readers to tolerate them.
 *
 * @throws InvalidTransformError for `bucket[N]`/`truncate[W]` with N or W outside 1..2147483647.
 */
export function parseTransform(text: string): Transform {
  const withArgument = WITH_ARGUMENT.exec(text);
  if (withArgument) {
    const name = (withArgument[1] as string).toLowerCase();
    const argument = Number(withArgument[2]);
    if (name === 'bucket' || name === 'truncate') {
      if (!Number.isInteger(argument) || argument < 1 || argument > INT_MAX) {
        const what = name === 'bucket' ? 'number of buckets' : 'width';
        throw new InvalidTransformError(text, `the ${what} must be in 1..${INT_MAX}`);
      }
      return name === 'bucket' ? { kind: 'bucket', numBuckets: argument } : { kind: 'truncate', width: argument };
    }
  }
  switch (text.toLowerCase()) {
    case 'identity':
    case 'year':
    case 'month':
    case 'day':
    case 'hour':
    case 'void':
      return { kind: text.toLowerCase() as 'identity' | 'year' | 'month' | 'day' | 'hour' | 'void' };
    default:
      return { kind: 'unknown', name: text };
  }
}

/** The spec's string form: `identity`, `bucket[16]`, `truncate[4]`, … */
export function transformToString(transform: Transform): string {
  switch (transform.kind) {
    case 'bucket':
      return `bucket[${transform.numBuckets}]`;
    case 'truncate':
      return `truncate[${transform.width}]`;
    case 'unknown':
      return transform.name;
    default:
      return transform.kind;
  }
}

/** Whether two transforms are the same (same kind and parameter). */
export function transformsEqual(a: Transform, b: Transform): boolean {
  return transformToString(a) === transformToString(b);
}

/** The primitive types `bucket[N]` accepts (spec Appendix B). */
export const BUCKET_SOURCE_TYPES: ReadonlySet<string> = new Set([
  'int',
  'long',
  'decimal',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'string',
  'uuid',
  'fixed',
  'binary',
]);

/**
 * Why `transform` cannot be applied to `sourceType` (spec table "Partition Transforms"), or `undefined` when it
 * can. Unknown transforms never apply: the engine cannot compute them.
 */
export function transformProblem(transform: Transform, sourceType: IcebergType): string | undefined {
  const kind = sourceType.kind;
  const nested = kind === 'struct' || kind === 'list' || kind === 'map';
  switch (transform.kind) {
    case 'void':
      return undefined;
    case 'identity':
      return nested ? `identity applies to primitive columns, not ${kind}` : undefined;
    case 'bucket':
      return BUCKET_SOURCE_TYPES.has(kind)
        ? undefined
        : `bucket applies to int, long, decimal, date, time, timestamp, timestamptz, string, uuid, fixed and binary, not ${typeToString(sourceType)}`;
    case 'truncate':
      return ['int', 'long', 'decimal', 'string', 'binary'].includes(kind)
        ? undefined
        : `truncate applies to int, long, decimal, string and binary, not ${typeToString(sourceType)}`;
    case 'year':
    case 'month':
    case 'day':
      return ['date', 'timestamp', 'timestamptz'].includes(kind)
        ? undefined
        : `${transform.kind} applies to date, timestamp and timestamptz, not ${typeToString(sourceType)}`;
    case 'hour':
      return ['timestamp', 'timestamptz'].includes(kind)
        ? undefined
        : `hour applies to timestamp and timestamptz, not ${typeToString(sourceType)}`;
    case 'unknown':
      return `"${transform.name}" is not a transform this engine knows, so it cannot compute it`;
  }
}

/** Whether `transform` applies to `sourceType`. */
export function canTransform(transform: Transform, sourceType: IcebergType): boolean {
  return transformProblem(transform, sourceType) === undefined;
}

/**
 * Throws unless `transform` applies to `sourceType`.
 *
 * @param column the source column's name, for the message.
 * @throws InvalidTransformError naming the transform, the column and the types it accepts.
 */
export function checkTransform(transform: Transform, sourceType: IcebergType, column?: string): void {
  const problem = transformProblem(transform, sourceType);
  if (problem !== undefined) throw new InvalidTransformError(transformToString(transform), problem, column);
}

/**
 * The type of the transform's result: `int` for bucket/year/month/hour, `date` for day, the source type for
 * identity, truncate and void.
 *
 * @throws InvalidTransformError when the transform does not apply to `sourceType`.
 */
export function transformResultType(transform: Transform, sourceType: PrimitiveType): PrimitiveType {
  checkTransform(transform, sourceType);
  switch (transform.kind) {
    case 'bucket':
    case 'year':
    case 'month':
    case 'hour':
      return Types.int;
    case 'day':
      return Types.date;
    default:
      return sourceType;
  }
}

// ---- Murmur3 --------------------------------------------------------------------------------------------------

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/**
 * 32-bit Murmur3, x86 variant, seed 0 (spec Appendix B), as a signed 32-bit int like Java's `asInt()`.
 */
export function murmur3x86_32(bytes: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const blocks = bytes.length - (bytes.length % 4);
  for (let i = 0; i < blocks; i += 4) {
    const k =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    h ^= mixK(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const remaining = bytes.length - blocks;
  if (remaining > 0) {
    // The last 1-3 bytes, little-endian, mixed without the rotation step of full blocks.
    let tail = 0;
    for (let i = remaining - 1; i >= 0; i -= 1) tail = (tail << 8) | (bytes[blocks + i] as number);
    h ^= mixK(tail);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

function longBytes(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, value, true);
  return bytes;
}

/** Java's `doubleToLongBits` with -0.0 folded into 0.0 and every NaN canonical (Appendix B note 5). */
function doubleBits(value: number): bigint {
  if (value === 0) return 0n;
  if (Number.isNaN(value)) return 0x7ff8000000000000n;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, true);
  return view.getBigInt64(0, true);
}

/**
 * The spec's 32-bit hash of a value (Appendix B): ints, longs and dates as 8-byte little-endian longs (so that
 * promoting int to long keeps bucket values), time and timestamps as longs of microseconds, strings as UTF-8,
 * UUIDs as 16 big-endian bytes, decimals as the minimal two's-complement bytes of the unscaled value, fixed and
 * binary as their bytes. Booleans, floats and doubles follow the table of types "not currently valid for
 * bucketing" so that the hash is defined for them too.
 *
 * @throws InvalidValueError when `value` does not have the representation `type` requires.
 */
export function hashValue(type: PrimitiveType, value: PrimitiveValue): number {
  checkValue(type, value);
  switch (type.kind) {
    case 'int':
    case 'date':
      return murmur3x86_32(longBytes(BigInt(value as number)));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return murmur3x86_32(longBytes(value as bigint));
    case 'boolean':
      return murmur3x86_32(longBytes(value ? 1n : 0n));
    case 'float':
    case 'double':
      return murmur3x86_32(longBytes(doubleBits(value as number)));
    case 'decimal':
      return murmur3x86_32(decimalToMinimalBytes((value as DecimalValue).unscaled));
    case 'string':
      return murmur3x86_32(utf8Bytes(value as string));
    case 'uuid':
      return murmur3x86_32(uuidToBytes(value as string));
    case 'fixed':
    case 'binary':
      return murmur3x86_32(value as Uint8Array);
  }
}

// ---- applying transforms ---------------------------------------------------------------------------------------

const MICROS_PER_HOUR = 3_600_000_000n;
const MICROS_PER_DAY = 86_400_000_000n;

/** Whole years from 1970 to the date (floor: 1969-12-31 is -1). */
function yearsFromEpochDays(days: number): number {
  return civilFromDays(days).year - 1970;
}

/** Whole months from 1970-01 to the date (floor: 1969-12-31 is -1). */
function monthsFromEpochDays(days: number): number {
  const { year, month } = civilFromDays(days);
  return (year - 1970) * 12 + (month - 1);
}

/**
 * Days from epoch for a timestamp in µs, rounding toward negative infinity as the spec requires ("days from
 * 1970-01-01"). Java's `DateTimeUtil.convertMicros` is off by one for pre-1970 values whose fraction of a second
 * is .999999 on a unit boundary; pyiceberg and this function follow the spec.
 */
function daysFromMicros(micros: bigint): number {
  return Number(floorDiv(micros, MICROS_PER_DAY));
}

function truncateInteger(value: number, width: number): number {
  return value - (((value % width) + width) % width);
}

function truncateBigint(value: bigint, width: bigint): bigint {
  return value - (((value % width) + width) % width);
}

/** The first `width` code points of `text`; a surrogate pair counts as one code point, as the spec requires. */
function truncateCodePoints(text: string, width: number): string {
  let end = 0;
  let count = 0;
  while (end < text.length && count < width) {
    const code = text.codePointAt(end) as number;
    end += code > 0xffff ? 2 : 1;
    count += 1;
  }
  return text.slice(0, end);
}

/** A function that applies one transform to values of one source type. */
export type BoundTransform = (value: PrimitiveValue | null) => PrimitiveValue | null;

/**
 * Binds `transform` to `sourceType` once, checking that it applies, and returns the function that computes
 * partition values. Every transform maps `null` to `null`; `void` maps everything to `null`.
 *
 * @param column the source column's name, for error messages.
 * @throws InvalidTransformError when the transform does not apply to the type.
 */
export function bindTransform(transform: Transform, sourceType: PrimitiveType, column?: string): BoundTransform {
  checkTransform(transform, sourceType, column);
  const checked =
    (fn: (value: PrimitiveValue) => PrimitiveValue): BoundTransform =>
    (value) => {
      if (value === null) return null;
      checkValue(sourceType, value);
      return fn(value);
    };
  switch (transform.kind) {
    case 'identity':
      return checked((v) => v);
    case 'void':
      return () => null;
    case 'bucket': {
      const n = transform.numBuckets;
      return checked((v) => (hashValue(sourceType, v) & INT_MAX) % n);
    }
    case 'truncate':
      return bindTruncate(transform.width, sourceType);
    case 'year':
      return checked((v) =>
        sourceType.kind === 'date' ? yearsFromEpochDays(v as number) : yearsFromEpochDays(daysFromMicros(v as bigint)),
      );
    case 'month':
      return checked((v) =>
        sourceType.kind === 'date'
          ? monthsFromEpochDays(v as number)
          : monthsFromEpochDays(daysFromMicros(v as bigint)),
      );
    case 'day':
      return checked((v) => (sourceType.kind === 'date' ? (v as number) : daysFromMicros(v as bigint)));
    case 'hour':
      return checked((v) => Number(floorDiv(v as bigint, MICROS_PER_HOUR)));
    case 'unknown':
      // checkTransform has already refused unknown transforms; this keeps the switch exhaustive.
      throw new InvalidTransformError(transform.name, 'unknown transform', column);
  }
}

function bindTruncate(width: number, sourceType: PrimitiveType): BoundTransform {
  const outOfRange = (value: unknown): never => {
    throw new InvalidValueError(
      typeToString(sourceType),
      `truncate[${width}] of ${String(value)} leaves the type's range; use a smaller width`,
    );
  };
  return (value) => {
    if (value === null) return null;
    checkValue(sourceType, value);
    switch (sourceType.kind) {
      case 'int': {
        const result = truncateInteger(value as number, width);
        return isInt32(result) ? result : outOfRange(value);
      }
      case 'long': {
        const result = truncateBigint(value as bigint, BigInt(width));
        return isInt64(result) ? result : outOfRange(value);
      }
      case 'decimal': {
        // The width applies to the unscaled value ("decimal(W, scale(v))"): W=50, scale 2 truncates to 0.50 steps.
        const decimal = value as DecimalValue;
        return { unscaled: truncateBigint(decimal.unscaled, BigInt(width)), scale: decimal.scale };
      }
      case 'string':
        return truncateCodePoints(value as string, width);
      case 'binary':
        return (value as Uint8Array).subarray(0, width);
      default:
        throw new InvalidTransformError(`truncate[${width}]`, `truncate does not apply to ${typeToString(sourceType)}`);
    }
  };
}

/** Applies `transform` to one value of `sourceType`; see {@link bindTransform} to apply it to many. */
export function applyTransform(
  transform: Transform,
  sourceType: PrimitiveType,
  value: PrimitiveValue | null,
): PrimitiveValue | null {
  return bindTransform(transform, sourceType)(value);
}

/**
 * A transformed value as Java prints it in partition paths (`Transform.toHumanString`): `year` as `2017`, `month`
 * as `2017-11`, `day` as `2017-11-16`, `hour` as `2017-11-16-22`, and other results by their type (dates as
 * `2017-11-16`, timestamps in ISO form, binary as base64…). `null` prints as `null`.
 */
export function transformedValueToHumanString(
  transform: Transform,
  sourceType: PrimitiveType,
  value: PrimitiveValue | null,
): string {
  if (value === null) return 'null';
  const ordinal = (): number => {
    if (typeof value !== 'number' || !isInt32(value)) {
      throw new InvalidValueError('int', `a ${transform.kind} ordinal must be a 32-bit integer number`);
    }
    return value;
  };
  switch (transform.kind) {
    case 'year':
      return humanYear(ordinal());
    case 'month':
      return humanMonth(ordinal());
    case 'day':
      return humanDate(ordinal());
    case 'hour':
      return humanHour(ordinal());
    default:
      return valueToHumanString(transformResultType(transform, sourceType), value);
  }
}

/** Java's `%04d` layout for years; negative years keep their sign within the four characters. */
function year4(year: number): string {
  return year < 0 ? `-${String(-year).padStart(3, '0')}` : String(year).padStart(4, '0');
}

function humanYear(yearOrdinal: number): string {
  return year4(1970 + yearOrdinal);
}

function humanMonth(monthOrdinal: number): string {
  const year = 1970 + Math.floor(monthOrdinal / 12);
  const month = (((monthOrdinal % 12) + 12) % 12) + 1;
  return `${year4(year)}-${String(month).padStart(2, '0')}`;
}

function humanHour(hourOrdinal: number): string {
  const days = Math.floor(hourOrdinal / 24);
  const hour = hourOrdinal - days * 24;
  return `${humanDate(days)}-${String(hour).padStart(2, '0')}`;
}

/**
 * The `transform` of a partition or sort field read from JSON, with errors at `<fieldPath>.transform`. A field that
 * names `source-ids` (several arguments) instead of `source-id` is refused: that is a format v3 feature.
 */
export function transformOfFieldJson(field: JsonObject, fieldPath: string, fail: Fail): Transform {
  if (getOwn(field, 'source-ids') !== undefined && getOwn(field, 'source-id') === undefined) {
    fail(fieldPath, 'multi-argument transforms (source-ids) need table format v3; this engine supports v2');
  }
  const text = required(field, 'transform', fieldPath, fail, expectString);
  try {
    return parseTransform(text);
  } catch (err) {
    if (err instanceof InvalidTransformError) fail(childPath(fieldPath, 'transform'), err.problem);
    throw err;
  }
}
