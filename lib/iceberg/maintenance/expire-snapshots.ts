/**
 * Snapshot expiry (spec "Snapshot Retention Policy"; Java's `RemoveSnapshots` with `ReachableFileCleanup`): drops
 * snapshots that no retention rule keeps, and refs that outlived `max-ref-age-ms`, then deletes the files only the
 * dropped snapshots reached.
 *
 * Which files go is decided inside the commit attempt, from the exact metadata being replaced and the exact
 * metadata being committed, so a concurrent commit cannot slip between the decision and the commit: anything
 * committed later is built on top of the retained snapshots and only adds references.
 */
import { FileNotFoundError } from '../../storage/errors.js';
import type { FileIO } from '../../storage/file-io.js';
import type { TableIdentifierInput } from '../catalog/identifier.js';
import type { FileContent } from '../data-file.js';
import { InvalidTableConfigError } from '../errors.js';
import type { ManifestFile } from '../manifest-list.js';
import { MAIN_BRANCH, type Snapshot, type SnapshotLogEntry, type TableMetadata } from '../metadata-json.js';
import { GarbageCollectionDisabledError, InvalidMaintenanceOptionsError } from './errors.js';
import {
  gcEnabled,
  integerProperty,
  isLive,
  manifestEntries,
  mapConcurrently,
  snapshotManifests,
  tableDisplayName,
  type MaintenanceCatalog,
} from './table-files.js';

/** Table property: snapshots older than this (ms) may expire. @default 432000000 (5 days) */
export const MAX_SNAPSHOT_AGE_PROPERTY = 'history.expire.max-snapshot-age-ms';
/** Table property: every branch keeps at least this many of its latest snapshots. @default 1 */
export const MIN_SNAPSHOTS_TO_KEEP_PROPERTY = 'history.expire.min-snapshots-to-keep';
/** Table property: refs (other than `main`) whose snapshot is older than this (ms) are removed. @default forever */
export const MAX_REF_AGE_PROPERTY = 'history.expire.max-ref-age-ms';

const DEFAULT_MAX_SNAPSHOT_AGE_MS = 432_000_000n;
const DEFAULT_MIN_SNAPSHOTS_TO_KEEP = 1;
const READ_CONCURRENCY = 16;

/** Options of {@link expireSnapshots}. */
export interface ExpireSnapshotsOptions {
  /**
   * Snapshots with a timestamp before this (ms since the epoch) may expire, on branches without their own
   * `max-snapshot-age-ms` and for snapshots no ref reaches.
   * @default now − the table property `history.expire.max-snapshot-age-ms` (5 days when unset)
   */
  olderThanMs?: bigint | number;
  /**
   * Every branch without its own `min-snapshots-to-keep` keeps at least its latest N snapshots, however old. A
   * floor, as in the spec and Java: it never expires a snapshot newer than the age cut-off by itself, so to keep
   * only the latest N, also pass `olderThanMs: Date.now()`.
   * @default the table property `history.expire.min-snapshots-to-keep` (1 when unset)
   */
  retainLast?: number;
  /** The time ages are measured from (ms since the epoch). @default now */
  nowMs?: bigint | number;
  /**
   * Delete the files that only expired snapshots reached. Without it the snapshots are only removed from the
   * metadata, and their files become orphans for `removeOrphanFiles`.
   * @default true
   */
  cleanExpiredFiles?: boolean;
  /** Compute what would expire and be deleted, without committing or deleting anything. @default false */
  dryRun?: boolean;
  /** Commit attempts before a lost compare-and-swap race reaches the caller. @default 5 */
  maxCommitAttempts?: number;
}

/** Files deleted (or, in a dry run, that would be deleted), by kind, as the metadata spells their paths. */
export interface ExpiredFiles {
  manifestLists: string[];
  manifests: string[];
  dataFiles: string[];
  positionDeleteFiles: string[];
  equalityDeleteFiles: string[];
  /** Puffin statistics files of expired snapshots. */
  statisticsFiles: string[];
}

