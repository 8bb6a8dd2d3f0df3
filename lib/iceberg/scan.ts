/**
 * Scan planning and reading. Planning walks a snapshot's manifest list and manifests to the live data files and
 * attaches the delete files that apply to each (spec "Scan Planning"): a position delete applies to data files with
 * a data sequence number ≤ its own, an equality delete to data files with a data sequence number < its own.
 * Reading streams each data file one row group at a time and drops deleted rows.
 */
import type { FileIO } from '../storage/file-io.js';
import type { DataFile, ManifestEntry } from './data-file.js';
import { InvalidTableConfigError } from './errors.js';
import { inheritManifestMetadata, readManifest } from './manifest.js';
import { readManifestList, type ManifestFile } from './manifest-list.js';
import { currentSchema, type Snapshot, type TableMetadata } from './metadata-json.js';
import { partitionType } from './partition-spec.js';
import { DELETE_FILE_PATH_FIELD_ID, DELETE_POS_FIELD_ID, POSITION_DELETE_SCHEMA } from './parquet/writer.js';
import { readParquetBatches, readParquetFile, type ParquetColumnBatch } from './parquet/reader.js';
import { findFieldById, type Schema } from './types.js';

/** Which snapshot to read. */
export interface SnapshotSelector {
  /** A snapshot id. @default the current snapshot */
  snapshotId?: bigint;
  /** The snapshot that was current at this time (ms since the epoch): time travel. */
  asOfTimestampMs?: bigint;
}

