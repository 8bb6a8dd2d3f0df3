import { typeToString, type IcebergType } from '../iceberg/types.js';
import { civilFromDays, daysFromCivil, isInt32, isInt64, type DecimalValue } from '../iceberg/values.js';
import type { ConnectField } from './envelope.js';
import { ValueConversionError, describeSourceValue } from './errors.js';
import { decimalFromText } from './pg-types.js';

/**
 * Converts row values as Debezium's JSON converter writes them (`debezium-json`) to Iceberg JavaScript values, by
 * the column's Iceberg type and, when the change file carried it (`schemas.enable=true`), the field's Connect
 * schema, whose logical name says the unit of a temporal number or the scale of a decimal's bytes.
 *
 * Without a Connect schema, integer temporal values are read as Debezium's defaults for PostgreSQL's default
 * precision: days for dates, microseconds for times and timestamps (`MicroTime`, `MicroTimestamp`). Files written
 * with `time.precision.mode=connect`, or with `adaptive` for columns of precision 0–3 (milliseconds), need their
 * schemas. Decimals without a schema must be plain strings (`decimal.handling.mode=string`) or numbers (`double`);
 * the default `precise` mode writes bytes whose scale only the schema has.
 */

const MICROS_PER_DAY = 86_400_000_000n;
const ISO_DATE = /^([+-]?\d{4,})-(\d{2})-(\d{2})$/;
const ISO_TIME = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;
const ISO_ZONE = /(Z|[+-]\d{2}(?::?\d{2})?)$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The Iceberg value of a Debezium JSON value. `null` stays `null`.
 *
 * @throws ValueConversionError when the value does not fit the type.
 */
export function debeziumJsonToIceberg(type: IcebergType, value: unknown, field?: ConnectField): unknown {
  if (value === null || value === undefined) return null;
  const fail = (problem: string): never => {
    throw new ValueConversionError(typeToString(type), describeSourceValue(value), problem);
  };
  const logical = field?.name;
  switch (type.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') fail('expected a JSON boolean');
      return value;
    case 'int': {
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n !== 'number' || !isInt32(n)) fail('expected a 32-bit integer');
      return n;
    }
    case 'long':
      return integer(value, fail);
    case 'float':
    case 'double': {
      let n: number | undefined;
      if (typeof value === 'number') n = value;
      else if (typeof value === 'bigint') n = Number(value);
      else if (value === 'NaN') n = NaN;
      else if (value === 'Infinity') n = Infinity;
      else if (value === '-Infinity') n = -Infinity;
      if (n === undefined) return fail('expected a JSON number');
      return type.kind === 'float' ? Math.fround(n) : n;
    }
    case 'decimal':
      return decimalValue(value, type.precision, type.scale, field, fail);
    case 'string':
      if (typeof value !== 'string') fail('expected a JSON string');
      return value;
    case 'uuid':
      if (typeof value !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
        fail('expected a UUID string');
      }
      return (value as string).toLowerCase();
    case 'date':
      if (typeof value === 'string') return isoDateDays(value, fail);
      if (logical === 'io.debezium.time.Timestamp' || logical === 'org.apache.kafka.connect.data.Timestamp') {
        return Number(floorDivision(integer(value, fail), 86_400_000n));
      }
      {
        const days = integer(value, fail);
        if (days < -2147483648n || days > 2147483647n) fail('out of the range of an Iceberg date');
        return Number(days);
      }
    case 'time': {
      const micros =
        typeof value === 'string'
          ? isoTimeMicros(value.replace(/(Z|[+-]\d{2}(:?\d{2})?)$/, ''), fail)
          : scaleToMicros(integer(value, fail), timeUnit(logical));
      if (micros < 0n || micros >= MICROS_PER_DAY) fail('not a time of day (Iceberg times end before 24:00:00)');
      return micros;
    }
    case 'timestamp':
    case 'timestamptz': {
      const micros =
        typeof value === 'string'
          ? isoTimestampMicros(value, type.kind === 'timestamptz', fail)
          : scaleToMicros(integer(value, fail), timestampUnit(logical));
      if (!isInt64(micros)) fail('out of the 64-bit microsecond range');
      return micros;
    }
    case 'binary':
    case 'fixed': {
      if (typeof value !== 'string') return fail('expected base64 bytes in a JSON string');
      if (!BASE64.test(value) || value.length % 4 !== 0) fail('expected base64 bytes');
      const bytes = Uint8Array.from(Buffer.from(value, 'base64'));
      if (type.kind === 'fixed' && bytes.length !== type.length) fail(`expected ${type.length} bytes`);
      return bytes;
    }
    case 'list':
      if (!Array.isArray(value)) return fail('expected a JSON array');
      return value.map((element: unknown, i) => {
        if ((element === null || element === undefined) && type.elementRequired) {
          fail(`element ${i} is null, but the list's elements are required`);
        }
        return debeziumJsonToIceberg(type.element, element, field?.items);
      });
    case 'struct':
    case 'map':
      return fail(`nested ${type.kind} columns are not supported by the CDC merge`);
  }
}

function integer(value: unknown, fail: (p: string) => never): bigint {
  let n: bigint | undefined;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^[+-]?\d+$/.test(value)) n = BigInt(value);
  if (n === undefined) return fail('expected an integer');
  if (!isInt64(n)) fail('out of the 64-bit range');
  return n;
}

type Unit = 'millis' | 'micros' | 'nanos';

function timeUnit(logical: string | undefined): Unit {
  if (logical === 'io.debezium.time.Time' || logical === 'org.apache.kafka.connect.data.Time') return 'millis';
  if (logical === 'io.debezium.time.NanoTime') return 'nanos';
  return 'micros';
}

