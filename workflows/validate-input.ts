import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { InputValidationError, parseOrThrow } from '../schemas/validation.js';

/**
 * Validates a workflow input inside the workflow, for starts that bypass the typed client (the Temporal UI, the
 * `temporal` CLI, another SDK). A bad input fails the run at once with a non-retryable `InvalidInput` naming every
 * field, instead of failing the workflow task over and over.
 */
export function parseWorkflowInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  try {
    return parseOrThrow(schema, input, what);
  } catch (err) {
    if (err instanceof InputValidationError) {
      throw ApplicationFailure.create({
        type: 'InvalidInput',
        nonRetryable: true,
        message: err.message,
        details: [err.problems],
      });
    }
    throw err;
  }
}
