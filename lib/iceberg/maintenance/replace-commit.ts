/**
 * Committing a `replace` snapshot (compaction, manifest rewrites): manifests written for the new snapshot, a
 * manifest list per attempt, and cleanup of everything the operation wrote that the table did not end up using.
 */
import { randomUUID } from 'node:crypto';
import type { FileIO } from '../../storage/file-io.js';
import { encodeBound } from '../bounds.js';
import { CommitStateUnknownError } from '../catalog/errors.js';
import type { LoadedTable } from '../catalog/sql-catalog.js';
import type { TableIdentifierInput } from '../catalog/identifier.js';
import { metadataDirectory } from '../catalog/metadata-location.js';
import type { ManifestEntry } from '../data-file.js';
import { InvalidTableConfigError } from '../errors.js';
import { writeManifest } from '../manifest.js';
import { newManifestFile, writeManifestList, type ManifestContent, type ManifestFile } from '../manifest-list.js';
import { currentSchema, currentSnapshot, type Snapshot, type TableMetadata } from '../metadata-json.js';
import { addSnapshot, nextSequenceNumber, snapshotSummary, type SnapshotChanges } from '../table-update.js';
import { MaintenanceConflictError } from './errors.js';
import { tableDisplayName, type MaintenanceCatalog } from './table-files.js';

/**
 * The files an operation wrote, so that those the table does not reference in the end are deleted again: data
 * files and manifests of a failed operation, manifests and manifest lists of attempts that lost a race.
 */
export class WrittenFiles {
  private readonly paths = new Set<string>();

  /** Records a file the operation wrote. */
  add(path: string): void {
    this.paths.add(path);
  }

