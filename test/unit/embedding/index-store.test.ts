import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildIndex, LoadedIndex } from '../../../lib/embedding/index-store.js';
import { mulberry32 } from '../../../lib/inference/synthetic-catalog.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

const DIMS = 16;

function unit(rand: () => number): Float32Array {
  const v = Float32Array.from({ length: DIMS }, () => rand() * 2 - 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

describe('index builds with many ids per vector', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-index-dup-'));
  const io = new LocalFileIO({});
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps one graph node per distinct vector, and a search returns every id of the nearest vectors', async () => {
    // 3,000 ids over 40 distinct vectors (75 copies each), as a saturating image tower produces for a catalog of
    // near-identical renderings. Without merging the copies, HNSW loses whole groups of them.
    const rand = mulberry32(9);
    const distinct = Array.from({ length: 40 }, () => unit(rand));
    const entries = Array.from({ length: 3000 }, (_, i) => ({
      id: `item-${i}`,
      vector: Float32Array.from(distinct[i % 40]!),
      metadata: { group: String(i % 40) },
    }));
    const indexDir = `file://${dir}/idx/items/versions/1/b-dup`;
    const manifest = await buildIndex(io, {
      dir: indexDir,
      entries,
      manifest: {
        index: 'items',
        version: '1',
        model: { path: 'm', version: '1' },
        table: 't',
        metadataColumns: ['group'],
        versions: ['1'],
        builtAt: new Date(0).toISOString(),
      },
    });
    expect(manifest.count).toBe(3000);
    expect(manifest.files.nodes).toBeDefined();
    const index = await LoadedIndex.load(io, indexDir);
    expect(index.nodeCount).toBe(40);
    expect(index.keys).toHaveLength(3000);

    // Query = one of the distinct vectors: its 75 ids come first, all at cosine 1, then the next vector's ids.
    const hits = index.search(distinct[7]!, 100);
    expect(hits).toHaveLength(100);
    const first = hits.slice(0, 75);
    expect(new Set(first.map((h) => h.metadata.group))).toEqual(new Set(['7']));
    for (const h of first) expect(h.score).toBeCloseTo(1, 5);
    expect(new Set(first.map((h) => h.id)).size).toBe(75);

    // Every id is reachable: asking for all of them returns all of them, each once.
    const all = index.search(distinct[0]!, 3000);
    expect(new Set(all.map((h) => h.id)).size).toBe(3000);
    expect(index.incompleteSearches).toBe(0);

    // A filter still applies per id.
    const filtered = index.search(distinct[3]!, 10, { group: '12' });
    expect(filtered).toHaveLength(10);
    expect(filtered.every((h) => h.metadata.group === '12')).toBe(true);
  });

  it('an index without shared vectors has no nodes file and keeps node k = entry k', async () => {
    const rand = mulberry32(3);
    const entries = Array.from({ length: 50 }, (_, i) => ({ id: `x${i}`, vector: unit(rand), metadata: {} }));
    const indexDir = `file://${dir}/idx/plain/versions/1/b-1`;
    const manifest = await buildIndex(io, {
      dir: indexDir,
      entries,
      manifest: {
        index: 'plain',
        version: '1',
        model: { path: 'm', version: '1' },
        table: 't',
        metadataColumns: [],
        versions: ['1'],
        builtAt: new Date(0).toISOString(),
      },
    });
    expect(manifest.files.nodes).toBeUndefined();
    const index = await LoadedIndex.load(io, indexDir);
    const [hit] = index.search(entries[17]!.vector, 1);
    expect(hit?.id).toBe('x17');
    expect(hit?.score).toBeCloseTo(1, 5);
  });
});
