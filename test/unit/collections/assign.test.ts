import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex, LoadedIndex } from '../../../lib/embedding/index-store.js';
import {
  candidateKey,
  candidatesStats,
  decideMembers,
  retrieveCandidates,
  type RetrievedCandidates,
} from '../../../lib/collections/assign.js';
import { CollectionsError } from '../../../lib/collections/errors.js';
import type { CollectionDef } from '../../../lib/collections/types.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

/** A unit vector at cosine `score` from axis `axis` (the rest of it on axis `axis + 1`). */
function at(axis: number, score: number, dims = 6): Float32Array {
  const v = new Float32Array(dims);
  v[axis] = score;
  v[axis + 1] = Math.sqrt(1 - score * score);
  return v;
}
function axis(i: number, dims = 6): Float32Array {
  const v = new Float32Array(dims);
  v[i] = 1;
  return v;
}

const retrieve = (input: Parameters<typeof retrieveCandidates>[0]) => retrieveCandidates(input).candidates;

const def = (id: string, name: string, attributes: Record<string, string>): CollectionDef => ({
  id,
  name,
  attributes,
  support: 3,
  demand: 0,
});
const red = def('color=red', 'red', { color: 'red' });
const blue = def('color=blue', 'blue', { color: 'blue' });
const none = def('color=none', 'none', { color: 'none' });

