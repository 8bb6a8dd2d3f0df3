import { describe, expect, it } from 'vitest';
import {
  assertValidPolicy,
  conservativePolicy,
  defaultPolicy,
  recommend,
  theilSenSlope,
  type QuotaResource,
  type RecommenderPolicy,
  type UsageSample,
} from '../../../../lib/quota/rightsizing/recommend.js';
import { mulberry32 } from '../../../../bench/quota/traces.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 26);

/** `hours` hourly samples ending just before NOW, from a function of the hour index (0 = oldest). */
function series(hours: number, f: (h: number) => { avg: number; peak?: number }): UsageSample[] {
  return Array.from({ length: hours }, (_, h) => {
    const { avg, peak } = f(h);
    return { hourStartMs: NOW - (hours - h) * HOUR, avg, peak: peak ?? avg };
  });
}

/** A policy with no trend, burst, margin or step limits in the way, so each test turns on only what it checks. */
function plain(overrides: Partial<RecommenderPolicy> = {}): RecommenderPolicy {
  return {
    halfLifeHours: 24,
    targetPercentile: 0.95,
    safetyMargin: 0,
    usePeak: false,
    trendHorizonHours: 0,
    burstAllowance: 0,
    floor: 1,
    ceiling: 1e9,
    maxStepUpRatio: 100,
    maxStepDownRatio: 0.99,
    minSamples: 24,
    ...overrides,
  };
}

describe('recommend: missing data', () => {
  it('keeps the current value with a warning when samples are fewer than minSamples', () => {
    const r = recommend(
      500,
      series(10, () => ({ avg: 5 })),
      plain(),
      NOW,
    );
    expect(r.value).toBe(500);
    expect(r.warnings.join(' ')).toMatch(/insufficient usage data: 10 usable hourly sample\(s\), 24 needed/);
    expect(r.components).toBeUndefined();
  });

  it('uses the floor, never 0, when there is neither data nor a current value', () => {
    for (const current of [0, -3, Number.NaN]) {
      const r = recommend(current, [], plain({ floor: 2 }), NOW);
      expect(r.value).toBe(2);
      expect(r.warnings.join(' ')).toMatch(/no current value, using the floor/);
    }
  });

  it('keeps a current value below the floor at the floor', () => {
    const r = recommend(0.5, [], plain({ floor: 4 }), NOW);
    expect(r.value).toBe(4);
    expect(r.warnings.join(' ')).toMatch(/outside \[floor, ceiling\]/);
  });

  it('ignores non-finite, negative and future samples, and says how many', () => {
    const good = series(30, () => ({ avg: 100 }));
    const bad: UsageSample[] = [
      { hourStartMs: NOW + HOUR, avg: 1e6, peak: 1e6 },
      { hourStartMs: NOW - HOUR, avg: Number.NaN, peak: 5 },
      { hourStartMs: NOW - HOUR, avg: -5, peak: 5 },
    ];
    const r = recommend(100, [...good, ...bad], plain(), NOW);
    expect(r.warnings.join(' ')).toMatch(/3 usage sample\(s\) ignored/);
    expect(r.components?.samplesUsed).toBe(30);
    expect(r.value).toBeLessThan(110);
  });

  it('never recommends 0 for an all-zero history', () => {
    for (const resource of ['memory', 'vcores', 'apps', 'qps', 'bandwidth', 'custom'] as const) {
      const policy = defaultPolicy(resource);
      let current = 1000;
      // Many steps down: the value converges to the floor and stays there.
      for (let i = 0; i < 60; i++)
        current = recommend(
          current,
          series(200, () => ({ avg: 0 })),
          policy,
          NOW,
        ).value;
      expect(current).toBe(policy.floor);
      expect(current).toBeGreaterThan(0);
    }
  });
});

