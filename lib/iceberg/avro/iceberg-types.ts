import type { PrimitiveType } from '../types.js';
import { checkValue, decimalToMinimalBytes, uuidToBytes, type DecimalValue, type PrimitiveValue } from '../values.js';
import { schemaAttribute, type AvroSchema } from './schema.js';

/**
 * Iceberg primitive types and values in Avro (spec Appendix A, "Avro"): the Avro schema of each type, the Avro
 * value of each `values.ts` value, and the way back. Named types get the names Java's `TypeToSchema` gives them.
 */

/**
 * Bytes of the `fixed` that stores a decimal of this precision: the fewest bytes whose two's-complement range holds
 * every unscaled value of P digits (Appendix A's `minBytesRequired(P)`, Java's `TypeUtil.decimalRequiredBytes`).
 */
export function decimalRequiredBytes(precision: number): number {
  let bytes = 1;
  while (2n ** BigInt(8 * bytes - 1) < 10n ** BigInt(precision)) bytes += 1;
  return bytes;
}

/**
 * A valid Avro name for an Iceberg field name, made the way Java's `AvroSchemaUtil.sanitize` makes one: a leading
 * digit gets `_` before it, and any other character outside `[A-Za-z0-9_]` becomes `_x` plus its UTF-16 code in
 * upper-case hex (`ts.day` → `ts_x2Eday`). Java keeps non-ASCII letters, which avsc refuses; readers match fields
 * by `field-id`, so only the Avro name differs.
 */
export function avroFieldName(name: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return name;
  let out = '';
  for (let i = 0; i < name.length; i += 1) {
    const c = name.charAt(i);
    if (/[A-Za-z_]/.test(c) || (i > 0 && /[0-9]/.test(c))) out += c;
    else if (/[0-9]/.test(c)) out += `_${c}`;
    else out += `_x${name.charCodeAt(i).toString(16).toUpperCase()}`;
  }
  return out;
}

/**
 * The Avro schema of a primitive type. A named type (`uuid_fixed`, `fixed_16`, `decimal_9_2`) is defined the first
 * time and referenced by name afterwards, as Avro requires; pass one `defined` set per schema.
 */
export function avroSchemaForPrimitive(type: PrimitiveType, defined: Set<string>): AvroSchema {
  const named = (name: string, attributes: Record<string, unknown>): AvroSchema => {
    if (defined.has(name)) return name;
    defined.add(name);
    return { type: 'fixed', name, ...attributes };
  };
  switch (type.kind) {
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
      return type.kind;
    case 'binary':
      return 'bytes';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'time':
      return { type: 'long', logicalType: 'time-micros' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false };
    case 'timestamptz':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true };
    case 'uuid':
      return named('uuid_fixed', { size: 16, logicalType: 'uuid' });
    case 'fixed':
      return named(`fixed_${type.length}`, { size: type.length });
    case 'decimal':
      return named(`decimal_${type.precision}_${type.scale}`, {
        size: decimalRequiredBytes(type.precision),
        logicalType: 'decimal',
        precision: type.precision,
        scale: type.scale,
      });
  }
}

/**
 * The Iceberg type that Appendix A maps to an Avro schema (named references already resolved); undefined for Avro
 * types that no v2 primitive maps to. A `string` with logical type `uuid` is accepted too.
 */
