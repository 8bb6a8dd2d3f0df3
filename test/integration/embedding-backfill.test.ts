import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Worker } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmbeddingBackfill } from '../../client/pipelines.js';
import { waitForPollers } from '../../cli/local-stack.js';
import { REPO_ROOT } from '../../lib/config.js';
import { poolEmbedder, readAlias, rollbackAlias, searchCurrentIndex } from '../../lib/embedding/index.js';
import { appendColumns } from '../../lib/iceberg/append.js';
import { runIntentIndexDemo } from '../../lib/stack/demo-intent-index.js';
import { PostgresCatalogDriver, SqlCatalog } from '../../lib/iceberg/catalog/index.js';
import { currentSchema } from '../../lib/iceberg/metadata-json.js';
import { scanTable } from '../../lib/iceberg/scan.js';
import { bundledModels, InferencePool } from '../../lib/inference/index.js';
import type { ManagedProcess } from '../../lib/stack/managed-process.js';
import { CompositeFileIO, S3FileIO } from '../../lib/storage/index.js';
import type { EmbeddingBackfillInput } from '../../schemas/embedding.js';
import { taskQueues } from '../../schemas/task-queues.js';
import {
  embeddingPauseSignal,
  embeddingProgressQuery,
  embeddingResumeSignal,
} from '../../workflows/embedding-backfill.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { connectToTestServer, eventually, spawnWorker, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

const s3 = inject('s3');
const bucket = `sluice-embed-${randomUUID().slice(0, 8)}`;
const warehouse = `s3://${bucket}/wh`;
const indexRoot = `s3://${bucket}/indexes`;
const models = bundledModels();
const colors = ['red', 'green', 'blue', 'yellow'];
const shapes = ['circle', 'square', 'triangle', 'diamond'];
const ROWS = 300;

/** The source: 300 query summaries with a tier; row 7's text is over-long and row 11's is null (both quarantined). */
function sourceColumns() {
  const ids: bigint[] = [];
  const texts: (string | null)[] = [];
  const tiers: string[] = [];
  for (let i = 0; i < ROWS; i++) {
    ids.push(BigInt(i));
    texts.push(`${colors[i % 4]} ${shapes[Math.floor(i / 4) % 4]} query ${i}`);
    tiers.push(['gold', 'silver', 'bronze'][i % 3]!);
  }
  texts[7] = Array.from({ length: 200 }, (_, k) => `token${k}`).join(' ');
  texts[11] = null;
  return new Map<number, unknown[]>([
    [1, ids],
    [2, texts],
    [3, tiers],
  ]);
}

