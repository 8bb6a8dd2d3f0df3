/**
 * Row-level upsert and delete by primary key, written as **position deletes** plus inserts (merge-on-read), never as
 * equality deletes: pyiceberg cannot read those, and the spec is moving away from them.
 *
 * For each changed key the engine finds the live row's (data file, position) through a key index, writes a
 * position-delete file per partition that lists those rows, writes the new after-images as data files, and commits
 * both in one snapshot. The key index is built from the key columns of the data files in the partitions the keys can
 * live in (with `bucket(pk)` that is one bucket per key), and cached per file: data and delete files never change,
 * so a cached entry is valid for as long as the file exists.
 *
 * Concurrency: the commit validates, against every snapshot committed since the one it read, that the data files it
 * deletes from are still live, that nobody else deleted rows from them, and that no new data file could hold one of
 * its keys. Otherwise it throws `RowLevelConflictError` (retryable: run the upsert again on fresh state). Two
 * writers can therefore never both replace the same row.
 */
import { randomUUID } from 'node:crypto';
import type { FileIO } from '../storage/file-io.js';
import {
  commitNewManifests,
  concurrentFileWrites,
  dataDirectory,
  writeAddedManifest,
  writeDataFiles,
  writeGroupFiles,
} from './append.js';
import { mapConcurrently } from './maintenance/table-files.js';
import type { SqlCatalog } from './catalog/sql-catalog.js';
import type { TableIdentifierInput } from './catalog/identifier.js';
import type { DataFile, PartitionValue } from './data-file.js';
import {
  currentSchema,
  defaultPartitionSpec,
  newSnapshotId,
  type Snapshot,
  type TableMetadata,
} from './metadata-json.js';
import { partitionPath, partitionTupleOf, type PartitionSpec } from './partition-spec.js';
import { murmur3x86_32 } from './transforms.js';
import { readParquetBatches, writePositionDeleteFile, type ColumnValues } from './parquet/index.js';
import { liveEntries, planFiles, readPositionDeleteFile } from './scan.js';
import { noChanges, type SnapshotChanges } from './table-update.js';
import type { NestedField, Schema } from './types.js';
import { IcebergError, RowLevelConflictError } from './errors.js';
import { tupleKey, type PrimitiveValue } from './values.js';
import { decodeBound, compareValues } from './bounds.js';
import { DELETE_FILE_PATH_FIELD_ID } from './parquet/writer.js';

/** What one change row does. */
export type ChangeOp = 'upsert' | 'delete';

/** The change batch is unusable (no primary key, null key, wrong columns). */
export class InvalidChangesError extends IcebergError {
  readonly kind = 'invalid-changes';
  override readonly name = 'InvalidChangesError';
  constructor(
    readonly table: string,
    readonly problem: string,
  ) {
    super(`changes for table "${table}" are invalid: ${problem}`);
  }
}

/**
 * Per-file key positions, reusable across upserts in one process. Data files are immutable, so an entry never goes
 * stale; bound the size with `maxFiles` (least recently used files are dropped).
 */
export class KeyIndexCache {
  private readonly files = new Map<string, Map<KeyId, bigint>>();
  private readonly deletes = new Map<string, Map<string, bigint[]>>();
  constructor(private readonly maxFiles = 10_000) {}

  /** The key → position map of a data file, built by `build` on a miss. */
  async fileKeys(path: string, build: () => Promise<Map<KeyId, bigint>>): Promise<Map<KeyId, bigint>> {
    const hit = this.files.get(path);
    if (hit) {
      this.files.delete(path);
      this.files.set(path, hit);
      return hit;
    }
    const built = await build();
    this.files.set(path, built);
    while (this.files.size > this.maxFiles) this.files.delete(this.files.keys().next().value as string);
    return built;
  }

  /** Records the key positions of a data file this process just wrote, so that no upsert reads it back. */
  seed(path: string, positions: Map<KeyId, bigint>): void {
    this.files.delete(path);
    this.files.set(path, positions);
    while (this.files.size > this.maxFiles) this.files.delete(this.files.keys().next().value as string);
  }

