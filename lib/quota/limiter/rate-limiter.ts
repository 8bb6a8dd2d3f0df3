import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseRateLimitRules, type RateLimitRule } from './rules.js';
import { TokenBucket } from './token-bucket.js';

/**
 * The in-process rate limiter Sluice ships for services (issue 8). Every decision is local: a token bucket per
 * key for requests and, where the rule says so, one for bytes. Rules come from the file the quota dispatcher
 * writes; {@link watchRulesFile} reloads it when it changes, without a restart. A reload builds a complete new
 * rule table and swaps it in with one assignment, so a decision sees either the old table or the new one, never a
 * mix; buckets of keys whose rule did not change keep their state.
 */

/** What {@link RateLimiter.tryAcquire} decided. */
export interface LimitDecision {
  allowed: boolean;
  /** Which bucket refused, when one did. */
  limitedBy?: 'qps' | 'bandwidth';
  /** When trying again may succeed (0 when allowed; Infinity when the request is larger than the bucket). */
  retryAfterMs: number;
  /** False when no rule covers the key (the decision is then `unknownKeys`). */
  ruleFound: boolean;
}

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** What a key without a rule gets: fail open or closed. @default 'allow' */
  unknownKeys?: 'allow' | 'deny';
  /** @default Date.now */
  now?: () => number;
}

interface Entry {
  rule: RateLimitRule;
  /** The UTC hour the buckets were built for (-1: the rule has no schedule). */
  hour: number;
  requests: TokenBucket;
  bytes: TokenBucket | null;
}

function sameSchedule(a: RateLimitRule['scheduleUtc'], b: RateLimitRule['scheduleUtc']): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function sameRule(a: RateLimitRule, b: RateLimitRule): boolean {
  return (
    a.qps === b.qps &&
    a.burst === b.burst &&
    a.bandwidthBytesPerSec === b.bandwidthBytesPerSec &&
    a.burstBytes === b.burstBytes &&
    sameSchedule(a.scheduleUtc, b.scheduleUtc)
  );
}

/** The UTC hour (0..23) of an epoch time. */
function utcHour(ms: number): number {
  return Math.floor((((ms % 86_400_000) + 86_400_000) % 86_400_000) / 3_600_000);
}

/** The rates of a rule at a UTC hour: its schedule's values for the hour, or the flat ones. */
export function ruleInForce(rule: RateLimitRule, hour: number): RateLimitRule {
  const s = rule.scheduleUtc;
  if (!s) return rule;
  const qps = s.qps?.[hour] ?? rule.qps;
  const bw = rule.bandwidthBytesPerSec === null ? null : (s.bandwidthBytesPerSec?.[hour] ?? rule.bandwidthBytesPerSec);
  return {
    key: rule.key,
    qps,
    burst: rule.burst ?? Math.max(qps, 1),
    bandwidthBytesPerSec: bw,
    ...(bw === null ? {} : { burstBytes: rule.burstBytes ?? bw }),
  };
}

export class RateLimiter {
  private table: ReadonlyMap<string, Entry> = new Map();
  private readonly now: () => number;
  private readonly unknownKeys: 'allow' | 'deny';
  /** How many rule tables have been installed. */
  generation = 0;

  constructor(options: RateLimiterOptions = {}) {
    this.now = options.now ?? Date.now;
    this.unknownKeys = options.unknownKeys ?? 'allow';
  }

  /** Installs a new rule set atomically. Keys whose rule is unchanged keep their buckets. */
  setRules(rules: readonly RateLimitRule[]): void {
    const now = this.now();
    const next = new Map<string, Entry>();
    for (const rule of rules) {
      const old = this.table.get(rule.key);
      if (old && sameRule(old.rule, rule)) {
        next.set(rule.key, old);
        continue;
      }
      next.set(rule.key, this.build(rule, old, now));
    }
    this.table = next;
    this.generation += 1;
  }

  /** Buckets for a rule at `now` (a scheduled rule: for the current UTC hour), starting from `old`'s tokens. */
  private build(rule: RateLimitRule, old: Entry | undefined, now: number): Entry {
    const hour = rule.scheduleUtc ? utcHour(now) : -1;
    const r = ruleInForce(rule, Math.max(hour, 0));
    const burst = r.burst ?? Math.max(r.qps, 1);
    const bytesRate = r.bandwidthBytesPerSec;
    const burstBytes = r.burstBytes ?? bytesRate ?? 0;
    // A changed rule starts from what the old bucket held (capped by the new size): a reload is no free refill.
    return {
      rule,
      hour,
      requests: new TokenBucket(r.qps, burst, now, old ? old.requests.available(now) : undefined),
      bytes:
        bytesRate === null
          ? null
          : new TokenBucket(bytesRate, burstBytes, now, old?.bytes ? old.bytes.available(now) : undefined),
    };
  }

