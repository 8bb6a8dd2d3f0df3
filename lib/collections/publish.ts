/**
 * Publishing (stage 5 of `collections-build`): the collections table, the build manifest and the versioned alias.
 *
 *   table `<ns>.collections`: one row per collection and version, partitioned by `version`
 *   <root>/<name>/versions/<version>/b-<runKey>/manifest.json   the build: table, snapshot, evaluation, usage
 *   <root>/<name>/alias/<generation>.json                        `<name>@current` (lib/embedding/alias-store.ts)
 *
 * A version's rows land in one snapshot tagged with the version and the run key. Writing is idempotent per
 * (version, run key), and a rerun of the version under another run key replaces that version's rows (overwrite by
 * `version = v`); other versions are untouched, so the alias can roll back to them.
 */
import { listAliases, readAlias, type AliasRecord } from '../embedding/alias-store.js';
import { appendColumns } from '../iceberg/append.js';
import { loadOrCreateTable } from '../iceberg/catalog/load-or-create.js';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import * as ex from '../iceberg/expressions.js';
import { currentSchema, type TableMetadata } from '../iceberg/metadata-json.js';
import { overwriteRows } from '../iceberg/overwrite.js';
import { scanTable } from '../iceberg/scan.js';
import type { Schema } from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import { CollectionsError } from './errors.js';
import type { CollectionMember, EvaluationResult, PublishedCollection, VlmUsage } from './types.js';

/** Snapshot summary property: the version a snapshot wrote. */
export const VERSION_PROPERTY = 'sluice.collections.version';
/** Snapshot summary property: the run key of the build that wrote it. */
export const RUN_PROPERTY = 'sluice.collections.run';
/** Snapshot summary property: how many collection rows of the version it holds. */
export const ROWS_PROPERTY = 'sluice.collections.rows';

/** The collections table schema (ids as Java assigns them on create; looked up by name when writing). */
export const COLLECTIONS_SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [],
  fields: [
    { id: 1, name: 'collection_id', required: true, type: { kind: 'string' } },
    { id: 2, name: 'name', required: false, type: { kind: 'string' } },
    {
      id: 3,
      name: 'attributes',
      required: false,
      type: {
        kind: 'map',
        keyId: 8,
        key: { kind: 'string' },
        valueId: 9,
        valueRequired: false,
        value: { kind: 'string' },
      },
    },
    {
      id: 4,
      name: 'items',
      required: false,
      type: {
        kind: 'list',
        elementId: 10,
        elementRequired: false,
        element: {
          kind: 'struct',
          fields: [
            { id: 11, name: 'item_id', required: false, type: { kind: 'string' } },
            { id: 12, name: 'score', required: false, type: { kind: 'double' } },
            { id: 13, name: 'verified', required: false, type: { kind: 'boolean' } },
          ],
        },
      },
    },
    { id: 5, name: 'partial', required: false, type: { kind: 'boolean' } },
    { id: 6, name: 'version', required: false, type: { kind: 'string' } },
    { id: 7, name: 'built_at', required: false, type: { kind: 'timestamptz' } },
  ],
};

/** Loads the collections table, creating it (and its namespace) when missing; checks its columns otherwise. */
export async function ensureCollectionsTable(catalog: SqlCatalog, table: string): Promise<TableMetadata> {
  const metadata = await loadOrCreateTable(catalog, table, {
    schema: COLLECTIONS_SCHEMA,
    partitionSpec: [{ sourceColumn: 'version', transform: 'identity' }],
  });
  const names = new Set(currentSchema(metadata).fields.map((f) => f.name));
  const missing = COLLECTIONS_SCHEMA.fields.filter((f) => !names.has(f.name)).map((f) => f.name);
  if (missing.length > 0) {
    throw new CollectionsError(
      'invalid-option',
      `table ${table} is not a collections table: it lacks ${missing.join(', ')}; a collections table has ` +
        `(${COLLECTIONS_SCHEMA.fields.map((f) => f.name).join(', ')}); name another with output.table`,
    );
  }
  return metadata;
}

function fieldIds(metadata: TableMetadata): (name: string) => number {
  const byName = new Map(currentSchema(metadata).fields.map((f) => [f.name, f.id]));
  return (name) => {
    const id = byName.get(name);
    if (id === undefined) throw new CollectionsError('invalid-option', `the collections table has no column ${name}`);
    return id;
  };
}

/** The most recent snapshot that wrote `version` (by sequence number), if the table still has one. */
function latestVersionSnapshot(metadata: TableMetadata, version: string) {
  return [...metadata.snapshots]
    .filter((s) => s.summary[VERSION_PROPERTY] === version)
    .sort((a, b) => (a.sequenceNumber < b.sequenceNumber ? 1 : a.sequenceNumber > b.sequenceNumber ? -1 : 0))[0];
}

