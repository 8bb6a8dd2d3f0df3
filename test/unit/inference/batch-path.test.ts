import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../../lib/inference/batcher.js';
import {
  InferencePool,
  MANIFEST_FILE,
  outcomesOf,
  readManifest,
  type BundledModels,
  type ModelRef,
} from '../../../lib/inference/index.js';
import { GraphBuilder } from '../../../lib/inference/onnx-graph.js';
import { TextPreprocessor } from '../../../lib/inference/text-preprocess.js';
import { generateDualModels } from './generated-models.js';

let models: BundledModels;
let root: string;
let cleanup: () => void;
beforeAll(async () => {
  ({ models, root, cleanup } = await generateDualModels());
}, 120_000);
afterAll(() => cleanup?.());

/** Catalog-like texts of varied length, so that batches pad differently. */
function texts(n: number): string[] {
  const words = ['red', 'blue', 'green', 'striped', 'dotted', 'circle', 'square', 'large', 'tiny', 'a', 'with'];
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: 1 + ((i * 7) % 9) }, (_, k) => words[(i * 3 + k * 5) % words.length]).join(' '),
  );
}

/** The reference: per-item tokenization (`encode`), per-item int64 tensors with BigInts, a bare session, L2. */
async function referenceVectors(ref: ModelRef, input: readonly string[], batch: number): Promise<Float32Array[]> {
  const manifest = await readManifest(ref.path);
  const pre = await TextPreprocessor.load(ref.path, manifest);
  const session = await ort.InferenceSession.create(path.join(ref.path, manifest.file), {
    executionProviders: ['cpu'],
  });
  const out: Float32Array[] = [];
  try {
    for (let i = 0; i < input.length; i += batch) {
      const items = input.slice(i, i + batch).map((t, k) => pre.encode(t, i + k));
      const seq = Math.max(...items.map((t) => t.ids.length));
      const ids = new BigInt64Array(items.length * seq);
      const mask = new BigInt64Array(items.length * seq);
      items.forEach((t, r) =>
        t.ids.forEach((id, j) => {
          ids[r * seq + j] = BigInt(id);
          mask[r * seq + j] = 1n;
        }),
      );
      const result = await session.run({
        input_ids: new ort.Tensor('int64', ids, [items.length, seq]),
        attention_mask: new ort.Tensor('int64', mask, [items.length, seq]),
      });
      const data = result[manifest.output.name]!.data as Float32Array;
      const d = manifest.dimensions;
      for (let r = 0; r < items.length; r++) out.push(data.slice(r * d, (r + 1) * d));
    }
  } finally {
    await session.release();
  }
  return out;
}

/**
 * A copy of the dual text model whose graph outputs token states `[batch, sequence, D]` (a Gather of a known
 * table), with `pooling` and `normalize` in the manifest, and input dtype `dtype`: the pool must pool over exactly
 * the text's own tokens.
 */
function tokenStateModel(name: string, pooling: 'mean' | 'cls', dtype: 'int64' | 'int32', padding: 'longest' | 'max') {
  const dir = path.join(root, 'token-state', name);
  cpSync(models.dualText.path, dir, { recursive: true });
  const vocab = (JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: object } })
    .model.vocab;
  const v = Math.max(...Object.values(vocab).map(Number)) + 1;
  const d = 6;
  const table = new Float32Array(v * d).map((_, i) => Math.sin(i * 0.37) + (i % 5) * 0.1);
  const g = new GraphBuilder(`token-state-${name}`);
  const ids = g.input('input_ids', dtype, ['batch', 'sequence']);
  g.input('attention_mask', dtype, ['batch', 'sequence']);
  g.output(g.op('Gather', [g.floats(table, [v, d]), ids], { axis: 0 }), 'hidden', 'float', ['batch', 'sequence', d]);
  writeFileSync(path.join(dir, 'model.onnx'), g.toBytes('test'));
  const manifest = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
  manifest.dimensions = d;
  manifest.inputs = ['input_ids', 'attention_mask'].map((n) => ({
    name: n,
    role: n,
    dtype,
    shape: ['batch', 'sequence'],
  }));
  manifest.output = { name: 'hidden', shape: ['batch', 'sequence', d] };
  manifest.pooling = pooling;
  manifest.normalize = true;
  (manifest.text as Record<string, unknown>).padding = padding;
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  return { ref: { path: dir, version: String(manifest.version) }, table, d };
}

