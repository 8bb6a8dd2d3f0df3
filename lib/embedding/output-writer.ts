/**
 * The output side of a backfill: the vectors table `(id, model_version, vector, computed_at)`, per-batch part files
 * that make a shard resumable, the shard's deterministic data file, and the idempotent commit of shard files.
 *
 * `vector` is `list<float>` (required elements): pyiceberg, DuckDB and Spark all read it as an array of floats.
 */
import { metadataDirectory } from '../iceberg/catalog/metadata-location.js';
import { loadOrCreateTable } from '../iceberg/catalog/load-or-create.js';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import type { DataFile } from '../iceberg/data-file.js';
import { commitNewManifests, currentManifests, dataDirectory, writeAddedManifest } from '../iceberg/append.js';
import { currentSchema, defaultPartitionSpec, newSnapshotId, type TableMetadata } from '../iceberg/metadata-json.js';
import { writeParquetDataFile } from '../iceberg/parquet/index.js';
import { liveEntries } from '../iceberg/scan.js';
import { noChanges, type SnapshotChanges } from '../iceberg/table-update.js';
import { currentSnapshot } from '../iceberg/metadata-json.js';
import type { Schema } from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import { EmbeddingError } from './errors.js';

/** The schema of a vectors table (ids as Java assigns them on create: top-level first, then the list element). */
export const VECTORS_SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [],
  fields: [
    { id: 1, name: 'id', required: true, type: { kind: 'string' } },
    { id: 2, name: 'model_version', required: true, type: { kind: 'string' } },
    {
      id: 3,
      name: 'vector',
      required: true,
      type: { kind: 'list', elementId: 5, elementRequired: true, element: { kind: 'float' } },
    },
    { id: 4, name: 'computed_at', required: true, type: { kind: 'timestamptz' } },
  ],
};

/** Snapshot summary property listing the shard ids a commit added (audit; idempotency reads the manifests). */
export const SHARDS_SUMMARY_PROPERTY = 'sluice.embedding.shards';

/** Loads the vectors table, creating it (and its namespace) when missing; checks the columns otherwise. */
export async function ensureVectorsTable(catalog: SqlCatalog, table: string): Promise<TableMetadata> {
  const metadata = await loadOrCreateTable(catalog, table, { schema: VECTORS_SCHEMA });
  const names = currentSchema(metadata).fields.map((f) => f.name);
  for (const want of VECTORS_SCHEMA.fields) {
    if (!names.includes(want.name)) {
      throw new EmbeddingError(
        'invalid-option',
        `output table ${table} has no column "${want.name}"; a vectors table has (id, model_version, vector, computed_at)`,
      );
    }
  }
  return metadata;
}

export { dataDirectory };

/** One persisted batch of a shard: what it consumed and what it produced. */
export interface ShardPart {
  /** Items of the shard's stream this part covers (vectors + quarantined). */
  consumed: number;
  /** True for the shard's last part. */
  last: boolean;
  ids: string[];
  dimensions: number;
  /** Float32 little-endian, `ids.length × dimensions`, base64. */
  vectors: string;
  quarantine: QuarantinedItem[];
  attempt: number;
}

/** An item that cannot be embedded, kept for an operator to fix and replay. */
export interface QuarantinedItem {
  id: string;
  /** The inference engine's kind: `text-too-long`, `undecodable-image`, `empty-text`, `null-value`, `unreadable-image`. */
  reason: string;
  message: string;
  /** The text (cut to 2000 characters) or the image URI. */
  value: string | null;
  shardId: string;
  modelVersion: string;
}

export function partUri(runRoot: string, shardId: string, offset: number): string {
  return `${runRoot}/parts/${shardId}/${String(offset).padStart(9, '0')}.json`;
}

export function encodeVectors(vectors: readonly Float32Array[], dimensions: number): string {
  const out = new Float32Array(vectors.length * dimensions);
  vectors.forEach((v, i) => out.set(v, i * dimensions));
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('base64');
}