/** What {@link expireSnapshots} did. */
export interface ExpireSnapshotsResult {
  expiredSnapshotIds: bigint[];
  /** Refs removed because they were older than their `max-ref-age-ms`. */
  removedRefs: string[];
  files: ExpiredFiles;
  /** The table's metadata file after the operation (unchanged in a dry run or when nothing expired). */
  metadataLocation: string;
  dryRun: boolean;
}

/** The retention rules in force, with table-property defaults resolved. */
export interface RetentionPolicy {
  nowMs: bigint;
  /** Default cut-off for branches without `max-snapshot-age-ms`, and for unreferenced snapshots. */
  expireOlderThanMs: bigint;
  /** Default for branches without `min-snapshots-to-keep`. */
  minSnapshotsToKeep: number;
  /** Default for refs without `max-ref-age-ms`; undefined keeps refs forever. */
  maxRefAgeMs: bigint | undefined;
}

/** Which snapshots and refs stay. */
export interface ExpiryPlan {
  retainedSnapshotIds: Set<bigint>;
  expiredSnapshotIds: bigint[];
  removedRefs: string[];
}

/**
 * Expires snapshots by the spec's retention rules and deletes the files that only they reached.
 *
 * A snapshot stays when it is the current snapshot; when a retained tag points at it; when it is among a retained
 * branch's latest `min-snapshots-to-keep` ancestors or newer than the branch's age cut-off (the ref's
 * `max-snapshot-age-ms`, else `olderThanMs`); or when no ref reaches it and it is newer than `olderThanMs`. Refs
 * other than `main` are removed when their snapshot is older than their `max-ref-age-ms` (else the table's
 * `history.expire.max-ref-age-ms`). Files are deleted when an expired snapshot reached them and no remaining
 * snapshot does: manifest lists, manifests, then data and delete files that no remaining manifest lists as live.
 *
 * @throws GarbageCollectionDisabledError when the table's `gc.enabled` is false.
 * @throws InvalidMaintenanceOptionsError for `retainLast` below 1.
 * @throws InvalidTableConfigError for a malformed retention property.
 * @throws FileNotFoundError when a remaining snapshot's manifest list or manifest is missing (nothing is
 *   committed: files cannot be judged unreachable without reading every remaining manifest).
 */
export async function expireSnapshots(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: ExpireSnapshotsOptions = {},
): Promise<ExpireSnapshotsResult> {
  if (options.retainLast !== undefined && (!Number.isInteger(options.retainLast) || options.retainLast < 1)) {
    throw new InvalidMaintenanceOptionsError(
      'retainLast',
      `must be an integer of at least 1, got ${options.retainLast}`,
    );
  }
  const clean = options.cleanExpiredFiles ?? true;
  let outcome: { plan: ExpiryPlan; files: ExpiredFiles } | undefined;
  const decide = async (current: TableMetadata): Promise<TableMetadata> => {
    if (!gcEnabled(current)) throw new GarbageCollectionDisabledError(tableDisplayName(table), 'snapshot expiry');
    const policy = retentionPolicy(current, options);
    const plan = planSnapshotExpiry(current, policy);
    if (plan.expiredSnapshotIds.length === 0 && plan.removedRefs.length === 0) {
      outcome = { plan, files: noFiles() };
      return current;
    }
    const next = removeSnapshots(current, plan, policy.nowMs);
    outcome = { plan, files: clean ? await unreachableFiles(io, current, next) : noFiles() };
    return next;
  };

  if (options.dryRun === true) {
    const loaded = await catalog.loadTable(table);
    await decide(loaded.metadata);
    return result(outcome, loaded.metadataLocation, true);
  }
  const loaded = await catalog.commitWithRetry(table, (current) => decide(current), {
    maxAttempts: options.maxCommitAttempts,
  });
  if (outcome !== undefined) {
    const { files } = outcome;
    // Content first: if the process dies half-way, what is left are unreferenced files (orphans), never a
    // remaining manifest that names a deleted file.
    await io.deleteMany([...files.dataFiles, ...files.positionDeleteFiles, ...files.equalityDeleteFiles]);
    await io.deleteMany([...files.manifests, ...files.statisticsFiles]);
    await io.deleteMany(files.manifestLists);
  }
  return result(outcome, loaded.metadataLocation, false);
}

