/**
 * A client for any OpenAI-compatible chat-completions endpoint that accepts images (vLLM, TGI, Ollama, a hosted
 * API): `POST <url>/v1/chat/completions` with the image inlined as a `data:` URL, `temperature: 0` and
 * `response_format: {type: 'json_object'}`.
 *
 * It owns the endpoint's limits: at most `concurrency` requests in flight, at most `rateLimit` requests per second
 * (each retry is a request too), and retries with exponential backoff and jitter on timeouts, connection errors,
 * 408, 429 (honouring `Retry-After`) and 5xx. Failures are {@link VlmRequestError}s (a {@link CollectionsError})
 * whose `kind` says what the caller does: `vlm-unavailable` (retry the activity later), `item-rejected` (quarantine
 * the item, with `reason`), `vlm-misconfigured` (fail the run), `budget-exhausted` (stop cleanly).
 *
 * Every HTTP request counts as a call in {@link VlmUsage}, failed ones and retries included; tokens come from the
 * reply's `usage`, cost is tokens / 1000 × `pricePer1kTokens`.
 */
import type { VlmEndpoint } from '../../schemas/collections.js';
import { CollectionsError, type CollectionsErrorKind } from './errors.js';
import { addUsage, NO_USAGE, type CollectionsQuarantineReason, type VlmBudget, type VlmUsage } from './types.js';

/** One part of a user message: text, or an image (sent as a base64 `data:` URL). */
export type VlmContentPart = { type: 'text'; text: string } | { type: 'image'; bytes: Uint8Array; mimeType: string };

/** One chat message. */
export interface VlmMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | VlmContentPart[];
}

/** What one chat request returned. */
export interface VlmReply {
  /** The message text (empty when the model sent none). */
  content: string;
  /** The choice's `finish_reason` (`stop`, `length`…). */
  finishReason: string;
  /** Spent on this request, retries included. */
  usage: VlmUsage;
}

