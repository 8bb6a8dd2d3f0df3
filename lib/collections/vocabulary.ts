import { cosine } from '../embedding/index-store.js';
import type { VocabularyReview } from '../../schemas/collections.js';
import { CollectionsError } from './errors.js';
import {
  collectionId,
  normaliseAttribute,
  type Attributes,
  type CollectionDef,
  type ExtractionRecord,
  type Vocabulary,
} from './types.js';

/** The judge's verdict on one proposed collection. */
export interface JudgeVerdict {
  keep: boolean;
  reason?: string;
}

/** Options of {@link proposeVocabulary}. */
export interface ProposeVocabularyOptions {
  /** The sample's extractions (one per item; a later record of the same item replaces an earlier one). */
  extractions: readonly ExtractionRecord[];
  /** The configured keys, in order: collection names list their values in this order; other keys are ignored. */
  keys: readonly string[];
  /** The dual encoder's text tower. */
  embedTexts(texts: readonly string[]): Promise<Float32Array[]>;
  /** Search queries with their counts. @default none */
  demand?: readonly { query: string; count: number }[];
  /** A value must be carried by at least this share of the sampled items. */
  minValueShare: number;
  /** A collection must be carried by at least this many sampled items. */
  minSupport: number;
  /** Values per collection: every size from 1 to this. */
  maxAttributes: number;
  /** Cosine at or above which two phrases of one key are merged (and a query word maps to a value). */
  mergeCosine: number;
  maxCollections: number;
  /** Optional LLM-as-judge pass over the kept collections; a collection it does not keep is dropped. */
  judge?: (collections: CollectionDef[]) => Promise<Map<string, JudgeVerdict>>;
  /** Texts embedded per call. @default 256 */
  embedBatchSize?: number;
  /**
   * A token that means nothing. Phrases whose embedding is within `mergeCosine` of its embedding carry nothing the
   * text tower knows (with the generated dual encoder every unknown word embeds alike): they are never merged with
   * another phrase, and a query word like that maps to no value. @default 'zzqxv'
   */
  nullPhrase?: string;
}

