/**
 * Copy-on-write row-level writes: {@link deleteWhere} deletes the rows that match a filter, {@link overwriteRows}
 * replaces the rows that match a filter (or whole partitions: dynamic partition overwrite) with new rows. Unlike
 * {@link upsertRows} (merge-on-read, position deletes), the data files that hold affected rows are rewritten
 * without them, and one snapshot removes the old files and adds the rewritten and new ones.
 *
 * - **Pruning.** Planning skips manifests and files whose partition or column min/max cannot match the filter;
 *   files that are read but hold no matching live row are left alone (not rewritten).
 * - **Deletes already in the table.** A file is read with its position and equality deletes applied, so the
 *   rewritten file holds only rows that were live. Delete files that apply to no data file the snapshot keeps are
 *   removed from it (as compaction does); a position-delete file that also names surviving files stays.
 * - **Concurrency.** Each commit attempt re-validates on the fresh metadata: every file being removed is still
 *   live, no position or equality delete committed since the start touches it, and (with `serializable` isolation,
 *   the default, as in Java) no data file committed since the start may hold rows the filter (or a replaced
 *   partition) covers. A failed validation restarts the whole operation on fresh state, up to
 *   `maxConflictRetries` times, then throws {@link RowLevelConflictError}. A failed operation deletes every file
 *   it wrote, so nothing of it is visible or referenced.
 * - **Rows** are tested with the engine's row evaluator (Java's `Evaluator`): a comparison with null is false, so
 *   `delete where qty < 5` keeps rows whose `qty` is null.
 */
import type { FileIO } from '../storage/file-io.js';
import { writeDataFiles } from './append.js';
import { CommitStateUnknownError } from './catalog/errors.js';
import { metadataDirectory } from './catalog/metadata-location.js';
import type { TableIdentifierInput } from './catalog/identifier.js';
import type { DataFile, ManifestEntry } from './data-file.js';
import { IcebergError, RowLevelConflictError } from './errors.js';
import {
  bind,
  metricsMightMatch,
  partitionMightMatch,
  projectInclusive,
  rowPredicate,
  type BoundExpression,
  type Expression,
} from './expressions.js';
import { danglingDeleteFiles } from './maintenance/compact.js';
import { manifestsWithout, writeSnapshotManifest, WrittenFiles } from './maintenance/replace-commit.js';
import {
  mayReferenceAny,
  partitionKey,
  positionDeleteTargetCache,
  tableDisplayName,
  type MaintenanceCatalog,
} from './maintenance/table-files.js';
import { writeManifestList, type ManifestFile } from './manifest-list.js';
import {
  currentSchema,
  currentSnapshot,
  defaultPartitionSpec,
  newSnapshotId,
  type TableMetadata,
} from './metadata-json.js';
import { partitionTupleOf } from './partition-spec.js';
import type { ColumnValues, ParquetWriteTuning } from './parquet/index.js';
import { DeleteFileCache, liveEntries, planFiles, readTask, type FileScanTask } from './scan.js';
import { addSnapshot, nextSequenceNumber, noChanges, snapshotSummary, type SnapshotChanges } from './table-update.js';
import type { Schema } from './types.js';
import type { PrimitiveValue } from './values.js';
import { randomUUID } from 'node:crypto';

/** How a row-level write changes existing data files. Only copy-on-write here; merge-on-read is `upsertRows`. */
export type RowLevelWriteMode = 'copy-on-write';

/**
 * What a row-level write checks against commits made while it ran. `serializable` (Java's default for deletes and
 * overwrites) also fails when a concurrent commit added data files that may hold rows the write covers;
 * `snapshot` only protects the files it rewrites.
 */
export type RowLevelIsolation = 'serializable' | 'snapshot';

