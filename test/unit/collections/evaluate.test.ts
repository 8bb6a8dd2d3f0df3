import { describe, expect, it } from 'vitest';
import {
  evaluateCollections,
  parseEvaluationSet,
  qualityGate,
  vlmCallShare,
} from '../../../lib/collections/evaluate.js';
import type { EvaluationSet, PublishedCollection } from '../../../lib/collections/types.js';

const ids = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

/** Members with descending scores in the given order. */
function collection(attributes: Record<string, string>, members: string[], partial = false): PublishedCollection {
  return {
    id: Object.entries(attributes)
      .map(([k, v]) => `${k}=${v}`)
      .join('+'),
    name: Object.values(attributes).join(' '),
    attributes,
    partial,
    items: members.map((itemId, i) => ({ itemId, score: 1 - i * 0.01, verified: false })),
  };
}

describe('evaluateCollections', () => {
  const evalSet: EvaluationSet = {
    labelledItems: ids('l', 1, 21),
    queries: [
      { name: 'red', attributes: { color: 'red' }, relevant: ids('l', 1, 12) },
      { name: 'blue circle', attributes: { color: 'blue', shape: 'circle' }, relevant: ['l14', 'l15', 'l16'] },
      { name: 'green', attributes: { color: 'green' }, relevant: ['l18', 'l19'] },
      { name: 'yellow', attributes: { color: 'yellow' }, relevant: [] },
      { name: 'purple', attributes: { color: 'purple' }, relevant: ['l21'] },
    ],
  };
  const published = [
    // u1 is unlabelled (skipped for P/R), l13 labelled but not relevant; l12 missing.
    collection({ color: 'red' }, ['u1', ...ids('l', 1, 9), 'l13', 'l10', 'l11']),
    // The same attributes in another key order still match.
    collection({ shape: 'circle', color: 'blue' }, ['l14', 'l17', 'l15']),
    collection({ color: 'yellow' }, ['l20']),
    collection({ color: 'purple' }, ['u2', 'u3']),
    collection({ color: 'red', shape: 'square' }, ['l1']),
  ];

  it('computes P@10, R@10 and member recall as docs/collections.md defines them', () => {
    const r = evaluateCollections(published, evalSet);
    // P: red 9/10, blue circle 2/3, yellow 0/1; purple has no labelled member (skipped); red square matches nothing.
    expect(r.precisionAt10).toBeCloseTo((0.9 + 2 / 3 + 0) / 3, 10);
    // R: red 9/min(10,12), blue circle 2/min(10,3), green unmatched 0, purple 0; yellow has no relevant item.
    expect(r.recallAt10).toBeCloseTo((0.9 + 2 / 3 + 0 + 0) / 4, 10);
    // Members ∩ relevant: red 11 (l1..l11), blue circle 2; of 12 + 3 + 2 + 1 relevant.
    expect(r.memberRecall).toBeCloseTo(13 / 18, 10);
    expect(r.collectionsEvaluated).toBe(3);
    expect(r.queriesEvaluated).toBe(4);
  });

  it('reports the worst collection recall among queries with ≥ 10 relevant items, and the gate refuses it', () => {
    const r = evaluateCollections(published, evalSet);
    // Only "red" has ≥ 10 relevant labelled items: its collection holds 11 of 12.
    expect(r.worstCollectionRecall).toEqual({ collectionId: 'color=red', recall: 11 / 12, relevant: 12 });
    // A collection that kept its 10 best members but lost the rest: perfect top-10 figures, 10/40 member recall.
    const big: EvaluationSet = {
      labelledItems: ids('b', 1, 40),
      queries: [{ name: 'big', attributes: { size: 'big' }, relevant: ids('b', 1, 40) }],
    };
    const thin = evaluateCollections([collection({ size: 'big' }, ids('b', 1, 10))], big);
    expect(thin.precisionAt10).toBe(1);
    expect(thin.recallAt10).toBe(1);
    expect(thin.worstCollectionRecall?.recall).toBeCloseTo(0.25, 10);
    const gate = { minPrecisionAt10: 0.95, minRecallAt10: 0.9 };
    expect(qualityGate(thin, gate).passed).toBe(true);
    const refused = qualityGate(thin, { ...gate, minCollectionRecall: 0.5 });
    expect(refused.passed).toBe(false);
    expect(refused.reasons.join()).toMatch(/collection size=big holds only 25\.0% of its 40 labelled relevant items/);
  });

  it('ranks by score, not by list order, and scores a perfect run 1', () => {
    const shuffled: PublishedCollection = {
      ...collection({ color: 'red' }, []),
      items: [
        { itemId: 'l13', score: 0.1, verified: false },
        ...ids('l', 1, 12).map((itemId, i) => ({ itemId, score: 0.9 - i * 0.01, verified: true })),
      ],
    };
    const small: EvaluationSet = {
      labelledItems: ids('l', 1, 13),
      queries: [{ name: 'red', attributes: { color: 'red' }, relevant: ids('l', 1, 12) }],
    };
    expect(evaluateCollections([shuffled], small)).toEqual({
      precisionAt10: 1,
      recallAt10: 1,
      memberRecall: 1,
      collectionsEvaluated: 1,
      queriesEvaluated: 1,
      worstCollectionRecall: { collectionId: 'color=red', recall: 1, relevant: 12 },
    });
  });

  it('scores 0 when nothing is published', () => {
    expect(evaluateCollections([], evalSet)).toMatchObject({
      precisionAt10: 0,
      recallAt10: 0,
      memberRecall: 0,
      collectionsEvaluated: 0,
      queriesEvaluated: 4,
    });
  });
});