function result(
  outcome: { plan: ExpiryPlan; files: ExpiredFiles } | undefined,
  metadataLocation: string,
  dryRun: boolean,
): ExpireSnapshotsResult {
  return {
    expiredSnapshotIds: outcome?.plan.expiredSnapshotIds ?? [],
    removedRefs: outcome?.plan.removedRefs ?? [],
    files: outcome?.files ?? noFiles(),
    metadataLocation,
    dryRun,
  };
}

function noFiles(): ExpiredFiles {
  return {
    manifestLists: [],
    manifests: [],
    dataFiles: [],
    positionDeleteFiles: [],
    equalityDeleteFiles: [],
    statisticsFiles: [],
  };
}

/** A millisecond table property as a bigint, or undefined when unset. */
function msProperty(metadata: TableMetadata, key: string): bigint | undefined {
  const raw = metadata.properties[key];
  if (raw === undefined) return undefined;
  try {
    const value = BigInt(raw.trim());
    if (value >= 0n) return value;
  } catch {
    // Reported below, with the property's name.
  }
  throw new InvalidTableConfigError(
    `property ${key}`,
    `"${raw}" must be a non-negative number of milliseconds (table ${metadata.location}); fix or remove it`,
  );
}

/** Resolves the options against the table's `history.expire.*` properties. */
export function retentionPolicy(metadata: TableMetadata, options: ExpireSnapshotsOptions = {}): RetentionPolicy {
  const nowMs = BigInt(options.nowMs ?? Date.now());
  const maxAge = msProperty(metadata, MAX_SNAPSHOT_AGE_PROPERTY) ?? DEFAULT_MAX_SNAPSHOT_AGE_MS;
  return {
    nowMs,
    expireOlderThanMs: options.olderThanMs === undefined ? nowMs - maxAge : BigInt(options.olderThanMs),
    minSnapshotsToKeep:
      options.retainLast ?? integerProperty(metadata, MIN_SNAPSHOTS_TO_KEEP_PROPERTY, DEFAULT_MIN_SNAPSHOTS_TO_KEEP),
    maxRefAgeMs: msProperty(metadata, MAX_REF_AGE_PROPERTY),
  };
}

/** The snapshot and its ancestors, newest first, as far as they are still in the metadata. */
function ancestors(byId: ReadonlyMap<bigint, Snapshot>, snapshotId: bigint): Snapshot[] {
  const out: Snapshot[] = [];
  const seen = new Set<bigint>();
  for (let s = byId.get(snapshotId); s !== undefined && !seen.has(s.snapshotId);) {
    seen.add(s.snapshotId);
    out.push(s);
    s = s.parentSnapshotId === undefined ? undefined : byId.get(s.parentSnapshotId);
  }
  return out;
}

/**
 * Decides which snapshots and refs stay under `policy` (pure; see {@link expireSnapshots} for the rules). The
 * current snapshot always stays, and so does every snapshot a retained ref points at.
 */