interface ValueCluster {
  canonical: string;
  count: number;
  merged: string[];
  vector: Float32Array;
  /** The tower cannot tell the canonical phrase from a meaningless token. */
  meaningless: boolean;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function embedAll(
  embed: (texts: readonly string[]) => Promise<Float32Array[]>,
  texts: readonly string[],
  batchSize: number,
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const unique = [...new Set(texts)];
  for (let i = 0; i < unique.length; i += batchSize) {
    const chunk = unique.slice(i, i + batchSize);
    const vectors = await embed(chunk);
    if (vectors.length !== chunk.length)
      throw new CollectionsError(
        'invalid-option',
        `the text tower returned ${vectors.length} vectors for ${chunk.length} texts`,
      );
    chunk.forEach((t, j) => out.set(t, vectors[j]!));
  }
  return out;
}

function checkOptions(o: ProposeVocabularyOptions): void {
  const bad = (what: string, value: unknown, want: string) =>
    new CollectionsError('invalid-option', `vocabulary option ${what} must be ${want}, got ${String(value)}`);
  if (!(o.minValueShare >= 0 && o.minValueShare <= 1)) throw bad('minValueShare', o.minValueShare, 'within [0, 1]');
  if (!(Number.isInteger(o.minSupport) && o.minSupport >= 1)) throw bad('minSupport', o.minSupport, 'an integer ≥ 1');
  if (!(Number.isInteger(o.maxAttributes) && o.maxAttributes >= 1))
    throw bad('maxAttributes', o.maxAttributes, 'an integer ≥ 1');
  if (!(o.mergeCosine >= -1 && o.mergeCosine <= 1)) throw bad('mergeCosine', o.mergeCosine, 'within [-1, 1]');
  if (!(Number.isInteger(o.maxCollections) && o.maxCollections >= 1))
    throw bad('maxCollections', o.maxCollections, 'an integer ≥ 1');
  if (o.keys.length === 0) throw bad('keys', '[]', 'a non-empty list');
}

/** Every subset of `pairs` (in their order) with 1 to `max` elements. */
function subsets<T>(pairs: readonly T[], max: number): T[][] {
  const out: T[][] = [];
  const walk = (from: number, current: T[]) => {
    for (let i = from; i < pairs.length; i++) {
      const next = [...current, pairs[i]!];
      out.push(next);
      if (next.length < max) walk(i + 1, next);
    }
  };
  walk(0, []);
  return out;
}

/**
 * Proposes the vocabulary from the sample's extractions (docs/collections.md, "Synthetic catalog, sampling and
 * vocabulary"):
 *
 * 1. per key, counts the raw values, then merges near-duplicates: phrases in order of frequency, each joins the
 *    first canonical (more frequent) phrase whose text-tower cosine is ≥ `mergeCosine`, else becomes a canonical;
 * 2. drops canonical values carried by fewer than `minValueShare` of the sampled items (`rare`): this removes the
 *    extractor's occasional wrong or invented answers;
 * 3. proposes every combination of 1..`maxAttributes` kept values of distinct keys carried together by at least
 *    `minSupport` sampled items (`low-support` otherwise); id from `collectionId`, name = values in key order;
 * 4. sums the counts of demand queries whose words, mapped to kept values (exact phrases first, else each word's
 *    nearest canonical by text-tower cosine ≥ `mergeCosine`; other words are ignored), are exactly a collection's
 *    values;
 * 5. ranks by demand, then support, then fewer attributes, then id, and keeps `maxCollections` (`over-limit`);
 * 6. drops what the optional judge rejects (`judge-rejected`, or `judge-rejected: <reason>`).
 */
export async function proposeVocabulary(options: ProposeVocabularyOptions): Promise<Vocabulary> {
  checkOptions(options);
  const batchSize = options.embedBatchSize ?? 256;
  const keys = [...new Set(options.keys.map(normaliseAttribute))];
  const keySet = new Set(keys);

  // One set of attributes per item; raw values normalised.
  const items = new Map<string, Attributes>();
  for (const record of options.extractions) {
    const attrs: Attributes = {};
    for (const [k, v] of Object.entries(record.attributes)) {
      const key = normaliseAttribute(k);
      const value = normaliseAttribute(v);
      if (keySet.has(key) && value !== '') attrs[key] = value;
    }
    items.set(record.itemId, attrs);
  }
  const sampleSize = items.size;

  // (a) raw counts per key, clustered by text-tower cosine.
  const rawCounts = new Map<string, Map<string, number>>(keys.map((k) => [k, new Map()]));
  for (const attrs of items.values())
    for (const [k, v] of Object.entries(attrs)) rawCounts.get(k)!.set(v, (rawCounts.get(k)!.get(v) ?? 0) + 1);
  const nullPhrase = options.nullPhrase ?? 'zzqxv';
  const vectors = await embedAll(
    options.embedTexts,
    [nullPhrase, ...[...rawCounts.values()].flatMap((m) => [...m.keys()])],
    batchSize,
  );
  const nullVector = vectors.get(nullPhrase)!;
  const meaningless = (v: Float32Array) => cosine(v, nullVector) >= options.mergeCosine;
  const clusters = new Map<string, ValueCluster[]>();
  /** key → raw value → its cluster. */
  const clusterOf = new Map<string, Map<string, ValueCluster>>();
  for (const key of keys) {
    const ordered = [...rawCounts.get(key)!.entries()].sort((a, b) => b[1] - a[1] || compareStrings(a[0], b[0]));
    const list: ValueCluster[] = [];
    const byRaw = new Map<string, ValueCluster>();
    for (const [value, count] of ordered) {
      const vector = vectors.get(value)!;
      const home = meaningless(vector)
        ? undefined
        : list.find((c) => !c.meaningless && cosine(c.vector, vector) >= options.mergeCosine);
      if (home === undefined) {
        const cluster = { canonical: value, count, merged: [], vector, meaningless: meaningless(vector) };
        list.push(cluster);
        byRaw.set(value, cluster);
      } else {
        home.count += count;
        home.merged.push(value);
        byRaw.set(value, home);
      }
    }
    clusters.set(key, list);
    clusterOf.set(key, byRaw);
  }

  // (b) frequency filter on the merged counts.
  const dropped: Vocabulary['dropped'] = [];
  const minCount = options.minValueShare * sampleSize;
  const values: Vocabulary['values'] = {};
  const merges: Vocabulary['merges'] = [];
  const kept = new Map<string, ValueCluster[]>();
  for (const key of keys) {
    values[key] = {};
    const keep: ValueCluster[] = [];
    for (const c of clusters.get(key)!) {
      if (c.count < minCount || c.count === 0) {
        dropped.push({ name: `${key}=${c.canonical}`, reason: 'rare' });
        continue;
      }
      keep.push(c);
      values[key][c.canonical] = c.count;
      if (c.merged.length > 0) merges.push({ key, canonical: c.canonical, merged: [...c.merged] });
    }
    kept.set(key, keep);
  }
  const canonicalOf = (key: string, raw: string): string | undefined => {
    const c = clusterOf.get(key)!.get(raw);
    return c !== undefined && values[key]![c.canonical] !== undefined ? c.canonical : undefined;
  };

  // (c) support of every combination the sampled items carry.
  const support = new Map<string, { attributes: Attributes; count: number }>();
  for (const attrs of items.values()) {
    const pairs: [string, string][] = [];
    for (const key of keys) {
      const raw = attrs[key];
      const canonical = raw === undefined ? undefined : canonicalOf(key, raw);
      if (canonical !== undefined) pairs.push([key, canonical]);
    }
    for (const subset of subsets(pairs, options.maxAttributes)) {
      const a = Object.fromEntries(subset);
      const id = collectionId(a);
      const s = support.get(id);
      if (s === undefined) support.set(id, { attributes: a, count: 1 });
      else s.count++;
    }
  }
  const mergedByValue = new Map(merges.map((m) => [`${m.key}=${m.canonical}`, m.merged]));
  const candidates: CollectionDef[] = [];
  for (const [id, { attributes, count }] of support) {
    const name = defaultCollectionName(attributes, keys);
    if (count < options.minSupport) {
      dropped.push({ name, reason: 'low-support' });
      continue;
    }
    const mergedFrom = Object.entries(attributes).flatMap(([k, v]) => mergedByValue.get(`${k}=${v}`) ?? []);
    candidates.push({
      id,
      name,
      attributes,
      support: count,
      demand: 0,
      ...(mergedFrom.length > 0 ? { mergedFrom } : {}),
    });
  }

  // (d) demand.
  if (options.demand !== undefined && options.demand.length > 0) {
    const byId = new Map(candidates.map((c) => [c.id, c]));
    const matcher = await demandMatcher(options, keys, kept, clusterOf, canonicalOf, batchSize, meaningless);
    for (const { query, count } of options.demand) {
      const attrs = matcher(query);
      if (attrs === undefined) continue;
      const c = byId.get(collectionId(attrs));
      if (c !== undefined) c.demand += count;
    }
  }

  // (e) rank and cut.
  candidates.sort(
    (a, b) =>
      b.demand - a.demand ||
      b.support - a.support ||
      Object.keys(a.attributes).length - Object.keys(b.attributes).length ||
      compareStrings(a.id, b.id),
  );
  let collections = candidates.slice(0, options.maxCollections);
  for (const c of candidates.slice(options.maxCollections)) dropped.push({ name: c.name, reason: 'over-limit' });

  // (f) judge.
  if (options.judge !== undefined && collections.length > 0) {
    const verdicts = await options.judge(collections);
    collections = collections.filter((c) => {
      const v = verdicts.get(c.id);
      if (v === undefined || v.keep) return true;
      dropped.push({ name: c.name, reason: v.reason ? `judge-rejected: ${v.reason}` : 'judge-rejected' });
      return false;
    });
  }
  return { values, merges, dropped, collections };
}

/**
 * Builds the query → attributes mapping of step (d): a query's words are normalised and split; runs of up to three
 * words that spell a known raw or canonical phrase map to its kept canonical directly; every other word maps to
 * the kept canonical (over all keys) nearest by text-tower cosine, if at least `mergeCosine`, else is ignored. A
 * query whose words map to two different values of one key, or to none, or that names a dropped (rare) value,
 * matches nothing.
 */
async function demandMatcher(
  options: ProposeVocabularyOptions,
  keys: readonly string[],
  kept: ReadonlyMap<string, ValueCluster[]>,
  clusterOf: ReadonlyMap<string, ReadonlyMap<string, ValueCluster>>,
  canonicalOf: (key: string, raw: string) => string | undefined,
  batchSize: number,
  meaningless: (v: Float32Array) => boolean,
): Promise<(query: string) => Attributes | undefined> {
  const phrases = new Map<string, [string, string][]>();
  /** Raw values that were dropped (rare): a query naming one asks for something the vocabulary does not have. */
  const droppedPhrases = new Set<string>();
  for (const key of keys)
    for (const raw of clusterOf.get(key)!.keys()) {
      const canonical = canonicalOf(key, raw);
      if (canonical === undefined) {
        droppedPhrases.add(raw);
        continue;
      }
      let list = phrases.get(raw);
      if (list === undefined) phrases.set(raw, (list = []));
      list.push([key, canonical]);
    }
  const tokenize = (q: string) =>
    normaliseAttribute(q)
      .split(/[^\p{L}\p{N}]+/u)
      .filter((w) => w !== '');
  const segment = (words: string[]) => {
    const known: [string, string][] = [];
    const unknown: string[] = [];
    let blocked = false;
    for (let i = 0; i < words.length;) {
      let matched = 0;
      for (let n = Math.min(3, words.length - i); n >= 1 && matched === 0; n--) {
        const phrase = words.slice(i, i + n).join(' ');
        const hit = phrases.get(phrase);
        // A phrase kept under several keys is ambiguous: take the first key in configured order.
        if (hit !== undefined) known.push(hit[0]!);
        else if (droppedPhrases.has(phrase)) blocked = true;
        else continue;
        matched = n;
      }
      if (matched === 0) unknown.push(words[i]!);
      i += Math.max(1, matched);
    }
    return { known, unknown, blocked };
  };
  const unknownWords = new Set<string>();
  for (const { query } of options.demand ?? []) for (const w of segment(tokenize(query)).unknown) unknownWords.add(w);
  const wordVectors = await embedAll(options.embedTexts, [...unknownWords], batchSize);
  const all = keys.flatMap((key) =>
    kept
      .get(key)!
      .filter((c) => !c.meaningless)
      .map((c) => ({ key, c })),
  );
  const nearest = new Map<string, [string, string] | undefined>();
  for (const [word, vector] of wordVectors) {
    if (meaningless(vector)) continue;
    let best: [string, string] | undefined;
    let bestScore = -Infinity;
    for (const { key, c } of all) {
      const s = cosine(vector, c.vector);
      if (s > bestScore) [best, bestScore] = [[key, c.canonical], s];
    }
    nearest.set(word, bestScore >= options.mergeCosine ? best : undefined);
  }
  return (query) => {
    const { known, unknown, blocked } = segment(tokenize(query));
    if (blocked) return undefined;
    const pairs = [...known, ...unknown.map((w) => nearest.get(w)).filter((p) => p !== undefined)];
    if (pairs.length === 0) return undefined;
    const attrs: Attributes = {};
    for (const [k, v] of pairs) {
      if (attrs[k] !== undefined && attrs[k] !== v) return undefined;
      attrs[k] = v;
    }
    return attrs;
  };
}

/** A collection's default name: its values in `keyOrder` (other keys after, alphabetically), joined by spaces. */
export function defaultCollectionName(attributes: Attributes, keyOrder: readonly string[]): string {
  const rest = Object.keys(attributes)
    .filter((k) => !keyOrder.includes(k))
    .sort();
  return [...keyOrder.filter((k) => attributes[k] !== undefined), ...rest].map((k) => attributes[k]!).join(' ');
}

/**
 * Applies the operator's decision: `approve` returns the vocabulary unchanged; `edit` removes the listed
 * collection ids (dropped as `operator-removed`) and adds collections (attributes normalised, id from
 * `collectionId`, the given name or the default one; an added id that exists is renamed, keeping its support and
 * demand; a new one has support and demand 0); `reject` throws.
 *
 * @throws CollectionsError vocabulary-rejected on `reject`; invalid-option when `remove` names an unknown id or an
 *   added collection has no attributes.
 */
export function applyReview(vocab: Vocabulary, review: VocabularyReview): Vocabulary {
  switch (review.action) {
    case 'approve':
      return vocab;
    case 'reject':
      throw new CollectionsError(
        'vocabulary-rejected',
        `the proposed vocabulary was rejected by ${review.by}${review.comment ? `: ${review.comment}` : ''}`,
      );
    case 'edit': {
      const keyOrder = Object.keys(vocab.values);
      const byId = new Map(vocab.collections.map((c) => [c.id, c]));
      const unknown = review.remove.filter((id) => !byId.has(id));
      if (unknown.length > 0)
        throw new CollectionsError(
          'invalid-option',
          `the review removes collection ids that the proposal does not have: ${unknown.slice(0, 10).join(', ')}` +
            `${unknown.length > 10 ? ` and ${unknown.length - 10} more` : ''}; use the ids of the vocabulary query`,
        );
      const removed = new Set(review.remove);
      const dropped = [...vocab.dropped];
      const collections = vocab.collections.filter((c) => {
        if (!removed.has(c.id)) return true;
        dropped.push({ name: c.name, reason: 'operator-removed' });
        return false;
      });
      for (const add of review.add) {
        const attributes: Attributes = {};
        for (const [k, v] of Object.entries(add.attributes)) {
          const key = normaliseAttribute(k);
          const value = normaliseAttribute(v);
          if (key !== '' && value !== '') attributes[key] = value;
        }
        if (Object.keys(attributes).length === 0)
          throw new CollectionsError('invalid-option', 'an added collection needs at least one attribute');
        const id = collectionId(attributes);
        const name = add.name?.trim() || defaultCollectionName(attributes, keyOrder);
        const at = collections.findIndex((c) => c.id === id);
        if (at >= 0) collections[at] = { ...collections[at]!, name };
        else collections.push({ id, name, attributes, support: byId.get(id)?.support ?? 0, demand: 0 });
      }
      return { ...vocab, dropped, collections };
    }
  }
}

/** Caps of {@link summariseVocabulary}. */
export interface VocabularySummaryLimits {
  /** @default 20 */
  collections?: number;
  /** @default 20 */
  merges?: number;
  /** @default 20 */
  dropped?: number;
}

/** A compact view of a vocabulary for the workflow's `vocabulary` query (lists capped, totals exact). */
export interface VocabularySummary {
  collectionCount: number;
  /** Kept values per key. */
  valueCounts: Record<string, number>;
  /** The first collections in rank order. */
  topCollections: { id: string; name: string; support: number; demand: number }[];
  mergeCount: number;
  /** The first merges; each lists at most 10 merged phrases. */
  merges: { key: string; canonical: string; merged: string[]; mergedCount: number }[];
  droppedCount: number;
  droppedByReason: Record<string, number>;
  /** The first dropped entries. */
  dropped: { name: string; reason: string }[];
}

/** Summarises a vocabulary: small enough for a Temporal query result even with 100k collections. */
export function summariseVocabulary(vocab: Vocabulary, limits: VocabularySummaryLimits = {}): VocabularySummary {
  const droppedByReason: Record<string, number> = {};
  for (const d of vocab.dropped) {
    // `judge-rejected: <reason>` counts under `judge-rejected`.
    const reason = d.reason.split(':')[0]!;
    droppedByReason[reason] = (droppedByReason[reason] ?? 0) + 1;
  }
  return {
    collectionCount: vocab.collections.length,
    valueCounts: Object.fromEntries(Object.entries(vocab.values).map(([k, v]) => [k, Object.keys(v).length])),
    topCollections: vocab.collections
      .slice(0, limits.collections ?? 20)
      .map((c) => ({ id: c.id, name: c.name, support: c.support, demand: c.demand })),
    mergeCount: vocab.merges.length,
    merges: vocab.merges.slice(0, limits.merges ?? 20).map((m) => ({
      key: m.key,
      canonical: m.canonical,
      merged: m.merged.slice(0, 10),
      mergedCount: m.merged.length,
    })),
    droppedCount: vocab.dropped.length,
    droppedByReason,
    dropped: vocab.dropped.slice(0, limits.dropped ?? 20),
  };
}
