/**
 * Appends rows to a table: Parquet data files (one or more per partition), one data manifest, a manifest list that
 * carries the parent's manifests forward, and a snapshot, committed through the catalog's compare-and-swap. Appends
 * never conflict (spec "Commit Conflict Resolution"): on a lost race the manifest list is rebuilt on the fresh
 * parent and the commit retried, reusing the data files and the manifest.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { FileIO } from '../storage/file-io.js';
import { metadataDirectory } from './catalog/metadata-location.js';
import type { SqlCatalog, LoadedTable } from './catalog/sql-catalog.js';
import type { TableIdentifierInput } from './catalog/identifier.js';
import type { DataFile, ManifestEntry, PartitionValue } from './data-file.js';
import { encodeBound } from './bounds.js';
import { writeManifest } from './manifest.js';
import {
  assignManifestSequenceNumbers,
  newManifestFile,
  readManifestList,
  writeManifestList,
  type ManifestFile,
} from './manifest-list.js';
import {
  currentSchema,
  currentSnapshot,
  defaultPartitionSpec,
  newSnapshotId,
  type TableMetadata,
} from './metadata-json.js';
import { partitionPath, partitionTupleOf, type PartitionSpec } from './partition-spec.js';
import {
  PARALLEL_MIN_ROWS,
  ParquetWriteError,
  writeParquetDataFile,
  type ColumnValues,
  type ParquetWriteTuning,
} from './parquet/index.js';
import { TableWriteError } from './errors.js';
import { mapConcurrently } from './maintenance/table-files.js';
import { addSnapshot, nextSequenceNumber, noChanges, snapshotSummary, type SnapshotChanges } from './table-update.js';
import type { Schema } from './types.js';
import { tupleKey, type PrimitiveValue } from './values.js';

/** Table property for where data files go. @default `<location>/data` */
export const DATA_PATH_PROPERTY = 'write.data.path';

/** Options of {@link appendColumns}. */
export interface AppendOptions extends ParquetWriteTuning {
  /** Values by top-level field id of the current schema, one entry per row. */
  columns: ReadonlyMap<number, ColumnValues>;
  /** Row count; needed only when `columns` is empty. */
  rowCount?: number;
  /** Custom snapshot summary properties, e.g. a source watermark. */
  snapshotProperties?: Record<string, string>;
  /** Rows per data file at most (within one partition). @default 1000000 */
  maxRowsPerFile?: number;
  /** Commit attempts before a conflict reaches the caller. @default 5 */
  maxCommitAttempts?: number;
}

/** What an append did. */
export interface AppendResult {
  snapshotId: bigint;
  sequenceNumber: bigint;
  metadataLocation: string;
  dataFiles: DataFile[];
  /** Commit attempts it took (1 when no other writer raced it). */
  attempts: number;
}

/** The directory data files go to. */
export function dataDirectory(metadata: Pick<TableMetadata, 'location' | 'properties'>): string {
  const custom = metadata.properties[DATA_PATH_PROPERTY];
  return (custom !== undefined && custom !== '' ? custom : `${metadata.location}/data`).replace(/\/+$/, '');
}

/** Splits row indexes by partition tuple; an unpartitioned table is one group. */
export function groupRowsByPartition(
  spec: PartitionSpec,
  schema: Schema,
  columns: ReadonlyMap<number, ColumnValues>,
  rowCount: number,
): { partition: PartitionValue[]; rows: number[] }[] {
  if (spec.fields.length === 0) return [{ partition: [], rows: Array.from({ length: rowCount }, (_, i) => i) }];
  const groups = new Map<string, { partition: PartitionValue[]; rows: number[] }>();
  const tupleOf = partitionTupleOf(spec, schema);
  for (let r = 0; r < rowCount; r++) {
    const tuple = tupleOf((fieldId) => {
      const column = columns.get(fieldId);
      return column === undefined ? null : ((column[r] as PrimitiveValue | null | undefined) ?? null);
    });
    const key = tupleKey(tuple);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { partition: tuple, rows: [] }));
    group.rows.push(r);
  }
  return [...groups.values()];
}

function pick(column: ColumnValues, rows: readonly number[]): unknown[] {
  const out = new Array<unknown>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = column[rows[i]!];
  return out;
}

function rowCountOf(options: AppendOptions): number {
  const first = options.columns.values().next();
  return first.done ? (options.rowCount ?? 0) : first.value.length;
}

/**
 * Writes the rows as data files under the table's data directory, split by partition and by `maxRowsPerFile`.
 * The files are not part of the table until a commit references them.
 */
export async function writeDataFiles(io: FileIO, metadata: TableMetadata, options: AppendOptions): Promise<DataFile[]> {
  const schema = currentSchema(metadata);
  const spec = defaultPartitionSpec(metadata);
  const rowCount = rowCountOf(options);
  return writeGroupFiles(io, metadata, groupRowsByPartition(spec, schema, options.columns, rowCount), {
    columnsOf: (rows) =>
      rows.length === rowCount
        ? options.columns
        : new Map([...options.columns].map(([id, values]) => [id, pick(values, rows)] as const)),
    maxRowsPerFile: options.maxRowsPerFile ?? 1_000_000,
    writer: {
      targetRowGroupBytes: options.targetRowGroupBytes,
      maxRowGroupRows: options.maxRowGroupRows,
      parallelism: options.parallelism,
      integerEncoding: options.integerEncoding,
    },
  });
}