/** Options shared by {@link deleteWhere} and {@link overwriteRows}. */
export interface RowLevelWriteOptions extends ParquetWriteTuning {
  /** @default 'copy-on-write' */
  mode?: RowLevelWriteMode;
  /** Match the filter's column names exactly. @default true */
  caseSensitive?: boolean;
  /** Custom snapshot summary properties, e.g. a source watermark. */
  snapshotProperties?: Record<string, string>;
  /** @default 'serializable' */
  isolation?: RowLevelIsolation;
  /** Compare-and-swap attempts per commit. @default 5 */
  maxCommitAttempts?: number;
  /** Times the whole operation is redone on fresh state after a concurrent commit invalidated it. @default 3 */
  maxConflictRetries?: number;
  /** Rows per written data file at most. @default 1000000 */
  maxRowsPerFile?: number;
}

/** Options of {@link deleteWhere}. */
export interface DeleteWhereOptions extends RowLevelWriteOptions {
  /** Rows matching this filter (bound to the current schema) are deleted. */
  filter: Expression;
}

/** Which existing rows {@link overwriteRows} replaces. */
export type OverwriteTarget =
  /** The rows matching the filter; every new row must match it too. */
  | { filter: Expression }
  /** Every row of each partition (of the default spec) that a new row falls in: dynamic partition overwrite. */
  | { partitions: 'dynamic' };

/** Options of {@link overwriteRows}. */
export interface OverwriteRowsOptions extends RowLevelWriteOptions {
  /** The new rows, by top-level field id of the current schema (as for `appendColumns`). */
  columns: ReadonlyMap<number, ColumnValues>;
  /** Row count; needed only when `columns` is empty. */
  rowCount?: number;
  /** Which existing rows the new rows replace. */
  overwrite: OverwriteTarget;
}

/** What a row-level write did. */
export interface RowLevelWriteResult {
  /** Undefined when nothing changed (no row matched and no row was added): nothing was committed. */
  snapshotId: bigint | undefined;
  sequenceNumber: bigint | undefined;
  /** `overwrite` when files were added, `delete` when files were only removed. */
  operation: 'overwrite' | 'delete' | undefined;
  /** The table's metadata file afterwards. */
  metadataLocation: string;
  /**
   * Live rows removed. Exact for filters; for a dynamic partition overwrite (files are dropped unread) it is the
   * removed files' record counts minus the position deletes that applied to them.
   */
  deletedRows: bigint;
  /** New rows added (overwrite only). */
  addedRows: bigint;
  /** Data files removed from the table: rewritten, or dropped whole. */
  removedDataFiles: string[];
  /** Of {@link removedDataFiles}, those whose surviving rows were written again. */
  rewrittenDataFiles: string[];
  /** Data files added: rewritten survivors and new rows. */
  addedDataFiles: DataFile[];
  /** Delete files removed because they no longer apply to any data file of the table. */
  removedDeleteFiles: string[];
  /** Data files that were read but held no matching row, so were kept as they are. */
  untouchedDataFiles: number;
  /** Commit attempts of the final try. */
  attempts: number;
  /** Times the operation was redone after a concurrent commit invalidated it. */
  conflictRetries: number;
}

/**
 * An overwrite's new rows do not fall under its own filter: they would not be replaced by running the same
 * overwrite again, which is never what the caller meant.
 */
export class InvalidOverwriteError extends IcebergError {
  readonly kind = 'invalid-overwrite';
  override readonly name = 'InvalidOverwriteError';

  constructor(
    readonly table: string,
    readonly problem: string,
  ) {
    super(`invalid overwrite of table "${table}": ${problem}`);
  }
}

/**
 * Deletes the rows matching `filter` by rewriting the data files that hold them (copy-on-write), in one snapshot:
 * `overwrite` when some file kept rows, `delete` when only whole files went.
 *
 * @throws InvalidExpressionError when the filter does not fit the current schema.
 * @throws RowLevelConflictError (retryable) when concurrent commits kept invalidating the delete.
 */
export async function deleteWhere(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: DeleteWhereOptions,
): Promise<RowLevelWriteResult> {
  return runRowLevelWrite(catalog, io, table, options, { kind: 'filter', filter: options.filter });
}

