import { InvalidSchemaError } from './errors.js';
import {
  childPath,
  describeJson,
  expectArray,
  expectBoolean,
  expectInt,
  expectObject,
  expectString,
  getOwn,
  required,
  type Fail,
  type JsonObject,
} from './json-input.js';

/**
 * The Iceberg v2 type system and schema model, with parsing from and serialization to the spec's JSON form
 * (spec Appendix C). Types are plain immutable objects discriminated by `kind`.
 */

/** Primitive types without parameters, named as in the spec's JSON. */
export type SimplePrimitiveKind =
  | 'boolean'
  | 'int'
  | 'long'
  | 'float'
  | 'double'
  | 'date'
  | 'time'
  | 'timestamp'
  | 'timestamptz'
  | 'string'
  | 'uuid'
  | 'binary';

export interface SimplePrimitiveType {
  readonly kind: SimplePrimitiveKind;
}

/** `decimal(P,S)`: fixed-point with precision P ≤ 38 and scale S. */
export interface DecimalType {
  readonly kind: 'decimal';
  readonly precision: number;
  readonly scale: number;
}

/** `fixed[L]`: a byte array of exactly L bytes. */
export interface FixedType {
  readonly kind: 'fixed';
  readonly length: number;
}

export type PrimitiveType = SimplePrimitiveType | DecimalType | FixedType;

/** A field of a struct (and of a schema, which is a struct). */
export interface NestedField {
  /** Unique across the whole schema; never reused for another column. */
  readonly id: number;
  readonly name: string;
  /** `true` when values can never be null. */
  readonly required: boolean;
  readonly type: IcebergType;
  readonly doc?: string;
  /**
   * The raw JSON `initial-default` (a v3 feature), kept only so that metadata written by others round-trips.
   * Values are not interpreted.
   */
  readonly initialDefault?: unknown;
  /** The raw JSON `write-default` (a v3 feature), kept for round trips. */
  readonly writeDefault?: unknown;
}

export interface StructType {
  readonly kind: 'struct';
  readonly fields: readonly NestedField[];
}

export interface ListType {
  readonly kind: 'list';
  readonly elementId: number;
  readonly elementRequired: boolean;
  readonly element: IcebergType;
}

/** Map keys are always required; only values can be optional. */
export interface MapType {
  readonly kind: 'map';
  readonly keyId: number;
  readonly key: IcebergType;
  readonly valueId: number;
  readonly valueRequired: boolean;
  readonly value: IcebergType;
}

export type NestedType = StructType | ListType | MapType;
export type IcebergType = PrimitiveType | NestedType;

/** A table schema: a struct with an id and, optionally, the fields that identify a row. */
export interface Schema {
  readonly schemaId: number;
  /** Primitive, required fields that together identify a row (the primary key). Empty when none. */
  readonly identifierFieldIds: readonly number[];
  readonly fields: readonly NestedField[];
}

/** Field ids above this are reserved for metadata columns (`_file`, `_pos`, position-delete columns…). */
export const MAX_FIELD_ID = 2147483447;

/** The highest precision a `decimal` may have. */
export const MAX_DECIMAL_PRECISION = 38;

/** Ready-made primitive types and constructors for the parameterized ones. */
export const Types = {
  boolean: { kind: 'boolean' },
  int: { kind: 'int' },
  long: { kind: 'long' },
  float: { kind: 'float' },
  double: { kind: 'double' },
  date: { kind: 'date' },
  time: { kind: 'time' },
  timestamp: { kind: 'timestamp' },
  timestamptz: { kind: 'timestamptz' },
  string: { kind: 'string' },
  uuid: { kind: 'uuid' },
  binary: { kind: 'binary' },
  /** `decimal(P,S)`; throws {@link InvalidSchemaError} when P is not 1..38 or S is negative. */
  decimal(precision: number, scale: number): DecimalType {
    checkDecimal(precision, scale, '', throwSchemaError);
    return { kind: 'decimal', precision, scale };
  },
  /** `fixed[L]`; throws {@link InvalidSchemaError} unless L is a positive integer. */
  fixed(length: number): FixedType {
    checkFixed(length, '', throwSchemaError);
    return { kind: 'fixed', length };
  },
} as const satisfies Record<SimplePrimitiveKind, SimplePrimitiveType> & Record<string, unknown>;

