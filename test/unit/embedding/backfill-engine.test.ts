import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendColumns } from '../../../lib/iceberg/append.js';
import { currentSchema } from '../../../lib/iceberg/metadata-json.js';
import { writeParquetDataFile } from '../../../lib/iceberg/parquet/index.js';
import { schemaToJson } from '../../../lib/iceberg/types.js';
import { bundledModels, InferencePool } from '../../../lib/inference/index.js';
import {
  buildVersionIndex,
  checkParity,
  commitShardFiles,
  computeCoverage,
  dataDirectory,
  deserializeDataFile,
  ensureVectorsTable,
  LoadedIndex,
  planShards,
  poolEmbedder,
  readShardManifest,
  readVersionVectors,
  runShard,
  type Embedder,
  type ShardPlan,
} from '../../../lib/embedding/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

const model = bundledModels().dualText;
const colors = ['red', 'green', 'blue', 'yellow'];
const shapes = ['circle', 'square', 'triangle', 'diamond'];

/** 40 rows: a distinct short text each, plus one over-long text (row 7) and one null text (row 11). */
function sourceRows() {
  const ids: bigint[] = [];
  const texts: (string | null)[] = [];
  const tiers: string[] = [];
  for (let i = 0; i < 40; i++) {
    ids.push(BigInt(1000 + i));
    texts.push(`${colors[i % 4]} ${shapes[Math.floor(i / 4) % 4]} number ${i}`);
    tiers.push(i % 2 === 0 ? 'gold' : 'bronze');
  }
  texts[7] = Array.from({ length: 200 }, (_, k) => `word${k}`).join(' ');
  texts[11] = null;
  return { ids, texts, tiers };
}

