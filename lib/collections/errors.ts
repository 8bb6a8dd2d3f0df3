import type { ErrorType } from '../../schemas/error-types.js';

/** Every kind of error the collections engine throws, with the shared failure type an activity reports for it. */
export const COLLECTIONS_ERROR_KINDS = {
  /** An option, column, threshold or endpoint setting is unusable as given. */
  'invalid-option': 'InvalidInput',
  /** A stored run file (sample, extractions, vocabulary, candidates) cannot be parsed. */
  'corrupt-file': 'Corrupt',
  /** A table, index, alias or run file does not exist. */
  'not-found': 'NotFound',
  /** The VLM endpoint timed out, answered 5xx or 429, or the connection failed: retry with backoff. */
  'vlm-unavailable': 'ServiceUnavailable',
  /** One item's request was refused (4xx, refusal, malformed after repair): quarantine the item, go on. */
  'item-rejected': 'ItemRejected',
  /** The VLM endpoint refuses every request (401/403/404 on the endpoint itself): the configuration is wrong. */
  'vlm-misconfigured': 'InvalidConfig',
  /** The run's VLM budget is spent. */
  'budget-exhausted': 'BudgetExceeded',
  /** The quality gate (precision@10, recall@10) refused to publish. */
  'gate-failed': 'QualityGateFailed',
  /** The operator rejected the proposed vocabulary. */
  'vocabulary-rejected': 'PolicyDenied',
  /** The collections alias moved under a compare-and-swap too many times. */
  'alias-conflict': 'CommitConflict',
} as const satisfies Record<string, ErrorType>;

export type CollectionsErrorKind = keyof typeof COLLECTIONS_ERROR_KINDS;

/** An error of the collections engine; `failureType` is what an activity reports. */
export class CollectionsError extends Error {
  override readonly name = 'CollectionsError';
  readonly failureType: ErrorType;
  constructor(
    readonly kind: CollectionsErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.failureType = COLLECTIONS_ERROR_KINDS[kind];
  }
}
