/**
 * Stage 1 of `collections-build` with a VLM: ask the endpoint for each sampled item's attributes as JSON, validate
 * the reply, repair it once, quarantine what stays unusable, and never pay twice for an item already in the
 * extraction cache (see extraction-cache.ts).
 *
 * Per item: read the image (unreadable → quarantine `unreadable-image`), hash image + title + description, take the
 * cached answer when there is one (no call), else one request; a reply that is not JSON or does not match the schema
 * gets exactly one repair request, then the item goes to quarantine (`malformed-json` / `schema-invalid`, with the
 * raw reply). A refusal or a 4xx quarantines the item (`refusal` / `client-error`). `vlm-unavailable` (after the
 * client's retries) and `vlm-misconfigured` propagate: the activity retries or fails. Before every request the budget
 * gate is asked; once it refuses, no new request starts and the result says `budgetExhausted`, listing the items
 * left undone.
 */
import { createHash } from 'node:crypto';
import { CollectionsError } from './errors.js';
import {
  addUsage,
  normaliseAttribute,
  NO_USAGE,
  type Attributes,
  type CatalogRow,
  type CollectionsQuarantineRecord,
  type ExtractionRecord,
  type VlmBudget,
  type VlmUsage,
} from './types.js';
import {
  cutRaw,
  runConcurrently,
  VlmRequestError,
  type VlmBudgetGate,
  type VlmClient,
  type VlmMessage,
} from './vlm-client.js';
import { extractionMessages, parseExtractionReply, repairMessages, type ParseResult } from './vlm-prompts.js';

/** sha256 (hex) over the image bytes, a NUL, the title, a NUL, the description: the item's cache key. */
export function contentHash(imageBytes: Uint8Array, title: string, description: string): string {
  return createHash('sha256')
    .update(imageBytes)
    .update('\u0000')
    .update(title, 'utf8')
    .update('\u0000')
    .update(description, 'utf8')
    .digest('hex');
}

/** The image MIME type from the file's magic bytes (PNG, JPEG, WebP, GIF), or undefined. */
export function imageMimeType(bytes: Uint8Array): string | undefined {
  const b = (i: number): number => bytes[i] ?? -1;
  if (b(0) === 0x89 && b(1) === 0x50 && b(2) === 0x4e && b(3) === 0x47) return 'image/png';
  if (b(0) === 0xff && b(1) === 0xd8 && b(2) === 0xff) return 'image/jpeg';
  const ascii = (from: number, to: number): string => Buffer.from(bytes.subarray(from, to)).toString('latin1');
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  if (ascii(0, 4) === 'GIF8') return 'image/gif';
  return undefined;
}

/** A repaired-or-not reply: the value, or the unusable reply and why. */
export type AskOutcome<T> =
  | { ok: true; value: T; usage: VlmUsage }
  | {
      ok: false;
      kind: 'quarantine';
      reason: CollectionsQuarantineRecord['reason'];
      message: string;
      raw?: string;
      usage: VlmUsage;
    }
  | { ok: false; kind: 'budget'; usage: VlmUsage };

/**
 * Sends `messages`, parses the reply, and on a parse failure sends exactly one repair request. Refusals and 4xx
 * become a quarantine outcome, a refused budget a `budget` outcome; other errors propagate.
 */
export async function askWithRepair<T>(
  client: VlmClient,
  messages: VlmMessage[],
  parse: (content: string) => ParseResult<T>,
  opts: { gate: VlmBudgetGate; signal?: AbortSignal },
): Promise<AskOutcome<T>> {
  let usage: VlmUsage = NO_USAGE;
  const send = async (m: VlmMessage[]): Promise<{ content: string } | AskOutcome<T>> => {
    try {
      const reply = await client.chat(m, opts);
      usage = addUsage(usage, reply.usage);
      return { content: reply.content };
    } catch (err) {
      if (!(err instanceof VlmRequestError)) throw err;
      usage = addUsage(usage, err.details.usage);
      if (err.kind === 'budget-exhausted') return { ok: false, kind: 'budget', usage };
      if (err.kind === 'item-rejected') {
        return {
          ok: false,
          kind: 'quarantine',
          reason: err.details.reason ?? 'client-error',
          message: err.message,
          raw: err.details.raw,
          usage,
        };
      }
      throw err;
    }
  };
  const first = await send(messages);
  if (!('content' in first)) return first;
  const parsed = parse(first.content);
  if (parsed.ok) return { ok: true, value: parsed.value, usage };
  const second = await send(repairMessages(messages, first.content, parsed.error));
  if (!('content' in second)) return second;
  const repaired = parse(second.content);
  if (repaired.ok) return { ok: true, value: repaired.value, usage };
  return {
    ok: false,
    kind: 'quarantine',
    reason: repaired.reason,
    message: `unusable reply after one repair: ${repaired.error} (first reply: ${parsed.error})`,
    raw: cutRaw(second.content),
    usage,
  };
}

