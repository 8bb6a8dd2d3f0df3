import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceItemError, readManifest, type BundledModels } from '../../../lib/inference/index.js';
import { ImagePreprocessor } from '../../../lib/inference/image-preprocess.js';
import { TextPreprocessor } from '../../../lib/inference/text-preprocess.js';
import { generateDualModels } from './generated-models.js';

let models: BundledModels;
let cleanup: () => void;
beforeAll(async () => {
  ({ models, cleanup } = await generateDualModels());
}, 120_000);
afterAll(() => cleanup?.());

async function textPre(overLength?: 'error' | 'truncate', maxTokens?: number): Promise<TextPreprocessor> {
  const manifest = await readManifest(models.dualText.path);
  return TextPreprocessor.load(models.dualText.path, {
    ...manifest,
    text: { ...manifest.text!, ...(overLength ? { overLength } : {}), ...(maxTokens ? { maxTokens } : {}) },
  });
}

describe('text preprocessing (tokenizer.json through @huggingface/tokenizers)', () => {
  it('tokenizes with the generated WordPiece vocabulary: [CLS] words [SEP], lower-cased, unknown words in pieces', async () => {
    const pre = await textPre();
    const { ids } = pre.encode('Red CIRCLE', 0);
    expect(ids.length).toBe(4);
    expect(ids[0]).toBe(2); // [CLS]
    expect(ids[3]).toBe(3); // [SEP]
    // "zyx" is not a word of the vocabulary: it becomes z ##y ##x rather than [UNK].
    expect(pre.encode('zyx', 0).ids.length).toBe(5);
  });

  it('rejects an over-long text as a per-item error naming the item, the count and the limit', async () => {
    const pre = await textPre('error', 8);
    const long = 'red blue green yellow pink black purple orange circle';
    expect(() => pre.encode(long, 7)).toThrow(InferenceItemError);
    try {
      pre.encode(long, 7);
    } catch (err) {
      const e = err as InferenceItemError;
      expect(e.kind).toBe('text-too-long');
      expect(e.index).toBe(7);
      expect(e.failureType).toBe('ItemRejected');
      expect(e.message).toContain('11 tokens');
      expect(e.message).toContain('limit of 8');
    }
  });

  it('truncates to maxTokens and keeps [SEP] last when the manifest says overLength "truncate"', async () => {
    const pre = await textPre('truncate', 5);
    const { ids } = pre.encode('red blue green yellow pink black', 0);
    expect(ids.length).toBe(5);
    expect(ids[0]).toBe(2);
    expect(ids[4]).toBe(3);
  });

  it('rejects an empty text as a per-item error', async () => {
    const pre = await textPre();
    expect(() => pre.encode('   ', 3)).toThrow(expect.objectContaining({ kind: 'empty-text', index: 3 }));
  });
});

describe('image preprocessing (sharp)', () => {
  const spec = {
    width: 4,
    height: 2,
    mean: [0.5, 0.25, 0] as [number, number, number],
    std: [0.5, 0.5, 1] as [number, number, number],
    fit: 'fill' as const,
    kernel: 'nearest' as const,
  };

  it('normalises interleaved RGB into CHW floats: (x/255 − mean) / std', () => {
    const pre = new ImagePreprocessor(spec);
    const px = new Uint8Array(4 * 2 * 3);
    px.set([255, 0, 51], 0); // pixel (0,0)
    px.set([0, 255, 255], 3 * 5); // pixel (1,1)
    const out = new Float32Array(pre.size + 1);
    pre.normalizeInto(px, 3, out, 1);
    expect(out[0]).toBe(0); // offset respected
    expect(out[1]).toBeCloseTo(1); // R plane, (1 − 0.5)/0.5
    expect(out[1 + 8]).toBeCloseTo(-0.5); // G plane, (0 − 0.25)/0.5
    expect(out[1 + 16]).toBeCloseTo(0.2); // B plane, 51/255
    expect(out[1 + 5]).toBeCloseTo(-1); // R of pixel (1,1)
    expect(out[1 + 8 + 5]).toBeCloseTo(1.5); // G of pixel (1,1)
  });

  it('decodes a PNG and resizes it to the model size', async () => {
    const pre = new ImagePreprocessor(spec);
    // 8×4 solid colour (R=255, G=0, B=0) with alpha: resize to 4×2 and drop alpha.
    const png = await sharp({
      create: { width: 8, height: 4, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 1 } },
    })
      .png()
      .toBuffer();
    const out = new Float32Array(pre.size);
    await pre.decodeInto(png, 0, out, 0);
    expect(Array.from(out.subarray(0, 8)).every((v) => Math.abs(v - 1) < 1e-6)).toBe(true);
    expect(Array.from(out.subarray(8, 16)).every((v) => Math.abs(v + 0.5) < 1e-6)).toBe(true);
  });

  it('turns undecodable bytes into a per-item error', async () => {
    const pre = new ImagePreprocessor(spec);
    const junk = new TextEncoder().encode('this is not an image');
    await expect(pre.decodeInto(junk, 4, new Float32Array(pre.size), 0)).rejects.toMatchObject({
      kind: 'undecodable-image',
      index: 4,
      failureType: 'ItemRejected',
    });
  });
});
