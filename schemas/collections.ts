import { z } from 'zod';
import { IcebergTableName } from './cdc.js';
import { EmbeddingModel, IndexName, StorageUri } from './embedding.js';
import type { VocabularySummary } from '../lib/collections/vocabulary.js';

/**
 * Inputs, results, queries and updates of the `collections-build` pipeline (docs/collections.md). No item data
 * crosses Temporal: stages write their outputs (sample, extractions, vocabulary, candidates, decisions) as JSON files
 * under the run directory in the object store and exchange URIs and counts.
 */

/** A collections name: it names the run directory, the alias and the default tables. */
export const CollectionsName = IndexName;

/** The catalog: an Iceberg table of item id, image URI, title and description. */
export const CollectionsCatalog = z.strictObject({
  table: IcebergTableName,
  idColumn: z.string().min(1).default('item_id'),
  imageUriColumn: z.string().min(1).default('image_uri'),
  titleColumn: z.string().min(1).default('title'),
  descriptionColumn: z.string().min(1).default('description'),
  /** Stratify the extraction sample by this column (e.g. a category). @default hash buckets of the item id */
  stratumColumn: z.string().min(1).optional(),
});
export type CollectionsCatalog = z.infer<typeof CollectionsCatalog>;

/** An OpenAI-compatible chat-completions endpoint that accepts images. */
export const VlmEndpoint = z.strictObject({
  /** Base URL; requests go to `<url>/v1/chat/completions` (a URL already ending in `/v1` is used as is). */
  url: z.string().url(),
  model: z.string().min(1),
  /** Name of the environment variable of the worker that holds the API key (never the key itself). */
  apiKeyEnv: z.string().min(1).optional(),
  /** Requests in flight at once, per activity. @default 8 */
  concurrency: z.number().int().min(1).max(1024).default(8),
  /** Requests per second, per activity. @default unlimited */
  rateLimit: z.number().positive().optional(),
  /** USD per 1,000 tokens (prompt and completion alike). @default 0 */
  pricePer1kTokens: z.number().min(0).default(0),
  /** Per-request timeout. @default 60 */
  timeoutSeconds: z.number().positive().max(600).default(60),
  /** Attempts per request on timeouts, 429 and 5xx, with exponential backoff. @default 4 */
  maxAttempts: z.number().int().min(1).max(20).default(4),
});
export type VlmEndpoint = z.infer<typeof VlmEndpoint>;

