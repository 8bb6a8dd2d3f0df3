import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  InferenceItemError,
  detectProviders,
  type EmbedOutcome,
  type InferencePool,
  type ModelRef,
  type ProviderDetection,
} from '../lib/inference/index.js';
import { EmbedBatchInput, type EmbedBatchResult, type InferenceStatusResult } from '../schemas/inference.js';
import { toActivityFailure, validateActivityInput } from './failures.js';

/** What the inference activities need: the worker's session pool and who it is. */
export interface InferenceActivityDeps {
  /** The GPU worker's pool; shared by every activity of the process so that batches coalesce. */
  pool: InferencePool;
  /** This host's name, echoed in results. */
  host: string;
}

function pathOf(uriOrPath: string): string {
  return uriOrPath.startsWith('file://') ? fileURLToPath(uriOrPath) : uriOrPath;
}

/** Reads and embeds image files; a file that cannot be read is rejected like an undecodable image. */
async function embedImageFiles(
  pool: InferencePool,
  model: ModelRef,
  paths: readonly string[],
): Promise<EmbedOutcome[]> {
  const read = await Promise.all(
    paths.map((p, index) =>
      readFile(pathOf(p)).then(
        (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
        (err: Error) =>
          new InferenceItemError('undecodable-image', index, `item #${index}: cannot read ${p}: ${err.message}`),
      ),
    ),
  );
  const good = read.flatMap((r, i) => (r instanceof Uint8Array ? [i] : []));
  const embedded = await pool.embedImagesSettled(
    model,
    good.map((i) => read[i] as Uint8Array),
  );
  const outcomes = read.map((r): EmbedOutcome =>
    r instanceof Uint8Array ? { ok: true, vector: new Float32Array() } : { ok: false, error: r },
  );
  good.forEach((i, k) => {
    const o = embedded[k]!;
    outcomes[i] = o.ok
      ? o
      : { ok: false, error: new InferenceItemError(o.error.kind, i, o.error.message.replace(`#${k}`, `#${i}`)) };
  });
  return outcomes;
}

/**
 * Activities of the GPU pool's inference engine. `embedBatch` serves small online calls (and the parity check of a
 * backfill); bulk work goes through the backfill's shard activity, which uses the same pool.
 */
export function createInferenceActivities(deps: InferenceActivityDeps) {
  let detection: Promise<ProviderDetection> | undefined;
  return {
    /**
     * Embeds a few texts or image files with a model on this host. Items the model cannot take (over-long text,
     * undecodable image) come back in `rejected` with a null vector; they do not fail the call. A missing model,
     * a version mismatch or a model whose tensors do not fit is a non-retryable typed failure.
     */
    async embedBatch(input: EmbedBatchInput): Promise<EmbedBatchResult> {
      const parsed = validateActivityInput(EmbedBatchInput, input, 'embedBatch input');
      try {
        const loaded = await deps.pool.load(parsed.model);
        let outcomes: EmbedOutcome[];
        if (parsed.texts) outcomes = await deps.pool.embedTextsSettled(parsed.model, parsed.texts);
        else outcomes = await embedImageFiles(deps.pool, parsed.model, parsed.imagePaths!);
        return {
          model: loaded.manifest.name,
          version: loaded.manifest.version,
          provider: loaded.provider,
          host: deps.host,
          dimensions: loaded.dimensions,
          vectors: outcomes.map((o) => (o.ok ? Array.from(o.vector) : null)),
          rejected: outcomes.flatMap((o, index) =>
            o.ok ? [] : [{ index, kind: o.error.kind, reason: o.error.message }],
          ),
        };
      } catch (err) {
        throw toActivityFailure(err);
      }
    },

    /** The engine's state on this host: requested and active provider, and per-model counters. */
    async inferenceStatus(): Promise<InferenceStatusResult> {
      const stats = deps.pool.stats();
      detection ??= detectProviders(stats.requestedProvider);
      const d = await detection;
      return {
        host: deps.host,
        pid: process.pid,
        requestedProvider: d.requested,
        activeProvider: d.active,
        cudaAvailable: d.cudaAvailable,
        detail: d.detail,
        models: stats.models.map((m) => ({
          model: m.model,
          version: m.version,
          provider: m.provider,
          batches: m.batches,
          items: m.items,
          rejectedItems: m.rejectedItems,
          meanBatchSize: m.meanBatchSize,
        })),
      };
    },
  };
}

export type InferenceActivities = ReturnType<typeof createInferenceActivities>;
