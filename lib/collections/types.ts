/**
 * The data of the `collections-build` pipeline (issue 7), shared by its engine modules (this directory, no Temporal
 * imports), its activities and its CLI. Attribute keys and values are normalised: lower case, trimmed, inner
 * whitespace collapsed to one space.
 */
import { addVlmUsage } from '../../schemas/collections.js';

/** Normalised key → value attributes of one item, e.g. `{ color: 'red', shape: 'circle' }`. */
export type Attributes = Record<string, string>;

/** One row of the catalog table (item id, image URI, title, description, and an optional stratum column). */
export interface CatalogRow {
  itemId: string;
  /** file:// or s3:// URI of the item's image. */
  imageUri: string;
  title: string;
  description: string;
  /** The value of the sampling stratum column, when the run names one. */
  stratum?: string;
}

/** Who answered an extraction: a VLM endpoint (its model name) or the dual encoder's zero-shot scoring. */
export type ExtractorKind = 'vlm' | 'zero-shot';

/** One item's extracted attributes, as cached in the extraction table. */
export interface ExtractionRecord {
  itemId: string;
  /** sha256 (hex) of the image bytes, title and description: the cache key with prompt version and model. */
  contentHash: string;
  promptVersion: string;
  /** The VLM model name, or `zero-shot:<text model version>`. */
  model: string;
  attributes: Attributes;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** ISO time the answer was obtained (a cache hit keeps the original time). */
  extractedAt: string;
}

/** Why an item (or a verification) went to quarantine. */
export type CollectionsQuarantineReason =
  | 'malformed-json' // still not valid JSON after the one repair retry
  | 'schema-invalid' // valid JSON that does not match the reply schema, after the repair retry
  | 'refusal' // the model refused (finish_reason content_filter, or a refusal message)
  | 'client-error' // the endpoint answered 4xx (other than 408/429) for this item
  | 'unreadable-image' // the image URI cannot be read
  | 'invalid-record'; // the catalog row itself is unusable (null id, empty text…)

/** One quarantined record: enough to replay it. */
export interface CollectionsQuarantineRecord {
  stage: 'extract' | 'verify';
  itemId: string;
  reason: CollectionsQuarantineReason;
  message: string;
  /** The raw model reply (cut to 2,000 characters), when there was one. */
  raw?: string;
  /** For `verify`: the collection whose membership was asked. */
  collectionId?: string;
  at: string;
}

/** VLM spend: calls made (every HTTP request, repairs and retries included), tokens and estimated cost. */
export interface VlmUsage {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export const NO_USAGE: VlmUsage = { calls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 };

/** The sum of two usages. */
export const addUsage: (a: VlmUsage, b: VlmUsage) => VlmUsage = addVlmUsage;

/** The run's VLM budget; `undefined` fields are unlimited. */
export interface VlmBudget {
  maxCalls?: number;
  maxCostUsd?: number;
}

/** One proposed collection: a conjunction of attribute values with a display name. */
export interface CollectionDef {
  /** Stable id derived from the sorted attributes, e.g. `color=red+shape=circle`. */
  id: string;
  /** The phrase embedded with the text tower and shown to users, e.g. `red circle`. */
  name: string;
  attributes: Attributes;
  /** Sampled items carrying all of these attributes. */
  support: number;
  /** Sum of the demand-signal counts of queries matching this collection (0 without signals). */
  demand: number;
  /** Raw phrases merged into this collection's values by clustering (e.g. `crimson` → `red`). */
  mergedFrom?: string[];
}

/** The curated vocabulary the human checkpoint sees. */
export interface Vocabulary {
  /** Attribute values kept per key, after frequency filtering and merging, with their sample counts. */
  values: Record<string, Record<string, number>>;
  /** Near-duplicate merges: canonical value ← merged raw values (per key). */
  merges: { key: string; canonical: string; merged: string[] }[];
  /** Values or collections dropped, and why (`rare`, `judge-rejected`, `over-limit`…). */
  dropped: { name: string; reason: string }[];
  collections: CollectionDef[];
}

/** One item retrieved for a collection, with its dual-encoder cosine score. */
export interface Candidate {
  itemId: string;
  score: number;
}

/** What retrieval decided for one collection before verification. */
export interface CollectionCandidates {
  collectionId: string;
  /** score ≥ accept threshold: members without asking the VLM. */
  accepted: Candidate[];
  /** borderlineLow ≤ score < accept threshold: the VLM is asked, nearest the threshold first. */
  borderline: Candidate[];
  /** The cosine thresholds this collection was cut with (relative scoring makes them per collection). */
  acceptScore?: number;
  borderlineScore?: number;
}

/** One membership answer of the VLM for a borderline candidate. */
export interface VerificationDecision {
  collectionId: string;
  itemId: string;
  answer: 'yes' | 'no';
  confidence: number;
}

/** One member of a published collection. */
export interface CollectionMember {
  itemId: string;
  score: number;
  /** true when the VLM confirmed it; false when it was accepted on the dual-encoder score alone. */
  verified: boolean;
}

/** A collection as published (one row of the collections table). */
export interface PublishedCollection {
  id: string;
  name: string;
  attributes: Attributes;
  /** Members, best score first. */
  items: CollectionMember[];
  /** true when borderline candidates of this collection were left unverified because the budget ran out. */
  partial: boolean;
}

/** A labelled evaluation set: queries (collections in canonical attributes) and the items relevant to each. */
export interface EvaluationSet {
  /** Every item that carries labels; P@10 and R@10 rank only these. */
  labelledItems: string[];
  queries: { name: string; attributes: Attributes; relevant: string[] }[];
}

/** Quality figures of one run (docs/collections.md gives the definitions). */
export interface EvaluationResult {
  /** Mean over published collections matched to an evaluation query. */
  precisionAt10: number;
  /** Mean over evaluation queries (a query without a published collection counts 0). */
  recallAt10: number;
  /** Share of the labelled relevant items that the matched collections contain (all members, not just 10). */
  memberRecall: number;
  collectionsEvaluated: number;
  queriesEvaluated: number;
  /** The matched collection with the lowest member recall (queries with ≥ 10 relevant labelled items). */
  worstCollectionRecall?: { collectionId: string; recall: number; relevant: number };
}

/** Normalises an attribute key or value: lower case, trimmed, inner whitespace collapsed. */
export function normaliseAttribute(s: string): string {
  return s.trim().toLowerCase().replace(/\s+/g, ' ');
}

/** The stable id of a collection: `key=value` pairs sorted by key, joined with `+`. */
export function collectionId(attributes: Attributes): string {
  return Object.keys(attributes)
    .sort()
    .map((k) => `${k}=${attributes[k]}`)
    .join('+');
}
