/**
 * Manifest rewriting (Java's `RewriteManifests`): many small data manifests — one per append — make every scan
 * plan open many files. This regroups the live entries of the current snapshot's small data manifests into fewer
 * manifests of about the target size, clustered by partition spec and first partition field so that partition
 * pruning can skip whole manifests. Entries are written as EXISTING with their original snapshot ids and sequence
 * numbers, so the table's contents and every delete's applicability stay exactly the same.
 */
import type { FileIO } from '../../storage/file-io.js';
import type { TableIdentifierInput } from '../catalog/identifier.js';
import type { ManifestEntry, PartitionValue } from '../data-file.js';
import type { ManifestFile } from '../manifest-list.js';
import { currentSnapshot, newSnapshotId } from '../metadata-json.js';
import { noChanges } from '../table-update.js';
import { InvalidMaintenanceOptionsError, MaintenanceConflictError } from './errors.js';
import { commitReplaceSnapshot, writeSnapshotManifest, WrittenFiles } from './replace-commit.js';
import {
  integerProperty,
  isLive,
  manifestEntries,
  mapConcurrently,
  snapshotManifests,
  tableDisplayName,
  type MaintenanceCatalog,
} from './table-files.js';

/** Table property for the size manifests aim at (Java's). */
export const MANIFEST_TARGET_SIZE_PROPERTY = 'commit.manifest.target-size-bytes';

/** Java's default for {@link MANIFEST_TARGET_SIZE_PROPERTY}: 8 MiB. */
export const DEFAULT_MANIFEST_TARGET_SIZE_BYTES = 8 * 1024 * 1024;

/** Options of {@link rewriteManifests}. */
export interface RewriteManifestsOptions {
  /**
   * The size new manifests aim at; data manifests below it are rewritten. Entries per manifest are estimated from
   * the input manifests' bytes per entry.
   * @default the table property `commit.manifest.target-size-bytes`, else 8388608 (8 MiB)
   */
  targetManifestSizeBytes?: number;
  /** Commit attempts before a lost compare-and-swap race reaches the caller. @default 5 */
  maxCommitAttempts?: number;
}

/** What {@link rewriteManifests} did. */
export interface RewriteManifestsResult {
  /** The `replace` snapshot; undefined when nothing needed rewriting (then nothing was committed). */
  snapshotId: bigint | undefined;
  sequenceNumber: bigint | undefined;
  /** The table's metadata file after the operation. */
  metadataLocation: string;
  /** Manifests the new snapshot no longer lists. */
  replacedManifests: string[];
  /** Manifests written for it. */
  addedManifests: string[];
  /** Live entries moved into the new manifests. */
  rewrittenEntries: number;
  attempts: number;
}

/**
 * Rewrites the current snapshot's small data manifests (below the target size), per partition spec, into as few
 * manifests as the target size allows, entries sorted by their first partition field. A spec is left alone when
 * the rewrite would not reduce its manifest count. Delete manifests and large data manifests are carried as they
 * are. Commits one `replace` snapshot whose summary has Java's `manifests-created`, `manifests-kept`,
 * `manifests-replaced` and `entries-processed`.
 *
 * Each commit attempt checks that every replaced manifest is still in the fresh current snapshot (a concurrent
 * delete or compaction rewrites manifests, and its changes must not be undone); concurrent appends are carried.
 *
 * @throws MaintenanceConflictError (retryable) when a replaced manifest is no longer current.
 * @throws InvalidMaintenanceOptionsError for a non-positive target size.
 * @throws CommitConflictError when every attempt lost the compare-and-swap race.
 */
