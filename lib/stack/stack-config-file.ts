import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { StackConfig } from '../../schemas/stack-config.js';
import { InputValidationError, parseOrThrow } from '../../schemas/validation.js';

/**
 * Reads and validates `temporal-dev.yml`. A YAML syntax error names the line; a schema error names each field path
 * and what is wrong with it.
 */
export function loadStackConfig(file: string): StackConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the stack description ${file}: ${(err as Error).message}`);
  }
  return parseStackConfig(text, file);
}

/** Parses stack YAML text; `file` only labels errors. */
export function parseStackConfig(text: string, file = 'temporal-dev.yml'): StackConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new InputValidationError(
      file,
      doc.errors.map((e) => ({
        path: `line ${e.linePos?.[0]?.line ?? '?'}`,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  return parseOrThrow(StackConfig, doc.toJS() ?? {}, file);
}