/** Input of {@link writeCollectionsVersion}. */
export interface WriteCollectionsInput {
  catalog: SqlCatalog;
  io: FileIO;
  table: string;
  version: string;
  /** Identifies the build (e.g. the workflow run id): a retry with the same key is a no-op. */
  runKey: string;
  collections: readonly PublishedCollection[];
  builtAt: Date;
  /** Extra snapshot summary properties (counts, evaluation figures…), shown by any Iceberg tool. */
  summary?: Record<string, string>;
}

/** What {@link writeCollectionsVersion} committed (or found committed). */
export interface WriteCollectionsResult {
  /** The snapshot holding the version's rows, as a decimal string (JSON-safe). */
  snapshotId: string;
  rows: number;
  /** true when the same version and run key were already written: nothing was committed. */
  alreadyWritten: boolean;
}

/**
 * Writes one version of the collections as a single snapshot tagged `sluice.collections.version` and
 * `sluice.collections.run` (plus `summary`). Idempotent: when the latest snapshot of this version carries the same
 * run key, it is returned as is. Rows of the same version from an earlier run are replaced (overwrite filtered on
 * `version = v`), never duplicated; other versions are kept.
 */
export async function writeCollectionsVersion(input: WriteCollectionsInput): Promise<WriteCollectionsResult> {
  const { catalog, io, table, version, runKey } = input;
  const metadata = await ensureCollectionsTable(catalog, table);
  const previous = latestVersionSnapshot(metadata, version);
  if (previous && previous.summary[RUN_PROPERTY] === runKey) {
    return {
      snapshotId: previous.snapshotId.toString(),
      rows: Number(previous.summary[ROWS_PROPERTY] ?? 0),
      alreadyWritten: true,
    };
  }
  const id = fieldIds(metadata);
  const builtAtMicros = BigInt(input.builtAt.getTime()) * 1000n;
  const rows = input.collections;
  const columns = new Map<number, unknown[]>([
    [id('collection_id'), rows.map((c) => c.id)],
    [id('name'), rows.map((c) => c.name)],
    [id('attributes'), rows.map((c) => new Map(Object.entries(c.attributes)))],
    [id('items'), rows.map((c) => c.items.map((m) => ({ item_id: m.itemId, score: m.score, verified: m.verified })))],
    [id('partial'), rows.map((c) => c.partial)],
    [id('version'), rows.map(() => version)],
    [id('built_at'), rows.map(() => builtAtMicros)],
  ]);
  const snapshotProperties = {
    ...input.summary,
    [VERSION_PROPERTY]: version,
    [RUN_PROPERTY]: runKey,
    [ROWS_PROPERTY]: String(rows.length),
  };
  if (previous) {
    const result = await overwriteRows(catalog, io, table, {
      columns,
      rowCount: rows.length,
      overwrite: { filter: ex.eq('version', version) },
      snapshotProperties,
    });
    if (result.snapshotId !== undefined) {
      return { snapshotId: result.snapshotId.toString(), rows: rows.length, alreadyWritten: false };
    }
  }
  // First write of the version (or a rerun with no rows where the old rows were already gone): a plain append,
  // which also records an empty version as its own snapshot.
  const appended = await appendColumns(catalog, io, table, { columns, rowCount: rows.length, snapshotProperties });
  return { snapshotId: appended.snapshotId.toString(), rows: rows.length, alreadyWritten: false };
}

/** The manifest of one collections build: what the alias points at. */
export interface CollectionsBuildManifest {
  formatVersion: 1;
  kind: 'collections-build';
  name: string;
  version: string;
  runKey: string;
  /** The collections table and the snapshot that holds this version's rows. */
  table: string;
  snapshotId: string;
  /** ISO time of the build. */
  builtAt: string;
  /** The evaluation figures; null (or absent) when the run had no evaluation set. */
  evaluation?: EvaluationResult | null;
  /** The quality gate's verdict; null (or absent) when nothing was gated. */
  gate?: { passed: boolean; reasons: string[] } | null;
  usage?: VlmUsage;
  /** VLM calls as a share of the naive items × collections (see `vlmCallShare`). */
  vlmCallShare?: number;
  /** Free counts: collections, members, verified members, partial collections… */
  counts: Record<string, number>;
}

/** Fields of {@link writeBuildManifest} besides the name and version; `builtAt` defaults to now. */
export type BuildManifestFields = Omit<
  CollectionsBuildManifest,
  'formatVersion' | 'kind' | 'name' | 'version' | 'builtAt'
> & {
  builtAt?: string;
};

