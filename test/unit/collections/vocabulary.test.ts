import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExtractionRecord, Vocabulary } from '../../../lib/collections/types.js';
import { collectionId } from '../../../lib/collections/types.js';
import {
  applyReview,
  proposeVocabulary,
  summariseVocabulary,
  type ProposeVocabularyOptions,
} from '../../../lib/collections/vocabulary.js';
import { poolEmbedder } from '../../../lib/embedding/pool-embedder.js';
import { InferencePool, type BundledModels } from '../../../lib/inference/index.js';
import { generateDualModels } from '../inference/generated-models.js';

let models: BundledModels;
let cleanup: () => void;
let pool: InferencePool;
let embedTexts: ProposeVocabularyOptions['embedTexts'];

beforeAll(async () => {
  ({ models, cleanup } = await generateDualModels());
  pool = new InferencePool({ provider: 'cpu', maxBatch: 64 });
  const embedder = poolEmbedder(pool);
  embedTexts = async (texts) =>
    (await embedder.embedTexts(models.dualText, texts)).map((o) => {
      if (!(o instanceof Float32Array)) throw new Error(`embedding failed: ${o.error.message}`);
      return o;
    });
}, 120_000);
afterAll(async () => {
  await pool?.close();
  cleanup?.();
});

/** Wrong colour answers on 10% of the 200 items: ten phrases, two items each (below the 2% share = 4 items). */
const WRONG = ['teal', 'maroon', 'ochre', 'beige', 'purple', 'yellow', 'mauve', 'taupe', 'cyan', 'khaki'];
/** The synonyms the hand-made extractions use, and the canonical value the text tower should merge them into. */
const CANONICAL: Record<string, string> = {
  crimson: 'red',
  scarlet: 'red',
  navy: 'blue',
  dark: 'black',
  round: 'circle',
};

/** 200 items: colours red (incl. crimson, scarlet), blue (incl. navy), green, black (incl. dark), 10% wrong. */
function extractions(): ExtractionRecord[] {
  const records: ExtractionRecord[] = [];
  for (let i = 0; i < 200; i++) {
    const color =
      i < 45 ? 'red' : i < 55 ? 'Crimson' : i < 60 ? 'scarlet' : i < 100 ? 'blue' : i < 110 ? 'navy ' : i < 150
        ? 'green' : i < 175 ? 'black' : i < 180 ? 'dark' : WRONG[(i - 180) % 10]!; // prettier-ignore
    const shape = ['circle', 'square', 'triangle'][i % 3]!;
    const attributes: Record<string, string> = {
      color,
      shape: shape === 'circle' && i % 7 === 0 ? 'round' : shape,
      material: 'paper', // not a configured key: ignored
    };
    if (i % 5 === 0) attributes.pattern = 'striped';
    records.push({
      itemId: `item-${i}`,
      contentHash: `h${i}`,
      promptVersion: '1',
      model: 'stand-in',
      attributes,
      promptTokens: 10,
      completionTokens: 5,
      costUsd: 0,
      extractedAt: '2026-11-26T00:00:00.000Z',
    });
  }
  return records;
}

const base = (over: Partial<ProposeVocabularyOptions> = {}): ProposeVocabularyOptions => ({
  extractions: extractions(),
  keys: ['color', 'shape', 'pattern'],
  embedTexts,
  minValueShare: 0.02,
  minSupport: 3,
  maxAttributes: 2,
  mergeCosine: 0.9,
  maxCollections: 500,
  ...over,
});

/** Support of every 1- and 2-value combination, computed directly from the hand-made data. */
function expectedSupport(): Map<string, number> {
  const support = new Map<string, number>();
  for (const r of extractions()) {
    const pairs: [string, string][] = [];
    for (const key of ['color', 'shape', 'pattern']) {
      const raw = r.attributes[key]?.trim().toLowerCase();
      if (raw === undefined || WRONG.includes(raw)) continue;
      pairs.push([key, CANONICAL[raw] ?? raw]);
    }
    for (let i = 0; i < pairs.length; i++) {
      const one = collectionId(Object.fromEntries([pairs[i]!]));
      support.set(one, (support.get(one) ?? 0) + 1);
      for (let j = i + 1; j < pairs.length; j++) {
        const two = collectionId(Object.fromEntries([pairs[i]!, pairs[j]!]));
        support.set(two, (support.get(two) ?? 0) + 1);
      }
    }
  }
  return support;
}

