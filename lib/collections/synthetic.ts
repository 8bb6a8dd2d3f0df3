import { createHash } from 'node:crypto';
import { z } from 'zod';
import { appendColumns } from '../iceberg/append.js';
import type { SqlCatalog } from '../iceberg/catalog/index.js';
import { mapConcurrently } from '../iceberg/maintenance/table-files.js';
import {
  ATTRIBUTE_WORDS,
  CATALOG_PATTERNS,
  CATALOG_SHAPES,
  COLOR_NAMES,
  SIZE_NAMES,
  mulberry32,
  renderItemPng,
  type CatalogColor,
  type CatalogItem,
} from '../inference/synthetic-catalog.js';
import { FileNotFoundError, type FileIO } from '../storage/index.js';
import { CollectionsError } from './errors.js';
import type { Attributes, CatalogRow, EvaluationSet } from './types.js';

/**
 * The synthetic catalog of the collections demo, tests and benchmark (docs/collections.md, "Synthetic catalog,
 * sampling and vocabulary"): items drawn over the colour × shape × pattern × size grid of
 * lib/inference/synthetic-catalog.ts, each with a rendered PNG (the truth) and a noisy title and description (a
 * weak signal), plus the files the rest of the pipeline is checked against: the ground truth (which the VLM
 * stand-in answers from), the labelled evaluation set, and optionally a demand table of search queries.
 */

/** The attribute keys of the synthetic catalog, in the order collection names list their values. */
export const SYNTHETIC_ATTRIBUTE_KEYS = ['color', 'shape', 'pattern', 'size'] as const;
export type SyntheticAttributeKey = (typeof SYNTHETIC_ATTRIBUTE_KEYS)[number];

/** The canonical values of each key (the `attributes` option of a run over this catalog). */
export const SYNTHETIC_ATTRIBUTE_VALUES: Record<SyntheticAttributeKey, readonly string[]> = {
  color: COLOR_NAMES,
  shape: CATALOG_SHAPES,
  pattern: CATALOG_PATTERNS,
  size: SIZE_NAMES,
};

/** The `attributes` option of a `collections-build` run over the synthetic catalog. */
export function syntheticAttributeOptions(): { key: string; values: string[] }[] {
  return SYNTHETIC_ATTRIBUTE_KEYS.map((key) => ({ key, values: [...SYNTHETIC_ATTRIBUTE_VALUES[key]] }));
}

/** Options of {@link generateSyntheticCatalog}. */
/** The colour an ambiguous item's paint is mixed with: a neighbour people (and models) confuse it with. */
const NEIGHBOUR_COLOR: Record<CatalogColor, CatalogColor> = {
  red: 'orange',
  orange: 'yellow',
  yellow: 'orange',
  green: 'yellow',
  blue: 'purple',
  purple: 'pink',
  pink: 'red',
  black: 'blue',
};

export interface SyntheticCatalogOptions {
  catalog: SqlCatalog;
  /** Writes the images, the truth and the evaluation set (any store the URIs name). */
  io: FileIO;
  /** The catalog table to create; an existing table of that name is dropped (with its files) first. */
  table: string;
  /** file:// or s3:// directory the PNGs go to, as `<imagePrefix>/<itemId>.png`. */
  imagePrefix: string;
  /** Number of items. */
  items: number;
  /** Seed of every random choice: the same seed gives the same table, images and files. */
  seed: number;
  /** Per-channel noise amplitude of the renderings (0–255); above 0 every image's bytes differ. @default 2 */
  imageNoise?: number;
  /** Probability of each text perturbation (synonym, filler, reordering, omission, irrelevant word). @default 0.3 */
  titleNoise?: number;
  /**
   * Share of items painted in an ambiguous colour: their own colour mixed 40–50% with a neighbour (a reddish
   * orange). Their truth stays their own colour; the dual encoder is unsure about them, which is what the VLM's
   * borderline verification is for. @default 0.1
   */
  ambiguousShare?: number;
  /** Share of the items labelled for the evaluation set. @default 0.1 */
  evalShare?: number;
  /** Where the evaluation set (JSON {@link EvaluationSet}) is written. */
  evalUri: string;
  /** Where the ground truth (JSON {@link SyntheticTruthFile}) is written. */
  truthUri: string;
  /** Also create a demand table (`query string, count long`) of this name. @default none */
  demandTable?: string;
  /** Distinct queries of the demand table. @default 200 */
  demandQueries?: number;
  /** Images rendered and written at once. @default 16 */
  concurrency?: number;
}

