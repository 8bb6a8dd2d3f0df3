/**
 * `npm run bench:quota`: tunes our recommender on one or more trace seeds, then replays a held-out seed with static limits,
 * the VPA recommender and ours, and writes bench/results/quota.json (+ quota-detail.json) and a Markdown report to
 * stdout for BENCHMARKS.md.
 *
 * Options: --tune-seeds N,M,... (tune jointly on these seeds: a candidate must pass the bar on every one, and the
 * objective is its mean slack over them; default 1; must not overlap the report seed or --extra-seeds), --tune-seed N
 * (the one-seed form), --tune-rounds N (coordinate-descent rounds; default 3 flat, 2 time-of-day), --report-seed N
 * (default 2), --quotas N (default 125), --days N (default 30),
 * --no-tune (use the committed defaults as they are), --quick (one tuning round), --budget-strategy
 * tier-cut|tier-cut-scaled|water-fill (default tier-cut-scaled), --tune flat,tod (which modes to tune; default both:
 * the flat recommender's knobs, then the time-of-day schedule's knobs on top of them), --extra-seeds N,M (further
 * held-out seeds for the headline policies; default 3), --violation-room F (the tuner's bar: violation hours per class
 * ≤ F × VPA's on each tuning seed; default 0.9).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../lib/config.js';
import {
  conservativePolicy,
  defaultPolicy,
  type QuotaResource,
  type RecommenderPolicy,
} from '../../lib/quota/rightsizing/recommend.js';
import type { ProfileOptions } from '../../lib/quota/rightsizing/profile.js';
import {
  defaultScheduleOptions,
  scheduleClassOf,
  type ScheduleClass,
  type ScheduleOptions,
  type SlotOverrides,
} from '../../lib/quota/rightsizing/schedule.js';
import { machineInfo, writeResults, type Figure } from '../lib/results.js';
import { simulate, summarize, type OursConfig, type PolicyName, type SimConfig, type Summary } from './simulate.js';
import { BUDGET_HEADROOM, generateTraces, PATTERNS, RESOURCES, type TraceSet } from './traces.js';

/** The policy fields the tuner moves, per class; floors, ceilings, rounding and usePeak stay per resource. */
export type ClassKnobs = Pick<
  RecommenderPolicy,
  | 'halfLifeHours'
  | 'targetPercentile'
  | 'safetyMargin'
  | 'trendHorizonHours'
  | 'burstAllowance'
  | 'maxStepUpRatio'
  | 'maxStepDownRatio'
>;

/** Memory (a violation is an OOM kill) is tuned apart from the other resources (a violation is throttling). */
export interface Knobs {
  memory: ClassKnobs;
  other: ClassKnobs;
  upDeadband: number;
  downDeadband: number;
}

const CUT_BY_TIER = { critical: 0, standard: 0.1, 'best-effort': 0.25 };
/** Memory over its limit is an OOM kill, a rate over its limit is throttling: cut memory a quarter as deep. */
const CUT_WEIGHT_BY_RESOURCE = { memory: 0.25 };

function classKnobs(p: RecommenderPolicy): ClassKnobs {
  return {
    halfLifeHours: p.halfLifeHours,
    targetPercentile: p.targetPercentile,
    safetyMargin: p.safetyMargin,
    trendHorizonHours: p.trendHorizonHours,
    burstAllowance: p.burstAllowance,
    maxStepUpRatio: p.maxStepUpRatio,
    maxStepDownRatio: p.maxStepDownRatio,
  };
}

/** Start from the shipped defaults. */
function defaultKnobs(): Knobs {
  return {
    memory: classKnobs(defaultPolicy('memory')),
    other: classKnobs(defaultPolicy('vcores')),
    upDeadband: 0,
    downDeadband: 0.05,
  };
}

/** Time-of-day mode's knobs: per-slot policy overrides per class, the slot size and the daily-structure test. */
export interface TodKnobs {
  memory: Required<Pick<SlotOverrides, 'halfLifeHours' | 'targetPercentile' | 'safetyMargin' | 'trendHorizonHours'>>;
  other: Required<
    Pick<SlotOverrides, 'halfLifeHours' | 'targetPercentile' | 'safetyMargin' | 'burstAllowance' | 'trendHorizonHours'>
  >;
  slotHours: number;
  minSlotSamples: number;
  minPeriodicity: number;
  minSpread: number;
  /** 1: slots from the profile forecast (histogram while history is short); 0: histogram slots only. */
  profileEstimator: number;
  /** The profile forecast's shared options and its per-class coverage, level-error quantile and margin. */
  profile: Omit<ProfileOptions, ClassProfileField> &
    Record<ScheduleClass, Required<Pick<ProfileOptions, ClassProfileField>>>;
}

/** The profile-forecast options that differ per class (memory, peak, rate). */
type ClassProfileField = 'coverage' | 'minCoverage' | 'coverageCost' | 'margin' | 'dayQuantile';

