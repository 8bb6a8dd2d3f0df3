import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CollectionsError } from '../../../lib/collections/errors.js';
import {
  chatCompletionsUrl,
  vlmClientOptions,
  VlmClient,
  VlmRequestError,
  type VlmClientOptions,
  type VlmMessage,
} from '../../../lib/collections/vlm-client.js';
import { extractionMessages, parseExtractionReply } from '../../../lib/collections/vlm-prompts.js';
import { startVlmStandIn, type VlmStandIn, type VlmStandInOptions } from '../../../lib/collections/vlm-stand-in.js';
import { syntheticImages, type SyntheticImages } from './vlm-fixtures.js';

const KEYS = ['color', 'shape', 'pattern', 'size'];

describe('VlmClient against the VLM stand-in over HTTP', () => {
  let data: SyntheticImages;
  let standIn: VlmStandIn | undefined;
  beforeAll(async () => {
    data = await syntheticImages(12);
  });
  afterEach(async () => {
    await standIn?.close();
    standIn = undefined;
  });

  async function start(opts: Partial<VlmStandInOptions> = {}): Promise<VlmStandIn> {
    standIn = await startVlmStandIn({ truth: data.lookup, ...opts });
    return standIn;
  }
  function client(s: VlmStandIn, opts: Partial<VlmClientOptions> = {}): VlmClient {
    return new VlmClient({ url: s.url, model: 'stand-in', backoffMs: 5, ...opts });
  }
  function ask(i: number): VlmMessage[] {
    const row = data.rows[i]!;
    return extractionMessages({
      keys: KEYS,
      title: row.title,
      description: row.description,
      image: { bytes: data.images.get(row.imageUri)!, mimeType: 'image/png' },
    });
  }
  async function rejection(p: Promise<unknown>): Promise<VlmRequestError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VlmRequestError);
    expect(err).toBeInstanceOf(CollectionsError);
    return err as VlmRequestError;
  }

  it('answers from the ground truth', async () => {
    const s = await start();
    const reply = await client(s).chat(ask(0));
    const parsed = parseExtractionReply(reply.content, KEYS);
    expect(parsed).toEqual({ ok: true, value: data.attributesOf.get(data.rows[0]!.itemId) });
    expect(reply.finishReason).toBe('stop');
    expect(reply.usage.calls).toBe(1);
    expect(reply.usage.promptTokens).toBeGreaterThan(85);
  });

  it('uses a URL that already ends in /v1 as is', async () => {
    expect(chatCompletionsUrl('http://h:1')).toBe('http://h:1/v1/chat/completions');
    expect(chatCompletionsUrl('http://h:1/v1/')).toBe('http://h:1/v1/chat/completions');
    expect(chatCompletionsUrl('https://api.x.com/openai/v1')).toBe('https://api.x.com/openai/v1/chat/completions');
    const s = await start();
    const reply = await new VlmClient({ url: `${s.url}/v1`, model: 'm' }).chat(ask(1));
    expect(parseExtractionReply(reply.content, KEYS).ok).toBe(true);
  });

  it('builds client options from a workflow endpoint, reading the key from the named variable', () => {
    const endpoint = {
      url: 'http://h:1',
      model: 'llava',
      apiKeyEnv: 'MY_VLM_KEY',
      concurrency: 4,
      pricePer1kTokens: 0.2,
      timeoutSeconds: 30,
      maxAttempts: 3,
    };
    expect(vlmClientOptions(endpoint, { MY_VLM_KEY: 'k' })).toMatchObject({
      apiKey: 'k',
      concurrency: 4,
      timeoutMs: 30_000,
      maxAttempts: 3,
    });
    expect(() => vlmClientOptions(endpoint, {})).toThrow(/MY_VLM_KEY is not set/);
  });

  it('retries 503 and succeeds, counting every request as a call', async () => {
    const s = await start({ failFirst: { status: 503, count: 2 } });
    const c = client(s, { maxAttempts: 4 });
    const reply = await c.chat(ask(2));
    expect(parseExtractionReply(reply.content, KEYS).ok).toBe(true);
    expect(reply.usage.calls).toBe(3);
    expect(c.usage().calls).toBe(3);
    expect(s.stats().requests).toBe(3);
    expect(s.stats().byOutcome).toMatchObject({ 'fail-first': 2, ok: 1 });
  });

  it('waits for Retry-After on 429', async () => {
    const s = await start({ failFirst: { status: 429, count: 1, retryAfterSeconds: 1 } });
    const started = Date.now();
    const reply = await client(s, { backoffMs: 1 }).chat(ask(3));
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(reply.usage.calls).toBe(2);
    const [first, second] = s.stats().arrivals;
    expect(second! - first!).toBeGreaterThanOrEqual(950);
  });

  it('gives up with vlm-unavailable after maxAttempts of 5xx', async () => {
    const s = await start({ serverErrorRate: 1 });
    const err = await rejection(client(s, { maxAttempts: 3 }).chat(ask(4)));
    expect(err.kind).toBe('vlm-unavailable');
    expect(err.failureType).toBe('ServiceUnavailable');
    expect(err.details.usage.calls).toBe(3);
    expect(err.details.status).toBe(503);
    expect(s.stats().requests).toBe(3);
  });

  it('times out each attempt and then fails with vlm-unavailable', async () => {
    const s = await start({ latencyMs: 400 });
    const err = await rejection(client(s, { timeoutMs: 60, maxAttempts: 2 }).chat(ask(5)));
    expect(err.kind).toBe('vlm-unavailable');
    expect(err.message).toMatch(/no reply within 60 ms/);
    expect(err.details.usage.calls).toBe(2);
  });

  it('fails a connection error with vlm-unavailable', async () => {
    const s = await start();
    const url = s.url;
    await s.close();
    standIn = undefined;
    const err = await rejection(new VlmClient({ url, model: 'm', backoffMs: 1, maxAttempts: 2 }).chat(ask(0)));
    expect(err.kind).toBe('vlm-unavailable');
    expect(err.details.usage.calls).toBe(2);
  });

  it('rejects the item on 400 without retrying', async () => {
    const rejected = data.shaOf.get(data.rows[6]!.itemId)!;
    const s = await start({ rejectImages: new Set([rejected]) });
    const c = client(s);
    const err = await rejection(c.chat(ask(6)));
    expect(err.kind).toBe('item-rejected');
    expect(err.details).toMatchObject({ reason: 'client-error', status: 400 });
    expect(err.details.raw).toMatch(/cannot be processed/);
    expect(s.stats().requests).toBe(1);
    // An image the truth does not know is a 400 too.
    const unknown = extractionMessages({
      keys: KEYS,
      title: 't',
      description: 'd',
      image: { bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), mimeType: 'image/png' },
    });
    expect((await rejection(c.chat(unknown))).details).toMatchObject({ reason: 'client-error', status: 400 });
  });

  it('drops JSON mode for good when the endpoint rejects response_format', async () => {
    const s = await start({ rejectJsonMode: true });
    const c = client(s, { maxAttempts: 1 });
    const first = await c.chat(ask(0));
    expect(parseExtractionReply(first.content, KEYS).ok).toBe(true);
    expect(first.usage.calls).toBe(2);
    const second = await c.chat(ask(1));
    expect(second.usage.calls).toBe(1);
    expect(s.stats().byOutcome).toEqual({ 'bad-request': 1, ok: 2 });
  });

  it('takes an endpoint that rejects every request for misconfigured', async () => {
    const s = await start({ rejectImages: new Set(data.shaOf.values()) });
    const c = client(s, { maxConsecutiveRejections: 3 });
    expect((await rejection(c.chat(ask(0)))).kind).toBe('item-rejected');
    expect((await rejection(c.chat(ask(1)))).kind).toBe('item-rejected');
    const third = await rejection(c.chat(ask(2)));
    expect(third.kind).toBe('vlm-misconfigured');
    expect(third.message).toMatch(/rejected the last 3 requests in a row/);
    // A success in between resets the count.
    const s2 = await startVlmStandIn({
      truth: data.lookup,
      rejectImages: new Set([data.shaOf.get(data.rows[0]!.itemId)!]),
    });
    try {
      const c2 = client(s2, { maxConsecutiveRejections: 2 });
      expect((await rejection(c2.chat(ask(0)))).kind).toBe('item-rejected');
      await c2.chat(ask(1));
      expect((await rejection(c2.chat(ask(0)))).kind).toBe('item-rejected');
    } finally {
      await s2.close();
    }
  });

  it('fails with vlm-misconfigured on 401 and on an unknown model (404)', async () => {
    const s = await start({ apiKey: 'secret', model: 'llava' });
    expect((await rejection(client(s, { model: 'llava' }).chat(ask(0)))).kind).toBe('vlm-misconfigured');
    expect((await rejection(client(s, { model: 'llava', apiKey: 'wrong' }).chat(ask(0)))).details.status).toBe(401);
    const missing = await rejection(client(s, { model: 'nope', apiKey: 'secret' }).chat(ask(0)));
    expect(missing.kind).toBe('vlm-misconfigured');
    expect(missing.details.status).toBe(404);
    const ok = await client(s, { model: 'llava', apiKey: 'secret' }).chat(ask(0));
    expect(parseExtractionReply(ok.content, KEYS).ok).toBe(true);
    expect(s.stats().byOutcome).toMatchObject({ unauthorized: 2, 'unknown-model': 1, ok: 1 });
  });

  it('turns a refusal (content_filter or a refusal message) into item-rejected / refusal', async () => {
    const s = await start({ refusalRate: 1 });
    const c = client(s);
    const errors = await Promise.all(data.rows.map((_, i) => rejection(c.chat(ask(i)))));
    for (const e of errors) expect(e.details).toMatchObject({ reason: 'refusal' });
    const messages = new Set(errors.map((e) => (/content_filter/.test(e.message) ? 'filter' : 'message')));
    expect(messages).toEqual(new Set(['filter', 'message']));
    expect(s.stats().requests).toBe(data.rows.length);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const s = await start({ latencyMs: 100 });
    const limited = client(s, { concurrency: 3 });
    await Promise.all(data.rows.map((_, i) => limited.chat(ask(i))));
    expect(s.stats().maxInFlight).toBeLessThanOrEqual(3);
    expect(s.stats().maxInFlight).toBeGreaterThan(1);
    expect(limited.usage().calls).toBe(data.rows.length);
    // The same load through a client with room for all of it does reach the server at once.
    const s2 = await startVlmStandIn({ truth: data.lookup, latencyMs: 100 });
    try {
      const wide = client(s2, { concurrency: 64 });
      await Promise.all(data.rows.map((_, i) => wide.chat(ask(i))));
      expect(s2.stats().maxInFlight).toBeGreaterThan(3);
    } finally {
      await s2.close();
    }
  });

  it('spaces requests by the rate limit', async () => {
    const s = await start();
    const c = client(s, { rateLimit: 40, concurrency: 8 });
    const started = Date.now();
    await Promise.all(data.rows.slice(0, 8).map((_, i) => c.chat(ask(i))));
    const arrivals = s.stats().arrivals;
    expect(arrivals).toHaveLength(8);
    // 40/s = one request per 25 ms: the i-th request cannot be sent, let alone arrive, before start + i × 25 ms
    // (2 ms of timer slack).
    for (let i = 1; i < arrivals.length; i++) expect(arrivals[i]! - started).toBeGreaterThanOrEqual(i * 25 - 2);
  });

  it('adds up calls, tokens and cost over every request', async () => {
    const s = await start({ failFirst: { status: 503, count: 1 } });
    const c = client(s, { pricePer1kTokens: 0.5 });
    const replies = await Promise.all([0, 1, 2, 3].map((i) => c.chat(ask(i))));
    const stats = s.stats();
    const total = c.usage();
    expect(total.calls).toBe(5);
    expect(total.calls).toBe(stats.requests);
    expect(total.promptTokens).toBe(stats.promptTokens);
    expect(total.completionTokens).toBe(stats.completionTokens);
    expect(total.costUsd).toBeCloseTo(((stats.promptTokens + stats.completionTokens) / 1000) * 0.5, 12);
    expect(replies.reduce((n, r) => n + r.usage.calls, 0)).toBe(5);
    expect(replies.reduce((n, r) => n + r.usage.costUsd, 0)).toBeCloseTo(total.costUsd, 12);
  });

  it('stops at the budget gate before a request that would exceed it', async () => {
    const s = await start();
    const c = client(s);
    const gate = c.budgetGate({ maxCalls: 2 });
    await c.chat(ask(0), { gate });
    await c.chat(ask(1), { gate });
    const err = await rejection(c.chat(ask(2), { gate }));
    expect(err.kind).toBe('budget-exhausted');
    expect(gate.exhausted).toBe(true);
    expect(s.stats().requests).toBe(2);
    expect(gate.spent().calls).toBe(2);
    const priced = client(s, { pricePer1kTokens: 1 });
    const costGate = priced.budgetGate({ maxCostUsd: 0.0001 });
    expect((await rejection(priced.chat(ask(3), { gate: costGate }))).kind).toBe('budget-exhausted');
    expect(s.stats().requests).toBe(2);
  });
});
