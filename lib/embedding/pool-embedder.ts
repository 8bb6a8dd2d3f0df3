import type { InferencePool } from '../inference/index.js';
import type { Embedder } from './backfill.js';

/**
 * The inference pool as the backfill's {@link Embedder}. Texts take the pool's batch path (`embedTextBatch`: one
 * Float32Array per call, each vector a view of it); a rejected item (too long, empty, undecodable) comes back as its
 * kind and message for the quarantine while the rest of the batch is embedded.
 */
export function poolEmbedder(pool: InferencePool): Embedder {
  return {
    async embedTexts(model, texts) {
      const out = await pool.embedTextBatch(model, texts);
      const d = out.dimensions;
      const outcomes = new Array<Float32Array | { error: { kind: string; message: string } }>(out.count);
      for (const e of out.rejected) outcomes[e.index] = { error: { kind: e.kind, message: e.message } };
      for (let i = 0; i < out.count; i++) outcomes[i] ??= out.vectors.subarray(i * d, (i + 1) * d);
      return outcomes;
    },
    async embedImages(model, images) {
      return (await pool.embedImagesSettled(model, images)).map((o) =>
        o.ok ? o.vector : { error: { kind: o.error.kind, message: o.error.message } },
      );
    },
  };
}