/** Start from the shipped schedule defaults. */
function defaultTodKnobs(): TodKnobs {
  const m = defaultScheduleOptions('memory');
  const o = defaultScheduleOptions('vcores');
  const mp = { ...defaultPolicy('memory'), ...m.slotOverrides };
  const op = { ...defaultPolicy('vcores'), ...o.slotOverrides };
  return {
    memory: {
      halfLifeHours: mp.halfLifeHours,
      targetPercentile: mp.targetPercentile,
      safetyMargin: mp.safetyMargin,
      trendHorizonHours: mp.trendHorizonHours,
    },
    other: {
      halfLifeHours: op.halfLifeHours,
      targetPercentile: op.targetPercentile,
      safetyMargin: op.safetyMargin,
      burstAllowance: op.burstAllowance,
      trendHorizonHours: op.trendHorizonHours,
    },
    slotHours: o.slotHours,
    minSlotSamples: o.minSlotSamples,
    minPeriodicity: o.minPeriodicity,
    minSpread: o.minSpread,
    profileEstimator: o.estimator === 'profile' ? 1 : 0,
    profile: {
      ...profileShared(o.profile!),
      memory: profileClass(m.profile!),
      peak: profileClass(o.profile!),
      rate: profileClass(defaultScheduleOptions('qps').profile!),
    },
  };
}

function profileShared(p: ProfileOptions): Omit<ProfileOptions, ClassProfileField> {
  const { coverage: _c, minCoverage: _n, coverageCost: _k, margin: _m, dayQuantile: _d, ...rest } = p;
  return rest;
}

function profileClass(p: ProfileOptions): Required<Pick<ProfileOptions, ClassProfileField>> {
  return {
    coverage: p.coverage,
    minCoverage: p.minCoverage ?? p.coverage,
    coverageCost: p.coverageCost ?? 0,
    margin: p.margin,
    dayQuantile: p.dayQuantile ?? 0.5,
  };
}

function todOptions(t: TodKnobs): (resource: QuotaResource) => ScheduleOptions {
  return (resource) => ({
    slotHours: t.slotHours,
    minSlotSamples: t.minSlotSamples,
    minPeriodicity: t.minPeriodicity,
    minSpread: t.minSpread,
    periodicityWindowHours: 168,
    slotOverrides: resource === 'memory' ? t.memory : t.other,
    estimator: t.profileEstimator === 1 ? 'profile' : 'histogram',
    profile: {
      shapeDays: t.profile.shapeDays,
      smoothHours: t.profile.smoothHours,
      backtestDays: t.profile.backtestDays,
      minBacktestDays: t.profile.minBacktestDays,
      weekly: t.profile.weekly,
      weeklyWeeks: t.profile.weeklyWeeks,
      weeklyMaxCut: t.profile.weeklyMaxCut,
      fallbackDays: t.profile.fallbackDays,
      ...t.profile[scheduleClassOf(resource)],
    },
  });
}

function todConfig(k: Knobs, t: TodKnobs, budgetAlignment = true): SimConfig {
  const base = simConfig(k, budgetAlignment);
  return { ...base, oracleSlotHours: t.slotHours, ours: { ...base.ours, timeOfDay: { options: todOptions(t) } } };
}

type BudgetStrategyName = OursConfig['budgetStrategy'];
let budgetStrategy: BudgetStrategyName = 'tier-cut-scaled';

function oursConfig(k: Knobs, budgetAlignment: boolean): OursConfig {
  return {
    policy: (resource: QuotaResource): RecommenderPolicy => {
      return { ...defaultPolicy(resource), ...(resource === 'memory' ? k.memory : k.other) };
    },
    upDeadband: k.upDeadband,
    downDeadband: k.downDeadband,
    budgetAlignment,
    cutByTier: CUT_BY_TIER,
    cutWeightByResource: CUT_WEIGHT_BY_RESOURCE,
    budgetStrategy,
  };
}

/** Ours with {@link conservativePolicy} as shipped (not tuned). */
function conservativeConfig(budgetAlignment = true): SimConfig {
  const ours = {
    ...oursConfig(defaultKnobs(), budgetAlignment),
    policy: conservativePolicy,
    upDeadband: 0,
    downDeadband: 0.05,
  };
  return { cadenceHours: 24, staticHeadroom: 1.5, ours };
}

function simConfig(k: Knobs, budgetAlignment = true): SimConfig {
  return { cadenceHours: 24, staticHeadroom: 1.5, ours: oursConfig(k, budgetAlignment) };
}

interface Run {
  summary: Summary;
  spend: number;
  budget: number;
  groupHoursOverBudget: number;
  byPattern: Record<string, Summary>;
  byResource: Record<string, Summary>;
}

function runPolicy(traces: TraceSet, policy: PolicyName, config: SimConfig): Run {
  const o = simulate(traces, policy, config);
  const hours = traces.evalHours;
  const spend = Object.values(o.spendByGroup).reduce((a, b) => a + b, 0);
  const budget = Object.values(traces.budgets).reduce((a, b) => a + b, 0) * hours;
  return {
    summary: summarize(o, undefined, hours),
    spend,
    budget,
    groupHoursOverBudget: o.groupHoursOverBudget,
    byPattern: Object.fromEntries(PATTERNS.map((p) => [p, summarize(o, (q) => q.pattern === p, hours)])),
    byResource: Object.fromEntries(RESOURCES.map((r) => [r, summarize(o, (q) => q.resource === r, hours)])),
  };
}

interface ViolationLimits {
  memory: number;
  other: number;
}

function violationsByClass(r: Run): ViolationLimits {
  const memory = r.byResource.memory?.violationHours ?? 0;
  return { memory, other: r.summary.violationHours - memory };
}

/** One tuning seed: its traces and the violation limits (room × VPA's per class on that seed). */
interface TuneSet {
  seed: number;
  traces: TraceSet;
  vpaViolationHours: ViolationLimits;
  limits: ViolationLimits;
}

/** A candidate's result on one tuning seed. */
interface SeedResult {
  seed: number;
  slack: number;
  violationHours: ViolationLimits;
  groupHoursOverBudget: number;
  feasible: boolean;
}

