import { describe, expect, it } from 'vitest';
import { simulate, summarize, type SimConfig } from '../../../../bench/quota/simulate.js';
import { generateTraces, PATTERNS, RESOURCES } from '../../../../bench/quota/traces.js';
import { defaultPolicy } from '../../../../lib/quota/rightsizing/recommend.js';

const config = (budgetAlignment: boolean): SimConfig => ({
  cadenceHours: 24,
  staticHeadroom: 1.5,
  ours: {
    policy: defaultPolicy,
    upDeadband: 0,
    downDeadband: 0.05,
    budgetAlignment,
    cutByTier: { critical: 0, standard: 0.1, 'best-effort': 0.25 },
    budgetStrategy: 'tier-cut-scaled',
  },
});

describe('quota trace generator', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = generateTraces(5, 25, 3);
    expect(generateTraces(5, 25, 3)).toEqual(a);
    expect(generateTraces(6, 25, 3).quotas[0]!.samples).not.toEqual(a.quotas[0]!.samples);
  });

  it('covers every pattern × resource pair with sane samples', () => {
    const t = generateTraces(1, 25, 4);
    const pairs = new Set(t.quotas.map((q) => `${q.pattern}/${q.resource}`));
    expect(pairs.size).toBe(PATTERNS.length * RESOURCES.length);
    for (const q of t.quotas) {
      expect(q.samples).toHaveLength(t.historyHours + t.evalHours);
      for (const s of q.samples) {
        expect(s.avg).toBeGreaterThanOrEqual(0);
        expect(s.peak).toBeGreaterThanOrEqual(s.avg);
      }
    }
    expect(Object.keys(t.budgets).length).toBeGreaterThan(0);
  });
});

describe('quota simulator', () => {
  const traces = generateTraces(3, 25, 6);

  it('never changes static limits, and the oracle never violates', () => {
    const stat = summarize(simulate(traces, 'static', config(false)), undefined, traces.evalHours);
    expect(stat.changes).toBe(0);
    const oracle = summarize(simulate(traces, 'oracle', config(false)), undefined, traces.evalHours);
    expect(oracle.violationHours).toBe(0);
    expect(oracle.slack).toBeGreaterThan(0);
  });

  it('keeps ours within every group budget when alignment is on', () => {
    const on = simulate(traces, 'ours', config(true));
    expect(on.groupHoursOverBudget).toBe(0);
    for (const [group, spend] of Object.entries(on.spendByGroup)) {
      expect(spend).toBeLessThanOrEqual(traces.budgets[group]! * traces.evalHours * (1 + 1e-9));
    }
  });

  it('counts slack and violations consistently', () => {
    const out = simulate(traces, 'vpa', config(false));
    for (const q of out.quotas) {
      expect(q.used).toBeLessThanOrEqual(q.allocated + 1e-9);
      expect(q.violationHours).toBeLessThanOrEqual(traces.evalHours);
      expect(q.finalValue).toBeGreaterThan(0);
    }
    const s = summarize(out, undefined, traces.evalHours);
    expect(s.slack).toBeGreaterThan(0);
    expect(s.slack).toBeLessThan(1);
    expect(s.quotas).toBe(25);
  });
});