  /**
   * A view of `io` that records every file written through it, for writers that may fail half-way (a failed
   * multi-file write returns nothing, yet some files exist).
   */
  tracking(io: FileIO): FileIO {
    return new Proxy(io, {
      get: (target, property) => {
        if (property === 'write' || property === 'writeIfAbsent' || property === 'writeStream') {
          const write = Reflect.get(target, property, target) as (uri: string, data: never) => Promise<unknown>;
          return (uri: string, data: never) => {
            this.add(uri);
            return write.call(target, uri, data);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /**
   * Deletes every recorded file not in `keep`. Best effort: a file left behind is an orphan that
   * `removeOrphanFiles` reclaims, and the caller's own outcome matters more than this cleanup.
   */
  async deleteAllBut(io: FileIO, keep: ReadonlySet<string>): Promise<void> {
    const doomed = [...this.paths].filter((p) => !keep.has(p));
    await io.deleteMany(doomed).catch(() => undefined);
    for (const p of doomed) this.paths.delete(p);
  }
}

/**
 * Writes `entries` as one manifest of the given spec and content for `snapshotId`. ADDED entries may leave their
 * sequence numbers null (inherited from the commit); EXISTING and DELETED ones carry theirs.
 *
 * @throws InvalidTableConfigError when the spec is not in the metadata.
 */
export async function writeSnapshotManifest(
  io: FileIO,
  metadata: TableMetadata,
  args: { specId: number; content: ManifestContent; entries: readonly ManifestEntry[]; snapshotId: bigint },
  written: WrittenFiles,
): Promise<ManifestFile> {
  const spec = metadata.partitionSpecs.find((s) => s.specId === args.specId);
  if (spec === undefined) {
    throw new InvalidTableConfigError(
      'partition spec',
      `spec ${args.specId} is used by a manifest but not listed in the metadata of table ${metadata.location}`,
    );
  }
  const { bytes, summary } = writeManifest({
    schema: currentSchema(metadata),
    spec,
    formatVersion: 2,
    content: args.content,
    entries: args.entries,
    snapshotId: args.snapshotId,
    encodeBound,
  });
  const manifestPath = `${metadataDirectory(metadata)}/${randomUUID()}-m0.avro`;
  written.add(manifestPath);
  await io.write(manifestPath, bytes);
  return newManifestFile({ manifestPath, manifestLength: bytes.length, summary });
}

/**
 * The manifests of the next snapshot of a rewrite: `added` first, then each live manifest carried on as it is, or
 * rewritten without the entries in `drop`. As in Java, a manifest of an earlier snapshot without live files only
 * records old removals, which that snapshot keeps, so it is not carried on (such manifests would pile up). The same
 * manifest with the same removals is the same file: `cache` reuses it when an attempt is retried.
 */
export async function manifestsWithout(
  io: FileIO,
  metadata: TableMetadata,
  manifests: readonly { manifest: ManifestFile; entries: ManifestEntry[] }[],
  drop: ReadonlySet<string>,
  added: readonly ManifestFile[],
  snapshotId: bigint,
  written: WrittenFiles,
  cache: Map<string, Promise<ManifestFile>>,
): Promise<ManifestFile[]> {
  const next: ManifestFile[] = [...added];
  for (const { manifest, entries } of manifests) {
    const hits = entries.filter((e) => drop.has(e.dataFile.filePath)).map((e) => e.dataFile.filePath);
    if (hits.length === 0) {
      if (entries.length > 0) next.push(manifest);
      continue;
    }
    const key = `${manifest.manifestPath}\n${hits.sort().join('\n')}`;
    let rewritten = cache.get(key);
    if (rewritten === undefined) {
      rewritten = writeManifestWithout(io, metadata, manifest, entries, drop, snapshotId, written);
      cache.set(key, rewritten);
    }
    next.push(await rewritten);
  }
  return next;
}

/**
 * Rewrites a manifest without the files in `removed`: those become DELETED entries of `snapshotId` (keeping their
 * sequence numbers, as the spec requires), every other live entry becomes EXISTING with its original snapshot id
 * and sequence numbers, and entries that were already DELETED are dropped (their removal belongs to an older
 * snapshot).
 *
 * @param entries the manifest's entries with inheritance applied.
 */
export async function writeManifestWithout(
  io: FileIO,
  metadata: TableMetadata,
  manifest: ManifestFile,
  entries: readonly ManifestEntry[],
  removed: ReadonlySet<string>,
  snapshotId: bigint,
  written: WrittenFiles,
): Promise<ManifestFile> {
  const rewritten = entries
    .filter((entry) => entry.status !== 'deleted')
    .map((entry): ManifestEntry =>
      removed.has(entry.dataFile.filePath)
        ? { ...entry, status: 'deleted', snapshotId }
        : { ...entry, status: 'existing' },
    );
  return writeSnapshotManifest(
    io,
    metadata,
    { specId: manifest.partitionSpecId, content: manifest.content, entries: rewritten, snapshotId },
    written,
  );
}

/** What one attempt of a replace commit builds from the table's fresh state. */
export interface ReplaceAttempt {
  /** Every manifest of the new snapshot: new ones (sequence numbers unassigned) and carried ones. */
  manifests: ManifestFile[];
  changes: SnapshotChanges;
  /** Extra summary properties. @default none */
  properties?: Record<string, string>;
  /** Files this attempt wrote (besides its manifests) that the snapshot references, kept if it commits. */
  keep?: readonly string[];
}

/** Inputs of {@link commitReplaceSnapshot}. */
export interface ReplaceCommit {
  snapshotId: bigint;
  /** Names the operation in conflict messages, e.g. `compaction`. */
  operation: string;
  /**
   * Re-validates the plan against the fresh metadata and builds the snapshot's manifests; runs on every attempt.
   * Throw a {@link MaintenanceConflictError} when a concurrent commit invalidated the plan.
   */
  build: (current: TableMetadata, parent: Snapshot) => Promise<ReplaceAttempt>;
  /** Files written before the commit that the snapshot must keep on success (new data files). */
  keepOnSuccess: ReadonlySet<string>;
  written: WrittenFiles;
  /** @default 5 */
  maxAttempts?: number;
}

/**
 * Commits a `replace` snapshot on `main` through `commitWithRetry`: each attempt calls `build` on the fresh
 * metadata, writes a new manifest list with the fresh sequence number, and adds the snapshot. Afterwards files the
 * operation wrote but the table does not use are deleted; after a failure, all of them (data files included),
 * except when the commit's outcome is unknown, since the table may then reference them.
 */
export async function commitReplaceSnapshot(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  commit: ReplaceCommit,
): Promise<{ loaded: LoadedTable; sequenceNumber: bigint; attempts: number }> {
  let attempts = 0;
  let sequenceNumber = 0n;
  let lastAttempt: { listPath: string; manifests: readonly ManifestFile[]; keep: readonly string[] } | undefined;
  try {
    const loaded = await catalog.commitWithRetry(
      table,
      async (current, attempt) => {
        attempts = attempt.attempt;
        const parent = currentSnapshot(current);
        if (parent === undefined) {
          throw new MaintenanceConflictError(tableDisplayName(table), commit.operation, 'the table has no snapshot');
        }
        const built = await commit.build(current, parent);
        sequenceNumber = nextSequenceNumber(current);
        const list = writeManifestList({
          snapshotId: commit.snapshotId,
          parentSnapshotId: parent.snapshotId,
          sequenceNumber,
          manifests: built.manifests,
        });
        const listPath = `${metadataDirectory(current)}/snap-${commit.snapshotId}-${attempt.attempt}-${randomUUID()}.avro`;
        commit.written.add(listPath);
        await io.write(listPath, list.bytes);
        lastAttempt = { listPath, manifests: built.manifests, keep: built.keep ?? [] };
        return addSnapshot(current, {
          snapshotId: commit.snapshotId,
          manifestList: listPath,
          summary: snapshotSummary('replace', built.changes, parent.summary, built.properties),
          timestampMs: BigInt(Date.now()),
        });
      },
      { maxAttempts: commit.maxAttempts },
    );
    const keep = new Set(commit.keepOnSuccess);
    if (lastAttempt !== undefined) {
      keep.add(lastAttempt.listPath);
      for (const m of lastAttempt.manifests) keep.add(m.manifestPath);
      for (const path of lastAttempt.keep) keep.add(path);
    }
    await commit.written.deleteAllBut(io, keep);
    return { loaded, sequenceNumber, attempts };
  } catch (err) {
    if (!(err instanceof CommitStateUnknownError)) await commit.written.deleteAllBut(io, new Set());
    throw err;
  }
}
