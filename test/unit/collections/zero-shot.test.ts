import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNTHETIC_ATTRIBUTE_KEYS, syntheticAttributeOptions } from '../../../lib/collections/synthetic.js';
import { zeroShotExtract } from '../../../lib/collections/zero-shot.js';
import { InferencePool, type BundledModels } from '../../../lib/inference/index.js';
import {
  catalogGrid,
  catalogItemId,
  renderItemPng,
  type CatalogItem,
} from '../../../lib/inference/synthetic-catalog.js';
import { generateDualModels } from '../inference/generated-models.js';

let models: BundledModels;
let cleanup: () => void;
let pool: InferencePool;
const grid = catalogGrid();

beforeAll(async () => {
  ({ models, cleanup } = await generateDualModels());
  pool = new InferencePool({ provider: 'cpu', maxBatch: 128 });
}, 120_000);
afterAll(async () => {
  await pool?.close();
  cleanup?.();
});

async function extract(items: CatalogItem[], noise: number, seed: number, minMargin?: number) {
  const rendered = await Promise.all(
    items.map(async (item, i) => ({
      itemId: `${catalogItemId(item)}#${i}`,
      contentHash: `h${i}`,
      imageBytes: await renderItemPng(item, { noise, seed: seed + i }),
    })),
  );
  return zeroShotExtract({
    embedImages: (bytes) => pool.embedImages(models.dualImage, bytes),
    embedTexts: (texts) => pool.embedTexts(models.dualText, texts),
    keys: syntheticAttributeOptions(),
    items: rendered,
    modelLabel: 'dual-v1',
    promptVersion: '1',
    ...(minMargin === undefined ? {} : { minMargin }),
    now: () => new Date('2026-11-26T00:00:00Z'),
  });
}

/** Share of items whose extracted value of `key` is the true one (a skipped key counts as wrong). */
function accuracy(items: CatalogItem[], records: { attributes: Record<string, string> }[], key: string): number {
  const right = items.filter(
    (item, i) => records[i]!.attributes[key] === (item as unknown as Record<string, string>)[key],
  );
  return right.length / items.length;
}

describe('zero-shot extraction with the generated dual encoder', { timeout: 60_000 }, () => {
  it.each([
    ['clean', 0],
    ['noisy (±24 per channel)', 24],
  ])('recovers every key of the %s grid renderings (≥ 95% per key)', async (_label, noise) => {
    const records = await extract(grid, noise, 5000);
    for (const key of SYNTHETIC_ATTRIBUTE_KEYS) expect(accuracy(grid, records, key)).toBeGreaterThanOrEqual(0.95);
    expect(records).toHaveLength(grid.length);
  });

  it('records the zero-shot model, the prompt version, the content hash and zero cost', async () => {
    const [r] = await extract(grid.slice(0, 1), 0, 1);
    expect(r).toEqual({
      itemId: `${catalogItemId(grid[0]!)}#0`,
      contentHash: 'h0',
      promptVersion: '1',
      model: 'zero-shot:dual-v1',
      attributes: { ...grid[0] },
      promptTokens: 0,
      completionTokens: 0,
      costUsd: 0,
      extractedAt: '2026-11-26T00:00:00.000Z',
    });
  });

  it('leaves a key out when the margin over the runner-up is below minMargin', async () => {
    // Cosines are at most 1, so a margin of 2 can never be met: every key is skipped.
    const records = await extract(grid.slice(0, 3), 0, 1, 2);
    expect(records.map((r) => r.attributes)).toEqual([{}, {}, {}]);
  });

  it('refuses keys without candidate values', async () => {
    await expect(
      zeroShotExtract({
        embedImages: async () => [],
        embedTexts: async () => [],
        keys: [{ key: 'color', values: [] }],
        items: [],
        modelLabel: 'x',
        promptVersion: '1',
      }),
    ).rejects.toMatchObject({ kind: 'invalid-option' });
  });
});
