import { z } from 'zod';
import { IcebergTableName } from './cdc.js';
import { Progress } from './progress.js';

/**
 * Inputs, results and progress of the `embedding-backfill` pipeline and its activities. JSON-exact: snapshot ids
 * travel as decimal strings (they exceed 2^53), times as ISO strings or epoch milliseconds. No row data or vector
 * crosses Temporal: the planner writes the shard plan to the object store, shards write their vectors next to the
 * output table, and activities exchange URIs and counts.
 */

/** A 64-bit id (Iceberg snapshot id) as a decimal string. */
export const SnapshotIdString = z.string().regex(/^-?\d{1,20}$/, 'a snapshot id as a decimal string');

/** A storage URI the FileIO reads: `file:///abs/path` or `s3://bucket/key`. */
export const StorageUri = z.string().regex(/^(file:\/\/|s3:\/\/)\S+$/, 'a file:// or s3:// URI');

/** An index name: it names a directory and the alias `<index>@current`. */
export const IndexName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "_" and "-", starting with a letter (at most 63)');

/** A model version label: it names output files and index directories, so it is kept to a safe alphabet. */
export const ModelVersion = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, 'letters, digits, ".", "_", "+" and "-" (at most 64), e.g. "v3"');

/** One condition of a source filter; the conditions of a filter are ANDed. */
export const FilterCondition = z.strictObject({
  column: z.string().min(1),
  op: z.enum(['eq', 'notEq', 'lt', 'ltEq', 'gt', 'gtEq', 'in', 'isNull', 'notNull']),
  /** The literal (a list for `in`; absent for `isNull`/`notNull`). */
  value: z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))]).optional(),
});
export type FilterCondition = z.infer<typeof FilterCondition>;

/** Where the items come from. */
export const EmbeddingSource = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('iceberg'),
    /** The catalog table, `namespace.table`. */
    table: IcebergTableName,
    /** Read this snapshot. @default the current snapshot when the run plans */
    snapshotId: SnapshotIdString.optional(),
    /** Only rows matching every condition. @default every row */
    filter: z.array(FilterCondition).default([]),
  }),
  z.strictObject({
    kind: z.literal('parquet'),
    /** Parquet files by URI. */
    paths: z.array(StorageUri).default([]),
    /** Every `.parquet` file under this URI prefix (sorted by name). */
    prefix: StorageUri.optional(),
  }),
]);
export type EmbeddingSource = z.infer<typeof EmbeddingSource>;

/** Embed only the rows written between two snapshots of a (CDC-fed) Iceberg source. */
export const IncrementalRange = z.strictObject({
  /** Rows written after this snapshot… */
  fromSnapshotId: SnapshotIdString,
  /** …up to and including this one. @default the current snapshot */
  toSnapshotId: SnapshotIdString.optional(),
});
export type IncrementalRange = z.infer<typeof IncrementalRange>;

/** The model: an ONNX model directory (`model.onnx`, `tokenizer.json`, `sluice-model.json`) and its version. */
export const EmbeddingModel = z.strictObject({
  /** Directory (local path or file:// URI) of the model files, the same on every GPU host. */
  path: z.string().min(1),
  version: ModelVersion,
});
export type EmbeddingModel = z.infer<typeof EmbeddingModel>;

export const EmbeddingOutput = z.strictObject({
  /** The Iceberg table `(id, model_version, vector, computed_at)`; created when missing. */
  table: IcebergTableName,
  /** The ANN index; its alias `<index>@current` flips to this run's version when every gate passes. */
  index: IndexName,
  /** Where indexes and their aliases live. @default `<warehouse>/indexes` (the worker's warehouse) */
  indexRoot: StorageUri.optional(),
});
export type EmbeddingOutput = z.infer<typeof EmbeddingOutput>;

/** What the workflow carries across continue-as-new. */
export const EmbeddingCarriedState = z.strictObject({
  runs: z.number().int().nonnegative().default(0),
  plan: z
    .strictObject({
      planUri: StorageUri,
      runRoot: StorageUri,
      indexRoot: StorageUri,
      shardCount: z.number().int().nonnegative(),
      totalItems: z.number().int().nonnegative(),
      sourceSnapshotId: SnapshotIdString.optional(),
      plannedAtMs: z.number(),
    })
    .optional(),
  /** Shards finished (their vectors written), by index. Sorted. */
  doneShards: z.array(z.number().int().nonnegative()).default([]),
  /** Finished shards whose files are in the output table. */
  committedShards: z.number().int().nonnegative().default(0),
  itemsDone: z.number().int().nonnegative().default(0),
  quarantined: z.number().int().nonnegative().default(0),
  shardRetries: z.number().int().nonnegative().default(0),
  lastFinishedAtMs: z.number().optional(),
  paused: z.boolean().default(false),
});
export type EmbeddingCarriedState = z.infer<typeof EmbeddingCarriedState>;