describe('embedding backfill engine (real ONNX model, SQLite catalog, file:// warehouse)', () => {
  let t: TempCatalog;
  let pool: InferencePool;
  let embedder: Embedder;
  let plan: ShardPlan;

  beforeAll(async () => {
    t = await createTempCatalog('sluice-embed-');
    pool = new InferencePool({ provider: 'cpu', intraOpThreads: 1, maxBatch: 16 });
    embedder = poolEmbedder(pool);
    await t.catalog.createTable('db.items', {
      schema: {
        schemaId: 0,
        identifierFieldIds: [],
        fields: [
          { id: 1, name: 'item_id', required: true, type: { kind: 'long' } },
          { id: 2, name: 'summary', required: false, type: { kind: 'string' } },
          { id: 3, name: 'tier', required: true, type: { kind: 'string' } },
        ],
      },
    });
    const rows = sourceRows();
    await appendColumns(t.catalog, t.io, 'db.items', {
      columns: new Map<number, unknown[]>([
        [1, rows.ids],
        [2, rows.texts],
        [3, rows.tiers],
      ]),
    });
    const vectors = await ensureVectorsTable(t.catalog, 'db.item_vectors');
    plan = await planShards(t.catalog, t.io, {
      source: { kind: 'iceberg', table: 'db.items', filter: [] },
      idColumn: 'item_id',
      textColumn: 'summary',
      metadataColumns: ['tier'],
      model,
      output: { table: 'db.item_vectors', index: 'items' },
      shardSize: 16,
      runKey: 'test-run',
      indexRoot: `file://${t.dir}/indexes`,
      dataDir: dataDirectory(vectors),
      outputSchema: schemaToJson(currentSchema(vectors)),
    });
  });
  afterAll(async () => {
    await pool?.close();
    t?.cleanup();
  });

  it('plans the same shards twice (ids from file and range)', async () => {
    expect(plan.shards.map((s) => [s.start, s.end])).toEqual([
      [0, 16],
      [16, 32],
      [32, 40],
    ]);
    const vectors = await t.catalog.loadTable('db.item_vectors');
    const again = await planShards(t.catalog, t.io, {
      source: { kind: 'iceberg', table: 'db.items', filter: [] },
      idColumn: 'item_id',
      textColumn: 'summary',
      metadataColumns: ['tier'],
      model,
      output: { table: 'db.item_vectors', index: 'items' },
      shardSize: 16,
      runKey: 'test-run',
      indexRoot: `file://${t.dir}/indexes`,
      dataDir: dataDirectory(vectors.metadata),
      outputSchema: schemaToJson(currentSchema(vectors.metadata)),
    });
    expect(again.shards).toEqual(plan.shards);
    expect(again.runRoot).toBe(plan.runRoot);
  });

  it('resumes a crashed shard from its reported offset and redoes at most the batch in flight', async () => {
    let calls = 0;
    const crashing: Embedder = {
      embedTexts: async (m, texts) => {
        if (++calls === 3) throw new Error('worker killed');
        return embedder.embedTexts(m, texts);
      },
      embedImages: (m, i) => embedder.embedImages(m, i),
    };
    let reported = 0;
    await expect(
      runShard({ io: t.io, plan, shardIndex: 0, batchSize: 4, embedder: crashing, onProgress: (o) => (reported = o) }),
    ).rejects.toThrow('worker killed');
    expect(reported).toBe(8);
    const embedded: number[] = [];
    const counting: Embedder = {
      embedTexts: async (m, texts) => {
        embedded.push(texts.length);
        return embedder.embedTexts(m, texts);
      },
      embedImages: (m, i) => embedder.embedImages(m, i),
    };
    // A stale heartbeat (offset 4): the part stored at 4 is reused, not recomputed.
    const r = await runShard({
      io: t.io,
      plan,
      shardIndex: 0,
      batchSize: 4,
      embedder: counting,
      startOffset: 4,
      attempt: 2,
    });
    expect(r.reusedParts).toBe(1);
    expect(r.resumedFrom).toBe(8);
    expect(r.computed).toBe(8);
    // 16 rows: 14 vectors, the over-long text (row 7) and the null text (row 11) quarantined.
    expect(r.vectors).toBe(14);
    expect(r.quarantined).toBe(2);
    const q = Buffer.from(await t.io.read(`${plan.runRoot}/quarantine/${r.shardId}.jsonl`)).toString('utf8');
    const reasons = q
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string; reason: string }).reason)
      .sort();
    expect(reasons).toEqual(['null-value', 'text-too-long']);
  });

  it('commits each shard file once even when the commit is retried, and a rerun shard overwrites its file', async () => {
    for (const i of [1, 2]) await runShard({ io: t.io, plan, shardIndex: i, batchSize: 8, embedder });
    // Shard 1 again: same file path, replaced.
    await runShard({ io: t.io, plan, shardIndex: 1, batchSize: 8, embedder });
    const files = [];
    for (let i = 0; i < 3; i++) {
      const m = (await readShardManifest(t.io, plan, i))!;
      files.push({ shardId: m.shardId, dataFile: deserializeDataFile(m.dataFile) });
    }
    const first = await commitShardFiles(t.catalog, t.io, 'db.item_vectors', files.slice(0, 2));
    expect(first.added).toBe(2);
    const retried = await commitShardFiles(t.catalog, t.io, 'db.item_vectors', files);
    expect(retried).toMatchObject({ added: 1, alreadyCommitted: 2 });
    const again = await commitShardFiles(t.catalog, t.io, 'db.item_vectors', files);
    expect(again).toMatchObject({ added: 0, alreadyCommitted: 3 });
    const { vectors } = await readVersionVectors(t.catalog, t.io, 'db.item_vectors', model.version);
    expect(vectors.size).toBe(38);
    const { metadata } = await t.catalog.loadTable('db.item_vectors');
    const total = metadata.snapshots.reduce((n, s) => n + Number(s.summary['added-records'] ?? 0), 0);
    expect(total).toBe(38);
  });

  it('measures coverage, builds the index, passes parity and searches with a metadata filter', async () => {
    const coverage = await computeCoverage(t.catalog, t.io, plan);
    expect(coverage).toMatchObject({ sourceRows: 40, covered: 38 });
    const dir = `file://${t.dir}/indexes/items/versions/1/b-test`;
    const { manifest, sampleUri } = await buildVersionIndex(t.catalog, t.io, plan, { dir, sampleSize: 8 });
    expect(manifest).toMatchObject({ count: 38, dimensions: 64, versions: ['1'] });
    const parity = await checkParity(t.io, embedder, sampleUri, 0.999);
    expect(parity.passed).toBe(true);
    expect(parity.checked).toBe(8);
    expect(parity.minCosine).toBeGreaterThan(0.999);

    const index = await LoadedIndex.load(t.io, dir);
    const [query] = await pool.embedTexts(model, ['blue square number 6']);
    // The generated dual encoder sees colour and shape only: the blue squares (rows 6, 22, 38) come first.
    const hits = index.search(query!, 3);
    expect(hits.map((h) => h.id).sort()).toEqual(['1006', '1022', '1038']);
    expect(hits[0]!.score).toBeGreaterThan(0.999);
    const gold = index.search(query!, 5, { tier: 'bronze' });
    expect(gold).toHaveLength(5);
    expect(gold.every((h) => h.metadata.tier === 'bronze')).toBe(true);
  });

  it('fails parity when the stored vectors come from another model', async () => {
    const other: Embedder = {
      embedTexts: (_m, texts) => embedder.embedTexts(bundledModels().dualTextV2, texts),
      embedImages: (m, i) => embedder.embedImages(m, i),
    };
    const parity = await checkParity(
      t.io,
      other,
      `file://${t.dir}/indexes/items/versions/1/b-test/parity-sample.json`,
      0.999,
    );
    expect(parity.passed).toBe(false);
    expect(parity.minCosine).toBeLessThan(0.999);
  });

  it('plans and embeds a Parquet-files source, reading columns by name', async () => {
    const written = await writeParquetDataFile({
      schema: {
        fields: [
          { id: 1, name: 'doc_id', required: true, type: { kind: 'string' } },
          { id: 2, name: 'body', required: true, type: { kind: 'string' } },
        ],
      },
      columns: new Map<number, unknown[]>([
        [1, ['a', 'b', 'c', 'd', 'e']],
        [2, ['red circle', 'blue square', 'green triangle', 'yellow diamond', 'red square']],
      ]),
    });
    await t.io.write(`file://${t.dir}/src/part-0.parquet`, written.bytes);
    const vectors = await t.catalog.loadTable('db.item_vectors');
    const parquetPlan = await planShards(t.catalog, t.io, {
      source: { kind: 'parquet', paths: [], prefix: `file://${t.dir}/src/` },
      idColumn: 'doc_id',
      textColumn: 'body',
      metadataColumns: [],
      model,
      output: { table: 'db.item_vectors', index: 'docs' },
      shardSize: 3,
      runKey: 'parquet-run',
      indexRoot: `file://${t.dir}/indexes`,
      dataDir: dataDirectory(vectors.metadata),
      outputSchema: schemaToJson(currentSchema(vectors.metadata)),
    });
    expect(parquetPlan.files).toEqual([{ uri: `file://${t.dir}/src/part-0.parquet`, rows: 5 }]);
    expect(parquetPlan.shards.map((x) => [x.start, x.end])).toEqual([
      [0, 3],
      [3, 5],
    ]);
    const r = await runShard({ io: t.io, plan: parquetPlan, shardIndex: 1, batchSize: 8, embedder });
    expect(r).toMatchObject({ vectors: 2, quarantined: 0 });
  });
});