describe('retrieveCandidates on a real usearch index', () => {
  let dir: string;
  let index: LoadedIndex;
  const io = new LocalFileIO({});
  // red (axis 0): 5 clear members, 2 borderline, 1 below the band; blue (axis 2): 12 clear members; 4 unrelated.
  const redScores = { r1: 0.97, r2: 0.92, r3: 0.88, r4: 0.81, r5: 0.76, r6: 0.66, r7: 0.58, r8: 0.3 };
  const blueScores = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`b${i + 1}`, 0.99 - i * 0.01]));

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-assign-'));
    const entries = [
      ...Object.entries(redScores).map(([id, s]) => ({ id, vector: at(0, s), metadata: {} })),
      ...Object.entries(blueScores).map(([id, s]) => ({ id, vector: at(2, s), metadata: {} })),
      ...['x1', 'x2', 'x3', 'x4'].map((id) => ({ id, vector: axis(5), metadata: {} })),
    ];
    const indexDir = `file://${dir}/idx/items/versions/1/b-t`;
    await buildIndex(io, {
      dir: indexDir,
      entries,
      manifest: {
        index: 'items',
        version: '1',
        model: { path: 'm', version: '1' },
        table: 't',
        metadataColumns: [],
        versions: ['1'],
        builtAt: new Date(0).toISOString(),
      },
    });
    index = await LoadedIndex.load(io, indexDir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const phrases = new Map([
    ['color=red', axis(0)],
    ['color=blue', axis(2)],
    ['color=none', axis(4)],
  ]);
  const thresholds = { acceptScore: 0.7, borderlineScore: 0.5 };

  it('splits hits into accepted and borderline, best first, and drops the rest', () => {
    const [r] = retrieve({ index, collections: [red], phraseVectors: phrases, topK: 10, ...thresholds });
    expect(r!.accepted.map((c) => c.itemId)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    expect(r!.accepted[0]!.score).toBeCloseTo(0.97, 4);
    expect(r!.borderline.map((c) => c.itemId)).toEqual(['r6', 'r7']);
    expect(r!.borderline.map((c) => c.score)).toEqual([...r!.borderline.map((c) => c.score)].sort((a, b) => b - a));
    expect(r!.capped).toBe(false);
    expect(r!.retrieved).toBe(10);
  });

  it('relative mode scales the thresholds by the collection best hit, above the cosine floor', () => {
    // A phrase whose members reach only ~0.5 of cosine (a one-word phrase against four-attribute images): the same
    // items at half the cosine. Relative thresholds 0.85/0.6 of the best (0.485) cut at 0.412/0.291, raised to the
    // floor 0.35 for the borderline.
    const half = new Map([
      ['color=red', Float32Array.from(axis(0), (x, i) => (i === 0 ? 0.5 : i === 4 ? Math.sqrt(0.75) : x))],
    ]);
    const [r] = retrieve({
      index,
      collections: [red],
      phraseVectors: half,
      topK: 10,
      scoreMode: 'relative',
      acceptScore: 0.85,
      borderlineScore: 0.6,
      minScore: 0.35,
    });
    expect(r!.acceptScore).toBeCloseTo(0.85 * 0.485, 3);
    expect(r!.borderlineScore).toBeCloseTo(0.35, 6);
    // r1..r3 (0.485, 0.46, 0.44) accepted; r4..r6 (0.405, 0.38, 0.33) — r6 under the floor is dropped.
    expect(r!.accepted.map((c) => c.itemId)).toEqual(['r1', 'r2', 'r3']);
    expect(r!.borderline.map((c) => c.itemId)).toEqual(['r4', 'r5']);
    // Absolute mode with the same numbers accepts nothing: every cosine is under 0.85.
    const [abs] = retrieve({
      index,
      collections: [red],
      phraseVectors: half,
      topK: 10,
      acceptScore: 0.85,
      borderlineScore: 0.6,
    });
    expect(abs!.accepted).toEqual([]);
  });

  it('widens past topK when every hit is accepted, so a large collection is not cut off', () => {
    const [b] = retrieve({ index, collections: [blue], phraseVectors: phrases, topK: 3, ...thresholds });
    expect(b!.accepted.map((c) => c.itemId)).toEqual(Object.keys(blueScores));
    expect(b!.retrieved).toBeGreaterThan(12);
    expect(b!.capped).toBe(false);
  });

  it('reports the cap when the widened search stops at maxK while still accepting', () => {
    const [b] = retrieve({
      index,
      collections: [blue],
      phraseVectors: phrases,
      topK: 2,
      maxK: 8,
      ...thresholds,
    });
    expect(b!.accepted).toHaveLength(8);
    expect(b!.capped).toBe(true);
    const both = retrieveCandidates({
      index,
      collections: [red, blue],
      phraseVectors: phrases,
      topK: 2,
      maxK: 8,
      ...thresholds,
    });
    expect(both.capped).toBe(1);
  });

  it('does not widen when the first K hits are not all accepted (the borderline tail is the VLM budget)', () => {
    const [r] = retrieve({ index, collections: [red], phraseVectors: phrases, topK: 6, ...thresholds });
    expect(r!.accepted).toHaveLength(5);
    expect(r!.borderline.map((c) => c.itemId)).toEqual(['r6']);
    expect(r!.retrieved).toBe(6);
    expect(r!.capped).toBe(true);
  });

  it('returns empty candidates for a phrase nothing is near, and rejects a missing phrase vector', () => {
    const [n] = retrieve({ index, collections: [none], phraseVectors: phrases, topK: 5, ...thresholds });
    expect(n).toMatchObject({ accepted: [], borderline: [], capped: false });
    expect(() =>
      retrieveCandidates({
        index,
        collections: [def('shape=x', 'x', { shape: 'x' })],
        phraseVectors: phrases,
        topK: 5,
        ...thresholds,
      }),
    ).toThrow(CollectionsError);
    expect(() =>
      retrieveCandidates({
        index,
        collections: [red],
        phraseVectors: phrases,
        topK: 5,
        acceptScore: 0.4,
        borderlineScore: 0.5,
      }),
    ).toThrow(/must not exceed/);
  });

  it('counts candidates per collection', () => {
    const progress: number[] = [];
    const all = retrieveCandidates({
      index,
      collections: [red, blue, none],
      phraseVectors: phrases,
      topK: 10,
      ...thresholds,
      onProgress: (done, total) => progress.push(done / total),
    });
    expect(progress).toEqual([1 / 3, 2 / 3, 1]);
    expect(all.capped).toBe(0);
    const stats = candidatesStats(all.candidates);
    expect(stats).toMatchObject({
      collections: 3,
      accepted: 17,
      borderline: 2,
      capped: 0,
      empty: 1,
      minSize: 0,
      medianSize: 7,
      maxSize: 12,
    });
    expect(stats.sizes[0]).toEqual({ collectionId: 'color=red', accepted: 5, borderline: 2 });
  });
});

