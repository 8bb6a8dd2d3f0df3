import type { ErrorType } from '../../schemas/error-types.js';

/**
 * Every kind of error the embedding engine throws, with the shared failure type an activity reports for it.
 */
export const EMBEDDING_ERROR_KINDS = {
  /** A source, column, model or option is unusable as given. */
  'invalid-option': 'InvalidInput',
  /** A plan, part or index file cannot be parsed. */
  'corrupt-file': 'Corrupt',
  /** The alias changed under a compare-and-swap too many times. */
  'alias-conflict': 'CommitConflict',
  /** An index, alias or version does not exist. */
  'not-found': 'NotFound',
  /** A quality gate (coverage, parity) refused to publish the version. */
  'gate-failed': 'QualityGateFailed',
} as const satisfies Record<string, ErrorType>;

export type EmbeddingErrorKind = keyof typeof EMBEDDING_ERROR_KINDS;

/** An error of the embedding engine; `failureType` is what an activity reports. */
export class EmbeddingError extends Error {
  override readonly name = 'EmbeddingError';
  readonly failureType: ErrorType;
  constructor(
    readonly kind: EmbeddingErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.failureType = EMBEDDING_ERROR_KINDS[kind];
  }
}