/**
 * Replaces existing rows with new ones (copy-on-write), in one `overwrite` snapshot: with `{ filter }`, the rows
 * matching it are deleted as in {@link deleteWhere} (every new row must match the filter); with
 * `{ partitions: 'dynamic' }`, every data file of a partition that receives new rows is removed.
 *
 * @throws InvalidOverwriteError when a new row does not match the overwrite filter.
 * @throws TableWriteError when the new rows do not fit the schema.
 * @throws RowLevelConflictError (retryable) when concurrent commits kept invalidating the overwrite.
 */
export async function overwriteRows(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: OverwriteRowsOptions,
): Promise<RowLevelWriteResult> {
  const target: Target =
    'filter' in options.overwrite ? { kind: 'filter', filter: options.overwrite.filter } : { kind: 'partitions' };
  return runRowLevelWrite(catalog, io, table, options, target, {
    columns: options.columns,
    rowCount: options.rowCount,
  });
}

type Target = { kind: 'filter'; filter: Expression } | { kind: 'partitions' };

interface NewRows {
  columns: ReadonlyMap<number, ColumnValues>;
  rowCount: number | undefined;
}

async function runRowLevelWrite(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: RowLevelWriteOptions,
  target: Target,
  rows?: NewRows,
): Promise<RowLevelWriteResult> {
  const maxRetries = options.maxConflictRetries ?? 3;
  for (let retry = 0; ; retry++) {
    try {
      return { ...(await rowLevelWriteOnce(catalog, io, table, options, target, rows)), conflictRetries: retry };
    } catch (err) {
      if (!(err instanceof RowLevelConflictError) || retry >= maxRetries) throw err;
    }
  }
}

function rowCountOf(rows: NewRows): number {
  const first = rows.columns.values().next();
  return first.done ? (rows.rowCount ?? 0) : first.value.length;
}

