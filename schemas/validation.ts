import type { z } from 'zod';

/** One problem in an input, with the path of the field it concerns. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** Renders a zod path the way a user writes it: `workers.gpu.hosts[1].slots`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

/** Flattens a zod error into field problems, each naming the field and what is wrong. */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/** Thrown when an input fails its schema; the message lists every problem with its field path. */
export class InputValidationError extends Error {
  override readonly name = 'InputValidationError';
  constructor(
    readonly what: string,
    readonly problems: FieldProblem[],
  ) {
    super(`${what} is invalid:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
  }
}

/** Parses `value` with `schema`, or throws an {@link InputValidationError} that names `what`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InputValidationError(what, fieldProblems(result.error));
  return result.data;
}