export const CollectionsBuildInput = z
  .strictObject({
    /** Names the run directory, the alias `collections/<name>@current` and the default tables. */
    name: CollectionsName,
    /** Version label of this build's output (rows of the collections table carry it). */
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/),
    catalog: CollectionsCatalog,
    /** Search queries with their counts: collections matching popular queries rank first. @default none */
    demand: z
      .strictObject({
        table: IcebergTableName,
        queryColumn: z.string().default('query'),
        countColumn: z.string().default('count'),
      })
      .optional(),
    /** The VLM. Without it the extractor is the dual encoder's zero-shot scoring and nothing is verified. */
    vlm: VlmEndpoint.optional(),
    /** The attribute keys to extract, and for zero-shot scoring the candidate values of each. */
    attributes: z
      .array(z.strictObject({ key: z.string().min(1), values: z.array(z.string().min(1)).default([]) }))
      .min(1),
    /** Bumping it invalidates the extraction cache. @default '1' */
    promptVersion: z.string().min(1).max(64).default('1'),
    /** The dual encoder's towers (the same version). */
    textModel: EmbeddingModel,
    imageModel: EmbeddingModel,
    sample: z
      .strictObject({
        /** Items sent to the extractor. @default 200 */
        size: z.number().int().min(1).max(1_000_000).default(200),
        /** Seed of the deterministic sample. @default 1 */
        seed: z.number().int().default(1),
      })
      .default({ size: 200, seed: 1 }),
    vocabulary: z
      .strictObject({
        /** A value must appear on at least this share of the sample. @default 0.02 */
        minValueShare: z.number().min(0).max(1).default(0.02),
        /** A collection must be carried by at least this many sampled items. @default 2 */
        minSupport: z.number().int().min(1).default(2),
        /** Attribute values per collection (1 = single values, 2 = pairs…); all sizes up to this. @default 2 */
        maxAttributes: z.number().int().min(1).max(4).default(2),
        /** Cosine at or above which two phrases of one key are merged. @default 0.9 */
        mergeCosine: z.number().min(0).max(1).default(0.9),
        /** At most this many collections (demand first, then support). @default 500 */
        maxCollections: z.number().int().min(1).max(100_000).default(500),
        /** Ask the VLM to judge each proposed collection name (one call each). @default false */
        llmJudge: z.boolean().default(false),
      })
      .default({
        minValueShare: 0.02,
        minSupport: 2,
        maxAttributes: 2,
        mergeCosine: 0.9,
        maxCollections: 500,
        llmJudge: false,
      }),
    /** The human checkpoint on the vocabulary. */
    review: z
      .strictObject({
        /** Wait this long for the operator's decision; 0 waits forever. @default 86400 */
        timeoutSeconds: z.number().int().min(0).default(86_400),
        /** What the timeout does: approve the proposal, or fail the run. @default 'fail' */
        onTimeout: z.enum(['approve', 'fail']).default('fail'),
      })
      .default({ timeoutSeconds: 86_400, onTimeout: 'fail' }),
    assign: z
      .strictObject({
        /** Items retrieved per collection from the ANN index (widened while hits stay above the borderline). @default 1000 */
        topK: z.number().int().min(1).max(1_000_000).default(1000),
        /**
         * How thresholds read: `relative` (a share of the collection's best cosine: a one-word phrase and a
         * three-word phrase reach different cosines with a CLIP-style model, so one absolute cut cannot serve both),
         * or `absolute` (plain cosines). @default 'relative'
         */
        scoreMode: z.enum(['relative', 'absolute']).default('relative'),
        /** At or above this a retrieved item is a member without asking the VLM. @default 0.85 */
        acceptScore: z.number().min(-1).max(1).default(0.85),
        /** From this up to acceptScore an item is borderline (the VLM is asked). @default 0.6 */
        borderlineScore: z.number().min(-1).max(1).default(0.6),
        /** Cosine floor in both modes: an item below it is never a candidate (a collection whose best is below it stays empty). @default 0.4 */
        minScore: z.number().min(-1).max(1).default(0.4),
        /** A borderline item is kept when the VLM says yes with at least this confidence. @default 0.5 */
        minConfidence: z.number().min(0).max(1).default(0.5),
      })
      .default({
        topK: 1000,
        scoreMode: 'relative',
        acceptScore: 0.85,
        borderlineScore: 0.6,
        minScore: 0.4,
        minConfidence: 0.5,
      }),
    /** VLM spend allowed for the whole run (extraction and verification). @default unlimited */
    budget: z
      .strictObject({ maxCalls: z.number().int().min(0).optional(), maxCostUsd: z.number().min(0).optional() })
      .default({}),
    /** The labelled evaluation set (JSON, docs/collections.md) and the publish gate. Without it nothing is gated. */
    evaluation: z
      .strictObject({
        uri: StorageUri,
        minPrecisionAt10: z.number().min(0).max(1).default(0.95),
        minRecallAt10: z.number().min(0).max(1).default(0.9),
        /**
         * The lowest member recall any one collection may have (over queries with ≥ 10 labelled relevant items):
         * top-10 figures cannot see a collection that lost most of its members. @default 0.5
         */
        minCollectionRecall: z.number().min(0).max(1).default(0.5),
      })
      .optional(),
    output: z
      .strictObject({
        /** The collections table. @default `<catalog namespace>.collections` */
        table: IcebergTableName.optional(),
        /** The extraction cache table. @default `<catalog namespace>.vlm_extractions` */
        extractionTable: IcebergTableName.optional(),
        /** The item-embedding index the backfill builds (reused when its alias is at the image model's version). @default `<name>-items` */
        itemIndex: IndexName.optional(),
        /** Where run files, build manifests and the alias `<name>` live. @default `<warehouse>/collections` */
        root: StorageUri.optional(),
        /** Where the item index lives (with the other embedding indexes). @default `<warehouse>/indexes` */
        indexRoot: StorageUri.optional(),
      })
      .default({}),
    /** Embedding backfill settings for the item index. */
    backfill: z
      .strictObject({
        shardSize: z.number().int().min(1).default(5000),
        batchSize: z.number().int().min(1).default(64),
        maxParallelism: z.number().int().min(1).default(4),
        /** Share of catalog items that must have a vector (unreadable images are quarantined). @default 0.99 */
        coverageThreshold: z.number().min(0).max(1).default(0.99),
      })
      .default({ shardSize: 5000, batchSize: 64, maxParallelism: 4, coverageThreshold: 0.99 }),
  })
  .refine((i) => i.assign.borderlineScore <= i.assign.acceptScore, {
    message: 'assign.borderlineScore must not exceed assign.acceptScore',
    path: ['assign', 'borderlineScore'],
  })
  .refine((i) => i.textModel.version === i.imageModel.version, {
    message: 'textModel and imageModel must be the same version of one dual encoder (they share one space)',
    path: ['imageModel', 'version'],
  })
  .refine((i) => new Set(i.attributes.map((a) => a.key)).size === i.attributes.length, {
    message: 'attribute keys must be unique',
    path: ['attributes'],
  })
  .refine((i) => i.vlm !== undefined || i.attributes.every((a) => a.values.length >= 2), {
    message: 'without a vlm, the zero-shot extractor needs at least two candidate values for every attribute key',
    path: ['attributes'],
  });