export function planSnapshotExpiry(metadata: TableMetadata, policy: RetentionPolicy): ExpiryPlan {
  const byId = new Map(metadata.snapshots.map((s) => [s.snapshotId, s] as const));
  const retainedRefs: [string, TableMetadata['refs'][string]][] = [];
  const removedRefs: string[] = [];
  for (const [name, ref] of Object.entries(metadata.refs)) {
    const snapshot = byId.get(ref.snapshotId);
    const maxAge = ref.maxRefAgeMs ?? policy.maxRefAgeMs;
    const expired =
      name !== MAIN_BRANCH &&
      (snapshot === undefined || (maxAge !== undefined && policy.nowMs - snapshot.timestampMs > maxAge));
    if (expired) removedRefs.push(name);
    else retainedRefs.push([name, ref]);
  }

  const retained = new Set<bigint>();
  const reachedByRefs = new Set<bigint>();
  const keepBranch = (headId: bigint, olderThan: bigint, minKeep: number): void => {
    const line = ancestors(byId, headId);
    for (const snapshot of line) reachedByRefs.add(snapshot.snapshotId);
    let kept = 0;
    for (const snapshot of line) {
      // As in Java, the walk stops at the first ancestor no rule keeps: older ones go too, whatever their stamps.
      if (kept >= minKeep && snapshot.timestampMs < olderThan) break;
      retained.add(snapshot.snapshotId);
      kept++;
    }
  };
  for (const [, ref] of retainedRefs) {
    retained.add(ref.snapshotId);
    if (ref.type === 'tag') {
      reachedByRefs.add(ref.snapshotId);
      continue;
    }
    keepBranch(
      ref.snapshotId,
      ref.maxSnapshotAgeMs === undefined ? policy.expireOlderThanMs : policy.nowMs - ref.maxSnapshotAgeMs,
      ref.minSnapshotsToKeep ?? policy.minSnapshotsToKeep,
    );
  }
  // Metadata without a main ref still has a current snapshot; treat it as main's head.
  if (metadata.currentSnapshotId !== null && !Object.hasOwn(metadata.refs, MAIN_BRANCH)) {
    retained.add(metadata.currentSnapshotId);
    keepBranch(metadata.currentSnapshotId, policy.expireOlderThanMs, policy.minSnapshotsToKeep);
  }
  for (const snapshot of metadata.snapshots) {
    if (!reachedByRefs.has(snapshot.snapshotId) && snapshot.timestampMs >= policy.expireOlderThanMs) {
      retained.add(snapshot.snapshotId);
    }
  }
  return {
    retainedSnapshotIds: retained,
    expiredSnapshotIds: metadata.snapshots.map((s) => s.snapshotId).filter((id) => !retained.has(id)),
    removedRefs,
  };
}

/** The snapshot id and file of a `statistics` or `partition-statistics` entry (kept raw in the metadata). */
function statisticsEntry(entry: unknown): { snapshotId: bigint | undefined; path: string | undefined } {
  if (typeof entry !== 'object' || entry === null) return { snapshotId: undefined, path: undefined };
  const record = entry as Record<string, unknown>;
  const id = record['snapshot-id'];
  const path = record['statistics-path'];
  let snapshotId: bigint | undefined;
  try {
    // lossless-json keeps numbers as LosslessNumber, whose string form is the exact digits.
    snapshotId = id === undefined || id === null ? undefined : BigInt(String(id));
  } catch {
    snapshotId = undefined;
  }
  return { snapshotId, path: typeof path === 'string' ? path : undefined };
}

/**
 * The metadata without the plan's expired snapshots and removed refs. The snapshot log loses expired entries and,
 * as in Java, everything before an expired entry (that history no longer leads to a snapshot that exists).
 * Statistics of expired snapshots go too.
 */
export function removeSnapshots(metadata: TableMetadata, plan: ExpiryPlan, nowMs: bigint): TableMetadata {
  const expired = new Set(plan.expiredSnapshotIds);
  const refs: Record<string, TableMetadata['refs'][string]> = {};
  for (const [name, ref] of Object.entries(metadata.refs)) if (!plan.removedRefs.includes(name)) refs[name] = ref;
  const existing = new Set(metadata.snapshots.map((s) => s.snapshotId));
  let snapshotLog: SnapshotLogEntry[] = [];
  for (const entry of metadata.snapshotLog) {
    if (expired.has(entry.snapshotId) || !existing.has(entry.snapshotId)) {
      snapshotLog = [];
    } else {
      snapshotLog.push(entry);
    }
  }
  const keepStats = (entry: unknown): boolean => {
    const { snapshotId } = statisticsEntry(entry);
    return snapshotId === undefined || !expired.has(snapshotId);
  };
  return {
    ...metadata,
    lastUpdatedMs: nowMs > metadata.lastUpdatedMs ? nowMs : metadata.lastUpdatedMs,
    snapshots: metadata.snapshots.filter((s) => !expired.has(s.snapshotId)),
    refs,
    snapshotLog,
    statistics: metadata.statistics.filter(keepStats),
    partitionStatistics: metadata.partitionStatistics.filter(keepStats),
  };
}

