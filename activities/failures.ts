import { ApplicationFailure } from '@temporalio/activity';
import { ERROR_TYPES, type ErrorType } from '../schemas/error-types.js';
import { InputValidationError, parseOrThrow } from '../schemas/validation.js';
import type { z } from 'zod';

/** An `ApplicationFailure` whose type comes from the shared list and whose retryability follows it. */
export function typedFailure(type: ErrorType, message: string, ...details: unknown[]): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: !ERROR_TYPES[type].retryable, details });
}

/**
 * Validates an activity input on entry. A bad input is a permanent `InvalidInput` failure naming every field, so
 * the workflow sees it at once instead of after a retry storm.
 */
export function validateActivityInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  try {
    return parseOrThrow(schema, value, what);
  } catch (err) {
    if (err instanceof InputValidationError) throw typedFailure('InvalidInput', err.message, err.problems);
    throw err;
  }
}

/** An engine error: every typed error of lib/iceberg, lib/iceberg/catalog and lib/storage carries these. */
interface EngineError extends Error {
  readonly kind: string;
  readonly failureType: ErrorType;
}

function isEngineError(err: unknown): err is EngineError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<EngineError>;
  return typeof e.kind === 'string' && typeof e.failureType === 'string' && e.failureType in ERROR_TYPES;
}

/**
 * Maps an engine error to the `ApplicationFailure` an activity throws: its shared `type`, retryability from
 * {@link ERROR_TYPES}, and the engine's `kind` as a detail. Anything else is returned unchanged so that the retry
 * policy treats it as transient.
 */
export function toActivityFailure(err: unknown): unknown {
  if (!isEngineError(err)) return err;
  return typedFailure(err.failureType, err.message, { kind: err.kind });
}