describe('the batch path (embedTextBatch)', { timeout: 60_000 }, () => {
  it('gives exactly the vectors of per-item tokenization and a bare session on the same batches', async () => {
    const input = texts(150);
    const pool = new InferencePool({ provider: 'cpu', maxBatch: 16, maxWaitMs: 1 });
    try {
      const out = await pool.embedTextBatch(models.dualText, input);
      expect(out).toMatchObject({ count: 150, dimensions: 64, rejected: [] });
      expect(out.vectors).toHaveLength(150 * 64);
      const reference = await referenceVectors(models.dualText, input, 16);
      for (let i = 0; i < input.length; i++)
        expect(Array.from(out.vectors.subarray(i * 64, (i + 1) * 64))).toEqual(Array.from(reference[i]!));
      // The per-item API returns the same rows, as views of one buffer.
      const settled = await pool.embedTextsSettled(models.dualText, input);
      settled.forEach((o, i) => {
        expect(o.ok).toBe(true);
        if (o.ok) expect(Array.from(o.vector)).toEqual(Array.from(reference[i]!));
      });
      const s = pool.stats().models[0]!;
      // 150 = 9 full batches of 16 + 6 through the batcher, twice.
      expect(s).toMatchObject({ items: 300, batches: 20, maxBatchSize: 16 });
    } finally {
      await pool.close();
    }
  });

  it('leaves rejected texts out of every batch: zero rows, typed errors by index, the others unchanged', async () => {
    const input = texts(40);
    input[3] = '';
    input[20] = Array.from({ length: 40 }, () => 'blue').join(' ');
    input[39] = '   ';
    const pool = new InferencePool({ provider: 'cpu', maxBatch: 8, maxWaitMs: 1 });
    try {
      const out = await pool.embedTextBatch(models.dualText, input);
      expect(out.rejected.map((e) => [e.index, e.kind])).toEqual([
        [3, 'empty-text'],
        [20, 'text-too-long'],
        [39, 'empty-text'],
      ]);
      for (const i of [3, 20, 39]) expect(out.vectors.subarray(i * 64, (i + 1) * 64).every((x) => x === 0)).toBe(true);
      const good = input.filter((_, i) => ![3, 20, 39].includes(i));
      const alone = await pool.embedTextBatch(models.dualText, good);
      let k = 0;
      for (let i = 0; i < input.length; i++) {
        if ([3, 20, 39].includes(i)) continue;
        const a = out.vectors.subarray(i * 64, (i + 1) * 64);
        const b = alone.vectors.subarray(k * 64, (k + 1) * 64);
        k++;
        for (let j = 0; j < 64; j++) expect(a[j]).toBeCloseTo(b[j]!, 6);
      }
      const outcomes = outcomesOf(out);
      expect(outcomes[20]).toMatchObject({ ok: false, error: { kind: 'text-too-long', index: 20 } });
      expect(outcomes[4]!.ok).toBe(true);
      expect(pool.stats().models[0]!.rejectedItems).toBe(3);
    } finally {
      await pool.close();
    }
  });

  it('pools token states over each text own tokens (mean and cls, int64 and int32, padding longest and max)', async () => {
    const pre = await TextPreprocessor.load(models.dualText.path, await readManifest(models.dualText.path));
    const input = texts(37);
    for (const [name, pooling, dtype, padding] of [
      ['mean-int64', 'mean', 'int64', 'longest'],
      ['mean-int32-max', 'mean', 'int32', 'max'],
      ['cls-int64', 'cls', 'int64', 'longest'],
    ] as const) {
      const { ref, table, d } = tokenStateModel(name, pooling, dtype, padding);
      const pool = new InferencePool({ provider: 'cpu', maxBatch: 8, maxWaitMs: 1 });
      try {
        const out = await pool.embedTextBatch(ref, input);
        input.forEach((text, i) => {
          const ids = pre.encode(text, i).ids;
          const expected = new Float64Array(d);
          const used = pooling === 'cls' ? ids.subarray(0, 1) : ids;
          for (const id of used) for (let k = 0; k < d; k++) expected[k]! += table[id * d + k]! / used.length;
          const norm = Math.hypot(...expected);
          for (let k = 0; k < d; k++) expect(out.vectors[i * d + k]).toBeCloseTo(expected[k]! / norm, 5);
        });
      } finally {
        await pool.close();
      }
    }
  });

  it('gives the same rows and errors with tokenizer threads (pieces of a few batches, partial batches between)', async () => {
    const input = texts(700);
    input[5] = '';
    input[333] = Array.from({ length: 40 }, () => 'red').join(' ');
    const inline = new InferencePool({ provider: 'cpu', maxBatch: 24, maxWaitMs: 1 });
    const threaded = new InferencePool({ provider: 'cpu', maxBatch: 24, maxWaitMs: 1, tokenizerThreads: 2 });
    try {
      const a = await inline.embedTextBatch(models.dualText, input);
      const b = await threaded.embedTextBatch(models.dualText, input);
      expect(b.rejected.map((e) => [e.index, e.kind, e.message])).toEqual(
        a.rejected.map((e) => [e.index, e.kind, e.message]),
      );
      expect(b.rejected.map((e) => e.index)).toEqual([5, 333]);
      for (let i = 0; i < a.vectors.length; i++) expect(b.vectors[i]).toBeCloseTo(a.vectors[i]!, 6);
    } finally {
      await inline.close();
      await threaded.close();
    }
  });

  it('embeds pre-tokenized texts (embedTokens) into the rows their index names, as embedTextBatch does', async () => {
    const input = texts(90);
    input[11] = '';
    const pre = await TextPreprocessor.load(models.dualText.path, await readManifest(models.dualText.path));
    const pool = new InferencePool({ provider: 'cpu', maxBatch: 16, maxWaitMs: 1 });
    try {
      const fromTexts = await pool.embedTextBatch(models.dualText, input);
      const fromTokens = await pool.embedTokens(models.dualText, pre.encodeMany(input), input.length);
      expect(fromTokens.rejected.map((e) => e.index)).toEqual([11]);
      expect(Array.from(fromTokens.vectors)).toEqual(Array.from(fromTexts.vectors));
      const tooLong = pre.encodeMany(['red']);
      tooLong.starts[1] = 40;
      tooLong.ids = new Int32Array(40).fill(tooLong.ids[0]!);
      await expect(pool.embedTokens(models.dualText, tooLong)).rejects.toMatchObject({
        kind: 'model-input-mismatch',
        message: expect.stringContaining('input_ids') as unknown,
      });
    } finally {
      await pool.close();
    }
  });

  it('fails a bulk request with pool-closed when the pool closes under it', async () => {
    const pool = new InferencePool({ provider: 'cpu', maxBatch: 4, maxWaitMs: 1 });
    await pool.load(models.dualText);
    const running = pool.embedTextBatch(models.dualText, texts(4000));
    const failed = running.then(
      () => undefined,
      (e: unknown) => e,
    );
    await pool.close();
    expect(await failed).toMatchObject({ kind: 'pool-closed' });
  });

  it('packs texts like encode does: same ids, truncation and errors', async () => {
    const manifest = await readManifest(models.dualText.path);
    for (const overLength of ['error', 'truncate'] as const) {
      const pre = await TextPreprocessor.load(models.dualText.path, {
        ...manifest,
        text: { ...manifest.text!, overLength },
      });
      const input = [...texts(30), '', Array.from({ length: 50 }, () => 'green').join(' '), 'red [SEP] blue'];
      const packed = pre.encodeMany(input, 100);
      const errors = new Map(packed.errors.map((e) => [e.index, e]));
      let k = 0;
      input.forEach((text, i) => {
        let expected;
        try {
          expected = pre.encode(text, 100 + i);
        } catch (err) {
          expect(errors.get(100 + i)?.message).toBe((err as Error).message);
          return;
        }
        expect(packed.index[k]).toBe(100 + i);
        expect(Array.from(packed.ids.subarray(packed.starts[k], packed.starts[k + 1]))).toEqual(
          Array.from(expected.ids),
        );
        k++;
      });
      expect(packed.count).toBe(k);
      expect(packed.errors.length + packed.count).toBe(input.length);
    }
  });
});

describe('DynamicBatcher noWait', () => {
  it('runs a bulk caller’s partial batch at once, with what else is queued, instead of waiting maxWaitMs', async () => {
    const batches: number[][] = [];
    const batcher = new DynamicBatcher<number, number>({
      maxBatch: 8,
      maxWaitMs: 600_000,
      run: async (items) => {
        batches.push([...items]);
        return items.map((x) => -x);
      },
    });
    const waiting = batcher.submit([1, 2]);
    // Would wait ten minutes (past the test timeout) without noWait; it also takes the queued items along.
    expect(await batcher.submit([3, 4, 5], { noWait: true })).toEqual([-3, -4, -5]);
    expect(await waiting).toEqual([-1, -2]);
    expect(batches).toEqual([[1, 2, 3, 4, 5]]);
  });
});