  /**
   * Drops the cached files under `prefix` (one table's data directory) that are not in `live`: a compaction
   * replaced them, so no upsert reads them again, and their key maps (a compacted bucket's is large) would only
   * hold memory until the LRU bound reached them.
   */
  forgetRemoved(prefix: string, live: ReadonlySet<string>): void {
    for (const path of this.files.keys()) if (path.startsWith(prefix) && !live.has(path)) this.files.delete(path);
    for (const path of this.deletes.keys()) if (path.startsWith(prefix) && !live.has(path)) this.deletes.delete(path);
  }

  /** Positions a delete file removes, by data file path. */
  async deleteFilePositions(path: string, build: () => Promise<Map<string, bigint[]>>): Promise<Map<string, bigint[]>> {
    const hit = this.deletes.get(path);
    if (hit) return hit;
    const built = await build();
    this.deletes.set(path, built);
    while (this.deletes.size > this.maxFiles) this.deletes.delete(this.deletes.keys().next().value as string);
    return built;
  }
}

/** Options of {@link upsertRows}. */
export interface UpsertOptions {
  /**
   * Change rows by top-level field id of the current schema. Upserts carry whole after-images; deletes need only the
   * key columns (other values are ignored).
   */
  columns: ReadonlyMap<number, ColumnValues>;
  /** One op per row. Rows apply in order: for each key only the last change counts. */
  ops: readonly ChangeOp[];
  /** Custom snapshot summary properties, e.g. a CDC watermark. */
  snapshotProperties?: Record<string, string>;
  /**
   * Runs against the table's metadata at every commit attempt (after a lost race too), before the row-level conflict
   * check; throw to refuse the commit. A CDC merge uses it to check that its watermark has not moved since it read
   * the table, so two attempts of one batch never both commit.
   */
  validate?: (current: TableMetadata) => void | Promise<void>;
  /** Reuse key positions across calls. @default a cache for this call only */
  keyIndex?: KeyIndexCache;
  /** @default 5 */
  maxCommitAttempts?: number;
  /** Rows per data file at most. @default 1000000 */
  maxRowsPerFile?: number;
}

/** What an upsert did. */
export interface UpsertResult {
  /** Undefined when the batch changed nothing (every change collapsed into a no-op delete of a missing key). */
  snapshotId: bigint | undefined;
  sequenceNumber: bigint | undefined;
  inserted: number;
  updated: number;
  deleted: number;
  /** Deletes of keys that were not in the table. */
  missingDeletes: number;
  dataFiles: DataFile[];
  deleteFiles: DataFile[];
  attempts: number;
}

/** A stable string for a key tuple (see {@link tupleKey}); kept under this name for the CDC activities. */
export const keyString = tupleKey;

function keyFields(schema: Schema, table: string): NestedField[] {
  if (schema.identifierFieldIds.length === 0) {
    throw new InvalidChangesError(
      table,
      'the table has no primary key (identifier-field-ids is empty); set identifier fields first',
    );
  }
  return schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)!);
}

/** Whether the partition of a row is determined by its key alone, so each key lives in exactly one partition. */
function partitionFollowsKey(spec: PartitionSpec, schema: Schema): boolean {
  return spec.fields.every((f) => schema.identifierFieldIds.includes(f.sourceId));
}

function partitionKey(specId: number, values: readonly PartitionValue[]): string {
  return `${specId}|${tupleKey(values)}`;
}