export function decodeVectors(b64: string, dimensions: number): Float32Array[] {
  const bytes = Buffer.from(b64, 'base64');
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: Float32Array[] = [];
  for (let i = 0; dimensions > 0 && i < all.length / dimensions; i++) {
    out.push(all.subarray(i * dimensions, (i + 1) * dimensions));
  }
  return out;
}

/** Reads a part, or undefined when there is none (or it is unreadable, which the caller treats as absent). */
export async function readPart(io: FileIO, uri: string): Promise<ShardPart | undefined> {
  if (!(await io.exists(uri))) return undefined;
  try {
    const part = JSON.parse(Buffer.from(await io.read(uri)).toString('utf8')) as ShardPart;
    return typeof part.consumed === 'number' ? part : undefined;
  } catch {
    return undefined;
  }
}

/** The sidecar a finished shard leaves in the run directory: its data file as the commit needs it. */
export interface ShardManifest {
  shardId: string;
  shardIndex: number;
  modelVersion: string;
  dataFile: SerializedDataFile;
  vectors: number;
  quarantined: number;
}

export function shardManifestUri(runRoot: string, shardId: string): string {
  return `${runRoot}/shards/${shardId}.json`;
}

export function quarantineUri(runRoot: string, shardId: string): string {
  return `${runRoot}/quarantine/${shardId}.jsonl`;
}

/** A DataFile as JSON: maps as entry lists, 64-bit numbers as strings, bytes as base64. */
export interface SerializedDataFile {
  filePath: string;
  recordCount: string;
  fileSizeInBytes: string;
  specId: number;
  splitOffsets: string[];
  columnSizes: [number, string][];
  valueCounts: [number, string][];
  nullValueCounts: [number, string][];
  nanValueCounts: [number, string][];
  lowerBounds: [number, string][];
  upperBounds: [number, string][];
}

const bigMap = (m?: Map<number, bigint>): [number, string][] =>
  [...(m ?? new Map())].map(([k, v]) => [k, v.toString()]);
const byteMap = (m?: Map<number, Uint8Array>): [number, string][] =>
  [...(m ?? new Map())].map(([k, v]) => [k, Buffer.from(v).toString('base64')]);

export function serializeDataFile(f: DataFile): SerializedDataFile {
  return {
    filePath: f.filePath,
    recordCount: f.recordCount.toString(),
    fileSizeInBytes: f.fileSizeInBytes.toString(),
    specId: f.specId,
    splitOffsets: (f.splitOffsets ?? []).map(String),
    columnSizes: bigMap(f.columnSizes),
    valueCounts: bigMap(f.valueCounts),
    nullValueCounts: bigMap(f.nullValueCounts),
    nanValueCounts: bigMap(f.nanValueCounts),
    lowerBounds: byteMap(f.lowerBounds),
    upperBounds: byteMap(f.upperBounds),
  };
}

export function deserializeDataFile(s: SerializedDataFile): DataFile {
  const big = (e: [number, string][]) => new Map(e.map(([k, v]) => [k, BigInt(v)] as const));
  const bytes = (e: [number, string][]) => new Map(e.map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]));
  return {
    content: 'data',
    filePath: s.filePath,
    fileFormat: 'PARQUET',
    partition: [],
    specId: s.specId,
    recordCount: BigInt(s.recordCount),
    fileSizeInBytes: BigInt(s.fileSizeInBytes),
    splitOffsets: s.splitOffsets.map((x) => BigInt(x)),
    columnSizes: big(s.columnSizes),
    valueCounts: big(s.valueCounts),
    nullValueCounts: big(s.nullValueCounts),
    nanValueCounts: big(s.nanValueCounts),
    lowerBounds: bytes(s.lowerBounds),
    upperBounds: bytes(s.upperBounds),
    sortOrderId: 0,
  };
}

/**
 * Writes a shard's vectors as one Parquet data file at `path` (replacing any earlier attempt's file) and returns
 * its DataFile. Rows with the same id keep the last one, so a file never holds an id twice.
 */
