import { MAX_DECIMAL_PRECISION, Types, typeToString, type IcebergType } from '../iceberg/types.js';
import { civilFromDays, daysFromCivil, isInt32, isInt64, type DecimalValue } from '../iceberg/values.js';
import { SourceTableError, ValueConversionError, describeSourceValue } from './errors.js';

/**
 * PostgreSQL column types, their Iceberg types, and the conversion of PostgreSQL's text output (what pgoutput and a
 * text-format `SELECT` send) to the Iceberg JavaScript values of `lib/iceberg/values.ts`, exactly: numerics become
 * unscaled bigints, timestamps microsecond bigints parsed from the text (never through `Date` or the process time
 * zone), bytea bytes from its hex form.
 *
 * The conversion is driven by the **Iceberg** type alone, which is what makes a source type change detectable: an
 * `int4` column that starts sending `abc` fails to convert instead of being stored as something else. It assumes the
 * session formats pinned by {@link PG_TEXT_SESSION_SETTINGS}.
 */

/** Session settings under which every conversion here is exact; set them on every connection that reads values. */
export const PG_TEXT_SESSION_SETTINGS: Readonly<Record<string, string>> = {
  // ISO dates (`2024-01-31 12:00:00+00`) whatever the server's default DateStyle is.
  DateStyle: 'ISO, YMD',
  // timestamptz is printed with its offset either way; UTC just keeps the text short and readable.
  TimeZone: 'UTC',
  // Hex bytea, the default since 9.0, but a server can be configured to the escape format.
  bytea_output: 'hex',
  // Shortest exact float text on PostgreSQL 12+, and full precision on older servers.
  extra_float_digits: '3',
  IntervalStyle: 'postgres',
};

/** SQL that applies {@link PG_TEXT_SESSION_SETTINGS}; `local` limits them to the current transaction. */
export function sessionSettingsSql(local = false): string {
  return Object.entries(PG_TEXT_SESSION_SETTINGS)
    .map(([name, value]) => `SET ${local ? 'LOCAL ' : ''}${name} = '${value}'`)
    .join('; ');
}

/** A PostgreSQL column type after resolving domains to their base type. */
export interface PgType {
  /**
   * `base` for built-in and extension scalar types, `enum` for enum types, `array` for arrays (see
   * {@link PgType.element}), `other` for composite, range and pseudo types.
   */
  readonly kind: 'base' | 'enum' | 'array' | 'other';
  /** `pg_type.typname`: `int4`, `numeric`, `varchar`, `timestamptz`, `_int4`… */
  readonly name: string;
  /** The type modifier (`atttypmod`): length, precision and scale; `-1` when none. Arrays carry their element's. */
  readonly typmod: number;
  /** The element type of an array. */
  readonly element?: PgType;
  /** How PostgreSQL prints the type (`format_type`), for messages: `numeric(10,2)`, `integer[]`. */
  readonly display: string;
}

/** How numerics that no Iceberg decimal holds exactly are mapped. */
export type WideNumericMapping = 'decimal' | 'string';

/** Options of {@link icebergTypeForPg}. */
export interface PgTypeMappingOptions {
  /**
   * How to map an unconstrained `numeric` (and `numeric(p,s)` with p above 38): `decimal` maps it to
   * `decimal(38, 18)` (or `decimal(38, s)`), and values that do not fit exactly (more than 20 integer digits, more
   * than 18 non-zero fraction digits, NaN, ±Infinity) are quarantined rather than rounded; `string` keeps the exact
   * text in a string column, which never fails but loses numeric semantics for readers.
   * @default 'decimal'
   */
  wideNumeric?: WideNumericMapping;
}

/** The scale an unconstrained numeric gets when mapped to a decimal. */
export const WIDE_NUMERIC_SCALE = 18;

/** Types whose exact text is kept in a string column: readers get the value PostgreSQL prints. */
const STRING_TYPES = new Set([
  'text',
  'varchar',
  'bpchar',
  'char',
  'name',
  'citext',
  'json',
  'jsonb',
  'jsonpath',
  'xml',
  // No Iceberg type keeps a time with a zone; the text keeps the offset.
  'timetz',
  'interval',
  'inet',
  'cidr',
  'macaddr',
  'macaddr8',
  'money',
  'bit',
  'varbit',
  'tsvector',
  'tsquery',
  'pg_lsn',
]);