/** Reads the key columns of a data file into key → position. */
async function readFileKeys(io: FileIO, path: string, keys: NestedField[]): Promise<Map<KeyId, bigint>> {
  const out = new Map<KeyId, bigint>();
  let offset = 0n;
  for (const batch of readParquetBatches(await io.read(path), { schema: { fields: keys } })) {
    const columns = keys.map((k) => batch.columns.get(k.id)!);
    const single = columns.length === 1 ? columns[0]! : undefined;
    for (let r = 0; r < batch.rowCount; r++) {
      out.set(single ? singleKeyId(single[r]) : keyString(columns.map((c) => c[r])), offset + BigInt(r));
    }
    offset += BigInt(batch.rowCount);
  }
  return out;
}

/**
 * For a spec that is exactly `bucket[N]` of a long or int column, that column's bucket (spec Appendix B: Murmur3 of
 * the value as an 8-byte little-endian long, `& Integer.MAX_VALUE`, `% N`), hashing through one reused buffer instead
 * of allocating per value; `undefined` for any other spec. Values the transform would refuse go through the bound
 * transform, which throws its usual error.
 */
export function keyBucketer(spec: PartitionSpec, schema: Schema): ((value: PrimitiveValue) => number) | undefined {
  if (spec.fields.length !== 1) return undefined;
  const field = spec.fields[0]!;
  const transform = field.transform;
  if (transform.kind !== 'bucket') return undefined;
  const source = schema.fields.find((f) => f.id === field.sourceId);
  if (!source || (source.type.kind !== 'long' && source.type.kind !== 'int')) return undefined;
  const long = source.type.kind === 'long';
  const generic = partitionTupleOf(spec, schema);
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  const n = transform.numBuckets;
  return (value) => {
    if (long && typeof value === 'bigint' && value >= MIN_LONG && value <= MAX_LONG) {
      view.setBigInt64(0, value, true);
    } else if (!long && typeof value === 'number' && Number.isInteger(value) && value >= MIN_INT && value <= MAX_INT) {
      view.setInt32(0, value, true);
      view.setInt32(4, value < 0 ? -1 : 0, true);
    } else {
      return generic(() => value)[0] as number;
    }
    return (murmur3x86_32(bytes) & 0x7fffffff) % n;
  };
}

const MIN_LONG = -(2n ** 63n);
const MAX_LONG = 2n ** 63n - 1n;
const MIN_INT = -(2 ** 31);
const MAX_INT = 2 ** 31 - 1;

/**
 * A key as a `Map` key: a one-column integer key that a double holds exactly is that number (no string to build and
 * hash per row), any other key its {@link keyString}. A table's key columns have one type, so the two forms never
 * meet for the same key.
 */
export type KeyId = string | number;

