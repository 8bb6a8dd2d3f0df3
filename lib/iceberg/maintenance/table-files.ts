/**
 * What the maintenance operations share: the catalog surface they need, reading a snapshot's manifests and entries,
 * the files a set of snapshots reaches, table properties, and comparable forms of URIs and partition tuples.
 */
import { FileNotFoundError } from '../../storage/errors.js';
import type { FileIO } from '../../storage/file-io.js';
import { parseS3Uri, s3Uri, schemeOf, toFileUri } from '../../storage/uri.js';
import type { SqlCatalog } from '../catalog/sql-catalog.js';
import { compareStrings } from '../bounds.js';
import { resolveTable, type TableIdentifierInput } from '../catalog/identifier.js';
import type { DataFile, FileContent, ManifestEntry, PartitionValue } from '../data-file.js';
import { InvalidTableConfigError } from '../errors.js';
import { inheritManifestMetadata, readManifest } from '../manifest.js';
import { readManifestList, type ManifestFile } from '../manifest-list.js';
import { currentSchema, type Snapshot, type TableMetadata } from '../metadata-json.js';
import { partitionType } from '../partition-spec.js';
import { readParquetFile } from '../parquet/reader.js';
import { DELETE_FILE_PATH_FIELD_ID, POSITION_DELETE_SCHEMA } from '../parquet/writer.js';

/** The part of the catalog maintenance uses: loading, and committing through the compare-and-swap retry loop. */
export type MaintenanceCatalog = Pick<SqlCatalog, 'loadTable' | 'commitWithRetry'>;

/** Table property that forbids deleting the table's files (Java's `gc.enabled`). @default true */
export const GC_ENABLED_PROPERTY = 'gc.enabled';

/** How many manifests are read at once; enough to hide store latency without opening thousands of reads. */
const READ_CONCURRENCY = 16;

/** `db.orders` for a table identifier, for messages. */
export function tableDisplayName(table: TableIdentifierInput): string {
  return resolveTable(table).display;
}

/** Whether the table allows deleting its files (`gc.enabled`, default true). */
export function gcEnabled(metadata: Pick<TableMetadata, 'properties'>): boolean {
  return (metadata.properties[GC_ENABLED_PROPERTY] ?? 'true').trim().toLowerCase() !== 'false';
}

/**
 * A non-negative integer table property, or `fallback` when unset.
 * @throws InvalidTableConfigError naming the property when it is not a non-negative safe integer.
 */
export function integerProperty(metadata: TableMetadata, key: string, fallback: number): number {
  const raw = metadata.properties[key];
  if (raw === undefined) return fallback;
  const value = Number(raw.trim());
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidTableConfigError(
      `property ${key}`,
      `"${raw}" must be a non-negative integer (table ${metadata.location}); fix or remove the property`,
    );
  }
  return value;
}