const SIMPLE_TYPES: Readonly<Record<string, IcebergType>> = {
  bool: Types.boolean,
  int2: Types.int,
  int4: Types.int,
  int8: Types.long,
  // oid is an unsigned 32-bit number: it does not fit an int.
  oid: Types.long,
  float4: Types.float,
  float8: Types.double,
  bytea: Types.binary,
  date: Types.date,
  time: Types.time,
  timestamp: Types.timestamp,
  timestamptz: Types.timestamptz,
  uuid: Types.uuid,
};

/** Precision and scale of a `numeric` typmod, or `undefined` for an unconstrained numeric. */
export function numericTypmod(typmod: number): { precision: number; scale: number } | undefined {
  if (typmod < 4) return undefined;
  const t = typmod - 4;
  // PostgreSQL 15 stores the scale as an 11-bit signed number (negative scales and scale > precision are allowed).
  const rawScale = t & 0x7ff;
  return { precision: (t >> 16) & 0xffff, scale: (rawScale ^ 1024) - 1024 };
}

/**
 * The Iceberg type of a PostgreSQL column type. Lists get element id 0 and an optional element; give them real ids
 * with `assignFreshIds` (source-schema does).
 *
 * @param column names the column in the error message.
 * @throws SourceTableError (`unsupported-type`) for composite, range, geometric and other unmapped types.
 */
export function icebergTypeForPg(
  type: PgType,
  options: PgTypeMappingOptions = {},
  column: { table: string; name: string } = { table: '?', name: '?' },
): IcebergType {
  if (type.kind === 'array') {
    if (!type.element) throw unsupported(type, column, 'the array has no element type');
    const element = icebergTypeForPg(type.element, options, column);
    return { kind: 'list', elementId: 0, elementRequired: false, element };
  }
  if (type.kind === 'enum') return Types.string;
  if (type.kind === 'base') {
    const simple = SIMPLE_TYPES[type.name];
    if (simple) return simple;
    if (STRING_TYPES.has(type.name)) return Types.string;
    if (type.name === 'numeric') return numericType(type.typmod, options.wideNumeric ?? 'decimal');
  }
  throw unsupported(type, column, 'Sluice has no Iceberg mapping for it');
}

function unsupported(type: PgType, column: { table: string; name: string }, why: string): SourceTableError {
  return new SourceTableError(
    'unsupported-type',
    column.table,
    `column "${column.name}" of table "${column.table}" has type ${type.display}, and ${why}; leave the column ` +
      'out of the publication (a column list) or cast it to a supported type in a view of the source',
    column.name,
  );
}

function numericType(typmod: number, wide: WideNumericMapping): IcebergType {
  const declared = numericTypmod(typmod);
  if (declared) {
    // numeric(3,-2) holds 12300: five integer digits. numeric(3,5) holds 0.00123: five fraction digits.
    const scale = Math.max(declared.scale, 0);
    const precision = declared.scale < 0 ? declared.precision - declared.scale : Math.max(declared.precision, scale);
    if (precision <= MAX_DECIMAL_PRECISION) return Types.decimal(precision, scale);
    if (wide === 'string') return Types.string;
    return Types.decimal(MAX_DECIMAL_PRECISION, Math.min(scale, MAX_DECIMAL_PRECISION));
  }
  return wide === 'string' ? Types.string : Types.decimal(MAX_DECIMAL_PRECISION, WIDE_NUMERIC_SCALE);
}

// ---- text values --------------------------------------------------------------------------------------------

const INT_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NUMERIC_TEXT = /^([+-]?)(\d+)(?:\.(\d+))?$/;
const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TEXT = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/;
const TIME_TEXT = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;
// ISO DateStyle: `2024-01-31 12:00:00.5+05:30`, `0044-03-15 12:00:00 BC`; offsets can have seconds (+00:53:28).
const TIMESTAMP_TEXT =
  /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)?( BC)?$/;
