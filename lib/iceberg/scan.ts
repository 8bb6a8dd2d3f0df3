/**
 * Scan planning and reading. Planning walks a snapshot's manifest list and manifests to the live data files and
 * attaches the delete files that apply to each (spec "Scan Planning"): a position delete applies to data files with
 * a data sequence number ≤ its own, an equality delete to data files with a data sequence number < its own.
 *
 * With a filter, planning skips manifests whose partition summaries cannot match and data files whose partition
 * tuple or column metrics cannot match (see `expressions.ts`); reading then tests every remaining row, so the
 * result is exact. Reading streams each data file one row group at a time and drops deleted rows.
 *
 * Incremental scans ({@link planIncrementalAppends}) read the rows appended between two snapshots.
 */
import type { FileIO } from '../storage/file-io.js';
import { tupleKey } from './values.js';
import type { DataFile, ManifestEntry } from './data-file.js';
import { IcebergError, InvalidTableConfigError } from './errors.js';
import {
  bind,
  fieldPath,
  manifestMightMatch,
  metricsMightMatch,
  partitionMightMatch,
  projectInclusive,
  referencedFieldIds,
  rowPredicate,
  type BoundExpression,
  type Expression,
} from './expressions.js';
import { inheritManifestMetadata, readManifest } from './manifest.js';
import { readManifestList, type ManifestFile } from './manifest-list.js';
import { currentSchema, type Snapshot, type SnapshotOperation, type TableMetadata } from './metadata-json.js';
import { partitionType } from './partition-spec.js';
import { DELETE_FILE_PATH_FIELD_ID, DELETE_POS_FIELD_ID, POSITION_DELETE_SCHEMA } from './parquet/writer.js';
import {
  readParquetBatches,
  readParquetFile,
  readPositionDeletePositions,
  type ParquetColumnBatch,
} from './parquet/reader.js';
import { indexSchema, type IcebergType, type NestedField, type Schema } from './types.js';

/** Which snapshot to read. */
export interface SnapshotSelector {
  /** A snapshot id. @default the current snapshot */
  snapshotId?: bigint;
  /** The snapshot that was current at this time (ms since the epoch): time travel. */
  asOfTimestampMs?: bigint;
}

/** Row filter options shared by planning and reading. */
export interface FilterOptions {
  /**
   * Only rows matching this filter (see `expressions.ts`), bound to the table's current schema. Planning prunes
   * manifests and files with it; reading applies it to every row.
   * @default every row
   */
  filter?: Expression;
  /** Match the filter's (and the projection's) column names exactly. @default true */
  caseSensitive?: boolean;
}

/** Options of {@link planFiles}. */
export interface ScanOptions extends SnapshotSelector, FilterOptions {}

/** Options of {@link scanTable}. */
export interface TableScanOptions extends ScanOptions {
  /**
   * The columns to return, by name (dotted for struct fields: `address.city` returns `address` with only `city`).
   * See {@link projectSchema}.
   * @default every column of the current schema
   */
  columns?: readonly string[];
}

/** A live data file with the delete files that apply to it. */
export interface FileScanTask {
  dataFile: DataFile;
  /** The file's data sequence number. */
  dataSequenceNumber: bigint;
  positionDeletes: DataFile[];
  equalityDeletes: DataFile[];
}

/**
 * An incremental scan cannot be planned: `from` is not an ancestor of `to`, or a snapshot between them changed
 * rows instead of appending them.
 */
export class IncrementalScanError extends IcebergError {
  // Reported as InvalidInput: the caller asked for a range the table's history cannot serve as appends.
  readonly kind = 'invalid-incremental-scan';
  override readonly name = 'IncrementalScanError';

  constructor(
    /** Why the range cannot be read. */
    readonly reason: 'not-an-ancestor' | 'non-append-snapshot',
    readonly fromSnapshotId: bigint,
    readonly toSnapshotId: bigint,
    message: string,
    /** The offending snapshot, for `non-append-snapshot`. */
    readonly snapshotId?: bigint,
    /** Its operation, for `non-append-snapshot`. */
    readonly operation?: SnapshotOperation,
  ) {
    super(message);
  }
}

/** Picks the snapshot a selector names; `undefined` for a table with no snapshots. */
export function selectSnapshot(metadata: TableMetadata, selector: SnapshotSelector = {}): Snapshot | undefined {
  if (selector.snapshotId !== undefined) {
    const found = metadata.snapshots.find((s) => s.snapshotId === selector.snapshotId);
    if (!found) {
      throw new InvalidTableConfigError(
        'snapshot-id',
        `table ${metadata.location} has no snapshot ${selector.snapshotId}`,
      );
    }
    return found;
  }
  if (selector.asOfTimestampMs !== undefined) {
    // The snapshot log records when each snapshot became current; the last entry at or before the time wins.
    let id: bigint | undefined;
    for (const entry of metadata.snapshotLog) if (entry.timestampMs <= selector.asOfTimestampMs) id = entry.snapshotId;
    if (id === undefined) {
      throw new InvalidTableConfigError(
        'as-of-timestamp',
        `table ${metadata.location} had no snapshot at ${new Date(Number(selector.asOfTimestampMs)).toISOString()}`,
      );
    }
    return metadata.snapshots.find((s) => s.snapshotId === id);
  }
  return metadata.currentSnapshotId === null
    ? undefined
    : metadata.snapshots.find((s) => s.snapshotId === metadata.currentSnapshotId);
}