describe('recommend: the percentile', () => {
  it('is the usage level × (1 + margin) for steady usage, within one 5% bucket, never below', () => {
    const r = recommend(
      100,
      series(72, () => ({ avg: 200 })),
      plain({ safetyMargin: 0.15 }),
      NOW,
    );
    expect(r.raw).toBeGreaterThanOrEqual(200 * 1.15);
    expect(r.raw).toBeLessThanOrEqual(200 * 1.15 * 1.05);
    expect(r.reason).toMatch(/p95 of hourly averages/);
  });

  it('covers a value held 10% of the time at p95 but not at p80', () => {
    const s = series(240, (h) => ({ avg: h % 10 === 0 ? 1000 : 100 }));
    expect(recommend(100, s, plain({ targetPercentile: 0.95, halfLifeHours: 1e6 }), NOW).value).toBeGreaterThanOrEqual(
      1000,
    );
    expect(recommend(100, s, plain({ targetPercentile: 0.8, halfLifeHours: 1e6 }), NOW).value).toBeLessThan(110);
  });

  it('uses hourly peaks when usePeak is set', () => {
    const s = series(48, () => ({ avg: 100, peak: 300 }));
    expect(recommend(100, s, plain({ usePeak: true }), NOW).value).toBeGreaterThanOrEqual(300);
    expect(recommend(100, s, plain({ usePeak: false }), NOW).value).toBeLessThan(110);
  });

  it('lets old usage fade with the half-life', () => {
    // 5 days at 1000, then 5 days at 100 (most recent).
    const s = series(240, (h) => ({ avg: h < 120 ? 1000 : 100 }));
    const short = recommend(500, s, plain({ halfLifeHours: 12, targetPercentile: 0.9 }), NOW);
    const long = recommend(500, s, plain({ halfLifeHours: 24 * 30, targetPercentile: 0.9 }), NOW);
    // With a 12 h half-life the old 1000s weigh 2^-10 of the recent ones: p90 is the recent level.
    expect(short.value).toBeLessThan(110);
    // With a 30-day half-life the old half still counts almost fully: p90 lands in it.
    expect(long.value).toBeGreaterThanOrEqual(1000);
  });

  it('does not depend on sample order', () => {
    const rand = mulberry32(7);
    const s = series(200, () => ({ avg: 50 + rand() * 100, peak: 150 + rand() * 100 }));
    const shuffled = [...s].reverse();
    const policy = defaultPolicy('qps');
    expect(recommend(120, shuffled, policy, NOW)).toEqual(recommend(120, s, policy, NOW));
  });
});

describe('recommend: trend and burst', () => {
  it('projects a growth trend over the horizon with the Theil–Sen slope of daily maxima', () => {
    // +1 unit per hour, 7 days.
    const s = series(168, (h) => ({ avg: 100 + h }));
    const without = recommend(200, s, plain({ halfLifeHours: 1 }), NOW);
    const withTrend = recommend(200, s, plain({ halfLifeHours: 1, trendHorizonHours: 48 }), NOW);
    expect(withTrend.components?.slopePerHour).toBeCloseTo(1, 6);
    expect(withTrend.components?.trend).toBeCloseTo(48, 6);
    expect(withTrend.raw - without.raw).toBeCloseTo(48, 6);
  });

  it('adds nothing for a falling trend', () => {
    const s = series(168, (h) => ({ avg: 500 - h }));
    const r = recommend(400, s, plain({ trendHorizonHours: 48 }), NOW);
    expect(r.components?.slopePerHour).toBeLessThan(0);
    expect(r.components?.trend).toBe(0);
  });

  it('is not moved by one outlier day', () => {
    const days = [100, 100, 100, 5000, 100, 100, 100].map((y, i) => ({ x: i * 24, y }));
    expect(theilSenSlope(days)).toBe(0);
  });

  it('adds the burst allowance share of the gap between the largest recent peak and the target', () => {
    const s = series(100, (h) => ({ avg: 100, peak: h === 90 ? 600 : 100 }));
    const r = recommend(100, s, plain({ burstAllowance: 0.5, targetPercentile: 0.5 }), NOW);
    const c = r.components!;
    expect(c.burst).toBeCloseTo(0.5 * (600 - c.withMargin), 9);
    expect(r.raw).toBeCloseTo(c.withMargin + c.burst, 9);
  });

  it('ignores peaks older than the window for the burst', () => {
    const s = series(400, (h) => ({ avg: 100, peak: h === 10 ? 5000 : 100 }));
    const r = recommend(100, s, plain({ burstAllowance: 1, targetPercentile: 0.5 }), NOW);
    expect(r.components?.burst).toBe(0);
  });
});

