import { describe, expect, it } from 'vitest';
import { nextAttempt, remedyFor } from '../../../lib/spark/ladder.js';
import { attemptCost, budgetOverrun, footprint, resourceConf } from '../../../lib/spark/resources.js';
import {
  SPARK_FAILURE_KINDS,
  SparkResources,
  type SparkResourceCaps,
  type SparkRetryPolicyName,
} from '../../../schemas/spark.js';

const first = SparkResources.parse({ executorMemory: '512m', executorCores: 2, driverMemory: '512m' });

/** Runs the ladder for repeated failures of `kind`, returning each step's resources. */
function climb(
  kind: (typeof SPARK_FAILURE_KINDS)[number],
  caps: SparkResourceCaps = {},
  policy: SparkRetryPolicyName = 'memory-ladder',
) {
  const steps: { step: string; r: SparkResources }[] = [];
  let current = first;
  let position = { executorStep: 0 };
  for (let i = 0; i < 6; i++) {
    const next = nextAttempt({ policy, kind, first, current, position, caps });
    if (!next.retry) return { steps, stop: next.reason };
    steps.push({ step: next.step, r: next.resources });
    current = next.resources;
    position = next.position;
  }
  return { steps, stop: undefined };
}

describe('the retry ladder', () => {
  it('doubles task cpus, then gives executors ×2, ×3, ×4 memory with overhead ×2, keeping task cpus doubled', () => {
    const { steps, stop } = climb('executor-oom', { executorMemory: '2g' });
    expect(steps.map((s) => [s.r.taskCpus, s.r.executorMemory, s.r.executorMemoryOverhead])).toEqual([
      [2, '512m', undefined],
      [2, '1g', '768m'],
      [2, '1536m', '768m'],
      [2, '2g', '768m'],
    ]);
    expect(steps[0]!.step).toBe('task.cpus ×2');
    expect(stop).toMatch(/at their caps/);
  });

  it('doubles off-heap memory when the job uses it', () => {
    const withOffHeap = SparkResources.parse({ ...first, executorOffHeap: '256m' });
    const next = nextAttempt({
      policy: 'memory-ladder',
      kind: 'execution-memory',
      first: withOffHeap,
      current: { ...withOffHeap, taskCpus: 2 },
      position: { executorStep: 1 },
      caps: {},
    });
    expect(next).toMatchObject({ retry: true, resources: { executorMemory: '1g', executorOffHeap: '512m' } });
  });

  it('skips a step the caps leave unchanged', () => {
    // One executor core: task cpus cannot double, so the first retry already doubles memory.
    const oneCore = SparkResources.parse({ executorMemory: '512m' });
    const next = nextAttempt({
      policy: 'memory-ladder',
      kind: 'executor-oom',
      first: oneCore,
      current: oneCore,
      position: { executorStep: 0 },
      caps: {},
    });
    expect(next).toMatchObject({
      retry: true,
      resources: { executorMemory: '1g', taskCpus: 1 },
      position: { executorStep: 2 },
    });
  });

  it('doubles the driver for a driver OOM, up to its cap', () => {
    const { steps, stop } = climb('driver-oom', { driverMemory: '2g' });
    expect(steps.map((s) => s.r.driverMemory)).toEqual(['1g', '2g']);
    expect(steps.every((s) => s.r.executorMemory === '512m')).toBe(true);
    expect(stop).toMatch(/driver memory is at its cap/);
  });

  it('gives a container kill more overhead without the task-cpus step', () => {
    const { steps } = climb('container-memory-kill', { executorMemory: '1g' });
    expect(steps[0]!.r).toMatchObject({ executorMemory: '1g', executorMemoryOverhead: '768m' });
  });

  it('retries an infrastructure loss with the same configuration and never retries user code', () => {
    expect(
      nextAttempt({
        policy: 'memory-ladder',
        kind: 'infrastructure',
        first,
        current: first,
        position: { executorStep: 0 },
        caps: {},
      }),
    ).toMatchObject({
      retry: true,
      resources: first,
    });
    expect(climb('user-code').stop).toMatch(/not retried/);
  });

  it('raises shuffle partitions under the shuffle-partitions policy, then falls back to the ladder', () => {
    const { steps } = climb('execution-memory', { shufflePartitions: 800, executorMemory: '1g' }, 'shuffle-partitions');
    expect(steps.map((s) => [s.r.shufflePartitions, s.r.executorMemory, s.r.taskCpus])).toEqual([
      [400, '512m', 1],
      [800, '512m', 1],
      [800, '512m', 2],
      [800, '1g', 2],
    ]);
  });

  it('has a remedy for every failure kind', () => {
    for (const kind of SPARK_FAILURE_KINDS) expect(remedyFor(kind)).toBeTypeOf('string');
  });
});

describe('resources and cost', () => {
  it('sizes standalone masters by total cores and YARN by instances', () => {
    const r = SparkResources.parse({
      executorMemory: '2g',
      executorCores: 2,
      executorInstances: 3,
      executorOffHeap: '1g',
    });
    expect(resourceConf(r, 'spark://h:7077')).toMatchObject({
      'spark.cores.max': '6',
      'spark.memory.offHeap.size': '1g',
    });
    expect(resourceConf(r, 'yarn')).toMatchObject({ 'spark.executor.instances': '3' });
    expect(resourceConf(r, 'yarn')['spark.cores.max']).toBeUndefined();
  });

  it('counts GB·h of the driver and every executor container, with Spark default overheads', () => {
    const r = SparkResources.parse({
      driverMemory: '1g',
      executorMemory: '4g',
      executorInstances: 2,
      executorCores: 2,
    });
    // driver 1024 + 384, executors 2 × (4096 + 410) MiB; vcores 1 + 2 × 2.
    expect(footprint(r, 'yarn')).toEqual({ gb: (1408 + 2 * 4506) / 1024, vcores: 5 });
    const cost = attemptCost(r, 'yarn', 30 * 60_000, {
      price: { perGbHour: 0.01, perVcoreHour: 0.04, max: 1, currency: 'USD' },
    });
    expect(cost.gbHours).toBeCloseTo(((1408 + 2 * 4506) / 1024) * 0.5, 6);
    expect(cost.vcoreHours).toBeCloseTo(2.5, 6);
    expect(cost.money).toBeCloseTo(cost.gbHours * 0.01 + 2.5 * 0.04, 6);
    expect(budgetOverrun(cost, { maxVcoreHours: 2 })).toMatch(/vcore·h > maxVcoreHours 2/);
    expect(budgetOverrun(cost, { maxGbHours: 100 })).toBeUndefined();
  });

  it('counts only the executors a local cluster can hold', () => {
    const r = SparkResources.parse({
      driverMemory: '512m',
      executorMemory: '512m',
      executorCores: 2,
      executorInstances: 4,
    });
    expect(footprint(r, 'local-cluster[1,2,2048]')).toEqual({ gb: (896 + 896) / 1024, vcores: 3 });
  });
});
