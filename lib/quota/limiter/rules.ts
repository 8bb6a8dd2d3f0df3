import { z } from 'zod';
import { InvalidRateLimitRules } from '../errors.js';

/**
 * The rate-limit rules file: written by the dispatcher (lib/quota/dispatch/rate-limit-rules.ts), read by the
 * in-process limiter in every service. JSON, so that any language can read it:
 *
 * ```json
 * { "format": "sluice.rate-limits/v1", "generatedAt": "2026-11-26T02:00:00.000Z",
 *   "rules": [{ "key": "ads/search/api", "qps": 200, "burst": 200, "bandwidthBytesPerSec": null }] }
 * ```
 */
export const RATE_LIMIT_RULES_FORMAT = 'sluice.rate-limits/v1';

export const RateLimitRule = z.strictObject({
  /** What a service passes to the limiter: the quota id. */
  key: z.string().min(1),
  /** Sustained requests per second. */
  qps: z.number().finite().min(0),
  /** Requests that may come at once (bucket size). @default max(qps, 1) */
  burst: z.number().finite().min(0).optional(),
  /** Sustained bytes per second; null: not limited. */
  bandwidthBytesPerSec: z.number().finite().min(0).nullable().default(null),
  /** Bytes that may come at once. @default bandwidthBytesPerSec */
  burstBytes: z.number().finite().min(0).optional(),
  /**
   * A time-of-day schedule: 24 values per field, index = UTC hour. The limiter applies the current hour's value
   * instead of `qps` / `bandwidthBytesPerSec` (and the bursts default to one second of it unless set). Absent: flat.
   */
  scheduleUtc: z
    .strictObject({
      qps: z.array(z.number().finite().min(0)).length(24).optional(),
      bandwidthBytesPerSec: z.array(z.number().finite().min(0)).length(24).optional(),
    })
    .optional(),
});
export type RateLimitRule = z.infer<typeof RateLimitRule>;

export const RateLimitRulesFile = z.strictObject({
  format: z.literal(RATE_LIMIT_RULES_FORMAT),
  generatedAt: z.iso.datetime(),
  rules: z.array(RateLimitRule),
});
export type RateLimitRulesFile = z.infer<typeof RateLimitRulesFile>;

/** Parses a rules file's text, or throws {@link InvalidRateLimitRules} naming the problem. */
export function parseRateLimitRules(text: string, where = 'rate-limit rules'): RateLimitRulesFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidRateLimitRules(`${where} is not JSON: ${(err as Error).message}`);
  }
  const parsed = RateLimitRulesFile.safeParse(json);
  if (!parsed.success) {
    throw new InvalidRateLimitRules(
      `${where} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const seen = new Set<string>();
  for (const rule of parsed.data.rules) {
    if (seen.has(rule.key)) throw new InvalidRateLimitRules(`${where} has two rules for "${rule.key}"`);
    seen.add(rule.key);
  }
  return parsed.data;
}