const SIMPLE_KINDS: ReadonlySet<string> = new Set<SimplePrimitiveKind>([
  'boolean',
  'int',
  'long',
  'float',
  'double',
  'date',
  'time',
  'timestamp',
  'timestamptz',
  'string',
  'uuid',
  'binary',
]);

/** Types of format v3 and later; named so that a v2 reader can explain why it refuses them. */
const V3_TYPE_NAMES = /^(unknown|variant|timestamp_ns|timestamptz_ns|geometry|geography)\b/;

// The spec's canonical strings, with optional whitespace around parameters (Appendix C: readers must accept it).
const DECIMAL_PATTERN = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/;
const FIXED_PATTERN = /^fixed\[\s*(\d+)\s*\]$/;

function throwSchemaError(jsonPath: string, problem: string): never {
  throw new InvalidSchemaError(jsonPath, problem);
}

function checkDecimal(precision: number, scale: number, path: string, fail: Fail): void {
  if (!Number.isInteger(precision) || precision < 1 || precision > MAX_DECIMAL_PRECISION) {
    fail(path, `decimal precision must be 1..${MAX_DECIMAL_PRECISION}, got ${precision}`);
  }
  if (!Number.isInteger(scale) || scale < 0) fail(path, `decimal scale must be a non-negative integer, got ${scale}`);
}

function checkFixed(length: number, path: string, fail: Fail): void {
  if (!Number.isSafeInteger(length) || length < 1) fail(path, `fixed length must be a positive integer, got ${length}`);
}

export function isPrimitive(type: IcebergType): type is PrimitiveType {
  return type.kind !== 'struct' && type.kind !== 'list' && type.kind !== 'map';
}

/**
 * The type's string form. Primitives use the JSON form (`long`, `fixed[16]`, `decimal(10, 2)`), nested types a
 * readable form (`list<string>`, `map<string, long>`, `struct<id: long, name: string>`) for messages.
 */
export function typeToString(type: IcebergType): string {
  switch (type.kind) {
    case 'decimal':
      // Java and pyiceberg write a space after the comma; all readers accept both forms (see docs).
      return `decimal(${type.precision}, ${type.scale})`;
    case 'fixed':
      return `fixed[${type.length}]`;
    case 'struct':
      return `struct<${type.fields.map((f) => `${f.name}: ${typeToString(f.type)}`).join(', ')}>`;
    case 'list':
      return `list<${typeToString(type.element)}>`;
    case 'map':
      return `map<${typeToString(type.key)}, ${typeToString(type.value)}>`;
    default:
      return type.kind;
  }
}

/** Whether two types are the same, ignoring nothing (field ids, names, docs and optionality all count). */
export function typesEqual(a: IcebergType, b: IcebergType): boolean {
  return JSON.stringify(typeToJson(a)) === JSON.stringify(typeToJson(b));
}

/** Parses a primitive type string such as `long`, `decimal(9,2)` or `fixed[16]` (case-insensitive, like Java). */
export function parsePrimitiveType(text: string, jsonPath = ''): PrimitiveType {
  return primitiveFromString(text, jsonPath, throwSchemaError);
}

function primitiveFromString(text: string, path: string, fail: Fail): PrimitiveType {
  const lower = text.trim().toLowerCase();
  if (SIMPLE_KINDS.has(lower)) return { kind: lower as SimplePrimitiveKind };
  const decimal = DECIMAL_PATTERN.exec(lower);
  if (decimal) {
    const precision = Number(decimal[1]);
    const scale = Number(decimal[2]);
    checkDecimal(precision, scale, path, fail);
    return { kind: 'decimal', precision, scale };
  }
  const fixed = FIXED_PATTERN.exec(lower);
  if (fixed) {
    const length = Number(fixed[1]);
    checkFixed(length, path, fail);
    return { kind: 'fixed', length };
  }
  if (V3_TYPE_NAMES.test(lower)) {
    fail(path, `type "${text}" needs table format v3 or later; this engine supports format v2 types only`);
  }
  return fail(path, `unknown type "${text}"`);
}