/** The {@link KeyId} of a one-column key. */
function singleKeyId(value: unknown): KeyId {
  if (typeof value === 'bigint') {
    return value >= -MAX_EXACT && value <= MAX_EXACT ? Number(value) : `bigint:${value}`;
  }
  if (typeof value === 'number') return Number.isInteger(value) ? value : `number:${value}`;
  return typeof value === 'string' ? `string:${value}` : keyString([value]);
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Key kinds whose values read back from Parquet exactly as the upsert got them (same {@link keyString}), so that
 * a written file's key positions can be seeded into the cache instead of read back.
 */
const SEEDABLE_KEY_KINDS: ReadonlySet<string> = new Set(['int', 'long', 'string']);

/**
 * For a one-column key with ordered bounds, a file's key range as a predicate (`undefined` when the file has no
 * bounds: any key may be in it); `undefined` for other keys. A key outside a file's bounds cannot be in it.
 */
function singleKeyBounds(
  keys: NestedField[],
): ((file: DataFile) => ((value: PrimitiveValue) => boolean) | undefined) | undefined {
  if (keys.length !== 1) return undefined;
  const key = keys[0]!;
  if (key.type.kind === 'string' || key.type.kind === 'binary') return undefined;
  const type = key.type as Parameters<typeof decodeBound>[0];
  return (file) => {
    const lower = file.lowerBounds?.get(key.id);
    const upper = file.upperBounds?.get(key.id);
    if (!lower || !upper) return undefined;
    const lo = decodeBound(type, lower);
    const hi = decodeBound(type, upper);
    return (value) => compareValues(type, value, lo) >= 0 && compareValues(type, value, hi) <= 0;
  };
}

/** Whether a sorted list of positions holds `pos` (binary search). */
function sortedHas(sorted: readonly bigint[], pos: bigint): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = sorted[mid]!;
    if (at === pos) return true;
    if (at < pos) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** A delete file's positions by data file path, each list sorted ascending (for {@link sortedHas}). */
async function readSortedPositionDeletes(io: FileIO, path: string): Promise<Map<string, bigint[]>> {
  const byPath = await readPositionDeleteFile(io, path);
  for (const positions of byPath.values()) positions.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return byPath;
}

/**
 * Writes the upserted rows (indexes into `columns`) as data files, one or more per partition, like
 * `writeDataFiles` but with each row's partition already known (the bucket transform hashed every key once
 * already), and reporting each file's rows to `seed`.
 */
async function writeUpsertedRows(
  io: FileIO,
  metadata: TableMetadata,
  options: {
    columns: ReadonlyMap<number, ColumnValues>;
    rows: readonly number[];
    maxRowsPerFile: number;
    /** The partition key and tuple of a row; `undefined` for an unpartitioned table or one not keyed by its key. */
    partitionOf: ((row: number) => { key: string; partition: PartitionValue[] }) | undefined;
    seed: ((path: string, rows: readonly number[]) => void) | undefined;
  },
): Promise<DataFile[]> {
  const spec = defaultPartitionSpec(metadata);
  const pickAll = (rows: readonly number[]) =>
    new Map([...options.columns].map(([id, values]) => [id, rows.map((r) => values[r])] as const));
  if (spec.fields.length > 0 && !options.partitionOf) {
    return writeDataFiles(io, metadata, {
      columns: pickAll(options.rows),
      rowCount: options.rows.length,
      maxRowsPerFile: options.maxRowsPerFile,
    });
  }
  const groups = new Map<string, { partition: PartitionValue[]; rows: number[] }>();
  for (const r of options.rows) {
    const { key, partition } = options.partitionOf?.(r) ?? { key: '', partition: [] };
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { partition, rows: [] }));
    group.rows.push(r);
  }
  return writeGroupFiles(io, metadata, groups.values(), {
    columnsOf: pickAll,
    maxRowsPerFile: options.maxRowsPerFile,
    ...(options.seed ? { onFile: options.seed } : {}),
  });
}

/** Whether a data file's key bounds could contain any of the keys (single-column keys only; else true). */
function mayContainKeys(file: DataFile, keys: NestedField[], keyValues: readonly PrimitiveValue[][]): boolean {
  if (keys.length !== 1) return true;
  const key = keys[0]!;
  const lower = file.lowerBounds?.get(key.id);
  const upper = file.upperBounds?.get(key.id);
  if (!lower || !upper || key.type.kind === 'string' || key.type.kind === 'binary') return true;
  const type = key.type as Parameters<typeof decodeBound>[0];
  const lo = decodeBound(type, lower);
  const hi = decodeBound(type, upper);
  return keyValues.some(([v]) => compareValues(type, v!, lo) >= 0 && compareValues(type, v!, hi) <= 0);
}

/**
 * Applies a batch of changes by primary key: updates and deletes become position deletes of the live rows, upserts
 * become inserted rows, all in one snapshot (`overwrite`, or `delete` / `append` when only one kind is present).
 */
export async function upsertRows(
  catalog: SqlCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: UpsertOptions,
): Promise<UpsertResult> {
  // A compaction that commits meanwhile (a `replace` snapshot: same rows, other files) removes the files this
  // upsert located its keys in; locating them again in the new files is all it takes, so do that here at once
  // instead of failing the caller's whole batch. Any other conflict goes to the caller.
  for (let attempt = 1; ; attempt++) {
    try {
      return await upsertOnce(catalog, io, table, options);
    } catch (err) {
      if (!rewriteConflicts.has(err as object) || attempt >= REWRITE_CONFLICT_RETRIES) throw err;
    }
  }
}