export function primitiveTypeOfAvro(schema: AvroSchema): PrimitiveType | undefined {
  const base = typeof schema === 'string' ? schema : schemaAttribute(schema, 'type');
  const logical = schemaAttribute(schema, 'logicalType');
  switch (base) {
    case 'boolean':
    case 'float':
    case 'double':
      return { kind: base };
    case 'int':
      return { kind: logical === 'date' ? 'date' : 'int' };
    case 'long':
      if (logical === 'time-micros') return { kind: 'time' };
      if (logical === 'timestamp-micros') {
        return { kind: schemaAttribute(schema, 'adjust-to-utc') === true ? 'timestamptz' : 'timestamp' };
      }
      // timestamp-nanos and other logical longs are v3 or foreign: refuse rather than misread the unit.
      return logical === undefined ? { kind: 'long' } : undefined;
    case 'string':
      return { kind: logical === 'uuid' ? 'uuid' : 'string' };
    case 'bytes':
    case 'fixed': {
      if (logical === 'decimal') {
        const precision = schemaAttribute(schema, 'precision');
        const scale = schemaAttribute(schema, 'scale') ?? 0;
        if (typeof precision !== 'number' || typeof scale !== 'number') return undefined;
        return { kind: 'decimal', precision, scale };
      }
      if (base === 'bytes') return { kind: 'binary' };
      const size = schemaAttribute(schema, 'size');
      if (logical === 'uuid' && size === 16) return { kind: 'uuid' };
      return typeof size === 'number' ? { kind: 'fixed', length: size } : undefined;
    }
    default:
      return undefined;
  }
}

/** Two's-complement big-endian, sign-extended to `size` bytes: the `fixed` form of a decimal in Avro. */
function decimalToFixed(unscaled: bigint, size: number): Uint8Array {
  const minimal = decimalToMinimalBytes(unscaled);
  const out = new Uint8Array(size).fill(unscaled < 0n ? 0xff : 0);
  out.set(minimal, size - minimal.length);
  return out;
}

function twosComplementToBigint(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  return bytes.length > 0 && (bytes[0] as number) >= 0x80 ? n - (1n << BigInt(8 * bytes.length)) : n;
}

function bytesToUuid(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The Avro value for a value of an Iceberg type, for the schema {@link avroSchemaForPrimitive} gives: a uuid
 * becomes its 16 bytes, a decimal its unscaled value in `decimalRequiredBytes(P)` bytes; other values stay as
 * they are (longs and times as `bigint`, dates as day numbers).
 *
 * @throws InvalidValueError when the value does not have the representation the type needs.
 */
export function primitiveToAvro(type: PrimitiveType, value: PrimitiveValue | null): unknown {
  if (value === null) return null;
  checkValue(type, value);
  switch (type.kind) {
    case 'uuid':
      return uuidToBytes(value as string);
    case 'decimal':
      return decimalToFixed((value as DecimalValue).unscaled, decimalRequiredBytes(type.precision));
    default:
      return value;
  }
}

/**
 * The `values.ts` value of a decoded Avro value, for an Iceberg type. Accepts what Java and pyiceberg write for
 * the type, and an `int` where a `long` is expected (a column promoted from int to long). Bytes are copied.
 *
 * @param mismatch called with a description of the value when it does not fit the type; must throw.
 */
export function primitiveFromAvro(
  type: PrimitiveType,
  value: unknown,
  mismatch: (description: string) => never,
): PrimitiveValue | null {
  if (value === null || value === undefined) return null;
  const bad = (): never => mismatch(describeAvroValue(value));
  switch (type.kind) {
    case 'boolean':
      return typeof value === 'boolean' ? value : bad();
    case 'int':
    case 'date':
      return typeof value === 'number' && Number.isInteger(value) ? value : bad();
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      if (typeof value === 'bigint') return value;
      return typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : bad();
    case 'float':
    case 'double':
      return typeof value === 'number' ? value : bad();
    case 'string':
      return typeof value === 'string' ? value : bad();
    case 'uuid':
      if (typeof value === 'string') return value.toLowerCase();
      return value instanceof Uint8Array && value.length === 16 ? bytesToUuid(value) : bad();
    case 'fixed':
      return value instanceof Uint8Array && value.length === type.length ? new Uint8Array(value) : bad();
    case 'binary':
      return value instanceof Uint8Array ? new Uint8Array(value) : bad();
    case 'decimal':
      return value instanceof Uint8Array ? { unscaled: twosComplementToBigint(value), scale: type.scale } : bad();
  }
}

function describeAvroValue(value: unknown): string {
  if (typeof value === 'bigint') return `the long ${value}`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  return `${typeof value} ${JSON.stringify(value)}`;
}
