import type { ErrorType } from '../../schemas/error-types.js';

/**
 * Every kind of error the storage layer throws. Activities switch over this list exhaustively to pick the
 * `ApplicationFailure` type, so a new kind cannot be forgotten.
 */
export const STORAGE_ERROR_KINDS = {
  /** The file (object) or its bucket does not exist. */
  'file-not-found': 'NotFound',
  /** A URI is malformed or uses a scheme no configured FileIO handles. */
  'invalid-uri': 'InvalidInput',
  /** The store refused the request (credentials, bucket policy, file permissions). */
  'access-denied': 'PolicyDenied',
  /** The store did not answer or answered with a server error; retrying may help. */
  'storage-unavailable': 'ServiceUnavailable',
} as const satisfies Record<string, ErrorType>;

/** One of {@link STORAGE_ERROR_KINDS}. */
export type StorageErrorKind = keyof typeof STORAGE_ERROR_KINDS;

/** Base class of every error the storage layer throws on purpose. */
export abstract class StorageError extends Error {
  /** Which kind of problem this is; stable, for `switch` statements. */
  abstract readonly kind: StorageErrorKind;

  constructor(
    /** The URI (or URI prefix) the failed operation was about. */
    readonly uri: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** The shared failure type an activity should report for this error. */
  get failureType(): ErrorType {
    return STORAGE_ERROR_KINDS[this.kind];
  }
}

/** Whether `err` is one of the storage layer's typed errors. */
export function isStorageError(err: unknown): err is StorageError {
  return err instanceof StorageError;
}

/** The file, or the bucket it would live in, does not exist. */
export class FileNotFoundError extends StorageError {
  readonly kind = 'file-not-found';
  override readonly name = 'FileNotFoundError';

  constructor(uri: string, detail = 'no such file', options?: ErrorOptions) {
    super(uri, `"${uri}" does not exist (${detail}); check the path, or whether something deleted it`, options);
  }
}

/** A URI is malformed, or its scheme has no FileIO configured. */
export class InvalidUriError extends StorageError {
  readonly kind = 'invalid-uri';
  override readonly name = 'InvalidUriError';

  constructor(
    uri: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
  ) {
    super(uri, `invalid storage URI "${uri}": ${problem}`);
  }
}

/** The store refused the request. */
export class StorageAccessDeniedError extends StorageError {
  readonly kind = 'access-denied';
  override readonly name = 'StorageAccessDeniedError';

  constructor(uri: string, operation: string, detail: string, options?: ErrorOptions) {
    super(
      uri,
      `${operation} "${uri}" was refused (${detail}); check the credentials, the bucket policy or the file permissions`,
      options,
    );
  }
}

/** The store did not answer or failed on its side; the operation may succeed when retried. */
export class StorageUnavailableError extends StorageError {
  readonly kind = 'storage-unavailable';
  override readonly name = 'StorageUnavailableError';

  constructor(uri: string, operation: string, detail: string, options?: ErrorOptions) {
    super(
      uri,
      `${operation} "${uri}" failed (${detail}); the store did not answer or had an error — retry, and check the ` +
        'endpoint if it persists',
      options,
    );
  }
}