describe('decideMembers', () => {
  const candidates: RetrievedCandidates[] = [
    {
      collectionId: 'color=red',
      accepted: [
        { itemId: 'a', score: 0.9 },
        { itemId: 'b', score: 0.8 },
      ],
      borderline: [
        { itemId: 'c', score: 0.69 },
        { itemId: 'd', score: 0.65 },
        { itemId: 'e', score: 0.6 },
        { itemId: 'f', score: 0.55 },
      ],
      retrieved: 6,
      capped: false,
    },
    {
      collectionId: 'color=blue',
      accepted: [{ itemId: 'g', score: 0.75 }],
      borderline: [
        { itemId: 'h', score: 0.68 },
        { itemId: 'i', score: 0.52 },
      ],
      retrieved: 3,
      capped: false,
    },
  ];

  it('keeps accepted and confirmed borderline members, drops no / low confidence / quarantined', () => {
    const out = decideMembers({
      collections: [red, blue],
      candidates,
      minConfidence: 0.6,
      unasked: new Set(),
      decisions: [
        { collectionId: 'color=red', itemId: 'c', answer: 'yes', confidence: 0.9 },
        { collectionId: 'color=red', itemId: 'd', answer: 'no', confidence: 0.95 },
        { collectionId: 'color=red', itemId: 'e', answer: 'yes', confidence: 0.59 },
        // f: no answer (its verification was quarantined)
        { collectionId: 'color=blue', itemId: 'i', answer: 'yes', confidence: 0.6 },
        { collectionId: 'color=blue', itemId: 'h', answer: 'yes', confidence: 0.7 },
      ],
    });
    expect(out).toEqual([
      {
        id: 'color=red',
        name: 'red',
        attributes: { color: 'red' },
        partial: false,
        items: [
          { itemId: 'a', score: 0.9, verified: false },
          { itemId: 'b', score: 0.8, verified: false },
          { itemId: 'c', score: 0.69, verified: true },
        ],
      },
      {
        id: 'color=blue',
        name: 'blue',
        attributes: { color: 'blue' },
        partial: false,
        items: [
          { itemId: 'g', score: 0.75, verified: false },
          { itemId: 'h', score: 0.68, verified: true },
          { itemId: 'i', score: 0.52, verified: true },
        ],
      },
    ]);
  });

  it('marks a collection partial when the budget left borderline candidates unasked', () => {
    const out = decideMembers({
      collections: [red, blue],
      candidates,
      minConfidence: 0.5,
      unasked: new Set([candidateKey('color=red', 'e'), candidateKey('color=red', 'f')]),
      decisions: [
        { collectionId: 'color=red', itemId: 'c', answer: 'yes', confidence: 0.9 },
        { collectionId: 'color=red', itemId: 'd', answer: 'yes', confidence: 0.9 },
        { collectionId: 'color=blue', itemId: 'h', answer: 'no', confidence: 0.9 },
        { collectionId: 'color=blue', itemId: 'i', answer: 'no', confidence: 0.9 },
      ],
    });
    const redOut = out.find((c) => c.id === 'color=red')!;
    expect(redOut.partial).toBe(true);
    expect(redOut.items.map((m) => m.itemId)).toEqual(['a', 'b', 'c', 'd']);
    expect(out.find((c) => c.id === 'color=blue')!.partial).toBe(false);
  });

  it('leaves out collections without members unless asked to keep them, and rejects unknown collections', () => {
    const onlyBorderline = [{ collectionId: 'color=blue', accepted: [], borderline: [{ itemId: 'h', score: 0.6 }] }];
    const args = { collections: [blue], candidates: onlyBorderline, minConfidence: 0.5, unasked: new Set<string>() };
    const no = [{ collectionId: 'color=blue', itemId: 'h', answer: 'no' as const, confidence: 1 }];
    expect(decideMembers({ ...args, decisions: no })).toEqual([]);
    expect(decideMembers({ ...args, decisions: no, keepEmpty: true })).toHaveLength(1);
    expect(() => decideMembers({ ...args, collections: [red], decisions: [] })).toThrow(/not in the approved/);
    // Without definitions, the name and attributes come from the id.
    const [fromId] = decideMembers({
      candidates: [
        { collectionId: 'color=blue+shape=circle', accepted: [{ itemId: 'x', score: 0.9 }], borderline: [] },
      ],
      decisions: [],
      minConfidence: 0.5,
      unasked: new Set(),
    });
    expect(fromId).toMatchObject({ name: 'blue circle', attributes: { color: 'blue', shape: 'circle' } });
  });
});
