import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startPoolCheck } from '../../client/pipelines.js';
import { waitForPollers, devServerSearchAttributes } from '../../cli/local-stack.js';
import type { ManagedProcess } from '../../lib/stack/managed-process.js';
import { freePort } from '../../lib/stack/ports.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../lib/stack/temporal-server.js';
import { StackConfig } from '../../schemas/stack-config.js';
import { taskQueues } from '../../schemas/task-queues.js';
import { progressQuery } from '../../workflows/queries.js';
import { eventually, installTestRuntime, spawnWorker, uniqueQueue } from '../fixtures/temporal.js';

describe('a dev server restarted on its database file', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('resumes running workflows, which then complete', async () => {
    installTestRuntime();
    const dir = mkdtempSync(path.join(inject('fixtureDir'), 'restart-'));
    const logDir = path.join(dir, 'logs');
    const dbFile = path.join(dir, 'temporal.db');
    const port = await freePort();
    const searchAttributes = devServerSearchAttributes(StackConfig.parse({}));
    const startServer = () => startTemporalDevServer({ port, dbFile, logDir, searchAttributes });
    let server: TemporalDevServer = await startServer();
    cleanups.push(() => server.stop());
    const base = uniqueQueue('restart');
    const q = taskQueues(base);
    const connect = async () => {
      const connection = await Connection.connect({ address: server.address });
      return { connection, client: new Client({ connection, namespace: 'default' }) };
    };

    let worker: ManagedProcess = spawnWorker('cpu-before', {
      pool: 'cpu',
      baseQueue: base,
      address: server.address,
      logDir,
    });
    cleanups.push(() => worker.kill());
    let c = await connect();
    await waitForPollers(c.client, [{ name: q.cpu, type: 'activity' }], 60_000);
    const handle = await startPoolCheck(
      c.client,
      { cpuActivities: 4, unitsPerActivity: 600, gpuSteps: 0 },
      { taskQueue: base },
    );
    const runId = handle.firstExecutionRunId;
    await eventually(
      async () => ((await handle.describe()).raw.pendingActivities?.length ? true : undefined),
      30_000,
      'activities to start',
    );
    await c.connection.close();

    // Stop everything mid-run; only the SQLite file carries the workflow across.
    await worker.stop(5000);
    await server.stop();
    server = await startServer();
    worker = spawnWorker('cpu-after', { pool: 'cpu', baseQueue: base, address: server.address, logDir });

    c = await connect();
    try {
      const resumed = c.client.workflow.getHandle(handle.workflowId, runId);
      const result = await resumed.result();
      expect(result.cpuActivities).toBe(4);
      expect(result.cpuUnits).toBe(2400);
      expect((await resumed.query(progressQuery)).phase).toBe('done');
      expect((await resumed.describe()).runId).toBe(runId);
    } finally {
      await c.connection.close();
    }
  });
});
