import { cosine } from '../embedding/index-store.js';
import { CollectionsError } from './errors.js';
import { normaliseAttribute, type Attributes, type ExtractionRecord } from './types.js';

/** Options of {@link zeroShotExtract}. */
export interface ZeroShotOptions {
  /** The dual encoder's image tower: one vector per image. */
  embedImages(images: readonly Uint8Array[]): Promise<Float32Array[]>;
  /** The dual encoder's text tower: one vector per text. */
  embedTexts(texts: readonly string[]): Promise<Float32Array[]>;
  /** The keys to extract and the candidate values of each (a key without values is skipped). */
  keys: readonly { key: string; values: readonly string[] }[];
  items: readonly { itemId: string; contentHash: string; imageBytes: Uint8Array }[];
  /** The text model's version label; records carry the model `zero-shot:<modelLabel>`. */
  modelLabel: string;
  promptVersion: string;
  /**
   * A key is left out of an item's attributes when the best value's cosine exceeds the runner-up's by less than
   * this: the image does not decide between them. @default 0.02
   */
  minMargin?: number;
  /** The text embedded for a candidate value. @default the value itself */
  phrase?: (key: string, value: string) => string;
  /** Images embedded per call. @default 64 */
  batchSize?: number;
  /** Time of the records' `extractedAt`. @default now */
  now?: () => Date;
}

/**
 * The demo's extractor when no VLM is configured: the dual encoder's zero-shot scoring. Each candidate value of
 * each key is embedded with the text tower, each item's image with the image tower, and per key the value with
 * the highest cosine wins, unless its margin over the runner-up is below `minMargin` (then the key is left out; a
 * key with a single candidate value always gets it). An empty image vector (an image the caller could not embed)
 * scores 0 everywhere and gets no attributes.
 * Records carry the model `zero-shot:<modelLabel>`, no tokens and no cost.
 */
export async function zeroShotExtract(options: ZeroShotOptions): Promise<ExtractionRecord[]> {
  const minMargin = options.minMargin ?? 0.02;
  const batchSize = options.batchSize ?? 64;
  if (!(batchSize >= 1)) throw new CollectionsError('invalid-option', `batchSize must be ≥ 1, got ${batchSize}`);
  const phrase = options.phrase ?? ((_key: string, value: string) => value);
  const keys = options.keys
    .map((k) => ({ key: normaliseAttribute(k.key), values: [...new Set(k.values.map(normaliseAttribute))] }))
    .filter((k) => k.values.length > 0);
  if (keys.length === 0)
    throw new CollectionsError(
      'invalid-option',
      'zero-shot extraction needs candidate values: give at least one attribute key a non-empty `values` list',
    );

  const texts = keys.flatMap((k) => k.values.map((v) => phrase(k.key, v)));
  const vectors = await options.embedTexts(texts);
  let at = 0;
  const candidates = keys.map((k) => ({
    key: k.key,
    values: k.values.map((value) => ({ value, vector: vectors[at++]! })),
  }));

  const model = `zero-shot:${options.modelLabel}`;
  const now = options.now ?? (() => new Date());
  const records: ExtractionRecord[] = [];
  for (let start = 0; start < options.items.length; start += batchSize) {
    const batch = options.items.slice(start, start + batchSize);
    const images = await options.embedImages(batch.map((i) => i.imageBytes));
    const extractedAt = now().toISOString();
    batch.forEach((item, i) => {
      const image = images[i]!;
      const attributes: Attributes = {};
      for (const { key, values } of candidates) {
        let best = -Infinity;
        let second = -Infinity;
        let bestValue = '';
        for (const { value, vector } of values) {
          const s = cosine(image, vector);
          if (s > best) {
            second = best;
            best = s;
            bestValue = value;
          } else if (s > second) second = s;
        }
        if (best - second >= minMargin) attributes[key] = bestValue;
      }
      records.push({
        itemId: item.itemId,
        contentHash: item.contentHash,
        promptVersion: options.promptVersion,
        model,
        attributes,
        promptTokens: 0,
        completionTokens: 0,
        costUsd: 0,
        extractedAt,
      });
    });
  }
  return records;
}