/**
 * The schema for reading `snapshot` as the selector picked it: the snapshot's own schema when the selector travels
 * back to an older snapshot, else the current schema.
 */
function readSchemaFor(metadata: TableMetadata, selector: SnapshotSelector, snapshot: Snapshot | undefined): Schema {
  const explicit = selector.snapshotId !== undefined || selector.asOfTimestampMs !== undefined;
  const older = snapshot !== undefined && snapshot.snapshotId !== metadata.currentSnapshotId;
  return explicit && older ? snapshotSchema(metadata, snapshot) : currentSchema(metadata);
}

/**
 * The schema a snapshot was written with (its `schema-id`), falling back to the current schema for snapshots that
 * carry none (v1 tables) or name a schema the metadata no longer lists.
 */
export function snapshotSchema(metadata: TableMetadata, snapshot: Snapshot | undefined): Schema {
  const id = snapshot?.schemaId;
  return (id === undefined ? undefined : metadata.schemas.find((s) => s.schemaId === id)) ?? currentSchema(metadata);
}

/**
 * The schema a scan reads with: when the selector travels back (by id or time) to a snapshot older than the current
 * one, that snapshot's own schema, as Java's `useSnapshot`/`asOfTime`, pyiceberg, DuckDB and Spark read it; columns
 * renamed, widened or added since then read as they were. Otherwise the current schema, also when the selector
 * names the current snapshot (callers pin it to read a stable state in today's column names).
 */
export function scanReadSchema(metadata: TableMetadata, selector: SnapshotSelector = {}): Schema {
  return readSchemaFor(metadata, selector, selectSnapshot(metadata, selector));
}

/** Reads the live entries of the given manifests, with inheritance applied. */
async function readLiveEntries(
  io: FileIO,
  metadata: TableMetadata,
  manifests: readonly ManifestFile[],
): Promise<{ manifest: ManifestFile; entries: ManifestEntry[] }[]> {
  const schema = currentSchema(metadata);
  return Promise.all(
    manifests.map(async (manifest) => {
      const spec = metadata.partitionSpecs.find((s) => s.specId === manifest.partitionSpecId);
      const contents = readManifest(await io.read(manifest.manifestPath), {
        file: manifest.manifestPath,
        ...(spec ? { partitionType: partitionType(spec, schema) } : {}),
      });
      const entries = inheritManifestMetadata(contents.entries, manifest).filter((e) => e.status !== 'deleted');
      return { manifest, entries };
    }),
  );
}

/** Reads the live entries of every manifest of a snapshot, with inheritance applied. */
export async function liveEntries(
  io: FileIO,
  metadata: TableMetadata,
  snapshot: Snapshot,
): Promise<{ manifest: ManifestFile; entries: ManifestEntry[] }[]> {
  const list = readManifestList(await io.read(snapshot.manifestList), { file: snapshot.manifestList });
  return readLiveEntries(io, metadata, list.manifests);
}

/** Whether a manifest may list live files; v1 lists may omit the counts, which then means "assume some". */
function hasLiveFiles(manifest: ManifestFile): boolean {
  if (manifest.addedFilesCount === null || manifest.existingFilesCount === null) return true;
  return manifest.addedFilesCount > 0 || manifest.existingFilesCount > 0;
}

/** The pruning decisions of one planned scan. */
interface PlanningFilter {
  /** Whether the manifest's partition summaries allow a match. */
  manifest(manifest: ManifestFile): boolean;
  /** Whether a data file's partition tuple and metrics allow a match. */
  dataFile(file: DataFile): boolean;
  /** Whether a delete file's partition might hold matching rows; deletes elsewhere apply to no planned file. */
  deleteFile(file: DataFile): boolean;
}

function planningFilter(
  metadata: TableMetadata,
  options: FilterOptions,
  schema: Schema = currentSchema(metadata),
): PlanningFilter {
  if (options.filter === undefined) {
    return { manifest: () => true, dataFile: () => true, deleteFile: () => true };
  }
  const bound = bind(options.filter, schema, { caseSensitive: options.caseSensitive ?? true });
  // One projection per partition spec: manifests and files of older specs are pruned with their own spec.
  const projections = new Map<number, { projection: BoundExpression; fieldCount: number } | undefined>();
  const projected = (specId: number) => {
    if (!projections.has(specId)) {
      const spec = metadata.partitionSpecs.find((s) => s.specId === specId);
      projections.set(
        specId,
        spec ? { projection: projectInclusive(bound, spec, schema), fieldCount: spec.fields.length } : undefined,
      );
    }
    return projections.get(specId);
  };
  const partitionOk = (file: DataFile): boolean => {
    const found = projected(file.specId);
    // A tuple that does not fit its spec (no correct writer makes one) says nothing.
    if (!found || file.partition.length !== found.fieldCount) return true;
    return partitionMightMatch(found.projection, file.partition);
  };
  return {
    manifest: (manifest) => {
      const found = projected(manifest.partitionSpecId);
      return found === undefined || manifestMightMatch(found.projection, manifest.partitions);
    },
    dataFile: (file) => partitionOk(file) && metricsMightMatch(bound, file),
    deleteFile: partitionOk,
  };
}

