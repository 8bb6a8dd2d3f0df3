import { InvalidPartitionSpecError, InvalidTransformError } from './errors.js';
import {
  childPath,
  expectArray,
  expectInt,
  expectObject,
  expectString,
  required,
  type Fail,
  type JsonObject,
} from './json-input.js';
import {
  bindTransform,
  parseTransform,
  transformOfFieldJson,
  transformedValueToHumanString,
  transformProblem,
  transformResultType,
  transformToString,
  transformsEqual,
  type Transform,
} from './transforms.js';
import {
  findFieldByName,
  indexSchema,
  isPrimitive,
  type FieldInfo,
  type PrimitiveType,
  type Schema,
  type StructType,
} from './types.js';
import type { PrimitiveValue } from './values.js';

/**
 * Partition specs (spec "Partitioning", Appendix C "Partition Specs"). In v2 every partition field has its own
 * `field-id`, starting at 1000; the table's `last-partition-id` tracks the highest one ever assigned, so that a
 * dropped partition field's id is never given to a different field.
 */

export interface PartitionField {
  /** The schema field the value comes from. */
  readonly sourceId: number;
  /** The partition field's own id (≥ 1000), used as the field id of the partition tuple in manifests. */
  readonly fieldId: number;
  readonly name: string;
  readonly transform: Transform;
}

export interface PartitionSpec {
  readonly specId: number;
  readonly fields: readonly PartitionField[];
}

/** The first partition field id; the spec's reference implementation has always started here. */
export const PARTITION_FIELD_ID_START = 1000;

/** `last-partition-id` of a table that has never had a partition field. */
export const UNPARTITIONED_LAST_PARTITION_ID = PARTITION_FIELD_ID_START - 1;

/** The spec with no fields. */
export function unpartitionedSpec(specId = 0): PartitionSpec {
  return { specId, fields: [] };
}

function throwSpecError(jsonPath: string, problem: string): never {
  throw new InvalidPartitionSpecError(jsonPath, problem);
}

/**
 * Parses a partition spec from its JSON object form (`{"spec-id":0,"fields":[…]}`). Only the JSON shape and the
 * rules that need no schema are checked (unique names and field ids); use {@link validatePartitionSpec} against
 * the schema before writing with a spec.
 *
 * @throws InvalidPartitionSpecError naming the offending field.
 */
export function parsePartitionSpec(json: unknown, jsonPath = ''): PartitionSpec {
  return partitionSpecFromJson(json, jsonPath, throwSpecError);
}

/** {@link parsePartitionSpec} with a caller-supplied error factory, for embedding in metadata parsing. */
export function partitionSpecFromJson(json: unknown, path: string, fail: Fail): PartitionSpec {
  const obj = expectObject(json, path, fail);
  const specId = required(obj, 'spec-id', path, fail, expectInt);
  const fieldsPath = childPath(path, 'fields');
  const fields = required(obj, 'fields', path, fail, expectArray).map((item, i) => {
    const fieldPath = childPath(fieldsPath, i);
    const field = expectObject(item, fieldPath, fail);
    const transform = transformOfFieldJson(field, fieldPath, fail);
    return {
      sourceId: required(field, 'source-id', fieldPath, fail, expectInt),
      fieldId: required(field, 'field-id', fieldPath, fail, expectInt),
      name: required(field, 'name', fieldPath, fail, expectString),
      transform,
    };
  });
  checkNamesAndIds(fields, fieldsPath, fail);
  return { specId, fields };
}

function checkNamesAndIds(fields: readonly PartitionField[], fieldsPath: string, fail: Fail): void {
  const names = new Set<string>();
  const ids = new Set<number>();
  fields.forEach((field, i) => {
    const at = childPath(fieldsPath, i);
    if (field.name === '') fail(childPath(at, 'name'), 'partition field names must not be empty');
    if (names.has(field.name)) fail(childPath(at, 'name'), `partition field name "${field.name}" is used twice`);
    if (ids.has(field.fieldId)) fail(childPath(at, 'field-id'), `partition field id ${field.fieldId} is used twice`);
    names.add(field.name);
    ids.add(field.fieldId);
  });
}

/** The spec's JSON object form, with field keys in the order Java writes them. */
export function partitionSpecToJson(spec: PartitionSpec): JsonObject {
  return {
    'spec-id': spec.specId,
    fields: spec.fields.map((field) => ({
      name: field.name,
      transform: transformToString(field.transform),
      'source-id': field.sourceId,
      'field-id': field.fieldId,
    })),
  };
}

/** The highest partition field id in the spec, or {@link UNPARTITIONED_LAST_PARTITION_ID} when it has none. */
export function highestPartitionFieldId(spec: PartitionSpec): number {
  return spec.fields.reduce((max, field) => Math.max(max, field.fieldId), UNPARTITIONED_LAST_PARTITION_ID);
}

/**
 * Checks the rules that need the schema, as Java's `PartitionSpec.Builder` does: each source exists, is primitive
 * and not inside a list or map, the transform applies to its type, no two fields are redundant (same source and
 * transform, or two time transforms of one source), and a partition name equal to a schema column name is used
 * only by an identity partition of that very column.
 *
 * @throws InvalidPartitionSpecError naming the offending partition field.
 */