/** Parses a type from its spec JSON: a string for primitives, an object for struct/list/map. */
export function parseType(json: unknown, jsonPath = ''): IcebergType {
  return typeFromJson(json, jsonPath, throwSchemaError);
}

function typeFromJson(json: unknown, path: string, fail: Fail): IcebergType {
  if (typeof json === 'string') return primitiveFromString(json, path, fail);
  const obj = expectObject(json, path, fail);
  const kind = getOwn(obj, 'type');
  switch (kind) {
    case 'struct':
      return { kind: 'struct', fields: fieldsFromJson(obj, path, fail) };
    case 'list':
      return {
        kind: 'list',
        elementId: required(obj, 'element-id', path, fail, expectInt),
        elementRequired: required(obj, 'element-required', path, fail, expectBoolean),
        element: required(obj, 'element', path, fail, typeFromJson),
      };
    case 'map':
      return {
        kind: 'map',
        keyId: required(obj, 'key-id', path, fail, expectInt),
        key: required(obj, 'key', path, fail, typeFromJson),
        valueId: required(obj, 'value-id', path, fail, expectInt),
        valueRequired: required(obj, 'value-required', path, fail, expectBoolean),
        value: required(obj, 'value', path, fail, typeFromJson),
      };
    default:
      return fail(childPath(path, 'type'), `expected "struct", "list" or "map", got ${describeJson(kind)}`);
  }
}

function fieldsFromJson(obj: JsonObject, path: string, fail: Fail): NestedField[] {
  const fieldsPath = childPath(path, 'fields');
  const raw = getOwn(obj, 'fields');
  if (raw === undefined) fail(fieldsPath, 'required field is missing');
  return expectArray(raw, fieldsPath, fail).map((item, i) => fieldFromJson(item, childPath(fieldsPath, i), fail));
}

function fieldFromJson(json: unknown, path: string, fail: Fail): NestedField {
  const obj = expectObject(json, path, fail);
  const field: {
    -readonly [K in keyof NestedField]: NestedField[K];
  } = {
    id: required(obj, 'id', path, fail, expectInt),
    name: required(obj, 'name', path, fail, expectString),
    required: required(obj, 'required', path, fail, expectBoolean),
    type: required(obj, 'type', path, fail, typeFromJson),
  };
  const doc = getOwn(obj, 'doc');
  if (doc !== undefined && doc !== null) field.doc = expectString(doc, childPath(path, 'doc'), fail);
  const initialDefault = getOwn(obj, 'initial-default');
  if (initialDefault !== undefined) field.initialDefault = initialDefault;
  const writeDefault = getOwn(obj, 'write-default');
  if (writeDefault !== undefined) field.writeDefault = writeDefault;
  return field;
}

/**
 * Serializes a type to its spec JSON, with keys in the order Java's `SchemaParser` writes them, so that
 * metadata written by Java round-trips byte for byte.
 */
export function typeToJson(type: IcebergType): unknown {
  switch (type.kind) {
    case 'struct':
      return { type: 'struct', fields: type.fields.map(fieldToJson) };
    case 'list':
      return {
        type: 'list',
        'element-id': type.elementId,
        element: typeToJson(type.element),
        'element-required': type.elementRequired,
      };
    case 'map':
      return {
        type: 'map',
        'key-id': type.keyId,
        key: typeToJson(type.key),
        'value-id': type.valueId,
        value: typeToJson(type.value),
        'value-required': type.valueRequired,
      };
    default:
      return typeToString(type);
  }
}

function fieldToJson(field: NestedField): JsonObject {
  const out: JsonObject = { id: field.id, name: field.name, required: field.required, type: typeToJson(field.type) };
  if (field.doc !== undefined) out.doc = field.doc;
  if (field.initialDefault !== undefined) out['initial-default'] = field.initialDefault;
  if (field.writeDefault !== undefined) out['write-default'] = field.writeDefault;
  return out;
}

