/**
 * Seeded, deterministic hourly usage traces for the quota simulator: per quota one (avg, peak) pair per hour, for a
 * day of onboarding history (day 0) followed by the evaluated days. Patterns: diurnal, bursty, growing, idle and
 * step-change; resource kinds: memory (MiB), vcores, apps (capacity) and qps, bandwidth (rate).
 */
import type { QuotaResource, UsageSample } from '../../lib/quota/rightsizing/recommend.js';

export const PATTERNS = ['diurnal', 'bursty', 'growing', 'idle', 'step-change'] as const;
export type Pattern = (typeof PATTERNS)[number];

export const RESOURCES: readonly QuotaResource[] = ['memory', 'vcores', 'apps', 'qps', 'bandwidth'];

export interface QuotaTrace {
  quotaId: string;
  pattern: Pattern;
  resource: QuotaResource;
  /** Capacity kinds are violated when an hour's peak exceeds the quota, rate kinds when its average does. */
  kind: 'capacity' | 'rate';
  budgetGroup: string;
  tier: 'critical' | 'standard' | 'best-effort';
  priority: number;
  /** Price of one unit for one hour. */
  unitPricePerHour: number;
  /** Hourly demand, onboarding day first; `hourStartMs` from `startMs`. */
  samples: UsageSample[];
  /** What a pattern drew, for the report (e.g. the step's day and factor). */
  detail: string;
}

export interface TraceSet {
  seed: number;
  startMs: number;
  /** Hours of onboarding history before the evaluation starts (24). */
  historyHours: number;
  /** Evaluated hours (days × 24). */
  evalHours: number;
  quotas: QuotaTrace[];
  /** Budget per hour per group. */
  budgets: Record<string, number>;
}

/** mulberry32: a small, well-mixed 32-bit PRNG; enough for reproducible synthetic traces. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOUR_MS = 3_600_000;

/** Typical demand level (log-uniform range) and price per unit-hour, per resource. */
const RESOURCE_SHAPE: Record<
  Exclude<QuotaResource, 'custom'>,
  { lo: number; hi: number; price: number; peakJitter: number }
> = {
  memory: { lo: 512, hi: 65_536, price: 0.000_005, peakJitter: 0.08 },
  vcores: { lo: 1, hi: 96, price: 0.03, peakJitter: 0.3 },
  apps: { lo: 3, hi: 60, price: 0.02, peakJitter: 0.25 },
  qps: { lo: 20, hi: 20_000, price: 0.000_2, peakJitter: 0.4 },
  bandwidth: { lo: 5, hi: 800, price: 0.002, peakJitter: 0.35 },
};

/**
 * Each group's budget is this × what the simulator's oracle (every quota at each day's highest demand) would
 * spend: finance leaves 5–35% over a perfect daily rightsizer. `budgetScale` < 1 makes every group tighter.
 */
export const BUDGET_HEADROOM = [1.05, 1.15, 1.25, 1.35, 1.1];

const TIERS = ['critical', 'standard', 'best-effort'] as const;

/** Standard normal from two uniforms (Box–Muller). */
function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Generates `quotaCount` traces (patterns and resources assigned round-robin, so every pattern × resource pair
 * appears) over `days` evaluated days plus one onboarding day.
 */