export function validatePartitionSpec(spec: PartitionSpec, schema: Schema, jsonPath = ''): void {
  const fail = throwSpecError;
  const index = indexSchema(schema);
  const columnIdsByName = new Map([...index.values()].map((info) => [info.fullName, info.id]));
  const fieldsPath = childPath(jsonPath, 'fields');
  checkNamesAndIds(spec.fields, fieldsPath, fail);
  const dedup = new Map<string, string>();
  spec.fields.forEach((field, i) => {
    const at = childPath(fieldsPath, i);
    const source = index.get(field.sourceId);
    if (!source) return fail(childPath(at, 'source-id'), `source field id ${field.sourceId} is not in the schema`);
    const sourceProblem = partitionSourceProblem(source);
    if (sourceProblem !== undefined) fail(childPath(at, 'source-id'), sourceProblem);
    const problem = transformProblem(field.transform, source.type);
    if (problem !== undefined) fail(childPath(at, 'transform'), `column "${source.fullName}": ${problem}`);
    // Java dedups time transforms under one name: day(ts) and hour(ts) would partition the same way twice.
    const family = ['year', 'month', 'day', 'hour'].includes(field.transform.kind)
      ? 'time'
      : transformToString(field.transform);
    const key = `${field.sourceId}/${family}`;
    const earlier = dedup.get(key);
    if (earlier !== undefined) {
      fail(at, `partition field "${field.name}" is redundant with "${earlier}" (same source and transform family)`);
    }
    dedup.set(key, field.name);
    const sameNameColumn = columnIdsByName.get(field.name);
    if (sameNameColumn !== undefined && !(field.transform.kind === 'identity' && sameNameColumn === field.sourceId)) {
      fail(
        childPath(at, 'name'),
        `partition name "${field.name}" is also a schema column; only an identity partition of that column may ` +
          'use it — pick another name',
      );
    }
  });
}

function partitionSourceProblem(source: FieldInfo): string | undefined {
  if (!isPrimitive(source.type)) return `column "${source.fullName}" is a ${source.type.kind}; partition by primitives`;
  if (source.inListOrMap) return `column "${source.fullName}" is inside a list or map and cannot be partitioned by`;
  return undefined;
}

/** One partition field to create, by source column name. */
export interface PartitionFieldRequest {
  /** Full dotted name of the source column, e.g. `id` or `address.city`. */
  readonly sourceColumn: string;
  /** The transform, as an object or in its string form (`bucket[16]`). */
  readonly transform: Transform | string;
  /**
   * The partition field's name.
   * @default Java's builder names: the column for identity, else `<column>_bucket`, `_trunc`, `_year`, `_month`,
   *   `_day`, `_hour` or `_null` (void), with the column's dots kept.
   */
  readonly name?: string;
}

/** The name Java's `PartitionSpec.Builder` gives a partition field when none is given. */
export function defaultPartitionFieldName(sourceColumn: string, transform: Transform): string {
  switch (transform.kind) {
    case 'identity':
      return sourceColumn;
    case 'bucket':
      return `${sourceColumn}_bucket`;
    case 'truncate':
      return `${sourceColumn}_trunc`;
    case 'void':
      return `${sourceColumn}_null`;
    case 'unknown':
      return `${sourceColumn}_${transform.name}`;
    default:
      return `${sourceColumn}_${transform.kind}`;
  }
}

/**
 * Builds a partition spec for `schema` with v2 field-id rules: a field equal to one in `existingSpecs` (same
 * source and transform, and same name when a name is given) reuses that field's id, as the spec requires;
 * every other field gets the next id after `lastPartitionId`.
 *
 * @returns the validated spec and the new `last-partition-id`.
 * @throws InvalidPartitionSpecError for an unknown column or a field that breaks {@link validatePartitionSpec}.
 */
export function buildPartitionSpec(args: {
  readonly schema: Schema;
  readonly specId: number;
  readonly fields: readonly PartitionFieldRequest[];
  /** @default {@link UNPARTITIONED_LAST_PARTITION_ID} (a new table) */
  readonly lastPartitionId?: number;
  /** Every spec the table has had, for id reuse. @default [] */
  readonly existingSpecs?: readonly PartitionSpec[];
}): { spec: PartitionSpec; lastPartitionId: number } {
  let lastPartitionId = args.lastPartitionId ?? UNPARTITIONED_LAST_PARTITION_ID;
  const history = (args.existingSpecs ?? []).flatMap((spec) => spec.fields);
  const fields = args.fields.map((request, i): PartitionField => {
    const at = `fields[${i}]`;
    const source = findFieldByName(args.schema, request.sourceColumn);
    if (!source) {
      return throwSpecError(
        at,
        `column "${request.sourceColumn}" is not in schema ${args.schema.schemaId}; use its full dotted name`,
      );
    }
    let transform: Transform;
    try {
      transform = typeof request.transform === 'string' ? parseTransform(request.transform) : request.transform;
    } catch (err) {
      if (err instanceof InvalidTransformError) return throwSpecError(childPath(at, 'transform'), err.problem);
      throw err;
    }
    const name = request.name ?? defaultPartitionFieldName(source.fullName, transform);
    const reused = history.find(
      (old) =>
        old.sourceId === source.id &&
        transformsEqual(old.transform, transform) &&
        (request.name === undefined || old.name === name),
    );
    return {
      sourceId: source.id,
      fieldId: reused?.fieldId ?? ++lastPartitionId,
      name: reused && request.name === undefined ? reused.name : name,
      transform,
    };
  });
  const spec: PartitionSpec = { specId: args.specId, fields };
  validatePartitionSpec(spec, args.schema);
  return { spec, lastPartitionId };
}