const MICROS_PER_SECOND = 1_000_000n;
const MICROS_PER_DAY = 86_400_000_000n;

/**
 * Converts PostgreSQL's text output of a value to the Iceberg JavaScript value of `type`. `null` stays `null`.
 *
 * @throws ValueConversionError when the text does not fit the type (a type mismatch after a source change, a
 *   numeric that would need rounding, `infinity` dates and timestamps, `24:00:00`, a multi-dimensional array…).
 */
export function pgTextToIceberg(type: IcebergType, text: string | null): unknown {
  if (text === null) return null;
  // The common kinds first: the merge converts every value of every change here.
  if (type.kind === 'string') return text;
  if (type.kind === 'long' && INT_TEXT.test(text)) {
    const n = BigInt(text);
    if (isInt64(n)) return n;
  }
  try {
    return textToIceberg(type, text);
  } catch (err) {
    // The problem becomes a typed error naming the type and the value here, so that no per-value closure is needed.
    if (err instanceof TextProblem) {
      throw new ValueConversionError(typeToString(type), describeSourceValue(text), err.problem);
    }
    throw err;
  }
}

/** A conversion problem of {@link textToIceberg}, turned into a ValueConversionError by {@link pgTextToIceberg}. */
class TextProblem {
  constructor(readonly problem: string) {}
}

function fail(problem: string): never {
  throw new TextProblem(problem);
}

function textToIceberg(type: IcebergType, text: string): unknown {
  switch (type.kind) {
    case 'boolean':
      if (text === 't' || text === 'true') return true;
      if (text === 'f' || text === 'false') return false;
      return fail('expected t or f');
    case 'int': {
      const n = Number(text);
      if (!INT_TEXT.test(text) || !isInt32(n)) fail('expected a 32-bit integer');
      return n;
    }
    case 'long': {
      if (!INT_TEXT.test(text)) fail('expected an integer');
      const n = BigInt(text);
      if (!isInt64(n)) fail('out of the 64-bit range');
      return n;
    }
    case 'float':
    case 'double': {
      const n = parseFloatText(text);
      if (n === undefined) return fail('expected a number, NaN or ±Infinity');
      return type.kind === 'float' ? Math.fround(n) : n;
    }
    case 'decimal':
      return fastDecimal(text, type.precision, type.scale) ?? decimalFromText(text, type.precision, type.scale, fail);
    case 'uuid':
      if (!UUID_TEXT.test(text)) fail('expected a UUID');
      return text.toLowerCase();
    case 'date':
      return dateFromPgText(text, fail);
    case 'time':
      return timeFromPgText(text, fail);
    case 'timestamp':
    case 'timestamptz':
      return (
        fastTimestamp(text, type.kind === 'timestamptz') ?? timestampFromPgText(text, type.kind === 'timestamptz', fail)
      );
    case 'binary':
      return byteaFromPgText(text, fail);
    case 'fixed': {
      const bytes = byteaFromPgText(text, fail);
      if (bytes.length !== type.length) fail(`expected ${type.length} bytes, got ${bytes.length}`);
      return bytes;
    }
    case 'list': {
      let elements: (string | null)[] = [];
      try {
        elements = parsePgArray(text);
      } catch (err) {
        fail((err as Error).message);
      }
      return elements.map((element, i) => {
        if (element === null && type.elementRequired)
          fail(`element ${i} is NULL, but the list's elements are required`);
        return pgTextToIceberg(type.element, element);
      });
    }
    case 'struct':
    case 'map':
      return fail(`PostgreSQL text cannot be converted to a ${type.kind}`);
  }
}

function parseFloatText(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === 'Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  return FLOAT_TEXT.test(text) ? Number(text) : undefined;
}

/**
 * A plain decimal text (`-12.340`) as a decimal of exactly `scale`: extra fraction digits must be zeros, since
 * rounding would change the value.
 */