function seedResult(set: TuneSet, r: Run): { result: SeedResult; excess: number } {
  const v = violationsByClass(r);
  const excess =
    Math.max(0, v.memory - set.limits.memory) / Math.max(1, set.limits.memory) +
    Math.max(0, v.other - set.limits.other) / Math.max(1, set.limits.other);
  return {
    result: {
      seed: set.seed,
      slack: r.summary.slack,
      violationHours: v,
      groupHoursOverBudget: r.groupHoursOverBudget,
      feasible: excess === 0 && r.groupHoursOverBudget === 0,
    },
    excess,
  };
}

/**
 * Scores a candidate jointly on every tuning seed: feasible only if on EVERY seed its memory violation hours (OOMs)
 * and other violation hours each stay within that seed's limits and no group-hour is over budget; a feasible
 * candidate scores its mean slack over the seeds, an infeasible one 10 + its summed excess over the limits (so the
 * search first walks towards feasibility). Once the incumbent is feasible no infeasible candidate can beat it, so
 * the seeds after the first failing one are skipped (the score is then a lower bound, still ≥ 10).
 */
function jointScore(sets: TuneSet[], runOn: (traces: TraceSet) => Run, incumbentFeasible: boolean): number {
  let slack = 0;
  let excess = 0;
  let feasible = true;
  for (const set of sets) {
    const { result, excess: e } = seedResult(set, runOn(set.traces));
    slack += result.slack;
    excess += e;
    if (!result.feasible) {
      feasible = false;
      if (incumbentFeasible) break;
    }
  }
  return feasible ? slack / sets.length : 10 + excess;
}

/** Builds the tuning sets: each seed's traces, VPA's violation hours and room × them as limits. */
function tuneSets(seeds: number[], quotaCount: number, days: number, knobs: Knobs, room: number): TuneSet[] {
  return seeds.map((seed) => {
    const traces = generateTraces(seed, quotaCount, days);
    const vpaViolationHours = violationsByClass(runPolicy(traces, 'vpa', simConfig(knobs)));
    return {
      seed,
      traces,
      vpaViolationHours,
      limits: {
        memory: Math.floor(vpaViolationHours.memory * room),
        other: Math.floor(vpaViolationHours.other * room),
      },
    };
  });
}

/** Every tuning seed's result for one configuration, and whether it passes on all of them. */
function evaluateOnSets(
  sets: TuneSet[],
  runOn: (traces: TraceSet) => Run,
): { meanSlack: number; feasible: boolean; seeds: SeedResult[] } {
  const seeds = sets.map((set) => seedResult(set, runOn(set.traces)).result);
  return {
    meanSlack: seeds.reduce((a, r) => a + r.slack, 0) / seeds.length,
    feasible: seeds.every((r) => r.feasible),
    seeds,
  };
}

type KnobPath = ['memory' | 'other', keyof ClassKnobs] | ['upDeadband' | 'downDeadband'];

function setKnob(k: Knobs, path: KnobPath, v: number): Knobs {
  if (path.length === 1) return { ...k, [path[0]]: v };
  return { ...k, [path[0]]: { ...k[path[0]], [path[1]]: v } };
}

function getKnob(k: Knobs, path: KnobPath): number {
  return path.length === 1 ? k[path[0]] : k[path[0]][path[1]];
}

/**
 * Coordinate descent: one knob at a time over its candidate values, keeping the best, for `rounds` rounds.
 * Best = lowest slack among settings whose memory violations (OOMs) and other violations (throttling) each stay
 * within `limits` and that never exceed a group budget; an infeasible setting scores by how far over the limits it
 * is, so the search first walks towards feasibility.
 */
function tune(sets: TuneSet[], rounds: number, log: (s: string) => void): { knobs: Knobs; tried: number } {
  const classGrid: { [K in keyof ClassKnobs]: number[] } = {
    targetPercentile: [0.9, 0.95, 0.98, 0.99, 1],
    safetyMargin: [0, 0.05, 0.1, 0.15, 0.2, 0.3],
    halfLifeHours: [12, 24, 48, 96, 168],
    trendHorizonHours: [0, 24, 48, 96],
    burstAllowance: [0, 0.1, 0.25, 0.5],
    maxStepUpRatio: [0.5, 1, 2],
    maxStepDownRatio: [0.1, 0.2, 0.3, 0.5],
  };
  const grid: Array<[KnobPath, number[]]> = [];
  for (const cls of ['memory', 'other'] as const) {
    for (const field of Object.keys(classGrid) as Array<keyof ClassKnobs>) {
      // Memory sizes on peaks; its burst term stays off.
      if (cls === 'memory' && field === 'burstAllowance') continue;
      grid.push([[cls, field], classGrid[field]]);
    }
  }
  grid.push([['upDeadband'], [0, 0.05, 0.1]], [['downDeadband'], [0, 0.05, 0.1, 0.2]]);
  const cache = new Map<string, number>();
  const score = (k: Knobs): number => {
    const key = JSON.stringify(k);
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const s = jointScore(sets, (t) => runPolicy(t, 'ours', simConfig(k)), bestScore < 10);
    cache.set(key, s);
    return s;
  };
  let best = defaultKnobs();
  let bestScore = Infinity;
  bestScore = score(best);
  for (let round = 0; round < rounds; round++) {
    let improved = false;
    for (const [path, values] of grid) {
      for (const v of values) {
        const candidate = setKnob(best, path, v);
        const s = score(candidate);
        if (s < bestScore - 1e-9) {
          best = candidate;
          bestScore = s;
          improved = true;
        }
      }
      log(
        `  round ${round + 1} ${path.join('.')} → ${getKnob(best, path)} (score ${bestScore.toFixed(4)}, ${cache.size} runs)`,
      );
    }
    if (!improved) break;
  }
  return { knobs: best, tried: cache.size };
}