/** What {@link generateSyntheticCatalog} made. */
export interface SyntheticCatalog {
  /** The catalog rows, in table order; `stratum` is the `category` column. */
  rows: CatalogRow[];
  /** Item id → true attributes. */
  truth: Map<string, Attributes>;
  /** sha256 (hex) of an image's PNG bytes → true attributes. */
  truthByImageHash: Map<string, Attributes>;
  evalUri: string;
  truthUri: string;
  demandTable?: string;
}

/** The truth file: attributes by item id and by the sha256 (hex) of the item's PNG bytes. */
export const SyntheticTruthFile = z.strictObject({
  byItem: z.record(z.string(), z.record(z.string(), z.string())),
  byImageSha256: z.record(z.string(), z.record(z.string(), z.string())),
});
export type SyntheticTruthFile = z.infer<typeof SyntheticTruthFile>;

/** The evaluation set file (the {@link EvaluationSet} contract). */
export const EvaluationSetFile = z.strictObject({
  labelledItems: z.array(z.string()),
  queries: z.array(
    z.strictObject({
      name: z.string(),
      attributes: z.record(z.string(), z.string()),
      relevant: z.array(z.string()),
    }),
  ),
});

/** Column names of the catalog table (the defaults of `CollectionsCatalog`, plus the stratum column). */
export const SYNTHETIC_CATALOG_COLUMNS = {
  id: 'item_id',
  imageUri: 'image_uri',
  title: 'title',
  description: 'description',
  category: 'category',
} as const;

const FILLERS = ['a', 'the', 'one', 'with', 'in', 'some', 'very'];
const NOUNS = ['sticker', 'tile', 'print', 'item', 'picture'];
/** Words that carry no attribute (the text tower maps them to nothing). */
const IRRELEVANT = ['premium', 'classic', 'new', 'handmade', 'gift', 'vintage', 'bestseller', 'sale', 'eco'];

/** sha256 hex. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A 32-bit seed derived from a seed and a label, so that independent draws do not share a stream. */
function subSeed(seed: number, label: string): number {
  return createHash('sha256').update(`${seed}:${label}`).digest().readUInt32LE(0);
}

/**
 * Mildly skewed weights over `n` values: value at rank r (a seeded permutation) gets 1/(r+1)^0.6, so the most
 * common value is 2–3.5× as frequent as the rarest, and every value stays well above a 2% share.
 */
function skewedWeights(n: number, rand: () => number): number[] {
  const ranks = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ranks[i], ranks[j]] = [ranks[j]!, ranks[i]!];
  }
  return ranks.map((r) => 1 / Math.pow(r + 1, 0.6));
}

function drawWeighted<T>(values: readonly T[], weights: readonly number[], rand: () => number): T {
  const total = weights.reduce((s, w) => s + w, 0);
  let x = rand() * total;
  for (let i = 0; i < values.length; i++) {
    x -= weights[i]!;
    if (x < 0) return values[i]!;
  }
  return values[values.length - 1]!;
}

function pick<T>(values: readonly T[], rand: () => number): T {
  return values[Math.floor(rand() * values.length)]!;
}