/**
 * Parses a schema from its spec JSON (`{"type":"struct","schema-id":0,"identifier-field-ids":[…],"fields":[…]}`)
 * and validates it (see {@link validateSchema}).
 *
 * @param jsonPath where the schema sits in a larger document, for error messages (e.g. `schemas[1]`).
 * @throws InvalidSchemaError naming the offending field.
 */
export function parseSchema(json: unknown, jsonPath = ''): Schema {
  return schemaFromJson(json, jsonPath, throwSchemaError);
}

/** {@link parseSchema} with a caller-supplied error factory, for embedding in metadata parsing. */
export function schemaFromJson(json: unknown, path: string, fail: Fail): Schema {
  const obj = expectObject(json, path, fail);
  const type = getOwn(obj, 'type');
  if (type !== undefined && type !== 'struct') {
    fail(childPath(path, 'type'), `a schema must be a struct, got ${describeJson(type)}`);
  }
  const idsPath = childPath(path, 'identifier-field-ids');
  const rawIds = getOwn(obj, 'identifier-field-ids');
  const schema: Schema = {
    schemaId: required(obj, 'schema-id', path, fail, expectInt),
    identifierFieldIds:
      rawIds === undefined || rawIds === null
        ? []
        : expectArray(rawIds, idsPath, fail).map((v, i) => expectInt(v, childPath(idsPath, i), fail)),
    fields: fieldsFromJson(obj, path, fail),
  };
  checkSchema(schema, path, fail);
  return schema;
}

/** Serializes a schema to its spec JSON (Java's key order; `identifier-field-ids` only when non-empty). */
export function schemaToJson(schema: Schema): JsonObject {
  const out: JsonObject = { type: 'struct', 'schema-id': schema.schemaId };
  if (schema.identifierFieldIds.length > 0) out['identifier-field-ids'] = [...schema.identifierFieldIds];
  out.fields = schema.fields.map(fieldToJson);
  return out;
}

/** What {@link indexSchema} knows about each field id. */
export interface FieldInfo {
  readonly id: number;
  /** Full dotted name, with `element`, `key` and `value` for list and map children (Java's convention). */
  readonly fullName: string;
  readonly type: IcebergType;
  readonly required: boolean;
  /** The struct field, or `undefined` for list elements and map keys/values. */
  readonly field?: NestedField;
  /** Whether the field sits inside a list or a map (then it cannot be a partition source or identifier). */
  readonly inListOrMap: boolean;
  /** Whether some enclosing struct is optional (then the field can be null even when required). */
  readonly underOptionalStruct: boolean;
  /** The id of the enclosing field, or `undefined` for top-level columns. */
  readonly parentId?: number;
  /** JSON path of the field's definition, for error messages. */
  readonly jsonPath: string;
}

/**
 * Indexes every field of a schema (struct fields, list elements, map keys and values) by id.
 *
 * @throws InvalidSchemaError on a duplicate id, since an index by id would then be ambiguous.
 */
export function indexSchema(schema: Pick<Schema, 'fields'>): Map<number, FieldInfo> {
  return buildIndex(schema.fields, '', throwSchemaError);
}