/** Conflicts caused only by `replace` snapshots (compactions), which {@link upsertRows} retries itself. */
const rewriteConflicts = new WeakSet<object>();
const REWRITE_CONFLICT_RETRIES = 3;

async function upsertOnce(
  catalog: SqlCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: UpsertOptions,
): Promise<UpsertResult> {
  const tableName = typeof table === 'string' ? table : `${[table.namespace].flat().join('.')}.${table.name}`;
  const base = await catalog.loadTable(table);
  const metadata = base.metadata;
  const schema = currentSchema(metadata);
  const spec = defaultPartitionSpec(metadata);
  const keys = keyFields(schema, tableName);
  const cache = options.keyIndex ?? new KeyIndexCache();
  const rowCount = options.ops.length;
  for (const [id, values] of options.columns) {
    if (values.length !== rowCount) {
      throw new InvalidChangesError(
        tableName,
        `column ${id} has ${values.length} values but there are ${rowCount} ops`,
      );
    }
  }

  // 1. Collapse: the last change per key wins. Each row's key id is built once and reused below.
  const keyColumns = keys.map((k) => {
    const column = options.columns.get(k.id);
    if (!column) throw new InvalidChangesError(tableName, `the key column "${k.name}" is missing from the changes`);
    return column;
  });
  const keyIds = new Array<KeyId>(rowCount);
  const last = new Map<KeyId, number>();
  const singleKey = keyColumns.length === 1 ? keyColumns[0]! : undefined;
  for (let r = 0; r < rowCount; r++) {
    let text: KeyId;
    if (singleKey) {
      const v = singleKey[r];
      if (v === null || v === undefined) {
        throw new InvalidChangesError(tableName, `row ${r} has a null key column "${keys[0]!.name}"`);
      }
      text = singleKeyId(v);
    } else {
      const tuple = keyColumns.map((c) => c[r]);
      const nullAt = tuple.findIndex((v) => v === null || v === undefined);
      if (nullAt >= 0) {
        throw new InvalidChangesError(tableName, `row ${r} has a null key column "${keys[nullAt]!.name}"`);
      }
      text = keyString(tuple);
    }
    keyIds[r] = text;
    last.set(text, r);
  }
  const finalRows = Int32Array.from(last.values()).sort();
  let keyValuesMemo: PrimitiveValue[][] | undefined;
  const keyValues = () =>
    (keyValuesMemo ??= Array.from(finalRows, (r) => keyColumns.map((c) => c[r] as PrimitiveValue)));

  // 2. Locate live rows of the changed keys. With `bucket(key)` partitioning a key can only live in its own
  // partition, so each data file is probed only with the keys of its partition (and only those inside its key
  // bounds): probing every file with every key grew with files × keys as the table collected small files.
  const tasks = await planFiles(io, metadata);
  cache.forgetRemoved(
    `${dataDirectory(metadata)}/`,
    new Set(tasks.flatMap((t) => [t.dataFile.filePath, ...t.positionDeletes.map((d) => d.filePath)])),
  );
  const finalList = Array.from(finalRows);
  const byPartition = new Map<string, { key: string; partition: PartitionValue[]; rows: number[] }>();
  const keyedByPartition = spec.fields.length > 0 && partitionFollowsKey(spec, schema);
  // Indexed by row: its partition group (keyed tables), and where its key's live row is.
  const rowGroup = new Array<{ key: string; partition: PartitionValue[]; rows: number[] } | undefined>(rowCount);
  const locatedFile = new Array<DataFile | undefined>(rowCount);
  const locatedPos = new Array<bigint>(rowCount);
  const locatedRows: number[] = [];
  const bucketOf = keyBucketer(spec, schema);
  if (keyedByPartition && bucketOf) {
    // The common CDC layout, `bucket[N](key)`: one hash per row through a reused buffer, one group per bucket.
    const source = options.columns.get(spec.fields[0]!.sourceId)!;
    const groups: ({ key: string; partition: PartitionValue[]; rows: number[] } | undefined)[] = [];
    for (const r of finalList) {
      const bucket = bucketOf(source[r] as PrimitiveValue);
      let group = groups[bucket];
      if (!group) {
        const partition = [bucket];
        const key = partitionKey(spec.specId, partition);
        groups[bucket] = group = { key, partition, rows: [] };
        byPartition.set(key, group);
      }
      group.rows.push(r);
      rowGroup[r] = group;
    }
  } else if (keyedByPartition) {
    const tupleOf = partitionTupleOf(spec, schema);
    let row = 0;
    const sourceValue = (fieldId: number) => (options.columns.get(fieldId)?.[row] as PrimitiveValue | null) ?? null;
    for (const r of finalList) {
      row = r;
      const partition = tupleOf(sourceValue);
      const key = partitionKey(spec.specId, partition);
      let group = byPartition.get(key);
      if (!group) byPartition.set(key, (group = { key, partition, rows: [] }));
      group.rows.push(r);
      rowGroup[r] = group;
    }
  }
  const bounds = singleKeyBounds(keys);
  for (const task of tasks) {
    const file = task.dataFile;
    let probe: readonly number[] = finalList;
    if (keyedByPartition && file.specId === spec.specId) {
      const group = byPartition.get(partitionKey(file.specId, file.partition));
      if (!group) continue;
      probe = group.rows;
    }
    const range = bounds?.(file);
    const inRange = range ? probe.filter((r) => range(singleKey![r] as PrimitiveValue)) : probe;
    if (inRange.length === 0) continue;
    if (task.equalityDeletes.length > 0) {
      throw new InvalidChangesError(
        tableName,
        `data file ${file.filePath} has equality deletes (written by another engine); compact the table before a position-delete upsert`,
      );
    }
    const fileKeys = await cache.fileKeys(file.filePath, () => readFileKeys(io, file.filePath, keys));
    const hitRows: number[] = [];
    const hitPositions: bigint[] = [];
    for (const r of inRange) {
      const pos = fileKeys.get(keyIds[r]!);
      if (pos === undefined) continue;
      hitRows.push(r);
      hitPositions.push(pos);
    }
    if (hitRows.length === 0) continue;
    // Check the few hits against each delete file's sorted positions, rather than building the set of every
    // deleted position of the file (which grew with every batch's delete file).
    const deletedLists: bigint[][] = [];
    for (const d of task.positionDeletes) {
      const byPath = await cache.deleteFilePositions(d.filePath, () => readSortedPositionDeletes(io, d.filePath));
      const list = byPath.get(file.filePath);
      if (list && list.length > 0) deletedLists.push(list);
    }
    hits: for (let i = 0; i < hitRows.length; i++) {
      const pos = hitPositions[i]!;
      for (const list of deletedLists) if (sortedHas(list, pos)) continue hits;
      const r = hitRows[i]!;
      if (locatedFile[r] === undefined) locatedRows.push(r);
      locatedFile[r] = file;
      locatedPos[r] = pos;
    }
  }

  // 3. Write the after-images and the position deletes.
  let inserted = 0;
  let updated = 0;
  let deletedCount = 0;
  let missingDeletes = 0;
  const upsertRowsIdx: number[] = [];
  for (const r of finalList) {
    const found = locatedFile[r] !== undefined;
    if (options.ops[r] === 'upsert') {
      upsertRowsIdx.push(r);
      if (found) updated++;
      else inserted++;
    } else if (found) deletedCount++;
    else missingDeletes++;
  }
  const located = locatedRows.map((r) => ({ file: locatedFile[r]!, pos: locatedPos[r]! }));
  const dataFiles = upsertRowsIdx.length
    ? await writeUpsertedRows(io, metadata, {
        columns: options.columns,
        rows: upsertRowsIdx,
        maxRowsPerFile: options.maxRowsPerFile ?? 1_000_000,
        partitionOf: keyedByPartition
          ? (r) => rowGroup[r]!
          : spec.fields.length === 0
            ? () => ({ key: '', partition: [] })
            : undefined,
        // The new files' key positions are known: the next batch need not read them back.
        seed:
          singleKey && SEEDABLE_KEY_KINDS.has(keys[0]!.type.kind)
            ? (path, rows) => {
                const positions = new Map<KeyId, bigint>();
                rows.forEach((r, i) => positions.set(keyIds[r]!, BigInt(i)));
                cache.seed(path, positions);
              }
            : undefined,
      })
    : [];
  const deleteFiles = await writePositionDeletes(io, metadata, located);
  if (dataFiles.length === 0 && deleteFiles.length === 0) {
    return {
      snapshotId: undefined,
      sequenceNumber: undefined,
      inserted,
      updated,
      deleted: deletedCount,
      missingDeletes,
      dataFiles,
      deleteFiles,
      attempts: 0,
    };
  }

  // 4. Commit, validating against concurrent commits.
  const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
  const manifests = [];
  if (dataFiles.length) manifests.push(await writeAddedManifest(io, metadata, snapshotId, dataFiles, 'data'));
  if (deleteFiles.length) manifests.push(await writeAddedManifest(io, metadata, snapshotId, deleteFiles, 'deletes'));
  const changes: SnapshotChanges = {
    ...noChanges(),
    addedDataFiles: dataFiles.length,
    addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
    addedFilesSize: [...dataFiles, ...deleteFiles].reduce((n, f) => n + f.fileSizeInBytes, 0n),
    addedPositionDeleteFiles: deleteFiles.length,
    addedPositionDeletes: deleteFiles.reduce((n, f) => n + f.recordCount, 0n),
  };
  const targets = new Set(located.map((l) => l.file.filePath));
  const operation = dataFiles.length && deleteFiles.length ? 'overwrite' : deleteFiles.length ? 'delete' : 'append';
  const baseSnapshotId = metadata.currentSnapshotId;
  const { sequenceNumber, attempts } = await commitNewManifests(catalog, io, table, {
    snapshotId,
    manifests,
    operation,
    changes,
    snapshotProperties: options.snapshotProperties,
    maxAttempts: options.maxCommitAttempts,
    validate: async (current) => {
      await options.validate?.(current);
      if (current.currentSnapshotId === baseSnapshotId) return;
      await validateNoConflicts(io, current, baseSnapshotId, targets, keys, keyValues(), tableName);
    },
  });
  return {
    snapshotId,
    sequenceNumber,
    inserted,
    updated,
    deleted: deletedCount,
    missingDeletes,
    dataFiles,
    deleteFiles,
    attempts,
  };
}