/**
 * Plans a scan: the live data files of the snapshot and, for each, the delete files that apply to it. With a
 * `filter`, manifests are skipped on their partition summaries before they are read, and data files on their
 * partition tuple and column metrics; the remaining files might hold matching rows (reading filters the rows).
 * Delete files of partitions the filter excludes are dropped too: they could only apply to skipped data files.
 *
 * @throws InvalidExpressionError when the filter does not fit the current schema.
 * @throws InvalidTableConfigError when the selector names no snapshot of the table.
 */
export async function planFiles(
  io: FileIO,
  metadata: TableMetadata,
  options: ScanOptions = {},
): Promise<FileScanTask[]> {
  const snapshot = selectSnapshot(metadata, options);
  if (!snapshot) return [];
  // Time travel binds the filter to the snapshot's own schema (see scanReadSchema).
  const filter = planningFilter(metadata, options, readSchemaFor(metadata, options, snapshot));
  const list = readManifestList(await io.read(snapshot.manifestList), { file: snapshot.manifestList });
  const manifests = list.manifests.filter((m) => hasLiveFiles(m) && filter.manifest(m));
  const data: { file: DataFile; seq: bigint }[] = [];
  const positionDeletes: { file: DataFile; seq: bigint }[] = [];
  const equalityDeletes: { file: DataFile; seq: bigint }[] = [];
  for (const { entries } of await readLiveEntries(io, metadata, manifests)) {
    for (const entry of entries) {
      const seq = entry.sequenceNumber ?? 0n;
      const file = entry.dataFile;
      if (file.content === 'data') {
        if (filter.dataFile(file)) data.push({ file, seq });
      } else if (filter.deleteFile(file)) {
        (file.content === 'position-deletes' ? positionDeletes : equalityDeletes).push({ file, seq });
      }
    }
  }
  const positionIndex = new DeleteIndex(positionDeletes);
  const equalityIndex = new DeleteIndex(equalityDeletes);
  return data.map(({ file, seq }) => attachDeletes(file, seq, positionIndex, equalityIndex));
}

/**
 * Delete files by the partition they apply to: a delete in an unpartitioned spec applies everywhere (global);
 * otherwise only within the same spec and partition. Built once per plan, so that attaching deletes to each data
 * file looks at its partition's deletes only, not at every delete file of the table.
 */
class DeleteIndex {
  private readonly global: { file: DataFile; seq: bigint }[] = [];
  private readonly byPartition = new Map<string, { file: DataFile; seq: bigint }[]>();

  constructor(deletes: readonly { file: DataFile; seq: bigint }[]) {
    for (const d of deletes) {
      if (d.file.partition.length === 0) {
        this.global.push(d);
        continue;
      }
      const key = `${d.file.specId}|${tupleKey(d.file.partition)}`;
      const list = this.byPartition.get(key);
      if (list) list.push(d);
      else this.byPartition.set(key, [d]);
    }
  }

  /** The deletes that may apply to a data file, by partition (sequence numbers are checked by the caller). */
  candidates(file: DataFile): { file: DataFile; seq: bigint }[] {
    if (this.byPartition.size === 0) return this.global;
    const local = this.byPartition.get(`${file.specId}|${tupleKey(file.partition)}`) ?? [];
    return this.global.length === 0 ? local : [...this.global, ...local];
  }
}

function attachDeletes(
  file: DataFile,
  seq: bigint,
  positionDeletes: DeleteIndex,
  equalityDeletes: DeleteIndex,
): FileScanTask {
  const positional: DataFile[] = [];
  for (const d of positionDeletes.candidates(file)) {
    if (d.seq < seq) continue;
    if (d.file.referencedDataFile !== undefined && d.file.referencedDataFile !== file.filePath) continue;
    positional.push(d.file);
  }
  const equality: DataFile[] = [];
  for (const d of equalityDeletes.candidates(file)) if (d.seq > seq) equality.push(d.file);
  return { dataFile: file, dataSequenceNumber: seq, positionDeletes: positional, equalityDeletes: equality };
}

// ---- incremental appends --------------------------------------------------------------------------------