export const EmbeddingBackfillInput = z
  .strictObject({
    source: EmbeddingSource,
    /** The id column (any primitive type; stored as its string form). */
    idColumn: z.string().min(1),
    /** The text column to embed (exactly one of textColumn, imageUriColumn). */
    textColumn: z.string().min(1).optional(),
    /** The column of image URIs (file:// or s3://) to embed. */
    imageUriColumn: z.string().min(1).optional(),
    /** Source columns copied into the index for metadata filters (`--filter tier=gold`). @default none */
    metadataColumns: z.array(z.string().min(1)).default([]),
    model: EmbeddingModel,
    output: EmbeddingOutput,
    /** Items per shard (a shard never spans two data files). @default 5000 */
    shardSize: z.number().int().min(1).max(1_000_000).default(5000),
    /** Items per inference call, and per heartbeat: a retry redoes at most one batch. @default 64 */
    batchSize: z.number().int().min(1).max(4096).default(64),
    /** Shards running at once. @default 4 */
    maxParallelism: z.number().int().min(1).max(256).default(4),
    /** Items per second across the run, split evenly over the parallel shards. @default unlimited */
    rateLimit: z.number().positive().optional(),
    /** Share of source rows that must have a vector of the new version before the alias flips. @default 1 */
    coverageThreshold: z.number().min(0).max(1).default(1),
    /** Items recomputed through the online path for the parity check (0 turns it off). @default 32 */
    paritySampleSize: z.number().int().min(0).max(10_000).default(32),
    /**
     * The model the online service serves, when it loads it from another path than the backfill (its own copy or
     * deployment). The parity check recomputes the sample with it, so a mis-deployed online model (another version,
     * other weights) fails the gate. @default the backfill's model
     */
    parityModel: EmbeddingModel.optional(),
    /** Lowest cosine similarity between a stored vector and its online recomputation. @default 0.999 */
    parityMinCosine: z.number().min(-1).max(1).default(0.999),
    /** Embed only rows changed between two snapshots; the index of this version is rebuilt over all its vectors. */
    incremental: IncrementalRange.optional(),
    /** Run every shard on one reserved GPU host (its warm model) instead of the shared GPU queue. @default false */
    pinToHost: z.boolean().default(false),
    /** Shards finished per run before continue-as-new. @default 200 */
    shardsPerRun: z.number().int().min(1).max(5000).default(200),
    /** Finished shards committed to Iceberg together. @default 16 */
    commitEvery: z.number().int().min(1).max(1000).default(16),
    /** A shard whose worker stops heartbeating this long is retried elsewhere. @default 30 */
    heartbeatTimeoutSeconds: z.number().int().min(2).max(3600).default(30),
    state: EmbeddingCarriedState.optional(),
  })
  .refine((i) => (i.textColumn === undefined) !== (i.imageUriColumn === undefined), {
    message: 'set exactly one of textColumn and imageUriColumn',
    path: ['textColumn'],
  })
  .refine((i) => i.incremental === undefined || i.source.kind === 'iceberg', {
    message: 'incremental mode needs an Iceberg source (it reads the rows written between two snapshots)',
    path: ['incremental'],
  })
  .refine((i) => i.source.kind !== 'parquet' || i.source.paths.length > 0 || i.source.prefix !== undefined, {
    message: 'a Parquet source needs paths or a prefix',
    path: ['source'],
  });
export type EmbeddingBackfillInput = z.infer<typeof EmbeddingBackfillInput>;

/** Business-key workflow id: one backfill per index and model version at a time. */
export function embeddingBackfillWorkflowId(input: Pick<EmbeddingBackfillInput, 'output' | 'model'>): string {
  return `embedding-backfill/${input.output.index}/${input.model.version}`;
}

/** Pause/resume signal names. */
export const EMBEDDING_SIGNALS = { pause: 'pause', resume: 'resume' } as const;

// ---- activity contracts ---------------------------------------------------------------------------------

/** Input of `planEmbeddingShards`. */
export const PlanShardsInput = z.strictObject({
  source: EmbeddingSource,
  idColumn: z.string(),
  textColumn: z.string().optional(),
  imageUriColumn: z.string().optional(),
  metadataColumns: z.array(z.string()),
  model: EmbeddingModel,
  output: EmbeddingOutput,
  shardSize: z.number().int().positive(),
  incremental: IncrementalRange.optional(),
  /** Names the run directory, so that a rerun of the same workflow id finds its finished shards. */
  runKey: z.string().min(1),
});
export type PlanShardsInput = z.infer<typeof PlanShardsInput>;

