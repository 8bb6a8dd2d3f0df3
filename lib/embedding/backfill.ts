/**
 * The steps of an embedding backfill as plain functions (no Temporal): run one shard resumably, read a version's
 * vectors back, build its index with a parity sample, measure coverage, and check parity against the online path.
 * Activities wrap these with heartbeats and typed failures.
 */
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import * as ex from '../iceberg/expressions.js';
import { currentSchema } from '../iceberg/metadata-json.js';
import { scanTable } from '../iceberg/scan.js';
import { parseSchema } from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import { EmbeddingError } from './errors.js';
import { buildIndex, cosine, type IndexKey, type IndexManifest } from './index-store.js';
import {
  decodeVectors,
  deserializeDataFile,
  encodeVectors,
  partUri,
  quarantineUri,
  readPart,
  shardManifestUri,
  serializeDataFile,
  writeShardFile,
  type QuarantinedItem,
  type ShardManifest,
  type ShardPart,
} from './output-writer.js';
import {
  filterExpression,
  readAllItems,
  readShardItems,
  shardOutputPath,
  type ShardPlan,
  type SourceItem,
} from './shard-plan.js';

/** The model an embedder runs: its directory and version. */
export interface ModelRef {
  path: string;
  version: string;
}

/** One item's outcome: its vector, or why it was rejected (the item is quarantined, the batch goes on). */
export type EmbedOutcome = Float32Array | { error: { kind: string; message: string } };

/** What the backfill needs from the inference engine. */
export interface Embedder {
  embedTexts(model: ModelRef, texts: readonly string[]): Promise<EmbedOutcome[]>;
  embedImages(model: ModelRef, images: readonly Uint8Array[]): Promise<EmbedOutcome[]>;
}

/** Options of {@link runShard}. */
export interface RunShardOptions {
  io: FileIO;
  plan: ShardPlan;
  shardIndex: number;
  batchSize: number;
  embedder: Embedder;
  /** Where to start (the last heartbeat's offset); parts found past it are reused, not recomputed. @default 0 */
  startOffset?: number;
  attempt?: number;
  /** Items per second for this shard. @default unlimited */
  rateLimit?: number;
  /** Called after each batch's part is stored: heartbeat `offset` here. */
  onProgress?: (offset: number, computedThisAttempt: number) => void;
  /** Called before each batch is embedded (logging and the redone-work benchmark). */
  onBatchStart?: (offset: number, size: number) => void;
  /** Cancellation: checked between batches. */
  signal?: AbortSignal;
  /** Time for `computed_at`. @default now */
  now?: () => Date;
}

export interface RunShardResult {
  shardId: string;
  file: string;
  vectors: number;
  quarantined: number;
  /** The offset this attempt started computing from (after reusing stored parts). */
  resumedFrom: number;
  /** Items this attempt computed. */
  computed: number;
  /** Parts an earlier attempt stored past the heartbeat offset, reused here. */
  reusedParts: number;
}