/** Options of {@link planIncrementalAppends}. */
export interface IncrementalAppendOptions extends FilterOptions {
  /** Rows appended after this snapshot are read; it must be an ancestor of `toSnapshotId`. */
  fromSnapshotIdExclusive: bigint;
  /** Rows appended up to and including this snapshot are read. @default the current snapshot */
  toSnapshotId?: bigint;
}

/** Options of {@link scanIncremental}. */
export interface IncrementalScanOptions extends IncrementalAppendOptions {
  /** The columns to return, as in {@link TableScanOptions.columns}. @default every column */
  columns?: readonly string[];
}

/**
 * The snapshots after `fromSnapshotIdExclusive` up to and including `toSnapshotId`, oldest first, following
 * parent links back from `toSnapshotId`.
 *
 * @throws IncrementalScanError (`not-an-ancestor`) when `from` is not reached: it is on another branch, it is
 *   newer than `to`, or the history between them has expired.
 * @throws InvalidTableConfigError when `toSnapshotId` is not a snapshot of the table.
 */
export function snapshotsBetween(
  metadata: TableMetadata,
  fromSnapshotIdExclusive: bigint,
  toSnapshotId: bigint,
): Snapshot[] {
  const byId = new Map(metadata.snapshots.map((s) => [s.snapshotId, s] as const));
  let current = byId.get(toSnapshotId);
  if (!current) {
    throw new InvalidTableConfigError('snapshot-id', `table ${metadata.location} has no snapshot ${toSnapshotId}`);
  }
  const notAncestor = (why: string): never => {
    throw new IncrementalScanError(
      'not-an-ancestor',
      fromSnapshotIdExclusive,
      toSnapshotId,
      `snapshot ${fromSnapshotIdExclusive} is not an ancestor of snapshot ${toSnapshotId} in table ` +
        `${metadata.location} (${why}); pick a starting snapshot from the history of ${toSnapshotId}`,
    );
  };
  const chain: Snapshot[] = [];
  while (current.snapshotId !== fromSnapshotIdExclusive) {
    chain.push(current);
    const parentId: bigint | undefined = current.parentSnapshotId;
    if (parentId === undefined) return notAncestor(`the history ends at snapshot ${current.snapshotId}`);
    if (parentId === fromSnapshotIdExclusive) break;
    const parent = byId.get(parentId);
    if (!parent) return notAncestor(`snapshot ${parentId} has expired, so the history cannot be followed further`);
    current = parent;
  }
  return chain.reverse();
}

/**
 * Plans an incremental scan: the data files that `append` snapshots added after `fromSnapshotIdExclusive`, up to
 * and including `toSnapshotId`. `replace` snapshots (compactions) are skipped, since they add no new rows. An
 * `overwrite` or `delete` snapshot in the range fails the plan, as Spark's incremental read does: appended files
 * alone cannot express rows that were changed or removed. For the same reason no delete file applies to the
 * planned files. A filter prunes as in {@link planFiles}.
 *
 * @throws IncrementalScanError when `from` is not an ancestor of `to`, or an overwrite/delete lies between them
 *   (the error names the snapshot and its operation).
 */
export async function planIncrementalAppends(
  io: FileIO,
  metadata: TableMetadata,
  options: IncrementalAppendOptions,
): Promise<FileScanTask[]> {
  const from = options.fromSnapshotIdExclusive;
  const to = options.toSnapshotId ?? metadata.currentSnapshotId;
  if (to === null) {
    throw new IncrementalScanError(
      'not-an-ancestor',
      from,
      -1n,
      `table ${metadata.location} has no snapshots, so snapshot ${from} cannot be an ancestor of its current one`,
    );
  }
  const snapshots = snapshotsBetween(metadata, from, to);
  for (const snapshot of snapshots) {
    const operation = snapshot.summary.operation;
    if (operation === 'overwrite' || operation === 'delete') {
      throw new IncrementalScanError(
        'non-append-snapshot',
        from,
        to,
        `found ${operation} operation in snapshot ${snapshot.snapshotId}, cannot support incremental data in ` +
          `snapshots (${from}, ${to}]: an incremental scan reads appended rows only; read snapshot ` +
          `${snapshot.snapshotId} in full, or start the range at or after it`,
        snapshot.snapshotId,
        operation,
      );
    }
  }
  const filter = planningFilter(metadata, options);
  const tasks: FileScanTask[] = [];
  for (const snapshot of snapshots) {
    if (snapshot.summary.operation !== 'append') continue;
    const list = readManifestList(await io.read(snapshot.manifestList), { file: snapshot.manifestList });
    // Only manifests this snapshot wrote can hold the files it added; carried-over ones are older.
    const added = list.manifests.filter(
      (m) =>
        m.addedSnapshotId === snapshot.snapshotId &&
        m.content === 'data' &&
        (m.addedFilesCount === null || m.addedFilesCount > 0) &&
        filter.manifest(m),
    );
    for (const { entries } of await readLiveEntries(io, metadata, added)) {
      for (const entry of entries) {
        if (entry.status !== 'added' || entry.snapshotId !== snapshot.snapshotId) continue;
        if (!filter.dataFile(entry.dataFile)) continue;
        tasks.push({
          dataFile: entry.dataFile,
          dataSequenceNumber: entry.sequenceNumber ?? 0n,
          positionDeletes: [],
          equalityDeletes: [],
        });
      }
    }
  }
  return tasks;
}