/** A word for `value`: itself, or with probability `p` one of its synonyms. */
function wordFor(value: string, p: number, rand: () => number): string {
  const words = ATTRIBUTE_WORDS[value] ?? [value];
  return rand() < p && words.length > 1 ? words[1 + Math.floor(rand() * (words.length - 1))]! : words[0]!;
}

/** The item's attributes as the contract's {@link Attributes}. */
export function itemAttributes(item: CatalogItem): Attributes {
  return { color: item.color, shape: item.shape, pattern: item.pattern, size: item.size };
}

/**
 * A noisy title and description of an item. Both draw from templates; with probability `p` each: synonyms, a
 * filler, a shuffled word order (title), an attribute left out, an irrelevant word.
 */
export function describeSyntheticItem(item: CatalogItem, p: number, rand: () => number): [string, string] {
  const w = (v: string) => wordFor(v, p, rand);
  let words: string[] = [w(item.size), w(item.color), w(item.pattern), w(item.shape)];
  if (rand() < p) words.splice(Math.floor(rand() * words.length), 1); // an attribute left out
  if (rand() < p) {
    for (let i = words.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [words[i], words[j]] = [words[j]!, words[i]!];
    }
  }
  if (rand() < p) words = [pick(FILLERS, rand), ...words];
  if (rand() < p) words.splice(Math.floor(rand() * (words.length + 1)), 0, pick(IRRELEVANT, rand));
  words.push(pick(NOUNS, rand));
  const title = words.join(' ');

  const parts: Record<SyntheticAttributeKey, string> = {
    color: `in ${w(item.color)}`,
    shape: `${w(item.shape)} shape`,
    pattern: `with a ${w(item.pattern)} pattern`,
    size: `${w(item.size)} size`,
  };
  const omitted = rand() < p ? pick(SYNTHETIC_ATTRIBUTE_KEYS, rand) : undefined;
  const part = (k: SyntheticAttributeKey) => (k === omitted ? '' : parts[k]);
  const noun = pick(NOUNS, rand);
  const templates: (() => string[])[] = [
    () => [`a ${part('size')} ${noun}`, part('shape'), `${part('color')} ${part('pattern')}`],
    () => [`${noun} ${part('pattern')} ${part('color')}`, part('shape'), part('size')],
    () => [`our ${part('shape')} ${noun} ${part('color')}`, part('size'), part('pattern')],
  ];
  const segments = pick(templates, rand)()
    .map((segment) => segment.replace(/\s+/g, ' ').trim())
    .filter((segment) => segment !== '');
  if (rand() < p) segments.unshift(pick(IRRELEVANT, rand));
  const sentence = `${segments.join(', ')}.`;
  return [title, sentence.charAt(0).toUpperCase() + sentence.slice(1)];
}

/** The name of a query or collection: the values in {@link SYNTHETIC_ATTRIBUTE_KEYS} order, joined by spaces. */
export function syntheticCollectionName(attributes: Attributes): string {
  return SYNTHETIC_ATTRIBUTE_KEYS.filter((k) => attributes[k] !== undefined)
    .map((k) => attributes[k]!)
    .join(' ');
}

/** Every combination of 1 and 2 of the values (of distinct keys) of one item. */
function valueCombinations(attributes: Attributes): Attributes[] {
  const keys = SYNTHETIC_ATTRIBUTE_KEYS.filter((k) => attributes[k] !== undefined);
  const out: Attributes[] = [];
  for (let i = 0; i < keys.length; i++) {
    out.push({ [keys[i]!]: attributes[keys[i]!]! });
    for (let j = i + 1; j < keys.length; j++)
      out.push({ [keys[i]!]: attributes[keys[i]!]!, [keys[j]!]: attributes[keys[j]!]! });
  }
  return out;
}

function comboKey(a: Attributes): string {
  return SYNTHETIC_ATTRIBUTE_KEYS.filter((k) => a[k] !== undefined)
    .map((k) => `${k}=${a[k]}`)
    .join('+');
}