/** Options of {@link writeGroupFiles}. */
export interface WriteGroupFilesOptions {
  /** The column values of the given rows (indexes into the caller's columns), keyed by field id. */
  columnsOf: (rows: readonly number[]) => ReadonlyMap<number, ColumnValues>;
  maxRowsPerFile: number;
  /** Passed to the Parquet writer. */
  writer?: Pick<
    Parameters<typeof writeParquetDataFile>[0],
    'targetRowGroupBytes' | 'maxRowGroupRows' | 'parallelism' | 'integerEncoding'
  >;
  /** Called with each file written and the rows it holds, in file order, once every file is written. */
  onFile?: (path: string, rows: readonly number[]) => void;
}

/**
 * Writes each group of rows (one partition tuple per group) as Parquet data files of at most `maxRowsPerFile` rows
 * under the table's data directory, and returns their entries in group order. Several files are written at once:
 * this thread builds each file's Arrow data while the ones before it encode on pool workers (see
 * {@link concurrentFileWrites}). A value the writer refuses is a {@link TableWriteError} naming the file, the
 * column and the caller's row. Nothing is committed.
 */
export async function writeGroupFiles(
  io: FileIO,
  metadata: TableMetadata,
  groups: Iterable<{ partition: PartitionValue[]; rows: readonly number[] }>,
  options: WriteGroupFilesOptions,
): Promise<DataFile[]> {
  const schema = currentSchema(metadata);
  const spec = defaultPartitionSpec(metadata);
  const maxRows = options.maxRowsPerFile;
  const dir = dataDirectory(metadata);
  const writeId = randomUUID();
  const slices: { partition: PartitionValue[]; rows: readonly number[]; filePath: string }[] = [];
  for (const group of groups) {
    const partitionDir = spec.fields.length > 0 ? `/${partitionPath(spec, schema, group.partition)}` : '';
    for (let start = 0; start < group.rows.length; start += maxRows) {
      const filePath = `${dir}${partitionDir}/${String(slices.length).padStart(5, '0')}-${writeId}.parquet`;
      slices.push({ partition: group.partition, rows: group.rows.slice(start, start + maxRows), filePath });
    }
  }
  const { limit, offload } = concurrentFileWrites(
    slices.length,
    options.writer?.parallelism,
    Math.max(0, ...slices.map((s) => s.rows.length)),
  );
  const files = await mapConcurrently(slices, limit, async ({ partition, rows, filePath }): Promise<DataFile> => {
    let written;
    try {
      written = await writeParquetDataFile({
        schema,
        columns: options.columnsOf(rows),
        rowCount: rows.length,
        ...options.writer,
        offload,
      });
    } catch (err) {
      if (err instanceof ParquetWriteError) {
        // Rows in a partition group are renumbered; map the writer's row back to the caller's.
        const row = err.row === undefined ? undefined : rows[err.row];
        throw new TableWriteError(
          metadata.location,
          filePath,
          err.column,
          `${err.problem}${row === undefined ? '' : ` (input row ${row})`}`,
          { cause: err },
        );
      }
      throw err;
    }
    await io.write(filePath, written.bytes);
    return {
      content: 'data',
      filePath,
      fileFormat: 'PARQUET',
      partition,
      specId: spec.specId,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      splitOffsets: written.splitOffsets,
      sortOrderId: 0,
    };
  });
  if (options.onFile) for (const { filePath, rows } of slices) options.onFile(filePath, rows);
  return files;
}

/**
 * How many of `files` Parquet files to write at once, and whether to encode them on pool workers. One file is
 * written on this thread (a small file's encode costs less than a hand-off), and so are files large enough to be
 * split across the workers anyway (`maxRows` ≥ the writer's parallel threshold: several at once would only hold
 * several files' data in memory). Several small files are written two per encoding worker, each encoded on a
 * worker when one is free: this thread builds the next file's Arrow data (and writes the finished ones) while the
 * workers encode, so a batch of many small files (a CDC merge writes one per bucket) uses the second core.
 */
export function concurrentFileWrites(
  files: number,
  parallelism?: number,
  maxRows = 0,
): { limit: number; offload: boolean } {
  const workers = Math.max(1, Math.floor(parallelism ?? Math.min(2, availableParallelism())));
  if (files <= 1 || workers <= 1 || maxRows >= PARALLEL_MIN_ROWS) return { limit: 1, offload: false };
  return { limit: workers * 2, offload: true };
}

/** True when a manifest list entry says the manifest holds no live file (counts absent in old lists: unknown → false). */
function onlyDeletedEntries(m: ManifestFile): boolean {
  return m.addedFilesCount === 0 && m.existingFilesCount === 0 && (m.deletedFilesCount ?? 0) > 0;
}