describe('embedding-backfill on real Temporal, PostgreSQL catalog, S3 and GPU worker processes', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  let io: CompositeFileIO;
  let catalog: SqlCatalog;
  let driver: PostgresCatalogDriver;
  let cpu: Worker;
  let cpuRun: Promise<void>;
  let pool: InferencePool;
  const base = uniqueQueue('embed');
  const q = taskQueues(base);
  const gpuWorkers = new Map<string, ManagedProcess>();

  const input = (over: Partial<EmbeddingBackfillInput> = {}) => ({
    source: { kind: 'iceberg' as const, table: 'shop.query_log' },
    idColumn: 'query_id',
    textColumn: 'summary',
    metadataColumns: ['tier'],
    model: models.dualText,
    output: { table: 'shop.query_vectors', index: 'queries', indexRoot },
    shardSize: 100,
    batchSize: 10,
    maxParallelism: 2,
    coverageThreshold: 0.99,
    paritySampleSize: 16,
    heartbeatTimeoutSeconds: 3,
    ...over,
  });

  beforeAll(async () => {
    t = await connectToTestServer();
    const admin = new pg.Client({ connectionString: inject('postgresUrl') });
    await admin.connect();
    const database = `embed_${randomUUID().slice(0, 8)}`;
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const url = new URL(inject('postgresUrl'));
    url.pathname = `/${database}`;
    const s3Options = {
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    };
    io = new CompositeFileIO({ file: { baseDir: REPO_ROOT }, s3: s3Options });
    const s3io = new S3FileIO(s3Options);
    await s3io.client.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3io.close();
    driver = new PostgresCatalogDriver({ connectionString: url.toString() });
    catalog = new SqlCatalog({ name: 'sluice', driver, io, warehouse });
    await catalog.initialize();
    await catalog.createNamespace('shop');
    await catalog.createTable('shop.query_log', {
      schema: {
        schemaId: 0,
        identifierFieldIds: [],
        fields: [
          { id: 1, name: 'query_id', required: true, type: { kind: 'long' } },
          { id: 2, name: 'summary', required: false, type: { kind: 'string' } },
          { id: 3, name: 'tier', required: true, type: { kind: 'string' } },
        ],
      },
    });
    await appendColumns(catalog, io, 'shop.query_log', { columns: sourceColumns() });
    pool = new InferencePool({ provider: 'cpu', intraOpThreads: 1 });

    // GPU hosts are separate OS processes (so one can be killed), reading S3 through SLUICE_S3_*.
    Object.assign(process.env, {
      SLUICE_S3_ENDPOINT: s3.endpoint,
      SLUICE_S3_REGION: s3.region,
      SLUICE_S3_ACCESS_KEY_ID: s3.accessKeyId,
      SLUICE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      SLUICE_INFERENCE_PROVIDER: 'cpu',
    });
    const logDir = path.join(inject('fixtureDir'), 'logs', base);
    for (const host of ['gpu-a', 'gpu-b']) {
      gpuWorkers.set(host, spawnWorker(host, { pool: 'gpu', host, baseQueue: base, logDir }));
    }
    cpu = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      workflows: { workflowBundle: testWorkflowBundle() },
      shutdownGraceTime: '1s',
      embedding: { catalog, io, warehouse },
    });
    cpuRun = cpu.run();
    await waitForPollers(
      t.client,
      [
        { name: q.gpuHost('gpu-a'), type: 'activity' },
        { name: q.gpuHost('gpu-b'), type: 'activity' },
        { name: q.gpu, type: 'activity' },
      ],
      90_000,
    );
  }, 150_000);

  afterAll(async () => {
    await Promise.all([...gpuWorkers.values()].map((w) => w.kill()));
    cpu?.shutdown();
    await cpuRun?.catch(() => undefined);
    await pool?.close();
    await driver?.close();
    await io?.close();
    await t?.close();
  });

  it('finishes after a GPU worker is killed mid-shard: the shard resumes from its heartbeat elsewhere, one vector per id', async () => {
    const handle = await startEmbeddingBackfill(t.client, input({ maxParallelism: 1, rateLimit: 20 }), {
      taskQueue: base,
    });
    // Wait until a shard has stored a batch (heartbeats reach the server at most every 0.8 × 3 s), then kill the
    // host running it like a crash would.
    const victim = await eventually(
      async () => {
        const { raw } = await handle.describe();
        const act = raw.pendingActivities?.find((a) => a.activityType?.name === 'embedShard');
        const payload = act?.heartbeatDetails?.payloads?.[0]?.data;
        if (!act || !payload) return undefined;
        const details = JSON.parse(Buffer.from(payload).toString('utf8')) as { offset: number };
        if (details.offset < 10) return undefined;
        return /@(gpu-[ab])$/.exec(act.lastWorkerIdentity ?? '')?.[1];
      },
      60_000,
      'a shard to heartbeat offset 10',
    );
    await gpuWorkers.get(victim!)!.kill();

    const result = await handle.result();
    expect(result).toMatchObject({ version: '1', shards: 3, vectors: ROWS - 2, quarantined: 2, aliasGeneration: 1 });
    expect(result.shardRetries).toBeGreaterThanOrEqual(1);
    expect(result.coverage).toMatchObject({ sourceRows: ROWS, covered: ROWS - 2, passed: true });
    expect(result.parity?.passed).toBe(true);
    expect(result.parity?.minCosine).toBeGreaterThanOrEqual(0.999);

    // The retried shard ran on the other host and started past zero.
    const history = await handle.fetchHistory();
    const completed = (history.events ?? [])
      .map((e) => e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data)
      .filter((d): d is Uint8Array => d !== undefined && d !== null)
      .map(
        (d) => JSON.parse(Buffer.from(d).toString('utf8')) as { attempt?: number; resumedFrom?: number; host?: string },
      )
      .filter((r) => r.attempt !== undefined);
    const retried = completed.filter((r) => (r.attempt ?? 1) >= 2);
    expect(retried.length).toBeGreaterThanOrEqual(1);
    expect(retried[0]!.resumedFrom).toBeGreaterThanOrEqual(10);
    expect(retried[0]!.host).not.toBe(victim);

    // Exactly one vector per id and version in the table, read back raw (no dedup).
    const { metadata } = await catalog.loadTable('shop.query_vectors');
    const schema = currentSchema(metadata);
    const idField = schema.fields.find((f) => f.name === 'id')!.id;
    const versionField = schema.fields.find((f) => f.name === 'model_version')!.id;
    const keys: string[] = [];
    for await (const batch of scanTable(io, metadata)) {
      const ids = batch.columns.get(idField)!;
      const versions = batch.columns.get(versionField)!;
      for (let r = 0; r < batch.rowCount; r++) keys.push(`${String(ids[r])}@${String(versions[r])}`);
    }
    expect(keys).toHaveLength(ROWS - 2);
    expect(new Set(keys).size).toBe(ROWS - 2);
    expect(keys.every((k) => k.endsWith('@1'))).toBe(true);

    // The bad rows are in the quarantine with their reasons.
    const quarantined: { id: string; reason: string }[] = [];
    for await (const f of io.list(`${indexRoot}/queries/runs/1/`)) {
      if (!f.uri.includes('/quarantine/')) continue;
      for (const line of Buffer.from(await io.read(f.uri))
        .toString('utf8')
        .trim()
        .split('\n')) {
        quarantined.push(JSON.parse(line) as { id: string; reason: string });
      }
    }
    expect(quarantined.map((x) => `${x.id}:${x.reason}`).sort()).toEqual(['11:null-value', '7:text-too-long']);

    // End-to-end search of the current version with a metadata filter.
    const { alias, hits } = await searchCurrentIndex(io, indexRoot, 'queries', poolEmbedder(pool), {
      text: 'blue square',
      k: 5,
      filter: { tier: 'gold' },
    });
    expect(alias.version).toBe('1');
    expect(hits).toHaveLength(5);
    expect(hits.every((h) => h.metadata.tier === 'gold')).toBe(true);
    expect(hits[0]!.score).toBeGreaterThan(0.99);
  }, 180_000);

  it('leaves the alias unchanged when the coverage gate or the parity gate fails', async () => {
    const v2 = { ...input({ model: models.dualTextV2, coverageThreshold: 1 }) };
    const failed = await startEmbeddingBackfill(t.client, v2, { taskQueue: base });
    const err = await failed.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('QualityGateFailed');
    expect((err as WorkflowFailedError).cause?.message).toMatch(/coverage gate failed .* 298\/300/);
    expect(await readAlias(io, indexRoot, 'queries')).toMatchObject({ version: '1', generation: 1 });

    // The online service serves version 1 while the backfill wrote version 2: parity refuses the flip. The rerun
    // of the same workflow id reuses the shards the failed run finished.
    const skewed = await startEmbeddingBackfill(
      t.client,
      { ...v2, coverageThreshold: 0.99, parityModel: models.dualText },
      {
        taskQueue: base,
      },
    );
    const err2 = await skewed.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(((err2 as WorkflowFailedError).cause as { type?: string }).type).toBe('QualityGateFailed');
    expect((err2 as WorkflowFailedError).cause?.message).toMatch(/parity gate failed .* versions \[1, 2\]/);
    expect(await readAlias(io, indexRoot, 'queries')).toMatchObject({ version: '1', generation: 1 });
  }, 120_000);

  it('publishes v2 over v1, and a rollback restores v1 for searches', async () => {
    const handle = await startEmbeddingBackfill(t.client, input({ model: models.dualTextV2 }), { taskQueue: base });
    const result = await handle.result();
    expect(result).toMatchObject({ version: '2', aliasGeneration: 2, previousVersion: '1' });
    // `SLUICE_RECORD_HISTORY_DIR=test/histories` keeps this run's history for the replay tests.
    if (process.env.SLUICE_RECORD_HISTORY_DIR) {
      const history = await handle.fetchHistory();
      writeFileSync(
        path.join(process.env.SLUICE_RECORD_HISTORY_DIR, 'embedding-backfill-publish.json'),
        historyToJSON(history) + '\n',
      );
    }
    expect(
      (await searchCurrentIndex(io, indexRoot, 'queries', poolEmbedder(pool), { text: 'red circle' })).alias.version,
    ).toBe('2');

    const back = await rollbackAlias(io, indexRoot, 'queries', { by: 'test' });
    expect(back).toMatchObject({ version: '1', generation: 3 });
    const { alias, hits } = await searchCurrentIndex(io, indexRoot, 'queries', poolEmbedder(pool), {
      text: 'red circle',
      k: 3,
    });
    expect(alias.version).toBe('1');
    expect(hits[0]!.score).toBeGreaterThan(0.99);
  }, 120_000);

  it('builds and searches the demo intent index with a tier filter', async () => {
    const lines: string[] = [];
    const hits = await runIntentIndexDemo({
      client: t.client,
      taskQueue: base,
      catalog,
      io,
      embedder: poolEmbedder(pool),
      indexRoot,
      print: (l) => lines.push(l),
    });
    expect(hits).toHaveLength(5);
    expect(hits.every((h) => h.metadata.tier === 'gold')).toBe(true);
    // "monthly revenue growth by region" is closest to the revenue-by-time-and-region table's queries.
    expect(hits[0]!.metadata.table_name).toBe('finance.revenue_daily');
    expect(lines.some((l) => l.includes('intents@current = version 1'))).toBe(true);
  }, 120_000);

  it('pauses on a signal, shows progress, resumes, and continues as new after shardsPerRun shards', async () => {
    const handle = await startEmbeddingBackfill(
      t.client,
      input({
        output: { table: 'shop.query_vectors_can', index: 'queries-can', indexRoot },
        shardSize: 50,
        shardsPerRun: 2,
        maxParallelism: 1,
        paritySampleSize: 4,
      }),
      { taskQueue: base },
    );
    await handle.signal(embeddingPauseSignal);
    const paused = await eventually(
      async () => {
        const p = await handle.query(embeddingProgressQuery).catch(() => undefined);
        return p?.phase === 'paused' ? p : undefined;
      },
      30_000,
      'the backfill to pause',
    );
    expect(paused.total).toBe(ROWS);
    expect(paused.shardsTotal).toBe(6);
    expect(paused.done).toBeLessThan(ROWS);
    await handle.signal(embeddingResumeSignal);
    const result = await handle.result();
    expect(result.runs).toBeGreaterThanOrEqual(3);
    expect(result).toMatchObject({ shards: 6, vectors: ROWS - 2, aliasGeneration: 1 });
  }, 120_000);
});
