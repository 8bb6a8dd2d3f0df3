/**
 * The inference engine: ONNX Runtime sessions keyed by (model, version, provider), text and image preprocessing,
 * dynamic batching, and the check of which execution provider is really active. No Temporal here; activities wrap
 * it (activities/inference-activities.ts). See docs/inference.md.
 */
export {
  InferencePool,
  outcomesOf,
  type BatchEvent,
  type EmbeddingBatch,
  type EmbedOutcome,
  type InferenceOptions,
  type InferenceStats,
  type LoadedModel,
  type ModelRef,
  type ModelStats,
} from './pool.js';
export { detectProviders, type ProviderDetection, type ProviderName, type ProviderRequest } from './providers.js';
export { MANIFEST_FILE, ModelManifest, readManifest, type ModelManifestInput } from './manifest.js';
export {
  INFERENCE_ERROR_KINDS,
  InferenceError,
  InferenceItemError,
  ItemsRejectedError,
  isInferenceError,
  type InferenceErrorKind,
  type ItemErrorKind,
} from './errors.js';
export { DynamicBatcher, type BatcherOptions } from './batcher.js';
export { type PackedTokens } from './text-preprocess.js';
export { bundledModels, MODELS_DIR, type BundledModels } from './bundled-models.js';
