import { randomBytes, randomUUID } from 'node:crypto';
import { parse as parseLosslessJson, stringify as stringifyLosslessJson } from 'lossless-json';
import { CorruptMetadataError, InvalidTableConfigError, UnsupportedFormatVersionError } from './errors.js';
import {
  childPath,
  describeJson,
  expectArray,
  expectInt,
  expectLong,
  expectObject,
  expectString,
  expectStringMap,
  getOwn,
  optional,
  required,
  setOwn,
  unknownKeys,
  type Fail,
  type JsonObject,
} from './json-input.js';
import {
  buildPartitionSpec,
  highestPartitionFieldId,
  partitionSpecFromJson,
  partitionSpecToJson,
  unpartitionedSpec,
  type PartitionFieldRequest,
  type PartitionSpec,
} from './partition-spec.js';
import {
  buildSortOrder,
  sortOrderFromJson,
  sortOrderToJson,
  UNSORTED_ORDER,
  type SortFieldRequest,
  type SortOrder,
} from './sort-order.js';
import { transformToString } from './transforms.js';
import { highestFieldId, indexSchema, reassignSchemaIds, schemaFromJson, schemaToJson, type Schema } from './types.js';

/**
 * Table metadata JSON for format v2 (spec "Table Metadata", Appendix C), read and written losslessly: snapshot
 * ids, sequence numbers and millisecond timestamps are 64-bit and are always `bigint`, whatever their size, so
 * that a field's type never depends on its value. Numbers are parsed with lossless-json because Node's
 * `JSON.parse` rounds ids above 2^53.
 *
 * Output follows the key order of Java's `TableMetadataParser`, so a file Java wrote round-trips byte for byte.
 */

/** The spec's snapshot operations. */
export type SnapshotOperation = 'append' | 'replace' | 'overwrite' | 'delete';

const OPERATIONS: ReadonlySet<string> = new Set<SnapshotOperation>(['append', 'replace', 'overwrite', 'delete']);

/** A snapshot summary: `operation` plus string metrics and custom keys, in document order. */
export interface SnapshotSummary {
  readonly operation: SnapshotOperation;
  readonly [key: string]: string;
}

export interface Snapshot {
  readonly snapshotId: bigint;
  /** Omitted for a snapshot with no parent. */
  readonly parentSnapshotId?: bigint;
  /** 0 only for snapshots carried over from a v1 table (Java then omits the field). */
  readonly sequenceNumber: bigint;
  readonly timestampMs: bigint;
  readonly manifestList: string;
  readonly summary: SnapshotSummary;
  readonly schemaId?: number;
  /** Keys this engine does not interpret, with their raw values, written back unchanged. */
  readonly extra?: JsonObject;
}

export interface SnapshotRef {
  readonly snapshotId: bigint;
  readonly type: 'branch' | 'tag';
  readonly minSnapshotsToKeep?: number;
  readonly maxSnapshotAgeMs?: bigint;
  readonly maxRefAgeMs?: bigint;
}

export interface SnapshotLogEntry {
  readonly timestampMs: bigint;
  readonly snapshotId: bigint;
}

export interface MetadataLogEntry {
  readonly timestampMs: bigint;
  readonly metadataFile: string;
}

/** The contents of a v2 `*.metadata.json` file. */
export interface TableMetadata {
  readonly formatVersion: 2;
  readonly tableUuid: string;
  /** The table's base location, a URI such as `s3://bucket/db/table`. */
  readonly location: string;
  readonly lastSequenceNumber: bigint;
  readonly lastUpdatedMs: bigint;
  /** Highest column id ever assigned; new columns get ids above it. */
  readonly lastColumnId: number;
  readonly schemas: readonly Schema[];
  readonly currentSchemaId: number;
  readonly partitionSpecs: readonly PartitionSpec[];
  readonly defaultSpecId: number;
  /** Highest partition field id ever assigned (999 when there has never been one). */
  readonly lastPartitionId: number;
  readonly sortOrders: readonly SortOrder[];
  readonly defaultSortOrderId: number;
  readonly properties: Readonly<Record<string, string>>;
  /** `null` for a table without snapshots (read from an absent field, `null` or Java's `-1`). */
  readonly currentSnapshotId: bigint | null;
  readonly refs: Readonly<Record<string, SnapshotRef>>;
  readonly snapshots: readonly Snapshot[];
  /** Raw `statistics` entries (Puffin files), kept for round trips. */
  readonly statistics: readonly unknown[];
  /** Raw `partition-statistics` entries, kept for round trips. */
  readonly partitionStatistics: readonly unknown[];
  readonly snapshotLog: readonly SnapshotLogEntry[];
  readonly metadataLog: readonly MetadataLogEntry[];
  /** Top-level keys this engine does not interpret, with their raw values, written back unchanged. */
  readonly extra: JsonObject;
}