export async function rewriteManifests(
  catalog: MaintenanceCatalog,
  io: FileIO,
  table: TableIdentifierInput,
  options: RewriteManifestsOptions = {},
): Promise<RewriteManifestsResult> {
  const { metadata, metadataLocation } = await catalog.loadTable(table);
  const targetBytes =
    options.targetManifestSizeBytes ??
    integerProperty(metadata, MANIFEST_TARGET_SIZE_PROPERTY, DEFAULT_MANIFEST_TARGET_SIZE_BYTES);
  if (!Number.isFinite(targetBytes) || targetBytes <= 0) {
    throw new InvalidMaintenanceOptionsError(
      'targetManifestSizeBytes',
      `must be a positive number, got ${targetBytes}`,
    );
  }
  const nothing: RewriteManifestsResult = {
    snapshotId: undefined,
    sequenceNumber: undefined,
    metadataLocation,
    replacedManifests: [],
    addedManifests: [],
    rewrittenEntries: 0,
    attempts: 0,
  };
  const start = currentSnapshot(metadata);
  if (start === undefined) return nothing;

  const bySpec = new Map<number, ManifestFile[]>();
  for (const manifest of await snapshotManifests(io, start)) {
    if (manifest.content !== 'data' || Number(manifest.manifestLength) >= targetBytes) continue;
    const group = bySpec.get(manifest.partitionSpecId) ?? [];
    bySpec.set(manifest.partitionSpecId, group.concat(manifest));
  }

  const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
  const written = new WrittenFiles();
  const replaced: ManifestFile[] = [];
  const added: ManifestFile[] = [];
  let rewrittenEntries = 0;
  try {
    for (const [specId, group] of bySpec) {
      if (group.length < 2) continue;
      const all = (await mapConcurrently(group, 16, (m) => manifestEntries(io, metadata, m))).flat();
      const live = all.filter(isLive).sort(byFirstPartitionField);
      const bytes = group.reduce((n, m) => n + Number(m.manifestLength), 0);
      const perManifest = Math.max(1, Math.floor(targetBytes / Math.max(1, bytes / Math.max(1, all.length))));
      const chunks: ManifestEntry[][] = [];
      for (let i = 0; i < live.length; i += perManifest) chunks.push(live.slice(i, i + perManifest));
      if (chunks.length >= group.length) continue;
      for (const chunk of chunks) {
        // EXISTING keeps each file's snapshot id and sequence numbers: scans see exactly the same files and deletes.
        const entries = chunk.map((entry): ManifestEntry => ({ ...entry, status: 'existing' }));
        added.push(
          await writeSnapshotManifest(io, metadata, { specId, content: 'data', entries, snapshotId }, written),
        );
      }
      replaced.push(...group);
      rewrittenEntries += live.length;
    }
  } catch (err) {
    await written.deleteAllBut(io, new Set());
    throw err;
  }
  if (replaced.length === 0) return nothing;

  const replacedPaths = new Set(replaced.map((m) => m.manifestPath));
  const tableName = tableDisplayName(table);
  const { loaded, sequenceNumber, attempts } = await commitReplaceSnapshot(catalog, io, table, {
    snapshotId,
    operation: 'manifest rewrite',
    written,
    keepOnSuccess: new Set(),
    maxAttempts: options.maxCommitAttempts,
    build: async (_current, parent) => {
      const fresh = await snapshotManifests(io, parent);
      const freshPaths = new Set(fresh.map((m) => m.manifestPath));
      const gone = [...replacedPaths].find((p) => !freshPaths.has(p));
      if (gone !== undefined) {
        throw new MaintenanceConflictError(
          tableName,
          'manifest rewrite',
          `manifest "${gone}" is no longer in the current snapshot (a concurrent commit rewrote it)`,
        );
      }
      const kept = fresh.filter((m) => !replacedPaths.has(m.manifestPath));
      return {
        manifests: [...added, ...kept],
        changes: noChanges(),
        properties: {
          'manifests-created': String(added.length),
          'manifests-kept': String(kept.length),
          'manifests-replaced': String(replaced.length),
          'entries-processed': String(rewrittenEntries),
        },
      };
    },
  });
  return {
    snapshotId,
    sequenceNumber,
    metadataLocation: loaded.metadataLocation,
    replacedManifests: [...replacedPaths],
    addedManifests: added.map((m) => m.manifestPath),
    rewrittenEntries,
    attempts,
  };
}

/** Orders entries by their first partition value (nulls first), then by path, so that clusters stay contiguous. */
function byFirstPartitionField(a: ManifestEntry, b: ManifestEntry): number {
  const byValue = comparePartitionValues(a.dataFile.partition[0] ?? null, b.dataFile.partition[0] ?? null);
  if (byValue !== 0) return byValue;
  return a.dataFile.filePath < b.dataFile.filePath ? -1 : a.dataFile.filePath > b.dataFile.filePath ? 1 : 0;
}

function comparePartitionValues(a: PartitionValue, b: PartitionValue): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  if (typeof a === 'object' && typeof b === 'object') {
    if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
    if ('unscaled' in a && 'unscaled' in b) return a.unscaled < b.unscaled ? -1 : a.unscaled > b.unscaled ? 1 : 0;
  }
  // Within one partition field every value has the same JS type; strings compare by code unit, which only has
  // to be consistent here, not Iceberg's order.
  return a < b ? -1 : a > b ? 1 : 0;
}
