/**
 * The optional LLM-as-judge pass over the proposed vocabulary: the collection names go to the same endpoint in
 * batches (text only, no image) and the model says which to keep. The judge is advisory: a batch whose reply stays
 * unusable after one repair, or that the budget does not allow, leaves its collections kept and marked
 * `judged: false`, with the reason.
 */
import { askWithRepair } from './extract.js';
import { normaliseAttribute, type CollectionDef, type VlmBudget } from './types.js';
import type { VlmClient } from './vlm-client.js';
import { judgeMessages, parseJudgeReply } from './vlm-prompts.js';

/** The judge's verdict on one collection. */
export interface JudgeVerdict {
  keep: boolean;
  reason?: string;
  /** false when the judge gave no usable verdict (the collection is kept). */
  judged: boolean;
}

/** Options of {@link judgeCollections}. */
export interface JudgeCollectionsOptions {
  client: VlmClient;
  collections: readonly CollectionDef[];
  /** Names per request. @default 50 */
  batchSize?: number;
  /** @default unlimited */
  budget?: VlmBudget;
}

/**
 * Judges the collections' names in batches; see the module comment. Returns a verdict for every collection, by id;
 * the spend shows in `client.usage()`.
 */
export async function judgeCollections(opts: JudgeCollectionsOptions): Promise<Map<string, JudgeVerdict>> {
  const { client, collections } = opts;
  const batchSize = Math.max(1, opts.batchSize ?? 50);
  const gate = client.budgetGate(opts.budget ?? {});
  const verdicts = new Map<string, JudgeVerdict>();
  for (let start = 0; start < collections.length; start += batchSize) {
    const batch = collections.slice(start, start + batchSize);
    const names = batch.map((c) => c.name);
    const outcome = await askWithRepair(client, judgeMessages(names), parseJudgeReply, { gate });
    if (!outcome.ok) {
      const reason =
        outcome.kind === 'budget'
          ? 'not judged: the VLM budget is spent'
          : `not judged: ${outcome.reason}: ${outcome.message}`;
      for (const c of batch) verdicts.set(c.id, { keep: true, reason, judged: false });
      continue;
    }
    const byName = new Map(outcome.value.verdicts.map((v) => [normaliseAttribute(v.name), v]));
    for (const c of batch) {
      const v = byName.get(normaliseAttribute(c.name));
      verdicts.set(
        c.id,
        v
          ? { keep: v.keep, ...(v.reason !== undefined && v.reason !== '' ? { reason: v.reason } : {}), judged: true }
          : { keep: true, reason: 'not judged: the reply has no verdict for this name', judged: false },
      );
    }
  }
  return verdicts;
}
