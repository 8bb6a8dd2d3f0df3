import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startCollectionsBuild } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import { readAlias } from '../../lib/embedding/alias-store.js';
import { PostgresCatalogDriver, SqlCatalog } from '../../lib/iceberg/catalog/index.js';
import { bundledModels } from '../../lib/inference/index.js';
import {
  generateSyntheticCatalog,
  syntheticAttributeOptions,
  type SyntheticCatalog,
} from '../../lib/collections/synthetic.js';
import { startVlmStandIn, type VlmStandIn } from '../../lib/collections/vlm-stand-in.js';
import { readPublishedCollections } from '../../lib/collections/publish.js';
import { readQuarantine } from '../../lib/collections/quarantine-store.js';
import { stratifiedSample } from '../../lib/collections/sample.js';
import { CompositeFileIO, S3FileIO } from '../../lib/storage/index.js';
import type { CollectionsBuildRequest, CollectionsBuildSummary } from '../../schemas/collections.js';
import {
  collectionsSummaryQuery,
  collectionsVocabularyQuery,
  reviewVocabularyUpdate,
  type VocabularyView,
} from '../../workflows/collections-build.js';
import { startCollectionsWorkers } from '../fixtures/collections-workers.js';
import { connectToTestServer, eventually, uniqueQueue } from '../fixtures/temporal.js';

const s3 = inject('s3');
const bucket = `sluice-coll-${randomUUID().slice(0, 8)}`;
const warehouse = `s3://${bucket}/wh`;
const root = `s3://${bucket}/collections`;
const models = bundledModels();
const ITEMS = 800;

