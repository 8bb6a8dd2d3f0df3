import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPoolCheck } from '../../client/pipelines.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { progressQuery } from '../../workflows/queries.js';
import { createCpuWorker, createGpuHostWorkers } from '../../workers/pool-workers.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

describe('poolCheck on real workers', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  beforeAll(async () => {
    t = await connectToTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('fans out on the cpu pool and pins GPU steps to one host', async () => {
    const base = uniqueQueue('pool');
    const cpu = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      workflows: { workflowBundle: testWorkflowBundle() },
      shutdownGraceTime: '1s',
    });
    const gpu = await createGpuHostWorkers({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      host: 'gpu-x',
      slots: 2,
      shutdownGraceTime: '1s',
    });
    const handle = await startPoolCheck(
      t.client,
      { cpuActivities: 6, unitsPerActivity: 3, gpuSteps: 3, matrixSize: 16 },
      { taskQueue: base },
    );
    const all = Promise.all([cpu.run(), ...gpu.map((w) => w.run())]);
    try {
      const result = await handle.result();
      expect(result.cpuActivities).toBe(6);
      expect(result.cpuUnits).toBe(18);
      expect(result.gpuSteps.map((s) => s.step)).toEqual([0, 1, 2]);
      expect(new Set(result.gpuSteps.map((s) => s.host))).toEqual(new Set(['gpu-x']));
      expect(result.hostReservations).toBe(1);
      expect(result.gpuSteps[0]!.checksum).toBeGreaterThan(0);

      const progress = await handle.query(progressQuery);
      expect(progress).toMatchObject({ phase: 'done', done: 9, total: 9 });
      const described = await handle.describe();
      expect(described.typedSearchAttributes.get(SearchAttributes.pipeline)).toBe('pool-check');
      expect(described.typedSearchAttributes.get(SearchAttributes.gpuHost)).toBe('gpu-x');
      expect(await described.staticSummary()).toContain('6 CPU activities');
      const listed = await eventually(
        async () => {
          for await (const wf of t.client.workflow.list({
            query: `SluicePipeline = 'pool-check' AND TaskQueue = '${base}'`,
          })) {
            return wf.workflowId;
          }
          return undefined;
        },
        15_000,
        'the run to show up in visibility',
      );
      expect(listed).toBe(handle.workflowId);
    } finally {
      cpu.shutdown();
      gpu.forEach((w) => w.shutdown());
      await all;
    }
  });

  it('fails fast with a typed, non-retryable InvalidInput on a bad input started outside the client', async () => {
    const base = uniqueQueue('pool-bad');
    const cpu = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      workflows: { workflowBundle: testWorkflowBundle() },
      shutdownGraceTime: '1s',
    });
    await cpu.runUntil(async () => {
      // The raw client skips Sluice's validation, like a start from the Temporal UI would.
      const handle = await t.client.workflow.start('poolCheck', {
        taskQueue: base,
        workflowId: `${base}-bad`,
        args: [{ cpuActivities: -1, bogus: true }],
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('InvalidInput');
      expect((cause as ApplicationFailure).nonRetryable).toBe(true);
      expect((cause as ApplicationFailure).message).toMatch(/cpuActivities/);
    });
  });

  it('the typed client rejects a bad input before starting anything', async () => {
    await expect(
      startPoolCheck(t.client, { cpuActivities: 5000 } as never, { taskQueue: uniqueQueue() }),
    ).rejects.toThrow(/cpuActivities: Too big/);
  });
});