export type CollectionsBuildInput = z.infer<typeof CollectionsBuildInput>;
/** What a caller passes (defaults filled in by the schema). */
export type CollectionsBuildRequest = z.input<typeof CollectionsBuildInput>;

/** Business-key workflow id: one build per collections name and version. */
export function collectionsBuildWorkflowId(input: Pick<CollectionsBuildInput, 'name' | 'version'>): string {
  return `collections-build/${input.name}/${input.version}`;
}

/** The operator's decision on the proposed vocabulary (update `reviewVocabulary`). */
export const VocabularyReview = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('approve'), by: z.string().min(1), comment: z.string().optional() }),
  z.strictObject({
    action: z.literal('edit'),
    by: z.string().min(1),
    comment: z.string().optional(),
    /** Collection ids (from the proposal) to drop. */
    remove: z.array(z.string()).default([]),
    /** Collections to add or rename: attributes (canonical values) and an optional display name. */
    add: z
      .array(z.strictObject({ attributes: z.record(z.string(), z.string()), name: z.string().optional() }))
      .default([]),
  }),
  z.strictObject({ action: z.literal('reject'), by: z.string().min(1), comment: z.string().optional() }),
]);
export type VocabularyReview = z.infer<typeof VocabularyReview>;

export const COLLECTIONS_QUERIES = { progress: 'progress', vocabulary: 'vocabulary', summary: 'summary' } as const;
export const COLLECTIONS_UPDATES = { reviewVocabulary: 'reviewVocabulary' } as const;

// ---- activity contracts ---------------------------------------------------------------------------------

/** The resolved locations of one run (from `prepareCollectionsRun`). */
export const CollectionsRunPaths = z.strictObject({
  /** `<root>/<name>/runs/<version>/<runKey>`: this run's files. */
  runRoot: StorageUri,
  root: StorageUri,
  indexRoot: StorageUri,
  itemIndex: IndexName,
  collectionsTable: IcebergTableName,
  extractionTable: IcebergTableName,
  itemVectorsTable: IcebergTableName,
});
export type CollectionsRunPaths = z.infer<typeof CollectionsRunPaths>;

export const PrepareCollectionsInput = z.strictObject({
  name: CollectionsName,
  version: z.string().min(1),
  runKey: z.string().min(1),
  catalog: CollectionsCatalog,
  demand: z.strictObject({ table: IcebergTableName, queryColumn: z.string(), countColumn: z.string() }).optional(),
  sample: z.strictObject({ size: z.number().int().positive(), seed: z.number().int() }),
  output: z.strictObject({
    table: IcebergTableName.optional(),
    extractionTable: IcebergTableName.optional(),
    itemIndex: IndexName.optional(),
    root: StorageUri.optional(),
    indexRoot: StorageUri.optional(),
  }),
});
export type PrepareCollectionsInput = z.infer<typeof PrepareCollectionsInput>;

export interface PrepareCollectionsResult {
  paths: CollectionsRunPaths;
  /** The catalog snapshot every stage reads (decimal string). */
  catalogSnapshotId: string;
  catalogRows: number;
  /** Rows quarantined as `invalid-record` (null id or image URI). */
  invalidRows: number;
  sampleUri: string;
  sampleSize: number;
  strata: number;
  demandUri?: string;
  demandQueries: number;
}

const AttributeKeys = z.array(z.strictObject({ key: z.string().min(1), values: z.array(z.string()) })).min(1);
const Budget = z.strictObject({
  maxCalls: z.number().int().min(0).optional(),
  maxCostUsd: z.number().min(0).optional(),
});