function timestampUnit(logical: string | undefined): Unit {
  if (logical === 'io.debezium.time.Timestamp' || logical === 'org.apache.kafka.connect.data.Timestamp') {
    return 'millis';
  }
  if (logical === 'io.debezium.time.NanoTimestamp') return 'nanos';
  return 'micros';
}

function floorDivision(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function scaleToMicros(n: bigint, unit: Unit): bigint {
  if (unit === 'millis') return n * 1000n;
  // Nanoseconds beyond the microsecond are dropped toward the past, as Iceberg's own nanosecond → µs conversion.
  if (unit === 'nanos') return floorDivision(n, 1000n);
  return n;
}

function isoDateDays(text: string, fail: (p: string) => never): number {
  const m = ISO_DATE.exec(text);
  if (!m) return fail('expected an ISO date like 2024-01-31');
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const days = daysFromCivil(year, month, day);
  const back = civilFromDays(days);
  if (back.year !== year || back.month !== month || back.day !== day) fail('not a valid calendar date');
  return days;
}

function isoTimeMicros(text: string, fail: (p: string) => never): bigint {
  const m = ISO_TIME.exec(text);
  if (!m) return fail('expected an ISO time like 13:45:00.123456');
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  const seconds = Number(m[3] ?? '0');
  if (hours > 23 || minutes > 59 || seconds > 59) fail('not a valid time of day');
  const fraction = (m[4] ?? '').padEnd(9, '0');
  if (/[^0]/.test(fraction.slice(6))) fail('it has nanoseconds, and Iceberg times hold microseconds');
  return BigInt(hours * 3600 + minutes * 60 + seconds) * 1_000_000n + BigInt(fraction.slice(0, 6));
}

function isoTimestampMicros(text: string, withZone: boolean, fail: (p: string) => never): bigint {
  const t = text.indexOf('T') >= 0 ? text.indexOf('T') : text.indexOf(' ');
  if (t < 0) return fail('expected an ISO timestamp like 2024-01-31T13:45:00Z');
  const zoneMatch = ISO_ZONE.exec(text.slice(t + 1));
  if (withZone && !zoneMatch) fail('expected a zone (Z or ±HH:MM)');
  // A zone-less timestamp may still be written with `Z` (Debezium's isostring mode); a real offset is a mismatch.
  if (!withZone && zoneMatch && zoneMatch[1] !== 'Z') fail('it has a UTC offset, but the column has no time zone');
  const zone = zoneMatch?.[1] ?? '';
  const days = isoDateDays(text.slice(0, t), fail);
  const micros = BigInt(days) * MICROS_PER_DAY + isoTimeMicros(text.slice(t + 1, text.length - zone.length), fail);
  if (zone === '' || zone === 'Z') return micros;
  const digits = zone.slice(1).replace(':', '');
  const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0');
  return micros - BigInt(zone.startsWith('-') ? -offsetMinutes : offsetMinutes) * 60_000_000n;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  // Two's complement, big-endian: Java's BigInteger(byte[]).
  return (bytes[0] as number) & 0x80 ? n - (1n << BigInt(8 * bytes.length)) : n;
}

function decimalValue(
  value: unknown,
  precision: number,
  scale: number,
  field: ConnectField | undefined,
  fail: (p: string) => never,
): DecimalValue {
  const fromUnscaled = (unscaled: bigint, sourceScale: number): DecimalValue => {
    const negative = unscaled < 0n;
    const digits = (negative ? -unscaled : unscaled).toString();
    const text =
      sourceScale <= 0
        ? `${digits}${'0'.repeat(-sourceScale)}`
        : `${digits.padStart(sourceScale + 1, '0').slice(0, -sourceScale)}.${digits.padStart(sourceScale + 1, '0').slice(-sourceScale)}`;
    return decimalFromText(`${negative ? '-' : ''}${text}`, precision, scale, fail);
  };
  if (typeof value === 'string') {
    if (field?.name === 'org.apache.kafka.connect.data.Decimal') {
      const sourceScale = Number(field.parameters?.scale ?? '0');
      if (!BASE64.test(value)) fail('expected base64 decimal bytes (Connect Decimal)');
      return fromUnscaled(bytesToBigInt(Buffer.from(value, 'base64')), sourceScale);
    }
    return decimalFromText(value, precision, scale, fail);
  }
  if (typeof value === 'bigint') return decimalFromText(value.toString(), precision, scale, fail);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail('Iceberg decimals have no NaN or infinity');
    const text = String(value);
    if (/e/i.test(text))
      fail('a double in exponent form cannot be converted exactly; use decimal.handling.mode=string');
    return decimalFromText(text, precision, scale, fail);
  }
  if (value !== null && typeof value === 'object' && 'scale' in value && 'value' in value) {
    // io.debezium.data.VariableScaleDecimal: { scale, value: base64 unscaled bytes }.
    const v = value as { scale: unknown; value: unknown };
    if (typeof v.value !== 'string' || !BASE64.test(v.value)) fail('expected base64 bytes in "value"');
    const sourceScale = typeof v.scale === 'bigint' ? Number(v.scale) : v.scale;
    if (typeof sourceScale !== 'number' || !Number.isInteger(sourceScale)) fail('expected an integer "scale"');
    return fromUnscaled(bytesToBigInt(Buffer.from(v.value as string, 'base64')), sourceScale as number);
  }
  return fail('expected a decimal string, a number or a { scale, value } struct');
}