/**
 * Whether two specs partition the same way: same number of fields and, field by field, the same source,
 * transform and name (field ids ignored). The spec forbids adding a spec equivalent to an existing one.
 */
export function specsEquivalent(a: PartitionSpec, b: PartitionSpec): boolean {
  return (
    a.fields.length === b.fields.length &&
    a.fields.every((field, i) => {
      const other = b.fields[i];
      return (
        other !== undefined &&
        field.sourceId === other.sourceId &&
        field.name === other.name &&
        transformsEqual(field.transform, other.transform)
      );
    })
  );
}

function sourceOf(
  spec: PartitionSpec,
  field: PartitionField,
  index: Map<number, FieldInfo>,
): { name: string; type: PrimitiveType } {
  const source = index.get(field.sourceId);
  if (!source || !isPrimitive(source.type)) {
    return throwSpecError(
      `fields[${spec.fields.indexOf(field)}].source-id`,
      `source field id ${field.sourceId} of partition field "${field.name}" is not a primitive column of the schema`,
    );
  }
  return { name: source.fullName, type: source.type };
}

/**
 * The partition tuple's struct type: one optional field per partition field, with the partition field id and the
 * transform's result type. This is the `partition` struct of manifest entries.
 */
export function partitionType(spec: PartitionSpec, schema: Schema): StructType {
  const index = indexSchema(schema);
  return {
    kind: 'struct',
    fields: spec.fields.map((field) => {
      const source = sourceOf(spec, field, index);
      return {
        id: field.fieldId,
        name: field.name,
        required: false,
        type: transformResultType(field.transform, source.type),
      };
    }),
  };
}

/**
 * Binds a spec's transforms once and returns a function that computes a row's partition tuple. Use it for many
 * rows: indexing the schema and binding transforms per row dominated partitioned writes.
 *
 * @returns a function from `sourceValue` (a row's value of a source column, by field id; `null` for null) to one
 *   value per partition field, in spec order.
 */
export function partitionTupleOf(
  spec: PartitionSpec,
  schema: Schema,
): (sourceValue: (fieldId: number) => PrimitiveValue | null) => (PrimitiveValue | null)[] {
  const index = indexSchema(schema);
  const fields = spec.fields.map((field) => {
    const source = sourceOf(spec, field, index);
    return { sourceId: field.sourceId, apply: bindTransform(field.transform, source.type, source.name) };
  });
  return (sourceValue) => fields.map((f) => f.apply(sourceValue(f.sourceId)));
}

/**
 * Computes one row's partition tuple. For many rows, bind once with {@link partitionTupleOf}.
 *
 * @param sourceValue returns the row's value of a source column, by field id (`null` for null).
 * @returns one value per partition field, in spec order.
 */
export function partitionValues(
  spec: PartitionSpec,
  schema: Schema,
  sourceValue: (fieldId: number) => PrimitiveValue | null,
): (PrimitiveValue | null)[] {
  return partitionTupleOf(spec, schema)(sourceValue);
}

/**
 * Java's URL encoding of a path segment (`URLEncoder.encode(s, UTF_8)`): letters, digits and `.-*_` stay, a space
 * becomes `+`, every other byte of the UTF-8 form becomes `%XX`. pyiceberg's `quote_plus(s, safe="")` differs only
 * for `~` (kept) and `*` (escaped).
 */
export function escapePathSegment(text: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9.\-*_]/.test(c)) out += c;
    else if (byte === 0x20) out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The Hive-style partition directory Java writes data files under (`PartitionSpec.partitionToPath`), e.g.
 * `id_bucket=3/ts_day=2017-11-16`. Names and values are URL-encoded; `null` values print as `null`.
 *
 * @param values the partition tuple, one transformed value per spec field (see {@link partitionValues}).
 */
export function partitionPath(spec: PartitionSpec, schema: Schema, values: readonly (PrimitiveValue | null)[]): string {
  if (values.length !== spec.fields.length) {
    throwSpecError(
      '',
      `partition tuple has ${values.length} values but spec ${spec.specId} has ${spec.fields.length} fields`,
    );
  }
  const index = indexSchema(schema);
  return spec.fields
    .map((field, i) => {
      const source = sourceOf(spec, field, index);
      const human = transformedValueToHumanString(field.transform, source.type, values[i] ?? null);
      return `${escapePathSegment(field.name)}=${escapePathSegment(human)}`;
    })
    .join('/');
}