/** Writes one position-delete file per partition of the rows' data files. */
async function writePositionDeletes(
  io: FileIO,
  metadata: TableMetadata,
  rows: readonly { file: DataFile; pos: bigint }[],
): Promise<DataFile[]> {
  const groups = new Map<string, { file: DataFile; paths: string[]; positions: bigint[] }>();
  for (const row of rows) {
    const key = partitionKey(row.file.specId, row.file.partition);
    const group = groups.get(key) ?? { file: row.file, paths: [], positions: [] };
    group.paths.push(row.file.filePath);
    group.positions.push(row.pos);
    groups.set(key, group);
  }
  const schema = currentSchema(metadata);
  const writeId = randomUUID();
  const { limit, offload } = concurrentFileWrites(
    groups.size,
    undefined,
    Math.max(0, ...[...groups.values()].map((g) => g.paths.length)),
  );
  return mapConcurrently([...groups.values()], limit, async (group, index): Promise<DataFile> => {
    const written = await writePositionDeleteFile({ filePaths: group.paths, positions: group.positions, offload });
    const spec = metadata.partitionSpecs.find((s) => s.specId === group.file.specId)!;
    const dir = spec.fields.length ? `/${partitionPath(spec, schema, group.file.partition)}` : '';
    const filePath = `${dataDirectory(metadata)}${dir}/${String(index).padStart(5, '0')}-${writeId}-deletes.parquet`;
    await io.write(filePath, written.bytes);
    return {
      content: 'position-deletes',
      filePath,
      fileFormat: 'PARQUET',
      partition: group.file.partition,
      specId: group.file.specId,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      ...(written.referencedDataFile ? { referencedDataFile: written.referencedDataFile } : {}),
    };
  });
}