export async function writeShardFile(
  io: FileIO,
  schema: Schema,
  path: string,
  rows: { ids: string[]; vectors: Float32Array[] },
  modelVersion: string,
  computedAtMicros: bigint,
): Promise<DataFile> {
  const byId = new Map<string, Float32Array>();
  rows.ids.forEach((id, i) => byId.set(id, rows.vectors[i]!));
  const ids = [...byId.keys()];
  const idField = (name: string) => {
    const f = schema.fields.find((x) => x.name === name);
    if (!f) throw new EmbeddingError('invalid-option', `vectors table schema has no "${name}"`);
    return f.id;
  };
  const columns = new Map<number, unknown[]>([
    [idField('id'), ids],
    [idField('model_version'), ids.map(() => modelVersion)],
    [idField('vector'), ids.map((id) => Array.from(byId.get(id)!))],
    [idField('computed_at'), ids.map(() => computedAtMicros)],
  ]);
  const written = await writeParquetDataFile({ schema, columns, rowCount: ids.length, parallelism: 1 });
  await io.write(path, written.bytes);
  return {
    content: 'data',
    filePath: path,
    fileFormat: 'PARQUET',
    partition: [],
    specId: 0,
    recordCount: written.recordCount,
    fileSizeInBytes: BigInt(written.bytes.length),
    ...written.metrics,
    splitOffsets: written.splitOffsets,
    sortOrderId: 0,
  };
}

/** Paths of every live data file of the table's current snapshot. */
export async function liveDataFilePaths(io: FileIO, metadata: TableMetadata): Promise<Set<string>> {
  const snapshot = currentSnapshot(metadata);
  const out = new Set<string>();
  if (!snapshot) return out;
  for (const { entries } of await liveEntries(io, metadata, snapshot)) {
    for (const e of entries) if (e.dataFile.content === 'data') out.add(e.dataFile.filePath);
  }
  return out;
}

/** Thrown inside a commit attempt when a concurrent writer committed some of the same files. */
class FilesAppearedError extends Error {}

/**
 * Appends the shard files that the table does not hold yet, in one snapshot. Idempotent: a retried commit (the
 * activity timed out after the catalog swap, or two runs race) reads the live files of the fresh metadata before
 * every attempt and adds only what is missing, so no file is ever listed twice.
 */
export async function commitShardFiles(
  catalog: SqlCatalog,
  io: FileIO,
  table: string,
  files: readonly { shardId: string; dataFile: DataFile }[],
  properties: Record<string, string> = {},
): Promise<{ snapshotId?: bigint; added: number; alreadyCommitted: number }> {
  for (let round = 0; ; round++) {
    const { metadata } = await catalog.loadTable(table);
    const live = await liveDataFilePaths(io, metadata);
    const missing = files.filter((f) => !live.has(f.dataFile.filePath));
    if (missing.length === 0) return { added: 0, alreadyCommitted: files.length };
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const dataFiles = missing.map((f) => f.dataFile);
    const manifest = await writeAddedManifest(io, metadata, snapshotId, dataFiles, 'data');
    const changes: SnapshotChanges = {
      ...noChanges(),
      addedDataFiles: dataFiles.length,
      addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
      addedFilesSize: dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
    };
    try {
      await commitNewManifests(catalog, io, table, {
        snapshotId,
        manifests: [manifest],
        operation: 'append',
        changes,
        snapshotProperties: { ...properties, [SHARDS_SUMMARY_PROPERTY]: missing.map((f) => f.shardId).join(',') },
        validate: async (current) => {
          if (current.currentSnapshotId === metadata.currentSnapshotId) return;
          const now = await liveDataFilePaths(io, current);
          if (missing.some((f) => now.has(f.dataFile.filePath))) throw new FilesAppearedError();
        },
      });
      return { snapshotId, added: missing.length, alreadyCommitted: files.length - missing.length };
    } catch (err) {
      await io.delete(manifest.manifestPath).catch(() => undefined);
      if (!(err instanceof FilesAppearedError) || round >= 5) throw err;
    }
  }
}

/** The data directory of a table and where it keeps metadata (for callers that need both). */
export function tableDirectories(metadata: TableMetadata): { data: string; metadata: string } {
  return { data: dataDirectory(metadata), metadata: metadataDirectory(metadata) };
}

export { currentSchema, defaultPartitionSpec, currentManifests };