/**
 * The files `before`'s snapshots reached that `after`'s do not. Candidates are the manifest lists of removed
 * snapshots, their manifests that no remaining snapshot lists, and the live files of those manifests; a content
 * file survives when any remaining manifest lists it as live (ADDED or EXISTING), as in Java's
 * `ReachableFileCleanup`. Files that are only named by DELETED entries of remaining manifests go: no snapshot
 * reads them.
 */
export async function unreachableFiles(io: FileIO, before: TableMetadata, after: TableMetadata): Promise<ExpiredFiles> {
  const files = noFiles();
  const remainingIds = new Set(after.snapshots.map((s) => s.snapshotId));
  const removed = before.snapshots.filter((s) => !remainingIds.has(s.snapshotId));
  if (removed.length === 0) return files;
  const remainingLists = new Set(after.snapshots.map((s) => s.manifestList));
  files.manifestLists = [...new Set(removed.map((s) => s.manifestList))].filter((p) => !remainingLists.has(p));

  // A removed snapshot whose list is already gone (an earlier cleanup died half-way) has nothing left to offer.
  const readList = (s: Snapshot, missingOk: boolean): Promise<ManifestFile[]> =>
    snapshotManifests(io, s).catch((err: unknown) => {
      if (missingOk && err instanceof FileNotFoundError) return [];
      throw err;
    });
  const remainingManifests = new Map<string, ManifestFile>();
  for (const list of await mapConcurrently(after.snapshots, READ_CONCURRENCY, (s) => readList(s, false))) {
    for (const m of list) remainingManifests.set(m.manifestPath, m);
  }
  const candidates = new Map<string, ManifestFile>();
  for (const list of await mapConcurrently(removed, READ_CONCURRENCY, (s) => readList(s, true))) {
    for (const m of list) if (!remainingManifests.has(m.manifestPath)) candidates.set(m.manifestPath, m);
  }
  files.manifests = [...candidates.keys()];

  const contentCandidates = new Map<string, FileContent>();
  for (const entries of await mapConcurrently([...candidates.values()], READ_CONCURRENCY, (m) =>
    manifestEntries(io, before, m).catch((err: unknown) => {
      if (err instanceof FileNotFoundError) return [];
      throw err;
    }),
  )) {
    for (const entry of entries)
      if (isLive(entry)) contentCandidates.set(entry.dataFile.filePath, entry.dataFile.content);
  }
  if (contentCandidates.size > 0) {
    await mapConcurrently([...remainingManifests.values()], READ_CONCURRENCY, async (m) => {
      for (const entry of await manifestEntries(io, after, m)) {
        if (isLive(entry)) contentCandidates.delete(entry.dataFile.filePath);
      }
    });
  }
  for (const [path, content] of contentCandidates) {
    if (content === 'data') files.dataFiles.push(path);
    else if (content === 'position-deletes') files.positionDeleteFiles.push(path);
    else files.equalityDeleteFiles.push(path);
  }

  const statsPaths = (metadata: TableMetadata): Set<string> =>
    new Set(
      [...metadata.statistics, ...metadata.partitionStatistics]
        .map((e) => statisticsEntry(e).path)
        .filter((p): p is string => p !== undefined),
    );
  const keptStats = statsPaths(after);
  files.statisticsFiles = [...statsPaths(before)].filter((p) => !keptStats.has(p));
  return files;
}