describe('recommend: clamps and steps', () => {
  const steady = (v: number) => series(48, () => ({ avg: v }));

  it('clamps to the floor and the ceiling with a warning', () => {
    const low = recommend(10, steady(0.01), plain({ floor: 5, maxStepDownRatio: 0.9 }), NOW);
    expect(low.value).toBe(5);
    expect(low.warnings.join(' ')).toMatch(/below the floor 5/);
    const high = recommend(10_000, steady(5000), plain({ ceiling: 3000 }), NOW);
    expect(high.value).toBe(3000);
    expect(high.warnings.join(' ')).toMatch(/above the ceiling 3000/);
  });

  it('limits one step up and one step down', () => {
    const up = recommend(100, steady(1000), plain({ maxStepUpRatio: 0.5 }), NOW);
    expect(up.value).toBe(150);
    expect(up.warnings.join(' ')).toMatch(/step limited: wanted .*, raised to 150/);
    expect(up.reason).toMatch(/step-limited up/);
    const down = recommend(1000, steady(10), plain({ maxStepDownRatio: 0.25 }), NOW);
    expect(down.value).toBe(750);
    expect(down.reason).toMatch(/step-limited down/);
  });

  it('does not step-limit a quota without a current value', () => {
    const r = recommend(0, steady(1000), plain({ maxStepUpRatio: 0.1 }), NOW);
    expect(r.value).toBeGreaterThanOrEqual(1000);
    expect(r.warnings.join(' ')).toMatch(/no current value/);
  });

  it('rounds up to roundUpTo', () => {
    const r = recommend(10, steady(3.2), plain({ roundUpTo: 1 }), NOW);
    expect(r.value).toBe(4);
    expect(Number.isInteger(r.value)).toBe(true);
  });

  it('stays within [floor, ceiling] and the step bounds for random inputs', () => {
    const rand = mulberry32(2026);
    const resources: QuotaResource[] = ['memory', 'vcores', 'apps', 'qps', 'bandwidth', 'custom'];
    for (let trial = 0; trial < 200; trial++) {
      const policy = defaultPolicy(resources[trial % resources.length]!);
      const scale = Math.pow(10, rand() * 6);
      const hours = Math.floor(rand() * 300);
      const s = series(hours, () => {
        const avg = rand() < 0.05 ? 0 : rand() * scale;
        return { avg, peak: avg * (1 + rand()) };
      });
      const current = rand() < 0.1 ? 0 : Math.max(policy.floor, rand() * scale * 2);
      const r = recommend(current, s, policy, NOW);
      expect(r.value).toBeGreaterThanOrEqual(policy.floor);
      expect(r.value).toBeLessThanOrEqual(policy.ceiling);
      if (current > 0 && hours >= policy.minSamples) {
        const step = policy.roundUpTo ?? 0;
        expect(r.value).toBeLessThanOrEqual(Math.max(policy.floor, current * (1 + policy.maxStepUpRatio) + step));
        // A step-limited cut may overshoot by one rounding step when rounding up would undo it.
        expect(r.value).toBeGreaterThanOrEqual(
          Math.max(policy.floor, Math.min(current * (1 - policy.maxStepDownRatio), policy.ceiling) - step) - 1e-9,
        );
      }
      expect(recommend(current, s, policy, NOW)).toEqual(r);
    }
  });
});

describe('policies', () => {
  it('has a valid default for every resource', () => {
    for (const resource of ['memory', 'vcores', 'apps', 'qps', 'bandwidth', 'custom'] as const) {
      expect(() => assertValidPolicy(defaultPolicy(resource))).not.toThrow();
      expect(() => assertValidPolicy(conservativePolicy(resource))).not.toThrow();
      // On a steady diurnal series the conservative policy sizes at least as high as the default one.
      const s = series(200, (h) => ({ avg: 100 + (h % 24) * 5, peak: 130 + (h % 24) * 5 }));
      expect(recommend(200, s, conservativePolicy(resource), NOW).raw).toBeGreaterThanOrEqual(
        recommend(200, s, defaultPolicy(resource), NOW).raw,
      );
    }
    expect(defaultPolicy('memory').usePeak).toBe(true);
    expect(defaultPolicy('qps').usePeak).toBe(false);
  });

  it('rejects invalid policies with the field named', () => {
    const bad: Array<[Partial<RecommenderPolicy>, RegExp]> = [
      [{ floor: 0 }, /floor must be > 0/],
      [{ ceiling: 0.5 }, /ceiling \(0.5\) must be ≥ floor/],
      [{ targetPercentile: 1.5 }, /targetPercentile/],
      [{ halfLifeHours: 0 }, /halfLifeHours/],
      [{ maxStepDownRatio: 1 }, /maxStepDownRatio/],
      [{ safetyMargin: Number.NaN }, /safetyMargin must be a finite number/],
      [{ burstAllowance: 2 }, /burstAllowance/],
      [{ trendWindowHours: 3 }, /trendWindowHours/],
    ];
    for (const [override, message] of bad) {
      expect(() => recommend(10, [], plain(override), NOW)).toThrow(message);
    }
  });
});
