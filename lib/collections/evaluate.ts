/**
 * Evaluation of a run (stage 6 of `collections-build`): precision@10 and recall@10 of the published collections
 * against a labelled evaluation set, the share of VLM calls against the naive approach, and the publish gate.
 * docs/collections.md ("Assignment, evaluation and publishing") states the definitions this file implements.
 */
import { z } from 'zod';
import { CollectionsError } from './errors.js';
import type { Attributes, EvaluationResult, EvaluationSet, PublishedCollection } from './types.js';

const EvaluationSetSchema = z.strictObject({
  labelledItems: z.array(z.string().min(1)),
  queries: z.array(
    z.strictObject({
      name: z.string().min(1),
      attributes: z.record(z.string(), z.string()),
      relevant: z.array(z.string().min(1)),
    }),
  ),
});

/**
 * Parses an evaluation set file (JSON: `{ labelledItems, queries: [{ name, attributes, relevant }] }`).
 *
 * @throws CollectionsError `corrupt-file` naming the first problem.
 */
export function parseEvaluationSet(text: string, source = 'evaluation set'): EvaluationSet {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CollectionsError('corrupt-file', `${source} is not JSON: ${(err as Error).message}`);
  }
  const parsed = EvaluationSetSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CollectionsError(
      'corrupt-file',
      `${source} is not an evaluation set: ${issue.path.join('.') || '(root)'}: ${issue.message}; expected ` +
        '{ labelledItems: string[], queries: [{ name, attributes: {key: value}, relevant: string[] }] }',
    );
  }
  return parsed.data;
}

function sameAttributes(a: Attributes, b: Attributes): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** The collection's labelled members, best score first (ties by item id), at most `n`. */
function topLabelled(collection: PublishedCollection, labelled: ReadonlySet<string>, n: number): string[] {
  return collection.items
    .filter((m) => labelled.has(m.itemId))
    .sort((a, b) => b.score - a.score || (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0))
    .slice(0, n)
    .map((m) => m.itemId);
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);

/**
 * Scores the published collections against the evaluation set:
 *
 * - a collection matches a query when their attribute maps are equal;
 * - P@10 of a matched collection: of its labelled members, the 10 best by score, the share relevant to the query
 *   (a matched collection without labelled members is skipped); `precisionAt10` is the mean over matched
 *   collections;
 * - R@10 of a query: |10 best labelled members of its collection ∩ relevant| / min(10, |relevant|), 0 without a
 *   matched collection; `recallAt10` is the mean over queries with at least one relevant item;
 * - `memberRecall`: Σ |members ∩ relevant| / Σ |relevant| over the queries (all members, not only 10);
 * - `worstCollectionRecall`: the lowest |members ∩ relevant| / |relevant| of one matched collection, among queries
 *   with at least {@link MIN_RELEVANT_FOR_COLLECTION_RECALL} relevant items (fewer make the share too noisy). Top-10
 *   figures cannot see a collection that lost most of its members; this can.
 */
export function evaluateCollections(
  published: readonly PublishedCollection[],
  evalSet: EvaluationSet,
): EvaluationResult {
  const labelled = new Set(evalSet.labelledItems);
  for (const q of evalSet.queries) for (const id of q.relevant) labelled.add(id);
  const precisions: number[] = [];
  const recalls: number[] = [];
  let relevantFound = 0;
  let relevantTotal = 0;
  let worst: EvaluationResult['worstCollectionRecall'];
  for (const query of evalSet.queries) {
    const relevant = new Set(query.relevant);
    const match = published.find((c) => sameAttributes(c.attributes, query.attributes));
    const top = match ? topLabelled(match, labelled, 10) : [];
    const hits = top.filter((id) => relevant.has(id)).length;
    if (match && top.length > 0) precisions.push(hits / top.length);
    if (relevant.size > 0) {
      recalls.push(hits / Math.min(10, relevant.size));
      relevantTotal += relevant.size;
      const found = match ? match.items.filter((m) => relevant.has(m.itemId)).length : 0;
      relevantFound += found;
      if (match && relevant.size >= MIN_RELEVANT_FOR_COLLECTION_RECALL) {
        const recall = found / relevant.size;
        if (!worst || recall < worst.recall) worst = { collectionId: match.id, recall, relevant: relevant.size };
      }
    }
  }
  return {
    precisionAt10: mean(precisions),
    recallAt10: mean(recalls),
    memberRecall: relevantTotal === 0 ? 0 : relevantFound / relevantTotal,
    collectionsEvaluated: precisions.length,
    queriesEvaluated: recalls.length,
    ...(worst ? { worstCollectionRecall: worst } : {}),
  };
}

/** Labelled relevant items a query needs before its collection's own recall counts (see `worstCollectionRecall`). */
export const MIN_RELEVANT_FOR_COLLECTION_RECALL = 10;

/**
 * VLM calls as a share of the naive approach, which asks the VLM about every item for every collection:
 * `calls / (items × collections)`. 0 when nothing was called; Infinity when calls were made for an empty product.
 */
export function vlmCallShare(calls: number, items: number, collections: number): number {
  if (calls < 0 || items < 0 || collections < 0) {
    throw new CollectionsError('invalid-option', `vlmCallShare needs counts ≥ 0 (${calls}, ${items}, ${collections})`);
  }
  const naive = items * collections;
  if (calls === 0) return 0;
  return naive === 0 ? Number.POSITIVE_INFINITY : calls / naive;
}

/** Thresholds of the publish gate. */
export interface QualityGateThresholds {
  minPrecisionAt10: number;
  minRecallAt10: number;
  /** The lowest member recall one collection may have (see `worstCollectionRecall`). @default 0 (not checked) */
  minCollectionRecall?: number;
}

/** The gate's verdict: every reason it refused, empty when it passed. */
export interface QualityGateVerdict {
  passed: boolean;
  reasons: string[];
}

/** Passes when P@10 and R@10 reach their minimums and the evaluation actually scored something. */
export function qualityGate(result: EvaluationResult, thresholds: QualityGateThresholds): QualityGateVerdict {
  const reasons: string[] = [];
  if (result.queriesEvaluated === 0) reasons.push('no evaluation query has a relevant item: nothing was measured');
  if (result.collectionsEvaluated === 0) {
    reasons.push('no published collection matches an evaluation query with labelled members');
  }
  if (result.precisionAt10 < thresholds.minPrecisionAt10) {
    reasons.push(`precision@10 ${result.precisionAt10.toFixed(4)} < ${thresholds.minPrecisionAt10}`);
  }
  if (result.recallAt10 < thresholds.minRecallAt10) {
    reasons.push(`recall@10 ${result.recallAt10.toFixed(4)} < ${thresholds.minRecallAt10}`);
  }
  const worst = result.worstCollectionRecall;
  if (worst && thresholds.minCollectionRecall !== undefined && worst.recall < thresholds.minCollectionRecall) {
    reasons.push(
      `collection ${worst.collectionId} holds only ${(worst.recall * 100).toFixed(1)}% of its ${worst.relevant} ` +
        `labelled relevant items (< ${thresholds.minCollectionRecall})`,
    );
  }
  return { passed: reasons.length === 0, reasons };
}