/** The only format version this engine reads and writes. */
export const FORMAT_VERSION = 2;

/** The `main` branch, which always points at `current-snapshot-id`. */
export const MAIN_BRANCH = 'main';

// Java tolerates this much clock skew between machines when checking that log entries are ordered.
const ONE_MINUTE_MS = 60_000n;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const KNOWN_TOP_LEVEL_KEYS: ReadonlySet<string> = new Set([
  'format-version',
  'table-uuid',
  'location',
  'last-sequence-number',
  'last-updated-ms',
  'last-column-id',
  'current-schema-id',
  'schemas',
  'default-spec-id',
  'partition-specs',
  'last-partition-id',
  'default-sort-order-id',
  'sort-orders',
  'properties',
  'current-snapshot-id',
  'refs',
  'snapshots',
  'statistics',
  'partition-statistics',
  'snapshot-log',
  'metadata-log',
]);

const KNOWN_SNAPSHOT_KEYS: ReadonlySet<string> = new Set([
  'sequence-number',
  'snapshot-id',
  'parent-snapshot-id',
  'timestamp-ms',
  'summary',
  'manifest-list',
  'schema-id',
]);

/**
 * Parses and validates a table metadata file.
 *
 * @param text the file's contents (already decompressed if it was a `.gz.metadata.json`).
 * @param file the file's location, used only in error messages.
 * @throws CorruptMetadataError naming `file` and the offending field, for bad JSON, a missing or mistyped field,
 *   or a broken invariant (unknown current schema/spec/order/snapshot, a snapshot sequence number above
 *   `last-sequence-number`, a ref to a missing snapshot, a `main` branch that disagrees with
 *   `current-snapshot-id`, unordered logs, ids above `last-column-id` or `last-partition-id`…).
 * @throws UnsupportedFormatVersionError when `format-version` is not 2.
 */
