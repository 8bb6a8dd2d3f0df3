import {
  isRecordSchema,
  resolveSchema,
  schemaAttribute,
  unwrapOptional,
  type AvroRecordSchema,
  type AvroSchema,
  type AvroSchemaObject,
} from './schema.js';

/**
 * Finding fields by Iceberg field id in a writer's Avro schema. Readers must not rely on names or positions:
 * Java, pyiceberg and older writers agree on field ids, and a file may carry fields that we do not know.
 */

/** A field of a record, resolved for reading. */
export interface FieldById {
  /** The Avro field name: the property of decoded records that holds the value. */
  readonly name: string;
  /** The field's schema, named references followed and a `["null", X]` union unwrapped to X. */
  readonly schema: AvroSchema;
  readonly optional: boolean;
}

/** The fields of a record schema that carry a `field-id`, by id. */
export function fieldsById(
  record: AvroRecordSchema,
  names: ReadonlyMap<string, AvroSchemaObject>,
): Map<number, FieldById> {
  const out = new Map<number, FieldById>();
  for (const field of record.fields) {
    const id = field['field-id'];
    if (typeof id !== 'number') continue;
    const { schema, optional } = unwrapOptional(resolveSchema(field.type, names));
    out.set(id, { name: field.name, schema: resolveSchema(schema, names), optional });
  }
  return out;
}

/** The record schema a field holds directly, or as the items of an array (lists and map-arrays); else undefined. */
export function nestedRecord(
  field: FieldById | undefined,
  names: ReadonlyMap<string, AvroSchemaObject>,
): AvroRecordSchema | undefined {
  if (field === undefined) return undefined;
  if (isRecordSchema(field.schema)) return field.schema;
  const items = schemaAttribute(field.schema, 'items') as AvroSchema | undefined;
  if (items === undefined) return undefined;
  const item = resolveSchema(unwrapOptional(resolveSchema(items, names)).schema, names);
  return isRecordSchema(item) ? item : undefined;
}

/** Reads a decoded record's value by field id; `undefined` when the writer's schema has no such field. */
export function valueById(record: unknown, fields: ReadonlyMap<number, FieldById>, id: number): unknown {
  const field = fields.get(id);
  return field === undefined ? undefined : (record as Record<string, unknown>)[field.name];
}

/** A copy of decoded bytes, so that a value kept by the caller does not pin a whole decompressed block. */
export function copyBytes(value: unknown): Uint8Array | null {
  return value instanceof Uint8Array ? new Uint8Array(value) : null;
}

/** A decoded `long` (or an `int` the writer used instead) as a bigint; null for null or a missing field. */
export function optionalLong(value: unknown): bigint | null {
  if (typeof value === 'bigint') return value;
  return typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : null;
}

/** A decoded `int` as a number; null for null or a missing field. */
export function optionalInt(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

/**
 * An integer header value (`format-version`, `partition-spec-id`…) as a bigint; `undefined` when the key is absent
 * or holds the string `"null"`, which is how Java and pyiceberg write a missing `parent-snapshot-id`.
 *
 * @param corrupt called with a problem description when the value is not an integer.
 */
export function headerLong(
  metadata: Readonly<Record<string, string>>,
  key: string,
  corrupt: (problem: string) => never,
): bigint | undefined {
  const text = metadata[key];
  if (text === undefined || text === 'null') return undefined;
  if (!/^-?\d+$/.test(text)) corrupt(`header "${key}" is ${JSON.stringify(text)}, not an integer`);
  return BigInt(text);
}

/** {@link headerLong} for values that fit an int. */
export function headerInt(
  metadata: Readonly<Record<string, string>>,
  key: string,
  corrupt: (problem: string) => never,
): number | undefined {
  const value = headerLong(metadata, key, corrupt);
  if (value !== undefined && (value < -(2n ** 31n) || value >= 2n ** 31n)) {
    corrupt(`header "${key}" is ${value}, which does not fit an int`);
  }
  return value === undefined ? undefined : Number(value);
}
