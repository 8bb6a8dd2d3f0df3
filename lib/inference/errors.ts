import type { ErrorType } from '../../schemas/error-types.js';

/**
 * Every kind of error the inference engine throws on purpose, with the shared failure type an activity reports for
 * it. Per-item kinds (`text-too-long`, `undecodable-image`, `empty-text`) never fail a batch: the pool returns them in
 * the item's slot so that the caller can quarantine the item and go on.
 */
export const INFERENCE_ERROR_KINDS = {
  /** A text has more tokens than the model's `maxTokens` and the manifest says `overLength: "error"`. */
  'text-too-long': 'ItemRejected',
  /** An image's bytes are not a decodable PNG/JPEG/WebP/… image. */
  'undecodable-image': 'ItemRejected',
  /** A text is empty (or only whitespace), so it has no tokens to pool. */
  'empty-text': 'ItemRejected',
  /** The model's inputs or outputs do not match the manifest, or ONNX Runtime refused the tensors built for it. */
  'model-input-mismatch': 'ModelInputMismatch',
  /** The model directory, its manifest, or a file the manifest names is missing. */
  'model-not-found': 'NotFound',
  /** The manifest is not valid JSON or does not follow the `sluice-model.json` schema. */
  'invalid-manifest': 'InvalidConfig',
  /** The caller asked for version X but the directory holds another version. */
  'model-version-mismatch': 'InvalidInput',
  /** A text model was asked to embed images, or the other way round. */
  'wrong-model-kind': 'InvalidInput',
  /** The requested execution provider cannot be loaded or cannot create a session on this host. */
  'provider-unavailable': 'ProviderUnavailable',
  /** The pool was closed while the request waited. */
  'pool-closed': 'ServiceUnavailable',
} as const satisfies Record<string, ErrorType>;

/** One of {@link INFERENCE_ERROR_KINDS}. */
export type InferenceErrorKind = keyof typeof INFERENCE_ERROR_KINDS;

/** Base class of every error the inference engine throws on purpose. */
export class InferenceError extends Error {
  override readonly name: string = 'InferenceError';

  constructor(
    /** Which kind of problem this is; stable, for `switch` statements. */
    readonly kind: InferenceErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The shared failure type an activity should report for this error. */
  get failureType(): ErrorType {
    return INFERENCE_ERROR_KINDS[this.kind];
  }
}

/** The kinds that concern one item only; the rest of its batch is embedded. */
export type ItemErrorKind = 'text-too-long' | 'undecodable-image' | 'empty-text';

/** A problem with one input item: its index in the caller's array, and why it was rejected. */
export class InferenceItemError extends InferenceError {
  override readonly name = 'InferenceItemError';

  constructor(
    override readonly kind: ItemErrorKind,
    /** Position of the item in the array the caller passed. */
    readonly index: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(kind, message, options);
  }
}

/**
 * Thrown by the strict `embedTexts`/`embedImages` when some items were rejected. Use the `*Settled` variants to get
 * the good vectors and the per-item errors side by side.
 */
export class ItemsRejectedError extends InferenceError {
  override readonly name = 'ItemsRejectedError';

  constructor(readonly items: readonly InferenceItemError[]) {
    const first = items[0];
    super(
      first?.kind ?? 'text-too-long',
      `${items.length} item(s) rejected; first: #${first?.index}: ${first?.message}; ` +
        'use embedTextsSettled/embedImagesSettled to embed the rest and quarantine these',
    );
  }
}

/** Whether `err` is one of the engine's typed errors. */
export function isInferenceError(err: unknown): err is InferenceError {
  return err instanceof InferenceError;
}
