/**
 * The collections part of `sluice demo`: a synthetic product catalog (rendered images of coloured, patterned shapes,
 * noisy titles, a demand table and a labelled evaluation set, lib/collections/synthetic.ts) turned into searchable
 * collections by a `collections-build` run. The extractor is the dual encoder's zero-shot scoring unless
 * `SLUICE_VLM_URL` names a real OpenAI-compatible vision endpoint. The demo plays the operator at the human
 * checkpoint: it prints the proposed vocabulary and approves it with the `reviewVocabulary` update.
 */
import type { Client } from '@temporalio/client';
import { startCollectionsBuild } from '../../client/pipelines.js';
import { sluiceEnv } from '../config.js';
import { generateSyntheticCatalog, syntheticAttributeOptions } from '../collections/synthetic.js';
import { readPublishedCollections } from '../collections/publish.js';
import type { PublishedCollection } from '../collections/types.js';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import { bundledModels } from '../inference/bundled-models.js';
import type { FileIO } from '../storage/file-io.js';
import type { CollectionsBuildRequest, CollectionsBuildSummary } from '../../schemas/collections.js';
import { collectionsVocabularyQuery, reviewVocabularyUpdate } from '../../workflows/collections-build.js';

export interface CollectionsDemoOptions {
  client: Client;
  taskQueue: string;
  catalog: SqlCatalog;
  io: FileIO;
  /** The warehouse root (`file://…` or `s3://…`). */
  warehouse: string;
  /** Catalog size. @default 2000 */
  items?: number;
  print?: (line: string) => void;
}

export const COLLECTIONS_DEMO = {
  name: 'demo-shapes',
  catalogTable: 'demo.catalog',
  demandTable: 'demo.search_demand',
  items: 2000,
  seed: 42,
} as const;

/** Writes the demo catalog once, runs `collections-build`, approves its vocabulary, and returns the published result. */
export async function runCollectionsDemo(
  opts: CollectionsDemoOptions,
): Promise<{ summary: CollectionsBuildSummary; collections: PublishedCollection[] }> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const wh = opts.warehouse.replace(/\/+$/, '');
  const d = COLLECTIONS_DEMO;
  const evalUri = `${wh}/demo-collections/eval.json`;
  if (!(await opts.catalog.namespaceExists('demo'))) await opts.catalog.createNamespace('demo');
  if (!(await opts.catalog.tableExists(d.catalogTable)) || !(await opts.io.exists(evalUri))) {
    const made = await generateSyntheticCatalog({
      catalog: opts.catalog,
      io: opts.io,
      table: d.catalogTable,
      imagePrefix: `${wh}/demo-collections/images`,
      items: opts.items ?? d.items,
      seed: d.seed,
      evalUri,
      truthUri: `${wh}/demo-collections/truth.json`,
      demandTable: d.demandTable,
    });
    print(
      `wrote ${d.catalogTable}: ${made.rows.length} items with rendered images, ${d.demandTable}, ` +
        `and a labelled evaluation set`,
    );
  }
  const models = bundledModels();
  const vlm = sluiceEnv.vlm;
  const version = `d${Date.now().toString(36)}`;
  const input: CollectionsBuildRequest = {
    name: d.name,
    version,
    catalog: {
      table: d.catalogTable,
      idColumn: 'item_id',
      imageUriColumn: 'image_uri',
      titleColumn: 'title',
      descriptionColumn: 'description',
      stratumColumn: 'category',
    },
    demand: { table: d.demandTable, queryColumn: 'query', countColumn: 'count' },
    ...(vlm.url
      ? {
          vlm: {
            url: vlm.url,
            model: vlm.model,
            ...(vlm.apiKeySet ? { apiKeyEnv: 'SLUICE_VLM_API_KEY' } : {}),
            concurrency: 8,
            pricePer1kTokens: vlm.pricePer1kTokens,
            timeoutSeconds: 60,
            maxAttempts: 4,
          },
        }
      : {}),
    attributes: syntheticAttributeOptions(),
    promptVersion: '1',
    textModel: models.dualText,
    imageModel: models.dualImage,
    sample: { size: 200, seed: 1 },
    vocabulary: {
      minValueShare: 0.02,
      minSupport: 2,
      maxAttributes: 2,
      mergeCosine: 0.9,
      maxCollections: 500,
      llmJudge: false,
    },
    review: { timeoutSeconds: 3600, onTimeout: 'fail' },
    budget: { maxCalls: 2000 },
    evaluation: { uri: evalUri, minPrecisionAt10: 0.95, minRecallAt10: 0.9 },
    output: {},
    backfill: { shardSize: 1000, batchSize: 64, maxParallelism: 2, coverageThreshold: 0.99 },
  };
  const handle = await startCollectionsBuild(opts.client, input, { taskQueue: opts.taskQueue });
  print(
    `collections-build ${handle.workflowId} started (extractor: ${vlm.url ? `VLM ${vlm.model} at ${vlm.url}` : 'zero-shot dual encoder'})`,
  );
  // The human checkpoint: show the proposal, then approve it as the demo's operator.
  for (;;) {
    const view = await handle.query(collectionsVocabularyQuery);
    if (view.status === 'awaiting-review') {
      const p = view.proposal!;
      print(
        `vocabulary proposed: ${p.collectionCount} collections from ${Object.values(p.valueCounts).reduce((a, b) => a + b, 0)} ` +
          `attribute values; top by demand: ${p.topCollections
            .slice(0, 5)
            .map((c) => `"${c.name}"`)
            .join(', ')}`,
      );
      await handle.executeUpdate(reviewVocabularyUpdate, {
        args: [{ action: 'approve', by: 'sluice-demo', comment: 'approved by the demo script' }],
      });
      print(`vocabulary approved (as the operator would: sluice collections review ${handle.workflowId} --approve)`);
      break;
    }
    const described = await handle.describe();
    if (described.status.name !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const summary = await handle.result();
  const root = `${wh}/collections`;
  const { collections } = await readPublishedCollections({ catalog: opts.catalog, io: opts.io, root, name: d.name });
  const ev = summary.published?.evaluation;
  print(
    `published ${d.name}@${version}: ${summary.published?.collections} collections, ` +
      `${summary.published?.members} memberships` +
      (ev ? `; P@10 ${ev.precisionAt10.toFixed(3)}, R@10 ${ev.recallAt10.toFixed(3)}` : '') +
      `; VLM calls ${summary.vlm.calls} (${((summary.vlm.callShareOfNaive ?? 0) * 100).toFixed(3)}% of items × collections)`,
  );
  for (const c of collections.slice(0, 5)) {
    print(
      `  "${c.name}": ${c.items.length} items, top ${c.items
        .slice(0, 3)
        .map((m) => `${m.itemId} (${m.score.toFixed(2)})`)
        .join(', ')}`,
    );
  }
  return { summary, collections };
}
