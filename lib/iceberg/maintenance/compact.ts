/**
 * Compaction (Java's `RewriteDataFiles` with the bin-pack strategy): per partition, small data files and data files
 * with row-level deletes are read through the scan path (deletes applied) and written again as fewer, larger files,
 * committed as one `replace` snapshot. The old files stay in older snapshots, so time travel keeps working until
 * those snapshots expire.
 *
 * Sequence numbers follow Java's `use-starting-sequence-number`: the rewritten files get the data sequence number
 * of the snapshot the compaction started from (S), not the commit's. Every delete the rewrite applied has a
 * sequence number ≤ S, so none of them applies again to the new files; every delete committed after the start has
 * a higher one, so an equality delete committed meanwhile still removes its rows from the new files. A position
 * delete committed meanwhile names an old file by path and would be lost, so the commit fails on one instead.
 */
import type { FileIO } from '../../storage/file-io.js';
import type { TableIdentifierInput } from '../catalog/identifier.js';
import { writeDataFiles } from '../append.js';
import type { DataFile, ManifestEntry } from '../data-file.js';
import type { ManifestFile } from '../manifest-list.js';
import { currentSchema, currentSnapshot, newSnapshotId, type TableMetadata } from '../metadata-json.js';
import type { ParquetWriteTuning } from '../parquet/writer.js';
import { liveEntries, planFiles, readTask, type FileScanTask } from '../scan.js';
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
  /** Commit attempts before a lost compare-and-swap race reaches the caller. @default 5 */
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
 * Each commit attempt re-validates against the fresh metadata: every rewritten file must still be live, and no
 * position delete added since the start may name one of them. Concurrent appends, and equality deletes (which keep
 * applying, see the module comment), do not conflict.
 *
 * @throws MaintenanceConflictError (retryable) when a concurrent commit removed a file being rewritten or added a
 *   position delete for one; nothing is committed and the new files are deleted again.
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
  let rewrittenRows = 0n;
  try {
    for (const group of groups) {
      const out = await rewriteGroup(written.tracking(io), metadata, group, targetBytes, options);
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
  let removedDeleteFiles: string[] = [];

  const { loaded, sequenceNumber, attempts } = await commitReplaceSnapshot(catalog, io, table, {
    snapshotId,
    operation: 'compaction',
    written,
    keepOnSuccess: new Set(addedDataFiles.map((f) => f.filePath)),
    maxAttempts: options.maxCommitAttempts,
    build: async (current, parent) => {
      const manifests = await liveEntries(io, current, parent);
      const live = new Map<string, ManifestEntry>();
      for (const { entries } of manifests) for (const entry of entries) live.set(entry.dataFile.filePath, entry);
      await checkStillReplaceable(live, replaced, startSequenceNumber, targetsOf, tableName);
      const dangling = await danglingDeleteFiles(live, appliedDeletes, replaced, addedDataFiles, {
        dataSequenceNumber: startSequenceNumber,
        targetsOf,
      });
      removedDeleteFiles = dangling.map((e) => e.dataFile.filePath);
      const removed = new Set([...replaced, ...removedDeleteFiles]);

      const next = await manifestsWithout(
        io,
        current,
        manifests,
        removed,
        addedManifests,
        snapshotId,
        written,
        rewrittenManifests,
      );
      return {
        manifests: next,
        changes: compactionChanges(
          [...replaced].map((p) => live.get(p)!.dataFile),
          dangling.map((e) => e.dataFile),
          addedDataFiles,
        ),
        ...(options.snapshotProperties ? { properties: options.snapshotProperties } : {}),
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
 */
async function rewriteGroup(
  io: FileIO,
  metadata: TableMetadata,
  group: RewriteGroup,
  targetBytes: number,
  tuning: ParquetWriteTuning,
): Promise<{ files: DataFile[]; rows: bigint }> {
  const schema = currentSchema(metadata);
  const inputBytes = group.tasks.reduce((n, t) => n + Number(t.dataFile.fileSizeInBytes), 0);
  const inputRows = group.tasks.reduce((n, t) => n + Number(t.dataFile.recordCount), 0);
  const bytesPerRow = inputRows > 0 ? Math.max(inputBytes / inputRows, 1) : 1;
  const rowsPerFile = Math.max(1, Math.floor(targetBytes / bytesPerRow));
  // Writing with the group's spec as the default keeps the files in their partition even after the table's spec
  // changed, so partition-scoped deletes committed meanwhile still find them.
  const writeMetadata: TableMetadata = { ...metadata, defaultSpecId: group.specId };
  const pending = new Map<number, unknown[]>(schema.fields.map((f) => [f.id, []]));
  let pendingRows = 0;
  let rows = 0n;
  const files: DataFile[] = [];
  const flush = async (count: number): Promise<void> => {
    const columns = new Map<number, unknown[]>();
    for (const [id, values] of pending) columns.set(id, values.splice(0, count));
    pendingRows -= count;
    rows += BigInt(count);
    files.push(
      ...(await writeDataFiles(io, writeMetadata, {
        columns,
        rowCount: count,
        maxRowsPerFile: rowsPerFile,
        targetRowGroupBytes: tuning.targetRowGroupBytes,
        maxRowGroupRows: tuning.maxRowGroupRows,
        integerEncoding: tuning.integerEncoding,
        parallelism: tuning.parallelism,
      })),
    );
  };
  for (const task of group.tasks) {
    for await (const batch of readTask(io, task, schema)) {
      for (const [id, values] of batch.columns) {
        let column = pending.get(id);
        if (column === undefined) pending.set(id, (column = []));
        for (const value of values) column.push(value);
      }
      pendingRows += batch.rowCount;
      if (pendingRows >= rowsPerFile) await flush(pendingRows - (pendingRows % rowsPerFile));
    }
  }
  if (pendingRows > 0) await flush(pendingRows);
  return { files, rows };
}

/**
 * The commit-time validation (Java's `validateNoNewDeletesForDataFiles` with equality deletes ignored, as Java
 * does when the new files keep the starting sequence number): every file being replaced is still live, and no
 * position delete added after the start names one of them.
 */
async function checkStillReplaceable(
  live: ReadonlyMap<string, ManifestEntry>,
  replaced: ReadonlySet<string>,
  startSequenceNumber: bigint,
  targetsOf: (file: DataFile) => Promise<Set<string>>,
  table: string,
): Promise<void> {
  for (const path of replaced) {
    const entry = live.get(path);
    if (entry === undefined || entry.dataFile.content !== 'data') {
      throw new MaintenanceConflictError(
        table,
        'compaction',
        `data file "${path}" is no longer in the table (a concurrent commit removed or replaced it)`,
      );
    }
  }
  for (const entry of live.values()) {
    // The file sequence number is always the adding commit's, so it tells deletes committed after the start apart.
    const addedAfterStart = (entry.fileSequenceNumber ?? 0n) > startSequenceNumber;
    if (entry.dataFile.content !== 'position-deletes' || !addedAfterStart) continue;
    // Upserts add position deletes on every commit; the path bounds rule most of them out without a read.
    if (!mayReferenceAny(entry.dataFile, replaced)) continue;
    for (const target of await targetsOf(entry.dataFile)) {
      if (replaced.has(target)) {
        throw new MaintenanceConflictError(
          table,
          'compaction',
          `position delete file "${entry.dataFile.filePath}" (sequence number ${entry.sequenceNumber}) was ` +
            `committed after the compaction started and deletes rows of "${target}", which the compaction rewrites`,
        );
      }
    }
  }
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