/** Snapshots committed after `baseId` on the current lineage, oldest first. */
function snapshotsSince(metadata: TableMetadata, baseId: bigint | null): Snapshot[] {
  const byId = new Map(metadata.snapshots.map((s) => [s.snapshotId, s]));
  const out: Snapshot[] = [];
  for (let id = metadata.currentSnapshotId; id !== null && id !== baseId;) {
    const s = byId.get(id);
    if (!s) break;
    out.push(s);
    id = s.parentSnapshotId ?? null;
  }
  return out.reverse();
}

async function validateNoConflicts(
  io: FileIO,
  current: TableMetadata,
  baseId: bigint | null,
  targets: ReadonlySet<string>,
  keys: NestedField[],
  keyValues: readonly PrimitiveValue[][],
  table: string,
): Promise<void> {
  const newer = snapshotsSince(current, baseId);
  if (newer.length === 0) return;
  try {
    await findConflicts(io, current, newer, targets, keys, keyValues, table);
  } catch (err) {
    if (err instanceof RowLevelConflictError && newer.every((s) => s.summary.operation === 'replace')) {
      rewriteConflicts.add(err);
    }
    throw err;
  }
}

async function findConflicts(
  io: FileIO,
  current: TableMetadata,
  newer: readonly Snapshot[],
  targets: ReadonlySet<string>,
  keys: NestedField[],
  keyValues: readonly PrimitiveValue[][],
  table: string,
): Promise<void> {
  const live = new Set<string>();
  const latest = newer.at(-1)!;
  for (const { entries } of await liveEntries(io, current, latest))
    for (const e of entries) live.add(e.dataFile.filePath);
  for (const target of targets) {
    if (!live.has(target))
      throw new RowLevelConflictError(table, `data file ${target} was removed by a concurrent commit`);
  }
  const newerIds = new Set(newer.map((s) => s.snapshotId));
  for (const { entries } of await liveEntries(io, current, latest)) {
    for (const e of entries) {
      if (e.status !== 'added' || e.snapshotId === null || !newerIds.has(e.snapshotId)) continue;
      const f = e.dataFile;
      if (f.content === 'position-deletes') {
        const touches =
          f.referencedDataFile !== undefined
            ? targets.has(f.referencedDataFile)
            : [...targets].some((t) => boundsMayContainPath(f, t));
        if (touches)
          throw new RowLevelConflictError(
            table,
            `a concurrent commit added deletes (${f.filePath}) to the same data files`,
          );
      }
      if (f.content === 'equality-deletes') {
        throw new RowLevelConflictError(table, `a concurrent commit added equality deletes (${f.filePath})`);
      }
      if (f.content === 'data' && mayContainKeys(f, keys, keyValues)) {
        throw new RowLevelConflictError(
          table,
          `a concurrent commit added data file ${f.filePath} that may hold the same keys`,
        );
      }
    }
  }
}

function boundsMayContainPath(file: DataFile, path: string): boolean {
  const lower = file.lowerBounds?.get(DELETE_FILE_PATH_FIELD_ID);
  const upper = file.upperBounds?.get(DELETE_FILE_PATH_FIELD_ID);
  if (!lower || !upper) return true;
  const text = new TextDecoder();
  return text.decode(lower) <= path && path <= text.decode(upper);
}