  /** The entry of a key with its buckets switched to the current slot when the rule is scheduled. */
  private current(key: string, now: number): Entry | undefined {
    const entry = this.table.get(key);
    if (!entry || entry.hour < 0 || entry.hour === utcHour(now)) return entry;
    const fresh = this.build(entry.rule, entry, now);
    (this.table as Map<string, Entry>).set(key, fresh);
    return fresh;
  }

  /** The rates in force for a key now (a scheduled rule's current hour), if it has a rule. */
  ruleInForceFor(key: string): RateLimitRule | undefined {
    const now = this.now();
    const entry = this.current(key, now);
    return entry ? ruleInForce(entry.rule, Math.max(entry.hour, 0)) : undefined;
  }

  /** The rule of a key, if any. */
  ruleFor(key: string): RateLimitRule | undefined {
    return this.table.get(key)?.rule;
  }

  /** The number of keys with a rule. */
  get size(): number {
    return this.table.size;
  }

  /** Decides one request of `requests` units and `bytes` bytes for `key`, taking the tokens when allowed. */
  tryAcquire(key: string, cost: { requests?: number; bytes?: number } = {}): LimitDecision {
    const now = this.now();
    const entry = this.current(key, now);
    if (!entry) return { allowed: this.unknownKeys === 'allow', retryAfterMs: 0, ruleFound: false };
    const requests = cost.requests ?? 1;
    const bytes = cost.bytes ?? 0;
    // Check both before taking from either, so that a refusal takes nothing.
    if (entry.requests.available(now) < requests) {
      return { allowed: false, limitedBy: 'qps', retryAfterMs: entry.requests.waitMs(requests, now), ruleFound: true };
    }
    if (entry.bytes && bytes > 0 && entry.bytes.available(now) < bytes) {
      return { allowed: false, limitedBy: 'bandwidth', retryAfterMs: entry.bytes.waitMs(bytes, now), ruleFound: true };
    }
    entry.requests.tryTake(requests, now);
    if (entry.bytes && bytes > 0) entry.bytes.tryTake(bytes, now);
    return { allowed: true, retryAfterMs: 0, ruleFound: true };
  }
}

/** Options of {@link watchRulesFile}. */
export interface WatchRulesOptions {
  /** Polling interval, the fallback for file systems without reliable change events. @default 1000 */
  pollIntervalMs?: number;
  /** Use `fs.watch` events (off: polling only, e.g. on network file systems). @default true */
  fsEvents?: boolean;
  /** Called after each successful reload with the number of rules. */
  onReload?: (ruleCount: number) => void;
  /** Called when the file cannot be read or parsed; the limiter keeps its current rules. */
  onError?: (err: Error) => void;
}

/** A running watch; `close()` stops it. */
export interface RulesWatch {
  /** Reads the file now (what the watcher does on a change). */
  reload(): Promise<boolean>;
  close(): void;
}

/**
 * Loads `file` into `limiter` and keeps it loaded: `fs.watch` on the file's directory (the dispatcher replaces the
 * file by rename, which a watch on the file itself would lose) plus polling of its mtime, size and inode as a
 * fallback. A file that fails to parse is reported through `onError` and the previous rules stay in force.
 * Resolves after the first load; rejects if that first load fails.
 */
export async function watchRulesFile(
  file: string,
  limiter: RateLimiter,
  options: WatchRulesOptions = {},
): Promise<RulesWatch> {
  let lastSignature = '';
  let loading: Promise<boolean> | null = null;
  let again = false;
  let closed = false;

  async function loadOnce(): Promise<boolean> {
    const info = await stat(file);
    const signature = `${info.ino}:${info.size}:${info.mtimeMs}`;
    const text = await readFile(file, 'utf8');
    // Remembered before parsing: a bad file is reported once, not at every poll, until it changes again.
    lastSignature = signature;
    const parsed = parseRateLimitRules(text, `rate-limit rules file ${file}`);
    if (closed) return false;
    limiter.setRules(parsed.rules);
    options.onReload?.(parsed.rules.length);
    return true;
  }

  // One load at a time; a change during a load triggers one more.
  function reload(): Promise<boolean> {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      let ok = false;
      do {
        again = false;
        try {
          ok = await loadOnce();
        } catch (err) {
          ok = false;
          options.onError?.(err as Error);
        }
      } while (again && !closed);
      loading = null;
      return ok;
    })();
    return loading;
  }

  await loadOnce();

  let watcher: FSWatcher | null = null;
  if (options.fsEvents !== false) {
    try {
      watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
        if (name === null || name.toString() === path.basename(file)) void reload();
      });
      watcher.on('error', (err) => options.onError?.(err));
    } catch (err) {
      options.onError?.(err as Error); // no fs.watch here: polling alone keeps the rules fresh
    }
  }
  const poll = setInterval(() => {
    stat(file).then(
      (info) => {
        if (`${info.ino}:${info.size}:${info.mtimeMs}` !== lastSignature) void reload();
      },
      (err: Error) => options.onError?.(err),
    );
  }, options.pollIntervalMs ?? 1000);
  poll.unref();

  return {
    reload,
    close() {
      closed = true;
      clearInterval(poll);
      watcher?.close();
    },
  };
}