export function generateTraces(seed: number, quotaCount = 125, days = 30, groups = 5, budgetScale = 1): TraceSet {
  const startMs = Date.UTC(2026, 9, 1);
  const historyHours = 24;
  const totalHours = historyHours + days * 24;
  const quotas: QuotaTrace[] = [];
  for (let i = 0; i < quotaCount; i++) {
    const rand = mulberry32((seed * 1_000_003 + i * 7_919) >>> 0);
    const pattern = PATTERNS[i % PATTERNS.length]!;
    const resource = RESOURCES[Math.floor(i / PATTERNS.length) % RESOURCES.length]! as Exclude<QuotaResource, 'custom'>;
    const shape = RESOURCE_SHAPE[resource];
    const base = shape.lo * Math.pow(shape.hi / shape.lo, rand());
    const phase = rand() * 24;
    // Memory is steadier than CPU or request rates: smaller daily swing and peaks closer to the average.
    const swingScale = resource === 'memory' ? 0.5 : 1;
    const noiseSigma = 0.03 + rand() * 0.07;
    const weekendDip = 0.6 + rand() * 0.4;
    let amplitude = (0.2 + rand() * 0.45) * swingScale;
    let detail = '';
    let level: (h: number) => number;
    const daily = (h: number) => {
      const day = Math.floor(h / 24);
      const weekend = day % 7 === 5 || day % 7 === 6 ? weekendDip : 1;
      return (1 + amplitude * Math.sin((2 * Math.PI * (h - phase)) / 24)) * weekend;
    };
    switch (pattern) {
      case 'diurnal':
        level = (h) => base * daily(h);
        detail = `amplitude ${amplitude.toFixed(2)}`;
        break;
      case 'bursty': {
        amplitude *= 0.4;
        const burstProb = 0.015 + rand() * 0.035;
        const bursts = new Float64Array(totalHours).fill(1);
        for (let h = 0; h < totalHours; h++) {
          if (rand() < burstProb) {
            const len = 1 + Math.floor(rand() * 6);
            const mult = 2 + rand() * 3;
            for (let k = h; k < Math.min(totalHours, h + len); k++) bursts[k] = Math.max(bursts[k]!, mult);
          }
        }
        level = (h) => base * 0.4 * daily(h) * bursts[h]!;
        detail = `burst probability ${burstProb.toFixed(3)}/h`;
        break;
      }
      case 'growing': {
        amplitude *= 0.6;
        const growth = 0.5 + rand() * 1.5;
        level = (h) => base * daily(h) * (1 + (growth * h) / totalHours);
        detail = `+${Math.round(growth * 100)}% over the trace`;
        break;
      }
      case 'idle': {
        // Half were never used much; the other half go idle after a few active days.
        const goesIdleAt = rand() < 0.5 ? 0 : 24 * (3 + Math.floor(rand() * 8));
        const idleLevel = 0.005 + rand() * 0.03;
        level = (h) => base * daily(h) * (h < goesIdleAt ? 1 : idleLevel);
        detail =
          goesIdleAt === 0 ? `idle throughout (${(idleLevel * 100).toFixed(1)}%)` : `idle from day ${goesIdleAt / 24}`;
        break;
      }
      case 'step-change': {
        amplitude *= 0.6;
        const at = 24 * (8 + Math.floor(rand() * 15));
        const factors = [0.35, 0.5, 2, 3];
        const factor = factors[Math.floor(rand() * factors.length)]!;
        level = (h) => base * daily(h) * (h < at ? 1 : factor);
        detail = `×${factor} at day ${at / 24}`;
        break;
      }
    }
    const samples: UsageSample[] = [];
    for (let h = 0; h < totalHours; h++) {
      const avgRaw = Math.max(0, level(h) * Math.exp(noiseSigma * gaussian(rand)));
      const peakRaw = avgRaw * (1 + Math.abs(gaussian(rand)) * shape.peakJitter * (resource === 'memory' ? 1 : 0.8));
      const round = resource === 'apps' ? (v: number) => Math.round(v * 100) / 100 : (v: number) => v;
      const peak = resource === 'apps' ? Math.ceil(peakRaw) : peakRaw;
      samples.push({ hourStartMs: startMs + h * HOUR_MS, avg: round(avgRaw), peak: Math.max(peak, round(avgRaw)) });
    }
    const tier = TIERS[Math.floor(rand() * TIERS.length)]!;
    quotas.push({
      quotaId: `q${String(i).padStart(3, '0')}-${pattern}-${resource}`,
      pattern,
      resource,
      kind: resource === 'qps' || resource === 'bandwidth' ? 'rate' : 'capacity',
      budgetGroup: `group-${Math.floor(i / 25) % groups}`,
      tier,
      priority: tier === 'critical' ? 3 : tier === 'standard' ? 2 : 1,
      unitPricePerHour: shape.price,
      samples,
      detail,
    });
  }
  // Each group's budget: what a perfect daily rightsizer would spend (every quota at each day's highest demand, as
  // violations judge it), averaged over the period, times a group-specific headroom, times `budgetScale`.
  const budgets: Record<string, number> = {};
  for (let g = 0; g < groups; g++) {
    const name = `group-${g}`;
    let need = 0;
    for (const q of quotas.filter((x) => x.budgetGroup === name)) {
      let sum = 0;
      for (let d = 0; d < days; d++) {
        let dayMax = 0;
        for (let h = historyHours + d * 24; h < historyHours + (d + 1) * 24; h++) {
          dayMax = Math.max(dayMax, q.kind === 'capacity' ? q.samples[h]!.peak : q.samples[h]!.avg);
        }
        sum += dayMax;
      }
      need += (sum / days) * q.unitPricePerHour;
    }
    budgets[name] = need * BUDGET_HEADROOM[g % BUDGET_HEADROOM.length]! * budgetScale;
  }
  return { seed, startMs, historyHours, evalHours: days * 24, quotas, budgets };
}