function buildIndex(fields: readonly NestedField[], path: string, fail: Fail): Map<number, FieldInfo> {
  const index = new Map<number, FieldInfo>();
  const add = (info: FieldInfo): void => {
    const existing = index.get(info.id);
    if (existing) {
      fail(info.jsonPath, `field id ${info.id} of "${info.fullName}" is already used by "${existing.fullName}"`);
    }
    index.set(info.id, info);
  };
  const visit = (
    type: IcebergType,
    prefix: string,
    typePath: string,
    inListOrMap: boolean,
    underOptional: boolean,
    parentId: number | undefined,
  ): void => {
    const join = (name: string): string => (prefix === '' ? name : `${prefix}.${name}`);
    if (type.kind === 'struct') {
      type.fields.forEach((field, i) => {
        const fieldPath = childPath(childPath(typePath, 'fields'), i);
        const fullName = join(field.name);
        add({
          id: field.id,
          fullName,
          type: field.type,
          required: field.required,
          field,
          inListOrMap,
          underOptionalStruct: underOptional,
          parentId,
          jsonPath: fieldPath,
        });
        const childOptional = underOptional || (!field.required && field.type.kind === 'struct');
        visit(field.type, fullName, childPath(fieldPath, 'type'), inListOrMap, childOptional, field.id);
      });
    } else if (type.kind === 'list') {
      const fullName = join('element');
      const elementPath = childPath(typePath, 'element');
      add({
        id: type.elementId,
        fullName,
        type: type.element,
        required: type.elementRequired,
        inListOrMap: true,
        underOptionalStruct: underOptional,
        parentId,
        jsonPath: childPath(typePath, 'element-id'),
      });
      visit(type.element, fullName, elementPath, true, underOptional, type.elementId);
    } else if (type.kind === 'map') {
      const keyName = join('key');
      const valueName = join('value');
      add({
        id: type.keyId,
        fullName: keyName,
        type: type.key,
        required: true,
        inListOrMap: true,
        underOptionalStruct: underOptional,
        parentId,
        jsonPath: childPath(typePath, 'key-id'),
      });
      add({
        id: type.valueId,
        fullName: valueName,
        type: type.value,
        required: type.valueRequired,
        inListOrMap: true,
        underOptionalStruct: underOptional,
        parentId,
        jsonPath: childPath(typePath, 'value-id'),
      });
      visit(type.key, keyName, childPath(typePath, 'key'), true, underOptional, type.keyId);
      visit(type.value, valueName, childPath(typePath, 'value'), true, underOptional, type.valueId);
    }
  };
  visit({ kind: 'struct', fields }, '', path, false, false, undefined);
  return index;
}

/** The field with this id anywhere in the schema, or `undefined`. */
export function findFieldById(schema: Pick<Schema, 'fields'>, id: number): FieldInfo | undefined {
  return indexSchema(schema).get(id);
}

/**
 * The field with this full dotted name (e.g. `address.city`, `tags.element`, `attrs.value`), or `undefined`.
 * Matching is case-sensitive, like Java's default.
 */
export function findFieldByName(schema: Pick<Schema, 'fields'>, fullName: string): FieldInfo | undefined {
  for (const info of indexSchema(schema).values()) {
    if (info.fullName === fullName) return info;
  }
  return undefined;
}

/** The highest field id used anywhere in the schema, or 0 for an empty schema. */
export function highestFieldId(schema: Pick<Schema, 'fields'>): number {
  let max = 0;
  for (const id of indexSchema(schema).keys()) max = Math.max(max, id);
  return max;
}

/**
 * Checks the spec's rules for a schema: ids unique and within range, names non-empty and unique per struct, and
 * identifier fields that exist and are primitive, required, not float/double, not inside a list or map and not
 * under an optional struct.
 *
 * @throws InvalidSchemaError naming the offending field.
 */
export function validateSchema(schema: Schema, jsonPath = ''): void {
  checkSchema(schema, jsonPath, throwSchemaError);
}

function checkSchema(schema: Schema, path: string, fail: Fail): void {
  checkNames({ kind: 'struct', fields: schema.fields }, path, fail);
  const index = buildIndex(schema.fields, path, fail);
  for (const info of index.values()) {
    if (info.id < 0 || info.id > MAX_FIELD_ID) {
      fail(info.jsonPath, `field id ${info.id} of "${info.fullName}" must be in 0..${MAX_FIELD_ID}`);
    }
  }
  const idsPath = childPath(path, 'identifier-field-ids');
  const seen = new Set<number>();
  schema.identifierFieldIds.forEach((id, i) => {
    const at = childPath(idsPath, i);
    if (seen.has(id)) fail(at, `identifier field id ${id} is listed twice`);
    seen.add(id);
    const info = index.get(id);
    if (!info) return fail(at, `identifier field id ${id} is not a field of the schema`);
    const why = identifierProblem(info);
    if (why !== undefined) fail(at, `"${info.fullName}" (id ${id}) cannot be an identifier field: ${why}`);
  });
}

