import {
  Binary,
  Bool,
  DateDay,
  Decimal,
  Field,
  FixedSizeBinary,
  Float32,
  Float64,
  Int32,
  Int64,
  List,
  Map_,
  Struct,
  TimeMicrosecond,
  Timestamp,
  TimeUnit,
  Utf8,
  type DataType,
} from 'apache-arrow';
import type { IcebergType, NestedField } from '../types.js';

/**
 * The Arrow form of an Iceberg schema, which parquet-wasm (arrow-rs) turns into the Parquet schema of the spec's
 * "Parquet" section: field ids from the `PARQUET:field_id` metadata, REQUIRED for non-nullable fields, and these
 * physical/logical types:
 *
 * | Iceberg | Arrow | Parquet |
 * |---|---|---|
 * | boolean | Bool | BOOLEAN |
 * | int | Int32 | INT32 |
 * | long | Int64 | INT64 |
 * | float, double | Float32, Float64 | FLOAT, DOUBLE |
 * | decimal(P,S) | Decimal128(P,S) | INT32 (P ≤ 9), INT64 (P ≤ 18), else FIXED_LEN_BYTE_ARRAY; DECIMAL(P,S) |
 * | date | Date32 | INT32 DATE |
 * | time | Time64(µs) | INT64 TIME(MICROS, isAdjustedToUTC=false) |
 * | timestamp, timestamptz | Timestamp(µs), Timestamp(µs, "UTC") | INT64 TIMESTAMP(MICROS, isAdjustedToUTC=false/true) |
 * | string | Utf8 | BYTE_ARRAY STRING |
 * | uuid | FixedSizeBinary(16) | FIXED_LEN_BYTE_ARRAY(16); the UUID annotation is added to the footer afterwards |
 * | fixed[L], binary | FixedSizeBinary(L), Binary | FIXED_LEN_BYTE_ARRAY(L), BYTE_ARRAY |
 * | list, map, struct | List, Map, Struct | 3-level LIST and MAP groups, groups |
 */

/** The Arrow field metadata key arrow-rs reads Parquet field ids from (and writes them to when reading). */
export const PARQUET_FIELD_ID_KEY = 'PARQUET:field_id';

function fieldIdMetadata(id: number): Map<string, string> {
  return new Map([[PARQUET_FIELD_ID_KEY, String(id)]]);
}

/** The Arrow field for an Iceberg struct field. */
export function arrowField(field: NestedField): Field {
  return new Field(field.name, arrowType(field.type), !field.required, fieldIdMetadata(field.id));
}

/** The Arrow type for an Iceberg type, with field ids on every nested field. */
export function arrowType(type: IcebergType): DataType {
  switch (type.kind) {
    case 'boolean':
      return new Bool();
    case 'int':
      return new Int32();
    case 'long':
      return new Int64();
    case 'float':
      return new Float32();
    case 'double':
      return new Float64();
    case 'date':
      return new DateDay();
    case 'time':
      return new TimeMicrosecond();
    case 'timestamp':
      return new Timestamp(TimeUnit.MICROSECOND);
    case 'timestamptz':
      return new Timestamp(TimeUnit.MICROSECOND, 'UTC');
    case 'string':
      return new Utf8();
    case 'uuid':
      return new FixedSizeBinary(16);
    case 'fixed':
      return new FixedSizeBinary(type.length);
    case 'binary':
      return new Binary();
    case 'decimal':
      return new Decimal(type.scale, type.precision, 128);
    case 'struct':
      return new Struct(type.fields.map(arrowField));
    case 'list':
      return new List(
        new Field('element', arrowType(type.element), !type.elementRequired, fieldIdMetadata(type.elementId)),
      );
    case 'map': {
      const map = new Map_(
        new Field(
          'key_value',
          new Struct<{ key: DataType; value: DataType }>([
            new Field('key', arrowType(type.key), false, fieldIdMetadata(type.keyId)),
            new Field('value', arrowType(type.value), !type.valueRequired, fieldIdMetadata(type.valueId)),
          ]),
          false,
        ),
        false,
      );
      // Arrow JS renames the entries field to "entries"; the spec (and pyiceberg's path-to-id mapping, which
      // add_files relies on) names the repeated group "key_value", and arrow-rs takes the Parquet name from here.
      (map.children[0] as { name: string }).name = 'key_value';
      return map;
    }
  }
}