// ---- reading --------------------------------------------------------------------------------------------

/** The deleted positions of `dataFilePath` listed in the given position-delete files. */
/** Reads a position-delete file into the positions it deletes, by data file path. */
export async function readPositionDeleteFile(io: FileIO, path: string): Promise<Map<string, bigint[]>> {
  const batch = readParquetFile(await io.read(path), { schema: POSITION_DELETE_SCHEMA });
  const paths = batch.columns.get(DELETE_FILE_PATH_FIELD_ID) as string[];
  const positions = batch.columns.get(DELETE_POS_FIELD_ID) as bigint[];
  const out = new Map<string, bigint[]>();
  for (let i = 0; i < batch.rowCount; i++) {
    const list = out.get(paths[i]!);
    if (list) list.push(positions[i]!);
    else out.set(paths[i]!, [positions[i]!]);
  }
  return out;
}

/**
 * Delete files read once per scan: a delete file usually applies to many data files of its partition, and
 * re-reading it for each one made scans of upserted tables several times slower.
 */
export class DeleteFileCache {
  private readonly positionFiles = new Map<string, Promise<Map<string, bigint[]>>>();
  private readonly numberFiles = new Map<string, Promise<Map<string, Float64Array>>>();
  private readonly equalityFiles = new Map<string, Promise<Set<string>>>();

  constructor(private readonly io: FileIO) {}

  /**
   * Positions a position-delete file removes, by data file path, as sorted numbers (row positions stay far below
   * 2^53), which the read loop can walk without a set lookup or a `BigInt` per row.
   */
  sortedPositions(path: string): Promise<Map<string, Float64Array>> {
    let hit = this.numberFiles.get(path);
    if (!hit) {
      hit = this.io.read(path).then((bytes) => {
        const out = new Map<string, Float64Array>();
        for (const [dataPath, list] of readPositionDeletePositions(bytes))
          out.set(dataPath, Float64Array.from(list).sort());
        return out;
      });
      this.numberFiles.set(path, hit);
    }
    return hit;
  }

  /** Positions a position-delete file removes, by data file path. */
  positions(path: string): Promise<Map<string, bigint[]>> {
    let hit = this.positionFiles.get(path);
    if (!hit) this.positionFiles.set(path, (hit = readPositionDeleteFile(this.io, path)));
    return hit;
  }

  /** The key tuples an equality-delete file removes. */
  equalityKeys(file: DataFile, tableSchema: Schema): Promise<Set<string>> {
    let hit = this.equalityFiles.get(file.filePath);
    if (!hit) this.equalityFiles.set(file.filePath, (hit = readEqualityDeleteFile(this.io, file, tableSchema)));
    return hit;
  }
}

/** The deleted positions of `dataFilePath` listed in the given position-delete files. */
export async function deletedPositions(
  io: FileIO,
  deleteFiles: readonly DataFile[],
  dataFilePath: string,
  cache: DeleteFileCache = new DeleteFileCache(io),
): Promise<Set<bigint>> {
  const deleted = new Set<bigint>();
  for (const file of deleteFiles) {
    for (const pos of (await cache.positions(file.filePath)).get(dataFilePath) ?? []) deleted.add(pos);
  }
  return deleted;
}

/** Reads a value by its path (see `fieldPath`) from column batches keyed by top-level field id. */
type ColumnAccessor = (columns: ReadonlyMap<number, readonly unknown[]>, r: number) => unknown;

function columnAccessor(schema: Pick<Schema, 'fields'>, fieldId: number, what: string): ColumnAccessor {
  const path = fieldPath(schema, fieldId);
  const top = path === undefined ? undefined : schema.fields[path[0] ?? -1];
  if (path === undefined || top === undefined) {
    throw new InvalidTableConfigError('equality_ids', `${what} names field ${fieldId}, which is not a column`);
  }
  const rest = path.slice(1);
  return (columns, r) => {
    let value: unknown = columns.get(top.id)?.[r] ?? null;
    for (const position of rest) value = Array.isArray(value) ? ((value as unknown[])[position] ?? null) : null;
    return value;
  };
}

/** Equality-delete keys: for each set of equality field ids, the set of deleted key tuples. */
async function readEqualityDeleteFile(io: FileIO, file: DataFile, tableSchema: Schema): Promise<Set<string>> {
  const ids = file.equalityIds ?? [];
  // Delete files hold the equality columns in the table's nesting (Java writes a projection of the schema).
  const fileSchema = pruneSchema(tableSchema, new Set(ids));
  const accessors = ids.map((id) => columnAccessor(fileSchema, id, `delete file ${file.filePath}`));
  const batch = readParquetFile(await io.read(file.filePath), { schema: fileSchema });
  const keys = new Set<string>();
  for (let r = 0; r < batch.rowCount; r++) keys.add(tupleKey(accessors.map((get) => get(batch.columns, r))));
  return keys;
}

