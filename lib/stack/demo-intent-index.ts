/**
 * The Text-to-SQL intent index of `sluice demo`: a generated history of query summaries with the governance
 * metadata of the table each query reads (tier, owner, docs), embedded by an `embedding-backfill` run with a small
 * generated text model, then searched with a tier filter, as an assistant would look up similar past questions
 * before writing SQL.
 *
 * The model is generated here, like the ones of `npm run models` (nothing is downloaded): a bag-of-words encoder
 * whose words map to analytics topics (revenue, orders, churn…), summed over the text and L2-normalised. Its
 * similarities are lexical-topical, enough to show filtering and ranking; point `model` at a real sentence encoder
 * (MiniLM exported to ONNX) for real semantics.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { startEmbeddingBackfill } from '../../client/pipelines.js';
import { tokenizerConfigJson, wordPieceTokenizerJson, wordPieceVocab } from '../../scripts/models/tokenizer-json.js';
import { appendColumns } from '../iceberg/append.js';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import { GraphBuilder } from '../inference/onnx-graph.js';
import { MANIFEST_FILE, type ModelManifestInput } from '../inference/manifest.js';
import { MODELS_DIR } from '../inference/bundled-models.js';
import type { Embedder } from '../embedding/backfill.js';
import { searchCurrentIndex } from '../embedding/search.js';
import type { SearchHit } from '../embedding/index-store.js';
import type { FileIO } from '../storage/file-io.js';

/** Topics of the intent model, each with the words that express it. */
export const INTENT_TOPICS: Record<string, readonly string[]> = {
  revenue: ['revenue', 'sales', 'gmv', 'income', 'earnings', 'sold', 'spend', 'margin'],
  orders: ['order', 'orders', 'purchase', 'purchases', 'checkout', 'basket', 'baskets', 'cart'],
  customers: ['customer', 'customers', 'user', 'users', 'buyer', 'buyers', 'account', 'accounts', 'signups'],
  churn: ['churn', 'retention', 'cancel', 'cancelled', 'inactive', 'lapsed', 'cohort', 'cohorts'],
  marketing: ['campaign', 'campaigns', 'marketing', 'ads', 'clicks', 'conversion', 'funnel', 'attribution'],
  inventory: ['inventory', 'stock', 'warehouse', 'sku', 'skus', 'product', 'products', 'stockouts'],
  payments: ['payment', 'payments', 'refund', 'refunds', 'chargeback', 'chargebacks', 'invoice', 'invoices'],
  support: ['ticket', 'tickets', 'support', 'complaint', 'complaints', 'incident', 'incidents', 'sla'],
  time: ['daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'trend', 'trends', 'growth'],
  geography: ['region', 'regions', 'country', 'countries', 'city', 'cities', 'market', 'markets'],
};
const TOPICS = Object.keys(INTENT_TOPICS);
const FILLER = ['by', 'per', 'of', 'the', 'a', 'and', 'for', 'in', 'top', 'last', 'each', 'with', 'from', 'to', 'vs'];
const MAX_TOKENS = 48;

/** The intent model's reference: `<models>/sluice-intent-text/1`. */
export function intentModel(modelsDir = MODELS_DIR) {
  return { path: path.join(modelsDir, 'sluice-intent-text', '1'), version: '1' };
}

/** Writes the intent model (ONNX graph, tokenizer, manifest) unless it is there already. */
export async function ensureIntentModel(modelsDir = MODELS_DIR): Promise<{ path: string; version: string }> {
  const ref = intentModel(modelsDir);
  if (existsSync(path.join(ref.path, MANIFEST_FILE))) return ref;
  const vocab = wordPieceVocab([...Object.values(INTENT_TOPICS).flat(), ...FILLER]);
  const g = new GraphBuilder('sluice-intent-text');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const table = new Float32Array(vocab.length * TOPICS.length);
  TOPICS.forEach((topic, axis) => {
    for (const w of INTENT_TOPICS[topic]!) table[vocab.indexOf(w) * TOPICS.length + axis] = 1;
  });
  const emb = g.op('Gather', [g.floats(table, [vocab.length, TOPICS.length]), ids], { axis: 0 });
  const maskF = g.op('Cast', [mask], { to: 1 });
  const masked = g.op('Mul', [emb, g.op('Unsqueeze', [maskF, g.ints([2])])]);
  let pooled = g.op('ReduceSum', [masked, g.ints([1])], { keepdims: 0 });
  pooled = g.op('Add', [pooled, g.floats(new Array<number>(TOPICS.length).fill(1e-4), [TOPICS.length])]);
  g.output(g.op('LpNormalization', [pooled], { axis: 1, p: 2 }), 'text_embeds', 'float', ['batch', TOPICS.length]);
  const manifest: ModelManifestInput = {
    format: 1,
    name: 'sluice-intent-text',
    version: '1',
    kind: 'text',
    dimensions: TOPICS.length,
    inputs: [
      { name: 'input_ids', role: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] },
      { name: 'attention_mask', role: 'attention_mask', dtype: 'int64', shape: ['batch', 'sequence'] },
    ],
    output: { name: 'text_embeds', shape: ['batch', TOPICS.length] },
    text: {
      tokenizer: 'tokenizer.json',
      tokenizerConfig: 'tokenizer_config.json',
      maxTokens: MAX_TOKENS,
      overLength: 'truncate',
    },
    description: `Generated bag-of-topics text encoder for the demo intent index (topics: ${TOPICS.join(', ')}).`,
  };
  await mkdir(ref.path, { recursive: true });
  await writeFile(
    path.join(ref.path, 'model.onnx'),
    g.toBytes('Sluice demo intent encoder (lib/stack/demo-intent-index.ts)'),
  );
  await writeFile(path.join(ref.path, 'tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(vocab)));
  await writeFile(path.join(ref.path, 'tokenizer_config.json'), JSON.stringify(tokenizerConfigJson(MAX_TOKENS)));
  await writeFile(path.join(ref.path, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return ref;
}

/** Tables the generated queries read, with their governance metadata. */
export const DEMO_TABLES = [
  { table: 'finance.revenue_daily', topics: ['revenue', 'time', 'geography'], tier: 'gold', owner: 'finance-data', docs: 'https://wiki.example/finance/revenue_daily' },
  { table: 'shop.orders', topics: ['orders', 'revenue', 'customers'], tier: 'gold', owner: 'commerce', docs: 'https://wiki.example/shop/orders' },
  { table: 'crm.customers', topics: ['customers', 'geography', 'churn'], tier: 'silver', owner: 'crm', docs: 'https://wiki.example/crm/customers' },
  { table: 'growth.retention_cohorts', topics: ['churn', 'customers', 'time'], tier: 'gold', owner: 'growth', docs: 'https://wiki.example/growth/cohorts' },
  { table: 'mkt.campaign_clicks', topics: ['marketing', 'customers', 'time'], tier: 'bronze', owner: 'marketing', docs: 'https://wiki.example/mkt/clicks' },
  { table: 'ops.inventory_snapshots', topics: ['inventory', 'time', 'geography'], tier: 'silver', owner: 'supply-chain', docs: 'https://wiki.example/ops/inventory' },
  { table: 'pay.refunds', topics: ['payments', 'orders', 'revenue'], tier: 'silver', owner: 'payments', docs: 'https://wiki.example/pay/refunds' },
  { table: 'support.tickets', topics: ['support', 'customers', 'time'], tier: 'bronze', owner: 'cx', docs: 'https://wiki.example/support/tickets' },
] as const; // prettier-ignore

/** A deterministic query history: for every table, summaries mixing its topics' words. */
export function demoQueryHistory(perTable = 30) {
  const rows: { id: bigint; summary: string; table: string; tier: string; owner: string; docs: string }[] = [];
  let id = 1;
  for (const t of DEMO_TABLES) {
    for (let i = 0; i < perTable; i++) {
      const words = t.topics.map((topic, k) => {
        const list = INTENT_TOPICS[topic]!;
        return list[(i * (k + 3) + k) % list.length]!;
      });
      const filler = FILLER[i % FILLER.length]!;
      const summary =
        i % 3 === 0 ? `${words[0]} ${filler} ${words[1]}` : `${words[0]} ${filler} ${words[1]} ${words[2]}`;
      rows.push({ id: BigInt(id++), summary, table: t.table, tier: t.tier, owner: t.owner, docs: t.docs });
    }
  }
  return rows;
}

/** Options of {@link runIntentIndexDemo}. */
export interface IntentDemoOptions {
  client: Client;
  /** Base task queue of the running workers. */
  taskQueue: string;
  /** The catalog and FileIO the cpu workers use (the demo writes the source table through them). */
  catalog: SqlCatalog;
  io: FileIO;
  /** Embeds the query text for the search (e.g. `poolEmbedder(new InferencePool())`). */
  embedder: Embedder;
  /** Index root. @default `<warehouse>/indexes` */
  indexRoot: string;
  /** @default console.log */
  print?: (line: string) => void;
  /** @default 'monthly revenue growth by region' */
  question?: string;
  /** @default 'gold' */
  tier?: string;
}

/**
 * Builds and queries the intent index: writes `demo.query_history` (once), runs `embedding-backfill` into
 * `demo.query_history_vectors` / index `intents`, and prints the closest past queries on tables of the given tier.
 * Needs a cpu worker with the embedding activities and a gpu worker on `taskQueue`.
 */
export async function runIntentIndexDemo(opts: IntentDemoOptions): Promise<SearchHit[]> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const model = await ensureIntentModel();
  if (!(await opts.catalog.namespaceExists('demo'))) await opts.catalog.createNamespace('demo');
  if (!(await opts.catalog.tableExists('demo.query_history'))) {
    await opts.catalog.createTable('demo.query_history', {
      schema: {
        schemaId: 0,
        identifierFieldIds: [1],
        fields: [
          { id: 1, name: 'query_id', required: true, type: { kind: 'long' } },
          { id: 2, name: 'summary', required: true, type: { kind: 'string' } },
          { id: 3, name: 'table_name', required: true, type: { kind: 'string' } },
          { id: 4, name: 'tier', required: true, type: { kind: 'string' } },
          { id: 5, name: 'owner', required: true, type: { kind: 'string' } },
          { id: 6, name: 'docs', required: true, type: { kind: 'string' } },
        ],
      },
    });
    const rows = demoQueryHistory();
    await appendColumns(opts.catalog, opts.io, 'demo.query_history', {
      columns: new Map<number, unknown[]>([
        [1, rows.map((r) => r.id)],
        [2, rows.map((r) => r.summary)],
        [3, rows.map((r) => r.table)],
        [4, rows.map((r) => r.tier)],
        [5, rows.map((r) => r.owner)],
        [6, rows.map((r) => r.docs)],
      ]),
    });
    print(`wrote demo.query_history: ${rows.length} past query summaries over ${DEMO_TABLES.length} tables`);
  }
  const handle = await startEmbeddingBackfill(
    opts.client,
    {
      source: { kind: 'iceberg', table: 'demo.query_history' },
      idColumn: 'query_id',
      textColumn: 'summary',
      metadataColumns: ['summary', 'table_name', 'tier', 'owner', 'docs'],
      model,
      output: { table: 'demo.query_history_vectors', index: 'intents', indexRoot: opts.indexRoot },
      shardSize: 80,
      batchSize: 32,
    },
    { taskQueue: opts.taskQueue },
  );
  print(`embedding-backfill ${handle.workflowId} started`);
  const result = await handle.result();
  print(
    `index intents@current = version ${result.version}: ${result.vectors} vectors, coverage ` +
      `${(result.coverage.share * 100).toFixed(1)}%, parity min cosine ${result.parity?.minCosine.toFixed(5) ?? 'n/a'}`,
  );
  const question = opts.question ?? 'monthly revenue growth by region';
  const tier = opts.tier ?? 'gold';
  const { hits } = await searchCurrentIndex(opts.io, opts.indexRoot, 'intents', opts.embedder, {
    text: question,
    k: 5,
    filter: { tier },
  });
  print(`past queries like "${question}" on ${tier}-tier tables:`);
  for (const h of hits) {
    print(
      `  ${h.score.toFixed(3)}  #${h.id} "${String(h.metadata.summary)}"  ${String(h.metadata.table_name)}  ` +
        `owner ${String(h.metadata.owner)}  ${String(h.metadata.docs)}`,
    );
  }
  return hits;
}
