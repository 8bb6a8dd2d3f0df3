import { describe, expect, it } from 'vitest';
import { DecayingHistogram, decayWeight } from '../../../../lib/quota/rightsizing/histogram.js';
import type { UsageSample } from '../../../../lib/quota/rightsizing/recommend.js';
import { vpaDefaults, vpaRecommend, vpaShouldUpdate } from '../../../../lib/quota/rightsizing/vpa.js';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 26);

function series(hours: number, f: (h: number) => { avg: number; peak?: number }): UsageSample[] {
  return Array.from({ length: hours }, (_, h) => {
    const { avg, peak } = f(h);
    return { hourStartMs: NOW - (hours - h) * HOUR, avg, peak: peak ?? avg };
  });
}

describe('DecayingHistogram', () => {
  it('grows bucket widths by the ratio and covers maxValue', () => {
    const h = new DecayingHistogram({ firstBucketSize: 1, ratio: 1.05, maxValue: 1000 });
    expect(h.bucketStart(0)).toBe(0);
    expect(h.bucketStart(1)).toBeCloseTo(1, 12);
    const w1 = h.bucketStart(2) - h.bucketStart(1);
    const w2 = h.bucketStart(3) - h.bucketStart(2);
    expect(w2 / w1).toBeCloseTo(1.05, 12);
    expect(h.bucketStart(h.bucketCount - 1)).toBeGreaterThanOrEqual(1000);
    for (const v of [0, 0.5, 1, 7.3, 99.99, 512, 999]) {
      const i = h.bucketIndex(v);
      expect(h.bucketStart(i)).toBeLessThanOrEqual(v);
      expect(h.bucketStart(i + 1)).toBeGreaterThan(v);
    }
  });

  it('answers percentiles with the end of the bucket: never below the true value, at most one bucket above', () => {
    const h = new DecayingHistogram({ firstBucketSize: 0.1, maxValue: 1000 });
    for (let v = 1; v <= 100; v++) h.add(v, 1);
    for (const [p, truth] of [
      [0.5, 50],
      [0.9, 90],
      [1, 100],
    ] as const) {
      const got = h.percentile(p);
      expect(got).toBeGreaterThanOrEqual(truth);
      expect(got).toBeLessThanOrEqual(truth * 1.05 + 0.1);
    }
    expect(new DecayingHistogram({ firstBucketSize: 1, maxValue: 10 }).percentile(0.9)).toBe(0);
  });

  it('weighs by decay: a sample one half-life old counts half', () => {
    expect(decayWeight(NOW - 24 * HOUR, NOW, 24)).toBeCloseTo(0.5, 12);
    const h = new DecayingHistogram({ firstBucketSize: 0.1, maxValue: 1000 });
    h.add(10, decayWeight(NOW, NOW, 24)); // weight 1
    h.add(500, decayWeight(NOW - 24 * HOUR, NOW, 24)); // weight 0.5
    // 2/3 of the weight is at 10, so p60 is there and p70 is at 500.
    expect(h.percentile(0.6)).toBeLessThan(11);
    expect(h.percentile(0.7)).toBeGreaterThanOrEqual(500);
  });

  it('rejects nonsense options', () => {
    expect(() => new DecayingHistogram({ firstBucketSize: 0, maxValue: 10 })).toThrow(/firstBucketSize/);
    expect(() => new DecayingHistogram({ firstBucketSize: 1, ratio: 1, maxValue: 10 })).toThrow(/ratio/);
    expect(() => new DecayingHistogram({ firstBucketSize: 1, maxValue: 0.5 })).toThrow(/maxValue/);
  });
});