async function equalityDeleteKeys(cache: DeleteFileCache, tableSchema: Schema, deleteFiles: readonly DataFile[]) {
  const byIds = new Map<string, { ids: number[]; keys: Set<string> }>();
  for (const file of deleteFiles) {
    const ids = file.equalityIds ?? [];
    const group = byIds.get(ids.join(',')) ?? { ids, keys: new Set<string>() };
    byIds.set(ids.join(','), group);
    for (const key of await cache.equalityKeys(file, tableSchema)) group.keys.add(key);
  }
  return [...byIds.values()];
}

/** Options of {@link readTask}. */
export interface ReadTaskOptions {
  /**
   * The table schema, for columns the output schema leaves out but reading needs: equality-delete columns and
   * filter columns. `schema` must be a projection of it (same field ids).
   * @default the output schema
   */
  tableSchema?: Schema;
  /** Only rows matching this filter, bound to `tableSchema`. @default every row */
  filter?: Expression;
  /** @default true */
  caseSensitive?: boolean;
  /** Shares delete files read by earlier tasks of the same scan. @default a cache for this task only */
  deleteCache?: DeleteFileCache;
  /** The data file's bytes, when the caller already started reading them (prefetch). @default read here */
  dataBytes?: Promise<Uint8Array>;
}

/**
 * Reads one task's rows, one row group at a time, without the rows its delete files remove and, with a `filter`,
 * without the rows that do not match it. Yields one batch per row group (possibly empty), in `schema`: columns
 * are read by field id, so renamed and added columns read right. Equality-delete and filter columns are read
 * even when `schema` leaves them out, and dropped from the output.
 */
export async function* readTask(
  io: FileIO,
  task: FileScanTask,
  schema: Schema,
  options: ReadTaskOptions = {},
): AsyncGenerator<ParquetColumnBatch> {
  const tableSchema = options.tableSchema ?? schema;
  const caseSensitive = options.caseSensitive ?? true;
  const deleteCache = options.deleteCache ?? new DeleteFileCache(io);
  const unbound = options.filter;
  const filter = unbound === undefined ? undefined : bind(unbound, tableSchema, { caseSensitive });
  const equalityIds = task.equalityDeletes.flatMap((f) => f.equalityIds ?? []);
  const outputIds = new Set(indexSchema(schema).keys());
  const extraIds = [...equalityIds, ...(filter ? referencedFieldIds(filter) : [])].filter((id) => !outputIds.has(id));
  // Read the output schema as it is when it already has every needed column; otherwise a projection of the table
  // schema that adds them, reshaped to the output schema afterwards.
  const readSchema: Pick<Schema, 'fields'> =
    extraIds.length === 0 ? schema : pruneSchema(tableSchema, new Set([...outputIds, ...extraIds]));
  // Bound again to the read schema, whose struct layout (and so each value's path) may differ.
  const readFilter =
    unbound === undefined
      ? undefined
      : rowPredicate(
          bind(unbound, readSchema, { caseSensitive }),
          readSchema.fields.map((f) => f.id),
        );
  // Deleted row positions of this file, sorted (numbers: positions stay far below 2^53), walked alongside the rows.
  const positions = task.positionDeletes.length
    ? await sortedDeletedPositions(task.positionDeletes, task.dataFile.filePath, deleteCache)
    : new Float64Array(0);
  const equality = task.equalityDeletes.length
    ? await equalityDeleteKeys(deleteCache, tableSchema, task.equalityDeletes)
    : [];
  const equalityGroups = equality.map((g) => ({
    keys: g.keys,
    accessors: g.ids.map((id) => columnAccessor(readSchema, id, `an equality delete of ${task.dataFile.filePath}`)),
  }));
  let offset = 0;
  let nextDeleted = 0; // index into `positions` of the first position at or after `offset`
  const bytes = await (options.dataBytes ?? io.read(task.dataFile.filePath));
  for (const batch of readParquetBatches(bytes, { schema: readSchema })) {
    const end = offset + batch.rowCount;
    const firstDeleted = nextDeleted;
    while (nextDeleted < positions.length && positions[nextDeleted]! < end) nextDeleted++;
    const deletedHere = nextDeleted - firstDeleted;
    if (deletedHere === 0 && equalityGroups.length === 0 && readFilter === undefined) {
      offset = end;
      yield readSchema === schema ? batch : reshapeBatch(batch, readSchema, schema, null);
      continue;
    }
    if (equalityGroups.length === 0 && readFilter === undefined) {
      // Position deletes only: move the surviving runs of rows down in each column, no per-row bookkeeping.
      const local: number[] = [];
      for (let k = firstDeleted; k < nextDeleted; k++) {
        const r = positions[k]! - offset;
        if (r >= 0 && r !== local[local.length - 1]) local.push(r);
      }
      offset = end;
      const kept = dropRows(batch, local);
      yield readSchema === schema ? kept : reshapeBatch(kept, readSchema, schema, null);
      continue;
    }
    const keep: number[] = [];
    let d = firstDeleted;
    for (let r = 0; r < batch.rowCount; r++) {
      const position = offset + r;
      if (d < nextDeleted && positions[d]! <= position) {
        while (d < nextDeleted && positions[d]! <= position) d++;
        if (positions[d - 1] === position) continue;
      }
      if (equalityGroups.length > 0 && deletedByEquality(equalityGroups, batch.columns, r)) continue;
      if (readFilter && !readFilter(batch.columns, r)) continue;
      keep.push(r);
    }
    offset = end;
    yield reshapeBatch(batch, readSchema, schema, keep.length === batch.rowCount ? null : keep);
  }
}

