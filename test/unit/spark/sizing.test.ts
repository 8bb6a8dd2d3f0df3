import { describe, expect, it } from 'vitest';
import { recommendSizing, type SizingRun } from '../../../lib/spark/sizing.js';
import { SparkResources, type SparkAttemptRecord, type SparkFailureKind } from '../../../schemas/spark.js';

const MiB = 2 ** 20;

function attempt(
  n: number,
  resources: Partial<SparkResources>,
  outcome: 'succeeded' | 'failed',
  opts: { kind?: SparkFailureKind; peakMib?: number } = {},
): SparkAttemptRecord {
  return {
    attempt: n,
    resources: SparkResources.parse({ executorCores: 2, ...resources }),
    step: 'test',
    outcome,
    ...(opts.kind ? { failureKind: opts.kind } : {}),
    exitCode: outcome === 'succeeded' ? 0 : 1,
    startedAt: '2026-11-26T00:00:00.000Z',
    wallMs: 60_000,
    cost: { gbHours: 0.01, vcoreHours: 0.02 },
    peaks: opts.peakMib === undefined ? {} : { peakJVMHeapMemory: opts.peakMib * MiB },
  };
}

const request = SparkResources.parse({ executorMemory: '4g', executorCores: 2, driverMemory: '2g' });

describe('learned sizing', () => {
  it('starts from the request without history', () => {
    expect(recommendSizing(request, {}, [])).toMatchObject({ source: 'request', resources: request });
  });

  it('shrinks below the request when the runs show slack (the mean peak, not the max)', () => {
    const runs: SizingRun[] = [250, 350, 300].map((peak) => ({
      outcome: 'succeeded',
      attempts: [attempt(1, { executorMemory: '4g', driverMemory: '2g' }, 'succeeded', { peakMib: peak })],
    }));
    const rec = recommendSizing(request, {}, runs);
    // mean 300 MiB × 1.25 + 2σ (σ ≈ 41) ≈ 457 → the 512 MiB floor.
    expect(rec).toMatchObject({
      source: 'learned',
      basedOnRuns: 3,
      resources: { executorMemory: '512m', driverMemory: '2g' },
    });
    expect(rec.reason).toMatch(/smaller than the request \(4g\)/);
    const bigger = recommendSizing(request, {}, [
      { outcome: 'succeeded', attempts: [attempt(1, { executorMemory: '4g' }, 'succeeded', { peakMib: 1600 })] },
    ]);
    expect(bigger.resources.executorMemory).toBe('2g');
  });

  it('holds at the proven size when the peak is near it, and keeps the ladder’s task cpus', () => {
    const run: SizingRun = {
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '512m' }, 'failed', { kind: 'executor-oom' }),
        attempt(2, { executorMemory: '512m', taskCpus: 2 }, 'failed', { kind: 'executor-oom' }),
        attempt(3, { executorMemory: '1g', taskCpus: 2, executorMemoryOverhead: '768m' }, 'succeeded', {
          peakMib: 950,
        }),
      ],
    };
    const rec = recommendSizing(SparkResources.parse({ executorMemory: '512m', executorCores: 2 }), {}, [run]);
    expect(rec.resources).toMatchObject({ executorMemory: '1g', taskCpus: 2 });
    // Only heap OOMs: the overhead the ladder doubled alongside the heap goes back to Spark's default.
    expect(rec.resources.executorMemoryOverhead).toBeUndefined();
    expect(rec.reason).toMatch(/held at the proven 1g/);
  });

  it('never goes back to a heap share that already ran out of memory', () => {
    const run: SizingRun = {
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '1g', taskCpus: 2 }, 'failed', { kind: 'executor-oom' }),
        attempt(2, { executorMemory: '2g', taskCpus: 2 }, 'succeeded', { peakMib: 700 }),
      ],
    };
    // 700 × 1.25 = 875 → 896m, but 1g per task already failed: use the proven 2g.
    const rec = recommendSizing(request, {}, [run]);
    expect(rec.resources.executorMemory).toBe('2g');
    expect(rec.reason).toMatch(/already ran out of memory/);
  });

  it('keeps a driver that a driver OOM taught, and respects caps', () => {
    const run: SizingRun = {
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '1g', driverMemory: '512m' }, 'failed', { kind: 'driver-oom' }),
        attempt(2, { executorMemory: '1g', driverMemory: '1g' }, 'succeeded', { peakMib: 300 }),
      ],
    };
    const rec = recommendSizing(SparkResources.parse({ executorMemory: '1g', driverMemory: '512m' }), {}, [run]);
    expect(rec.resources.driverMemory).toBe('1g');
    const capped = recommendSizing(request, { executorMemory: '4g' }, [
      { outcome: 'succeeded', attempts: [attempt(1, { executorMemory: '8g' }, 'succeeded', { peakMib: 7000 })] },
    ]);
    expect(capped.resources.executorMemory).toBe('4g');
  });

  it('ignores failed runs as proof', () => {
    const rec = recommendSizing(request, {}, [
      { outcome: 'failed', attempts: [attempt(1, { executorMemory: '512m' }, 'failed', { kind: 'user-code' })] },
    ]);
    expect(rec.source).toBe('request');
  });
});