function cut(text: string | null): string | null {
  return text === null ? null : text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

async function embedBatch(
  io: FileIO,
  plan: ShardPlan,
  embedder: Embedder,
  items: readonly SourceItem[],
  shardId: string,
): Promise<{ ids: string[]; vectors: Float32Array[]; quarantine: QuarantinedItem[] }> {
  const quarantine: QuarantinedItem[] = [];
  const reject = (item: SourceItem, reason: string, message: string) =>
    quarantine.push({
      id: item.id ?? '',
      reason,
      message,
      value: cut(item.value),
      shardId,
      modelVersion: plan.model.version,
    });
  const ready: { item: SourceItem; input: string | Uint8Array }[] = [];
  for (const item of items) {
    if (item.id === null) reject(item, 'null-id', `row has no value in id column "${plan.columns.id}"`);
    else if (item.value === null) {
      reject(item, 'null-value', `row has no value in column "${plan.columns.text ?? plan.columns.imageUri}"`);
    } else if (plan.columns.imageUri) {
      try {
        ready.push({ item, input: await io.read(item.value) });
      } catch (err) {
        reject(item, 'unreadable-image', `image ${item.value} cannot be read: ${(err as Error).message}`);
      }
    } else ready.push({ item, input: item.value });
  }
  const outcomes =
    ready.length === 0
      ? []
      : plan.columns.imageUri
        ? await embedder.embedImages(
            plan.model,
            ready.map((r) => r.input as Uint8Array),
          )
        : await embedder.embedTexts(
            plan.model,
            ready.map((r) => r.input as string),
          );
  const ids: string[] = [];
  const vectors: Float32Array[] = [];
  outcomes.forEach((o, i) => {
    const { item } = ready[i]!;
    if (o instanceof Float32Array) {
      ids.push(item.id!);
      vectors.push(o);
    } else reject(item, o.error.kind, o.error.message);
  });
  return { ids, vectors, quarantine };
}

/**
 * Embeds one shard. Each batch is stored as a part (`parts/<shard>/<offset>.json`) before its offset is reported, so
 * a crash loses at most the batch in flight: the next attempt starts at the reported offset and reuses any part an
 * earlier attempt stored after it. When the stream ends, the parts become the shard's Parquet file (its path fixed by
 * shard id and model version), its quarantine file and its manifest, each replaced whole by a later attempt.
 */
export async function runShard(opts: RunShardOptions): Promise<RunShardResult> {
  const { io, plan } = opts;
  const shard = plan.shards[opts.shardIndex];
  if (!shard) {
    throw new EmbeddingError(
      'invalid-option',
      `plan ${plan.planId} has no shard ${opts.shardIndex} (it has ${plan.shards.length})`,
    );
  }
  let offset = opts.startOffset ?? 0;
  let reusedParts = 0;
  let finished = false;
  for (;;) {
    const part = await readPart(io, partUri(plan.runRoot, shard.id, offset));
    if (!part) break;
    reusedParts++;
    offset += part.consumed;
    if (part.last) {
      finished = true;
      break;
    }
  }
  const resumedFrom = offset;
  let computed = 0;
  if (!finished) {
    const started = performance.now();
    let batch: SourceItem[] = [];
    const flush = async (last: boolean) => {
      opts.onBatchStart?.(offset, batch.length);
      const out = await embedBatch(io, plan, opts.embedder, batch, shard.id);
      const part: ShardPart = {
        consumed: batch.length,
        last,
        ids: out.ids,
        dimensions: out.vectors[0]?.length ?? 0,
        vectors: encodeVectors(out.vectors, out.vectors[0]?.length ?? 0),
        quarantine: out.quarantine,
        attempt: opts.attempt ?? 1,
      };
      await io.write(partUri(plan.runRoot, shard.id, offset), JSON.stringify(part));
      offset += batch.length;
      computed += batch.length;
      batch = [];
      opts.onProgress?.(offset, computed);
      if (opts.rateLimit) {
        const ahead = (computed / opts.rateLimit) * 1000 - (performance.now() - started);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    };
    for await (const item of readShardItems(io, plan, shard, offset)) {
      batch.push(item);
      if (batch.length >= opts.batchSize) {
        opts.signal?.throwIfAborted();
        await flush(false);
      }
    }
    await flush(true);
  }

  // Assemble the parts into the shard's outputs.
  const ids: string[] = [];
  const vectors: Float32Array[] = [];
  const quarantine: QuarantinedItem[] = [];
  for (let at = 0; ;) {
    const part = await readPart(io, partUri(plan.runRoot, shard.id, at));
    if (!part)
      throw new EmbeddingError('corrupt-file', `shard ${shard.id} lost its part at offset ${at}; rerun the shard`);
    ids.push(...part.ids);
    vectors.push(...decodeVectors(part.vectors, part.dimensions));
    quarantine.push(...part.quarantine);
    at += part.consumed;
    if (part.last) break;
  }
  const file = shardOutputPath(plan, shard.id);
  const micros = BigInt((opts.now?.() ?? new Date()).getTime()) * 1000n;
  const dataFile =
    ids.length > 0
      ? await writeShardFile(io, parseSchema(plan.output.schema), file, { ids, vectors }, plan.model.version, micros)
      : undefined;
  if (quarantine.length > 0) {
    await io.write(quarantineUri(plan.runRoot, shard.id), quarantine.map((q) => `${JSON.stringify(q)}\n`).join(''));
  }
  const manifest: ShardManifest & { hasFile: boolean } = {
    shardId: shard.id,
    shardIndex: opts.shardIndex,
    modelVersion: plan.model.version,
    dataFile: dataFile
      ? serializeDataFile(dataFile)
      : serializeDataFile({
          content: 'data',
          filePath: file,
          fileFormat: 'PARQUET',
          partition: [],
          specId: 0,
          recordCount: 0n,
          fileSizeInBytes: 0n,
        }),
    hasFile: dataFile !== undefined,
    vectors: dataFile ? Number(dataFile.recordCount) : 0,
    quarantined: quarantine.length,
  };
  await io.write(shardManifestUri(plan.runRoot, shard.id), JSON.stringify(manifest));
  return {
    shardId: shard.id,
    file,
    vectors: manifest.vectors,
    quarantined: quarantine.length,
    resumedFrom,
    computed,
    reusedParts,
  };
}

/** A finished shard's manifest, or undefined when the shard has not finished. */
export async function readShardManifest(
  io: FileIO,
  plan: ShardPlan,
  shardIndex: number,
): Promise<(ShardManifest & { hasFile: boolean }) | undefined> {
  const shard = plan.shards[shardIndex];
  if (!shard) return undefined;
  const uri = shardManifestUri(plan.runRoot, shard.id);
  if (!(await io.exists(uri))) return undefined;
  return JSON.parse(Buffer.from(await io.read(uri)).toString('utf8')) as ShardManifest & { hasFile: boolean };
}

export { deserializeDataFile };

/** The vectors of `version` in the vectors table, one per id (the latest `computed_at` wins). */
export async function readVersionVectors(
  catalog: SqlCatalog,
  io: FileIO,
  table: string,
  version: string,
): Promise<{
  vectors: Map<string, { vector: Float32Array; computedAt: bigint; version: string }>;
  snapshotId?: string;
}> {
  const { metadata } = await catalog.loadTable(table);
  const schema = currentSchema(metadata);
  const idOf = (name: string) => schema.fields.find((f) => f.name === name)!.id;
  const out = new Map<string, { vector: Float32Array; computedAt: bigint; version: string }>();
  for await (const batch of scanTable(io, metadata, { filter: ex.eq('model_version', version) })) {
    const ids = batch.columns.get(idOf('id'))!;
    const vs = batch.columns.get(idOf('vector'))!;
    const versions = batch.columns.get(idOf('model_version'))!;
    const times = batch.columns.get(idOf('computed_at'))!;
    for (let r = 0; r < batch.rowCount; r++) {
      const id = ids[r] as string;
      const at = times[r] as bigint;
      const seen = out.get(id);
      if (seen && seen.computedAt >= at) continue;
      out.set(id, { vector: Float32Array.from(vs[r] as number[]), computedAt: at, version: versions[r] as string });
    }
  }
  return {
    vectors: out,
    ...(metadata.currentSnapshotId === null ? {} : { snapshotId: metadata.currentSnapshotId.toString() }),
  };
}

/** The source rows an index of this plan describes: every live row at the plan's snapshot (not only the shards'). */
async function* sourceRows(catalog: SqlCatalog, io: FileIO, plan: ShardPlan): AsyncGenerator<SourceItem> {
  if (plan.source.kind !== 'iceberg' || !plan.incremental) {
    yield* readAllItems(io, plan);
    return;
  }
  const { metadata } = await catalog.loadTable(plan.source.table);
  const valueColumn = plan.columns.text ?? plan.columns.imageUri!;
  const columns = [plan.columns.id, valueColumn, ...plan.columns.metadata];
  const filter = filterExpression(plan.source.filter);
  const schema = currentSchema(metadata);
  const idOf = (name: string) => schema.fields.find((f) => f.name === name)!.id;
  for await (const batch of scanTable(io, metadata, {
    snapshotId: BigInt(plan.incremental.toSnapshotId),
    columns,
    ...(filter ? { filter } : {}),
  })) {
    const col = (n: string) => batch.columns.get(idOf(n))!;
    for (let r = 0; r < batch.rowCount; r++) {
      const id = col(plan.columns.id)[r];
      const v = col(valueColumn)[r];
      yield {
        id: id === null || id === undefined ? null : String(id),
        value: v === null || v === undefined ? null : String(v),
        metadata: Object.fromEntries(
          plan.columns.metadata.map((m) => {
            const x = col(m)[r];
            return [m, typeof x === 'bigint' ? Number(x) : ((x ?? null) as string | number | boolean | null)];
          }),
        ),
      };
    }
  }
}

/** A stored vector and its source value, recomputed by the parity check. */
export interface ParitySample {
  version: string;
  model: ModelRef;
  kind: 'text' | 'image';
  /** Model versions of the index's vectors. */
  indexVersions: string[];
  items: { id: string; value: string; version: string; vector: number[] }[];
}

export function paritySampleUri(indexDir: string): string {
  return `${indexDir}/parity-sample.json`;
}

/**
 * Builds the index of the plan's model version over the vectors table: one entry per source row at the plan's
 * snapshot that has a vector of the version, with the plan's metadata columns. Also writes the parity sample:
 * `sampleSize` entries picked evenly by id, each with its source value and stored vector.
 */
export async function buildVersionIndex(
  catalog: SqlCatalog,
  io: FileIO,
  plan: ShardPlan,
  opts: { dir: string; sampleSize: number; now?: Date },
): Promise<{ manifest: IndexManifest; sampleUri: string }> {
  const { vectors, snapshotId } = await readVersionVectors(catalog, io, plan.output.table, plan.model.version);
  const ids = [...vectors.keys()].sort();
  const stride = opts.sampleSize > 0 ? Math.max(1, Math.floor(ids.length / opts.sampleSize)) : 0;
  const sampleIds = new Set(stride ? ids.filter((_, i) => i % stride === 0).slice(0, opts.sampleSize) : []);
  const entries: { id: string; vector: Float32Array; metadata: IndexKey['metadata'] }[] = [];
  const samples: ParitySample['items'] = [];
  const versions = new Set<string>();
  const seen = new Set<string>();
  for await (const row of sourceRows(catalog, io, plan)) {
    if (row.id === null || seen.has(row.id)) continue;
    const stored = vectors.get(row.id);
    if (!stored) continue;
    seen.add(row.id);
    versions.add(stored.version);
    entries.push({ id: row.id, vector: stored.vector, metadata: row.metadata });
    if (sampleIds.has(row.id) && row.value !== null) {
      samples.push({ id: row.id, value: row.value, version: stored.version, vector: Array.from(stored.vector) });
    }
  }
  const manifest = await buildIndex(io, {
    dir: opts.dir,
    entries,
    manifest: {
      index: plan.output.index,
      version: plan.model.version,
      model: plan.model,
      table: plan.output.table,
      ...(snapshotId ? { tableSnapshotId: snapshotId } : {}),
      ...(plan.source.kind === 'iceberg' && plan.source.snapshotId ? { sourceSnapshotId: plan.source.snapshotId } : {}),
      metadataColumns: plan.columns.metadata,
      versions: [...versions].sort(),
      builtAt: (opts.now ?? new Date()).toISOString(),
    },
  });
  const sample: ParitySample = {
    version: plan.model.version,
    model: plan.model,
    kind: plan.columns.imageUri ? 'image' : 'text',
    indexVersions: manifest.versions,
    items: samples,
  };
  const sampleUri = paritySampleUri(opts.dir);
  await io.write(sampleUri, JSON.stringify(sample));
  return { manifest, sampleUri };
}

/** Coverage of the plan's rows by vectors of its version. */
export async function computeCoverage(
  catalog: SqlCatalog,
  io: FileIO,
  plan: ShardPlan,
): Promise<{ sourceRows: number; covered: number; missingSample: string[] }> {
  const { vectors } = await readVersionVectors(catalog, io, plan.output.table, plan.model.version);
  let sourceRows = 0;
  let covered = 0;
  const missingSample: string[] = [];
  for await (const row of readAllItems(io, plan)) {
    sourceRows++;
    if (row.id !== null && vectors.has(row.id)) covered++;
    else if (missingSample.length < 10) missingSample.push(row.id ?? '(null id)');
  }
  return { sourceRows, covered, missingSample };
}

/** Recomputes the sample through `embedder` (the online path) and compares with the stored vectors. */
export async function checkParity(
  io: FileIO,
  embedder: Embedder,
  sampleUri: string,
  minCosine: number,
  /** The online path's model. @default the sample's model */
  onlineModel?: ModelRef,
): Promise<{
  checked: number;
  minCosine: number;
  meanCosine: number;
  versions: string[];
  passed: boolean;
  worst?: { id: string; cosine: number };
}> {
  const sample = JSON.parse(Buffer.from(await io.read(sampleUri)).toString('utf8')) as ParitySample;
  const model = onlineModel ?? sample.model;
  const versions = [...new Set([...sample.indexVersions, ...sample.items.map((i) => i.version), model.version])].sort();
  const outcomes =
    sample.kind === 'text'
      ? await embedder.embedTexts(
          model,
          sample.items.map((i) => i.value),
        )
      : await embedder.embedImages(model, await Promise.all(sample.items.map((i) => io.read(i.value))));
  let min = 1;
  let sum = 0;
  let worst: { id: string; cosine: number } | undefined;
  sample.items.forEach((item, i) => {
    const o = outcomes[i];
    const c = o instanceof Float32Array ? cosine(o, Float32Array.from(item.vector)) : -1;
    sum += c;
    if (c < min || worst === undefined) {
      min = Math.min(min, c);
      if (worst === undefined || c < worst.cosine) worst = { id: item.id, cosine: c };
    }
  });
  const checked = sample.items.length;
  const versionsOk = versions.length === 1 && versions[0] === sample.version;
  return {
    checked,
    minCosine: checked ? min : 1,
    meanCosine: checked ? sum / checked : 1,
    versions,
    passed: versionsOk && (checked === 0 || min >= minCosine),
    ...(worst ? { worst } : {}),
  };
}
