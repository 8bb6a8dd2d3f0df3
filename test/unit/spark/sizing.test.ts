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
    const runs: SizingRun[] = [200, 400, 300].map((peak) => ({
      outcome: 'succeeded',
      attempts: [attempt(1, { executorMemory: '4g', driverMemory: '2g' }, 'succeeded', { peakMib: peak })],
    }));
    const rec = recommendSizing(request, {}, runs);
    // mean 300 MiB × 1.25 = 375 → the 512 MiB floor.
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
    expect(rec.resources).toMatchObject({ executorMemory: '1g', taskCpus: 2, executorMemoryOverhead: '768m' });
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