/** One try: plan, read and rewrite, write the new rows, commit with validation. */
async function rowLevelWriteOnce(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: RowLevelWriteOptions,
  target: Target,
  rows: NewRows | undefined,
): Promise<Omit<RowLevelWriteResult, 'conflictRetries'>> {
  const tableName = tableDisplayName(table);
  const { metadata, metadataLocation } = await catalog.loadTable(table);
  const schema = currentSchema(metadata);
  const spec = defaultPartitionSpec(metadata);
  const start = currentSnapshot(metadata);
  const startSequenceNumber = start?.sequenceNumber ?? 0n;
  const caseSensitive = options.caseSensitive ?? true;
  const bound = target.kind === 'filter' ? bind(target.filter, schema, { caseSensitive }) : undefined;
  const newRowCount = rows === undefined ? 0 : rowCountOf(rows);

  if (rows !== undefined && bound !== undefined) {
    const matches = rowPredicate(
      bound,
      schema.fields.map((f) => f.id),
    );
    for (let r = 0; r < newRowCount; r++) {
      if (!matches(rows.columns as ReadonlyMap<number, readonly unknown[]>, r)) {
        throw new InvalidOverwriteError(
          tableName,
          `new row ${r} does not match the overwrite filter; every new row must fall under it`,
        );
      }
    }
  }

  // The partitions a dynamic overwrite replaces (default spec only, as in Java's ReplacePartitions).
  let replacedPartitions: Set<string> | undefined;
  if (target.kind === 'partitions' && rows !== undefined) {
    replacedPartitions = new Set();
    const tupleOf = partitionTupleOf(spec, schema);
    for (let r = 0; r < newRowCount; r++) {
      const tuple = tupleOf((fieldId) => (rows.columns.get(fieldId)?.[r] as PrimitiveValue | null | undefined) ?? null);
      replacedPartitions.add(partitionKey(spec.specId, tuple));
    }
  }

  const tasks =
    start === undefined
      ? []
      : await planFiles(io, metadata, {
          snapshotId: start.snapshotId,
          ...(target.kind === 'filter' ? { filter: target.filter, caseSensitive } : {}),
        });

  const written = new WrittenFiles();
  const tracked = written.tracking(io);
  const removedTasks: FileScanTask[] = [];
  const rewritten: string[] = [];
  const addedDataFiles: DataFile[] = [];
  let deletedRows = 0n;
  let untouched = 0;
  const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
  const addedManifests: ManifestFile[] = [];
  const deleteCache = new DeleteFileCache(io);
  try {
    if (target.kind === 'partitions') {
      for (const task of tasks) {
        const key = partitionKey(task.dataFile.specId, task.dataFile.partition);
        if (!replacedPartitions?.has(key)) continue;
        removedTasks.push(task);
        let gone = 0n;
        for (const d of task.positionDeletes) {
          gone += BigInt((await deleteCache.positions(d.filePath)).get(task.dataFile.filePath)?.length ?? 0);
        }
        deletedRows += task.dataFile.recordCount - gone;
      }
    } else {
      const matches = rowPredicate(
        bound!,
        schema.fields.map((f) => f.id),
      );
      for (const task of tasks) {
        const kept = new Map<number, unknown[]>(schema.fields.map((f) => [f.id, []]));
        let keptRows = 0;
        let matched = 0;
        for await (const batch of readTask(io, task, schema, { tableSchema: schema, deleteCache })) {
          for (let r = 0; r < batch.rowCount; r++) {
            if (matches(batch.columns, r)) {
              matched++;
              continue;
            }
            keptRows++;
            for (const [id, values] of batch.columns) kept.get(id)?.push(values[r]);
          }
        }
        if (matched === 0) {
          untouched++;
          continue;
        }
        deletedRows += BigInt(matched);
        removedTasks.push(task);
        if (keptRows > 0) {
          rewritten.push(task.dataFile.filePath);
          // Written under the file's own spec, so the survivors stay in their partition after a spec change.
          addedDataFiles.push(
            ...(await writeDataFiles(
              tracked,
              { ...metadata, defaultSpecId: task.dataFile.specId },
              { ...tuning(options), columns: kept, rowCount: keptRows },
            )),
          );
        }
      }
    }
    if (rows !== undefined && newRowCount > 0) {
      addedDataFiles.push(
        ...(await writeDataFiles(tracked, metadata, {
          ...tuning(options),
          columns: rows.columns,
          rowCount: newRowCount,
        })),
      );
    }
    for (const specId of new Set(addedDataFiles.map((f) => f.specId))) {
      const entries = addedDataFiles
        .filter((f) => f.specId === specId)
        .map((dataFile): ManifestEntry => ({
          status: 'added',
          snapshotId,
          sequenceNumber: null,
          fileSequenceNumber: null,
          dataFile,
        }));
      addedManifests.push(
        await writeSnapshotManifest(io, metadata, { specId, content: 'data', entries, snapshotId }, written),
      );
    }
  } catch (err) {
    await written.deleteAllBut(io, new Set());
    throw err;
  }

  if (removedTasks.length === 0 && addedDataFiles.length === 0) {
    return {
      snapshotId: undefined,
      sequenceNumber: undefined,
      operation: undefined,
      metadataLocation,
      deletedRows: 0n,
      addedRows: 0n,
      removedDataFiles: [],
      rewrittenDataFiles: [],
      addedDataFiles: [],
      removedDeleteFiles: [],
      untouchedDataFiles: untouched,
      attempts: 0,
    };
  }

  const removed = new Set(removedTasks.map((t) => t.dataFile.filePath));
  const appliedDeletes = new Set(
    removedTasks.flatMap((t) => [...t.positionDeletes, ...t.equalityDeletes].map((d) => d.filePath)),
  );
  const removedPartitions = new Set(removedTasks.map((t) => partitionKey(t.dataFile.specId, t.dataFile.partition)));
  const targetsOf = positionDeleteTargetCache(io);
  const operation = addedDataFiles.length > 0 ? 'overwrite' : 'delete';
  const isolation = options.isolation ?? 'serializable';
  const mightHoldCoveredRows = coveredRowsTest(metadata, schema, bound, replacedPartitions);
  const rewrittenManifests = new Map<string, Promise<ManifestFile>>();
  let removedDeleteFiles: string[] = [];
  let attempts = 0;
  let sequenceNumber = 0n;
  let lastAttempt: { listPath: string; manifests: readonly ManifestFile[] } | undefined;

  try {
    const loaded = await catalog.commitWithRetry(
      table,
      async (current, attempt) => {
        attempts = attempt.attempt;
        const parent = currentSnapshot(current);
        const manifests = parent === undefined ? [] : await liveEntries(io, current, parent);
        const live = new Map<string, ManifestEntry>();
        for (const { entries } of manifests) for (const entry of entries) live.set(entry.dataFile.filePath, entry);
        await validateRowLevelWrite(live, {
          removed,
          removedPartitions,
          startSequenceNumber,
          targetsOf,
          table: tableName,
          mightHoldCoveredRows: isolation === 'serializable' ? mightHoldCoveredRows : undefined,
        });
        sequenceNumber = nextSequenceNumber(current);
        const dangling = await danglingDeleteFiles(live, appliedDeletes, removed, addedDataFiles, {
          dataSequenceNumber: sequenceNumber,
          targetsOf,
        });
        removedDeleteFiles = dangling.map((e) => e.dataFile.filePath);
        const drop = new Set([...removed, ...removedDeleteFiles]);
        const next = await manifestsWithout(
          io,
          current,
          manifests,
          drop,
          addedManifests,
          snapshotId,
          written,
          rewrittenManifests,
        );
        const list = writeManifestList({
          snapshotId,
          parentSnapshotId: parent?.snapshotId ?? null,
          sequenceNumber,
          manifests: next,
        });
        const listPath = `${metadataDirectory(current)}/snap-${snapshotId}-${attempt.attempt}-${randomUUID()}.avro`;
        written.add(listPath);
        await io.write(listPath, list.bytes);
        lastAttempt = { listPath, manifests: next };
        const changes = rowLevelChanges(
          [...removed].map((p) => live.get(p)!.dataFile),
          dangling.map((e) => e.dataFile),
          addedDataFiles,
        );
        return addSnapshot(current, {
          snapshotId,
          manifestList: listPath,
          summary: snapshotSummary(operation, changes, parent?.summary, options.snapshotProperties),
          timestampMs: BigInt(Date.now()),
        });
      },
      { maxAttempts: options.maxCommitAttempts },
    );
    const keep = new Set(addedDataFiles.map((f) => f.filePath));
    if (lastAttempt !== undefined) {
      keep.add(lastAttempt.listPath);
      for (const m of lastAttempt.manifests) keep.add(m.manifestPath);
    }
    await written.deleteAllBut(io, keep);
    return {
      snapshotId,
      sequenceNumber,
      operation,
      metadataLocation: loaded.metadataLocation,
      deletedRows,
      addedRows: BigInt(newRowCount),
      removedDataFiles: [...removed],
      rewrittenDataFiles: rewritten,
      addedDataFiles,
      removedDeleteFiles,
      untouchedDataFiles: untouched,
      attempts,
    };
  } catch (err) {
    // After an unknown outcome the table may reference the files; orphan removal reclaims them otherwise.
    if (!(err instanceof CommitStateUnknownError)) await written.deleteAllBut(io, new Set());
    throw err;
  }
}