describe('vpaRecommend', () => {
  it('targets p90 × 1.15 of CPU usage, with p50 and p95 bounds', () => {
    // Uniform 1..100 repeated over 10 days with no decay in the way (tiny spread of timestamps is irrelevant).
    const s = series(240, (h) => ({ avg: (h % 100) + 1 }));
    const r = vpaRecommend(s, { ...vpaDefaults('cpu'), halfLifeHours: 1e6 }, NOW);
    expect(r.target / 1.15).toBeGreaterThanOrEqual(89);
    expect(r.target / 1.15).toBeLessThanOrEqual(96);
    expect(r.lowerBound).toBeLessThan(r.target);
    expect(r.upperBound).toBeGreaterThan(r.target);
    expect(r.histogramSamples).toBe(240);
  });

  it('scales the upper bound by (1 + 1/confidence days) and the lower by (1 + 0.001/days)^-2', () => {
    const steady = (hours: number) => series(hours, () => ({ avg: 100 }));
    const oneDay = vpaRecommend(steady(25), vpaDefaults('cpu', 1), NOW);
    const tenDays = vpaRecommend(steady(241), vpaDefaults('cpu', 1), NOW);
    expect(oneDay.confidence).toBeCloseTo(1, 1);
    expect(tenDays.confidence).toBeCloseTo(10, 1);
    // Same histogram level, so the ratio of the upper bounds is (1 + 1/1) / (1 + 1/10).
    expect(oneDay.upperBound / tenDays.upperBound).toBeCloseTo(2 / 1.1, 1);
    expect(oneDay.target).toBeCloseTo(tenDays.target, 9);
    expect(tenDays.lowerBound).toBeCloseTo(oneDay.target * Math.pow(1 + 0.001 / tenDays.confidence, -2), 6);
  });

  it('builds memory from one peak per 24 h window, so a daily spike sets the target', () => {
    // One hour a day at 1000, the rest at 100: CPU's p90 ignores it, memory's window peaks are all 1000.
    const s = series(24 * 7, (h) => ({ avg: 100, peak: h % 24 === 12 ? 1000 : 100 }));
    const mem = vpaRecommend(s, vpaDefaults('memory', 1), NOW);
    const cpu = vpaRecommend(s, vpaDefaults('cpu', 1), NOW);
    expect(mem.target).toBeGreaterThanOrEqual(1000 * 1.15);
    expect(cpu.target).toBeLessThan(200);
    // Windows are aligned to now: the oldest sample (exactly 168 h ago) opens an eighth window.
    expect(mem.histogramSamples).toBe(8);
  });

  it('forgets memory peaks older than 8 windows', () => {
    const s = series(24 * 12, (h) => ({ avg: 100, peak: h < 24 * 3 ? 5000 : 100 }));
    const r = vpaRecommend(s, vpaDefaults('memory', 1), NOW);
    expect(r.target).toBeLessThan(200);
    expect(r.histogramSamples).toBe(8);
  });

  it('records an OOM as max(X + 100, 1.2 X)', () => {
    const s = series(48, () => ({ avg: 100 }));
    const small = vpaRecommend(s, vpaDefaults('memory', 1), NOW, [{ atMs: NOW - HOUR, usage: 200 }]);
    // 200 → max(300, 240) = 300 in the current window, which is the p90 of two windows.
    expect(small.target).toBeGreaterThanOrEqual(300 * 1.15);
    expect(small.target).toBeLessThanOrEqual(300 * 1.15 * 1.06);
    const big = vpaRecommend(s, vpaDefaults('memory', 1), NOW, [{ atMs: NOW - HOUR, usage: 2000 }]);
    expect(big.target).toBeGreaterThanOrEqual(2400 * 1.15);
  });

  it('never goes below its minimum and returns the minimum without data', () => {
    expect(vpaRecommend([], vpaDefaults('memory'), NOW).target).toBe(250);
    expect(
      vpaRecommend(
        series(48, () => ({ avg: 0 })),
        vpaDefaults('cpu'),
        NOW,
      ).target,
    ).toBe(0.025);
  });
});

describe('vpaShouldUpdate', () => {
  const rec = { target: 100, lowerBound: 80, upperBound: 150, confidence: 3, histogramSamples: 72 };
  it('updates outside the bounds or on a change of 10% or more, and always when unset', () => {
    expect(vpaShouldUpdate(70, rec)).toBe(true);
    expect(vpaShouldUpdate(160, rec)).toBe(true);
    expect(vpaShouldUpdate(105, rec)).toBe(false);
    expect(vpaShouldUpdate(120, rec)).toBe(true);
    expect(vpaShouldUpdate(0, rec)).toBe(true);
  });
});
