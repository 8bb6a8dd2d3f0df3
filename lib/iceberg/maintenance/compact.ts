/**
 * Compaction (Java's `RewriteDataFiles` with the bin-pack strategy): per partition, small data files and data files
 * with row-level deletes are read through the scan path (deletes applied) and written again as fewer, larger files,
 * committed as one `replace` snapshot. The old files stay in older snapshots, so time travel keeps working until
 * those snapshots expire.
 *
 * Sequence numbers follow Java's `use-starting-sequence-number`: the rewritten files get the data sequence number
 * of the snapshot the compaction started from (S), not the commit's. Every delete the rewrite applied has a
 * sequence number ≤ S, so none of them applies again to the new files; every delete committed after the start has
 * a higher one, so an equality delete committed meanwhile still removes its rows from the new files.
 *
 * A position delete committed meanwhile (a CDC merge commits some every second) names an old file by path, so the
 * commit **rebases** it instead of failing: the rewrite writes each group's surviving rows in order and so knows,
 * for every rewritten file, where each of its rows went (old file + position → new file + position). At commit
 * time, the position deletes that snapshots committed since S added against rewritten files, and the rewritten
 * files that such snapshots removed altogether, are translated into position deletes against the new files and
 * added by the same `replace` snapshot (sequence number > S, so they apply to the new files). Delete files that
 * only named rewritten files then apply to nothing and are removed as dangling. This runs on every commit
 * attempt, against the fresh metadata under the compare-and-swap, so a merge that commits between two attempts is
 * rebased too. The only case left as a conflict: a rewritten file that had equality deletes applied (its rows'
 * new positions are not known from positions alone), when a concurrent commit deletes rows from it.
 */
import type { FileIO } from '../../storage/file-io.js';
import type { TableIdentifierInput } from '../catalog/identifier.js';
import { randomUUID } from 'node:crypto';
import { dataDirectory, writeGroupFiles } from '../append.js';
import type { DataFile, ManifestEntry, PartitionValue } from '../data-file.js';
import type { ManifestFile } from '../manifest-list.js';
import { currentSchema, currentSnapshot, newSnapshotId, type TableMetadata } from '../metadata-json.js';
import { partitionPath } from '../partition-spec.js';
import { writePositionDeleteFile, type ParquetWriteTuning } from '../parquet/writer.js';
import {
  DeleteFileCache,
  deletedPositions,
  liveEntries,
  planFiles,
  readPositionDeleteFile,
  readTask,
  type FileScanTask,
} from '../scan.js';
import { noChanges, type SnapshotChanges } from '../table-update.js';
import { InvalidMaintenanceOptionsError, MaintenanceConflictError } from './errors.js';
import { commitReplaceSnapshot, manifestsWithout, writeSnapshotManifest, WrittenFiles } from './replace-commit.js';
import {
  integerProperty,
  mayReferenceAny,
  partitionKey,
  positionDeleteTargetCache,
  tableDisplayName,
  type MaintenanceCatalog,
} from './table-files.js';

/** Table property for the size of the files compaction writes (Java's). */
export const TARGET_FILE_SIZE_PROPERTY = 'write.target-file-size-bytes';

/** Java's default for {@link TARGET_FILE_SIZE_PROPERTY}: 512 MiB. */
export const DEFAULT_TARGET_FILE_SIZE_BYTES = 512 * 1024 * 1024;

/** Options of {@link compactTable}. */
export interface CompactOptions extends ParquetWriteTuning {
  /**
   * The size output files aim at; data files below it are small and may be merged. The row count per output file
   * is estimated from the input files' bytes per row.
   * @default the table property `write.target-file-size-bytes`, else 536870912 (512 MiB)
   */
  targetFileSizeBytes?: number;
  /**
   * A partition's small files are merged only when there are at least this many of them, or when together they
   * reach the target size. Files with deletes are rewritten regardless.
   * @default 5
   */
  minInputFiles?: number;
  /** Custom snapshot summary properties. @default none */
  snapshotProperties?: Record<string, string>;
  /**
   * Commit attempts before a lost compare-and-swap race reaches the caller. Each attempt only reads what was
   * committed since the previous one, so attempts after the first are short. @default 10
   */
  maxCommitAttempts?: number;
}