/** Reads the manifests of the table's current snapshot (none for an empty table). */
export async function currentManifests(io: FileIO, metadata: TableMetadata): Promise<ManifestFile[]> {
  const snapshot = currentSnapshot(metadata);
  if (!snapshot) return [];
  return readManifestList(await io.read(snapshot.manifestList), { file: snapshot.manifestList }).manifests;
}

/**
 * Commits a snapshot that adds `manifests` (written for `snapshotId`) on top of the current snapshot's manifests.
 * Retries on conflict: the update re-reads the fresh parent's manifest list and writes a new list each attempt.
 */
export async function commitNewManifests(
  catalog: SqlCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  commit: {
    snapshotId: bigint;
    manifests: ManifestFile[];
    operation: 'append' | 'overwrite' | 'delete' | 'replace';
    changes: SnapshotChanges;
    snapshotProperties?: Record<string, string>;
    /** Drop these manifests of the parent (by path), for rewrites. @default none */
    removeManifestPaths?: ReadonlySet<string>;
    maxAttempts?: number;
    /**
     * Checks the fresh metadata before each attempt (row-level commits verify that what they read is still true);
     * throw to abort the commit.
     */
    validate?: (current: TableMetadata) => Promise<void>;
  },
): Promise<{ loaded: LoadedTable; sequenceNumber: bigint; attempts: number }> {
  let attempts = 0;
  let sequenceNumber = 0n;
  const loaded = await catalog.commitWithRetry(
    table,
    async (current, attempt) => {
      attempts = attempt.attempt;
      await commit.validate?.(current);
      sequenceNumber = nextSequenceNumber(current);
      const parent = currentSnapshot(current);
      // Like Java, a carried manifest with no live entries (only DELETED ones from an earlier snapshot) is dropped:
      // the snapshot that deleted those files still lists it, which is all incremental readers need.
      const carried = (await currentManifests(io, current)).filter(
        (m) => !commit.removeManifestPaths?.has(m.manifestPath) && !onlyDeletedEntries(m),
      );
      const manifests = assignManifestSequenceNumbers([...commit.manifests, ...carried], {
        snapshotId: commit.snapshotId,
        sequenceNumber,
      });
      const list = writeManifestList({
        snapshotId: commit.snapshotId,
        parentSnapshotId: parent?.snapshotId ?? null,
        sequenceNumber,
        manifests,
      });
      const listPath = `${metadataDirectory(current)}/snap-${commit.snapshotId}-${attempt.attempt}-${randomUUID()}.avro`;
      await io.write(listPath, list.bytes);
      return addSnapshot(current, {
        snapshotId: commit.snapshotId,
        manifestList: listPath,
        summary: snapshotSummary(commit.operation, commit.changes, parent?.summary, commit.snapshotProperties),
        timestampMs: BigInt(Date.now()),
      });
    },
    { maxAttempts: commit.maxAttempts },
  );
  return { loaded, sequenceNumber, attempts };
}

/** Writes one manifest for `files` as ADDED entries of `snapshotId` and returns its manifest-list entry. */
export async function writeAddedManifest(
  io: FileIO,
  metadata: TableMetadata,
  snapshotId: bigint,
  files: readonly DataFile[],
  content: 'data' | 'deletes',
): Promise<ManifestFile> {
  const entries: ManifestEntry[] = files.map((dataFile) => ({
    status: 'added',
    snapshotId,
    sequenceNumber: null,
    fileSequenceNumber: null,
    dataFile,
  }));
  const { bytes, summary } = writeManifest({
    schema: currentSchema(metadata),
    spec: defaultPartitionSpec(metadata),
    formatVersion: 2,
    content,
    entries,
    snapshotId,
    encodeBound,
  });
  const manifestPath = `${metadataDirectory(metadata)}/${randomUUID()}-m0.avro`;
  await io.write(manifestPath, bytes);
  return newManifestFile({ manifestPath, manifestLength: bytes.length, summary });
}

/**
 * Appends columns of rows to the table as one `append` snapshot. The schema is the table's current schema at the
 * time the files are written; a concurrent schema change is not merged (the commit still lands, with the files
 * written under the schema they were validated against).
 */
export async function appendColumns(
  catalog: SqlCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: AppendOptions,
): Promise<AppendResult> {
  const { metadata } = await catalog.loadTable(table);
  const dataFiles = await writeDataFiles(io, metadata, options);
  const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
  const manifest = await writeAddedManifest(io, metadata, snapshotId, dataFiles, 'data');
  const changes: SnapshotChanges = {
    ...noChanges(),
    addedDataFiles: dataFiles.length,
    addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
    addedFilesSize: dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
  };
  const { loaded, sequenceNumber, attempts } = await commitNewManifests(catalog, io, table, {
    snapshotId,
    manifests: [manifest],
    operation: 'append',
    changes,
    snapshotProperties: options.snapshotProperties,
    maxAttempts: options.maxCommitAttempts,
  });
  return { snapshotId, sequenceNumber, metadataLocation: loaded.metadataLocation, dataFiles, attempts };
}
