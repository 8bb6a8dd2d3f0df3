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
import { commitNewManifests, dataDirectory, writeAddedManifest, writeDataFiles } from './append.js';
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
import { readParquetBatches, writePositionDeleteFile, type ColumnValues } from './parquet/index.js';
import { liveEntries, planFiles, readPositionDeleteFile, type FileScanTask } from './scan.js';
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
  private readonly files = new Map<string, Map<string, bigint>>();
  private readonly deletes = new Map<string, Map<string, bigint[]>>();
  constructor(private readonly maxFiles = 10_000) {}

  /** The key → position map of a data file, built by `build` on a miss. */
  async fileKeys(path: string, build: () => Promise<Map<string, bigint>>): Promise<Map<string, bigint>> {
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
async function readFileKeys(io: FileIO, path: string, keys: NestedField[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  let offset = 0n;
  for (const batch of readParquetBatches(await io.read(path), { schema: { fields: keys } })) {
    const columns = keys.map((k) => batch.columns.get(k.id)!);
    for (let r = 0; r < batch.rowCount; r++) out.set(keyString(columns.map((c) => c[r])), offset + BigInt(r));
    offset += BigInt(batch.rowCount);
  }
  return out;
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

  // 1. Collapse: the last change per key wins.
  const keyColumns = keys.map((k) => {
    const column = options.columns.get(k.id);
    if (!column) throw new InvalidChangesError(tableName, `the key column "${k.name}" is missing from the changes`);
    return column;
  });
  const last = new Map<string, number>();
  for (let r = 0; r < rowCount; r++) {
    const tuple = keyColumns.map((c) => c[r]);
    const nullAt = tuple.findIndex((v) => v === null || v === undefined);
    if (nullAt >= 0) throw new InvalidChangesError(tableName, `row ${r} has a null key column "${keys[nullAt]!.name}"`);
    last.set(keyString(tuple), r);
  }
  const finalRows = [...last.values()].sort((a, b) => a - b);
  const changedKeys = new Set(last.keys());
  const keyValues = finalRows.map((r) => keyColumns.map((c) => c[r] as PrimitiveValue));

  // 2. Locate live rows of the changed keys.
  const tasks = await planFiles(io, metadata);
  let candidates: FileScanTask[] = tasks;
  if (spec.fields.length > 0 && partitionFollowsKey(spec, schema)) {
    const tupleOf = partitionTupleOf(spec, schema);
    const wanted = new Set(
      finalRows.map((r) =>
        partitionKey(
          spec.specId,
          tupleOf((fieldId) => (options.columns.get(fieldId)?.[r] as PrimitiveValue | null) ?? null),
        ),
      ),
    );
    candidates = tasks.filter(
      (t) => t.dataFile.specId !== spec.specId || wanted.has(partitionKey(t.dataFile.specId, t.dataFile.partition)),
    );
  }
  candidates = candidates.filter((t) => mayContainKeys(t.dataFile, keys, keyValues));
  const located = new Map<string, { file: DataFile; pos: bigint }>();
  for (const task of candidates) {
    const fileKeys = await cache.fileKeys(task.dataFile.filePath, () => readFileKeys(io, task.dataFile.filePath, keys));
    const deleted = new Set<bigint>();
    for (const d of task.positionDeletes) {
      const byPath = await cache.deleteFilePositions(d.filePath, () => readPositionDeleteFile(io, d.filePath));
      for (const p of byPath.get(task.dataFile.filePath) ?? []) deleted.add(p);
    }
    if (task.equalityDeletes.length > 0) {
      throw new InvalidChangesError(
        tableName,
        `data file ${task.dataFile.filePath} has equality deletes (written by another engine); compact the table before a position-delete upsert`,
      );
    }
    for (const key of changedKeys) {
      const pos = fileKeys.get(key);
      if (pos !== undefined && !deleted.has(pos)) located.set(key, { file: task.dataFile, pos });
    }
  }

  // 3. Write the after-images and the position deletes.
  const upsertRowsIdx = finalRows.filter((r) => options.ops[r] === 'upsert');
  let inserted = 0;
  let updated = 0;
  let deletedCount = 0;
  let missingDeletes = 0;
  for (const r of finalRows) {
    const found = located.has(keyString(keyColumns.map((c) => c[r])));
    if (options.ops[r] === 'upsert') {
      if (found) updated++;
      else inserted++;
    } else if (found) deletedCount++;
    else missingDeletes++;
  }
  const dataFiles = upsertRowsIdx.length
    ? await writeDataFiles(io, metadata, {
        columns: new Map(
          [...options.columns].map(([id, values]) => [id, upsertRowsIdx.map((r) => values[r])] as const),
        ),
        rowCount: upsertRowsIdx.length,
        maxRowsPerFile: options.maxRowsPerFile,
      })
    : [];
  const deleteFiles = await writePositionDeletes(io, metadata, [...located.values()]);
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
  const targets = new Set([...located.values()].map((l) => l.file.filePath));
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
      await validateNoConflicts(io, current, baseSnapshotId, targets, keys, keyValues, tableName);
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
  const out: DataFile[] = [];
  const writeId = randomUUID();
  let index = 0;
  for (const group of groups.values()) {
    const written = await writePositionDeleteFile({ filePaths: group.paths, positions: group.positions });
    const spec = metadata.partitionSpecs.find((s) => s.specId === group.file.specId)!;
    const dir = spec.fields.length ? `/${partitionPath(spec, schema, group.file.partition)}` : '';
    const filePath = `${dataDirectory(metadata)}${dir}/${String(index++).padStart(5, '0')}-${writeId}-deletes.parquet`;
    await io.write(filePath, written.bytes);
    out.push({
      content: 'position-deletes',
      filePath,
      fileFormat: 'PARQUET',
      partition: group.file.partition,
      specId: group.file.specId,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      ...(written.referencedDataFile ? { referencedDataFile: written.referencedDataFile } : {}),
    });
  }
  return out;
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
