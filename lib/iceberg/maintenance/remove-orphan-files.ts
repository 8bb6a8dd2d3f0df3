/**
 * Orphan-file removal (Java's `DeleteOrphanFiles`): deletes files under the table location that no metadata
 * references — leftovers of failed writes, lost commit races, or cleanups that died half-way.
 *
 * Order matters for safety: the location is listed first and the metadata read afterwards, so every file in the
 * listing that a commit had referenced by then is known. A writer that is still running has files no metadata
 * references yet; only the age threshold protects them, which is why short thresholds are refused.
 */
import type { FileIO } from '../../storage/file-io.js';
import { FileNotFoundError } from '../../storage/errors.js';
import type { TableIdentifierInput } from '../catalog/identifier.js';
import { decodeMetadataFile } from '../catalog/metadata-location.js';
import type { ManifestEntry } from '../data-file.js';
import { parseTableMetadata, type TableMetadata } from '../metadata-json.js';
import {
  GarbageCollectionDisabledError,
  InvalidMaintenanceOptionsError,
  UnsafeOrphanThresholdError,
} from './errors.js';
import { gcEnabled, normalizeUri, reachableFiles, tableDisplayName, type MaintenanceCatalog } from './table-files.js';

/** The default age below which unreferenced files are kept: 3 days, Java's default. */
export const DEFAULT_ORPHAN_AGE_MS = 3 * 24 * 60 * 60 * 1000;

/** The smallest age threshold accepted without `force`: 1 hour. */
export const MIN_ORPHAN_AGE_MS = 60 * 60 * 1000;

/** Options of {@link removeOrphanFiles}. */
export interface RemoveOrphanFilesOptions {
  /**
   * Only unreferenced files last modified more than this long ago (ms) are deleted, so that files of writes
   * still in flight survive. Below 1 hour it is refused unless `force`.
   * @default 259200000 (3 days)
   */
  olderThanMs?: number;
  /** Accept an `olderThanMs` below 1 hour; only when no writer can be running. @default false */
  force?: boolean;
  /** List the orphans without deleting them. @default false */
  dryRun?: boolean;
  /** The time ages are measured from (ms since the epoch). @default now */
  nowMs?: number;
}

/** What {@link removeOrphanFiles} found and did. */
export interface RemoveOrphanFilesResult {
  /** Unreferenced files older than the threshold: deleted, or in a dry run, the ones that would be. */
  orphanFiles: string[];
  /** Unreferenced files kept because they are younger than the threshold. */
  recentUnreferencedFiles: string[];
  /** Files found under the table location. */
  listedFiles: number;
  /** Distinct files the metadata references (metadata files, manifest lists, manifests, data and delete files). */
  referencedFiles: number;
  dryRun: boolean;
}

/**
 * Deletes files under the table's location that are referenced by neither the current metadata file nor any
 * metadata file in its `metadata-log`: those files themselves, and their snapshots' manifest lists, manifests,
 * data and delete files (entries of every status count, and statistics files), and that were last modified
 * before `now − olderThanMs`. Hidden files and directories (a name starting with `.` or `_`, other than a
 * `_name=value` partition directory) are never touched, as in Java.
 *
 * @throws UnsafeOrphanThresholdError for `olderThanMs` below 1 hour without `force`.
 * @throws InvalidMaintenanceOptionsError for a negative or non-finite `olderThanMs`.
 * @throws GarbageCollectionDisabledError when the table's `gc.enabled` is false.
 */
