import type { Quota } from '../../../schemas/quota.js';
import { RATE_LIMIT_RULES_FORMAT, type RateLimitRule, type RateLimitRulesFile } from '../limiter/rules.js';
import { valuesByUtcHour } from '../schedule.js';
import { writeFileAtomic } from './atomic-file.js';

/**
 * The rate-limit rules file the in-process limiter (lib/quota/limiter) watches: one rule per rate-limit quota,
 * keyed by the quota id, with a burst of one second's worth (at least 1 request).
 */
export function rateLimitRulesOf(quotas: readonly Quota[], generatedAt: Date): RateLimitRulesFile {
  const rules: RateLimitRule[] = quotas
    .filter((q) => q.spec.kind === 'rateLimit')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((q) => {
      const spec = q.spec as Extract<Quota['spec'], { kind: 'rateLimit' }>;
      const sq = q.schedule?.values.qps;
      const sb = spec.bandwidthBytesPerSec === null ? undefined : q.schedule?.values.bandwidthBytesPerSec;
      if (q.schedule && (sq || sb)) {
        // Scheduled: the limiter switches by UTC hour; bursts follow the hour's rate (one second's worth).
        const slotHours = q.schedule.slotHours;
        return {
          key: q.id,
          qps: spec.qps,
          bandwidthBytesPerSec: spec.bandwidthBytesPerSec,
          scheduleUtc: {
            // The spec's value is the ceiling of every slot (a hand edit that lowers it caps the schedule).
            ...(sq ? { qps: valuesByUtcHour(sq, slotHours).map((v) => Math.min(v, spec.qps)) } : {}),
            ...(sb
              ? {
                  bandwidthBytesPerSec: valuesByUtcHour(sb, slotHours).map((v) =>
                    Math.min(v, spec.bandwidthBytesPerSec ?? v),
                  ),
                }
              : {}),
          },
        };
      }
      return {
        key: q.id,
        qps: spec.qps,
        burst: Math.max(spec.qps, 1),
        bandwidthBytesPerSec: spec.bandwidthBytesPerSec,
        ...(spec.bandwidthBytesPerSec === null ? {} : { burstBytes: spec.bandwidthBytesPerSec }),
      };
    });
  return { format: RATE_LIMIT_RULES_FORMAT, generatedAt: generatedAt.toISOString(), rules };
}

/** Writes the rules file atomically (limiters never read half a file); returns the number of rules. */
export async function writeRateLimitRules(file: string, quotas: readonly Quota[], generatedAt: Date): Promise<number> {
  const doc = rateLimitRulesOf(quotas, generatedAt);
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
  return doc.rules.length;
}
