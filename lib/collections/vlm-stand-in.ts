/**
 * A STAND-IN for a remote VLM, for tests, benchmarks and the demo: a local HTTP server that speaks the
 * OpenAI chat-completions protocol with images (`POST /v1/chat/completions`, images as `data:` URLs) and answers from
 * the ground truth instead of looking at the picture. It is not a model: it hashes each image's bytes and looks the
 * hash up in `truth`, then answers the prompt (see vlm-prompts.ts) from those attributes, with seeded,
 * deterministic noise:
 *
 * - `wrongRate`: an extraction replaces one attribute by another value of its key; a verification flips its answer
 *   (with a lower confidence, as a real model tends to when it errs).
 * - `synonymRate`: a value is answered as one of its synonyms (`crimson` for `red`).
 * - `malformedRate` / `schemaInvalidRate`: the first reply is not JSON / is JSON of the wrong shape; the repair
 *   request then answers properly (unless `repairMalformedRate` says otherwise).
 * - `serverErrorRate`: 503 (drawn per attempt, so a retry may succeed); `failFirst`: the first N requests get a
 *   given status (503, 429 with `Retry-After`…).
 * - `refusalRate`: a refusal (`finish_reason: content_filter`, or a `refusal` message).
 * - `rejectImages`: images (sha256 hex) answered 400; an image not in the truth is answered 400 too.
 *
 * The noise of a reply depends only on the seed and the request's content (not on arrival order), so a run with
 * concurrency answers the same as a sequential one, and asking the same question twice gives the same answer, like a
 * real model at temperature 0.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ATTRIBUTE_WORDS,
  CATALOG_PATTERNS,
  CATALOG_SHAPES,
  COLOR_NAMES,
  SIZE_NAMES,
} from '../inference/synthetic-catalog.js';
import { normaliseAttribute, type Attributes } from './types.js';
import { detectPromptKind, PROMPT_KIND, readPromptLine, type PromptKind } from './vlm-prompts.js';

/** Options of {@link startVlmStandIn}. */
export interface VlmStandInOptions {
  /** The ground truth: an image's attributes by the sha256 (hex) of its bytes; undefined = unknown image (400). */
  truth: (imageSha256Hex: string) => Attributes | undefined;
  /** @default 1 */
  seed?: number;
  /** Share of extraction answers with one wrong attribute, and of verification answers flipped. @default 0 */
  wrongRate?: number;
  /** Share of attribute values answered as a synonym. @default 0 */
  synonymRate?: number;
  /** Share of first replies that are not JSON. @default 0 */
  malformedRate?: number;
  /** Share of first replies that are JSON of the wrong shape. @default 0 */
  schemaInvalidRate?: number;
  /** Share of repair replies that are still not JSON. @default 0 */
  repairMalformedRate?: number;
  /** Share of attempts answered 503. @default 0 */
  serverErrorRate?: number;
  /** Share of requests refused. @default 0 */
  refusalRate?: number;
  /** The first `count` requests are answered with `status` (with `Retry-After` when given). @default none */
  failFirst?: { status: number; count: number; retryAfterSeconds?: number };
  /** Images (sha256 hex) answered 400. @default none */
  rejectImages?: ReadonlySet<string>;
  /** Answer 400 to requests with `response_format` (as servers without JSON mode do). @default false */
  rejectJsonMode?: boolean;
  /** Delay before each reply. @default 0 */
  latencyMs?: number;
  /** Synonyms of each canonical value (the value itself may be listed). @default ATTRIBUTE_WORDS */
  synonyms?: Record<string, readonly string[]>;
  /** The values of each key that a wrong answer picks from. @default the synthetic catalog's keys and values */
  values?: Record<string, readonly string[]>;
  /** Require `Authorization: Bearer <apiKey>` (401 otherwise). @default none */
  apiKey?: string;
  /** Answer 404 for any other model name. @default any model */
  model?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
}

/** What the stand-in has answered. */
export interface VlmStandInStats {
  requests: number;
  byKind: Record<string, number>;
  /** `ok`, `wrong`, `synonym`, `malformed`, `schema-invalid`, `refusal`, `server-error`, `fail-first`, `rejected`, `unknown-image`, `bad-request`, `unauthorized`, `unknown-model`. */
  byOutcome: Record<string, number>;
  inFlight: number;
  maxInFlight: number;
  /** Tokens reported in the replies' `usage`. */
  promptTokens: number;
  completionTokens: number;
  /** Arrival times (ms since the epoch) of every request, in order. */
  arrivals: number[];
}