/** What a compaction did. */
export interface CompactionResult {
  /** The `replace` snapshot; undefined when nothing needed compacting (then nothing was committed). */
  snapshotId: bigint | undefined;
  /** The commit's sequence number; undefined when nothing was committed. */
  sequenceNumber: bigint | undefined;
  /** The data sequence number the new files carry: the starting snapshot's. Undefined when nothing was committed. */
  dataSequenceNumber: bigint | undefined;
  /** The table's metadata file after the operation. */
  metadataLocation: string;
  /** Data files removed from the table (rewritten). */
  rewrittenDataFiles: string[];
  /** Data files added. */
  addedDataFiles: DataFile[];
  /** Delete files removed because no live data file is left for them to apply to. */
  removedDeleteFiles: string[];
  /** Partitions (per spec) that were rewritten. */
  rewrittenPartitions: number;
  /** Live rows written to the new files. */
  rewrittenRows: bigint;
  /** Commit attempts (0 when nothing was committed). */
  attempts: number;
  /**
   * Position-delete files the commit added against the new files: the deletes that commits since the start made
   * to rewritten files, carried over (see the module comment). Empty when nothing was committed meanwhile.
   */
  rebasedDeleteFiles: DataFile[];
  /** Rows those files delete. */
  rebasedDeletes: bigint;
  /** The concurrent position-delete files that were carried over (removed when they named only rewritten files). */
  rebasedFrom: string[];
  /** Rewritten files that a concurrent commit removed, whose rows were deleted from the new files too. */
  rebasedRemovedFiles: string[];
}

/** The files of one partition to rewrite together. */
interface RewriteGroup {
  specId: number;
  tasks: FileScanTask[];
}

/**
 * Compacts the table's current snapshot: in each partition, rewrites every data file that has position or
 * equality deletes applied to it, together with the partition's small files when there are at least
 * `minInputFiles` of them (or they fill an output file), into files of about `targetFileSizeBytes`. One `replace`
 * snapshot removes the old files (DELETED entries keeping their sequence numbers), adds the new ones, and removes
 * delete files that no longer apply to any live data file. Rows are unchanged.
 *
 * Each commit attempt rebases onto the fresh metadata: position deletes committed since the start against
 * rewritten files, and rewritten files removed since, become position deletes against the new files in the same
 * snapshot, so the table reads exactly as its parent did. Concurrent appends, and equality deletes (which keep
 * applying, see the module comment), need nothing. A concurrent writer never has to stop for a compaction.
 *
 * @throws MaintenanceConflictError (retryable) only when a concurrent commit deleted rows from, or removed, a
 *   rewritten file that had equality deletes applied; nothing is committed and the new files are deleted again.
 * @throws InvalidMaintenanceOptionsError for a non-positive target size or `minInputFiles` below 1.
 * @throws CommitConflictError when every attempt lost the compare-and-swap race.
 */