export function decimalFromText(
  text: string,
  precision: number,
  scale: number,
  fail: (problem: string) => never,
): DecimalValue {
  const m = NUMERIC_TEXT.exec(text);
  if (!m) {
    if (/^[+-]?(NaN|Infinity)$/i.test(text)) fail('Iceberg decimals have no NaN or infinity');
    return fail('expected a plain decimal number');
  }
  const fraction = m[3] ?? '';
  let digits = `${m[2] as string}${fraction}`;
  if (fraction.length > scale) {
    const dropped = digits.slice(digits.length - (fraction.length - scale));
    if (/[^0]/.test(dropped)) fail(`it has more than ${scale} fraction digits, and rounding would change it`);
    digits = digits.slice(0, digits.length - dropped.length);
  } else {
    digits += '0'.repeat(scale - fraction.length);
  }
  const magnitude = BigInt(digits);
  if (magnitude >= pow10(precision)) fail(`it has more than ${precision} digits at scale ${scale}`);
  return { unscaled: m[1] === '-' ? -magnitude : magnitude, scale };
}

const POW10: bigint[] = [];

/** 10ⁿ as a bigint, computed once per n. */
function pow10(n: number): bigint {
  return (POW10[n] ??= 10n ** BigInt(n));
}

/** Exact powers of ten a double holds (10¹⁵ and below). */
const NUMBER_POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * The common case of {@link decimalFromText} without a regex or string building: an unsigned or `-` plain decimal
 * whose digits, scaled, fit 15 digits (exact in a double). `undefined` for anything else, which the full path then
 * converts or refuses; where this returns a value, it is the full path's.
 */
export function fastDecimal(text: string, precision: number, scale: number): DecimalValue | undefined {
  const n = text.length;
  let i = 0;
  const negative = n > 0 && text.charCodeAt(0) === 45; /* - */
  if (negative) i = 1;
  let value = 0;
  let intDigits = 0;
  for (; i < n; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    value = value * 10 + d;
    intDigits++;
  }
  let fractionDigits = 0;
  if (i < n) {
    if (text.charCodeAt(i) !== 46 /* . */ || i === n - 1) return undefined;
    for (i++; i < n; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
      value = value * 10 + d;
      fractionDigits++;
    }
  }
  if (intDigits === 0 || fractionDigits > scale || intDigits + scale > 15) return undefined;
  const unscaled = value * NUMBER_POW10[scale - fractionDigits]!;
  if (precision <= 15 && unscaled >= NUMBER_POW10[precision]!) return undefined;
  const magnitude = BigInt(unscaled);
  return { unscaled: negative ? -magnitude : magnitude, scale };
}

/** Validated days from 1970-01-01 by `year * 10000 + month * 100 + day`: timestamps of a batch share few days. */
const DAYS_CACHE = new Map<number, number>();

