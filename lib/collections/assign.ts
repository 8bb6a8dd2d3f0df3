/**
 * Assignment at scale (stage 3 of `collections-build`) and the membership decision after verification (stage 4).
 * Each collection phrase, embedded with the text tower, queries the item index (usearch, cosine): hits at or above
 * the accept threshold are members outright, hits between the borderline and the accept threshold go to the VLM,
 * the rest are dropped. Pure: no Temporal, no I/O besides the loaded index.
 */
import type { LoadedIndex } from '../embedding/index-store.js';
import { CollectionsError } from './errors.js';
import type {
  Candidate,
  CollectionCandidates,
  CollectionDef,
  CollectionMember,
  PublishedCollection,
  VerificationDecision,
} from './types.js';

/** What retrieval found for one collection, with how far it searched. */
export interface RetrievedCandidates extends CollectionCandidates {
  /** Hits the index returned for this collection (the final K after widening, or fewer when the index is smaller). */
  retrieved: number;
  /**
   * true when the search stopped at `maxK` while its last hit still scored at or above the borderline threshold:
   * members or borderline items beyond the cap may be missing. Never true when the whole index was searched.
   */
  capped: boolean;
}

/** Input of {@link retrieveCandidates}. */
export interface RetrieveCandidatesInput {
  index: LoadedIndex;
  collections: readonly CollectionDef[];
  /** The text-tower vector of each collection's phrase, by collection id. */
  phraseVectors: ReadonlyMap<string, Float32Array>;
  /** Hits asked per collection at first. */
  topK: number;
  /** Cosine at or above which a hit is accepted. */
  acceptScore: number;
  /** Cosine from which a hit below `acceptScore` is borderline. */
  borderlineScore: number;
  /** Most hits a widened search asks for. @default the index size */
  maxK?: number;
  /**
   * `absolute`: the thresholds are cosines. `relative`: they are shares of the collection's best cosine (its top
   * hit), because a CLIP-style model gives a one-word phrase and a two-word phrase different cosine scales.
   * @default 'absolute'
   */
  scoreMode?: 'absolute' | 'relative';
  /** A cosine floor under both thresholds, in both modes. @default -1 (none) */
  minScore?: number;
  /** Called after each collection with the number done so far (for activity heartbeats). @default none */
  onProgress?: (done: number, total: number) => void;
}

const byScoreDesc = (a: Candidate, b: Candidate) =>
  b.score - a.score || (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0);

/** What {@link retrieveCandidates} returns. */
export interface RetrievalResult {
  /** One entry per collection, in the input order. */
  candidates: RetrievedCandidates[];
  /** How many collections were {@link RetrievedCandidates.capped}. */
  capped: number;
}

/**
 * The top-K items of every collection, split into accepted and borderline (both best score first; the borderline
 * list is thus nearest the accept threshold first, which is the order the VLM is asked in when the budget is
 * short). When every one of the K hits is accepted, the collection is probably larger than K: the search is widened
 * (K doubled, up to `maxK`) until its last hit falls below the borderline threshold, so a large collection is not cut
 * off silently; {@link RetrievedCandidates.capped} says when the cap stopped it.
 *
 * @throws CollectionsError `invalid-option` on inconsistent thresholds or a collection without a phrase vector.
 */
export function retrieveCandidates(input: RetrieveCandidatesInput): RetrievalResult {
  const { index } = input;
  const mode = input.scoreMode ?? 'absolute';
  const floor = input.minScore ?? -1;
  const acceptShare = input.acceptScore;
  const borderlineShare = input.borderlineScore;
  if (!Number.isInteger(input.topK) || input.topK < 1) {
    throw new CollectionsError('invalid-option', `assign.topK must be a positive integer, not ${input.topK}`);
  }
  if (borderlineShare > acceptShare) {
    throw new CollectionsError(
      'invalid-option',
      `assign.borderlineScore (${borderlineShare}) must not exceed assign.acceptScore (${acceptShare})`,
    );
  }
  const size = index.keys.length;
  const maxK = Math.min(size, input.maxK ?? size);
  const out: RetrievedCandidates[] = [];
  for (const collection of input.collections) {
    const vector = input.phraseVectors.get(collection.id);
    if (!vector) {
      throw new CollectionsError(
        'invalid-option',
        `collection ${collection.id} ("${collection.name}") has no phrase vector; embed every collection name first`,
      );
    }
    // This collection's cosine thresholds: as given, or scaled by its best hit; never under the floor.
    const top = mode === 'relative' && size > 0 ? (index.search(vector, 1)[0]?.score ?? 0) : 1;
    const borderlineScore = Math.max(floor, mode === 'relative' ? borderlineShare * top : borderlineShare);
    const acceptScore = Math.max(borderlineScore, mode === 'relative' ? acceptShare * top : acceptShare);
    let k = Math.min(input.topK, maxK);
    let hits = k > 0 ? index.search(vector, k) : [];
    const allAccepted = () => hits.length > 0 && hits.every((h) => h.score >= acceptScore);
    if (allAccepted()) {
      // Widen until the tail leaves the borderline band or nothing more can be asked.
      while (k < maxK && hits.length >= k && hits[hits.length - 1]!.score >= borderlineScore) {
        k = Math.min(maxK, k * 2);
        hits = index.search(vector, k);
      }
    }
    const last = hits[hits.length - 1];
    const capped = k < size && hits.length >= k && last !== undefined && last.score >= borderlineScore;
    const accepted: Candidate[] = [];
    const borderline: Candidate[] = [];
    for (const h of hits) {
      if (h.score >= acceptScore) accepted.push({ itemId: h.id, score: h.score });
      else if (h.score >= borderlineScore) borderline.push({ itemId: h.id, score: h.score });
    }
    accepted.sort(byScoreDesc);
    borderline.sort(byScoreDesc);
    out.push({
      collectionId: collection.id,
      accepted,
      borderline,
      acceptScore,
      borderlineScore,
      retrieved: hits.length,
      capped,
    });
    input.onProgress?.(out.length, input.collections.length);
  }
  return { candidates: out, capped: out.filter((c) => c.capped).length };
}