describe('vlmCallShare and qualityGate', () => {
  it('divides calls by the naive items × collections', () => {
    expect(vlmCallShare(200, 10_000, 50)).toBeCloseTo(0.0004, 12);
    expect(vlmCallShare(0, 0, 0)).toBe(0);
    expect(vlmCallShare(3, 0, 5)).toBe(Number.POSITIVE_INFINITY);
    expect(() => vlmCallShare(-1, 1, 1)).toThrow(/≥ 0/);
  });

  it('passes at the thresholds and names every reason it refuses', () => {
    const ok = { precisionAt10: 0.95, recallAt10: 0.9, memberRecall: 1, collectionsEvaluated: 3, queriesEvaluated: 3 };
    expect(qualityGate(ok, { minPrecisionAt10: 0.95, minRecallAt10: 0.9 })).toEqual({ passed: true, reasons: [] });
    const bad = qualityGate(
      { ...ok, precisionAt10: 0.94, recallAt10: 0.5 },
      { minPrecisionAt10: 0.95, minRecallAt10: 0.9 },
    );
    expect(bad.passed).toBe(false);
    expect(bad.reasons).toHaveLength(2);
    expect(bad.reasons[0]).toMatch(/precision@10 0\.9400 < 0\.95/);
    const nothing = qualityGate(
      { precisionAt10: 0, recallAt10: 0, memberRecall: 0, collectionsEvaluated: 0, queriesEvaluated: 0 },
      { minPrecisionAt10: 0, minRecallAt10: 0 },
    );
    expect(nothing.passed).toBe(false);
    expect(nothing.reasons.join('; ')).toMatch(/nothing was measured/);
  });
});

describe('parseEvaluationSet', () => {
  it('reads a valid file and rejects malformed ones with the path of the problem', () => {
    const text = JSON.stringify({
      labelledItems: ['a'],
      queries: [{ name: 'r', attributes: { color: 'red' }, relevant: ['a'] }],
    });
    expect(parseEvaluationSet(text).queries[0]!.relevant).toEqual(['a']);
    expect(() => parseEvaluationSet('{')).toThrow(/not JSON/);
    expect(() =>
      parseEvaluationSet(JSON.stringify({ labelledItems: [], queries: [{ name: 'r', relevant: [] }] })),
    ).toThrow(/queries\.0\.attributes/);
  });
});