/** Two ASCII digits at `i` as a number, or -1. */
function twoDigits(text: string, i: number): number {
  const a = text.charCodeAt(i) - 48;
  const b = text.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * The common case of {@link timestampFromPgText} without a regex and with one bigint: `YYYY-MM-DD HH:MM:SS[.f…]`
 * with a four-digit year within about 270 years of 1970, and for timestamptz an offset `±HH[:MM[:SS]]`. `undefined`
 * for anything else (other forms, BC, infinity, invalid fields), which the full path then converts or refuses; where
 * this returns a value, it is the full path's.
 */
export function fastTimestamp(text: string, withZone: boolean): bigint | undefined {
  const n = text.length;
  if (n < 19 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 32) return undefined;
  if (text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined;
  const century = twoDigits(text, 0);
  const yy = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hours = twoDigits(text, 11);
  const minutes = twoDigits(text, 14);
  const seconds = twoDigits(text, 17);
  if (century < 0 || yy < 0 || month < 1 || month > 12 || day < 1) return undefined;
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59 || seconds < 0 || seconds > 59) return undefined;
  const year = century * 100 + yy;
  const dateKey = year * 10_000 + month * 100 + day;
  let days = DAYS_CACHE.get(dateKey);
  if (days === undefined) {
    days = daysFromCivil(year, month, day);
    const back = civilFromDays(days);
    if (back.year !== year || back.month !== month || back.day !== day) return undefined;
    if (DAYS_CACHE.size < 100_000) DAYS_CACHE.set(dateKey, days);
  }
  // Whole microseconds stay exact in a double up to 2^53 µs, about 285 years either side of 1970.
  if (days > 98_000 || days < -98_000) return undefined;
  let i = 19;
  let fraction = 0;
  if (i < n && text.charCodeAt(i) === 46 /* . */) {
    let digits = 0;
    for (i++; i < n; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      if (++digits > 6) return undefined;
      fraction = fraction * 10 + d;
    }
    if (digits === 0) return undefined;
    fraction *= NUMBER_POW10[6 - digits]!;
  }
  let offsetSeconds = 0;
  if (withZone) {
    const sign = text.charCodeAt(i);
    if (sign !== 43 && sign !== 45) return undefined;
    const oh = twoDigits(text, i + 1);
    if (oh < 0) return undefined;
    i += 3;
    let om = 0;
    let os = 0;
    if (i < n) {
      if (text.charCodeAt(i) !== 58 || (om = twoDigits(text, i + 1)) < 0) return undefined;
      i += 3;
      if (i < n) {
        if (text.charCodeAt(i) !== 58 || (os = twoDigits(text, i + 1)) < 0) return undefined;
        i += 3;
      }
    }
    offsetSeconds = (oh * 3600 + om * 60 + os) * (sign === 45 ? -1 : 1);
  }
  if (i !== n) return undefined;
  const micros = days * 86_400_000_000 + (hours * 3600 + minutes * 60 + seconds - offsetSeconds) * 1_000_000 + fraction;
  return BigInt(micros);
}

function civilDays(yearText: string, monthText: string, dayText: string, bc: boolean, fail: (p: string) => never) {
  // 1 BC is year 0 of the proleptic Gregorian calendar (ISO 8601), 2 BC is year -1.
  const year = bc ? 1 - Number(yearText) : Number(yearText);
  const month = Number(monthText);
  const day = Number(dayText);
  const days = daysFromCivil(year, month, day);
  const back = civilFromDays(days);
  if (month < 1 || month > 12 || back.year !== year || back.month !== month || back.day !== day) {
    fail('not a valid calendar date');
  }
  return days;
}

function rejectInfinity(text: string, fail: (p: string) => never): void {
  if (text === 'infinity' || text === '-infinity') {
    fail('PostgreSQL infinity has no Iceberg equivalent; store a sentinel date in the source or quarantine the row');
  }
}

function dateFromPgText(text: string, fail: (p: string) => never): number {
  rejectInfinity(text, fail);
  const m = DATE_TEXT.exec(text);
  if (!m) return fail('expected an ISO date like 2024-01-31 (DateStyle ISO)');
  const days = civilDays(m[1] as string, m[2] as string, m[3] as string, m[4] !== undefined, fail);
  if (!isInt32(days)) fail('out of the range of an Iceberg date');
  return days;
}

function microsOfDay(h: string, m: string, s: string, fraction: string | undefined, fail: (p: string) => never) {
  const hours = Number(h);
  const minutes = Number(m);
  const seconds = Number(s);
  if (hours > 23 || minutes > 59 || seconds > 59) {
    fail(hours === 24 ? 'Iceberg times end before 24:00:00' : 'not a valid time of day');
  }
  return BigInt(hours * 3600 + minutes * 60 + seconds) * MICROS_PER_SECOND + BigInt((fraction ?? '').padEnd(6, '0'));
}

function timeFromPgText(text: string, fail: (p: string) => never): bigint {
  const m = TIME_TEXT.exec(text);
  if (!m) return fail('expected a time like 13:45:00.123456 without a zone');
  return microsOfDay(m[1] as string, m[2] as string, m[3] as string, m[4], fail);
}

export function timestampFromPgText(text: string, withZone: boolean, fail: (p: string) => never): bigint {
  rejectInfinity(text, fail);
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return fail('expected an ISO timestamp like 2024-01-31 13:45:00.123456 (DateStyle ISO)');
  const sign = m[8];
  if (withZone && sign === undefined) fail('expected a UTC offset (timestamptz)');
  if (!withZone && sign !== undefined) fail('it has a UTC offset, but the column is a timestamp without time zone');
  const days = civilDays(m[1] as string, m[2] as string, m[3] as string, m[12] !== undefined, fail);
  let micros = BigInt(days) * MICROS_PER_DAY + microsOfDay(m[4] as string, m[5] as string, m[6] as string, m[7], fail);
  if (sign !== undefined) {
    const offsetSeconds = Number(m[9]) * 3600 + Number(m[10] ?? '0') * 60 + Number(m[11] ?? '0');
    // Local time = UTC + offset, so UTC = local - offset.
    micros -= BigInt(sign === '-' ? -offsetSeconds : offsetSeconds) * MICROS_PER_SECOND;
  }
  if (!isInt64(micros)) fail('out of the 64-bit microsecond range');
  return micros;
}

/**
 * The bytes of a bytea's text: the hex format (`\x0aff`) or the legacy escape format (`a\000\\b`).
 */
export function byteaFromPgText(text: string, fail: (p: string) => never): Uint8Array {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) fail('malformed hex bytea');
    return Uint8Array.from(Buffer.from(hex, 'hex'));
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code > 0xff) fail('escape-format bytea holds only single-byte characters');
    if (text[i] !== '\\') {
      out.push(code);
    } else if (text[i + 1] === '\\') {
      out.push(0x5c);
      i += 1;
    } else if (/^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      out.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      fail('malformed escape-format bytea');
    }
  }
  return Uint8Array.from(out);
}

