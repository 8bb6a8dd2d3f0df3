import type { FileIO } from '../storage/file-io.js';
import { readAlias, type AliasRecord } from './alias-store.js';
import type { Embedder } from './backfill.js';
import { EmbeddingError } from './errors.js';
import { LoadedIndex, type SearchHit } from './index-store.js';

/** Options of {@link searchCurrentIndex}. */
export interface SearchOptions {
  /** The query text, embedded with the model the current version was built with. */
  text: string;
  /** @default 10 */
  k?: number;
  /** Metadata equality filters, `{ tier: 'gold' }`. @default none */
  filter?: Readonly<Record<string, string>>;
}

/**
 * Searches `<index>@current`: resolves the alias, loads that build, embeds the query with the build's own model and
 * version (so the query and the index never mix versions), and returns the nearest entries that match the filter.
 */
export async function searchCurrentIndex(
  io: FileIO,
  root: string,
  index: string,
  embedder: Embedder,
  opts: SearchOptions,
): Promise<{ alias: AliasRecord; hits: SearchHit[] }> {
  const alias = await readAlias(io, root, index);
  if (!alias)
    throw new EmbeddingError('not-found', `index ${index} has no current version under ${root}; run a backfill first`);
  const loaded = await LoadedIndex.load(io, alias.indexDir);
  const [outcome] = await embedder.embedTexts(loaded.manifest.model, [opts.text]);
  if (!(outcome instanceof Float32Array)) {
    throw new EmbeddingError(
      'invalid-option',
      `the query cannot be embedded: ${outcome?.error.message ?? 'no result'}`,
    );
  }
  return { alias, hits: loaded.search(outcome, opts.k ?? 10, opts.filter ?? {}) };
}

/** Parses `col=value` filter options. */
export function parseFilters(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new EmbeddingError('invalid-option', `filter "${pair}" is not col=value`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}