/** The evaluation set: every 1- and 2-value query with at least one relevant labelled item. */
export function buildEvaluationSet(labelled: readonly string[], truth: ReadonlyMap<string, Attributes>): EvaluationSet {
  const queries = new Map<string, { name: string; attributes: Attributes; relevant: string[] }>();
  for (const itemId of labelled) {
    for (const attrs of valueCombinations(truth.get(itemId)!)) {
      const key = comboKey(attrs);
      let q = queries.get(key);
      if (q === undefined) {
        q = { name: syntheticCollectionName(attrs), attributes: attrs, relevant: [] };
        queries.set(key, q);
      }
      q.relevant.push(itemId);
    }
  }
  return {
    labelledItems: [...labelled],
    queries: [...queries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, q]) => q),
  };
}

/** Demand queries: attribute singles and pairs (a few triples) phrased with synonyms, with Zipf-like counts. */
export function syntheticDemand(seed: number, queries: number): { query: string; count: number }[] {
  const rand = mulberry32(subSeed(seed, 'demand'));
  const all: Attributes[] = [];
  const values = SYNTHETIC_ATTRIBUTE_VALUES;
  const keys = SYNTHETIC_ATTRIBUTE_KEYS;
  for (let i = 0; i < keys.length; i++) {
    for (const v of values[keys[i]!]) all.push({ [keys[i]!]: v });
    for (let j = i + 1; j < keys.length; j++)
      for (const v of values[keys[i]!]) for (const u of values[keys[j]!]) all.push({ [keys[i]!]: v, [keys[j]!]: u });
  }
  // A seeded popularity order over the combinations; the rank-r query gets about 5000 / r^1.1 searches.
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const out = new Map<string, number>();
  for (let r = 0; out.size < queries && r < queries * 4; r++) {
    const attrs = all[r % all.length]!;
    const words = keys.filter((k) => attrs[k] !== undefined).map((k) => wordFor(attrs[k]!, 0.4, rand));
    if (rand() < 0.3) words.push(pick(NOUNS, rand));
    if (rand() < 0.2) words.unshift(pick(IRRELEVANT, rand));
    const query = words.join(' ');
    if (out.has(query)) continue;
    out.set(query, Math.max(1, Math.round(5000 / Math.pow(out.size + 1, 1.1))));
  }
  return [...out.entries()].map(([query, count]) => ({ query, count }));
}

async function recreateTable(
  catalog: SqlCatalog,
  table: string,
  fields: { name: string; type: 'string' | 'long' }[],
): Promise<void> {
  if (await catalog.tableExists(table)) await catalog.dropTable(table, { purge: true });
  await catalog.createTable(table, {
    schema: {
      schemaId: 0,
      identifierFieldIds: [],
      fields: fields.map((f, i) => ({ id: i + 1, name: f.name, required: true, type: { kind: f.type } })),
    },
  });
}

/**
 * Generates the synthetic catalog: draws `items` items over the grid (mildly skewed, seeded frequencies per
 * attribute), renders and writes each PNG (a per-item noise seed, so every image's bytes differ), writes the
 * catalog table `item_id, image_uri, title, description, category` (category = the shape, usable as the sampling
 * stratum), the truth file, the evaluation set (an `evalShare` subset of the items, every 1- and 2-value query
 * with a relevant labelled item), and optionally the demand table. Deterministic for a seed.
 */