/** Removes the rows at `deleted` (sorted, distinct, in range) from every column of a batch the caller owns. */
function dropRows(batch: ParquetColumnBatch, deleted: readonly number[]): ParquetColumnBatch {
  if (deleted.length === 0) return batch;
  for (const values of batch.columns.values()) {
    // A plain loop: Array.prototype.copyWithin is generic (a property lookup per element) and far slower here.
    let write = deleted[0]!;
    for (let k = 0; k < deleted.length; k++) {
      const to = k + 1 < deleted.length ? deleted[k + 1]! : batch.rowCount;
      for (let r = deleted[k]! + 1; r < to; r++) values[write++] = values[r];
    }
    values.length = write;
  }
  return { rowCount: batch.rowCount - deleted.length, columns: batch.columns };
}

function deletedByEquality(
  groups: readonly { keys: Set<string>; accessors: ColumnAccessor[] }[],
  columns: ReadonlyMap<number, readonly unknown[]>,
  r: number,
): boolean {
  for (const g of groups) if (g.keys.has(tupleKey(g.accessors.map((get) => get(columns, r))))) return true;
  return false;
}

/** The sorted deleted positions of one data file, merged from the delete files that apply to it. */
async function sortedDeletedPositions(
  deleteFiles: readonly DataFile[],
  dataFilePath: string,
  cache: DeleteFileCache,
): Promise<Float64Array> {
  const parts: Float64Array[] = [];
  for (const file of deleteFiles) {
    const found = (await cache.sortedPositions(file.filePath)).get(dataFilePath);
    if (found && found.length > 0) parts.push(found);
  }
  if (parts.length === 0) return new Float64Array(0);
  if (parts.length === 1) return parts[0]!;
  const merged = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    merged.set(p, at);
    at += p.length;
  }
  return merged.sort();
}

/** The rows `keep` (all when null) of `batch`, read as `from`, in the shape of `to` (same field ids). */
function reshapeBatch(
  batch: ParquetColumnBatch,
  from: Pick<Schema, 'fields'>,
  to: Pick<Schema, 'fields'>,
  keep: readonly number[] | null,
): ParquetColumnBatch {
  if (from === to && keep === null) return batch;
  const columns = new Map<number, unknown[]>();
  for (const field of to.fields) {
    if (from === to) {
      const values = batch.columns.get(field.id) ?? [];
      columns.set(field.id, keep === null ? values : pickRows(values, keep));
      continue;
    }
    const source = from.fields.find((f) => f.id === field.id);
    const values = batch.columns.get(field.id) ?? [];
    const picked = keep === null ? values : keep.map((r) => values[r]);
    columns.set(field.id, source === undefined ? picked : picked.map((v) => reshapeValue(v, source.type, field.type)));
  }
  return { rowCount: keep === null ? batch.rowCount : keep.length, columns };
}

function pickRows(values: readonly unknown[], keep: readonly number[]): unknown[] {
  const out = new Array<unknown>(keep.length);
  for (let i = 0; i < keep.length; i++) out[i] = values[keep[i]!];
  return out;
}

/** A struct value read with one set of fields, rearranged for another (lists and maps are read whole). */
function reshapeValue(value: unknown, from: IcebergType, to: IcebergType): unknown {
  if (from === to || from.kind !== 'struct' || to.kind !== 'struct' || !Array.isArray(value)) return value;
  return to.fields.map((field) => {
    const at = from.fields.findIndex((f) => f.id === field.id);
    const source = from.fields[at];
    return source === undefined ? null : reshapeValue((value as unknown[])[at], source.type, field.type);
  });
}

/**
 * `schema` with only the fields in `ids` and the structs that lead to them. A struct whose id is listed but none
 * of whose fields are is kept whole; lists and maps are always whole.
 */