/** A live data file with the delete files that apply to it. */
export interface FileScanTask {
  dataFile: DataFile;
  /** The file's data sequence number. */
  dataSequenceNumber: bigint;
  positionDeletes: DataFile[];
  equalityDeletes: DataFile[];
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

/** Reads the live entries of every manifest of a snapshot, with inheritance applied. */
export async function liveEntries(
  io: FileIO,
  metadata: TableMetadata,
  snapshot: Snapshot,
): Promise<{ manifest: ManifestFile; entries: ManifestEntry[] }[]> {
  const list = readManifestList(await io.read(snapshot.manifestList), { file: snapshot.manifestList });
  const schema = currentSchema(metadata);
  return Promise.all(
    list.manifests.map(async (manifest) => {
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

/** Plans a scan: the live data files of the snapshot and, for each, the delete files that apply to it. */
export async function planFiles(
  io: FileIO,
  metadata: TableMetadata,
  selector: SnapshotSelector = {},
): Promise<FileScanTask[]> {
  const snapshot = selectSnapshot(metadata, selector);
  if (!snapshot) return [];
  const data: { file: DataFile; seq: bigint }[] = [];
  const positionDeletes: { file: DataFile; seq: bigint }[] = [];
  const equalityDeletes: { file: DataFile; seq: bigint }[] = [];
  for (const { entries } of await liveEntries(io, metadata, snapshot)) {
    for (const entry of entries) {
      const seq = entry.sequenceNumber ?? 0n;
      const target =
        entry.dataFile.content === 'data'
          ? data
          : entry.dataFile.content === 'position-deletes'
            ? positionDeletes
            : equalityDeletes;
      target.push({ file: entry.dataFile, seq });
    }
  }
  return data.map(({ file, seq }) => ({
    dataFile: file,
    dataSequenceNumber: seq,
    positionDeletes: positionDeletes
      .filter(
        (d) => d.seq >= seq && (d.file.referencedDataFile === undefined || d.file.referencedDataFile === file.filePath),
      )
      .filter((d) => samePartitionOrGlobal(d.file, file))
      .map((d) => d.file),
    equalityDeletes: equalityDeletes
      .filter((d) => d.seq > seq && samePartitionOrGlobal(d.file, file))
      .map((d) => d.file),
  }));
}

function samePartitionOrGlobal(deleteFile: DataFile, dataFile: DataFile): boolean {
  // A delete in an unpartitioned spec applies everywhere; otherwise only within the same spec and partition.
  if (deleteFile.partition.length === 0) return true;
  if (deleteFile.specId !== dataFile.specId) return false;
  return JSON.stringify(deleteFile.partition, jsonSafe) === JSON.stringify(dataFile.partition, jsonSafe);
}

function jsonSafe(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}

/** The deleted positions of `dataFilePath` listed in the given position-delete files. */
export async function deletedPositions(
  io: FileIO,
  deleteFiles: readonly DataFile[],
  dataFilePath: string,
): Promise<Set<bigint>> {
  const deleted = new Set<bigint>();
  for (const file of deleteFiles) {
    const batch = readParquetFile(await io.read(file.filePath), { schema: POSITION_DELETE_SCHEMA });
    const paths = batch.columns.get(DELETE_FILE_PATH_FIELD_ID) as string[];
    const positions = batch.columns.get(DELETE_POS_FIELD_ID) as bigint[];
    for (let i = 0; i < batch.rowCount; i++) if (paths[i] === dataFilePath) deleted.add(positions[i]!);
  }
  return deleted;
}

function keyOf(values: readonly unknown[]): string {
  return JSON.stringify(values, jsonSafe);
}

/** Equality-delete keys: for each set of equality field ids, the set of deleted key tuples. */
async function equalityDeleteKeys(io: FileIO, schema: Schema, deleteFiles: readonly DataFile[]) {
  const byIds = new Map<string, { ids: number[]; keys: Set<string> }>();
  for (const file of deleteFiles) {
    const ids = file.equalityIds ?? [];
    const fields = ids.map((id) => {
      // Equality columns are top-level primitive fields (identifier-field rules), so the struct field exists.
      const field = findFieldById(schema, id)?.field;
      if (!field) {
        throw new InvalidTableConfigError(
          'equality_ids',
          `delete file ${file.filePath} names field ${id}, which is not a column`,
        );
      }
      return field;
    });
    const batch = readParquetFile(await io.read(file.filePath), { schema: { fields } });
    const group = byIds.get(ids.join(',')) ?? { ids, keys: new Set<string>() };
    byIds.set(ids.join(','), group);
    const columns = ids.map((id) => batch.columns.get(id)!);
    for (let r = 0; r < batch.rowCount; r++) group.keys.add(keyOf(columns.map((c) => c[r])));
  }
  return [...byIds.values()];
}

/**
 * Reads one task's rows, one row group at a time, without the rows its delete files remove. Columns are read by
 * field id as `schema` (usually the current schema), so renamed and added columns read right.
 */
export async function* readTask(io: FileIO, task: FileScanTask, schema: Schema): AsyncGenerator<ParquetColumnBatch> {
  const positions = task.positionDeletes.length
    ? await deletedPositions(io, task.positionDeletes, task.dataFile.filePath)
    : new Set<bigint>();
  const equality = task.equalityDeletes.length ? await equalityDeleteKeys(io, schema, task.equalityDeletes) : [];
  // Equality columns must be read even when the caller's schema would not otherwise need them.
  let offset = 0n;
  for (const batch of readParquetBatches(await io.read(task.dataFile.filePath), { schema })) {
    if (positions.size === 0 && equality.length === 0) {
      offset += BigInt(batch.rowCount);
      yield batch;
      continue;
    }
    const keep: number[] = [];
    for (let r = 0; r < batch.rowCount; r++) {
      if (positions.has(offset + BigInt(r))) continue;
      if (equality.some((g) => g.keys.has(keyOf(g.ids.map((id) => batch.columns.get(id)?.[r] ?? null))))) continue;
      keep.push(r);
    }
    offset += BigInt(batch.rowCount);
    const columns = new Map<number, unknown[]>();
    for (const [id, values] of batch.columns)
      columns.set(
        id,
        keep.map((r) => values[r]),
      );
    yield { rowCount: keep.length, columns };
  }
}

/** Scans a snapshot: every live row, as column batches in the current schema. */
export async function* scanTable(
  io: FileIO,
  metadata: TableMetadata,
  selector: SnapshotSelector = {},
): AsyncGenerator<ParquetColumnBatch> {
  const schema = currentSchema(metadata);
  for (const task of await planFiles(io, metadata, selector)) yield* readTask(io, task, schema);
}