/** The key of one (collection, item) pair in {@link DecideMembersInput.unasked}. */
export function candidateKey(collectionId: string, itemId: string): string {
  return `${collectionId}\u0000${itemId}`;
}

/** A stand-in definition when only the id is known: `key=value` pairs joined with `+`. */
function definitionFromId(id: string): Pick<CollectionDef, 'id' | 'name' | 'attributes'> {
  const attributes: Record<string, string> = {};
  for (const pair of id.split('+')) {
    const at = pair.indexOf('=');
    if (at > 0) attributes[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { id, name: Object.values(attributes).join(' ') || id, attributes };
}

/** Input of {@link decideMembers}. */
export interface DecideMembersInput {
  /**
   * The approved collections: the names and attributes published. Without them a collection is named by its id and
   * its attributes are parsed back from the id (`color=red+shape=circle`), which is lossy for values holding `+`.
   * @default none
   */
  collections?: readonly CollectionDef[];
  candidates: readonly CollectionCandidates[];
  /** The VLM's answers on borderline candidates. */
  decisions: readonly VerificationDecision[];
  /** A "yes" counts from this confidence on. */
  minConfidence: number;
  /** Borderline pairs ({@link candidateKey}) left unasked because the VLM budget ran out. */
  unasked: ReadonlySet<string>;
  /** Publish collections that end up without members. @default false */
  keepEmpty?: boolean;
}

/**
 * The members of each collection after verification: accepted candidates (verified false), borderline candidates
 * the VLM confirmed with at least `minConfidence` (verified true). A "no", a low-confidence "yes", or no answer at
 * all (the verification was quarantined) drops the candidate. A candidate left unasked because the budget ran out
 * is dropped too, and marks its collection `partial`. Members are sorted best score first.
 *
 * @throws CollectionsError `invalid-option` when candidates name a collection that is not in `collections` (when given).
 */
export function decideMembers(input: DecideMembersInput): PublishedCollection[] {
  const defs = input.collections ? new Map(input.collections.map((c) => [c.id, c])) : undefined;
  const answers = new Map<string, VerificationDecision>();
  for (const d of input.decisions) answers.set(candidateKey(d.collectionId, d.itemId), d);
  const out: PublishedCollection[] = [];
  for (const cand of input.candidates) {
    const def = defs ? defs.get(cand.collectionId) : definitionFromId(cand.collectionId);
    if (!def) {
      throw new CollectionsError(
        'invalid-option',
        `candidates name collection ${cand.collectionId}, which is not in the approved vocabulary`,
      );
    }
    const members = new Map<string, CollectionMember>();
    for (const a of cand.accepted) members.set(a.itemId, { itemId: a.itemId, score: a.score, verified: false });
    let partial = false;
    for (const b of cand.borderline) {
      const key = candidateKey(cand.collectionId, b.itemId);
      const answer = answers.get(key);
      if (answer) {
        if (answer.answer === 'yes' && answer.confidence >= input.minConfidence && !members.has(b.itemId)) {
          members.set(b.itemId, { itemId: b.itemId, score: b.score, verified: true });
        }
      } else if (input.unasked.has(key)) {
        partial = true;
      }
    }
    const items = [...members.values()].sort(
      (a, b) => b.score - a.score || (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0),
    );
    if (items.length === 0 && !partial && !input.keepEmpty) continue;
    out.push({ id: def.id, name: def.name, attributes: { ...def.attributes }, items, partial });
  }
  return out;
}

/** Counts of a retrieval, for progress and the run's summary. */
export interface CandidatesStats {
  collections: number;
  accepted: number;
  borderline: number;
  /** Collections whose widened search stopped at the cap. */
  capped: number;
  /** Collections without a single accepted or borderline candidate. */
  empty: number;
  /** Candidates (accepted + borderline) per collection: smallest, median, largest. */
  minSize: number;
  medianSize: number;
  maxSize: number;
  /** Per collection, in input order. */
  sizes: { collectionId: string; accepted: number; borderline: number }[];
}

/** Counts of accepted and borderline candidates, overall and per collection. */
export function candidatesStats(candidates: readonly (CollectionCandidates & { capped?: boolean })[]): CandidatesStats {
  const sizes = candidates.map((c) => ({
    collectionId: c.collectionId,
    accepted: c.accepted.length,
    borderline: c.borderline.length,
  }));
  const totals = sizes.map((s) => s.accepted + s.borderline).sort((a, b) => a - b);
  return {
    collections: candidates.length,
    accepted: sizes.reduce((n, s) => n + s.accepted, 0),
    borderline: sizes.reduce((n, s) => n + s.borderline, 0),
    capped: candidates.filter((c) => c.capped === true).length,
    empty: totals.filter((t) => t === 0).length,
    minSize: totals[0] ?? 0,
    medianSize: totals.length ? totals[Math.floor((totals.length - 1) / 2)]! : 0,
    maxSize: totals[totals.length - 1] ?? 0,
    sizes,
  };
}