/** The same search for the time-of-day knobs, with the flat knobs fixed. */
function tuneTod(
  sets: TuneSet[],
  flat: Knobs,
  rounds: number,
  log: (s: string) => void,
): { knobs: TodKnobs; tried: number } {
  type TodPath =
    | ['memory' | 'other', string]
    | ['slotHours' | 'minSlotSamples' | 'minPeriodicity' | 'minSpread' | 'profileEstimator']
    | ['profile', string]
    | ['profile', ScheduleClass, string];
  // The profile forecast's knobs first (they decide most of the slack), then the daily test and the histogram
  // slots' overrides (used while a quota's history is too short for the profile).
  const grid: Array<[TodPath, number[]]> = [
    [
      ['profile', 'peak', 'coverageCost'],
      [0, 0.3, 0.5, 0.75, 1, 1.25, 1.5, 2],
    ],
    [
      ['profile', 'rate', 'coverageCost'],
      [0, 0.3, 0.5, 0.75, 1, 1.25, 1.5, 2],
    ],
    [
      ['profile', 'memory', 'margin'],
      [0, 0.05, 0.1, 0.2],
    ],
    [
      ['profile', 'memory', 'dayQuantile'],
      [0.5, 0.75, 1],
    ],
    [
      ['profile', 'peak', 'minCoverage'],
      [0.7, 0.8, 0.9],
    ],
    [
      ['profile', 'rate', 'minCoverage'],
      [0.7, 0.8, 0.9],
    ],
    [
      ['profile', 'peak', 'coverage'],
      [0.95, 0.98, 0.99, 1],
    ],
    [
      ['profile', 'rate', 'coverage'],
      [0.95, 0.98, 0.99, 1],
    ],
    [['minPeriodicity'], [-1, 0.2, 0.5]],
    [
      ['profile', 'weeklyWeeks'],
      [1, 2, 3],
    ],
    [
      ['profile', 'peak', 'dayQuantile'],
      [0.5, 0.75],
    ],
    [
      ['profile', 'rate', 'dayQuantile'],
      [0.5, 0.75],
    ],
    [['slotHours'], [1, 2]],
    [
      ['profile', 'shapeDays'],
      [7, 14],
    ],
    [
      ['profile', 'backtestDays'],
      [7, 14],
    ],
    [
      ['profile', 'weeklyMaxCut'],
      [0.3, 0.5, 1],
    ],
    [
      ['profile', 'memory', 'coverage'],
      [0.98, 1],
    ],
    [
      ['profile', 'smoothHours'],
      [0, 1, 2],
    ],
    [
      ['profile', 'fallbackDays'],
      [1, 3],
    ],
  ];
  const set = (t: TodKnobs, path: TodPath, v: number): TodKnobs => {
    if (path.length === 1) return { ...t, [path[0]]: v };
    if (path[0] === 'profile') {
      if (path.length === 2) return { ...t, profile: { ...t.profile, [path[1]]: v } };
      return { ...t, profile: { ...t.profile, [path[1]]: { ...t.profile[path[1]], [path[2]]: v } } };
    }
    return { ...t, [path[0]]: { ...t[path[0]], [path[1]]: v } };
  };
  const get = (t: TodKnobs, path: TodPath): number => {
    if (path.length === 1) return t[path[0]];
    if (path[0] === 'profile') {
      if (path.length === 2) return (t.profile as unknown as Record<string, number>)[path[1]]!;
      return (t.profile[path[1]] as Record<string, number>)[path[2]]!;
    }
    return (t[path[0]] as Record<string, number>)[path[1]]!;
  };
  const cache = new Map<string, number>();
  const score = (t: TodKnobs): number => {
    const key = JSON.stringify(t);
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const sc = jointScore(sets, (tr) => runPolicy(tr, 'ours', todConfig(flat, t)), bestScore < 10);
    cache.set(key, sc);
    return sc;
  };
  let best = defaultTodKnobs();
  let bestScore = Infinity;
  bestScore = score(best);
  for (let round = 0; round < rounds; round++) {
    let improved = false;
    for (const [path, values] of grid) {
      for (const v of values) {
        const candidate = set(best, path, v);
        const sc = score(candidate);
        if (sc < bestScore - 1e-9) {
          best = candidate;
          bestScore = sc;
          improved = true;
        }
      }
      log(
        `  tod round ${round + 1} ${path.join('.')} → ${get(best, path)} (score ${bestScore.toFixed(4)}, ${cache.size} runs)`,
      );
    }
    if (!improved) break;
  }
  return { knobs: best, tried: cache.size };
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

function argString(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/**
 * The time-of-day knobs shipped before the profile forecast (histogram slots of 2 h, tuned on seed 1), kept as a
 * row of the report so the two estimators are compared on the same seeds.
 */
function PREVIOUS_TOD_KNOBS(t: TodKnobs): TodKnobs {
  return {
    ...t,
    memory: { halfLifeHours: 12, targetPercentile: 1, safetyMargin: 0.2, trendHorizonHours: 0 },
    other: { halfLifeHours: 12, targetPercentile: 0.95, safetyMargin: 0.05, burstAllowance: 0, trendHorizonHours: 0 },
    slotHours: 2,
    minSlotSamples: 6,
    minPeriodicity: 0.2,
    minSpread: 0.05,
    profileEstimator: 0,
  };
}

/** A comma-separated list of whole-number seeds, without repeats. */
function parseSeeds(text: string, flag: string): number[] {
  const seeds = text
    .split(',')
    .filter((x) => x.trim() !== '')
    .map(Number);
  if (seeds.some((x) => !Number.isInteger(x) || x < 0) || new Set(seeds).size !== seeds.length) {
    throw new Error(`${flag} takes distinct whole-number seeds separated by commas, got "${text}"`);
  }
  return seeds;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

async function run() {
  const started = Date.now();
  const reportSeed = arg('--report-seed', 2);
  // Tuning seeds: --tune-seeds 1,4,5 tunes on all of them jointly; --tune-seed N is the one-seed form.
  const tuneSeeds = parseSeeds(argString('--tune-seeds') ?? String(arg('--tune-seed', 1)), '--tune-seeds');
  const tuneSeed = tuneSeeds.join(',');
  const extraSeeds = parseSeeds(argString('--extra-seeds') ?? '3', '--extra-seeds');
  const heldOut = [reportSeed, ...extraSeeds];
  const overlap = tuneSeeds.filter((x) => heldOut.includes(x));
  if (overlap.length > 0) {
    throw new Error(
      `tuning seeds ${tuneSeeds.join(',')} overlap the held-out report seeds ${heldOut.join(',')} (${overlap.join(',')}): a seed used for tuning cannot be reported as held out`,
    );
  }
  // Coordinate-descent rounds over the grid (default 3 flat, 2 time-of-day; 1 with --quick).
  const tuneRounds = argString('--tune-rounds') === undefined ? undefined : arg('--tune-rounds', 1);
  if (tuneRounds !== undefined && !(Number.isInteger(tuneRounds) && tuneRounds >= 1)) {
    throw new Error(`--tune-rounds must be a whole number ≥ 1, got "${argString('--tune-rounds')}"`);
  }
  const quotaCount = arg('--quotas', 125);
  const days = arg('--days', 30);
  const quick = process.argv.includes('--quick');
  const noTune = process.argv.includes('--no-tune');
  // The tuner keeps each class's violation hours within this share of VPA's on the tuning seed.
  const violationRoom = arg('--violation-room', 0.9);
  const strategyArg = process.argv[process.argv.indexOf('--budget-strategy') + 1];
  if (process.argv.includes('--budget-strategy')) {
    if (strategyArg !== 'tier-cut' && strategyArg !== 'tier-cut-scaled' && strategyArg !== 'water-fill') {
      throw new Error(`--budget-strategy must be tier-cut, tier-cut-scaled or water-fill, got "${strategyArg}"`);
    }
    budgetStrategy = strategyArg;
  }
  const log = (s: string) => process.stderr.write(s + '\n');

  const tuneArg = process.argv.indexOf('--tune');
  const tuneModes = new Set(tuneArg >= 0 ? (process.argv[tuneArg + 1] ?? '').split(',') : ['flat', 'tod']);
  for (const m of tuneModes) {
    if (m !== 'flat' && m !== 'tod') throw new Error(`--tune takes flat, tod or flat,tod; got "${m}"`);
  }
  let knobs = defaultKnobs();
  let todKnobs = defaultTodKnobs();
  let tuning: Record<string, unknown> = { tuned: false };
  let todTuning: Record<string, unknown> = { tuned: false };
  if (!noTune && tuneModes.has('flat')) {
    // Leave room under VPA's counts on every tuning seed, so that a held-out seed is not decided by noise.
    const sets = tuneSets(tuneSeeds, quotaCount, days, knobs, violationRoom);
    for (const set of sets) {
      log(
        `tuning on seed ${set.seed}: VPA violation hours ${JSON.stringify(set.vpaViolationHours)}; limits ${JSON.stringify(set.limits)}`,
      );
    }
    const start = evaluateOnSets(sets, (t) => runPolicy(t, 'ours', simConfig(knobs)));
    const t = tune(sets, tuneRounds ?? (quick ? 1 : 3), log);
    knobs = t.knobs;
    tuning = {
      tuned: true,
      seeds: tuneSeeds,
      violationRoom,
      rounds: tuneRounds ?? (quick ? 1 : 3),
      candidates: t.tried,
      perSeed: sets.map((x) => ({ seed: x.seed, vpaViolationHours: x.vpaViolationHours, limits: x.limits })),
      start,
      tunedResult: evaluateOnSets(sets, (tr) => runPolicy(tr, 'ours', simConfig(knobs))),
    };
  }
  log(`knobs: ${JSON.stringify(knobs)}`);
  if (!noTune && tuneModes.has('tod')) {
    const sets = tuneSets(tuneSeeds, quotaCount, days, knobs, violationRoom);
    for (const set of sets) {
      log(
        `tuning time-of-day on seed ${set.seed}: VPA violation hours ${JSON.stringify(set.vpaViolationHours)}; limits ${JSON.stringify(set.limits)}`,
      );
    }
    const startKnobs = todKnobs;
    const start = evaluateOnSets(sets, (tr) => runPolicy(tr, 'ours', todConfig(knobs, startKnobs)));
    log(`time-of-day start (shipped defaults) on the tuning seeds: ${JSON.stringify(start)}`);
    const t = tuneTod(sets, knobs, tuneRounds ?? (quick ? 1 : 2), log);
    todKnobs = t.knobs;
    const tunedKnobs = todKnobs;
    const tuned = evaluateOnSets(sets, (tr) => runPolicy(tr, 'ours', todConfig(knobs, tunedKnobs)));
    log(`time-of-day tuned on the tuning seeds: ${JSON.stringify(tuned)}`);
    todTuning = {
      tuned: true,
      seeds: tuneSeeds,
      violationRoom,
      rounds: tuneRounds ?? (quick ? 1 : 2),
      candidates: t.tried,
      perSeed: sets.map((x) => ({ seed: x.seed, vpaViolationHours: x.vpaViolationHours, limits: x.limits })),
      start,
      tunedResult: tuned,
      betterThanStart: tuned.feasible && (!start.feasible || tuned.meanSlack < start.meanSlack - 1e-9),
    };
  }
  log(`time-of-day knobs: ${JSON.stringify(todKnobs)}`);

  const traces = generateTraces(reportSeed, quotaCount, days);
  const config = simConfig(knobs);
  const runs = {
    static: runPolicy(traces, 'static', config),
    vpa: runPolicy(traces, 'vpa', config),
    ours: runPolicy(traces, 'ours', config),
    oursNoBudget: runPolicy(traces, 'ours', simConfig(knobs, false)),
    oursConservative: runPolicy(traces, 'ours', conservativeConfig()),
    oursConservativeNoBudget: runPolicy(traces, 'ours', conservativeConfig(false)),
    oracle: runPolicy(traces, 'oracle', config),
    oracleHourly: runPolicy(traces, 'oracle', { ...config, cadenceHours: 1 }),
    oursTod: runPolicy(traces, 'ours', todConfig(knobs, todKnobs)),
    oursTodNoBudget: runPolicy(traces, 'ours', todConfig(knobs, todKnobs, false)),
    oursTodAlways: runPolicy(traces, 'ours', todConfig(knobs, { ...todKnobs, minPeriodicity: -1, minSpread: 0 })),
    oracleTod: runPolicy(traces, 'oracle-tod', todConfig(knobs, todKnobs)),
    oursTodHistogram: runPolicy(traces, 'ours', todConfig(knobs, PREVIOUS_TOD_KNOBS(todKnobs))),
  };
  // Further held-out seeds: the headline policies only.
  const extra = extraSeeds.map((seed) => {
    const t = generateTraces(seed, quotaCount, days);
    log(`held-out seed ${seed}`);
    return {
      seed,
      runs: {
        static: runPolicy(t, 'static', config),
        vpa: runPolicy(t, 'vpa', config),
        ours: runPolicy(t, 'ours', config),
        oursTod: runPolicy(t, 'ours', todConfig(knobs, todKnobs)),
        oursTodHistogram: runPolicy(t, 'ours', todConfig(knobs, PREVIOUS_TOD_KNOBS(todKnobs))),
        oracle: runPolicy(t, 'oracle', config),
        oracleTod: runPolicy(t, 'oracle-tod', todConfig(knobs, todKnobs)),
      },
    };
  });
  const { static: stat, vpa, ours, oursTod: tod } = runs;
  const goalSlack = 'slack ≤ 25% (Autopilot 23%, hand-set 46%)';
  const fig = (
    name: string,
    value: number,
    unit: string,
    peerValue: number,
    goal: string | null,
    lowerIsBetter = true,
  ): Figure => ({
    name,
    value: Number(value.toFixed(4)),
    unit,
    peer: { name: 'vpa', value: Number(peerValue.toFixed(4)) },
    ratio: peerValue === 0 ? null : Number((value / peerValue).toFixed(3)),
    ratioMeaning: `ours / VPA (${lowerIsBetter ? 'lower' : 'higher'} is better)`,
    goal,
  });
  const figures: Figure[] = [
    fig('slack_share_of_spend', ours.summary.slack, 'fraction', vpa.summary.slack, goalSlack),
    fig('slack_vs_demand', ours.summary.slackVsDemand, 'fraction', vpa.summary.slackVsDemand, null),
    fig('mean_quota_slack', ours.summary.meanQuotaSlack, 'fraction', vpa.summary.meanQuotaSlack, null),
    fig('violation_hours', ours.summary.violationHours, 'quota-hours', vpa.summary.violationHours, 'no more than VPA'),
    fig('memory_oom_hours', violationsByClass(ours).memory, 'quota-hours', violationsByClass(vpa).memory, null),
    fig('other_violation_hours', violationsByClass(ours).other, 'quota-hours', violationsByClass(vpa).other, null),
    fig('quotas_with_violations', ours.summary.quotasWithViolations, 'quotas', vpa.summary.quotasWithViolations, null),
    fig('changes', ours.summary.changes, 'changes', vpa.summary.changes, null),
    fig(
      'spend_vs_budget',
      ours.spend / ours.budget,
      'fraction of budget',
      vpa.spend / vpa.budget,
      'within budget (≤ 1)',
    ),
    fig(
      'group_hours_over_budget',
      ours.groupHoursOverBudget,
      'group-hours',
      vpa.groupHoursOverBudget,
      'within budget (0)',
    ),
    {
      name: 'static_slack_share_of_spend',
      value: Number(stat.summary.slack.toFixed(4)),
      unit: 'fraction',
      peer: null,
      ratio: null,
      goal: null,
    },
    {
      name: 'oracle_hourly_slack_share_of_spend',
      value: Number(runs.oracleHourly.summary.slack.toFixed(4)),
      unit: 'fraction',
      peer: null,
      ratio: null,
      goal: null,
    },
    {
      name: 'oracle_slack_share_of_spend',
      value: Number(runs.oracle.summary.slack.toFixed(4)),
      unit: 'fraction',
      peer: null,
      ratio: null,
      goal: null,
    },
    // Time-of-day mode (a schedule per quota, re-planned daily); VPA has no such mode and stays flat.
    fig('tod_slack_share_of_spend', tod.summary.slack, 'fraction', vpa.summary.slack, goalSlack),
    fig('tod_slack_vs_demand', tod.summary.slackVsDemand, 'fraction', vpa.summary.slackVsDemand, null),
    fig(
      'tod_violation_hours',
      tod.summary.violationHours,
      'quota-hours',
      vpa.summary.violationHours,
      'no more than VPA',
    ),
    fig('tod_memory_oom_hours', violationsByClass(tod).memory, 'quota-hours', violationsByClass(vpa).memory, null),
    fig('tod_other_violation_hours', violationsByClass(tod).other, 'quota-hours', violationsByClass(vpa).other, null),
    fig('tod_changes', tod.summary.changes, 'schedule changes', vpa.summary.changes, null),
    {
      name: 'tod_in_day_switches',
      value: tod.summary.inDaySwitches,
      unit: 'slot-boundary switches',
      peer: null,
      ratio: null,
      goal: null,
    },
    fig(
      'tod_spend_vs_budget',
      tod.spend / tod.budget,
      'fraction of budget',
      vpa.spend / vpa.budget,
      'within budget (≤ 1)',
    ),
    fig(
      'tod_group_hours_over_budget',
      tod.groupHoursOverBudget,
      'group-hours',
      vpa.groupHoursOverBudget,
      'within budget (0)',
    ),
    {
      name: 'oracle_tod_slack_share_of_spend',
      value: Number(runs.oracleTod.summary.slack.toFixed(4)),
      unit: 'fraction',
      peer: null,
      ratio: null,
      goal: null,
    },
  ];
  for (const e of extra) {
    const r = e.runs;
    figures.push(
      fig(
        `seed${e.seed}_tod_slack_share_of_spend`,
        r.oursTod.summary.slack,
        'fraction',
        r.vpa.summary.slack,
        goalSlack,
      ),
      fig(
        `seed${e.seed}_tod_violation_hours`,
        r.oursTod.summary.violationHours,
        'quota-hours',
        r.vpa.summary.violationHours,
        'no more than VPA',
      ),
      fig(
        `seed${e.seed}_tod_memory_oom_hours`,
        violationsByClass(r.oursTod).memory,
        'quota-hours',
        violationsByClass(r.vpa).memory,
        'no more than VPA',
      ),
      fig(
        `seed${e.seed}_tod_group_hours_over_budget`,
        r.oursTod.groupHoursOverBudget,
        'group-hours',
        r.vpa.groupHoursOverBudget,
        'within budget (0)',
      ),
      fig(`seed${e.seed}_slack_share_of_spend`, r.ours.summary.slack, 'fraction', r.vpa.summary.slack, goalSlack),
    );
  }
  const met = {
    slack: ours.summary.slack <= 0.25,
    violations: ours.summary.violationHours <= vpa.summary.violationHours,
    budget: ours.groupHoursOverBudget === 0 && ours.spend <= ours.budget,
    todSlack: tod.summary.slack <= 0.25,
    todViolations: tod.summary.violationHours <= vpa.summary.violationHours,
    todMemoryOomsVsVpa: violationsByClass(tod).memory <= violationsByClass(vpa).memory,
    todBudget: tod.groupHoursOverBudget === 0 && tod.spend <= tod.budget,
  };
  const metExtra = Object.fromEntries(
    extra.map((e) => {
      const t = e.runs.oursTod;
      const v = e.runs.vpa;
      return [
        `seed${e.seed}`,
        {
          todSlack: t.summary.slack <= 0.25,
          todViolations: t.summary.violationHours <= v.summary.violationHours,
          todMemoryOomsVsVpa: violationsByClass(t).memory <= violationsByClass(v).memory,
          todBudget: t.groupHoursOverBudget === 0 && t.spend <= t.budget,
        },
      ];
    }),
  );
  const notes = [
    `held-out report seed ${reportSeed}; ${noTune ? 'tuning skipped (committed defaults)' : `tuned (${[...tuneModes].join(', ')}) jointly on seeds ${tuneSeed}, bar: violation hours per class ≤ ${violationRoom} × VPA's on every tuning seed`}`,
    `budget alignment for ours: ${budgetStrategy} (cuts ${JSON.stringify(CUT_BY_TIER)}, weights ${JSON.stringify(CUT_WEIGHT_BY_RESOURCE)}), then water-fill if still over`,
    `${traces.quotas.length} quotas × ${days} days, cadence 24 h; budgets = [${BUDGET_HEADROOM.join(', ')}] × the group's oracle (daily highest demand) cost`,
    `goals met (flat): slack ${met.slack}, violations ≤ VPA ${met.violations}, within budget ${met.budget}`,
    `goals met (time-of-day, tod_* figures): slack ${met.todSlack}, violations ≤ VPA ${met.todViolations}, memory OOM hours ≤ VPA ${met.todMemoryOomsVsVpa}, within budget ${met.todBudget}`,
    `time-of-day knobs: ${JSON.stringify(todKnobs)}; VPA has no time-of-day mode`,
    ...extra.map(
      (e) =>
        `held-out seed ${e.seed} (seed${e.seed}_* figures): goals met ${JSON.stringify(metExtra[`seed${e.seed}`])}`,
    ),
  ];
  const command = `npm run bench:quota${process.argv.slice(2).length ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
  const file = writeResults('quota', command, figures, notes);
  writeFileSync(
    path.join(REPO_ROOT, 'bench/results/quota-detail.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        command,
        machine: machineInfo(),
        knobs,
        tuning,
        todKnobs,
        todTuning,
        reportSeed,
        met,
        runs,
        extraSeeds: extra.map((e) => ({ seed: e.seed, met: metExtra[`seed${e.seed}`], runs: e.runs })),
      },
      null,
      2,
    ) + '\n',
  );

  // Markdown for BENCHMARKS.md.
  const rows: Array<[string, Run, boolean?]> = [
    ['static (hand-set, 1.5 × day-0 peak)', stat],
    ['VPA recommender', vpa],
    ['ours (with budget alignment)', ours],
    ['ours, budget alignment off', runs.oursNoBudget],
    ['ours, conservativePolicy (not tuned)', runs.oursConservative],
    ['ours, conservativePolicy, budget alignment off', runs.oursConservativeNoBudget],
    ['oracle (knows the next day; bound)', runs.oracle],
    ['oracle, hourly changes (bound)', runs.oracleHourly],
    ['ours, time-of-day schedule (with budget alignment)', tod, true],
    ['ours, time-of-day, budget alignment off', runs.oursTodNoBudget, true],
    ['ours, time-of-day, diurnal test off (always a schedule)', runs.oursTodAlways, true],
    ['ours, time-of-day, previous default (histogram slots of 2 h)', runs.oursTodHistogram, true],
    [`oracle, daily ${todKnobs.slotHours} h-slot schedule (bound)`, runs.oracleTod],
  ];
  const out: string[] = [];
  out.push(
    '| policy | slack (share of spend) | slack vs demand | violation hours | memory OOM hours | quotas hit | changes | in-day switches | schedule share | spend / budget | group-hours over budget |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [name, r, isTod] of rows) {
    out.push(
      `| ${name} | ${pct(r.summary.slack)} | ${pct(r.summary.slackVsDemand)} | ${r.summary.violationHours} (${pct(r.summary.violationRate)}) | ${violationsByClass(r).memory} | ${r.summary.quotasWithViolations} | ${r.summary.changes} | ${r.summary.inDaySwitches} | ${isTod ? pct(r.summary.scheduledShare) : '—'} | ${(r.spend / r.budget).toFixed(2)} | ${r.groupHoursOverBudget} |`,
    );
  }
  for (const [title, key] of [
    ['pattern', 'byPattern'],
    ['resource', 'byResource'],
  ] as const) {
    out.push('');
    out.push(
      `| ${title} | static slack / viol. | VPA slack / viol. | ours slack / viol. | ours (no budget) slack / viol. | ours conservative slack / viol. | ours time-of-day slack / viol. (schedule share) | oracle slack | oracle schedule slack |`,
    );
    out.push('|---|---|---|---|---|---|---|---|---|');
    const names = key === 'byPattern' ? [...PATTERNS] : [...RESOURCES];
    for (const n of names) {
      const cell = (r: Run) => `${pct(r[key][n]!.slack)} / ${r[key][n]!.violationHours}`;
      out.push(
        `| ${n} | ${cell(stat)} | ${cell(vpa)} | ${cell(ours)} | ${cell(runs.oursNoBudget)} | ${cell(runs.oursConservative)} | ${cell(tod)} (${pct(tod[key][n]!.scheduledShare)}) | ${pct(runs.oracle[key][n]!.slack)} | ${pct(runs.oracleTod[key][n]!.slack)} |`,
      );
    }
  }
  for (const e of extra) {
    out.push('');
    out.push(`held-out seed ${e.seed}:`);
    out.push(
      '| policy | slack (share of spend) | slack vs demand | violation hours | memory OOM hours | changes | in-day switches | spend / budget | group-hours over budget |',
    );
    out.push('|---|---|---|---|---|---|---|---|---|');
    const r = e.runs;
    for (const [name, x] of [
      ['static', r.static],
      ['VPA', r.vpa],
      ['ours, flat', r.ours],
      ['ours, time-of-day', r.oursTod],
      ['ours, time-of-day, previous default (histogram slots)', r.oursTodHistogram],
      ['oracle, daily', r.oracle],
      ['oracle, daily schedule', r.oracleTod],
    ] as Array<[string, Run]>) {
      out.push(
        `| ${name} | ${pct(x.summary.slack)} | ${pct(x.summary.slackVsDemand)} | ${x.summary.violationHours} (${pct(x.summary.violationRate)}) | ${violationsByClass(x).memory} | ${x.summary.changes} | ${x.summary.inDaySwitches} | ${(x.spend / x.budget).toFixed(2)} | ${x.groupHoursOverBudget} |`,
      );
    }
    out.push(`goals met (time-of-day): ${JSON.stringify(metExtra[`seed${e.seed}`])}`);
  }
  out.push('');
  out.push(`knobs: ${JSON.stringify(knobs)}`);
  out.push(`tuning: ${JSON.stringify(tuning)}`);
  out.push(`time-of-day knobs: ${JSON.stringify(todKnobs)}`);
  out.push(`time-of-day tuning: ${JSON.stringify(todTuning)}`);
  out.push(`goals met: ${JSON.stringify(met)}; ${((Date.now() - started) / 1000).toFixed(0)} s; wrote ${file}`);
  console.log(out.join('\n'));
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