export async function compactTable(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: CompactOptions = {},
): Promise<CompactionResult> {
  const { metadata, metadataLocation } = await catalog.loadTable(table);
  const targetBytes =
    options.targetFileSizeBytes ?? integerProperty(metadata, TARGET_FILE_SIZE_PROPERTY, DEFAULT_TARGET_FILE_SIZE_BYTES);
  if (!Number.isFinite(targetBytes) || targetBytes <= 0) {
    throw new InvalidMaintenanceOptionsError('targetFileSizeBytes', `must be a positive number, got ${targetBytes}`);
  }
  const minInputFiles = options.minInputFiles ?? 5;
  if (!Number.isInteger(minInputFiles) || minInputFiles < 1) {
    throw new InvalidMaintenanceOptionsError('minInputFiles', `must be an integer of at least 1, got ${minInputFiles}`);
  }
  const nothing: CompactionResult = {
    snapshotId: undefined,
    sequenceNumber: undefined,
    dataSequenceNumber: undefined,
    metadataLocation,
    rewrittenDataFiles: [],
    addedDataFiles: [],
    removedDeleteFiles: [],
    rewrittenPartitions: 0,
    rewrittenRows: 0n,
    attempts: 0,
    rebasedDeleteFiles: [],
    rebasedDeletes: 0n,
    rebasedFrom: [],
    rebasedRemovedFiles: [],
  };
  const start = currentSnapshot(metadata);
  if (start === undefined) return nothing;
  const groups = selectRewriteGroups(await planFiles(io, metadata, { snapshotId: start.snapshotId }), {
    targetBytes,
    minInputFiles,
  });
  if (groups.length === 0) return nothing;

  const startSequenceNumber = start.sequenceNumber;
  const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
  const written = new WrittenFiles();
  const addedDataFiles: DataFile[] = [];
  const addedManifests: ManifestFile[] = [];
  const rowMap = new RowMap();
  const deleteCache = new DeleteFileCache(io);
  let rewrittenRows = 0n;
  try {
    for (const group of groups) {
      const out = await rewriteGroup(written.tracking(io), metadata, group, targetBytes, options, rowMap, deleteCache);
      addedDataFiles.push(...out.files);
      rewrittenRows += out.rows;
    }
    for (const specId of new Set(addedDataFiles.map((f) => f.specId))) {
      const entries = addedDataFiles
        .filter((f) => f.specId === specId)
        .map((dataFile): ManifestEntry => ({
          status: 'added',
          snapshotId,
          // The starting snapshot's data sequence number (see the module comment); the file sequence number is
          // still inherited from the commit, as for any added file.
          sequenceNumber: startSequenceNumber,
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

  const replaced = new Set(groups.flatMap((g) => g.tasks.map((t) => t.dataFile.filePath)));
  // Delete files the rewrite applied; once their data files are gone they may apply to nothing.
  const appliedDeletes = new Set(
    groups.flatMap((g) => g.tasks.flatMap((t) => [...t.positionDeletes, ...t.equalityDeletes].map((d) => d.filePath))),
  );
  const targetsOf = positionDeleteTargetCache(io);
  const rewrittenManifests = new Map<string, Promise<ManifestFile>>();
  const tableName = tableDisplayName(table);
  const rebaser = new DeleteRebaser(
    io,
    metadata,
    rowMap,
    replaced,
    startSequenceNumber,
    snapshotId,
    written,
    tableName,
  );
  let removedDeleteFiles: string[] = [];
  let rebased: RebasedDeletes = NO_REBASE;

  const { loaded, sequenceNumber, attempts } = await commitReplaceSnapshot(catalog, io, table, {
    snapshotId,
    operation: 'compaction',
    written,
    keepOnSuccess: new Set(addedDataFiles.map((f) => f.filePath)),
    maxAttempts: options.maxCommitAttempts ?? 10,
    build: async (current, parent) => {
      const manifests = await liveEntries(io, current, parent);
      const live = new Map<string, ManifestEntry>();
      for (const { entries } of manifests) for (const entry of entries) live.set(entry.dataFile.filePath, entry);
      // Deletes committed since the start against rewritten files, carried over to the new files.
      rebased = await rebaser.rebase(live);
      const dangling = await danglingDeleteFiles(
        live,
        new Set([...appliedDeletes, ...rebased.carriedFrom.map((e) => e.dataFile.filePath)]),
        replaced,
        addedDataFiles,
        { dataSequenceNumber: startSequenceNumber, targetsOf },
      );
      removedDeleteFiles = dangling.map((e) => e.dataFile.filePath);
      const removed = new Set([...replaced, ...removedDeleteFiles]);

      const next = await manifestsWithout(
        io,
        current,
        manifests,
        removed,
        [...addedManifests, ...rebased.manifests],
        snapshotId,
        written,
        rewrittenManifests,
      );
      const stillLive = [...replaced].filter((p) => live.get(p)?.dataFile.content === 'data');
      return {
        manifests: next,
        changes: compactionChanges(
          stillLive.map((p) => live.get(p)!.dataFile),
          dangling.map((e) => e.dataFile),
          addedDataFiles,
          rebased.files,
        ),
        keep: rebased.files.map((f) => f.filePath),
        ...(options.snapshotProperties
          ? { properties: rebasedProperties(options.snapshotProperties, start.summary, parent.summary) }
          : {}),
      };
    },
  });
  return {
    snapshotId,
    sequenceNumber,
    dataSequenceNumber: startSequenceNumber,
    metadataLocation: loaded.metadataLocation,
    rewrittenDataFiles: [...replaced],
    addedDataFiles,
    removedDeleteFiles,
    rewrittenPartitions: groups.length,
    rewrittenRows,
    attempts,
    rebasedDeleteFiles: rebased.files,
    rebasedDeletes: rebased.rows,
    rebasedFrom: rebased.carriedFrom.map((e) => e.dataFile.filePath),
    rebasedRemovedFiles: rebased.removedSources,
  };
}

/**
 * Picks, per partition, the files to rewrite: every file with deletes (plus the partition's small files), or,
 * without deletes, the small files when there are at least `minInputFiles` of them or they add up to the target
 * size. Merging fewer small files would churn the table for little gain.
 */
function selectRewriteGroups(
  tasks: readonly FileScanTask[],
  limits: { targetBytes: number; minInputFiles: number },
): RewriteGroup[] {
  const byPartition = new Map<string, RewriteGroup>();
  for (const task of tasks) {
    const key = partitionKey(task.dataFile.specId, task.dataFile.partition);
    let group = byPartition.get(key);
    if (group === undefined) {
      group = { specId: task.dataFile.specId, tasks: [] };
      byPartition.set(key, group);
    }
    group.tasks.push(task);
  }
  const selected: RewriteGroup[] = [];
  for (const group of byPartition.values()) {
    const withDeletes = group.tasks.filter((t) => t.positionDeletes.length + t.equalityDeletes.length > 0);
    const small = group.tasks.filter(
      (t) => !withDeletes.includes(t) && Number(t.dataFile.fileSizeInBytes) < limits.targetBytes,
    );
    const smallBytes = small.reduce((n, t) => n + Number(t.dataFile.fileSizeInBytes), 0);
    const mergeSmall = small.length >= limits.minInputFiles || (small.length >= 2 && smallBytes >= limits.targetBytes);
    // Small files ride along with a rewrite forced by deletes: the partition is being rewritten anyway.
    if (withDeletes.length > 0) selected.push({ specId: group.specId, tasks: [...withDeletes, ...small] });
    else if (mergeSmall) selected.push({ specId: group.specId, tasks: small });
  }
  return selected;
}

/**
 * Reads a group's live rows (deletes applied) and writes them again under the group's partition spec, in files of
 * about `targetBytes`. Rows are buffered until a file's worth is ready, so memory holds about one output file.
 * Rows keep their order, so `rowMap` learns where each input file's rows went.
 */
async function rewriteGroup(
  io: FileIO,
  metadata: TableMetadata,
  group: RewriteGroup,
  targetBytes: number,
  tuning: ParquetWriteTuning,
  rowMap: RowMap,
  deleteCache: DeleteFileCache,
): Promise<{ files: DataFile[]; rows: bigint }> {
  const schema = currentSchema(metadata);
  const inputBytes = group.tasks.reduce((n, t) => n + Number(t.dataFile.fileSizeInBytes), 0);
  const inputRows = group.tasks.reduce((n, t) => n + Number(t.dataFile.recordCount), 0);
  const bytesPerRow = inputRows > 0 ? Math.max(inputBytes / inputRows, 1) : 1;
  const rowsPerFile = Math.max(1, Math.floor(targetBytes / bytesPerRow));
  // Writing with the group's spec as the default keeps the files in their partition even after the table's spec
  // changed, so partition-scoped deletes committed meanwhile still find them.
  const writeMetadata: TableMetadata = { ...metadata, defaultSpecId: group.specId };
  const partition = group.tasks[0]!.dataFile.partition;
  const pending = new Map<number, unknown[]>(schema.fields.map((f) => [f.id, []]));
  let pendingRows = 0;
  let flushedRows = 0;
  let rows = 0n;
  const files: DataFile[] = [];
  const outputs: OutputRows[] = [];
  const flush = async (count: number): Promise<void> => {
    const columns = new Map<number, unknown[]>();
    for (const [id, values] of pending) columns.set(id, values.splice(0, count));
    pendingRows -= count;
    rows += BigInt(count);
    const base = flushedRows;
    flushedRows += count;
    const placed: { path: string; first: number; rows: number }[] = [];
    const out = await writeGroupFiles(
      io,
      writeMetadata,
      [{ partition, rows: Array.from({ length: count }, (_, i) => i) }],
      {
        // The writer slices the group into consecutive runs of at most rowsPerFile rows.
        columnsOf: (slice) =>
          slice.length === count
            ? columns
            : new Map(
                [...columns].map(([id, values]) => [id, values.slice(slice[0]!, slice[0]! + slice.length)] as const),
              ),
        maxRowsPerFile: rowsPerFile,
        writer: {
          targetRowGroupBytes: tuning.targetRowGroupBytes,
          maxRowGroupRows: tuning.maxRowGroupRows,
          integerEncoding: tuning.integerEncoding,
          parallelism: tuning.parallelism,
        },
        onFile: (path, slice) => placed.push({ path, first: base + (slice[0] ?? 0), rows: slice.length }),
      },
    );
    const byPath = new Map(out.map((f) => [f.filePath, f]));
    for (const p of placed) outputs.push({ file: byPath.get(p.path)!, firstOrdinal: p.first, rows: p.rows });
    files.push(...out);
  };
  let ordinal = 0;
  for (const task of group.tasks) {
    const firstOrdinal = ordinal;
    for await (const batch of readTask(io, task, schema, { deleteCache })) {
      for (const [id, values] of batch.columns) {
        let column = pending.get(id);
        if (column === undefined) pending.set(id, (column = []));
        for (const value of values) column.push(value);
      }
      pendingRows += batch.rowCount;
      ordinal += batch.rowCount;
      if (pendingRows >= rowsPerFile) await flush(pendingRows - (pendingRows % rowsPerFile));
      // Let the worker's other activities (a merge beside the compaction) run between row groups.
      await new Promise((resolve) => setImmediate(resolve));
    }
    rowMap.addSource(
      task,
      firstOrdinal,
      ordinal - firstOrdinal,
      outputs,
      await positionsDeletedAtStart(io, task, deleteCache),
    );
  }
  if (pendingRows > 0) await flush(pendingRows);
  return { files, rows };
}

/**
 * The positions of a task's data file that its position deletes removed, sorted; `undefined` when equality deletes
 * applied too, so that which rows survived is not known from positions alone.
 */
async function positionsDeletedAtStart(
  io: FileIO,
  task: FileScanTask,
  deleteCache: DeleteFileCache,
): Promise<Float64Array | undefined> {
  if (task.equalityDeletes.length > 0) return undefined;
  const deleted = await deletedPositions(io, task.positionDeletes, task.dataFile.filePath, deleteCache);
  const records = task.dataFile.recordCount;
  return Float64Array.from([...deleted].filter((p) => p < records).map(Number)).sort();
}

/** A run of a group's output rows (in the group's row order) that went to one new file. */
interface OutputRows {
  file: DataFile;
  /** The ordinal, among the group's surviving rows, of the file's first row. */
  firstOrdinal: number;
  rows: number;
}

/** Where the surviving rows of one rewritten file went. */
interface SourceRows {
  /** The ordinal of its first surviving row among its group's rows. */
  firstOrdinal: number;
  /** How many of its rows survived (were written again). */
  rows: number;
  /** The group's output files. */
  outputs: readonly OutputRows[];
  /** The positions deleted at the start, sorted; `undefined` when the rows cannot be mapped (equality deletes). */
  deleted: Float64Array | undefined;
}

/** A row's new home. */
interface NewPosition {
  file: DataFile;
  pos: bigint;
}

/**
 * For each rewritten data file, where each of its rows went. The rewrite reads a file's rows in position order,
 * skipping the deleted ones, and writes them in the same order, so the k-th surviving row of a file is the group's
 * row `firstOrdinal + k`, and an ordinal falls into exactly one output file's run.
 */
export class RowMap {
  private readonly sources = new Map<string, SourceRows>();

  addSource(
    task: FileScanTask,
    firstOrdinal: number,
    rows: number,
    outputs: readonly OutputRows[],
    deleted: Float64Array | undefined,
  ): void {
    // Every surviving row must have been read: otherwise positions do not tell rows apart, and the file is unmapped.
    const consistent = deleted !== undefined && Number(task.dataFile.recordCount) - deleted.length === rows;
    this.sources.set(task.dataFile.filePath, {
      firstOrdinal,
      rows,
      outputs,
      deleted: consistent ? deleted : undefined,
    });
  }

  /** Whether the rows of a rewritten file can be followed to the new files. */
  mapped(path: string): boolean {
    return this.sources.get(path)?.deleted !== undefined;
  }

  /**
   * Where row `pos` of rewritten file `path` went; `undefined` when the row was already deleted at the start (it
   * was not written again) or the position is past the file's end.
   */
  locate(path: string, pos: bigint): NewPosition | undefined {
    const source = this.sources.get(path);
    if (source?.deleted === undefined) return undefined;
    const position = Number(pos);
    const before = lowerBound(source.deleted, position);
    if (before < source.deleted.length && source.deleted[before] === position) return undefined;
    const k = position - before;
    if (k < 0 || k >= source.rows) return undefined;
    return this.at(source.outputs, source.firstOrdinal + k);
  }

  /** The new positions of every row of a rewritten file that was written again. */
  *allRows(path: string): Generator<NewPosition> {
    const source = this.sources.get(path);
    if (source === undefined) return;
    for (let k = 0; k < source.rows; k++) yield this.at(source.outputs, source.firstOrdinal + k);
  }

  private at(outputs: readonly OutputRows[], ordinal: number): NewPosition {
    let lo = 0;
    let hi = outputs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (outputs[mid]!.firstOrdinal <= ordinal) lo = mid;
      else hi = mid - 1;
    }
    const out = outputs[lo]!;
    return { file: out.file, pos: BigInt(ordinal - out.firstOrdinal) };
  }
}

/** The index of the first element of a sorted array that is ≥ `value`. */
function lowerBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What one commit attempt carried over from the snapshots committed since the compaction started. */
interface RebasedDeletes {
  /** New position-delete files against the new data files, added by the `replace` snapshot. */
  files: DataFile[];
  /** Their manifests. */
  manifests: ManifestFile[];
  /** Rows they delete. */
  rows: bigint;
  /** The concurrent position-delete files that named rewritten files. */
  carriedFrom: ManifestEntry[];
  /** Rewritten files that a concurrent commit removed from the table (all their rows are deleted again). */
  removedSources: string[];
}

const NO_REBASE: RebasedDeletes = { files: [], manifests: [], rows: 0n, carriedFrom: [], removedSources: [] };

/**
 * Carries deletes committed after the compaction's start over to its new files (see the module comment). Reads of
 * concurrent delete files and the written translations are cached, so a retried attempt only reads what was
 * committed since the previous one.
 */
class DeleteRebaser {
  private readonly positions = new Map<string, Promise<Map<string, bigint[]>>>();
  private readonly writes = new Map<string, Promise<{ files: DataFile[]; manifests: ManifestFile[] }>>();

  constructor(
    private readonly io: FileIO,
    private readonly metadata: TableMetadata,
    private readonly rowMap: RowMap,
    private readonly replaced: ReadonlySet<string>,
    private readonly startSequenceNumber: bigint,
    private readonly snapshotId: bigint,
    private readonly written: WrittenFiles,
    private readonly table: string,
  ) {}

  /**
   * From the fresh live entries: the rows deleted since the start from rewritten files (by position deletes added
   * since, or by removing a rewritten file outright), as position-delete files against the new files.
   *
   * @throws MaintenanceConflictError when such a delete hits a rewritten file whose rows cannot be followed.
   */
  async rebase(live: ReadonlyMap<string, ManifestEntry>): Promise<RebasedDeletes> {
    const byFile = new Map<string, { file: DataFile; positions: Set<bigint> }>();
    const add = (at: NewPosition): void => {
      let target = byFile.get(at.file.filePath);
      if (target === undefined) byFile.set(at.file.filePath, (target = { file: at.file, positions: new Set() }));
      target.positions.add(at.pos);
    };
    const removedSources: string[] = [];
    for (const path of this.replaced) {
      if (live.get(path)?.dataFile.content === 'data') continue;
      this.requireMapped(path, 'a concurrent commit removed it');
      removedSources.push(path);
      for (const at of this.rowMap.allRows(path)) add(at);
    }
    const carriedFrom: ManifestEntry[] = [];
    for (const entry of live.values()) {
      // The file sequence number is always the adding commit's, so it tells deletes committed after the start apart.
      if (entry.dataFile.content !== 'position-deletes') continue;
      if ((entry.fileSequenceNumber ?? 0n) <= this.startSequenceNumber) continue;
      // Upserts add position deletes on every commit; the path bounds rule most of them out without a read.
      if (!mayReferenceAny(entry.dataFile, this.replaced)) continue;
      const path = entry.dataFile.filePath;
      let read = this.positions.get(path);
      if (read === undefined) this.positions.set(path, (read = readPositionDeleteFile(this.io, path)));
      let hit = false;
      for (const [target, positions] of await read) {
        if (!this.replaced.has(target)) continue;
        hit = true;
        this.requireMapped(target, `position delete file "${path}" deletes rows of it`);
        for (const pos of positions) {
          const at = this.rowMap.locate(target, pos);
          if (at !== undefined) add(at);
        }
      }
      if (hit) carriedFrom.push(entry);
    }
    if (byFile.size === 0) return { ...NO_REBASE, carriedFrom, removedSources };
    const key = [...carriedFrom.map((e) => e.dataFile.filePath), '|', ...removedSources].sort().join('\n');
    let write = this.writes.get(key);
    if (write === undefined) this.writes.set(key, (write = this.write([...byFile.values()])));
    const { files, manifests } = await write;
    return {
      files,
      manifests,
      rows: files.reduce((n, f) => n + f.recordCount, 0n),
      carriedFrom,
      removedSources,
    };
  }

  private requireMapped(path: string, why: string): void {
    if (this.rowMap.mapped(path)) return;
    throw new MaintenanceConflictError(
      this.table,
      'compaction',
      `data file "${path}", which the compaction rewrites with equality deletes applied, changed since it started ` +
        `(${why}), and its rows' new positions are not known`,
    );
  }

  /** One position-delete file per new data file (so `referenced_data_file` is set), and one manifest per spec. */
  private async write(
    targets: { file: DataFile; positions: Set<bigint> }[],
  ): Promise<{ files: DataFile[]; manifests: ManifestFile[] }> {
    const schema = currentSchema(this.metadata);
    const writeId = randomUUID();
    const files: DataFile[] = [];
    let index = 0;
    for (const { file, positions } of targets) {
      const sorted = [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const out = await writePositionDeleteFile({ filePaths: sorted.map(() => file.filePath), positions: sorted });
      const spec = this.metadata.partitionSpecs.find((s) => s.specId === file.specId);
      const dir = spec && spec.fields.length > 0 ? `/${partitionPath(spec, schema, file.partition)}` : '';
      const filePath = `${dataDirectory(this.metadata)}${dir}/${String(index++).padStart(5, '0')}-${writeId}-rebased-deletes.parquet`;
      this.written.add(filePath);
      await this.io.write(filePath, out.bytes);
      files.push({
        content: 'position-deletes',
        filePath,
        fileFormat: 'PARQUET',
        partition: file.partition as PartitionValue[],
        specId: file.specId,
        recordCount: out.recordCount,
        fileSizeInBytes: BigInt(out.bytes.length),
        ...out.metrics,
        ...(out.referencedDataFile ? { referencedDataFile: out.referencedDataFile } : {}),
      });
    }
    const manifests: ManifestFile[] = [];
    for (const specId of new Set(files.map((f) => f.specId))) {
      const entries = files
        .filter((f) => f.specId === specId)
        .map((dataFile): ManifestEntry => ({
          status: 'added',
          snapshotId: this.snapshotId,
          // Inherited from the commit: above the new data files' (the start's), so these deletes apply to them.
          sequenceNumber: null,
          fileSequenceNumber: null,
          dataFile,
        }));
      manifests.push(
        await writeSnapshotManifest(
          this.io,
          this.metadata,
          { specId, content: 'deletes', entries, snapshotId: this.snapshotId },
          this.written,
        ),
      );
    }
    return { files, manifests };
  }
}

/**
 * The caller's summary properties for a commit on `parent`. A property the caller copied from the starting
 * snapshot (same value) that a concurrent commit changed since takes the newer value: a CDC watermark in the
 * summary must never go back because a compaction committed after the merge had moved it on.
 */
export function rebasedProperties(
  properties: Readonly<Record<string, string>>,
  startSummary: Readonly<Record<string, string>>,
  parentSummary: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = { ...properties };
  for (const [key, value] of Object.entries(properties)) {
    const now = parentSummary[key];
    if (startSummary[key] === value && now !== undefined && now !== value) out[key] = now;
  }
  return out;
}

/**
 * Of the delete files the rewrite applied (and that are still live), those that apply to no data file the table
 * will hold after the commit: the fresh live data files minus the replaced ones, plus the new files at
 * `dataSequenceNumber`. Applicability follows scan planning: a position delete applies to the files it names with a
 * data sequence number ≤ its own; an equality delete to files of its partition (any, when unpartitioned) with a
 * lower one.
 */
export async function danglingDeleteFiles(
  live: ReadonlyMap<string, ManifestEntry>,
  appliedDeletes: ReadonlySet<string>,
  replaced: ReadonlySet<string>,
  added: readonly DataFile[],
  context: { dataSequenceNumber: bigint; targetsOf: (file: DataFile) => Promise<Set<string>> },
): Promise<ManifestEntry[]> {
  const seqByPath = new Map<string, bigint>();
  const minSeqByPartition = new Map<string, bigint>();
  let minSeq: bigint | undefined;
  const note = (file: DataFile, seq: bigint): void => {
    seqByPath.set(file.filePath, seq);
    const key = partitionKey(file.specId, file.partition);
    const before = minSeqByPartition.get(key);
    if (before === undefined || seq < before) minSeqByPartition.set(key, seq);
    if (minSeq === undefined || seq < minSeq) minSeq = seq;
  };
  for (const entry of live.values()) {
    if (entry.dataFile.content === 'data' && !replaced.has(entry.dataFile.filePath)) {
      note(entry.dataFile, entry.sequenceNumber ?? 0n);
    }
  }
  for (const file of added) note(file, context.dataSequenceNumber);

  const dangling: ManifestEntry[] = [];
  for (const path of appliedDeletes) {
    const entry = live.get(path);
    if (entry === undefined) continue;
    const seq = entry.sequenceNumber ?? 0n;
    let applies: boolean;
    if (entry.dataFile.content === 'position-deletes') {
      const targets = await context.targetsOf(entry.dataFile);
      applies = [...targets].some((t) => {
        const dataSeq = seqByPath.get(t);
        return dataSeq !== undefined && dataSeq <= seq;
      });
    } else {
      const scopeMin =
        entry.dataFile.partition.length === 0
          ? minSeq
          : minSeqByPartition.get(partitionKey(entry.dataFile.specId, entry.dataFile.partition));
      applies = scopeMin !== undefined && scopeMin < seq;
    }
    if (!applies) dangling.push(entry);
  }
  return dangling;
}

function compactionChanges(
  removedData: readonly DataFile[],
  removedDeletes: readonly DataFile[],
  addedData: readonly DataFile[],
  addedDeletes: readonly DataFile[] = [],
): SnapshotChanges {
  const sum = (files: readonly DataFile[], pick: (f: DataFile) => bigint): bigint =>
    files.reduce((n, f) => n + pick(f), 0n);
  const positional = removedDeletes.filter((f) => f.content === 'position-deletes');
  const equality = removedDeletes.filter((f) => f.content === 'equality-deletes');
  return {
    ...noChanges(),
    addedDataFiles: addedData.length,
    addedRecords: sum(addedData, (f) => f.recordCount),
    addedFilesSize: sum([...addedData, ...addedDeletes], (f) => f.fileSizeInBytes),
    addedPositionDeleteFiles: addedDeletes.length,
    addedPositionDeletes: sum(addedDeletes, (f) => f.recordCount),
    removedDataFiles: removedData.length,
    removedRecords: sum(removedData, (f) => f.recordCount),
    removedFilesSize: sum([...removedData, ...removedDeletes], (f) => f.fileSizeInBytes),
    removedPositionDeleteFiles: positional.length,
    removedPositionDeletes: sum(positional, (f) => f.recordCount),
    removedEqualityDeleteFiles: equality.length,
    removedEqualityDeletes: sum(equality, (f) => f.recordCount),
  };
}