function pruneSchema(schema: Schema, ids: ReadonlySet<number>): Schema {
  const prune = (fields: readonly NestedField[]): NestedField[] => {
    const out: NestedField[] = [];
    for (const field of fields) {
      if (field.type.kind === 'struct') {
        const children = prune(field.type.fields);
        if (children.length > 0) out.push({ ...field, type: { kind: 'struct', fields: children } });
        else if (ids.has(field.id)) out.push(field);
      } else if (ids.has(field.id)) {
        out.push(field);
      }
    }
    return out;
  };
  const fields = prune(schema.fields);
  const kept = new Set(indexSchema({ fields }).keys());
  return { ...schema, fields, identifierFieldIds: schema.identifierFieldIds.filter((id) => kept.has(id)) };
}

/**
 * The schema a scan with `columns` returns: the named columns in table order, a struct field name (`a.b`) keeping
 * its enclosing structs with only the named fields. Naming a struct keeps all of it.
 *
 * @throws InvalidTableConfigError naming a column the schema does not have, or one inside a list or map.
 */
export function projectSchema(schema: Schema, columns: readonly string[], caseSensitive = true): Schema {
  const index = indexSchema(schema);
  const ids = new Set<number>();
  for (const column of columns) {
    const matches = [...index.values()].filter((info) =>
      caseSensitive ? info.fullName === column : info.fullName.toLowerCase() === column.toLowerCase(),
    );
    const info = matches[0];
    if (info === undefined || matches.length > 1 || info.inListOrMap) {
      throw new InvalidTableConfigError(
        'columns',
        `cannot select column "${column}": ` +
          (info === undefined
            ? 'the schema has no such column; use the full dotted name for struct fields'
            : matches.length > 1
              ? 'the name is ambiguous when case is ignored; spell it exactly'
              : 'it is inside a list or map; select the list or map column'),
      );
    }
    ids.add(info.id);
    // A selected struct, list or map comes whole: every field under it is selected too.
    for (const other of index.values()) if (other.fullName.startsWith(`${info.fullName}.`)) ids.add(other.id);
  }
  return pruneSchema(schema, ids);
}

/**
 * Scans a snapshot: every live row (matching `filter`), as column batches keyed by top-level field id, in the
 * current schema or its projection to `columns` (see {@link projectSchema}). Time travel (`snapshotId` or
 * `asOfTimestampMs`) reads in the selected snapshot's schema instead (see {@link scanReadSchema}); `filter` and
 * `columns` then name that schema's columns. One batch per row group that has rows left; memory holds two data
 * files' bytes (the one being decoded and the next, read ahead) and one decoded row group at a time.
 */
export async function* scanTable(
  io: FileIO,
  metadata: TableMetadata,
  options: TableScanOptions = {},
): AsyncGenerator<ParquetColumnBatch> {
  const tableSchema = scanReadSchema(metadata, options);
  const schema =
    options.columns === undefined ? tableSchema : projectSchema(tableSchema, options.columns, options.caseSensitive);
  const tasks = await planFiles(io, metadata, options);
  yield* readTasks(io, tasks, schema, tableSchema, options);
}

/**
 * Reads the rows appended between two snapshots (see {@link planIncrementalAppends}), as {@link scanTable}
 * returns them.
 */
export async function* scanIncremental(
  io: FileIO,
  metadata: TableMetadata,
  options: IncrementalScanOptions,
): AsyncGenerator<ParquetColumnBatch> {
  const tableSchema = currentSchema(metadata);
  const schema =
    options.columns === undefined ? tableSchema : projectSchema(tableSchema, options.columns, options.caseSensitive);
  const tasks = await planIncrementalAppends(io, metadata, options);
  yield* readTasks(io, tasks, schema, tableSchema, options);
}

async function* readTasks(
  io: FileIO,
  tasks: readonly FileScanTask[],
  schema: Schema,
  tableSchema: Schema,
  options: FilterOptions,
): AsyncGenerator<ParquetColumnBatch> {
  const readOptions: ReadTaskOptions = {
    tableSchema,
    deleteCache: new DeleteFileCache(io),
    ...(options.filter === undefined ? {} : { filter: options.filter }),
    ...(options.caseSensitive === undefined ? {} : { caseSensitive: options.caseSensitive }),
  };
  // While one file is decoded, the next one's bytes and delete files are already being read: a merge-on-read
  // table has many small files, and reading them one after another left the CPU idle for each read.
  const prefetch = (task: FileScanTask | undefined): Promise<Uint8Array> | undefined => {
    if (task === undefined) return undefined;
    for (const d of task.positionDeletes) void readOptions.deleteCache!.sortedPositions(d.filePath).catch(() => {});
    const bytes = io.read(task.dataFile.filePath);
    bytes.catch(() => {}); // surfaced when the task is read
    return bytes;
  };
  let next = prefetch(tasks[0]);
  for (let i = 0; i < tasks.length; i++) {
    const dataBytes = next!;
    next = prefetch(tasks[i + 1]);
    for await (const batch of readTask(io, tasks[i]!, schema, { ...readOptions, dataBytes })) {
      if (batch.rowCount > 0) yield batch;
    }
  }
}