describe('collections-build on real Temporal, PostgreSQL catalog, S3, the dual encoder and the VLM stand-in', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  let io: CompositeFileIO;
  let catalog: SqlCatalog;
  let driver: PostgresCatalogDriver;
  let workersHandle: { stop: () => Promise<void> } | undefined;
  let vlm: VlmStandIn;
  let synthetic: SyntheticCatalog;
  let rejectedImageItem: string;
  const base = uniqueQueue('coll');
  const metrics = new Registry();

  const input = (over: Partial<CollectionsBuildRequest> = {}): CollectionsBuildRequest => ({
    name: 'shapes',
    version: 'v1',
    catalog: {
      table: 'shop.catalog',
      idColumn: 'item_id',
      imageUriColumn: 'image_uri',
      titleColumn: 'title',
      descriptionColumn: 'description',
      stratumColumn: 'category',
    },
    demand: { table: 'shop.search_demand', queryColumn: 'query', countColumn: 'count' },
    vlm: {
      url: vlm.url,
      model: 'stand-in-vlm',
      concurrency: 8,
      pricePer1kTokens: 0.01,
      timeoutSeconds: 10,
      maxAttempts: 4,
    },
    attributes: syntheticAttributeOptions(),
    promptVersion: '1',
    textModel: models.dualText,
    imageModel: models.dualImage,
    sample: { size: 160, seed: 7 },
    vocabulary: {
      minValueShare: 0.03,
      minSupport: 2,
      maxAttributes: 2,
      mergeCosine: 0.9,
      maxCollections: 500,
      llmJudge: false,
    },
    review: { timeoutSeconds: 600, onTimeout: 'fail' },
    budget: {},
    evaluation: { uri: synthetic.evalUri, minPrecisionAt10: 0.9, minRecallAt10: 0.85 },
    output: { root, indexRoot: `${root}/indexes` },
    backfill: { shardSize: 400, batchSize: 64, maxParallelism: 2, coverageThreshold: 0.99 },
    ...over,
  });

  /** SLUICE_RECORD_HISTORIES=1 keeps this run's history in test/histories/ for the replay tests. */
  async function record(handle: WorkflowHandle, name: string): Promise<void> {
    if (process.env.SLUICE_RECORD_HISTORIES !== '1') return;
    const history = await handle.fetchHistory();
    writeFileSync(path.join(REPO_ROOT, 'test/histories', `${name}.json`), historyToJSON(history) + '\n');
  }

  async function vocabularyView(handle: WorkflowHandle): Promise<VocabularyView> {
    return eventually(
      async () => {
        const v = await handle.query(collectionsVocabularyQuery);
        return v.status === 'awaiting-review' ? v : undefined;
      },
      120_000,
      'the vocabulary to await review',
    );
  }

  beforeAll(async () => {
    t = await connectToTestServer();
    const admin = new pg.Client({ connectionString: inject('postgresUrl') });
    await admin.connect();
    const database = `coll_${randomUUID().slice(0, 8)}`;
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
    synthetic = await generateSyntheticCatalog({
      catalog,
      io,
      table: 'shop.catalog',
      imagePrefix: `s3://${bucket}/images`,
      items: ITEMS,
      seed: 11,
      evalShare: 0.25,
      evalUri: `s3://${bucket}/eval/eval.json`,
      truthUri: `s3://${bucket}/eval/truth.json`,
      demandTable: 'shop.search_demand',
    });
    // One sampled item's image is refused by the endpoint (a 4xx for that item): it must land in quarantine.
    const sampled = stratifiedSample(
      synthetic.rows.map((r) => ({ itemId: r.itemId, stratum: r.stratum ?? '' })),
      160,
      7,
    );
    rejectedImageItem = sampled[0]!;
    const rejectedRow = synthetic.rows.find((r) => r.itemId === rejectedImageItem)!;
    const rejectHashes = new Set([
      createHash('sha256')
        .update(await io.read(rejectedRow.imageUri))
        .digest('hex'),
    ]);
    // The stand-in VLM: answers from the ground truth, wrong on 10% of answers, sometimes malformed, sometimes 503.
    vlm = await startVlmStandIn({
      truth: (sha) => synthetic.truthByImageHash.get(sha),
      seed: 3,
      wrongRate: 0.1,
      synonymRate: 0.1,
      malformedRate: 0.05,
      serverErrorRate: 0.05,
      rejectImages: rejectHashes,
    });

    workersHandle = await startCollectionsWorkers({
      t,
      base,
      host: 'gpu-coll',
      catalog,
      io,
      warehouse,
      metricsRegistry: metrics,
    });
  }, 240_000);

  afterAll(async () => {
    await workersHandle?.stop();
    await vlm?.close();
    await driver?.close();
    await io?.close();
    await t?.close();
  });

  it('builds, waits for the operator, verifies the borderline, passes the gate and publishes v1', async () => {
    const handle = await startCollectionsBuild(t.client, input(), { taskQueue: base });
    const view = await vocabularyView(handle);
    expect(view.proposal!.collectionCount).toBeGreaterThan(50);
    // Synonyms the VLM answered (crimson, navy…) were merged into canonical values by the text tower.
    expect(view.proposal!.merges.length).toBeGreaterThan(0);
    const reviewed = await handle.executeUpdate(reviewVocabularyUpdate, { args: [{ action: 'approve', by: 'ana' }] });
    expect(reviewed.status).toBe('approved');
    // A second decision is refused by the validator, and changes nothing.
    const second = await handle
      .executeUpdate(reviewVocabularyUpdate, { args: [{ action: 'reject', by: 'bob' }] })
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((second as WorkflowUpdateFailedError).cause?.message)).toMatch(
      /already reviewed|not awaiting review/,
    );

    const result: CollectionsBuildSummary = await handle.result();
    expect(result.phase).toBe('done');
    expect(result.extractor).toBe('vlm');
    expect(result.itemIndex?.action).toBe('full');
    expect(result.extraction!.extracted).toBeGreaterThan(150);
    expect(result.extraction!.quarantined).toBeGreaterThanOrEqual(1);
    expect(result.verification!.asked).toBeGreaterThan(0);
    expect(result.verification!.budgetExhausted).toBe(false);
    const published = result.published!;
    expect(published.gate?.passed).toBe(true);
    expect(published.evaluation!.precisionAt10).toBeGreaterThanOrEqual(0.9);
    expect(published.evaluation!.recallAt10).toBeGreaterThanOrEqual(0.85);
    // Far fewer VLM calls than asking about every item × every collection.
    expect(published.vlmCallShare).toBeLessThan(0.02);
    expect(result.vlm.calls).toBeGreaterThan(0);
    expect(result.vlm.costUsd).toBeGreaterThan(0);
    expect(result.alias).toEqual({ generation: 1 });

    const read = await readPublishedCollections({ catalog, io, root, name: 'shapes' });
    expect(read.alias.version).toBe('v1');
    expect(read.collections.length).toBe(published.collections);
    const redCircle = read.collections.find((c) => c.id === 'color=red+shape=circle');
    expect(redCircle, 'the red circle collection').toBeDefined();
    const truth = synthetic.truth;
    const top = redCircle!.items.slice(0, 10);
    const correct = top.filter((m) => truth.get(m.itemId)?.color === 'red' && truth.get(m.itemId)?.shape === 'circle');
    expect(correct.length).toBeGreaterThanOrEqual(9);

    // VLM spend and quarantines are Prometheus counters of the cpu worker.
    const text = await metrics.metrics();
    expect(text).toMatch(/sluice_vlm_requests_total\{stage="extract",model="stand-in-vlm"\} [1-9]/);
    expect(text).toMatch(/sluice_vlm_requests_total\{stage="verify",model="stand-in-vlm"\} [1-9]/);
    expect(text).toMatch(/sluice_vlm_cost_usd_total\{stage="extract",model="stand-in-vlm"\} 0\.\d*[1-9]/);
    expect(text).toMatch(/sluice_collections_quarantined_total\{stage="extract",reason="client-error"\} [1-9]/);

    // The refused image is in the extraction quarantine with its reason, ready to replay.
    const quarantined = await readQuarantine(io, `${root}/shapes/runs/v1/`);
    expect(quarantined.find((r) => r.itemId === rejectedImageItem)).toMatchObject({
      stage: 'extract',
      reason: 'client-error',
    });
    await record(handle, 'collections-build-published');
  }, 600_000);

  it('a rerun pays nothing for cached extractions, reuses the item index, and applies an edited vocabulary', async () => {
    const callsBefore = vlm.stats().requests;
    // This run also asks the endpoint to judge the proposed collections (LLM-as-judge, text-only requests).
    const handle = await startCollectionsBuild(
      t.client,
      input({ version: 'v2', vocabulary: { ...input().vocabulary, llmJudge: true } }),
      { taskQueue: base },
    );
    const view = await vocabularyView(handle);
    const removed = view.proposal!.topCollections[0]!.id;
    await handle.executeUpdate(reviewVocabularyUpdate, {
      args: [
        {
          action: 'edit',
          by: 'ana',
          comment: 'drop the top one, add large black circles',
          remove: [removed],
          add: [{ attributes: { size: 'large', color: 'black', shape: 'circle' }, name: 'big black balls' }],
        },
      ],
    });
    const result = await handle.result();
    expect(result.extraction!.cacheHits).toBeGreaterThan(150);
    expect(result.itemIndex?.action).toBe('reuse');
    expect(vlm.stats().byKind.judge ?? 0).toBeGreaterThan(0);
    expect(result.vocabulary?.review).toBe('edited by ana');
    expect(result.vocabulary?.approved).toBe(view.proposal!.collectionCount); // one removed, one added
    // Only verification (and extraction of items quarantined before) asked the VLM this time.
    expect(vlm.stats().requests - callsBefore).toBeLessThanOrEqual(result.vlm.calls);
    const read = await readPublishedCollections({ catalog, io, root, name: 'shapes' });
    expect(read.alias.version).toBe('v2');
    expect(read.collections.some((c) => c.id === removed)).toBe(false);
    expect(read.collections.find((c) => c.id === 'color=black+shape=circle+size=large')?.name).toBe('big black balls');
  }, 600_000);

  it('stops verifying cleanly when the budget runs out, auto-approves on timeout, marks partial collections', async () => {
    const handle = await startCollectionsBuild(
      t.client,
      input({
        version: 'v3-budget',
        budget: { maxCalls: 25 },
        review: { timeoutSeconds: 1, onTimeout: 'approve' },
        evaluation: undefined,
      }),
      { taskQueue: base },
    );
    const result = await handle.result();
    expect(result.vocabulary?.review).toBe('auto-approved on timeout');
    expect(result.vlm.calls).toBeLessThanOrEqual(25);
    expect(result.verification!.budgetExhausted).toBe(true);
    expect(result.verification!.unasked).toBeGreaterThan(0);
    expect(result.published!.partialCollections).toBeGreaterThan(0);
    expect(result.published!.gate).toBeNull();
    await record(handle, 'collections-build-budget-auto-approved');
  }, 600_000);

  it('a rejected vocabulary, and a failed quality gate, leave the alias where it was', async () => {
    const before = await readAlias(io, root, 'shapes');
    const rejected = await startCollectionsBuild(t.client, input({ version: 'v4-rejected' }), { taskQueue: base });
    await vocabularyView(rejected);
    await rejected.executeUpdate(reviewVocabularyUpdate, {
      args: [{ action: 'reject', by: 'ana', comment: 'too many pairs' }],
    });
    const err = await rejected.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/ana rejected the proposed vocabulary/);
    await record(rejected, 'collections-build-rejected');

    const gated = await startCollectionsBuild(
      t.client,
      input({
        version: 'v5-gated',
        vocabulary: { ...input().vocabulary, maxCollections: 5 },
        review: { timeoutSeconds: 1, onTimeout: 'approve' },
      }),
      { taskQueue: base },
    );
    const gateErr = await gated.result().catch((e: unknown) => e);
    expect(gateErr).toBeInstanceOf(WorkflowFailedError);
    expect((gateErr as WorkflowFailedError).cause).toMatchObject({ type: 'QualityGateFailed' });
    const summary = await gated.query(collectionsSummaryQuery);
    expect(summary.published?.gate?.passed).toBe(false);
    expect(summary.published?.evaluation?.recallAt10).toBeLessThan(0.85);
    const after = await readAlias(io, root, 'shapes');
    expect(after?.generation).toBe(before?.generation);
    expect(after?.version).toBe(before?.version);
  }, 600_000);
});