export const ExtractVlmInput = z.strictObject({
  runRoot: StorageUri,
  sampleUri: StorageUri,
  vlm: VlmEndpoint,
  attributes: AttributeKeys,
  promptVersion: z.string().min(1),
  extractionTable: IcebergTableName,
  /** What is left of the run's budget. */
  budget: Budget,
  /** Items per cache write and heartbeat. @default 32 */
  batchSize: z.number().int().min(1).max(10_000).default(32),
});
export type ExtractVlmInput = z.input<typeof ExtractVlmInput>;

export const ExtractZeroShotInput = z.strictObject({
  runRoot: StorageUri,
  sampleUri: StorageUri,
  attributes: AttributeKeys,
  promptVersion: z.string().min(1),
  textModel: EmbeddingModel,
  imageModel: EmbeddingModel,
});
export type ExtractZeroShotInput = z.infer<typeof ExtractZeroShotInput>;

export interface VlmUsageJson {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/** The sum of two usages. */
export function addVlmUsage(a: VlmUsageJson, b: VlmUsageJson): VlmUsageJson {
  return {
    calls: a.calls + b.calls,
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    costUsd: a.costUsd + b.costUsd,
  };
}

/** What is left of a run's VLM budget after `spent`; an unlimited dimension stays unlimited. */
export function vlmBudgetLeft(
  budget: { maxCalls?: number | undefined; maxCostUsd?: number | undefined },
  spent: VlmUsageJson,
): { maxCalls?: number; maxCostUsd?: number } {
  return {
    ...(budget.maxCalls === undefined ? {} : { maxCalls: Math.max(0, budget.maxCalls - spent.calls) }),
    ...(budget.maxCostUsd === undefined ? {} : { maxCostUsd: Math.max(0, budget.maxCostUsd - spent.costUsd) }),
  };
}

export interface ExtractResult {
  extractionsUri: string;
  extracted: number;
  cacheHits: number;
  quarantined: number;
  usage: VlmUsageJson;
  budgetExhausted: boolean;
}

export const ProposeVocabularyInput = z.strictObject({
  runRoot: StorageUri,
  extractionsUri: StorageUri,
  demandUri: StorageUri.optional(),
  keys: z.array(z.string().min(1)).min(1),
  textModel: EmbeddingModel,
  minValueShare: z.number(),
  minSupport: z.number().int(),
  maxAttributes: z.number().int(),
  mergeCosine: z.number(),
  maxCollections: z.number().int(),
  /** Ask this VLM to judge the proposed collections. @default no judge */
  judge: VlmEndpoint.optional(),
  budget: Budget,
});
export type ProposeVocabularyInput = z.infer<typeof ProposeVocabularyInput>;

/** A compact view of a vocabulary, small enough for a query result (lists are capped; lib/collections/vocabulary.ts). */
export type VocabularySummaryJson = VocabularySummary;

export interface ProposeVocabularyResult {
  vocabularyUri: string;
  summary: VocabularySummaryJson;
  usage: VlmUsageJson;
}

export const ApplyReviewInput = z.strictObject({
  runRoot: StorageUri,
  vocabularyUri: StorageUri,
  review: VocabularyReview,
});
export type ApplyReviewInput = z.infer<typeof ApplyReviewInput>;

export interface ApplyReviewResult {
  vocabularyUri: string;
  summary: VocabularySummaryJson;
}

export const ItemIndexStatusInput = z.strictObject({
  indexRoot: StorageUri,
  itemIndex: IndexName,
  modelVersion: z.string().min(1),
  catalogSnapshotId: z.string().regex(/^-?\d{1,20}$/),
});
export type ItemIndexStatusInput = z.infer<typeof ItemIndexStatusInput>;

export interface ItemIndexStatusResult {
  /** `reuse`: the current build has this version over this snapshot; `incremental`: this version over an older one. */
  action: 'reuse' | 'incremental' | 'full';
  fromSnapshotId?: string;
  detail: string;
}

export const AssignCollectionsInput = z.strictObject({
  runRoot: StorageUri,
  vocabularyUri: StorageUri,
  indexRoot: StorageUri,
  itemIndex: IndexName,
  textModel: EmbeddingModel,
  topK: z.number().int().positive(),
  scoreMode: z.enum(['relative', 'absolute']),
  acceptScore: z.number(),
  borderlineScore: z.number(),
  minScore: z.number(),
});
export type AssignCollectionsInput = z.infer<typeof AssignCollectionsInput>;

export interface AssignCollectionsResult {
  candidatesUri: string;
  collections: number;
  accepted: number;
  borderline: number;
  /** Items in the index (the catalog items with a vector). */
  indexedItems: number;
  /** Collections whose search stopped at the index-size cap while hits were still above the borderline score. */
  capped: number;
  /** ANN searches that returned fewer hits than asked although the index holds more (unreachable graph nodes). */
  incompleteSearches: number;
  seconds: number;
}

export const VerifyBorderlineInput = z.strictObject({
  runRoot: StorageUri,
  candidatesUri: StorageUri,
  vocabularyUri: StorageUri,
  catalogTable: IcebergTableName,
  idColumn: z.string(),
  imageUriColumn: z.string(),
  catalogSnapshotId: z.string(),
  vlm: VlmEndpoint,
  acceptScore: z.number(),
  budget: Budget,
  /** Borderline candidates per chunk (decisions stored and heartbeated per chunk). @default 64 */
  chunkSize: z.number().int().min(1).max(100_000).default(64),
});
export type VerifyBorderlineInput = z.input<typeof VerifyBorderlineInput>;

export interface VerifyBorderlineResult {
  decisionsUri: string;
  asked: number;
  unasked: number;
  quarantined: number;
  usage: VlmUsageJson;
  budgetExhausted: boolean;
}

export const PublishCollectionsInput = z.strictObject({
  name: CollectionsName,
  version: z.string().min(1),
  runKey: z.string().min(1),
  paths: CollectionsRunPaths,
  candidatesUri: StorageUri,
  vocabularyUri: StorageUri,
  decisionsUri: StorageUri.optional(),
  minConfidence: z.number(),
  evaluation: z
    .strictObject({
      uri: StorageUri,
      minPrecisionAt10: z.number(),
      minRecallAt10: z.number(),
      minCollectionRecall: z.number().default(0),
    })
    .optional(),
  /** The catalog's item count: the naive approach asks the VLM about every item × every collection. */
  catalogItems: z.number().int().nonnegative(),
  usage: z.strictObject({
    calls: z.number(),
    promptTokens: z.number(),
    completionTokens: z.number(),
    costUsd: z.number(),
  }),
  /** Facts written into the snapshot summary and the build manifest. */
  facts: z.record(z.string(), z.string()).default({}),
});
export type PublishCollectionsInput = z.input<typeof PublishCollectionsInput>;

export interface PublishCollectionsResult {
  snapshotId: string;
  buildDir: string;
  collections: number;
  members: number;
  verifiedMembers: number;
  partialCollections: number;
  evaluation?: {
    precisionAt10: number;
    recallAt10: number;
    memberRecall: number;
    collectionsEvaluated: number;
    queriesEvaluated: number;
    worstCollectionRecall?: { collectionId: string; recall: number; relevant: number };
  };
  gate: { passed: boolean; reasons: string[] } | null;
  /** VLM calls as a share of items × collections. */
  vlmCallShare: number;
}

export const FlipCollectionsAliasInput = z.strictObject({
  root: StorageUri,
  name: CollectionsName,
  version: z.string().min(1),
  buildDir: StorageUri,
  by: z.string().min(1),
});
export type FlipCollectionsAliasInput = z.infer<typeof FlipCollectionsAliasInput>;

/** Phases of the run, also its `SluicePhase` search attribute. */
export type CollectionsPhase =
  | 'preparing'
  | 'extracting'
  | 'curating'
  | 'awaiting-review'
  | 'embedding-items'
  | 'assigning'
  | 'verifying'
  | 'publishing'
  | 'done'
  | 'failed';

/** The run's result, also what the `summary` query returns while it runs. */
export interface CollectionsBuildSummary {
  name: string;
  version: string;
  phase: CollectionsPhase;
  extractor: 'vlm' | 'zero-shot';
  catalogItems: number;
  sampleSize: number;
  extraction?: { extracted: number; cacheHits: number; quarantined: number };
  vocabulary?: { proposed: number; approved?: number; review?: string };
  itemIndex?: { action: string; detail: string };
  assignment?: { accepted: number; borderline: number; capped: number; seconds: number; itemsPerSecond: number };
  verification?: { asked: number; unasked: number; quarantined: number; budgetExhausted: boolean };
  vlm: VlmUsageJson & { callShareOfNaive?: number };
  published?: PublishCollectionsResult;
  alias?: { generation: number } | { skipped: string };
}
