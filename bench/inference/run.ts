/**
 * `npm run bench:inference` — the inference engine's figures (issue 6, "Measure"):
 *
 *  1. backfill-path throughput (the pool's embed path: tokenize, coalesce, pad, run, split) vs a bare
 *     `session.run` loop over the same, pre-built batches, same model, batch size and threads, in one run;
 *  2. a batch-size sweep 1…256: batch latency and items/s;
 *  4. a 1M-item embed with the small model (dual-encoder text tower): wall time and items/s;
 *  5. `--provider cuda`: the same on a GPU.
 *
 * Text models only, so that the GPU run needs nothing but onnxruntime-node: `bench/inference/bundle.sh` makes one
 * self-contained ESM file of this script (see docs/inference.md, "GPU benchmark").
 *
 *   node --import tsx bench/inference/run.ts [--provider cpu|cuda|auto] [--models DIR] [--out DIR]
 *        [--items N] [--batch N] [--threads N] [--tokenizer-threads N] [--quick] [--skip-sweep] [--skip-million]
 *        [--generate]   (models are generated into --models when missing, or always with --generate)
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import {
  bundledModels,
  detectProviders,
  InferencePool,
  readManifest,
  type ModelRef,
  type PackedTokens,
} from '../../lib/inference/index.js';
import { createSessionOn, type ProviderRequest } from '../../lib/inference/providers.js';
import { TextPreprocessor, type TokenizedText } from '../../lib/inference/text-preprocess.js';
import { generateModels } from '../../scripts/models/generate-models.js';
import type { Figure } from '../lib/results.js';
import { catalogTexts, syllableTexts } from './texts.js';
import { compareTokenizers, mixedUnicodeTexts } from './tokenizer.js';

const { values: args } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cpu' },
    models: { type: 'string' },
    out: { type: 'string', default: path.join('bench', 'results') },
    items: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '64' },
    threads: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'skip-sweep': { type: 'boolean', default: false },
    'skip-million': { type: 'boolean', default: false },
    'tokenizer-threads': { type: 'string', default: '0' },
    generate: { type: 'boolean', default: false },
    'tokenizer-only': { type: 'boolean', default: false },
    'skip-tokenizer': { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
  },
  // Tokenizer threads load this same file (when bundled); they ignore the arguments.
  args: isMainThread ? process.argv.slice(2) : [],
});

const provider = args.provider as ProviderRequest;
if (!['cpu', 'cuda', 'auto'].includes(provider))
  throw new Error(`--provider must be cpu, cuda or auto, not ${provider}`);
const models = bundledModels(args.models ? path.resolve(args.models) : undefined);
const batch = Number(args.batch);
const threads = args.threads ? Number(args.threads) : os.cpus().length;
const millionItems = Number(args.items);
const quick = args.quick;
const tokenizerThreads = Number(args['tokenizer-threads']);
const reps = args.reps ? Number(args.reps) : undefined;
if (args.only && !['transformer', 'small_model'].includes(args.only))
  throw new Error(`--only must be transformer or small_model, not ${args.only}`);
/** Whether `--only` (if given) selects model `name`. */
const wanted = (name: 'transformer' | 'small_model') => !args.only || args.only === name;

const figures: Figure[] = [];
const notes: string[] = [];
const log = (...parts: unknown[]) => console.log(...parts);

/** Builds the feeds of one batch exactly as the pool does (pad to the longest text, int64 ids and mask). */
function feedsOf(items: readonly TokenizedText[]): Record<string, ort.Tensor> {
  const seq = Math.max(...items.map((t) => t.ids.length));
  const ids = new BigInt64Array(items.length * seq);
  const mask = new BigInt64Array(items.length * seq);
  items.forEach((t, r) => {
    for (let j = 0; j < t.ids.length; j++) {
      ids[r * seq + j] = BigInt(t.ids[j]!);
      mask[r * seq + j] = 1n;
    }
  });
  return {
    input_ids: new ort.Tensor('int64', ids, [items.length, seq]),
    attention_mask: new ort.Tensor('int64', mask, [items.length, seq]),
  };
}

async function tokenizer(ref: ModelRef): Promise<TextPreprocessor> {
  return TextPreprocessor.load(ref.path, await readManifest(ref.path));
}