export async function generateSyntheticCatalog(options: SyntheticCatalogOptions): Promise<SyntheticCatalog> {
  const { catalog, io, table, items, seed } = options;
  if (!Number.isInteger(items) || items < 1)
    throw new CollectionsError('invalid-option', `items must be a positive integer, got ${items}`);
  const evalShare = options.evalShare ?? 0.1;
  if (!(evalShare >= 0 && evalShare <= 1))
    throw new CollectionsError('invalid-option', `evalShare must be within [0, 1], got ${evalShare}`);
  const noise = options.imageNoise ?? 2;
  const textNoise = options.titleNoise ?? 0.3;
  const prefix = options.imagePrefix.replace(/\/+$/, '');

  const weightRand = mulberry32(subSeed(seed, 'weights'));
  const weights = SYNTHETIC_ATTRIBUTE_KEYS.map((k) => skewedWeights(SYNTHETIC_ATTRIBUTE_VALUES[k].length, weightRand));
  const drawRand = mulberry32(subSeed(seed, 'items'));
  const textRand = mulberry32(subSeed(seed, 'text'));
  const width = Math.max(6, String(items).length);
  const ambiguousShare = options.ambiguousShare ?? 0.1;
  if (!(ambiguousShare >= 0 && ambiguousShare <= 1))
    throw new CollectionsError('invalid-option', `ambiguousShare must be within [0, 1], got ${ambiguousShare}`);
  const blendRand = mulberry32(subSeed(seed, 'ambiguous'));
  const drawn: { itemId: string; item: CatalogItem; blend?: { color: CatalogColor; weight: number } }[] = [];
  const rows: CatalogRow[] = [];
  for (let i = 0; i < items; i++) {
    const [color, shape, pattern, size] = SYNTHETIC_ATTRIBUTE_KEYS.map((k, j) =>
      drawWeighted(SYNTHETIC_ATTRIBUTE_VALUES[k], weights[j]!, drawRand),
    );
    const item = { color, shape, pattern, size } as CatalogItem;
    const itemId = `item-${String(i + 1).padStart(width, '0')}`;
    const [title, description] = describeSyntheticItem(item, textNoise, textRand);
    const blend =
      blendRand() < ambiguousShare
        ? { color: NEIGHBOUR_COLOR[item.color], weight: 0.4 + blendRand() * 0.1 }
        : undefined;
    drawn.push({ itemId, item, ...(blend ? { blend } : {}) });
    rows.push({ itemId, imageUri: `${prefix}/${itemId}.png`, title, description, stratum: item.shape });
  }

  const truth = new Map<string, Attributes>();
  const truthByImageHash = new Map<string, Attributes>();
  const hashes = await mapConcurrently(drawn, options.concurrency ?? 16, async ({ itemId, item, blend }) => {
    const png = await renderItemPng(item, { noise, seed: subSeed(seed, itemId), ...(blend ? { blend } : {}) });
    await io.write(`${prefix}/${itemId}.png`, png);
    return { hash: sha256Hex(png) };
  });
  for (let i = 0; i < drawn.length; i++) {
    const { itemId, item, blend } = drawn[i]!;
    let { hash } = hashes[i]!;
    // Identical bytes (noise 0, or a freak collision) would make the image-hash truth ambiguous: re-render such an
    // item with a bit of noise from another seed until its bytes are unique.
    for (let attempt = 1; truthByImageHash.has(hash); attempt++) {
      const png = await renderItemPng(item, {
        noise: Math.max(1, noise),
        seed: subSeed(seed, `${itemId}#${attempt}`),
        ...(blend ? { blend } : {}),
      });
      hash = sha256Hex(png);
      if (!truthByImageHash.has(hash)) await io.write(`${prefix}/${itemId}.png`, png);
    }
    const attrs = itemAttributes(item);
    truth.set(itemId, attrs);
    truthByImageHash.set(hash, attrs);
  }

  await recreateTable(catalog, table, [
    { name: SYNTHETIC_CATALOG_COLUMNS.id, type: 'string' },
    { name: SYNTHETIC_CATALOG_COLUMNS.imageUri, type: 'string' },
    { name: SYNTHETIC_CATALOG_COLUMNS.title, type: 'string' },
    { name: SYNTHETIC_CATALOG_COLUMNS.description, type: 'string' },
    { name: SYNTHETIC_CATALOG_COLUMNS.category, type: 'string' },
  ]);
  await appendColumns(catalog, io, table, {
    columns: new Map<number, unknown[]>([
      [1, rows.map((r) => r.itemId)],
      [2, rows.map((r) => r.imageUri)],
      [3, rows.map((r) => r.title)],
      [4, rows.map((r) => r.description)],
      [5, rows.map((r) => r.stratum)],
    ]),
    snapshotProperties: { 'sluice.synthetic-seed': String(seed) },
  });

  const truthFile: SyntheticTruthFile = {
    byItem: Object.fromEntries(truth),
    byImageSha256: Object.fromEntries(truthByImageHash),
  };
  await io.write(options.truthUri, JSON.stringify(truthFile));

  // The labelled subset: the items ranked first by sha256(seed:itemId), a stable uniform draw.
  const labelCount = Math.round(items * evalShare);
  const labelled = rows
    .map((r) => ({ id: r.itemId, rank: sha256Hex(`${seed}:eval:${r.itemId}`) }))
    .sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
    .slice(0, labelCount)
    .map((r) => r.id)
    .sort();
  await io.write(options.evalUri, JSON.stringify(buildEvaluationSet(labelled, truth)));

  if (options.demandTable !== undefined) {
    const demand = syntheticDemand(seed, options.demandQueries ?? 200);
    await recreateTable(catalog, options.demandTable, [
      { name: 'query', type: 'string' },
      { name: 'count', type: 'long' },
    ]);
    await appendColumns(catalog, io, options.demandTable, {
      columns: new Map<number, unknown[]>([
        [1, demand.map((d) => d.query)],
        [2, demand.map((d) => BigInt(d.count))],
      ]),
    });
  }

  return {
    rows,
    truth,
    truthByImageHash,
    evalUri: options.evalUri,
    truthUri: options.truthUri,
    ...(options.demandTable === undefined ? {} : { demandTable: options.demandTable }),
  };
}

