import avro from 'avsc';

/**
 * Raw Avro schemas as JSON values, and the bridge to avsc `Type`s with exact 64-bit longs.
 *
 * Iceberg stores its ids in custom schema attributes (`field-id`, `element-id`, `logicalType: "map"`…). avsc
 * ignores attributes it does not know when it builds a `Type`, and `Type.schema()` does not give them back, so the
 * raw JSON is the source of truth: we write it verbatim into the file header, and readers find fields by
 * `field-id` in it, never by position.
 */

/** An Avro schema in its JSON form: a type name (primitive or named type), a union, or a schema object. */
export type AvroSchema = string | AvroSchemaObject | readonly AvroSchema[];

/** A schema object: `{"type": …}` plus any attributes, Iceberg's `field-id`/`element-id` among them. */
export interface AvroSchemaObject {
  readonly type: AvroSchema;
  readonly [attribute: string]: unknown;
}

/** A field of a record schema. */
export interface AvroField {
  readonly name: string;
  readonly type: AvroSchema;
  readonly [attribute: string]: unknown;
}

/** A record schema. */
export interface AvroRecordSchema extends AvroSchemaObject {
  readonly type: 'record';
  readonly name: string;
  readonly fields: readonly AvroField[];
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const LONG_SCRATCH = Buffer.alloc(8);

/**
 * avsc's own `long` throws beyond 2^53, but snapshot ids are random 63-bit values, so every `long` is a `bigint`
 * instead. `LongType.__with` is avsc's documented hook for custom longs: it hands us the value as 8 little-endian
 * two's-complement bytes, after undoing the zig-zag varint.
 */
const BIGINT_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer): bigint => buf.readBigInt64LE(0),
  // avsc packs the returned bytes before it asks for the next long, so one scratch buffer serves every write.
  toBuffer: (value: bigint): Buffer => {
    LONG_SCRATCH.writeBigInt64LE(value, 0);
    return LONG_SCRATCH;
  },
  // Only used by avsc for schema defaults and `toString`; longs never appear in Iceberg defaults.
  fromJSON: (json: unknown): bigint => BigInt(json as number | string),
  toJSON: (value: bigint): string => value.toString(),
  isValid: (value: unknown): boolean => typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX,
  compare: (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0),
});

function isSchemaObject(schema: unknown): schema is AvroSchemaObject {
  return typeof schema === 'object' && schema !== null && !Array.isArray(schema);
}

/**
 * The avsc `Type` for a raw schema, with every `long` (also `{"type":"long","logicalType":…}`) read and written
 * as `bigint`. Logical types are left to the caller (avsc would otherwise turn dates into `Date`s and lose
 * microseconds); `bytes` and `fixed` values are `Buffer`s; records are plain objects keyed by field name; a
 * `["null", X]` union is the value or `null`.
 *
 * @throws Error from avsc when the schema is not valid Avro.
 */
export function avroTypeForSchema(schema: AvroSchema): avro.Type {
  // Building an avsc type costs far more than the JSON key (about 5 ms for a manifest schema): every manifest of a
  // table shares a few schemas, so scans and commits that read many manifests reuse them. Types are immutable.
  let key: string;
  try {
    key = JSON.stringify(schema);
  } catch {
    return buildAvroType(schema); // e.g. a bigint default value: not worth a key
  }
  const hit = typeCache.get(key);
  if (hit !== undefined) return hit;
  const type = buildAvroType(schema);
  typeCache.set(key, type);
  if (typeCache.size > TYPE_CACHE_SIZE) typeCache.delete(typeCache.keys().next().value as string);
  return type;
}

const TYPE_CACHE_SIZE = 64;
const typeCache = new Map<string, avro.Type>();

function buildAvroType(schema: AvroSchema): avro.Type {
  return avro.Type.forSchema(schema as avro.Schema, {
    // The registry alone is not enough: avsc resolves `{"type":"long",…}` objects without consulting it.
    typeHook: (candidate: unknown) =>
      candidate === 'long' || (isSchemaObject(candidate) && candidate.type === 'long') ? BIGINT_LONG : undefined,
  });
}

/**
 * Every named type (record, fixed, enum) defined in a schema, by full name, so that a walker can follow a
 * reference such as `"decimal_9_2"` back to its definition. Java reuses named types that way whenever one type
 * occurs twice.
 */
export function namedTypes(schema: AvroSchema): Map<string, AvroSchemaObject> {
  const names = new Map<string, AvroSchemaObject>();
  const visit = (node: AvroSchema, namespace: string | undefined): void => {
    if (Array.isArray(node)) {
      for (const branch of node as readonly AvroSchema[]) visit(branch, namespace);
      return;
    }
    if (!isSchemaObject(node)) return;
    let ns = namespace;
    if (typeof node.name === 'string' && ['record', 'error', 'fixed', 'enum'].includes(node.type as string)) {
      if (typeof node.namespace === 'string') ns = node.namespace === '' ? undefined : node.namespace;
      const fullName = node.name.includes('.') || ns === undefined ? node.name : `${ns}.${node.name}`;
      names.set(fullName, node);
      if (node.name.includes('.')) ns = node.name.slice(0, node.name.lastIndexOf('.'));
    }
    if (Array.isArray(node.fields)) {
      for (const field of node.fields as AvroField[]) visit(field.type, ns);
    }
    if (node.items !== undefined) visit(node.items as AvroSchema, ns);
    if (node.values !== undefined) visit(node.values as AvroSchema, ns);
    if (typeof node.type !== 'string') visit(node.type, ns);
  };
  visit(schema, undefined);
  return names;
}

/**
 * Follows named-type references and `{"type": {...}}` wrappers until a schema object or primitive name remains.
 * Unknown names are returned as they are.
 */
export function resolveSchema(schema: AvroSchema, names: ReadonlyMap<string, AvroSchemaObject>): AvroSchema {
  let node = schema;
  for (;;) {
    if (typeof node === 'string') {
      const named = names.get(node) ?? [...names.entries()].find(([full]) => full.endsWith(`.${node}`))?.[1];
      if (named === undefined) return node;
      node = named;
    } else if (isSchemaObject(node) && typeof node.type !== 'string') {
      node = node.type;
    } else {
      return node;
    }
  }
}

/** For `["null", X]` (either order), X and `true`; otherwise the schema itself and `false`. */
export function unwrapOptional(schema: AvroSchema): { schema: AvroSchema; optional: boolean } {
  if (!Array.isArray(schema)) return { schema, optional: false };
  const branches = schema as readonly AvroSchema[];
  const nonNull = branches.filter((branch) => branch !== 'null');
  if (nonNull.length === 1 && branches.length === 2) return { schema: nonNull[0] as AvroSchema, optional: true };
  return { schema, optional: false };
}

/** Whether a value is a record schema object. */
export function isRecordSchema(schema: AvroSchema): schema is AvroRecordSchema {
  return isSchemaObject(schema) && schema.type === 'record' && Array.isArray(schema.fields);
}

/** The attribute `name` of a schema object, or `undefined` for names, unions and missing attributes. */
export function schemaAttribute(schema: AvroSchema, name: string): unknown {
  return isSchemaObject(schema) ? schema[name] : undefined;
}
