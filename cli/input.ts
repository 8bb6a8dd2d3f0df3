import { existsSync, readFileSync } from 'node:fs';

/** Reads `--input`: inline JSON, or a path to a JSON file. */
export function readInputArgument(value: string | undefined): unknown {
  if (value === undefined) return {};
  const trimmed = value.trim();
  const fromFile = !trimmed.startsWith('{') && !trimmed.startsWith('[') && existsSync(value);
  const text = fromFile ? readFileSync(value, 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(
      `--input ${fromFile ? `file ${value}` : 'value'} is not valid JSON (${(err as Error).message}); pass a JSON object or a path to a .json file`,
    );
  }
}