/**
 * History shapes recorded from real runs. `recordedOomRun` is the `spark-job-oom-then-resized` run of
 * test/histories/spark-job-oom-then-resized.json (Spark 4.1 local-cluster, its attempts' resources, kinds and event-log
 * peaks as recorded; log paths left out). The others follow the attempt sequences the ladder produced in the
 * 2026-11-26 `npm run bench:spark` runs (bench/results/spark-runs.json) and in its container-kill tests.
 */
describe('learned sizing per dimension, on recorded history shapes', () => {
  const recordedOomRun: SizingRun = {
    outcome: 'succeeded',
    attempts: [
      {
        ...attempt(1, { executorMemory: '512m', executorCores: 1 }, 'failed', { kind: 'executor-oom' }),
        exitCode: 1,
        wallMs: 90871,
        peaks: {
          driverPeakJVMHeapMemory: 97946720,
          peakTaskExecutionMemory: 0,
          peakJVMHeapMemory: 465864624,
          peakJVMOffHeapMemory: 75007824,
          peakExecutionMemory: 0,
          peakStorageMemory: 36607,
          executorsAdded: 1,
          executorsLost: 3,
        },
      },
      {
        ...attempt(2, { executorMemory: '1g', executorMemoryOverhead: '768m', executorCores: 1 }, 'succeeded'),
        step: 'executor memory ×2, overhead ×2',
        wallMs: 112571,
        peaks: {
          driverPeakJVMHeapMemory: 81337368,
          peakTaskExecutionMemory: 0,
          peakJVMHeapMemory: 823578624,
          peakJVMOffHeapMemory: 78553376,
          peakExecutionMemory: 0,
          peakStorageMemory: 38333,
          executorsAdded: 1,
        },
      },
    ],
  };
  const oneCore = (r: Partial<SparkResources>) => SparkResources.parse({ executorCores: 1, ...r });

  it('keeps the escalated heap but drops the doubled overhead after heap OOMs only (recorded run)', () => {
    const rec = recommendSizing(oneCore({ executorMemory: '512m', driverMemory: '512m' }), {}, [recordedOomRun]);
    // 785 MiB × 1.25 → 1024: held at the proven 1g; the 768m overhead the ladder added goes back to the default.
    expect(rec.resources).toEqual(oneCore({ executorMemory: '1g', driverMemory: '512m' }));
    expect(rec.reason).toMatch(/overhead back to Spark's default: no container memory kill/);
  });

  it('skewed-join shape: 1g and 2g heap OOMs, 3g succeeds → 3g with the default overhead', () => {
    const run: SizingRun = {
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '1g', executorCores: 1 }, 'failed', { kind: 'executor-oom' }),
        attempt(2, { executorMemory: '2g', executorMemoryOverhead: '768m', executorCores: 1 }, 'failed', {
          kind: 'executor-oom',
        }),
        attempt(3, { executorMemory: '3g', executorMemoryOverhead: '768m', executorCores: 1 }, 'succeeded', {
          peakMib: 2600,
        }),
      ],
    };
    const rec = recommendSizing(oneCore({ executorMemory: '1g', driverMemory: '512m' }), { executorMemory: '4g' }, [
      run,
    ]);
    expect(rec.resources).toEqual(oneCore({ executorMemory: '3g', driverMemory: '512m' }));
  });

  it('takes the smallest overhead that ever succeeded, and never more than an explicit request', () => {
    const heapOnly = (overhead: string | undefined, peakMib: number): SizingRun => ({
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '1g' }, 'failed', { kind: 'executor-oom' }),
        attempt(2, { executorMemory: '2g', ...(overhead ? { executorMemoryOverhead: overhead } : {}) }, 'succeeded', {
          peakMib,
        }),
      ],
    });
    // A PySpark job that asks for 1g overhead: the ladder's 2g overhead goes back to the request's 1g.
    const py = recommendSizing(
      SparkResources.parse({ executorMemory: '1g', executorMemoryOverhead: '1g', executorCores: 2 }),
      {},
      [heapOnly('2g', 1900)],
    );
    expect(py.resources).toMatchObject({ executorMemory: '2g', executorMemoryOverhead: '1g' });
    // A run that succeeded with a smaller explicit overhead than the request proves the smaller one.
    const smaller = recommendSizing(
      SparkResources.parse({ executorMemory: '1g', executorMemoryOverhead: '1g', executorCores: 2 }),
      {},
      [heapOnly('2g', 1900), heapOnly('512m', 1900)],
    );
    expect(smaller.resources.executorMemoryOverhead).toBe('512m');
  });

  it('keeps the overhead above every container kill', () => {
    // The ladder's container-kill climb from 1g: 384m default killed, 2g +768m killed, 3g +1152m succeeded; the
    // next run started there and succeeded too.
    const climb: SizingRun = {
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '1g' }, 'failed', { kind: 'container-memory-kill' }),
        attempt(2, { executorMemory: '2g', executorMemoryOverhead: '768m' }, 'failed', {
          kind: 'container-memory-kill',
        }),
        attempt(3, { executorMemory: '3g', executorMemoryOverhead: '1152m' }, 'succeeded', { peakMib: 900 }),
      ],
    };
    const second: SizingRun = {
      outcome: 'succeeded',
      attempts: [attempt(1, { executorMemory: '3g', executorMemoryOverhead: '1152m' }, 'succeeded', { peakMib: 950 })],
    };
    const rec = recommendSizing(SparkResources.parse({ executorMemory: '1g', executorCores: 2 }), {}, [second, climb]);
    expect(rec.resources.executorMemoryOverhead).toBe('1152m');
    expect(rec.reason).toMatch(/overhead 1152m after 2 container kill\(s\) at ≤ 768m/);
  });

  it('adds a margin that grows with the spread of the peaks', () => {
    const run = (peakMib: number): SizingRun => ({
      outcome: 'succeeded',
      attempts: [attempt(1, { executorMemory: '4g' }, 'succeeded', { peakMib })],
    });
    // Same mean (1000 MiB): steady runs → 1250 → 1280m; runs of 600 and 1400 MiB (σ 400) → 1250 + 800 → 2112m.
    expect(recommendSizing(request, {}, [run(1000), run(1000)]).resources.executorMemory).toBe('1280m');
    const spread = recommendSizing(request, {}, [run(600), run(1400)]);
    expect(spread.resources.executorMemory).toBe('2112m');
    expect(spread.reason).toMatch(/σ 400/);
  });

  it('learns the smallest driver above every driver OOM', () => {
    const runs: SizingRun[] = [
      {
        outcome: 'succeeded',
        attempts: [attempt(1, { executorMemory: '1g', driverMemory: '2g' }, 'succeeded', { peakMib: 300 })],
      },
      {
        outcome: 'succeeded',
        attempts: [
          attempt(1, { executorMemory: '1g', driverMemory: '512m' }, 'failed', { kind: 'driver-oom' }),
          attempt(2, { executorMemory: '1g', driverMemory: '1g' }, 'succeeded', { peakMib: 300 }),
        ],
      },
    ];
    const rec = recommendSizing(SparkResources.parse({ executorMemory: '1g', driverMemory: '512m' }), {}, runs);
    expect(rec.resources.driverMemory).toBe('1g');
  });

  it('keeps grown off-heap memory after an execution-memory failure, and drops it after heap OOMs only', () => {
    const withKind = (kind: SparkFailureKind): SizingRun => ({
      outcome: 'succeeded',
      attempts: [
        attempt(1, { executorMemory: '1g', executorOffHeap: '512m' }, 'failed', { kind }),
        attempt(2, { executorMemory: '2g', executorOffHeap: '1g', executorMemoryOverhead: '768m' }, 'succeeded', {
          peakMib: 1900,
        }),
      ],
    });
    const req = SparkResources.parse({ executorMemory: '1g', executorOffHeap: '512m', executorCores: 2 });
    expect(recommendSizing(req, {}, [withKind('execution-memory')]).resources.executorOffHeap).toBe('1g');
    expect(recommendSizing(req, {}, [withKind('executor-oom')]).resources).toMatchObject({
      executorMemory: '2g',
      executorOffHeap: '512m',
    });
  });
});