/** Options of {@link VlmClient}; they mirror {@link VlmEndpoint}. */
export interface VlmClientOptions {
  /** Base URL; requests go to `<url>/v1/chat/completions` (a URL already ending in `/v1` is used as is). */
  url: string;
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`. @default none */
  apiKey?: string;
  /** Requests in flight at once. @default 8 */
  concurrency?: number;
  /** Requests per second (a token bucket of one). @default unlimited */
  rateLimit?: number;
  /** USD per 1,000 tokens, prompt and completion alike. @default 0 */
  pricePer1kTokens?: number;
  /** Per-request timeout. @default 60000 */
  timeoutMs?: number;
  /** Attempts per request on timeouts, connection errors, 408, 429 and 5xx. @default 4 */
  maxAttempts?: number;
  /** First backoff; doubles each attempt, with jitter (×0.5–1). @default 500 */
  backoffMs?: number;
  /** Longest wait between attempts, `Retry-After` included. @default 30000 */
  maxBackoffMs?: number;
  /** Tokens the endpoint may spend on a reply (`max_tokens`). @default 512 */
  maxTokens?: number;
  /**
   * Send `response_format: {type: 'json_object'}`. When the endpoint answers 400/422 naming `response_format` (some
   * servers do not support it), the client drops it for good and resends; the prompts ask for JSON anyway.
   * @default true
   */
  jsonMode?: boolean;
  /**
   * After this many 4xx item rejections in a row with no success in between, the endpoint is taken to refuse every
   * request (e.g. a text-only model, or images it never accepts) and the client throws `vlm-misconfigured` instead
   * of letting every item go to quarantine. @default 25
   */
  maxConsecutiveRejections?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Options of one {@link VlmClient.chat} call. */
export interface VlmChatOptions {
  /** Every HTTP request (retries too) must first be admitted by this gate; a refusal throws `budget-exhausted`. */
  gate?: VlmBudgetGate;
  /** Aborts the request and its retries (throws `vlm-unavailable`). */
  signal?: AbortSignal;
}

/** A failed chat request; `usage` is what it spent before failing. */
export class VlmRequestError extends CollectionsError {
  constructor(
    kind: CollectionsErrorKind,
    message: string,
    readonly details: {
      usage: VlmUsage;
      /** For `item-rejected`: the quarantine reason (`refusal` or `client-error`). */
      reason?: CollectionsQuarantineReason;
      /** The HTTP status of the last reply, when there was one. */
      status?: number;
      /** The reply body or refusal text (cut to 2,000 characters). */
      raw?: string;
    },
    options?: { cause?: unknown },
  ) {
    super(kind, message, options);
  }
}

/** The chat-completions URL of an endpoint base URL. */
export function chatCompletionsUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/v1') ? `${trimmed}/chat/completions` : `${trimmed}/v1/chat/completions`;
}

/** {@link VlmClientOptions} of a workflow's {@link VlmEndpoint}; the API key is read from `env[apiKeyEnv]`. */
export function vlmClientOptions(
  endpoint: VlmEndpoint,
  env: Record<string, string | undefined> = process.env,
): VlmClientOptions {
  let apiKey: string | undefined;
  if (endpoint.apiKeyEnv !== undefined) {
    apiKey = env[endpoint.apiKeyEnv];
    if (!apiKey) {
      throw new CollectionsError(
        'vlm-misconfigured',
        `the VLM API key variable ${endpoint.apiKeyEnv} is not set on this worker; export it where the worker runs`,
      );
    }
  }
  return {
    url: endpoint.url,
    model: endpoint.model,
    apiKey,
    concurrency: endpoint.concurrency,
    rateLimit: endpoint.rateLimit,
    pricePer1kTokens: endpoint.pricePer1kTokens,
    timeoutMs: endpoint.timeoutSeconds * 1000,
    maxAttempts: endpoint.maxAttempts,
  };
}

/** Cuts text to `max` characters (the quarantine keeps raw replies this short). */
export function cutRaw(text: string, max = 2000): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A rough token count of a request before sending it: 85 per image, about 4 characters per token for text. */
export function estimateRequestTokens(messages: readonly VlmMessage[], maxTokens: number): number {
  let chars = 0;
  let images = 0;
  for (const m of messages) {
    if (typeof m.content === 'string') chars += m.content.length;
    else
      for (const p of m.content) {
        if (p.type === 'text') chars += p.text.length;
        else images++;
      }
  }
  // Expect a short JSON reply, not the full max_tokens: the gate learns the real size from the first replies.
  return Math.ceil(chars / 4) + images * 85 + Math.min(maxTokens, 64);
}

/**
 * Admits VLM requests within a budget of calls and estimated cost. Before each HTTP request the client reserves one
 * call; after it, settles what the request really spent. A request is refused when it could push spending past the
 * budget: calls spent + reserved + 1 > `maxCalls`, or cost spent + reserved estimates + this estimate > `maxCostUsd`
 * (the estimate is the larger of the request's own and the most tokens any reply has used so far). Once refused,
 * every later request is refused too, so a stage stops at one clean point.
 */
export class VlmBudgetGate {
  private spentUsage: VlmUsage = NO_USAGE;
  private reservedCalls = 0;
  private reservedCost = 0;
  private maxTokensSeen = 0;
  private refused = false;

  constructor(
    readonly budget: VlmBudget,
    private readonly pricePer1kTokens: number,
  ) {}

  /** Whether a request was refused (the budget is spent). */
  get exhausted(): boolean {
    return this.refused;
  }

  /** What the admitted requests spent. */
  spent(): VlmUsage {
    return this.spentUsage;
  }

  /** Reserves one request of about `estimatedTokens`; false (and exhausted from then on) when over budget. */
  tryReserve(estimatedTokens: number): { cost: number } | undefined {
    if (this.refused) return undefined;
    const cost = (Math.max(estimatedTokens, this.maxTokensSeen) / 1000) * this.pricePer1kTokens;
    const { maxCalls, maxCostUsd } = this.budget;
    if (
      (maxCalls !== undefined && this.spentUsage.calls + this.reservedCalls + 1 > maxCalls) ||
      (maxCostUsd !== undefined && this.spentUsage.costUsd + this.reservedCost + cost > maxCostUsd + 1e-12)
    ) {
      this.refused = true;
      return undefined;
    }
    this.reservedCalls++;
    this.reservedCost += cost;
    return { cost };
  }

  /** Releases a reservation and records what its request spent. */
  settle(reservation: { cost: number }, usage: VlmUsage): void {
    this.reservedCalls--;
    this.reservedCost -= reservation.cost;
    this.spentUsage = addUsage(this.spentUsage, usage);
    this.maxTokensSeen = Math.max(this.maxTokensSeen, usage.promptTokens + usage.completionTokens);
  }
}

/** A counting semaphore for the requests in flight. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `Retry-After` in ms: delta seconds or an HTTP date; undefined when absent or unparsable. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The shape of a chat-completions reply we read (everything else is ignored). */
interface ChatCompletion {
  choices?: { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
}

function tokenCount(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0;
}

/** One attempt's outcome: a reply, or a failure that is retried or final. */
type Attempt =
  | { ok: true; reply: ChatCompletion; usage: VlmUsage }
  | { ok: false; retry: boolean; waitMs?: number; error: VlmRequestError };

/** The chat-completions client; see the module comment. */
export class VlmClient {
  readonly model: string;
  readonly pricePer1kTokens: number;
  readonly concurrency: number;
  private readonly endpoint: string;
  private readonly slots: Slots;
  private readonly intervalMs: number;
  private nextSlotAt = 0;
  private total: VlmUsage = NO_USAGE;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxTokens: number;
  private jsonMode: boolean;
  private readonly maxConsecutiveRejections: number;
  private consecutiveRejections = 0;

  constructor(private readonly options: VlmClientOptions) {
    try {
      new URL(options.url);
    } catch {
      throw new CollectionsError('invalid-option', `VLM url ${JSON.stringify(options.url)} is not a URL`);
    }
    this.endpoint = chatCompletionsUrl(options.url);
    this.model = options.model;
    this.pricePer1kTokens = options.pricePer1kTokens ?? 0;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));
    this.slots = new Slots(this.concurrency);
    this.intervalMs = options.rateLimit !== undefined && options.rateLimit > 0 ? 1000 / options.rateLimit : 0;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.maxTokens = options.maxTokens ?? 512;
    this.maxConsecutiveRejections = Math.max(1, options.maxConsecutiveRejections ?? 25);
    this.jsonMode = options.jsonMode ?? true;
  }

  /** Running totals over every request this client made. */
  usage(): VlmUsage {
    return this.total;
  }

  /** A budget gate priced like this endpoint. */
  budgetGate(budget: VlmBudget): VlmBudgetGate {
    return new VlmBudgetGate(budget, this.pricePer1kTokens);
  }

  /** The cost of `tokens` tokens at this endpoint's price. */
  costOf(tokens: number): number {
    return (tokens / 1000) * this.pricePer1kTokens;
  }

  /**
   * Sends one chat request, retrying transient failures.
   * @throws VlmRequestError `vlm-unavailable` after `maxAttempts`, `item-rejected` (4xx or refusal),
   *   `vlm-misconfigured` (401/403/404), `budget-exhausted` (the gate refused an attempt).
   */
  async chat(messages: readonly VlmMessage[], opts: VlmChatOptions = {}): Promise<VlmReply> {
    const wireMessages = messages.map(toWireMessage);
    const body = (): string =>
      JSON.stringify({
        model: this.model,
        messages: wireMessages,
        temperature: 0,
        max_tokens: this.maxTokens,
        ...(this.jsonMode ? { response_format: { type: 'json_object' } } : {}),
      });
    const estimate = estimateRequestTokens(messages, this.maxTokens);
    let spent: VlmUsage = NO_USAGE;
    let last: VlmRequestError | undefined;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (opts.signal?.aborted) {
        throw new VlmRequestError('vlm-unavailable', 'the VLM request was cancelled', { usage: spent });
      }
      const reservation = opts.gate?.tryReserve(estimate);
      if (opts.gate && !reservation) {
        throw new VlmRequestError(
          'budget-exhausted',
          `the VLM budget (${JSON.stringify(opts.gate.budget)}) does not allow another request`,
          { usage: spent },
        );
      }
      const sentJsonMode = this.jsonMode;
      const result = await this.attempt(body(), spent, opts.signal);
      const used = result.ok ? result.usage : { ...NO_USAGE, calls: 1 };
      spent = addUsage(spent, used);
      this.total = addUsage(this.total, used);
      if (reservation) opts.gate!.settle(reservation, used);
      if (result.ok) {
        this.consecutiveRejections = 0;
        return this.readReply(result.reply, spent);
      }
      last = new VlmRequestError(result.error.kind, result.error.message, { ...result.error.details, usage: spent });
      if (
        sentJsonMode &&
        result.error.kind === 'item-rejected' &&
        (result.error.details.status === 400 || result.error.details.status === 422) &&
        /response_format|json_object/i.test(result.error.details.raw ?? '')
      ) {
        // The endpoint does not support JSON mode: drop it for every later request and resend this one at once.
        this.jsonMode = false;
        attempt--;
        continue;
      }
      if (result.error.kind === 'item-rejected' && ++this.consecutiveRejections >= this.maxConsecutiveRejections) {
        throw new VlmRequestError(
          'vlm-misconfigured',
          `VLM endpoint ${this.endpoint} (model ${this.model}) rejected the last ${this.consecutiveRejections} ` +
            `requests in a row without one success (last: ${result.error.message}); check that the model accepts ` +
            'images and the request format',
          last.details,
        );
      }
      if (!result.retry || attempt === this.maxAttempts) break;
      const backoff = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
      try {
        await sleep(Math.min(this.maxBackoffMs, Math.max(backoff, result.waitMs ?? 0)), opts.signal);
      } catch {
        throw new VlmRequestError('vlm-unavailable', 'the VLM request was cancelled', { usage: spent });
      }
    }
    if (last!.kind === 'vlm-unavailable') {
      throw new VlmRequestError(
        'vlm-unavailable',
        `VLM endpoint ${this.endpoint} failed ${spent.calls} time(s): ${last!.message}`,
        last!.details,
        { cause: last!.cause },
      );
    }
    throw last!;
  }

  /** Waits for a slot and the rate limit, sends one HTTP request and classifies the outcome. */
  private async attempt(body: string, spent: VlmUsage, signal?: AbortSignal): Promise<Attempt> {
    await this.slots.acquire();
    try {
      if (this.intervalMs > 0) {
        const now = Date.now();
        const at = Math.max(now, this.nextSlotAt);
        this.nextSlotAt = at + this.intervalMs;
        await sleep(at - now, signal).catch(() => undefined);
      }
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
      if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
      const timeout = AbortSignal.timeout(this.timeoutMs);
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(this.endpoint, {
          method: 'POST',
          headers,
          body,
          signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
        });
        text = await response.text();
      } catch (err) {
        const timedOut = timeout.aborted;
        return {
          ok: false,
          retry: !signal?.aborted,
          error: new VlmRequestError(
            'vlm-unavailable',
            timedOut
              ? `no reply within ${this.timeoutMs} ms`
              : `connection failed: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
            { usage: spent },
            { cause: err },
          ),
        };
      }
      return this.classify(response, text, spent);
    } finally {
      this.slots.release();
    }
  }

  private classify(response: Response, text: string, spent: VlmUsage): Attempt {
    const status = response.status;
    const raw = cutRaw(text);
    if (status >= 200 && status < 300) {
      let reply: ChatCompletion;
      try {
        reply = JSON.parse(text) as ChatCompletion;
      } catch {
        reply = {};
      }
      if (!Array.isArray(reply.choices) || reply.choices.length === 0) {
        // A 200 that is not a chat completion: a proxy or gateway glitch, or the URL is not an OpenAI-style API.
        return {
          ok: false,
          retry: true,
          error: new VlmRequestError(
            'vlm-unavailable',
            `HTTP ${status} without a chat completion: ${cutRaw(text, 200)}`,
            {
              usage: spent,
              status,
              raw,
            },
          ),
        };
      }
      const promptTokens = tokenCount(reply.usage?.prompt_tokens);
      const completionTokens = tokenCount(reply.usage?.completion_tokens);
      return {
        ok: true,
        reply,
        usage: { calls: 1, promptTokens, completionTokens, costUsd: this.costOf(promptTokens + completionTokens) },
      };
    }
    const detail = `HTTP ${status}: ${cutRaw(text, 300)}`;
    if (status === 408 || status === 429 || status >= 500) {
      return {
        ok: false,
        retry: true,
        waitMs: retryAfterMs(response.headers.get('retry-after')),
        error: new VlmRequestError('vlm-unavailable', detail, { usage: spent, status, raw }),
      };
    }
    if (status === 401 || status === 403 || status === 404) {
      return {
        ok: false,
        retry: false,
        error: new VlmRequestError(
          'vlm-misconfigured',
          `VLM endpoint ${this.endpoint} (model ${this.model}) refused the request with ${detail}; check the URL, ` +
            'the model name and the API key',
          { usage: spent, status, raw },
        ),
      };
    }
    return {
      ok: false,
      retry: false,
      error: new VlmRequestError('item-rejected', `the VLM rejected the request: ${detail}`, {
        usage: spent,
        status,
        raw,
        reason: 'client-error',
      }),
    };
  }

  private readReply(reply: ChatCompletion, usage: VlmUsage): VlmReply {
    const choice = reply.choices![0]!;
    const finishReason = typeof choice.finish_reason === 'string' ? choice.finish_reason : 'stop';
    const content = typeof choice.message?.content === 'string' ? choice.message.content : '';
    const refusal = typeof choice.message?.refusal === 'string' ? choice.message.refusal : undefined;
    if (finishReason === 'content_filter' || (refusal !== undefined && refusal !== '')) {
      throw new VlmRequestError('item-rejected', `the VLM refused: ${refusal ?? `finish_reason ${finishReason}`}`, {
        usage,
        reason: 'refusal',
        status: 200,
        raw: cutRaw(refusal ?? content),
      });
    }
    return { content, finishReason, usage };
  }
}

function toWireMessage(m: VlmMessage): unknown {
  if (typeof m.content === 'string') return { role: m.role, content: m.content };
  return {
    role: m.role,
    content: m.content.map((p) =>
      p.type === 'text'
        ? { type: 'text', text: p.text }
        : {
            type: 'image_url',
            image_url: { url: `data:${p.mimeType};base64,${Buffer.from(p.bytes).toString('base64')}` },
          },
    ),
  };
}

/**
 * Runs `work(i)` for i in 0..count-1 with at most `concurrency` running at once, starting them in index order.
 * Resolves when all have settled; rejects with the first error after the others have settled.
 */
export async function runConcurrently(
  count: number,
  concurrency: number,
  work: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let firstError: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        await work(i);
      } catch (error) {
        firstError ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane));
  if (firstError) throw firstError.error;
}