/**
 * Runs `work` over `items` with at most `limit` in flight, keeping the input order in the result. After a failure no
 * further item starts, and the first error is thrown only once the items in flight have settled, so that nothing
 * (a file write) still runs after this returns.
 */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (let i = next++; i < items.length && !failure; i = next++) {
      try {
        results[i] = await work(items[i] as T, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(lanes);
  if (failure) throw failure.error;
  return results;
}

/** The manifests a snapshot's manifest list names. */
export async function snapshotManifests(io: FileIO, snapshot: Snapshot): Promise<ManifestFile[]> {
  return readManifestList(await io.read(snapshot.manifestList), { file: snapshot.manifestList }).manifests;
}

/**
 * Every entry of a manifest (DELETED ones too), with the manifest list's inheritance applied. Partition values are
 * read as the spec's partition type under the current schema, like scans read them, so that rewritten manifests
 * carry the same values.
 */
export async function manifestEntries(
  io: FileIO,
  metadata: TableMetadata,
  manifest: ManifestFile,
): Promise<ManifestEntry[]> {
  const spec = metadata.partitionSpecs.find((s) => s.specId === manifest.partitionSpecId);
  const contents = readManifest(await io.read(manifest.manifestPath), {
    file: manifest.manifestPath,
    ...(spec ? { partitionType: partitionType(spec, currentSchema(metadata)) } : {}),
  });
  return inheritManifestMetadata(contents.entries, manifest);
}

/** Whether an entry is part of its snapshot (ADDED or EXISTING), as opposed to a record of a removal. */
export function isLive(entry: ManifestEntry): boolean {
  return entry.status !== 'deleted';
}

/** The files a set of snapshots reaches, by kind. Paths are as the metadata spells them. */
export interface ReachableFiles {
  manifestLists: Set<string>;
  manifests: Set<string>;
  /** Data and delete files, with their content kind. */
  contentFiles: Map<string, FileContent>;
}

/** Options of {@link reachableFiles}. */
export interface ReachableFilesOptions {
  /**
   * Which entries count: `live` (ADDED and EXISTING: the files a reader of one of the snapshots opens) or `all`
   * (DELETED entries too: every file any manifest names).
   */
  entries: 'live' | 'all';
  /**
   * Skip manifest lists and manifests that no longer exist instead of failing. Right for old metadata versions,
   * whose expired snapshots' files are already gone; wrong for snapshots that must stay readable.
   * @default false
   */
  ignoreMissing?: boolean;
  /** Manifests already read, by path, to share work between calls. @default none */
  manifestCache?: Map<string, Promise<ManifestEntry[] | undefined>>;
}

/**
 * Walks the snapshots' manifest lists and manifests and collects every file they reference. Each manifest is
 * read once even when many snapshots share it.
 *
 * @throws FileNotFoundError for a missing manifest list or manifest, unless `ignoreMissing`.
 */
export async function reachableFiles(
  io: FileIO,
  metadata: TableMetadata,
  snapshots: Iterable<Snapshot>,
  options: ReachableFilesOptions,
): Promise<ReachableFiles> {
  const out: ReachableFiles = { manifestLists: new Set(), manifests: new Set(), contentFiles: new Map() };
  const missingOk = <T>(err: unknown): T | undefined => {
    if (options.ignoreMissing === true && err instanceof FileNotFoundError) return undefined;
    throw err;
  };
  const lists = [...new Map([...snapshots].map((s) => [s.manifestList, s] as const)).values()];
  for (const snapshot of lists) out.manifestLists.add(snapshot.manifestList);
  const manifestsByList = await mapConcurrently(lists, READ_CONCURRENCY, (snapshot) =>
    snapshotManifests(io, snapshot).catch((err: unknown) => missingOk<ManifestFile[]>(err)),
  );
  const manifests = new Map<string, ManifestFile>();
  for (const list of manifestsByList) for (const m of list ?? []) manifests.set(m.manifestPath, m);
  const cache = options.manifestCache ?? new Map<string, Promise<ManifestEntry[] | undefined>>();
  const entriesByManifest = await mapConcurrently([...manifests.values()], READ_CONCURRENCY, (manifest) => {
    let read = cache.get(manifest.manifestPath);
    if (read === undefined) {
      read = manifestEntries(io, metadata, manifest).catch((err: unknown) => missingOk<ManifestEntry[]>(err));
      cache.set(manifest.manifestPath, read);
    }
    return read;
  });
  for (const manifest of manifests.keys()) out.manifests.add(manifest);
  for (const entries of entriesByManifest) {
    for (const entry of entries ?? []) {
      if (options.entries === 'live' && !isLive(entry)) continue;
      out.contentFiles.set(entry.dataFile.filePath, entry.dataFile.content);
    }
  }
  return out;
}

/**
 * The data files a position-delete file names: its `referenced_data_file` when set, else the distinct
 * `file_path` values in the file.
 */
export async function positionDeleteTargets(io: FileIO, deleteFile: DataFile): Promise<Set<string>> {
  if (deleteFile.referencedDataFile !== undefined) return new Set([deleteFile.referencedDataFile]);
  const batch = readParquetFile(await io.read(deleteFile.filePath), {
    schema: { fields: POSITION_DELETE_SCHEMA.fields.filter((f) => f.id === DELETE_FILE_PATH_FIELD_ID) },
  });
  return new Set(batch.columns.get(DELETE_FILE_PATH_FIELD_ID) as string[]);
}

/**
 * Whether a position-delete file can name one of `paths`, judged from its manifest entry alone: its
 * `referenced_data_file`, else the lower and upper bounds of its `file_path` column. True when neither is known.
 * Bounds are valid even when a writer truncated them, so a false answer is certain.
 */
export function mayReferenceAny(deleteFile: DataFile, paths: ReadonlySet<string>): boolean {
  if (deleteFile.referencedDataFile !== undefined) return paths.has(deleteFile.referencedDataFile);
  const lower = deleteFile.lowerBounds?.get(DELETE_FILE_PATH_FIELD_ID);
  const upper = deleteFile.upperBounds?.get(DELETE_FILE_PATH_FIELD_ID);
  if (lower === undefined || upper === undefined) return true;
  const decoder = new TextDecoder();
  const low = decoder.decode(lower);
  const high = decoder.decode(upper);
  for (const path of paths) if (compareStrings(path, low) >= 0 && compareStrings(path, high) <= 0) return true;
  return false;
}

/** A cache of {@link positionDeleteTargets}, since several checks ask about the same delete files. */
export function positionDeleteTargetCache(io: FileIO): (deleteFile: DataFile) => Promise<Set<string>> {
  const cache = new Map<string, Promise<Set<string>>>();
  return (deleteFile) => {
    let targets = cache.get(deleteFile.filePath);
    if (targets === undefined) {
      targets = positionDeleteTargets(io, deleteFile);
      cache.set(deleteFile.filePath, targets);
    }
    return targets;
  };
}

/**
 * A comparable form of a file URI, so that metadata written by other engines (`file:/tmp/x` from Hadoop,
 * `s3a://b/k` from Spark) matches what a listing returns (`file:///tmp/x`, `s3://b/k`). Unknown schemes are
 * returned unchanged.
 */
export function normalizeUri(uri: string): string {
  try {
    if (schemeOf(uri) === 'file') return toFileUri(uri, '/');
    // s3a:// and s3n:// name the same objects as s3:// (Hadoop connectors); a listing may use either form.
    return s3Uri({ ...parseS3Uri(uri), scheme: 's3' });
  } catch {
    return uri;
  }
}

/** A string key for a partition tuple of a spec, for grouping (bigints and bytes made JSON-safe). */
export function partitionKey(specId: number, partition: readonly PartitionValue[]): string {
  return JSON.stringify([specId, partition], (_key, value: unknown) => {
    if (typeof value === 'bigint') return `${value}n`;
    if (value instanceof Uint8Array) return `b:${Buffer.from(value).toString('hex')}`;
    return value;
  });
}