describe('proposeVocabulary (generated dual encoder text tower)', { timeout: 30_000 }, () => {
  let vocab: Vocabulary;
  beforeAll(async () => {
    vocab = await proposeVocabulary(base());
  });

  it('merges synonyms by text-tower cosine into the most frequent phrase', () => {
    expect(vocab.values.color).toEqual({ red: 60, blue: 50, green: 40, black: 30 });
    expect(vocab.values.shape).toEqual({ circle: 67, square: 67, triangle: 66 });
    expect(vocab.merges).toEqual(
      expect.arrayContaining([
        { key: 'color', canonical: 'red', merged: ['crimson', 'scarlet'] },
        { key: 'color', canonical: 'blue', merged: ['navy'] },
        { key: 'color', canonical: 'black', merged: ['dark'] },
        { key: 'shape', canonical: 'circle', merged: ['round'] },
      ]),
    );
    expect(vocab.merges).toHaveLength(4);
    expect(vocab.values.material).toBeUndefined();
  });

  it('drops the 10% wrong answers as rare, without merging unknown words into each other', () => {
    const rare = vocab.dropped.filter((d) => d.reason === 'rare').map((d) => d.name);
    expect(rare.sort()).toEqual(WRONG.map((w) => `color=${w}`).sort());
    expect(Object.keys(vocab.values.color!)).not.toContain('teal');
  });

  it('proposes exactly the 1- and 2-value combinations with support ≥ minSupport', () => {
    const want = [...expectedSupport().entries()].filter(([, n]) => n >= 3);
    expect(new Map(vocab.collections.map((c) => [c.id, c.support]))).toEqual(new Map(want));
    const low = [...expectedSupport().entries()].filter(([, n]) => n < 3);
    expect(vocab.dropped.filter((d) => d.reason === 'low-support')).toHaveLength(low.length);
    const redCircle = vocab.collections.find((c) => c.id === 'color=red+shape=circle')!;
    expect(redCircle.name).toBe('red circle');
    expect(redCircle.mergedFrom?.sort()).toEqual(['crimson', 'round', 'scarlet']);
    expect(vocab.collections.find((c) => c.id === 'pattern=striped+shape=square')?.name).toBe('square striped');
    // Without demand: support order.
    const supports = vocab.collections.map((c) => c.support);
    expect([...supports].sort((a, b) => b - a)).toEqual(supports);
  });

  it('ranks collections matching demand queries first (synonyms mapped, fillers ignored)', async () => {
    const v = await proposeVocabulary(
      base({
        demand: [
          { query: 'crimson round sticker', count: 100 }, // red circle
          { query: 'Navy', count: 50 }, // blue
          { query: 'red circle', count: 5 }, // red circle
          { query: 'teal', count: 1000 }, // a dropped value: matches nothing
          { query: 'teal circle', count: 1000 }, // names a dropped value: matches nothing
          { query: 'red blue', count: 700 }, // two colours: matches nothing
          { query: 'dark striped triangle', count: 20 }, // three values: no such collection (maxAttributes 2)
          { query: 'green stripes', count: 30 }, // green striped
        ],
      }),
    );
    expect(v.collections.slice(0, 3).map((c) => [c.name, c.demand])).toEqual([
      ['red circle', 105],
      ['blue', 50],
      ['green striped', 30],
    ]);
    expect(v.collections.slice(3).every((c) => c.demand === 0)).toBe(true);
  });

  it('cuts to maxCollections, recording the rest as over-limit', async () => {
    const v = await proposeVocabulary(base({ maxCollections: 5 }));
    expect(v.collections.map((c) => c.id)).toEqual(vocab.collections.slice(0, 5).map((c) => c.id));
    expect(v.dropped.filter((d) => d.reason === 'over-limit')).toHaveLength(vocab.collections.length - 5);
  });

  it('maxAttributes 1 proposes single values only', async () => {
    const v = await proposeVocabulary(base({ maxAttributes: 1 }));
    expect(v.collections.map((c) => c.name).sort()).toEqual(
      ['red', 'blue', 'green', 'black', 'circle', 'square', 'triangle', 'striped'].sort(),
    );
  });

  it('drops what the judge rejects, with its reason', async () => {
    let judged = 0;
    const v = await proposeVocabulary(
      base({
        judge: async (cols) => {
          judged = cols.length;
          return new Map([
            ['color=blue', { keep: false, reason: 'too broad' }],
            ['shape=square', { keep: false }],
            ['color=red', { keep: true }],
          ]);
        },
      }),
    );
    expect(judged).toBe(vocab.collections.length);
    expect(v.collections.map((c) => c.id)).not.toContain('color=blue');
    expect(v.collections).toHaveLength(vocab.collections.length - 2);
    expect(v.dropped).toEqual(
      expect.arrayContaining([
        { name: 'blue', reason: 'judge-rejected: too broad' },
        { name: 'square', reason: 'judge-rejected' },
      ]),
    );
  });

  it('rejects bad options', async () => {
    await expect(proposeVocabulary(base({ minSupport: 0 }))).rejects.toMatchObject({ kind: 'invalid-option' });
    await expect(proposeVocabulary(base({ keys: [] }))).rejects.toMatchObject({ kind: 'invalid-option' });
  });

  it('applyReview: approve keeps it, edit removes and adds, reject throws vocabulary-rejected', () => {
    expect(applyReview(vocab, { action: 'approve', by: 'ops' })).toBe(vocab);
    const edited = applyReview(vocab, {
      action: 'edit',
      by: 'ops',
      remove: ['color=blue', 'color=red+shape=circle'],
      add: [
        { attributes: { Color: 'Green', pattern: 'striped', shape: 'circle' } },
        { attributes: { color: 'black' }, name: 'noir' },
      ],
    });
    const ids = edited.collections.map((c) => c.id);
    expect(ids).not.toContain('color=blue');
    expect(ids).not.toContain('color=red+shape=circle');
    const added = edited.collections.find((c) => c.id === 'color=green+pattern=striped+shape=circle')!;
    expect(added).toMatchObject({ name: 'green circle striped', support: 0, demand: 0 });
    expect(edited.collections.find((c) => c.id === 'color=black')).toMatchObject({ name: 'noir', support: 30 });
    expect(edited.collections).toHaveLength(vocab.collections.length - 1);
    expect(edited.dropped).toEqual(expect.arrayContaining([{ name: 'blue', reason: 'operator-removed' }]));
    expect(() => applyReview(vocab, { action: 'reject', by: 'ops', comment: 'too noisy' })).toThrow(
      expect.objectContaining({ kind: 'vocabulary-rejected', message: expect.stringContaining('too noisy') }),
    );
    expect(() => applyReview(vocab, { action: 'edit', by: 'ops', remove: ['color=mauve'], add: [] })).toThrow(
      expect.objectContaining({ kind: 'invalid-option' }),
    );
  });

  it('summariseVocabulary caps every list and keeps exact totals', () => {
    const big: Vocabulary = {
      ...vocab,
      collections: Array.from({ length: 100_000 }, (_, i) => ({
        id: `color=c${i}`,
        name: `c${i}`,
        attributes: { color: `c${i}` },
        support: 100_000 - i,
        demand: 0,
      })),
      dropped: Array.from({ length: 50_000 }, (_, i) => ({
        name: `x${i}`,
        reason: i % 2 ? 'rare' : 'judge-rejected: no',
      })),
    };
    const s = summariseVocabulary(big);
    expect(s.collectionCount).toBe(100_000);
    expect(s.topCollections).toHaveLength(20);
    expect(s.topCollections[0]).toEqual({ id: 'color=c0', name: 'c0', support: 100_000, demand: 0 });
    expect(s.droppedCount).toBe(50_000);
    expect(s.droppedByReason).toEqual({ rare: 25_000, 'judge-rejected': 25_000 });
    expect(s.dropped).toHaveLength(20);
    expect(s.valueCounts).toEqual({ color: 4, shape: 3, pattern: 1 });
    expect(s.mergeCount).toBe(4);
    expect(JSON.stringify(s).length).toBeLessThan(10_000);
  });
});
