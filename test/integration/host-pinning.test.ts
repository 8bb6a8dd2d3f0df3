import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPoolCheck } from '../../client/pipelines.js';
import type { ManagedProcess } from '../../lib/stack/managed-process.js';
import { progressQuery } from '../../workflows/queries.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { connectToTestServer, eventually, spawnWorker, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';
import { waitForPollers } from '../../cli/local-stack.js';
import { taskQueues } from '../../schemas/task-queues.js';

describe('GPU host pinning (worker-specific task queues)', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  const gpuWorkers: ManagedProcess[] = [];
  beforeAll(async () => {
    t = await connectToTestServer();
  });
  afterAll(async () => {
    await Promise.all(gpuWorkers.map((w) => w.kill()));
    await t?.close();
  });

  it('moves to another host when the pinned host is killed mid-run, and finishes every step', async () => {
    const base = uniqueQueue('pin');
    const q = taskQueues(base);
    const logDir = path.join(inject('fixtureDir'), 'logs', base);
    const hosts = { 'gpu-a': spawnWorker('gpu-a', { pool: 'gpu', host: 'gpu-a', baseQueue: base, logDir }) };
    const hostB = spawnWorker('gpu-b', { pool: 'gpu', host: 'gpu-b', baseQueue: base, logDir });
    gpuWorkers.push(hosts['gpu-a'], hostB);
    const byName: Record<string, ManagedProcess> = { 'gpu-a': hosts['gpu-a'], 'gpu-b': hostB };
    await waitForPollers(
      t.client,
      [
        { name: q.gpuHost('gpu-a'), type: 'activity' },
        { name: q.gpuHost('gpu-b'), type: 'activity' },
        { name: q.gpu, type: 'activity' },
      ],
      60_000,
    );

    const cpu = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      workflows: { workflowBundle: testWorkflowBundle() },
      shutdownGraceTime: '1s',
    });
    await cpu.runUntil(async () => {
      const handle = await startPoolCheck(
        t.client,
        { cpuActivities: 0, gpuSteps: 5, matrixSize: 8, holdMs: 800, hostScheduleToStartTimeout: '2s' },
        { taskQueue: base },
      );
      // Wait until the second step runs on the first reserved host, then kill that host like a crash would.
      const firstHost = await eventually(
        async () => {
          const p = await handle.query(progressQuery);
          const m = /^step (\d+)\/\d+ on (gpu-[ab])$/.exec(p.detail ?? '');
          return m && Number(m[1]) >= 2 ? m[2] : undefined;
        },
        30_000,
        'the second pinned step',
      );
      await byName[firstHost!]!.kill();

      const result = await handle.result();
      const other = firstHost === 'gpu-a' ? 'gpu-b' : 'gpu-a';
      expect(result.gpuSteps.map((s) => s.step)).toEqual([0, 1, 2, 3, 4]);
      expect(result.gpuHostsUsed).toEqual([firstHost, other]);
      expect(result.hostReservations).toBe(2);
      expect(result.gpuSteps[0]!.host).toBe(firstHost);
      expect(result.gpuSteps[4]!.host).toBe(other);
      // Every step ran entirely on one host: the results come from the host that answered.
      expect(result.gpuSteps.every((s) => s.host === firstHost || s.host === other)).toBe(true);
    });
  });
});
