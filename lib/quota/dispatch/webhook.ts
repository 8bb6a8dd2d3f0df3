import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { DispatchFailed, DispatchRejected } from '../errors.js';

/**
 * Quota changes as a signed webhook: a JSON POST with
 *  - `X-Sluice-Delivery`: an id that stays the same across retries, so a receiver can drop duplicates;
 *  - `X-Sluice-Timestamp`: seconds since the epoch;
 *  - `X-Sluice-Signature`: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>`.
 * A 5xx answer or a network error is retried with exponential backoff; a 4xx is final.
 */

export const SIGNATURE_HEADER = 'x-sluice-signature';
export const TIMESTAMP_HEADER = 'x-sluice-timestamp';
export const DELIVERY_HEADER = 'x-sluice-delivery';

/** `sha256=<hex>` for a timestamp and body. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Checks a received signature in constant time (for receivers, and for the tests). */
export function verifyWebhookSignature(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const got = Buffer.from(signature);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

/** Options of {@link postWebhook}. */
export interface WebhookOptions {
  url: string;
  /** The HMAC secret; without one the request is sent unsigned (and says so in no header). */
  secret?: string;
  /** @default 5 */
  maxAttempts?: number;
  /** First backoff; doubles each retry. @default 200 */
  initialBackoffMs?: number;
  /** @default 5000 */
  maxBackoffMs?: number;
  /** Per-attempt timeout. @default 10000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** @default a random UUID */
  deliveryId?: string;
  /** @default Date.now */
  now?: () => number;
}

/** What the webhook call did. */
export interface WebhookResult {
  status: number;
  attempts: number;
  deliveryId: string;
}

/**
 * POSTs `payload` as JSON. Retries 5xx and network errors; throws {@link DispatchRejected} on a 4xx and
 * {@link DispatchFailed} when the attempts run out.
 */
export async function postWebhook(payload: unknown, options: WebhookOptions): Promise<WebhookResult> {
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const body = JSON.stringify(payload);
  const deliveryId = options.deliveryId ?? randomUUID();
  const maxAttempts = options.maxAttempts ?? 5;
  let backoff = options.initialBackoffMs ?? 200;
  let lastProblem = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const timestamp = String(Math.floor(now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      [DELIVERY_HEADER]: deliveryId,
      [TIMESTAMP_HEADER]: timestamp,
    };
    if (options.secret) headers[SIGNATURE_HEADER] = signWebhook(options.secret, timestamp, body);
    try {
      const response = await doFetch(options.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      const text = await response.text().catch(() => '');
      if (response.ok) return { status: response.status, attempts: attempt, deliveryId };
      if (response.status < 500) {
        throw new DispatchRejected(
          `webhook ${options.url} refused the quota update with ${response.status}: ${text.slice(0, 300)}; ` +
            'check the URL and the shared secret (SLUICE_QUOTA_WEBHOOK_SECRET)',
        );
      }
      lastProblem = `${response.status} ${text.slice(0, 200)}`;
    } catch (err) {
      if (err instanceof DispatchRejected) throw err;
      lastProblem = (err as Error).message;
    }
    if (attempt < maxAttempts) {
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, options.maxBackoffMs ?? 5000);
    }
  }
  throw new DispatchFailed(`webhook ${options.url} failed after ${maxAttempts} attempts; last: ${lastProblem}`);
}