export async function removeOrphanFiles(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: RemoveOrphanFilesOptions = {},
): Promise<RemoveOrphanFilesResult> {
  const tableName = tableDisplayName(table);
  const olderThanMs = options.olderThanMs ?? DEFAULT_ORPHAN_AGE_MS;
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new InvalidMaintenanceOptionsError('olderThanMs', `must be a non-negative number of ms, got ${olderThanMs}`);
  }
  if (olderThanMs < MIN_ORPHAN_AGE_MS && options.force !== true) {
    throw new UnsafeOrphanThresholdError(tableName, olderThanMs, MIN_ORPHAN_AGE_MS);
  }
  const cutoff = (options.nowMs ?? Date.now()) - olderThanMs;

  const before = await catalog.loadTable(table);
  if (!gcEnabled(before.metadata)) throw new GarbageCollectionDisabledError(tableName, 'orphan-file removal');
  const root = `${before.metadata.location.replace(/\/+$/, '')}/`;
  const normalizedRoot = `${normalizeUri(root).replace(/\/+$/, '')}/`;
  const listed: { uri: string; lastModified: number }[] = [];
  for await (const file of io.list(root)) {
    const normalized = normalizeUri(file.uri);
    const relative = normalized.startsWith(normalizedRoot) ? normalized.slice(normalizedRoot.length) : normalized;
    if (!isHidden(relative)) listed.push({ uri: file.uri, lastModified: file.lastModified.getTime() });
  }

  // Read after listing: whatever was committed before the listing finished is in this metadata or its log.
  const after = await catalog.loadTable(table);
  const referenced = await referencedFiles(io, after.metadataLocation, after.metadata);
  if (after.previousMetadataLocation !== null) referenced.add(normalizeUri(after.previousMetadataLocation));

  const orphanFiles: string[] = [];
  const recentUnreferencedFiles: string[] = [];
  for (const file of listed) {
    if (referenced.has(normalizeUri(file.uri))) continue;
    (file.lastModified < cutoff ? orphanFiles : recentUnreferencedFiles).push(file.uri);
  }
  if (options.dryRun !== true) await io.deleteMany(orphanFiles);
  return {
    orphanFiles,
    recentUnreferencedFiles,
    listedFiles: listed.length,
    referencedFiles: referenced.size,
    dryRun: options.dryRun === true,
  };
}

/** Whether a path relative to the table location has a hidden segment (Java's hidden-path filter). */
function isHidden(relative: string): boolean {
  return relative
    .split('/')
    .some((segment) => segment.startsWith('.') || (segment.startsWith('_') && !segment.includes('=')));
}

/**
 * Every file the current metadata and the metadata files in its log reference, in {@link normalizeUri} form.
 * Missing files (older versions' manifests that expiry deleted) are skipped: they have nothing left to protect.
 */
async function referencedFiles(io: FileIO, metadataLocation: string, metadata: TableMetadata): Promise<Set<string>> {
  const referenced = new Set<string>();
  const add = (uri: string): void => {
    referenced.add(normalizeUri(uri));
  };
  const versions: TableMetadata[] = [metadata];
  add(metadataLocation);
  for (const entry of metadata.metadataLog) {
    add(entry.metadataFile);
    try {
      const bytes = await io.read(entry.metadataFile);
      versions.push(parseTableMetadata(decodeMetadataFile(bytes, entry.metadataFile), entry.metadataFile));
    } catch (err) {
      if (!(err instanceof FileNotFoundError)) throw err;
    }
  }
  const manifestCache = new Map<string, Promise<ManifestEntry[] | undefined>>();
  const seenLists = new Set<string>();
  for (const version of versions) {
    // Versions share most snapshots; each manifest list and manifest is read once.
    const snapshots = version.snapshots.filter((s) => !seenLists.has(s.manifestList));
    for (const s of snapshots) seenLists.add(s.manifestList);
    const files = await reachableFiles(io, version, snapshots, { entries: 'all', ignoreMissing: true, manifestCache });
    for (const uri of files.manifestLists) add(uri);
    for (const uri of files.manifests) add(uri);
    for (const uri of files.contentFiles.keys()) add(uri);
    for (const stats of [...version.statistics, ...version.partitionStatistics]) {
      const path = (stats as Record<string, unknown> | null)?.['statistics-path'];
      if (typeof path === 'string') add(path);
    }
  }
  return referenced;
}