/** Why a field cannot be part of `identifier-field-ids`, or `undefined` when it can. */
export function identifierProblem(info: FieldInfo): string | undefined {
  if (!isPrimitive(info.type)) return `it is a ${info.type.kind}, and identifier fields must be primitive`;
  if (info.type.kind === 'float' || info.type.kind === 'double') {
    return 'float and double columns cannot identify rows (NaN and -0.0 make equality unreliable)';
  }
  if (!info.required) return 'it is optional, and identifier fields must be required';
  if (info.inListOrMap) return 'it is nested in a list or map';
  if (info.underOptionalStruct) return 'it is nested in an optional struct, so it can be null';
  return undefined;
}

function checkNames(type: IcebergType, path: string, fail: Fail): void {
  if (type.kind === 'struct') {
    const names = new Set<string>();
    type.fields.forEach((field, i) => {
      const fieldPath = childPath(childPath(path, 'fields'), i);
      if (field.name === '') fail(childPath(fieldPath, 'name'), 'field names must not be empty');
      if (names.has(field.name)) {
        fail(childPath(fieldPath, 'name'), `field name "${field.name}" appears twice in the same struct`);
      }
      names.add(field.name);
      checkNames(field.type, childPath(fieldPath, 'type'), fail);
    });
  } else if (type.kind === 'list') {
    checkNames(type.element, childPath(path, 'element'), fail);
  } else if (type.kind === 'map') {
    checkNames(type.key, childPath(path, 'key'), fail);
    checkNames(type.value, childPath(path, 'value'), fail);
  }
}

/**
 * Gives every field of `type` a new id from `nextId`, in the order Java's `TypeUtil.assignFreshIds` uses: all
 * fields of a struct first, then each field's children; a list's element id, then its type; a map's key id and
 * value id, then their types. Following the same order makes ids match what Java would assign.
 */
export function assignFreshIds<T extends IcebergType>(type: T, nextId: () => number): T {
  switch (type.kind) {
    case 'struct': {
      const ids = type.fields.map(() => nextId());
      const fields = type.fields.map((field, i) => ({
        ...field,
        id: ids[i] as number,
        type: assignFreshIds(field.type, nextId),
      }));
      return { kind: 'struct', fields } as StructType as T;
    }
    case 'list': {
      const elementId = nextId();
      return { ...type, elementId, element: assignFreshIds(type.element, nextId) } as ListType as T;
    }
    case 'map': {
      const keyId = nextId();
      const valueId = nextId();
      return {
        ...type,
        keyId,
        valueId,
        key: assignFreshIds(type.key, nextId),
        value: assignFreshIds(type.value, nextId),
      } as MapType as T;
    }
    default:
      return type;
  }
}

/**
 * A copy of `schema` with fresh ids from 1 (and the given schema id), identifier fields remapped by name. This is
 * what the spec requires when creating a table, so that ids supplied by a user never leak into a new table.
 *
 * @returns the new schema and the highest id assigned (the table's `last-column-id`).
 */
export function reassignSchemaIds(schema: Schema, schemaId = 0): { schema: Schema; lastColumnId: number } {
  let last = 0;
  const struct = assignFreshIds({ kind: 'struct', fields: schema.fields }, () => ++last);
  const oldIndex = indexSchema(schema);
  const fresh: Schema = { schemaId, identifierFieldIds: [], fields: struct.fields };
  const newIndex = indexSchema(fresh);
  const byName = new Map([...newIndex.values()].map((info) => [info.fullName, info.id]));
  const identifierFieldIds = schema.identifierFieldIds.map((id) => {
    const name = oldIndex.get(id)?.fullName;
    const newId = name === undefined ? undefined : byName.get(name);
    if (newId === undefined) throw new InvalidSchemaError('identifier-field-ids', `field id ${id} does not exist`);
    return newId;
  });
  return { schema: { ...fresh, identifierFieldIds }, lastColumnId: last };
}
