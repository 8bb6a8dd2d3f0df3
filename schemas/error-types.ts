/**
 * The single, exhaustive list of failure types. Every permanent failure that crosses an activity or workflow
 * boundary is an `ApplicationFailure` whose `type` is one of these. `retryable` says what the retry policy should
 * do with it; activities pick `nonRetryable` from here, never ad hoc.
 */
export const ERROR_TYPES = {
  /** An input failed its schema or a semantic check. Retrying cannot help; fix the input. */
  InvalidInput: { retryable: false, summary: 'input failed validation' },
  /** A configuration file or environment variable is wrong. */
  InvalidConfig: { retryable: false, summary: 'configuration is invalid' },
  /** A named thing (table, schedule, file, model) does not exist. */
  NotFound: { retryable: false, summary: 'a named resource does not exist' },
  /** A stored file or record cannot be parsed. */
  Corrupt: { retryable: false, summary: 'stored data is corrupt' },
  /** A compare-and-swap lost too many times; the caller may start over. */
  CommitConflict: { retryable: true, summary: 'a concurrent commit won; retry later' },
  /** A pinned host stopped taking tasks; the workflow reserves another host. */
  HostUnavailable: { retryable: true, summary: 'the pinned host is gone' },
  /** A dependency (database, object store, server) did not answer. */
  ServiceUnavailable: { retryable: true, summary: 'a dependency did not answer' },
  /** A job ran out of memory; the caller may retry with more. */
  OutOfMemory: { retryable: false, summary: 'the job ran out of memory' },
  /** The request is valid but Sluice does not support it. */
  Unsupported: { retryable: false, summary: 'not supported' },
  /** A policy (quota, approval, authorization) refused the request. */
  PolicyDenied: { retryable: false, summary: 'a policy refused the request' },
  /** A run would spend more than its cost budget (GB·h, vcore·h or money); it stopped before the next attempt. */
  BudgetExceeded: { retryable: false, summary: 'the run would exceed its cost budget' },
  /** The job's own code failed (an exception, a bad input); resizing cannot fix it. */
  UserCodeError: { retryable: false, summary: "the job's own code failed" },
  /** A publish gate (coverage, parity) found the output unfit; nothing was published. */
  QualityGateFailed: { retryable: false, summary: 'a quality gate refused to publish' },
  /** One item cannot be embedded (over-long text, undecodable image); it goes to quarantine, the rest go on. */
  ItemRejected: { retryable: false, summary: 'an item cannot be processed; quarantine it' },
  /** A model's tensors do not match its manifest or the input built for it (names, shapes, types). */
  ModelInputMismatch: { retryable: false, summary: 'a model input or output does not match' },
  /** The requested ONNX Runtime execution provider (e.g. CUDA) cannot run on this host. */
  ProviderUnavailable: { retryable: false, summary: 'the execution provider is not available here' },
} as const satisfies Record<string, { retryable: boolean; summary: string }>;

export type ErrorType = keyof typeof ERROR_TYPES;

/** All error type names, for documentation and for `doctor`. */
export const ERROR_TYPE_NAMES = Object.keys(ERROR_TYPES) as ErrorType[];

/** Whether a failure of this type should be retried by the activity retry policy. */
export function isRetryable(type: ErrorType): boolean {
  return ERROR_TYPES[type].retryable;
}

/** Compile-time exhaustiveness guard for `switch` statements over {@link ErrorType} and other unions. */
export function assertNever(value: never, what = 'value'): never {
  throw new TypeError(`unhandled ${what}: ${JSON.stringify(value)}`);
}