/**
 * Items/s of the pool's embed path over `texts`, fed in chunks the way a shard activity feeds it: `batch` is
 * `embedTextBatch` (what the backfill's embedder calls: one Float32Array per chunk), `per-item` is
 * `embedTextsSettled` (one outcome object per text).
 */
async function poolThroughput(
  pool: InferencePool,
  ref: ModelRef,
  texts: readonly string[],
  chunk: number,
  api: 'batch' | 'per-item' = 'batch',
) {
  const started = performance.now();
  let embedded = 0;
  for (let i = 0; i < texts.length; i += chunk) {
    const part = texts.slice(i, i + chunk);
    if (api === 'batch') {
      const out = await pool.embedTextBatch(ref, part);
      embedded += out.count - out.rejected.length;
    } else embedded += (await pool.embedTextsSettled(ref, part)).filter((o) => o.ok).length;
  }
  const seconds = (performance.now() - started) / 1000;
  if (embedded !== texts.length) throw new Error(`pool embedded ${embedded} of ${texts.length}`);
  return texts.length / seconds;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Items/s of a bare `session.run` loop over pre-built batches (tensors built before the clock starts). */
async function bareThroughput(session: ort.InferenceSession, batches: readonly Record<string, ort.Tensor>[]) {
  let items = 0;
  const started = performance.now();
  for (const feeds of batches) {
    const out = await session.run(feeds);
    items += (Object.values(out)[0]!.dims[0] as number) ?? 0;
  }
  return items / ((performance.now() - started) / 1000);
}

/** Items/s of a hand-written loop with the same preprocessing: tokenize a batch, build its tensors, run it. */
async function bareTokenizeAndRunThroughput(
  session: ort.InferenceSession,
  pre: TextPreprocessor,
  texts: readonly string[],
) {
  const started = performance.now();
  let items = 0;
  for (let i = 0; i < texts.length; i += batch) {
    const tokenized = texts.slice(i, i + batch).map((t, k) => pre.encode(t, i + k));
    const out = await session.run(feedsOf(tokenized));
    items += (Object.values(out)[0]!.dims[0] as number) ?? 0;
  }
  return items / ((performance.now() - started) / 1000);
}

/**
 * Figure 1 for one model: pool path vs bare loop, `reps` alternating repetitions; the figure is the MEDIAN of the
 * per-repetition ratios (each pool run against the bare run right after it), so that a load spike on the shared
 * machine moves one repetition, not the figure.
 */
async function compareWithBareLoop(name: string, ref: ModelRef, texts: readonly string[], reps: number) {
  const pool = new InferencePool({
    provider,
    intraOpThreads: threads,
    interOpThreads: 1,
    maxBatch: batch,
    maxWaitMs: 2,
    tokenizerThreads,
  });
  const loaded = await pool.load(ref);
  const { session } = await createSessionOn(path.join(ref.path, loaded.manifest.file), loaded.provider, {
    intraOpThreads: threads,
    interOpThreads: 1,
  });
  const pre = await tokenizer(ref);
  const tokenized = texts.map((t, i) => pre.encode(t, i));
  const batches: Record<string, ort.Tensor>[] = [];
  for (let i = 0; i < tokenized.length; i += batch) batches.push(feedsOf(tokenized.slice(i, i + batch)));
  // Warm every path (first runs allocate ONNX Runtime's arenas).
  await pool.warmUp([ref]);
  await pool.embedTextBatch(ref, texts.slice(0, batch * 16));
  await session.run(batches[0]!);
  const runs = {
    pool: [] as number[],
    perItem: [] as number[],
    tokens: [] as number[],
    bare: [] as number[],
    hand: [] as number[],
  };
  const tokenRatios: number[] = [];
  const tokenizeRuns: number[] = [];
  const ratios: number[] = [];
  const perItemRatios: number[] = [];
  const chunk = batch * 16;
  // The same chunks tokenized ahead (outside the clock), for the pool without its tokenizer (embedTokens).
  const packedChunks: PackedTokens[] = [];
  for (let i = 0; i < texts.length; i += chunk) packedChunks.push(pre.encodeMany(texts.slice(i, i + chunk)));
  const pretokenizedThroughput = async () => {
    const started = performance.now();
    let embedded = 0;
    for (const packed of packedChunks) embedded += (await pool.embedTokens(ref, packed)).count;
    if (embedded !== texts.length) throw new Error(`pool embedded ${embedded} of ${texts.length}`);
    return texts.length / ((performance.now() - started) / 1000);
  };
  for (let r = 0; r < reps; r++) {
    // Tokenizer speed alone (one thread, packed), to say where the pool path's time goes.
    const tokStart = performance.now();
    pre.encodeMany(texts);
    tokenizeRuns.push(texts.length / ((performance.now() - tokStart) / 1000));
    const p = await poolThroughput(pool, ref, texts, chunk, 'batch');
    const b = await bareThroughput(session, batches);
    const q = await poolThroughput(pool, ref, texts, chunk, 'per-item');
    runs.pool.push(p);
    runs.bare.push(b);
    runs.perItem.push(q);
    ratios.push(p / b);
    perItemRatios.push(q / b);
    runs.hand.push(await bareTokenizeAndRunThroughput(session, pre, texts));
    const t = await pretokenizedThroughput();
    const b2 = await bareThroughput(session, batches);
    runs.tokens.push(t);
    runs.bare.push(b2);
    tokenRatios.push(t / b2);
  }
  await session.release();
  await pool.close();
  const poolMid = median(runs.pool);
  const bareMid = median(runs.bare);
  const handMid = median(runs.hand);
  const tokMid = median(tokenizeRuns);
  // What one thread doing the tokenizer's work and then the bare loop's work would reach (no engine overhead).
  const serialCeiling = 1 / (1 / tokMid + 1 / bareMid);
  log(
    `${name}: pool (batch API) ${poolMid.toFixed(1)} items/s, per-item API ${median(runs.perItem).toFixed(1)}, bare ` +
      `session.run ${bareMid.toFixed(1)} items/s; median ratio ${median(ratios).toFixed(3)} (per-item API ` +
      `${median(perItemRatios).toFixed(3)}; pre-tokenized embedTokens ${median(tokenRatios).toFixed(3)}); bare tokenize+run ${handMid.toFixed(1)} items/s; tokenizer alone ` +
      `${tokMid.toFixed(0)} texts/s; tokenize-then-run ceiling ${serialCeiling.toFixed(1)} items/s`,
  );
  figures.push({
    name: `${name}_pool_vs_bare_session_run`,
    value: round(poolMid),
    unit: 'items/s',
    peer: { name: 'bare session.run loop (pre-built batches)', value: round(bareMid) },
    ratio: round(median(ratios), 3),
    ratioMeaning: 'pool embedTextBatch items/s ÷ bare loop items/s, median of per-repetition ratios (higher is better)',
    goal: '≥ 0.9× the bare loop',
  });
  figures.push({
    name: `${name}_pool_per_item_api_vs_bare_session_run`,
    value: round(median(runs.perItem)),
    unit: 'items/s',
    peer: { name: 'bare session.run loop (pre-built batches)', value: round(bareMid) },
    ratio: round(median(perItemRatios), 3),
    ratioMeaning: 'pool embedTextsSettled items/s ÷ bare loop items/s, median of per-repetition ratios',
    goal: null,
  });
  figures.push({
    name: `${name}_pool_pretokenized_vs_bare_session_run`,
    value: round(median(runs.tokens)),
    unit: 'items/s',
    peer: { name: 'bare session.run loop (pre-built batches)', value: round(bareMid) },
    ratio: round(median(tokenRatios), 3),
    ratioMeaning:
      'pool embedTokens (texts tokenized ahead, outside the clock) ÷ bare loop: the engine overhead alone, median ' +
      'of per-repetition ratios',
    goal: null,
  });
  figures.push({
    name: `${name}_pool_vs_bare_tokenize_and_run`,
    value: round(poolMid),
    unit: 'items/s',
    peer: { name: 'bare loop: tokenize + build tensors + session.run, one thread', value: round(handMid) },
    ratio: round(poolMid / handMid, 3),
    ratioMeaning: 'pool embed path items/s ÷ hand-written loop with the same preprocessing (the engine overhead)',
    goal: null,
  });
  figures.push({
    name: `${name}_pool_vs_tokenize_then_run_ceiling`,
    value: round(poolMid),
    unit: 'items/s',
    peer: {
      name: '1 / (1 / tokenizer alone + 1 / bare session.run): serial work with zero overhead',
      value: round(serialCeiling),
    },
    ratio: round(poolMid / serialCeiling, 3),
    ratioMeaning: 'pool ÷ the most one JS thread can do when it must tokenize and then run',
    goal: null,
  });
  figures.push({
    name: `${name}_tokenizer_alone`,
    value: round(tokMid),
    unit: 'texts/s',
    peer: null,
    ratio: null,
    goal: null,
  });
  const list = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
  notes.push(
    `${name}: ${texts.length} texts, batch ${batch}, chunks of ${chunk}, ${threads} intra-op threads, ` +
      `${tokenizerThreads} tokenizer threads, provider ${loaded.provider}; ${reps} alternating repetitions, medians ` +
      `(pool batch API runs ${list(runs.pool)}; bare runs ${list(runs.bare)}; per-item API runs ${list(runs.perItem)}; ` +
      `pre-tokenized runs ${list(runs.tokens)}; ` +
      `hand-written tokenize+run runs ${list(runs.hand)} items/s; per-repetition ratios ` +
      `${ratios.map((x) => x.toFixed(3)).join(', ')})`,
  );
}

/** Figure 2: batch latency and items/s for batch sizes 1…256 through the pool. */
async function sweep(name: string, ref: ModelRef, texts: readonly string[], itemsFor: (size: number) => number) {
  const rows: { batch: number; items: number; meanBatchMs: number; itemsPerSecond: number }[] = [];
  for (const size of [1, 2, 4, 8, 16, 32, 64, 128, 256]) {
    const pool = new InferencePool({
      provider,
      intraOpThreads: threads,
      interOpThreads: 1,
      maxBatch: size,
      maxWaitMs: 2,
      tokenizerThreads,
    });
    const n = Math.min(texts.length, itemsFor(size));
    await pool.embedTexts(ref, texts.slice(0, size));
    const before = pool.stats().models[0]!;
    const started = performance.now();
    await poolThroughput(pool, ref, texts.slice(0, n), size * 8);
    const seconds = (performance.now() - started) / 1000;
    const after = pool.stats().models[0]!;
    const meanBatchMs = ((after.runSeconds - before.runSeconds) * 1000) / (after.batches - before.batches);
    rows.push({ batch: size, items: n, meanBatchMs: round(meanBatchMs, 2), itemsPerSecond: round(n / seconds) });
    log(`${name} sweep: batch ${size}: ${meanBatchMs.toFixed(2)} ms/batch, ${(n / seconds).toFixed(1)} items/s`);
    await pool.close();
    figures.push({
      name: `${name}_sweep_batch_${size}_items_per_s`,
      value: round(n / seconds),
      unit: 'items/s',
      peer: null,
      ratio: null,
      goal: null,
    });
    figures.push({
      name: `${name}_sweep_batch_${size}_latency`,
      value: round(meanBatchMs, 2),
      unit: 'ms/batch',
      peer: null,
      ratio: null,
      goal: null,
    });
  }
  return rows;
}

/** Figure 4: `n` items through the pool with the small model, fed as a backfill shard would (chunks, 2 in flight). */
async function million(ref: ModelRef, n: number) {
  const pool = new InferencePool({
    provider,
    intraOpThreads: threads,
    interOpThreads: 1,
    maxBatch: 256,
    maxWaitMs: 2,
    tokenizerThreads,
  });
  await pool.warmUp([ref]);
  const chunk = 8192;
  const base = catalogTexts(chunk * 4, 11);
  let next = 0;
  let done = 0;
  let checksum = 0;
  const started = performance.now();
  let lastLog = started;
  const lane = async () => {
    for (;;) {
      const start = next;
      if (start >= n) return;
      next += chunk;
      const count = Math.min(chunk, n - start);
      const texts = Array.from({ length: count }, (_, i) => base[(start + i) % base.length]!);
      const out = await pool.embedTextBatch(ref, texts);
      for (let r = 0; r < out.count; r++) checksum += out.vectors[r * out.dimensions]!;
      done += out.count - out.rejected.length;
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        log(`  1M run: ${done}/${n} (${(done / ((lastLog - started) / 1000)).toFixed(0)} items/s)`);
      }
    }
  };
  await Promise.all([lane(), lane()]);
  const seconds = (performance.now() - started) / 1000;
  const stats = pool.stats().models[0]!;
  await pool.close();
  if (done !== n) throw new Error(`embedded ${done} of ${n}`);
  log(
    `1M run: ${n} items in ${seconds.toFixed(1)} s = ${(n / seconds).toFixed(0)} items/s (checksum ${checksum.toFixed(3)})`,
  );
  figures.push({
    name: `small_model_${n}_items_wall`,
    value: round(seconds, 1),
    unit: 's',
    peer: null,
    ratio: null,
    goal: null,
  });
  figures.push({
    name: `small_model_${n}_items_throughput`,
    value: round(n / seconds),
    unit: 'items/s',
    peer: null,
    ratio: null,
    goal: null,
  });
  notes.push(
    `${n}-item run (dual-encoder text tower, batch 256, chunks of ${chunk} texts, 2 in flight): session.run took ` +
      `${stats.runSeconds.toFixed(1)} s of the ${seconds.toFixed(1)} s; the rest is tokenization and batching on the ` +
      'event loop',
  );
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function run(): Promise<void> {
  if (args.generate || !existsSync(path.join(models.dualText.path, 'model.onnx'))) {
    const root = path.dirname(path.dirname(models.dualText.path));
    log(`generating the models into ${root} …`);
    await generateModels(root);
  }
  const detection = await detectProviders(provider, { intraOpThreads: threads });
  log(`provider: requested ${detection.requested}, active ${detection.active} (${detection.detail})`);
  if (provider === 'cuda' && detection.active !== 'cuda')
    throw new Error(`CUDA requested but not usable: ${detection.detail}`);
  notes.push(`tokenizer threads: ${tokenizerThreads}; ONNX Runtime intra-op threads: ${threads}`);
  notes.push(`provider: requested ${detection.requested}, active ${detection.active} (${detection.detail})`);
  notes.push(
    `machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at start`,
  );

  // 0. Tokenizer alone, one thread: the hand-written WordPiece path vs @huggingface/tokenizers.
  for (const [name, ref, texts] of args['skip-tokenizer']
    ? []
    : ([
        ['small_model_catalog_texts', models.dualText, catalogTexts(quick ? 5000 : 50_000, 5)],
        ['transformer_16_48_words', models.transformer, syllableTexts(quick ? 1000 : 10_000, 16, 48, 6)],
        ['transformer_mixed_unicode', models.transformer, mixedUnicodeTexts(quick ? 1000 : 10_000, 7)],
      ] as const)) {
    const { figure, note } = await compareTokenizers(name, ref, texts, quick ? 1 : 3, log);
    figures.push(figure);
    notes.push(note);
  }

  // 1. Pool path vs bare loop: the transformer (what a backfill of a MiniLM-sized model does), and the small model.
  if (!args['tokenizer-only']) await pathsAndMillion();

  const out = path.resolve(args.out);
  mkdirSync(out, { recursive: true });
  const kind = args['tokenizer-only'] ? 'inference-tokenizer' : 'inference';
  const file = path.join(out, detection.active === 'cuda' ? `${kind}-cuda.json` : `${kind}.json`);
  writeOut(file, detection.active);
}

async function pathsAndMillion(): Promise<void> {
  const transformerTexts = syllableTexts(quick ? batch * 2 : batch * 4, 16, 48, 1);
  if (wanted('transformer'))
    await compareWithBareLoop('transformer', models.transformer, transformerTexts, reps ?? (quick ? 1 : 2));
  if (wanted('small_model'))
    await compareWithBareLoop(
      'small_model',
      models.dualText,
      catalogTexts(quick ? 4096 : 32768, 2),
      reps ?? (quick ? 1 : 3),
    );

  // 2. Batch-size sweep.
  if (!args['skip-sweep']) {
    if (wanted('transformer'))
      await sweep('transformer', models.transformer, syllableTexts(512, 16, 48, 3), (s) =>
        Math.max(2 * s, quick ? 8 : 32),
      );
    if (wanted('small_model'))
      await sweep('small_model', models.dualText, catalogTexts(65536, 4), (s) => Math.max(64 * s, quick ? 1024 : 8192));
  }

  // 4. The 1M-item run with the small model.
  if (!args['skip-million']) await million(models.dualText, quick ? Math.min(millionItems, 50_000) : millionItems);
}

function writeOut(file: string, active: string): void {
  const command = `npm run bench:inference -- ${process.argv.slice(2).join(' ')}`.trim();
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        benchmark: 'inference',
        date: new Date().toISOString(),
        command,
        machine: {
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model ?? 'unknown',
          memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          node: process.version,
          platform: `${os.type()} ${os.release()}`,
          provider: active,
        },
        figures,
        notes,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${file}`);
}

if (isMainThread) {
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