export interface VlmStandIn {
  /** Base URL, e.g. `http://127.0.0.1:41234` (the client adds `/v1/chat/completions`). */
  url: string;
  stats(): VlmStandInStats;
  close(): Promise<void>;
}

/** The catalog's keys and values: what a wrong extraction answer picks from by default. */
export const SYNTHETIC_VALUES: Record<string, readonly string[]> = {
  color: COLOR_NAMES,
  shape: CATALOG_SHAPES,
  pattern: CATALOG_PATTERNS,
  size: SIZE_NAMES,
};

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A truth lookup over images and their attributes (the hash of each image's bytes is the key). */
export function truthFromImages(entries: Iterable<{ bytes: Uint8Array; attributes: Attributes }>): {
  lookup: (sha: string) => Attributes | undefined;
  byHash: Map<string, Attributes>;
} {
  const byHash = new Map<string, Attributes>();
  for (const e of entries) byHash.set(sha256Hex(e.bytes), e.attributes);
  return { lookup: (sha) => byHash.get(sha), byHash };
}

/** A uniform number in [0, 1) drawn from the seed and the given parts. */
function draw(seed: number, ...parts: string[]): number {
  const h = createHash('sha256')
    .update(`${seed}\u0000${parts.join('\u0000')}`)
    .digest();
  return h.readUInt32BE(0) / 4294967296;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface WireMessage {
  role?: unknown;
  content?: unknown;
}

function textOf(m: WireMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (!Array.isArray(m.content)) return '';
  return (m.content as { type?: unknown; text?: unknown }[])
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text as string)
    .join('\n');
}

function imageUrlsOf(m: WireMessage): string[] {
  if (!Array.isArray(m.content)) return [];
  return (m.content as { type?: unknown; image_url?: { url?: unknown } }[])
    .filter((p) => p.type === 'image_url' && typeof p.image_url?.url === 'string')
    .map((p) => p.image_url!.url as string);
}

function countWords(text: string): number {
  const words = text.trim().split(/\s+/);
  return words[0] === '' ? 0 : words.length;
}

/** Starts the stand-in; `close()` it when done. */
export async function startVlmStandIn(opts: VlmStandInOptions): Promise<VlmStandIn> {
  const seed = opts.seed ?? 1;
  const synonyms = opts.synonyms ?? ATTRIBUTE_WORDS;
  const values = opts.values ?? SYNTHETIC_VALUES;
  const canonicalOf = new Map<string, string>();
  for (const [canonical, words] of Object.entries(synonyms)) {
    canonicalOf.set(normaliseAttribute(canonical), normaliseAttribute(canonical));
    for (const w of words) canonicalOf.set(normaliseAttribute(w), normaliseAttribute(canonical));
  }
  const canonical = (v: string): string => canonicalOf.get(normaliseAttribute(v)) ?? normaliseAttribute(v);
  const knownWords = new Set<string>(canonicalOf.keys());
  for (const list of Object.values(values)) for (const v of list) knownWords.add(normaliseAttribute(v));

  const stats: VlmStandInStats = {
    requests: 0,
    byKind: {},
    byOutcome: {},
    inFlight: 0,
    maxInFlight: 0,
    promptTokens: 0,
    completionTokens: 0,
    arrivals: [],
  };
  const bump = (map: Record<string, number>, key: string): void => {
    map[key] = (map[key] ?? 0) + 1;
  };
  /** Attempts seen per request content, so per-attempt noise (503) differs between a request and its retry. */
  const attemptsByContent = new Map<string, number>();

  function answerExtraction(text: string, truth: Attributes, contentKey: string): { content: string; outcome: string } {
    const keys = (readPromptLine(text, 'Keys') ?? '')
      .split(',')
      .map(normaliseAttribute)
      .filter((k) => k !== '');
    const truthByKey = new Map(Object.entries(truth).map(([k, v]) => [normaliseAttribute(k), v]));
    const answer: Attributes = {};
    for (const k of keys) {
      const v = truthByKey.get(k);
      if (v !== undefined) answer[k] = canonical(v);
    }
    let outcome = 'ok';
    const wrongable = Object.keys(answer).filter((k) => (values[k] ?? []).some((v) => canonical(v) !== answer[k]));
    if (wrongable.length > 0 && draw(seed, 'wrong', contentKey) < (opts.wrongRate ?? 0)) {
      const key = wrongable[Math.floor(draw(seed, 'wrong-key', contentKey) * wrongable.length)]!;
      const others = (values[key] ?? []).map(canonical).filter((v) => v !== answer[key]);
      answer[key] = others[Math.floor(draw(seed, 'wrong-value', contentKey) * others.length)]!;
      outcome = 'wrong';
    }
    for (const key of Object.keys(answer)) {
      const alternatives = (synonyms[answer[key]!] ?? []).map(normaliseAttribute).filter((w) => w !== answer[key]);
      if (alternatives.length > 0 && draw(seed, 'synonym', contentKey, key) < (opts.synonymRate ?? 0)) {
        answer[key] = alternatives[Math.floor(draw(seed, 'synonym-word', contentKey, key) * alternatives.length)]!;
        if (outcome === 'ok') outcome = 'synonym';
      }
    }
    return { content: JSON.stringify({ attributes: answer }), outcome };
  }

  function answerVerification(
    text: string,
    truth: Attributes,
    contentKey: string,
  ): { content: string; outcome: string } {
    let attributes: Attributes;
    try {
      attributes = JSON.parse(readPromptLine(text, 'Collection attributes') ?? '') as Attributes;
    } catch {
      throw new HttpError(400, 'bad-request', 'the verification prompt has no parsable "Collection attributes:" line');
    }
    const truthByKey = new Map(Object.entries(truth).map(([k, v]) => [normaliseAttribute(k), canonical(v)]));
    const member = Object.entries(attributes).every(
      ([k, v]) => truthByKey.get(normaliseAttribute(k)) === canonical(String(v)),
    );
    const wrong = draw(seed, 'wrong', contentKey) < (opts.wrongRate ?? 0);
    const u = draw(seed, 'confidence', contentKey);
    const confidence = Math.round((wrong ? 0.55 + 0.25 * u : 0.8 + 0.19 * u) * 100) / 100;
    return {
      content: JSON.stringify({ answer: member !== wrong ? 'yes' : 'no', confidence }),
      outcome: wrong ? 'wrong' : 'ok',
    };
  }

  function answerJudge(text: string): { content: string; outcome: string } {
    let names: unknown;
    try {
      names = JSON.parse(readPromptLine(text, 'Collection names') ?? '');
    } catch {
      names = undefined;
    }
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      throw new HttpError(400, 'bad-request', 'the judge prompt has no parsable "Collection names:" line');
    }
    const verdicts = (names as string[]).map((name) => {
      const unknown = normaliseAttribute(name)
        .split(' ')
        .filter((w) => !knownWords.has(w));
      return unknown.length === 0
        ? { name, keep: true }
        : { name, keep: false, reason: `not a product attribute: ${unknown.join(', ')}` };
    });
    return { content: JSON.stringify({ verdicts }), outcome: 'ok' };
  }

  async function answer(body: unknown): Promise<{ payload: unknown; outcome: string }> {
    const req = body as { model?: unknown; messages?: unknown; response_format?: unknown };
    if (typeof req?.model !== 'string' || !Array.isArray(req.messages) || req.messages.length === 0) {
      throw new HttpError(400, 'bad-request', 'the body needs "model" (string) and "messages" (non-empty array)');
    }
    if (opts.rejectJsonMode && req.response_format !== undefined) {
      throw new HttpError(400, 'bad-request', 'response_format is not supported by this server');
    }
    if (opts.model !== undefined && req.model !== opts.model) {
      throw new HttpError(404, 'unknown-model', `the model "${req.model}" does not exist`);
    }
    const messages = req.messages as WireMessage[];
    const userTexts = messages.filter((m) => m.role === 'user').map(textOf);
    const lastKind = detectPromptKind(userTexts[userTexts.length - 1] ?? '');
    const firstText = userTexts.find((t) => detectPromptKind(t) !== undefined && detectPromptKind(t) !== 'repair');
    const kind: PromptKind | undefined =
      lastKind === 'repair' ? (firstText === undefined ? undefined : detectPromptKind(firstText)) : lastKind;
    bump(stats.byKind, lastKind ?? 'unknown');
    if (kind === undefined || firstText === undefined || kind === 'repair') {
      throw new HttpError(400, 'bad-request', `no "Task: ${Object.values(PROMPT_KIND).join('|')}" line in the prompt`);
    }
    const imageUrl = messages.flatMap(imageUrlsOf)[0];
    let imageSha = '';
    if (kind !== 'judge') {
      const m = imageUrl === undefined ? null : /^data:[^;,]+;base64,(.*)$/s.exec(imageUrl);
      if (!m) throw new HttpError(400, 'bad-request', 'the request has no image as a base64 data: URL');
      imageSha = sha256Hex(Buffer.from(m[1]!, 'base64'));
      if (opts.rejectImages?.has(imageSha)) throw new HttpError(400, 'rejected', 'the image cannot be processed');
    }
    const truth = kind === 'judge' ? {} : opts.truth(imageSha);
    if (truth === undefined) throw new HttpError(400, 'unknown-image', `unknown image ${imageSha}`);
    const contentKey = `${kind}\u0000${imageSha}\u0000${firstText}`;
    const attempt = (attemptsByContent.get(`${lastKind}\u0000${contentKey}`) ?? 0) + 1;
    attemptsByContent.set(`${lastKind}\u0000${contentKey}`, attempt);
    if (draw(seed, 'server-error', contentKey, String(lastKind), String(attempt)) < (opts.serverErrorRate ?? 0)) {
      throw new HttpError(503, 'server-error', 'the model server is overloaded');
    }
    if (draw(seed, 'refusal', contentKey) < (opts.refusalRate ?? 0)) {
      const filtered = draw(seed, 'refusal-form', contentKey) < 0.5;
      return {
        payload: completion(
          req.model,
          null,
          filtered ? 'content_filter' : 'stop',
          filtered ? undefined : "I can't help with that request.",
        ),
        outcome: 'refusal',
      };
    }
    let content: string;
    let outcome: string;
    const malformed =
      lastKind === 'repair'
        ? draw(seed, 'repair-malformed', contentKey) < (opts.repairMalformedRate ?? 0)
        : draw(seed, 'malformed', contentKey) < (opts.malformedRate ?? 0);
    if (malformed) {
      content = 'Sure! The product looks like a nice item; I would describe it as colourful.';
      outcome = 'malformed';
    } else if (lastKind !== 'repair' && draw(seed, 'schema-invalid', contentKey) < (opts.schemaInvalidRate ?? 0)) {
      content = JSON.stringify(kind === 'extract' ? { attributes: { color: 7 } } : { result: 'maybe' });
      outcome = 'schema-invalid';
    } else {
      ({ content, outcome } =
        kind === 'extract'
          ? answerExtraction(firstText, truth, contentKey)
          : kind === 'verify'
            ? answerVerification(firstText, truth, contentKey)
            : answerJudge(firstText));
    }
    return { payload: completion(req.model, content, 'stop'), outcome };

    function completion(model: string, text: string | null, finishReason: string, refusal?: string): unknown {
      const promptText = messages.map(textOf).join('\n');
      const images = messages.flatMap(imageUrlsOf).length;
      const promptTokens = images * 85 + Math.ceil(countWords(promptText) * 1.3);
      const completionTokens = Math.max(1, Math.ceil((text ?? refusal ?? '').length / 4));
      stats.promptTokens += promptTokens;
      stats.completionTokens += completionTokens;
      return {
        id: `standin-${stats.requests}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text, refusal: refusal ?? null },
            finish_reason: finishReason,
          },
        ],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      };
    }
  }

  const server = http.createServer((request, response) => {
    stats.requests++;
    stats.arrivals.push(Date.now());
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const requestNumber = stats.requests;
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      void (async () => {
        let status = 200;
        let payload: unknown;
        let headers: Record<string, string> = {};
        try {
          if (opts.latencyMs) await new Promise((r) => setTimeout(r, opts.latencyMs));
          if (request.method !== 'POST' || !/\/chat\/completions\/?$/.test(request.url ?? '')) {
            throw new HttpError(404, 'bad-request', `no route ${request.method} ${request.url}`);
          }
          if (opts.apiKey !== undefined && request.headers.authorization !== `Bearer ${opts.apiKey}`) {
            throw new HttpError(401, 'unauthorized', 'invalid API key');
          }
          if (opts.failFirst && requestNumber <= opts.failFirst.count) {
            const h: Record<string, string> = {};
            if (opts.failFirst.retryAfterSeconds !== undefined)
              h['retry-after'] = String(opts.failFirst.retryAfterSeconds);
            throw new HttpError(opts.failFirst.status, 'fail-first', `scripted failure ${requestNumber}`, h);
          }
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            throw new HttpError(400, 'bad-request', 'the body is not JSON');
          }
          const result = await answer(body);
          payload = result.payload;
          bump(stats.byOutcome, result.outcome);
        } catch (err) {
          const e =
            err instanceof HttpError
              ? err
              : new HttpError(500, 'server-error', `stand-in error: ${(err as Error).message}`);
          status = e.status;
          headers = e.headers;
          payload = { error: { message: e.message, type: e.outcome, code: e.status } };
          bump(stats.byOutcome, e.outcome);
        } finally {
          stats.inFlight--;
        }
        if (response.destroyed) return;
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(JSON.stringify(payload));
      })();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    stats: () => ({
      ...stats,
      byKind: { ...stats.byKind },
      byOutcome: { ...stats.byOutcome },
      arrivals: [...stats.arrivals],
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
