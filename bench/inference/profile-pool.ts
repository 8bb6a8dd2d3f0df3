/**
 * Runs only the pool's embed path, for a CPU profile of where its time goes:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/inference/profile-pool.ts \
 *        [--model small_model|transformer] [--api settled|batch] [--items N] [--chunk N] [--batch N] [--threads N]
 *
 * `settled` is `embedTextsSettled` (per-item outcomes), `batch` is `embedTextBatch` (one Float32Array per call).
 * Prints items/s; the profile then holds little but the embed path (plus start-up).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { bundledModels, InferencePool } from '../../lib/inference/index.js';
import { catalogTexts, syllableTexts } from './texts.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'small_model' },
    api: { type: 'string', default: 'batch' },
    items: { type: 'string' },
    chunk: { type: 'string', default: '1024' },
    batch: { type: 'string', default: '64' },
    threads: { type: 'string' },
    'tokenizer-threads': { type: 'string', default: '0' },
  },
});

const models = bundledModels();
const small = args.model === 'small_model';
const ref = small ? models.dualText : models.transformer;
const n = Number(args.items ?? (small ? 500_000 : 512));
const chunk = Number(args.chunk);
const texts = small ? catalogTexts(n, 2) : syllableTexts(n, 16, 48, 1);
const pool = new InferencePool({
  provider: 'cpu',
  intraOpThreads: args.threads ? Number(args.threads) : os.cpus().length,
  interOpThreads: 1,
  maxBatch: Number(args.batch),
  maxWaitMs: 2,
  tokenizerThreads: Number(args['tokenizer-threads']),
});
await pool.warmUp([ref]);
const started = performance.now();
let checksum = 0;
for (let i = 0; i < texts.length; i += chunk) {
  const part = texts.slice(i, i + chunk);
  if (args.api === 'settled') {
    for (const o of await pool.embedTextsSettled(ref, part)) if (o.ok) checksum += o.vector[0]!;
  } else {
    const out = await pool.embedTextBatch(ref, part);
    for (let r = 0; r < out.count; r++) checksum += out.vectors[r * out.dimensions]!;
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `${args.model} ${args.api}: ${n} items in ${seconds.toFixed(2)} s = ${(n / seconds).toFixed(0)} items/s ` +
    `(checksum ${checksum.toFixed(3)})`,
);
await pool.close();