/** Options of {@link extractWithVlm}. */
export interface ExtractWithVlmOptions {
  client: VlmClient;
  items: readonly CatalogRow[];
  /** Reads an item's image (file:// or s3://). A throw quarantines the item as `unreadable-image`. */
  readImage: (uri: string) => Promise<Uint8Array>;
  /** Attribute keys to extract (normalised here). */
  keys: readonly string[];
  promptVersion: string;
  /** The model name recorded in the cache key. @default client.model */
  model?: string;
  /** Cached answers by content hash (from `lookupExtractions`); hits cost nothing. @default none */
  cached?: ReadonlyMap<string, ExtractionRecord>;
  /** What this call may still spend. @default unlimited */
  budget?: VlmBudget;
  onProgress?: (done: number, total: number) => void;
  /**
   * Persists new answers as they come (e.g. `storeExtractions`), every `storeEvery` records and at the end, and
   * before an error propagates: a retried activity then finds them in the cache. @default none
   */
  storeNew?: (records: ExtractionRecord[]) => Promise<void>;
  /** @default 50 */
  storeEvery?: number;
  /** Items prepared at once (image read + hash); requests in flight are bounded by the client. @default 2 × client concurrency */
  parallelism?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

/** What {@link extractWithVlm} did. */
export interface ExtractWithVlmResult {
  /** One record per extracted item (cache hits included, under the item's own id), in item order. */
  records: ExtractionRecord[];
  /** The records answered by this call (what `storeNew` received): store these in the cache. */
  newRecords: ExtractionRecord[];
  quarantined: CollectionsQuarantineRecord[];
  /** Items answered from the cache, or from another item of this call with identical content. */
  cacheHits: number;
  /** Spent by this call: every HTTP request, repairs and retries included. */
  usage: VlmUsage;
  /** True when the budget stopped the stage before every item was done. */
  budgetExhausted: boolean;
  /** Items left undone because of the budget. */
  unprocessed: string[];
}

type ItemOutcome =
  | { kind: 'record'; record: ExtractionRecord; fresh: boolean }
  | { kind: 'quarantine'; record: CollectionsQuarantineRecord }
  | { kind: 'skipped' };

/** Extracts attributes of `items` with the VLM; see the module comment. */
export async function extractWithVlm(opts: ExtractWithVlmOptions): Promise<ExtractWithVlmResult> {
  const { client, items } = opts;
  const keys = [...new Set(opts.keys.map(normaliseAttribute))].filter((k) => k !== '');
  if (keys.length === 0) throw new CollectionsError('invalid-option', 'no attribute keys to extract');
  const model = opts.model ?? client.model;
  const now = opts.now ?? (() => new Date());
  const gate = client.budgetGate(opts.budget ?? {});
  const abort = new AbortController();
  const outcomes: ItemOutcome[] = new Array<ItemOutcome>(items.length);
  const byHash = new Map<string, Promise<ItemOutcome>>();
  const newRecords: ExtractionRecord[] = [];
  let pendingStore: ExtractionRecord[] = [];
  let storing: Promise<void> = Promise.resolve();
  const storeEvery = Math.max(1, opts.storeEvery ?? 50);
  let cacheHits = 0;
  let done = 0;
  let fatal: { error: unknown } | undefined;

  const flush = (): Promise<void> => {
    if (!opts.storeNew || pendingStore.length === 0) return storing;
    const batch = pendingStore;
    pendingStore = [];
    storing = storing.then(() => opts.storeNew!(batch));
    return storing;
  };

  const quarantine = (
    item: CatalogRow,
    reason: CollectionsQuarantineRecord['reason'],
    message: string,
    raw?: string,
  ): ItemOutcome => ({
    kind: 'quarantine',
    record: {
      stage: 'extract',
      itemId: typeof item.itemId === 'string' ? item.itemId : String(item.itemId),
      reason,
      message,
      ...(raw !== undefined ? { raw: cutRaw(raw) } : {}),
      at: now().toISOString(),
    },
  });

  async function ask(
    item: CatalogRow,
    hash: string,
    image: Uint8Array,
    mimeType: string,
    title: string,
    description: string,
  ): Promise<ItemOutcome> {
    const messages = extractionMessages({ keys, title, description, image: { bytes: image, mimeType } });
    const outcome = await askWithRepair(client, messages, (c) => parseExtractionReply(c, keys), {
      gate,
      signal: abort.signal,
    });
    if (outcome.ok) {
      const record: ExtractionRecord = {
        itemId: item.itemId,
        contentHash: hash,
        promptVersion: opts.promptVersion,
        model,
        attributes: outcome.value,
        promptTokens: outcome.usage.promptTokens,
        completionTokens: outcome.usage.completionTokens,
        costUsd: outcome.usage.costUsd,
        extractedAt: now().toISOString(),
      };
      return { kind: 'record', record, fresh: true };
    }
    if (outcome.kind === 'budget') return { kind: 'skipped' };
    return quarantine(item, outcome.reason, outcome.message, outcome.raw);
  }

  async function processItem(item: CatalogRow): Promise<ItemOutcome> {
    if (typeof item.itemId !== 'string' || item.itemId === '') {
      return quarantine(item, 'invalid-record', `the catalog row has no item id (${JSON.stringify(item.itemId)})`);
    }
    if (typeof item.imageUri !== 'string' || item.imageUri === '') {
      return quarantine(item, 'invalid-record', `item ${item.itemId} has no image URI`);
    }
    const title = typeof item.title === 'string' ? item.title : '';
    const description = typeof item.description === 'string' ? item.description : '';
    let image: Uint8Array;
    try {
      image = await opts.readImage(item.imageUri);
    } catch (err) {
      return quarantine(item, 'unreadable-image', `cannot read ${item.imageUri}: ${(err as Error).message}`);
    }
    const mimeType = imageMimeType(image);
    if (!mimeType) {
      return quarantine(
        item,
        'unreadable-image',
        `${item.imageUri} is not a PNG, JPEG, WebP or GIF image (${image.length} bytes)`,
      );
    }
    const hash = contentHash(image, title, description);
    const cached = opts.cached?.get(hash);
    if (cached) {
      cacheHits++;
      return { kind: 'record', record: { ...cached, itemId: item.itemId }, fresh: false };
    }
    const twin = byHash.get(hash);
    if (twin) {
      // Another item of this batch has identical content: share its answer, pay once.
      const shared = await twin;
      if (shared.kind === 'record') {
        cacheHits++;
        return { kind: 'record', record: { ...shared.record, itemId: item.itemId }, fresh: false };
      }
      if (shared.kind === 'quarantine')
        return { kind: 'quarantine', record: { ...shared.record, itemId: item.itemId } };
      return shared;
    }
    if (gate.exhausted) return { kind: 'skipped' };
    const asked = ask(item, hash, image, mimeType, title, description);
    byHash.set(hash, asked);
    return asked;
  }

  await runConcurrently(items.length, opts.parallelism ?? client.concurrency * 2, async (i) => {
    const item = items[i]!;
    if (fatal) {
      outcomes[i] = { kind: 'skipped' };
      return;
    }
    try {
      const outcome = await processItem(item);
      outcomes[i] = outcome;
      if (outcome.kind === 'record' && outcome.fresh) {
        newRecords.push(outcome.record);
        pendingStore.push(outcome.record);
        if (pendingStore.length >= storeEvery) await flush();
      }
    } catch (error) {
      outcomes[i] = { kind: 'skipped' };
      if (!fatal) {
        fatal = { error };
        abort.abort(error);
      }
      return;
    }
    done++;
    opts.onProgress?.(done, items.length);
  });
  // Keep what was paid for even when the stage fails: the retry finds it in the cache.
  try {
    await flush();
  } catch (error) {
    fatal ??= { error };
  }
  if (fatal) throw fatal.error;

  const records: ExtractionRecord[] = [];
  const quarantined: CollectionsQuarantineRecord[] = [];
  const unprocessed: string[] = [];
  outcomes.forEach((o, i) => {
    if (o.kind === 'record') records.push(o.record);
    else if (o.kind === 'quarantine') quarantined.push(o.record);
    else unprocessed.push(items[i]!.itemId);
  });
  return {
    records,
    newRecords,
    quarantined,
    cacheHits,
    usage: gate.spent(),
    budgetExhausted: unprocessed.length > 0 && gate.exhausted,
    unprocessed,
  };
}

/** The attributes of a record, for callers that only need the values. */
export function recordAttributes(records: readonly ExtractionRecord[]): Map<string, Attributes> {
  return new Map(records.map((r) => [r.itemId, r.attributes]));
}