function tuning(options: RowLevelWriteOptions): ParquetWriteTuning & { maxRowsPerFile?: number } {
  return {
    targetRowGroupBytes: options.targetRowGroupBytes,
    maxRowGroupRows: options.maxRowGroupRows,
    integerEncoding: options.integerEncoding,
    parallelism: options.parallelism,
    maxRowsPerFile: options.maxRowsPerFile,
  };
}

/**
 * Whether a data file may hold rows the write covers: for a filter, by partition projection and column metrics;
 * for a dynamic overwrite, by being in a replaced partition.
 */
function coveredRowsTest(
  metadata: TableMetadata,
  schema: Schema,
  bound: BoundExpression | undefined,
  replacedPartitions: ReadonlySet<string> | undefined,
): (file: DataFile) => boolean {
  if (bound === undefined) {
    return (file) => replacedPartitions?.has(partitionKey(file.specId, file.partition)) ?? false;
  }
  const projections = new Map<number, BoundExpression | undefined>();
  return (file) => {
    if (!projections.has(file.specId)) {
      const spec = metadata.partitionSpecs.find((s) => s.specId === file.specId);
      projections.set(file.specId, spec ? projectInclusive(bound, spec, schema) : undefined);
    }
    const projection = projections.get(file.specId);
    const partitionOk = projection === undefined || partitionMightMatch(projection, file.partition);
    return partitionOk && metricsMightMatch(bound, file);
  };
}

