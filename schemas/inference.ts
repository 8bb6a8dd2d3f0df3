import { z } from 'zod';

/**
 * Inputs and results of the inference activities on the GPU pool (activities/inference-activities.ts). Small,
 * online calls only: a backfill passes URIs to its shard activity instead of items.
 */

/** A model directory on the GPU hosts and the version it must hold. */
export const InferenceModelRef = z.strictObject({
  path: z.string().min(1),
  version: z.string().min(1).max(64),
});

/** Most items one `embedBatch` call takes: it is for online lookups, not bulk work. */
export const EMBED_BATCH_MAX_ITEMS = 1024;

export const EmbedBatchInput = z
  .strictObject({
    model: InferenceModelRef,
    /** Texts to embed (a text model). */
    texts: z.array(z.string().max(100_000)).max(EMBED_BATCH_MAX_ITEMS).optional(),
    /** Image files to embed (an image model): absolute paths or file:// URIs readable on the GPU host. */
    imagePaths: z.array(z.string().min(1)).max(EMBED_BATCH_MAX_ITEMS).optional(),
  })
  .refine((i) => (i.texts === undefined) !== (i.imagePaths === undefined), {
    message: 'set exactly one of texts and imagePaths',
    path: ['texts'],
  });
export type EmbedBatchInput = z.input<typeof EmbedBatchInput>;

/** An item the model could not take, with the reason (for quarantine). */
export const RejectedItem = z.object({
  index: z.number().int().nonnegative(),
  kind: z.string(),
  reason: z.string(),
});
export type RejectedItem = z.infer<typeof RejectedItem>;

export const EmbedBatchResult = z.object({
  model: z.string(),
  version: z.string(),
  /** The provider the model really ran on. */
  provider: z.enum(['cpu', 'cuda']),
  host: z.string(),
  dimensions: z.number().int(),
  /** One vector per item, `null` where the item was rejected. */
  vectors: z.array(z.array(z.number()).nullable()),
  rejected: z.array(RejectedItem),
});
export type EmbedBatchResult = z.infer<typeof EmbedBatchResult>;

/** What `inferenceStatus` reports about a GPU worker's engine. */
export const InferenceStatusResult = z.object({
  host: z.string(),
  pid: z.number().int(),
  requestedProvider: z.string(),
  activeProvider: z.enum(['cpu', 'cuda']),
  cudaAvailable: z.boolean(),
  detail: z.string(),
  models: z.array(
    z.object({
      model: z.string(),
      version: z.string(),
      provider: z.enum(['cpu', 'cuda']),
      batches: z.number().int(),
      items: z.number().int(),
      rejectedItems: z.number().int(),
      meanBatchSize: z.number(),
    }),
  ),
});
export type InferenceStatusResult = z.infer<typeof InferenceStatusResult>;