async function readJson(io: FileIO, uri: string, what: string): Promise<unknown> {
  const bytes = await io.read(uri).catch((err: unknown) => {
    // Other storage errors (throttling, connection) stay as they are: the caller's retry policy handles them.
    if (err instanceof FileNotFoundError)
      throw new CollectionsError('not-found', `the ${what} ${uri} does not exist`, { cause: err });
    throw err;
  });
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch (err) {
    throw new CollectionsError('corrupt-file', `the ${what} at ${uri} is not valid JSON: ${String(err)}`, {
      cause: err,
    });
  }
}

function parseFile<T>(schema: z.ZodType<T>, value: unknown, uri: string, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CollectionsError(
      'corrupt-file',
      `the ${what} at ${uri} does not match its format: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
    );
  }
  return parsed.data;
}

/** Reads a truth file written by {@link generateSyntheticCatalog}. @throws CollectionsError corrupt-file, not-found */
export async function readTruth(
  io: FileIO,
  uri: string,
): Promise<{ truth: Map<string, Attributes>; truthByImageHash: Map<string, Attributes> }> {
  const file = parseFile(SyntheticTruthFile, await readJson(io, uri, 'truth file'), uri, 'truth file');
  return { truth: new Map(Object.entries(file.byItem)), truthByImageHash: new Map(Object.entries(file.byImageSha256)) };
}

/** Reads an evaluation set (JSON {@link EvaluationSet}). @throws CollectionsError corrupt-file, not-found */
export async function readEvaluationSet(io: FileIO, uri: string): Promise<EvaluationSet> {
  const set = parseFile(EvaluationSetFile, await readJson(io, uri, 'evaluation set'), uri, 'evaluation set');
  const labelled = new Set(set.labelledItems);
  for (const q of set.queries) {
    const stray = q.relevant.find((id) => !labelled.has(id));
    if (stray !== undefined)
      throw new CollectionsError(
        'corrupt-file',
        `the evaluation set at ${uri}: query "${q.name}" lists relevant item "${stray}", which is not labelled`,
      );
  }
  return set;
}
