/**
 * ANN indexes of one model version, built with usearch (HNSW, cosine) and kept in the object store:
 *
 *   <root>/<index>/versions/<version>/<build>/index.usearch   the HNSW graph: one node per distinct vector
 *   <root>/<index>/versions/<version>/<build>/keys.json       ids and metadata (for filters), one entry per id
 *   <root>/<index>/versions/<version>/<build>/nodes.json      node → its entries in keys.json, when some ids share
 *                                                               a vector (absent: node k = entry k)
 *   <root>/<index>/versions/<version>/<build>/manifest.json   version, model, dimensions, counts, source snapshot
 *
 * Ids with bitwise-identical vectors (the same product photo under two ids, or a model whose output saturates)
 * share one graph node. Many copies of one point break an HNSW graph: its neighbour lists fill with the copies, so
 * whole groups of nodes become unreachable and searches silently return fewer hits than asked.
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
  /** `nodes`: present when ids share vectors (graph node → entries of keys.json). */
  files: { index: string; keys: string; nodes?: string };
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
  const files: IndexManifest['files'] = { index: `${input.dir}/index.usearch`, keys: `${input.dir}/keys.json` };
  const keys: IndexKey[] = input.entries.map((e) => ({ id: e.id, metadata: e.metadata }));
  if (dimensions > 0) {
    const index = newIndex(dimensions);
    const nodeOf = new Map<string, number>();
    const nodes: number[][] = [];
    input.entries.forEach((e, k) => {
      if (e.vector.length !== dimensions) {
        throw new EmbeddingError(
          'invalid-option',
          `vector of id ${e.id} has ${e.vector.length} dimensions, not ${dimensions}`,
        );
      }
      const bits = Buffer.from(e.vector.buffer, e.vector.byteOffset, e.vector.byteLength).toString('base64');
      const node = nodeOf.get(bits);
      if (node !== undefined) {
        nodes[node]!.push(k);
        return;
      }
      nodeOf.set(bits, nodes.length);
      index.add(BigInt(nodes.length), e.vector);
      nodes.push([k]);
    });
    if (nodes.length < input.entries.length) {
      files.nodes = `${input.dir}/nodes.json`;
      await io.write(files.nodes, JSON.stringify(nodes));
    }
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
  /** Searches where the graph returned fewer nodes than asked although the index holds more (see the module note). */
  incompleteSearches = 0;

  private constructor(
    readonly manifest: IndexManifest,
    readonly keys: readonly IndexKey[],
    private readonly index: UsearchIndex | undefined,
    /** Graph node → entries of `keys`; undefined when node k is entry k. */
    private readonly nodes: readonly (readonly number[])[] | undefined,
  ) {}

  static async load(io: FileIO, dir: string): Promise<LoadedIndex> {
    const manifest = await readIndexManifest(io, dir);
    const readJson = async <T>(uri: string) => JSON.parse(Buffer.from(await io.read(uri)).toString('utf8')) as T;
    const keys = await readJson<IndexKey[]>(manifest.files.keys);
    if (manifest.count === 0) return new LoadedIndex(manifest, keys, undefined, undefined);
    const nodes = manifest.files.nodes ? await readJson<number[][]>(manifest.files.nodes) : undefined;
    const bytes = await io.read(manifest.files.index);
    const index = await withTempDir(async (tmp) => {
      const file = path.join(tmp, 'index.usearch');
      await writeFile(file, bytes);
      const loaded = newIndex(manifest.dimensions);
      loaded.load(file);
      return loaded;
    });
    return new LoadedIndex(manifest, keys, index, nodes);
  }

  /** Graph nodes: distinct vectors. */
  get nodeCount(): number {
    return this.nodes?.length ?? this.keys.length;
  }

  /**
   * The `k` nearest entries whose metadata matches every `filter` pair (compared as strings). Entries that share a
   * vector come back together, with the same score. Filtered queries widen the HNSW search until `k` matches are
   * found or the whole index was returned.
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
    const nodeCount = this.nodeCount;
    // Without duplicates, k entries need k nodes; with them, fewer (each node expands to its entries).
    for (let wanted = Math.min(nodeCount, pairs.length ? k * 4 : k); ; wanted = Math.min(nodeCount, wanted * 4)) {
      const result = this.index.search(query, wanted, 0);
      if (result.keys.length < wanted) this.incompleteSearches += 1;
      const hits: SearchHit[] = [];
      for (let i = 0; i < result.keys.length && hits.length < k; i++) {
        const node = Number(result.keys[i]);
        const score = 1 - result.distances[i]!;
        for (const entry of this.nodes ? (this.nodes[node] ?? []) : [node]) {
          const key = this.keys[entry];
          if (key && matches(key)) hits.push({ id: key.id, score, metadata: key.metadata });
          if (hits.length >= k) break;
        }
      }
      if (hits.length >= k || wanted >= nodeCount) return hits;
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