/** The build directory of a run: `<root>/<name>/versions/<version>/b-<runKey>`. */
export function collectionsBuildDir(root: string, name: string, version: string, runKey: string): string {
  const safeKey = runKey.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${root.replace(/\/+$/, '')}/${name}/versions/${version}/b-${safeKey}`;
}

/**
 * Writes `manifest.json` of the build and returns its directory, the `indexDir` the alias is then pointed at with
 * `setAlias(io, root, name, { version, indexDir: buildDir }, …)` once the quality gate passed. Rewriting it for the
 * same run is harmless (same directory, same content apart from what the caller changed).
 */
export async function writeBuildManifest(
  io: FileIO,
  root: string,
  name: string,
  version: string,
  fields: BuildManifestFields,
): Promise<string> {
  const buildDir = collectionsBuildDir(root, name, version, fields.runKey);
  const manifest: CollectionsBuildManifest = {
    formatVersion: 1,
    kind: 'collections-build',
    name,
    version,
    ...fields,
    builtAt: fields.builtAt ?? new Date().toISOString(),
  };
  await io.write(`${buildDir}/manifest.json`, JSON.stringify(manifest, null, 2));
  return buildDir;
}

/** Reads a build manifest. @throws CollectionsError `not-found` or `corrupt-file`. */
export async function readBuildManifest(io: FileIO, buildDir: string): Promise<CollectionsBuildManifest> {
  const uri = `${buildDir}/manifest.json`;
  if (!(await io.exists(uri))) throw new CollectionsError('not-found', `no collections build at ${buildDir}`);
  let parsed: Partial<CollectionsBuildManifest>;
  try {
    parsed = JSON.parse(Buffer.from(await io.read(uri)).toString('utf8')) as Partial<CollectionsBuildManifest>;
  } catch (err) {
    throw new CollectionsError('corrupt-file', `build manifest ${uri} is not JSON: ${(err as Error).message}`);
  }
  if (
    parsed.kind !== 'collections-build' ||
    typeof parsed.table !== 'string' ||
    typeof parsed.snapshotId !== 'string'
  ) {
    throw new CollectionsError('corrupt-file', `${uri} is not a collections build manifest`);
  }
  return parsed as CollectionsBuildManifest;
}

/** Input of {@link readPublishedCollections}. */
export interface ReadPublishedInput {
  catalog: SqlCatalog;
  io: FileIO;
  root: string;
  name: string;
}

/** Rows of the collections table for one version, read at one snapshot. */
export async function readCollectionsVersion(
  catalog: SqlCatalog,
  io: FileIO,
  table: string,
  version: string,
  snapshotId?: string,
): Promise<PublishedCollection[]> {
  const { metadata } = await catalog.loadTable(table);
  const snapshot = snapshotId === undefined ? undefined : BigInt(snapshotId);
  if (snapshot !== undefined && !metadata.snapshots.some((s) => s.snapshotId === snapshot)) {
    throw new CollectionsError(
      'not-found',
      `snapshot ${snapshotId} of ${table} (version ${version}) no longer exists; it was expired — rebuild the ` +
        'version or roll the alias back',
    );
  }
  const id = fieldIds(metadata);
  const out: PublishedCollection[] = [];
  for await (const batch of scanTable(io, metadata, {
    ...(snapshot !== undefined ? { snapshotId: snapshot } : {}),
    filter: ex.eq('version', version),
  })) {
    const col = (n: string) => batch.columns.get(id(n))!;
    const ids = col('collection_id');
    const names = col('name');
    const attrs = col('attributes');
    const items = col('items');
    const partial = col('partial');
    for (let r = 0; r < batch.rowCount; r++) {
      const attributes: Record<string, string> = {};
      for (const [k, v] of (attrs[r] as Map<string, string | null> | null) ?? new Map<string, string | null>()) {
        if (v !== null) attributes[k] = v;
      }
      // Structs of a list read back as arrays in field order: [item_id, score, verified].
      const members: CollectionMember[] = ((items[r] as [string, number, boolean][] | null) ?? []).map(
        ([itemId, score, verified]) => ({ itemId, score, verified: verified === true }),
      );
      out.push({
        id: ids[r] as string,
        name: (names[r] as string | null) ?? (ids[r] as string),
        attributes,
        items: members,
        partial: partial[r] === true,
      });
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The collections `<name>@current` points at: the alias, its build manifest, and the rows of that version read
 * at the manifest's snapshot (so a later rerun of the same version does not change what the alias serves until it
 * is published).
 *
 * @throws CollectionsError `not-found` when the name was never published under `root`.
 */
export async function readPublishedCollections(
  input: ReadPublishedInput,
): Promise<{ alias: AliasRecord; manifest: CollectionsBuildManifest; collections: PublishedCollection[] }> {
  const alias = await readAlias(input.io, input.root, input.name);
  if (!alias) {
    throw new CollectionsError(
      'not-found',
      `collections ${input.name} have no published version under ${input.root}; run collections-build first`,
    );
  }
  const manifest = await readBuildManifest(input.io, alias.indexDir);
  const collections = await readCollectionsVersion(
    input.catalog,
    input.io,
    manifest.table,
    manifest.version,
    manifest.snapshotId,
  );
  return { alias, manifest, collections };
}

/**
 * The collections aliases under `root`: only those whose target is a collections build (the root also holds the
 * item index, whose alias lives in the same layout).
 */
export async function listCollectionAliases(io: FileIO, root: string): Promise<AliasRecord[]> {
  const out: AliasRecord[] = [];
  for (const alias of await listAliases(io, root)) {
    try {
      await readBuildManifest(io, alias.indexDir);
      out.push(alias);
    } catch (err) {
      if (!(err instanceof CollectionsError)) throw err;
    }
  }
  return out;
}
