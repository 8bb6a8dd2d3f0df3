import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../../lib/quota/dispatch/atomic-file.js';
import { InvalidRateLimitRules } from '../../../lib/quota/errors.js';
import {
  parseRateLimitRules,
  RATE_LIMIT_RULES_FORMAT,
  RateLimiter,
  TokenBucket,
  watchRulesFile,
  type RateLimitRule,
  type RulesWatch,
} from '../../../lib/quota/limiter/index.js';

function rulesText(rules: Array<Partial<RateLimitRule> & { key: string; qps: number }>): string {
  return JSON.stringify({ format: RATE_LIMIT_RULES_FORMAT, generatedAt: new Date(0).toISOString(), rules });
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('TokenBucket', () => {
  it('allows a burst, then the sustained rate, and never more than its capacity', () => {
    const b = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) expect(b.tryTake(1, 0)).toBe(true);
    expect(b.tryTake(1, 0)).toBe(false);
    expect(b.waitMs(1, 0)).toBe(100);
    expect(b.tryTake(1, 100)).toBe(true);
    expect(b.tryTake(1, 100)).toBe(false);
    expect(b.available(60_000)).toBe(5); // capped at capacity however long it idles
    expect(b.waitMs(6, 60_000)).toBe(Infinity);
  });
});

describe('RateLimiter', () => {
  it('decides per key, refuses without taking tokens, and limits bytes separately', () => {
    const now = 0;
    const limiter = new RateLimiter({ now: () => now });
    limiter.setRules([
      { key: 'a', qps: 2, burst: 2, bandwidthBytesPerSec: null },
      { key: 'b', qps: 100, bandwidthBytesPerSec: 1000, burstBytes: 1000 },
    ]);
    expect(limiter.tryAcquire('a').allowed).toBe(true);
    expect(limiter.tryAcquire('a').allowed).toBe(true);
    expect(limiter.tryAcquire('a')).toMatchObject({ allowed: false, limitedBy: 'qps', retryAfterMs: 500 });
    expect(limiter.tryAcquire('b', { bytes: 800 }).allowed).toBe(true);
    expect(limiter.tryAcquire('b', { bytes: 800 })).toMatchObject({ allowed: false, limitedBy: 'bandwidth' });
    // The refused call took no request token: 99 of the 100 burst tokens are left after one accepted call.
    for (let i = 0; i < 99; i++) expect(limiter.tryAcquire('b').allowed).toBe(true);
    expect(limiter.tryAcquire('b').allowed).toBe(false);
    expect(limiter.tryAcquire('unknown')).toEqual({ allowed: true, retryAfterMs: 0, ruleFound: false });
    expect(new RateLimiter({ unknownKeys: 'deny' }).tryAcquire('x').allowed).toBe(false);
  });

  it('keeps the bucket of an unchanged rule across a reload, and carries tokens into a changed one', () => {
    const now = 0;
    const limiter = new RateLimiter({ now: () => now });
    limiter.setRules([
      { key: 'a', qps: 1, burst: 1, bandwidthBytesPerSec: null },
      { key: 'b', qps: 1, burst: 1, bandwidthBytesPerSec: null },
    ]);
    expect(limiter.tryAcquire('a').allowed).toBe(true);
    expect(limiter.tryAcquire('b').allowed).toBe(true);
    limiter.setRules([
      { key: 'a', qps: 1, burst: 1, bandwidthBytesPerSec: null },
      { key: 'b', qps: 50, burst: 50, bandwidthBytesPerSec: null },
    ]);
    expect(limiter.generation).toBe(2);
    expect(limiter.tryAcquire('a').allowed).toBe(false); // same bucket, still empty: a reload is no free refill
    expect(limiter.tryAcquire('b').allowed).toBe(false); // new rule, but starts from what was left (0)
    expect(limiter.ruleFor('b')?.qps).toBe(50);
  });

  it('refuses malformed rules files with a named problem', () => {
    expect(() => parseRateLimitRules('{')).toThrow(InvalidRateLimitRules);
    expect(() => parseRateLimitRules(rulesText([{ key: 'a', qps: -1 }]))).toThrow(/rules.0.qps/);
    expect(() =>
      parseRateLimitRules(
        rulesText([
          { key: 'a', qps: 1 },
          { key: 'a', qps: 2 },
        ]),
      ),
    ).toThrow(/two rules/);
  });
});

describe('watchRulesFile', () => {
  let dir: string;
  let watch: RulesWatch | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-limiter-'));
  });
  afterEach(() => {
    watch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reloads rules replaced by rename without a restart, and keeps the last good rules on a bad file', async () => {
    const file = path.join(dir, 'rate-limits.json');
    writeFileSync(file, rulesText([{ key: 'svc', qps: 5 }]));
    const limiter = new RateLimiter();
    const errors: Error[] = [];
    let reloads = 0;
    watch = await watchRulesFile(file, limiter, {
      pollIntervalMs: 100,
      onReload: () => reloads++,
      onError: (e) => errors.push(e),
    });
    expect(limiter.ruleFor('svc')?.qps).toBe(5);

    await writeFileAtomic(
      file,
      rulesText([
        { key: 'svc', qps: 7 },
        { key: 'new', qps: 1 },
      ]),
    );
    await until(() => limiter.ruleFor('svc')?.qps === 7, 'the new rules');
    expect(limiter.ruleFor('new')?.qps).toBe(1);

    await writeFileAtomic(file, '{"format": "something else"}');
    await until(() => errors.length > 0, 'the bad file to be reported');
    expect(errors[0]).toBeInstanceOf(InvalidRateLimitRules);
    expect(limiter.ruleFor('svc')?.qps).toBe(7);
    const reloadsBefore = reloads;

    // An in-place rewrite (no rename) is picked up too.
    writeFileSync(file, rulesText([{ key: 'svc', qps: 9 }]));
    await until(() => limiter.ruleFor('svc')?.qps === 9, 'the in-place rewrite');
    expect(limiter.ruleFor('new')).toBeUndefined();
    expect(reloads).toBeGreaterThan(reloadsBefore);
  });

  it('falls back to polling: a change is seen even when no fs event arrives', async () => {
    const file = path.join(dir, 'rules.json');
    writeFileSync(file, rulesText([{ key: 'svc', qps: 1 }]));
    const limiter = new RateLimiter();
    watch = await watchRulesFile(file, limiter, { pollIntervalMs: 50, fsEvents: false });
    await writeFileAtomic(file, rulesText([{ key: 'svc', qps: 3 }]));
    await until(() => limiter.ruleFor('svc')?.qps === 3, 'the polled change');
  });

  it('fails the first load loudly when the file is missing', async () => {
    await expect(watchRulesFile(path.join(dir, 'missing.json'), new RateLimiter())).rejects.toThrow(/ENOENT/);
  });
});
