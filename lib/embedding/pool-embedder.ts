import type { InferencePool } from '../inference/index.js';
import type { Embedder } from './backfill.js';

/**
 * The inference pool as the backfill's {@link Embedder}: the `*Settled` calls, so that a rejected item (too long,
 * empty, undecodable) comes back as its kind and message for the quarantine while the rest of the batch is embedded.
 */
export function poolEmbedder(pool: InferencePool): Embedder {
  return {
    async embedTexts(model, texts) {
      return (await pool.embedTextsSettled(model, texts)).map((o) =>
        o.ok ? o.vector : { error: { kind: o.error.kind, message: o.error.message } },
      );
    },
    async embedImages(model, images) {
      return (await pool.embedImagesSettled(model, images)).map((o) =>
        o.ok ? o.vector : { error: { kind: o.error.kind, message: o.error.message } },
      );
    },
  };
}