/**
 * The elements of a one-dimensional PostgreSQL array literal, as text (`NULL` elements as `null`): handles quoting,
 * backslash escapes, whitespace and the `[2:3]=` bounds prefix.
 *
 * @throws Error for a malformed literal or a multi-dimensional array (Iceberg lists of lists would need nested
 *   element ids the source schema cannot know).
 */
export function parsePgArray(text: string): (string | null)[] {
  let i = 0;
  if (text.startsWith('[')) {
    const eq = text.indexOf('=');
    if (eq < 0) throw new Error('malformed array bounds');
    if (/\]\[/.test(text.slice(0, eq))) throw new Error('multi-dimensional arrays are not supported');
    i = eq + 1;
  }
  if (text[i] !== '{') throw new Error('an array literal starts with {');
  i += 1;
  const out: (string | null)[] = [];
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i] as string)) i += 1;
  };
  skipSpace();
  if (text[i] === '}') {
    if (text.slice(i + 1).trim() !== '') throw new Error('text after the closing }');
    return out;
  }
  for (;;) {
    skipSpace();
    const c = text[i];
    if (c === '{') throw new Error('multi-dimensional arrays are not supported');
    if (c === undefined) throw new Error('unterminated array literal');
    if (c === '"') {
      i += 1;
      let value = '';
      for (;;) {
        const d = text[i];
        if (d === undefined) throw new Error('unterminated quoted element');
        if (d === '\\') {
          const next = text[i + 1];
          if (next === undefined) throw new Error('unterminated quoted element');
          value += next;
          i += 2;
        } else if (d === '"') {
          i += 1;
          break;
        } else {
          value += d;
          i += 1;
        }
      }
      out.push(value);
      skipSpace();
    } else {
      let value = '';
      let escaped = false;
      while (i < text.length && text[i] !== ',' && text[i] !== '}') {
        const d = text[i] as string;
        if (d === '"' || d === '{') throw new Error(`unexpected ${d} in an unquoted element`);
        if (d === '\\') {
          const next = text[i + 1];
          if (next === undefined) throw new Error('unterminated escape');
          value += next;
          escaped = true;
          i += 2;
        } else {
          value += d;
          i += 1;
        }
      }
      // Unquoted elements lose surrounding whitespace; an unquoted, unescaped NULL is the null element.
      const trimmed = value.trim();
      out.push(!escaped && trimmed.toUpperCase() === 'NULL' ? null : trimmed);
    }
    const sep = text[i];
    if (sep === ',') {
      i += 1;
      continue;
    }
    if (sep === '}') {
      if (text.slice(i + 1).trim() !== '') throw new Error('text after the closing }');
      return out;
    }
    throw new Error('expected , or } after an element');
  }
}