/**
 * The commit-time checks (Java's `validateDataFilesExist`, `validateNoNewDeletesForDataFiles` and, for
 * serializable isolation, `validateNoConflictingData`), against the fresh live entries.
 */
async function validateRowLevelWrite(
  live: ReadonlyMap<string, ManifestEntry>,
  context: {
    removed: ReadonlySet<string>;
    removedPartitions: ReadonlySet<string>;
    startSequenceNumber: bigint;
    targetsOf: (file: DataFile) => Promise<Set<string>>;
    table: string;
    mightHoldCoveredRows: ((file: DataFile) => boolean) | undefined;
  },
): Promise<void> {
  for (const path of context.removed) {
    const entry = live.get(path);
    if (entry === undefined || entry.dataFile.content !== 'data') {
      throw new RowLevelConflictError(
        context.table,
        `data file ${path} was removed by a concurrent commit while it was being rewritten`,
      );
    }
  }
  for (const entry of live.values()) {
    if ((entry.fileSequenceNumber ?? 0n) <= context.startSequenceNumber) continue;
    const file = entry.dataFile;
    if (file.content === 'position-deletes') {
      if (!mayReferenceAny(file, context.removed)) continue;
      for (const t of await context.targetsOf(file)) {
        if (context.removed.has(t)) {
          throw new RowLevelConflictError(
            context.table,
            `a concurrent commit deleted rows (${file.filePath}) of data file ${t}, which this write rewrites`,
          );
        }
      }
    } else if (file.content === 'equality-deletes') {
      if (file.partition.length === 0 || context.removedPartitions.has(partitionKey(file.specId, file.partition))) {
        throw new RowLevelConflictError(
          context.table,
          `a concurrent commit added equality deletes (${file.filePath}) that may apply to rewritten files`,
        );
      }
    } else if (context.mightHoldCoveredRows?.(file)) {
      throw new RowLevelConflictError(
        context.table,
        `a concurrent commit added data file ${file.filePath} that may hold rows this write covers`,
      );
    }
  }
}

function rowLevelChanges(
  removedData: readonly DataFile[],
  removedDeletes: readonly DataFile[],
  addedData: readonly DataFile[],
): SnapshotChanges {
  const sum = (files: readonly DataFile[], pick: (f: DataFile) => bigint): bigint =>
    files.reduce((n, f) => n + pick(f), 0n);
  const positional = removedDeletes.filter((f) => f.content === 'position-deletes');
  const equality = removedDeletes.filter((f) => f.content === 'equality-deletes');
  return {
    ...noChanges(),
    addedDataFiles: addedData.length,
    addedRecords: sum(addedData, (f) => f.recordCount),
    addedFilesSize: sum(addedData, (f) => f.fileSizeInBytes),
    removedDataFiles: removedData.length,
    removedRecords: sum(removedData, (f) => f.recordCount),
    removedFilesSize: sum([...removedData, ...removedDeletes], (f) => f.fileSizeInBytes),
    removedPositionDeleteFiles: positional.length,
    removedPositionDeletes: sum(positional, (f) => f.recordCount),
    removedEqualityDeleteFiles: equality.length,
    removedEqualityDeletes: sum(equality, (f) => f.recordCount),
  };
}
