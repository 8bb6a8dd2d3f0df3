/**
 * Stage 4 of `collections-build`: ask the VLM a yes/no membership question for the borderline candidates, the most
 * uncertain first. Candidates of every collection are ordered together by |acceptScore − score| (nearest the
 * threshold first; ties by collection id, then item id), so whatever the budget allows is spent where the dual
 * encoder is least sure. When the budget gate refuses a request the stage stops cleanly: no new question starts,
 * and the candidates not asked are returned in `unasked` so the caller can mark their collections partial.
 *
 * A reply that is not JSON or not `{answer, confidence}` gets one repair request, then the pair goes to quarantine
 * (stage `verify`); so do refusals, 4xx and unreadable images. `vlm-unavailable` and `vlm-misconfigured` propagate.
 */
import { CollectionsError } from './errors.js';
import { askWithRepair } from './extract.js';
import {
  type Candidate,
  type CollectionCandidates,
  type CollectionDef,
  type CollectionsQuarantineRecord,
  type VerificationDecision,
  type VlmBudget,
  type VlmUsage,
} from './types.js';
import { runConcurrently, type VlmClient } from './vlm-client.js';
import { parseVerificationReply, verificationMessages } from './vlm-prompts.js';

/** One borderline (collection, item) pair. */
export interface BorderlinePair extends Candidate {
  collectionId: string;
}

/** Options of {@link verifyBorderline}. */
export interface VerifyBorderlineOptions {
  client: VlmClient;
  candidates: readonly CollectionCandidates[];
  collections: readonly CollectionDef[];
  /** The accept threshold: closeness to it orders the questions. */
  acceptScore: number;
  /** An item's image. A throw quarantines the pair as `unreadable-image`. */
  imageFor: (itemId: string) => Promise<{ bytes: Uint8Array; mimeType: string }>;
  /** What this call may spend. @default unlimited */
  budget?: VlmBudget;
  onProgress?: (done: number, total: number) => void;
  /** @default () => new Date() */
  now?: () => Date;
}

/** What {@link verifyBorderline} did. */
export interface VerifyBorderlineResult {
  /** One per answered pair, in the order asked. */
  decisions: VerificationDecision[];
  quarantined: CollectionsQuarantineRecord[];
  usage: VlmUsage;
  /** Pairs sent to the VLM (answered or quarantined). */
  asked: number;
  /** Pairs left unasked because the budget ran out, in the order they would have been asked. */
  unasked: BorderlinePair[];
  budgetExhausted: boolean;
}

/** Every borderline pair, most uncertain first (see the module comment). */
export function borderlineOrder(candidates: readonly CollectionCandidates[], acceptScore: number): BorderlinePair[] {
  const pairs = candidates.flatMap((c) => c.borderline.map((b) => ({ collectionId: c.collectionId, ...b })));
  return pairs.sort(
    (a, b) =>
      Math.abs(acceptScore - a.score) - Math.abs(acceptScore - b.score) ||
      (a.collectionId < b.collectionId ? -1 : a.collectionId > b.collectionId ? 1 : 0) ||
      (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0),
  );
}

/** Images are fetched once per item while its questions are in flight (an item is often borderline in several collections). */
const IMAGE_MEMO = 256;

type PairOutcome =
  | { kind: 'decision'; decision: VerificationDecision }
  | { kind: 'quarantine'; record: CollectionsQuarantineRecord }
  | { kind: 'unasked' };

/** Asks the VLM about the borderline candidates within the budget; see the module comment. */
export async function verifyBorderline(opts: VerifyBorderlineOptions): Promise<VerifyBorderlineResult> {
  const { client } = opts;
  const byId = new Map(opts.collections.map((c) => [c.id, c]));
  for (const c of opts.candidates) {
    if (!byId.has(c.collectionId)) {
      throw new CollectionsError(
        'invalid-option',
        `candidates name collection ${c.collectionId}, which is not in the vocabulary given to verification`,
      );
    }
  }
  const pairs = borderlineOrder(opts.candidates, opts.acceptScore);
  const gate = client.budgetGate(opts.budget ?? {});
  const abort = new AbortController();
  const now = opts.now ?? (() => new Date());
  const images = new Map<string, Promise<{ bytes: Uint8Array; mimeType: string }>>();
  const image = (itemId: string): Promise<{ bytes: Uint8Array; mimeType: string }> => {
    let p = images.get(itemId);
    if (!p) {
      p = opts.imageFor(itemId);
      images.set(itemId, p);
      if (images.size > IMAGE_MEMO) images.delete(images.keys().next().value as string);
    }
    return p;
  };
  const outcomes = new Array<PairOutcome>(pairs.length);
  let done = 0;
  let fatal: { error: unknown } | undefined;

  await runConcurrently(pairs.length, client.concurrency, async (i) => {
    const pair = pairs[i]!;
    if (fatal || gate.exhausted) {
      outcomes[i] = { kind: 'unasked' };
      return;
    }
    const quarantine = (reason: CollectionsQuarantineRecord['reason'], message: string, raw?: string): PairOutcome => ({
      kind: 'quarantine',
      record: {
        stage: 'verify',
        itemId: pair.itemId,
        collectionId: pair.collectionId,
        reason,
        message,
        ...(raw !== undefined ? { raw } : {}),
        at: now().toISOString(),
      },
    });
    try {
      let img: { bytes: Uint8Array; mimeType: string };
      try {
        img = await image(pair.itemId);
      } catch (err) {
        outcomes[i] = quarantine(
          'unreadable-image',
          `cannot read the image of item ${pair.itemId}: ${(err as Error).message}`,
        );
        return;
      }
      const collection = byId.get(pair.collectionId)!;
      const messages = verificationMessages({
        collectionName: collection.name,
        attributes: collection.attributes,
        image: img,
      });
      const outcome = await askWithRepair(client, messages, parseVerificationReply, { gate, signal: abort.signal });
      if (outcome.ok) {
        outcomes[i] = {
          kind: 'decision',
          decision: {
            collectionId: pair.collectionId,
            itemId: pair.itemId,
            answer: outcome.value.answer,
            confidence: outcome.value.confidence,
          },
        };
      } else if (outcome.kind === 'budget') {
        outcomes[i] = { kind: 'unasked' };
        return;
      } else {
        outcomes[i] = quarantine(outcome.reason, outcome.message, outcome.raw);
      }
    } catch (error) {
      outcomes[i] = { kind: 'unasked' };
      if (!fatal) {
        fatal = { error };
        abort.abort(error);
      }
      return;
    }
    done++;
    opts.onProgress?.(done, pairs.length);
  });
  if (fatal) throw fatal.error;

  const decisions: VerificationDecision[] = [];
  const quarantined: CollectionsQuarantineRecord[] = [];
  const unasked: BorderlinePair[] = [];
  outcomes.forEach((o, i) => {
    if (o.kind === 'decision') decisions.push(o.decision);
    else if (o.kind === 'quarantine') quarantined.push(o.record);
    else unasked.push(pairs[i]!);
  });
  return {
    decisions,
    quarantined,
    usage: gate.spent(),
    asked: decisions.length + quarantined.length,
    unasked,
    budgetExhausted: unasked.length > 0,
  };
}