export function parseTableMetadata(text: string, file: string): TableMetadata {
  const fail: Fail = (jsonPath, problem) => {
    throw new CorruptMetadataError(file, jsonPath, problem);
  };
  let json: unknown;
  try {
    // Every number stays a LosslessNumber here; the readers convert each by its key, so no id is ever rounded.
    json = parseLosslessJson(text);
  } catch (err) {
    throw new CorruptMetadataError(file, '', `not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const root = expectObject(json, '', fail);
  const formatVersion = required(root, 'format-version', '', fail, expectInt);
  if (formatVersion !== FORMAT_VERSION) throw new UnsupportedFormatVersionError(file, formatVersion);

  const tableUuid = required(root, 'table-uuid', '', fail, expectString);
  if (!UUID_PATTERN.test(tableUuid)) fail('table-uuid', `expected a UUID, got ${JSON.stringify(tableUuid)}`);
  const location = required(root, 'location', '', fail, expectString);
  if (location === '') fail('location', 'the table location is empty');
  const lastSequenceNumber = required(root, 'last-sequence-number', '', fail, expectLong);
  if (lastSequenceNumber < 0n) fail('last-sequence-number', `must not be negative, got ${lastSequenceNumber}`);
  const lastUpdatedMs = required(root, 'last-updated-ms', '', fail, expectLong);
  const lastColumnId = required(root, 'last-column-id', '', fail, expectInt);

  const schemas = nonEmptyList(root, 'schemas', fail, schemaFromJson);
  const currentSchemaId = required(root, 'current-schema-id', '', fail, expectInt);
  checkUniqueIds(schemas, (s) => s.schemaId, 'schemas', 'schema-id', fail);
  if (!schemas.some((s) => s.schemaId === currentSchemaId)) {
    fail('current-schema-id', `schema ${currentSchemaId} is not in schemas`);
  }
  schemas.forEach((schema, i) => {
    const highest = highestFieldId(schema);
    if (highest > lastColumnId) {
      fail(
        'last-column-id',
        `is ${lastColumnId}, but schemas[${i}] uses field id ${highest}; new columns would reuse existing ids`,
      );
    }
  });

  const partitionSpecs = nonEmptyList(root, 'partition-specs', fail, partitionSpecFromJson);
  const defaultSpecId = required(root, 'default-spec-id', '', fail, expectInt);
  checkUniqueIds(partitionSpecs, (s) => s.specId, 'partition-specs', 'spec-id', fail);
  if (!partitionSpecs.some((s) => s.specId === defaultSpecId)) {
    fail('default-spec-id', `spec ${defaultSpecId} is not in partition-specs`);
  }
  const lastPartitionId = required(root, 'last-partition-id', '', fail, expectInt);
  partitionSpecs.forEach((spec, i) => {
    const highest = highestPartitionFieldId(spec);
    if (highest > lastPartitionId) {
      fail(
        'last-partition-id',
        `is ${lastPartitionId}, but partition-specs[${i}] uses field id ${highest}; new partition fields would ` +
          'reuse existing ids',
      );
    }
  });

  const sortOrders = nonEmptyList(root, 'sort-orders', fail, sortOrderFromJson);
  const defaultSortOrderId = required(root, 'default-sort-order-id', '', fail, expectInt);
  checkUniqueIds(sortOrders, (o) => o.orderId, 'sort-orders', 'order-id', fail);
  if (!sortOrders.some((o) => o.orderId === defaultSortOrderId)) {
    fail('default-sort-order-id', `sort order ${defaultSortOrderId} is not in sort-orders`);
  }

  const properties = optional(root, 'properties', '', fail, expectStringMap) ?? {};
  const snapshots = optionalList(root, 'snapshots', fail, snapshotFromJson);
  checkUniqueIds(snapshots, (s) => s.snapshotId, 'snapshots', 'snapshot-id', fail);
  const snapshotIds = new Set(snapshots.map((s) => s.snapshotId));
  snapshots.forEach((snapshot, i) => {
    if (snapshot.sequenceNumber > lastSequenceNumber) {
      fail(
        `snapshots[${i}].sequence-number`,
        `${snapshot.sequenceNumber} is greater than last-sequence-number ${lastSequenceNumber}`,
      );
    }
  });

  let currentSnapshotId = optional(root, 'current-snapshot-id', '', fail, expectLong) ?? null;
  // Java writes -1 for "no current snapshot" in v1/v2 tables (spec Appendix F).
  if (currentSnapshotId === -1n) currentSnapshotId = null;
  if (currentSnapshotId !== null && !snapshotIds.has(currentSnapshotId)) {
    fail('current-snapshot-id', `snapshot ${currentSnapshotId} is not in snapshots`);
  }

  const rawRefs = getOwn(root, 'refs');
  let refs: Record<string, SnapshotRef>;
  if (rawRefs === undefined || rawRefs === null) {
    // The spec: "There is always a main branch reference pointing to the current-snapshot-id even if the refs
    // map is null" — Java materializes it on read, and so do we.
    refs = {};
    if (currentSnapshotId !== null) setOwn(refs, MAIN_BRANCH, { snapshotId: currentSnapshotId, type: 'branch' });
  } else {
    refs = refsFromJson(rawRefs, fail);
  }
  for (const [name, ref] of Object.entries(refs)) {
    if (!snapshotIds.has(ref.snapshotId)) {
      fail(childPath(childPath('refs', name), 'snapshot-id'), `snapshot ${ref.snapshotId} is not in snapshots`);
    }
  }
  const main = Object.prototype.hasOwnProperty.call(refs, MAIN_BRANCH) ? refs[MAIN_BRANCH] : undefined;
  if (main !== undefined && main.type !== 'branch') fail('refs.main.type', 'main must be a branch');
  if (main !== undefined && main.snapshotId !== currentSnapshotId) {
    fail(
      'refs.main.snapshot-id',
      currentSnapshotId === null
        ? `main points at snapshot ${main.snapshotId}, but current-snapshot-id is not set`
        : `main points at snapshot ${main.snapshotId}, but current-snapshot-id is ${currentSnapshotId}`,
    );
  }

  const statistics = optional(root, 'statistics', '', fail, expectArray) ?? [];
  const partitionStatistics = optional(root, 'partition-statistics', '', fail, expectArray) ?? [];

  const snapshotLog = optionalList(root, 'snapshot-log', fail, (value, path): SnapshotLogEntry => {
    const entry = expectObject(value, path, fail);
    return {
      timestampMs: required(entry, 'timestamp-ms', path, fail, expectLong),
      snapshotId: required(entry, 'snapshot-id', path, fail, expectLong),
    };
  });
  checkLogOrder(snapshotLog, 'snapshot-log', lastUpdatedMs, fail);
  const metadataLog = optionalList(root, 'metadata-log', fail, (value, path): MetadataLogEntry => {
    const entry = expectObject(value, path, fail);
    return {
      timestampMs: required(entry, 'timestamp-ms', path, fail, expectLong),
      metadataFile: required(entry, 'metadata-file', path, fail, expectString),
    };
  });
  checkLogOrder(metadataLog, 'metadata-log', lastUpdatedMs, fail);

  return {
    formatVersion: FORMAT_VERSION,
    tableUuid,
    location,
    lastSequenceNumber,
    lastUpdatedMs,
    lastColumnId,
    schemas,
    currentSchemaId,
    partitionSpecs,
    defaultSpecId,
    lastPartitionId,
    sortOrders,
    defaultSortOrderId,
    properties,
    currentSnapshotId,
    refs,
    snapshots,
    statistics,
    partitionStatistics,
    snapshotLog,
    metadataLog,
    extra: unknownKeys(root, KNOWN_TOP_LEVEL_KEYS),
  };
}

function nonEmptyList<T>(
  root: JsonObject,
  key: string,
  fail: Fail,
  read: (value: unknown, path: string, fail: Fail) => T,
): T[] {
  const items = required(root, key, '', fail, expectArray);
  if (items.length === 0) fail(key, 'must list at least one entry');
  return items.map((item, i) => read(item, childPath(key, i), fail));
}

function optionalList<T>(
  root: JsonObject,
  key: string,
  fail: Fail,
  read: (value: unknown, path: string, fail: Fail) => T,
): T[] {
  const items = optional(root, key, '', fail, expectArray) ?? [];
  return items.map((item, i) => read(item, childPath(key, i), fail));
}

function checkUniqueIds<T, K>(items: readonly T[], id: (item: T) => K, key: string, idKey: string, fail: Fail): void {
  const seen = new Set<K>();
  items.forEach((item, i) => {
    const value = id(item);
    if (seen.has(value)) fail(childPath(childPath(key, i), idKey), `${String(value)} is used by an earlier entry`);
    seen.add(value);
  });
}

function checkLogOrder(
  entries: readonly { timestampMs: bigint }[],
  key: string,
  lastUpdatedMs: bigint,
  fail: Fail,
): void {
  entries.forEach((entry, i) => {
    const previous = i > 0 ? entries[i - 1] : undefined;
    if (previous !== undefined && entry.timestampMs - previous.timestampMs < -ONE_MINUTE_MS) {
      fail(childPath(childPath(key, i), 'timestamp-ms'), 'entries must be in time order');
    }
  });
  const last = entries[entries.length - 1];
  if (last !== undefined && lastUpdatedMs - last.timestampMs < -ONE_MINUTE_MS) {
    fail('last-updated-ms', `${lastUpdatedMs} is before the last ${key} entry (${last.timestampMs})`);
  }
}

function snapshotFromJson(value: unknown, path: string, fail: Fail): Snapshot {
  const obj = expectObject(value, path, fail);
  const summaryPath = childPath(path, 'summary');
  const rawSummary = required(obj, 'summary', path, fail, expectStringMap);
  const operation = getOwn(rawSummary, 'operation');
  if (operation === undefined) fail(childPath(summaryPath, 'operation'), 'required field is missing');
  if (typeof operation !== 'string' || !OPERATIONS.has(operation)) {
    fail(
      childPath(summaryPath, 'operation'),
      `expected append, replace, overwrite or delete, got ${describeJson(operation)}`,
    );
  }
  const sequenceNumber = optional(obj, 'sequence-number', path, fail, expectLong) ?? 0n;
  if (sequenceNumber < 0n) fail(childPath(path, 'sequence-number'), `must not be negative, got ${sequenceNumber}`);
  if (getOwn(obj, 'manifest-list') === undefined && getOwn(obj, 'manifests') !== undefined) {
    fail(path, 'embedded "manifests" lists are v1-only; a v2 snapshot needs a manifest-list');
  }
  const snapshot: { -readonly [K in keyof Snapshot]: Snapshot[K] } = {
    snapshotId: required(obj, 'snapshot-id', path, fail, expectLong),
    sequenceNumber,
    timestampMs: required(obj, 'timestamp-ms', path, fail, expectLong),
    manifestList: required(obj, 'manifest-list', path, fail, expectString),
    summary: rawSummary as SnapshotSummary,
  };
  const parent = optional(obj, 'parent-snapshot-id', path, fail, expectLong);
  if (parent !== undefined) snapshot.parentSnapshotId = parent;
  const schemaId = optional(obj, 'schema-id', path, fail, expectInt);
  if (schemaId !== undefined) snapshot.schemaId = schemaId;
  const extra = unknownKeys(obj, KNOWN_SNAPSHOT_KEYS);
  if (Object.keys(extra).length > 0) snapshot.extra = extra;
  return snapshot;
}

function refsFromJson(value: unknown, fail: Fail): Record<string, SnapshotRef> {
  const obj = expectObject(value, 'refs', fail);
  const refs: Record<string, SnapshotRef> = {};
  for (const name of Object.keys(obj)) {
    const path = childPath('refs', name);
    const ref = expectObject(obj[name], path, fail);
    const type = required(ref, 'type', path, fail, expectString);
    if (type !== 'branch' && type !== 'tag') fail(childPath(path, 'type'), `expected "branch" or "tag", got "${type}"`);
    const out: { -readonly [K in keyof SnapshotRef]: SnapshotRef[K] } = {
      snapshotId: required(ref, 'snapshot-id', path, fail, expectLong),
      type,
    };
    const minSnapshotsToKeep = optional(ref, 'min-snapshots-to-keep', path, fail, expectInt);
    if (minSnapshotsToKeep !== undefined) out.minSnapshotsToKeep = minSnapshotsToKeep;
    const maxSnapshotAgeMs = optional(ref, 'max-snapshot-age-ms', path, fail, expectLong);
    if (maxSnapshotAgeMs !== undefined) out.maxSnapshotAgeMs = maxSnapshotAgeMs;
    const maxRefAgeMs = optional(ref, 'max-ref-age-ms', path, fail, expectLong);
    if (maxRefAgeMs !== undefined) out.maxRefAgeMs = maxRefAgeMs;
    setOwn(refs, name, out);
  }
  return refs;
}

/** Options for {@link serializeTableMetadata}. */
export interface SerializeOptions {
  /**
   * Indent with two spaces. Java and pyiceberg write compact JSON.
   * @default false
   */
  readonly pretty?: boolean;
}

/**
 * Writes table metadata as JSON, with Java's key order and conventions: `current-snapshot-id` is `-1` when there
 * is no snapshot (what Java writes for v1/v2, and what every reader accepts), a snapshot's `sequence-number` is
 * omitted when 0, and the summary's `operation` comes first. Keys kept in `extra` are appended unchanged.
 */
export function serializeTableMetadata(metadata: TableMetadata, options: SerializeOptions = {}): string {
  const root: JsonObject = {
    'format-version': metadata.formatVersion,
    'table-uuid': metadata.tableUuid,
    location: metadata.location,
    'last-sequence-number': metadata.lastSequenceNumber,
    'last-updated-ms': metadata.lastUpdatedMs,
    'last-column-id': metadata.lastColumnId,
    'current-schema-id': metadata.currentSchemaId,
    schemas: metadata.schemas.map(schemaToJson),
    'default-spec-id': metadata.defaultSpecId,
    'partition-specs': metadata.partitionSpecs.map(partitionSpecToJson),
    'last-partition-id': metadata.lastPartitionId,
    'default-sort-order-id': metadata.defaultSortOrderId,
    'sort-orders': metadata.sortOrders.map(sortOrderToJson),
    properties: copyMap(metadata.properties),
    'current-snapshot-id': metadata.currentSnapshotId ?? -1n,
    refs: refsToJson(metadata.refs),
    snapshots: metadata.snapshots.map(snapshotToJson),
    statistics: metadata.statistics,
    'partition-statistics': metadata.partitionStatistics,
    'snapshot-log': metadata.snapshotLog.map((e) => ({ 'timestamp-ms': e.timestampMs, 'snapshot-id': e.snapshotId })),
    'metadata-log': metadata.metadataLog.map((e) => ({
      'timestamp-ms': e.timestampMs,
      'metadata-file': e.metadataFile,
    })),
  };
  for (const key of Object.keys(metadata.extra)) {
    if (!KNOWN_TOP_LEVEL_KEYS.has(key)) setOwn(root, key, metadata.extra[key]);
  }
  return stringifyLosslessJson(root, null, options.pretty === true ? 2 : undefined) as string;
}

function copyMap(map: Readonly<Record<string, string>>): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(map)) setOwn(out, key, map[key]);
  return out;
}

function snapshotToJson(snapshot: Snapshot): JsonObject {
  const out: JsonObject = {};
  // Java omits a zero sequence number (snapshots inherited from v1), and writes it first otherwise.
  if (snapshot.sequenceNumber > 0n) out['sequence-number'] = snapshot.sequenceNumber;
  out['snapshot-id'] = snapshot.snapshotId;
  if (snapshot.parentSnapshotId !== undefined) out['parent-snapshot-id'] = snapshot.parentSnapshotId;
  out['timestamp-ms'] = snapshot.timestampMs;
  const summary: JsonObject = { operation: snapshot.summary.operation };
  for (const key of Object.keys(snapshot.summary)) {
    if (key !== 'operation') setOwn(summary, key, snapshot.summary[key]);
  }
  out.summary = summary;
  out['manifest-list'] = snapshot.manifestList;
  if (snapshot.schemaId !== undefined) out['schema-id'] = snapshot.schemaId;
  for (const key of Object.keys(snapshot.extra ?? {})) {
    if (!KNOWN_SNAPSHOT_KEYS.has(key)) setOwn(out, key, snapshot.extra?.[key]);
  }
  return out;
}

function refsToJson(refs: Readonly<Record<string, SnapshotRef>>): JsonObject {
  const out: JsonObject = {};
  for (const name of Object.keys(refs)) {
    const ref = refs[name] as SnapshotRef;
    const json: JsonObject = { 'snapshot-id': ref.snapshotId, type: ref.type };
    if (ref.minSnapshotsToKeep !== undefined) json['min-snapshots-to-keep'] = ref.minSnapshotsToKeep;
    if (ref.maxSnapshotAgeMs !== undefined) json['max-snapshot-age-ms'] = ref.maxSnapshotAgeMs;
    if (ref.maxRefAgeMs !== undefined) json['max-ref-age-ms'] = ref.maxRefAgeMs;
    setOwn(out, name, json);
  }
  return out;
}

// ---- lookups ----------------------------------------------------------------------------------------------------

// Parsed metadata always passes these lookups; they fail only for a hand-built, inconsistent model.
function missing(metadata: TableMetadata, setting: string, what: string): never {
  throw new InvalidTableConfigError(setting, `${what} is not listed in the metadata of table ${metadata.location}`);
}

/** The current schema. */
export function currentSchema(metadata: TableMetadata): Schema {
  return (
    metadata.schemas.find((s) => s.schemaId === metadata.currentSchemaId) ??
    missing(metadata, 'current-schema-id', `schema ${metadata.currentSchemaId}`)
  );
}

/** The default partition spec. */
export function defaultPartitionSpec(metadata: TableMetadata): PartitionSpec {
  return (
    metadata.partitionSpecs.find((s) => s.specId === metadata.defaultSpecId) ??
    missing(metadata, 'default-spec-id', `partition spec ${metadata.defaultSpecId}`)
  );
}

/** The default sort order. */
export function defaultSortOrder(metadata: TableMetadata): SortOrder {
  return (
    metadata.sortOrders.find((o) => o.orderId === metadata.defaultSortOrderId) ??
    missing(metadata, 'default-sort-order-id', `sort order ${metadata.defaultSortOrderId}`)
  );
}

/** The current snapshot, or `undefined` for a table without one. */
export function currentSnapshot(metadata: TableMetadata): Snapshot | undefined {
  if (metadata.currentSnapshotId === null) return undefined;
  return metadata.snapshots.find((s) => s.snapshotId === metadata.currentSnapshotId);
}

// ---- creating tables --------------------------------------------------------------------------------------------

/** Properties Java computes from metadata rather than storing; passing them in is ignored, like Java does. */
const RESERVED_PROPERTIES: ReadonlySet<string> = new Set([
  'format-version',
  'uuid',
  'snapshot-count',
  'current-snapshot-id',
  'current-snapshot-summary',
  'current-snapshot-timestamp-ms',
  'current-schema',
  'default-partition-spec',
  'default-sort-order',
]);

/** Defaults Java writes into every new table; a caller's value wins. */
const NEW_TABLE_DEFAULT_PROPERTIES: Readonly<Record<string, string>> = {
  'write.parquet.compression-codec': 'zstd',
};

const URI_WITH_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Inputs of {@link newTableMetadata}. */
export interface NewTableOptions {
  /** The table schema; its field ids and schema id are replaced by fresh ones. */
  readonly schema: Schema;
  /**
   * How to partition: a spec whose source ids refer to `schema`, or fields by column name.
   * @default unpartitioned
   */
  readonly partitionSpec?: PartitionSpec | readonly PartitionFieldRequest[];
  /**
   * How to sort new data: an order whose source ids refer to `schema`, or fields by column name.
   * @default unsorted
   */
  readonly sortOrder?: SortOrder | readonly SortFieldRequest[];
  /** The table's base location, an absolute URI (`s3://bucket/db/table`, `file:///data/db/table`). */
  readonly location: string;
  /** Table properties. @default {} (plus Java's default `write.parquet.compression-codec=zstd`) */
  readonly properties?: Readonly<Record<string, string>>;
  /** @default a random UUID */
  readonly tableUuid?: string;
  /** Creation time in ms since the epoch. @default now */
  readonly nowMs?: bigint;
}

/**
 * Metadata for a new v2 table, built like Java's `TableMetadata.newTableMetadata`: column ids are reassigned from
 * 1 in Java's order (schema id 0), the partition spec is rebuilt on the new ids with spec id 0 and partition field
 * ids from 1000, and a non-empty sort order gets order id 1. The table has no snapshots.
 *
 * @throws InvalidTableConfigError for a location that is not an absolute URI.
 * @throws UnsupportedFormatVersionError when `properties` ask for a format version other than 2.
 * @throws InvalidSchemaError, InvalidPartitionSpecError or InvalidSortOrderError when those do not fit the schema.
 */
export function newTableMetadata(options: NewTableOptions): TableMetadata {
  const location = options.location.replace(/\/+$/, '');
  if (!URI_WITH_SCHEME.test(location)) {
    throw new InvalidTableConfigError(
      'location',
      `"${options.location}" is not an absolute URI; use e.g. s3://bucket/db/table or file:///data/db/table`,
    );
  }
  const requestedVersion = options.properties?.['format-version'];
  if (requestedVersion !== undefined && requestedVersion !== String(FORMAT_VERSION)) {
    throw new UnsupportedFormatVersionError('(new table)', Number(requestedVersion));
  }
  const { schema, lastColumnId } = reassignSchemaIds(options.schema, 0);
  const inputIndex = indexSchema(options.schema);
  const nameOf = (sourceId: number, what: string): string => {
    const name = inputIndex.get(sourceId)?.fullName;
    if (name === undefined) {
      throw new InvalidTableConfigError(what, `source field id ${sourceId} is not in the given schema`);
    }
    return name;
  };

  const partitionRequests: readonly PartitionFieldRequest[] =
    options.partitionSpec === undefined
      ? []
      : isPartitionSpec(options.partitionSpec)
        ? options.partitionSpec.fields.map((f) => ({
            sourceColumn: nameOf(f.sourceId, 'partition spec'),
            transform: transformToString(f.transform),
            name: f.name,
          }))
        : options.partitionSpec;
  const { spec, lastPartitionId } =
    partitionRequests.length === 0
      ? { spec: unpartitionedSpec(0), lastPartitionId: highestPartitionFieldId(unpartitionedSpec(0)) }
      : buildPartitionSpec({ schema, specId: 0, fields: partitionRequests });

  const sortRequests: readonly SortFieldRequest[] =
    options.sortOrder === undefined
      ? []
      : isSortOrder(options.sortOrder)
        ? options.sortOrder.fields.map((f) => ({
            sourceColumn: nameOf(f.sourceId, 'sort order'),
            transform: f.transform,
            direction: f.direction,
            nullOrder: f.nullOrder,
          }))
        : options.sortOrder;
  const sortOrder = buildSortOrder(schema, sortRequests);

  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...NEW_TABLE_DEFAULT_PROPERTIES, ...options.properties })) {
    if (!RESERVED_PROPERTIES.has(key)) setOwn(properties, key, value);
  }

  const tableUuid = options.tableUuid ?? randomUUID();
  if (!UUID_PATTERN.test(tableUuid)) {
    throw new InvalidTableConfigError('uuid', `expected a UUID, got ${JSON.stringify(tableUuid)}`);
  }
  return {
    formatVersion: FORMAT_VERSION,
    tableUuid: tableUuid.toLowerCase(),
    location,
    lastSequenceNumber: 0n,
    lastUpdatedMs: options.nowMs ?? BigInt(Date.now()),
    lastColumnId,
    schemas: [schema],
    currentSchemaId: schema.schemaId,
    partitionSpecs: [spec],
    defaultSpecId: spec.specId,
    lastPartitionId,
    sortOrders: [sortOrder.fields.length === 0 ? UNSORTED_ORDER : sortOrder],
    defaultSortOrderId: sortOrder.orderId,
    properties,
    currentSnapshotId: null,
    refs: {},
    snapshots: [],
    statistics: [],
    partitionStatistics: [],
    snapshotLog: [],
    metadataLog: [],
    extra: {},
  };
}

function isPartitionSpec(value: PartitionSpec | readonly PartitionFieldRequest[]): value is PartitionSpec {
  return !Array.isArray(value);
}

function isSortOrder(value: SortOrder | readonly SortFieldRequest[]): value is SortOrder {
  return !Array.isArray(value);
}

/**
 * A new snapshot id the way Java makes them (spec Appendix F): a random 63-bit positive long, here from 8 random
 * bytes, retried if it collides with an existing id. Such ids exceed 2^53, which is why every id is a bigint.
 */
export function newSnapshotId(existing: Iterable<bigint> = []): bigint {
  const taken = new Set(existing);
  for (;;) {
    const id = randomBytes(8).readBigUInt64BE() & (2n ** 63n - 1n);
    if (id !== 0n && !taken.has(id)) return id;
  }
}
