/**
 * ANN indexes of one model version, built with usearch (HNSW, cosine) and kept in the object store:
 *
 *   <root>/<index>/versions/<version>/<build>/index.usearch   the HNSW graph; key k = entry k of keys.json
 *   <root>/<index>/versions/<version>/<build>/keys.json       ids and metadata (for filters) by key
 *   <root>/<index>/versions/<version>/<build>/manifest.json   version, model, dimensions, counts, source snapshot
 *
 * A build directory is written once and never changed; the alias decides which one queries use.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type UsearchModule from 'usearch';
import type { FileIO } from '../storage/file-io.js';
import { EmbeddingError } from './errors.js';

// usearch 2.26's ESM entry cannot find its native build (its directory probe recurses forever), so load the CJS one.
const usearch = createRequire(import.meta.url)('usearch') as typeof UsearchModule;
type UsearchIndex = InstanceType<typeof usearch.Index>;

function newIndex(dimensions: number): UsearchIndex {
  return new usearch.Index({
    dimensions,
    metric: usearch.MetricKind.Cos,
    quantization: usearch.ScalarKind.F32,
    connectivity: 16,
    expansion_add: 128,
    expansion_search: 64,
    multi: false,
  });
}

/** The manifest of one index build. */
export interface IndexManifest {
  formatVersion: 1;
  index: string;
  version: string;
  model: { path: string; version: string };
  dimensions: number;
  metric: 'cos';
  count: number;
  /** The vectors table the index was built from, and its snapshot. */
  table: string;
  tableSnapshotId?: string;
  sourceSnapshotId?: string;
  metadataColumns: string[];
  /** Model versions of the vectors in the index; a publishable index has exactly one. */
  versions: string[];
  builtAt: string;
  files: { index: string; keys: string };
}

/** One entry of keys.json. */
export interface IndexKey {
  id: string;
  metadata: Record<string, string | number | boolean | null>;
}

export function indexBuildDir(root: string, index: string, version: string, build: string): string {
  return `${root.replace(/\/+$/, '')}/${index}/versions/${version}/${build}`;
}

/** Input of {@link buildIndex}. */
export interface BuildIndexInput {
  manifest: Omit<IndexManifest, 'formatVersion' | 'count' | 'dimensions' | 'files' | 'metric'>;
  entries: readonly { id: string; vector: Float32Array; metadata: IndexKey['metadata'] }[];
  dir: string;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-index-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Builds the HNSW index of `entries` and writes the build directory (manifest last, so its presence means done). */
export async function buildIndex(io: FileIO, input: BuildIndexInput): Promise<IndexManifest> {
  const dimensions = input.entries[0]?.vector.length ?? 0;
  const files = { index: `${input.dir}/index.usearch`, keys: `${input.dir}/keys.json` };
  const keys: IndexKey[] = input.entries.map((e) => ({ id: e.id, metadata: e.metadata }));
  if (dimensions > 0) {
    const index = newIndex(dimensions);
    input.entries.forEach((e, k) => {
      if (e.vector.length !== dimensions) {
        throw new EmbeddingError(
          'invalid-option',
          `vector of id ${e.id} has ${e.vector.length} dimensions, not ${dimensions}`,
        );
      }
      index.add(BigInt(k), e.vector);
    });
    const bytes = await withTempDir(async (dir) => {
      const file = path.join(dir, 'index.usearch');
      index.save(file);
      return readFile(file);
    });
    await io.write(files.index, bytes);
  }
  await io.write(files.keys, JSON.stringify(keys));
  const manifest: IndexManifest = {
    formatVersion: 1,
    ...input.manifest,
    dimensions,
    metric: 'cos',
    count: input.entries.length,
    files,
  };
  await io.write(`${input.dir}/manifest.json`, JSON.stringify(manifest, null, 2));
  return manifest;
}

export async function readIndexManifest(io: FileIO, dir: string): Promise<IndexManifest> {
  const uri = `${dir}/manifest.json`;
  if (!(await io.exists(uri))) throw new EmbeddingError('not-found', `no index build at ${dir} (no manifest.json)`);
  return JSON.parse(Buffer.from(await io.read(uri)).toString('utf8')) as IndexManifest;
}

/** One search hit. */
export interface SearchHit {
  id: string;
  /** Cosine similarity (1 − usearch's cosine distance). */
  score: number;
  metadata: IndexKey['metadata'];
}

/** A loaded index build, ready for queries. */
export class LoadedIndex {
  private constructor(
    readonly manifest: IndexManifest,
    readonly keys: readonly IndexKey[],
    private readonly index: UsearchIndex | undefined,
  ) {}

  static async load(io: FileIO, dir: string): Promise<LoadedIndex> {
    const manifest = await readIndexManifest(io, dir);
    const keys = JSON.parse(Buffer.from(await io.read(manifest.files.keys)).toString('utf8')) as IndexKey[];
    if (manifest.count === 0) return new LoadedIndex(manifest, keys, undefined);
    const bytes = await io.read(manifest.files.index);
    const index = await withTempDir(async (tmp) => {
      const file = path.join(tmp, 'index.usearch');
      await writeFile(file, bytes);
      const loaded = newIndex(manifest.dimensions);
      loaded.load(file);
      return loaded;
    });
    return new LoadedIndex(manifest, keys, index);
  }

  /**
   * The `k` nearest entries whose metadata matches every `filter` pair (compared as strings). Filtered queries
   * widen the HNSW search until `k` matches are found or the whole index was returned.
   */
  search(query: Float32Array, k: number, filter: Readonly<Record<string, string>> = {}): SearchHit[] {
    if (!this.index || this.keys.length === 0) return [];
    if (query.length !== this.manifest.dimensions) {
      throw new EmbeddingError(
        'invalid-option',
        `query has ${query.length} dimensions; index ${this.manifest.index} (${this.manifest.version}) has ${this.manifest.dimensions}`,
      );
    }
    const pairs = Object.entries(filter);
    const matches = (key: IndexKey) => pairs.every(([col, want]) => String(key.metadata[col] ?? '') === want);
    for (
      let wanted = Math.min(this.keys.length, pairs.length ? k * 4 : k);
      ;
      wanted = Math.min(this.keys.length, wanted * 4)
    ) {
      const result = this.index.search(query, wanted, 0);
      const hits: SearchHit[] = [];
      for (let i = 0; i < result.keys.length && hits.length < k; i++) {
        const key = this.keys[Number(result.keys[i])];
        if (key && matches(key)) hits.push({ id: key.id, score: 1 - result.distances[i]!, metadata: key.metadata });
      }
      if (hits.length >= k || wanted >= this.keys.length) return hits;
    }
  }
}

/** Cosine similarity of two vectors. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
