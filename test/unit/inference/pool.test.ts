import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InferenceError,
  InferencePool,
  ItemsRejectedError,
  MANIFEST_FILE,
  detectProviders,
  type BatchEvent,
  type BundledModels,
  type ModelRef,
} from '../../../lib/inference/index.js';
import { GraphBuilder } from '../../../lib/inference/onnx-graph.js';
import { renderItemPng } from '../../../lib/inference/synthetic-catalog.js';
import { generateDualModels } from './generated-models.js';

let models: BundledModels;
let root: string;
let cleanup: () => void;
beforeAll(async () => {
  ({ models, root, cleanup } = await generateDualModels());
}, 120_000);
afterAll(() => cleanup?.());

/** A copy of the v1 text model whose manifest is edited by `edit`. */
function variant(name: string, edit: (manifest: Record<string, unknown>) => void, from: ModelRef = models.dualText) {
  const dir = path.join(root, 'variants', name);
  cpSync(from.path, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
  edit(manifest);
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  return { path: dir, version: String(manifest.version) };
}

async function expectInferenceError(p: Promise<unknown>, kind: string, ...fragments: string[]): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InferenceError);
  expect((err as InferenceError).kind).toBe(kind);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

describe('InferencePool', { timeout: 60_000 }, () => {
  it('loads once per (model, version, provider), runs on the CPU here, and counts batches and items', async () => {
    const events: BatchEvent[] = [];
    const pool = new InferencePool({ provider: 'cpu', maxBatch: 4, maxWaitMs: 1, onBatch: (e) => events.push(e) });
    try {
      const loaded = await pool.load(models.dualText);
      expect(loaded).toMatchObject({ provider: 'cpu', dimensions: 64 });
      expect(loaded.manifest.name).toBe('sluice-dual-text');
      expect(await pool.load(models.dualText)).toBe(loaded);
      const vectors = await pool.embedTexts(models.dualText, ['red', 'blue', 'green', 'pink', 'black', 'round']);
      expect(vectors).toHaveLength(6);
      for (const v of vectors) {
        expect(v).toHaveLength(64);
        expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      }
      const s = pool.stats().models.find((m) => m.model === 'sluice-dual-text')!;
      expect(s).toMatchObject({ provider: 'cpu', items: 6, batches: 2, maxBatchSize: 4 });
      expect(events.map((e) => e.size)).toEqual([4, 2]);
    } finally {
      await pool.close();
    }
  });

  it('coalesces concurrent callers of one model into shared batches', async () => {
    const sizes: number[] = [];
    const pool = new InferencePool({
      provider: 'cpu',
      maxBatch: 64,
      maxWaitMs: 20,
      onBatch: (e) => sizes.push(e.size),
    });
    try {
      await pool.load(models.dualText);
      const results = await Promise.all(
        ['red circle', 'blue square', 'green triangle', 'pink diamond'].map((t) =>
          pool.embedTexts(models.dualText, [t]),
        ),
      );
      expect(results.map((r) => r.length)).toEqual([1, 1, 1, 1]);
      expect(sizes).toEqual([4]);
      // The same text alone gives the same vector as inside the shared batch (padding does not leak).
      const [alone] = await pool.embedTexts(models.dualText, ['green triangle']);
      for (let i = 0; i < 64; i++) expect(alone![i]).toBeCloseTo(results[2]![0]![i]!, 5);
    } finally {
      await pool.close();
    }
  });

  it('embeds the good items of a request and returns typed per-item errors for the others', async () => {
    const pool = new InferencePool({ provider: 'cpu' });
    try {
      const long = Array.from({ length: 40 }, () => 'red').join(' ');
      const out = await pool.embedTextsSettled(models.dualText, ['red circle', long, '', 'blue square']);
      expect(out.map((o) => o.ok)).toEqual([true, false, false, true]);
      expect(out[1]).toMatchObject({ ok: false, error: { kind: 'text-too-long', index: 1 } });
      expect(out[2]).toMatchObject({ ok: false, error: { kind: 'empty-text', index: 2 } });
      await expect(pool.embedTexts(models.dualText, ['red', long])).rejects.toBeInstanceOf(ItemsRejectedError);

      const png = await renderItemPng({ color: 'red', shape: 'circle', pattern: 'solid', size: 'large' });
      const images = await pool.embedImagesSettled(models.dualImage, [png, new Uint8Array([1, 2, 3]), png]);
      expect(images.map((o) => o.ok)).toEqual([true, false, true]);
      expect(images[1]).toMatchObject({ ok: false, error: { kind: 'undecodable-image', index: 1 } });
      const stats = pool.stats().models;
      expect(stats.find((m) => m.model === 'sluice-dual-text')!.rejectedItems).toBe(3);
      expect(stats.find((m) => m.model === 'sluice-dual-image')!.rejectedItems).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('refuses a version the directory does not hold, and the wrong kind of input', async () => {
    const pool = new InferencePool({ provider: 'cpu' });
    try {
      await expectInferenceError(
        pool.load({ path: models.dualText.path, version: '7' }),
        'model-version-mismatch',
        'version 1, not the requested version 7',
      );
      await expectInferenceError(pool.embedImages(models.dualText, []), 'wrong-model-kind');
      await expectInferenceError(
        pool.load({ path: path.join(root, 'nope'), version: '1' }),
        'model-not-found',
        'npm run models',
      );
    } finally {
      await pool.close();
    }
  });

  it('names the model and the tensor when the manifest does not match the graph', async () => {
    const pool = new InferencePool({ provider: 'cpu' });
    try {
      const renamed = variant('renamed-input', (m) => {
        (m.inputs as { name: string }[])[0]!.name = 'token_ids';
      });
      await expectInferenceError(
        pool.load(renamed),
        'model-input-mismatch',
        'sluice-dual-text',
        '"token_ids"',
        'input_ids',
      );
      const wrongSize = variant(
        'wrong-size',
        (m) => {
          (m.inputs as { shape: unknown[] }[])[0]!.shape = ['batch', 3, 32, 32];
          (m.image as { width: number }).width = 32;
          (m.image as { height: number }).height = 32;
        },
        models.dualImage,
      );
      await expectInferenceError(pool.load(wrongSize), 'model-input-mismatch', '"pixel_values"', '[batch, 3, 64, 64]');
      const wrongOutput = variant('wrong-output', (m) => {
        (m.output as { name: string }).name = 'pooled';
      });
      await expectInferenceError(pool.load(wrongOutput), 'model-input-mismatch', '"pooled"', 'text_embeds');
      const wrongDims = variant('wrong-dims', (m) => {
        m.dimensions = 128;
      });
      await expectInferenceError(pool.embedTexts(wrongDims, ['red']), 'model-input-mismatch', 'expected [1, 128]');
    } finally {
      await pool.close();
    }
  });

  it('turns an input ONNX Runtime refuses at run time into a typed error naming the tensor', async () => {
    // A graph whose batch axis is fixed at 2, behind a manifest that declares it dynamic.
    const g = new GraphBuilder('fixed-batch');
    const ids = g.input('input_ids', 'int64', [2, 'sequence']);
    g.input('attention_mask', 'int64', [2, 'sequence']);
    const f = g.op('Cast', [ids], { to: 1 });
    g.output(g.op('ReduceSum', [f, g.ints([1])], { keepdims: 1 }), 'text_embeds', 'float', [2, 1]);
    const dir = variant('fixed-batch', (m) => {
      m.dimensions = 1;
      (m.output as { shape: unknown[] }).shape = ['batch', 1];
    }).path;
    writeFileSync(path.join(dir, 'model.onnx'), g.toBytes('test'));
    const pool = new InferencePool({ provider: 'cpu' });
    try {
      expect(await pool.embedTexts({ path: dir, version: '1' }, ['red', 'blue'])).toHaveLength(2);
      await expectInferenceError(
        pool.embedTexts({ path: dir, version: '1' }, ['red', 'blue', 'green']),
        'model-input-mismatch',
        'sluice-dual-text',
        'input_ids',
      );
    } finally {
      await pool.close();
    }
  });

  it('reports the provider it really gets: cpu when asked, and CUDA only when a CUDA-only session runs', async () => {
    const cpu = await detectProviders('cpu');
    expect(cpu).toMatchObject({ requested: 'cpu', active: 'cpu' });
    const auto = await detectProviders('auto');
    expect(auto.active).toBe(auto.cudaAvailable ? 'cuda' : 'cpu');
    const pool = new InferencePool({ provider: 'cuda' });
    try {
      if (auto.cudaAvailable) expect((await pool.load(models.dualText)).provider).toBe('cuda');
      else await expectInferenceError(pool.load(models.dualText), 'provider-unavailable', 'CUDA');
    } finally {
      await pool.close();
    }
  });

  it('fails queued requests when closed', async () => {
    const pool = new InferencePool({ provider: 'cpu', maxBatch: 1000, maxWaitMs: 60_000 });
    await pool.load(models.dualText);
    const waiting = pool.embedTexts(models.dualText, ['red']);
    await pool.close();
    await expectInferenceError(waiting, 'pool-closed');
    await expectInferenceError(pool.load(models.dualText), 'pool-closed');
  });
});