export interface PlanShardsResult {
  planUri: string;
  runRoot: string;
  indexRoot: string;
  shardCount: number;
  /** Upper bound of the items (rows before deletes and filters). */
  totalItems: number;
  sourceSnapshotId?: string;
  /** Shards whose output a previous run of this plan already wrote (skipped). */
  alreadyDone: number[];
  alreadyDoneItems: number;
  plannedAtMs: number;
}

export const EmbedShardInput = z.strictObject({
  planUri: StorageUri,
  shardIndex: z.number().int().nonnegative(),
  batchSize: z.number().int().positive(),
  /** Items per second for this shard. @default unlimited */
  rateLimit: z.number().positive().optional(),
});
export type EmbedShardInput = z.infer<typeof EmbedShardInput>;

/** Heartbeat details of `embedShard`: items of the shard done and persisted as parts. */
export const EmbedShardHeartbeat = z.strictObject({
  shardId: z.string(),
  offset: z.number().int().nonnegative(),
});
export type EmbedShardHeartbeat = z.infer<typeof EmbedShardHeartbeat>;

export interface EmbedShardResult {
  shardIndex: number;
  shardId: string;
  /** The shard's data file (deterministic path). */
  file: string;
  /** Vectors written. */
  vectors: number;
  quarantined: number;
  /** Where the offset started (0 on a first attempt). */
  resumedFrom: number;
  /** Parts an earlier attempt stored past its last recorded heartbeat, reused instead of recomputed. */
  reusedParts: number;
  /** Items this attempt computed. */
  computed: number;
  attempt: number;
  host: string;
  finishedAtMs: number;
  durationMs: number;
}

export const CommitShardsInput = z.strictObject({
  planUri: StorageUri,
  shardIndexes: z.array(z.number().int().nonnegative()),
});
export type CommitShardsInput = z.infer<typeof CommitShardsInput>;

export interface CommitShardsResult {
  /** Snapshot id of the commit, absent when every file was already in the table. */
  snapshotId?: string;
  added: number;
  alreadyCommitted: number;
}

export const PlanRef = z.strictObject({ planUri: StorageUri });
export type PlanRef = z.infer<typeof PlanRef>;

export const BuildIndexInput = z.strictObject({
  planUri: StorageUri,
  /** Names the build directory; one per workflow run, so a published build is never overwritten. */
  build: z.string().regex(/^[A-Za-z0-9._-]{1,80}$/),
  sampleSize: z.number().int().nonnegative(),
});
export type BuildIndexInput = z.infer<typeof BuildIndexInput>;

export interface BuildIndexResult {
  sampleUri: string;
  indexDir: string;
  version: string;
  vectors: number;
  dimensions: number;
}

export const CoverageInput = z.strictObject({ planUri: StorageUri, threshold: z.number().min(0).max(1) });
export type CoverageInput = z.infer<typeof CoverageInput>;
export interface CoverageResult {
  sourceRows: number;
  covered: number;
  share: number;
  passed: boolean;
  missingSample: string[];
}

export const CheckParityInput = z.strictObject({
  sampleUri: StorageUri,
  minCosine: z.number(),
  /** The online path's model. @default the model the sample was built with */
  model: EmbeddingModel.optional(),
});
export type CheckParityInput = z.infer<typeof CheckParityInput>;
export interface ParityResult {
  checked: number;
  minCosine: number;
  meanCosine: number;
  /** Model versions found in the sampled index entries; parity needs exactly the target one. */
  versions: string[];
  passed: boolean;
  worst?: { id: string; cosine: number };
}

export const FlipAliasInput = z.strictObject({
  indexRoot: StorageUri,
  index: IndexName,
  version: ModelVersion,
  indexDir: StorageUri,
  workflowId: z.string(),
});
export type FlipAliasInput = z.infer<typeof FlipAliasInput>;

export interface FlipAliasResult {
  generation: number;
  previousVersion?: string;
}

/** What the workflow returns. */
export interface EmbeddingBackfillResult {
  index: string;
  version: string;
  shards: number;
  vectors: number;
  quarantined: number;
  shardRetries: number;
  coverage: CoverageResult;
  parity?: ParityResult;
  indexDir: string;
  aliasGeneration: number;
  previousVersion?: string;
  runs: number;
}

export type EmbeddingPhase =
  'planning' | 'embedding' | 'paused' | 'committing' | 'indexing' | 'coverage' | 'parity' | 'publishing' | 'done';

/** The `progress` query of the backfill: the shared shape plus rates. */
export const EmbeddingProgress = Progress.extend({
  shardsDone: z.number().int(),
  shardsTotal: z.number().int(),
  itemsPerSecond: z.number(),
  etaSeconds: z.number().optional(),
  quarantined: z.number().int(),
  paused: z.boolean(),
  runs: z.number().int(),
});
export type EmbeddingProgress = z.infer<typeof EmbeddingProgress>;
