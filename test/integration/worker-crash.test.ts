import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPoolCheck } from '../../client/pipelines.js';
import type { ManagedProcess } from '../../lib/stack/managed-process.js';
import { waitForPollers } from '../../cli/local-stack.js';
import { taskQueues } from '../../schemas/task-queues.js';
import { connectToTestServer, eventually, spawnWorker, uniqueQueue } from '../fixtures/temporal.js';

describe('a worker killed with SIGKILL during a running activity', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  const workers: ManagedProcess[] = [];
  beforeAll(async () => {
    t = await connectToTestServer();
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await t?.close();
  });

  it('the workflow completes on a restarted worker, and the activity resumes from its last heartbeat', async () => {
    const base = uniqueQueue('crash');
    const q = taskQueues(base);
    const logDir = path.join(inject('fixtureDir'), 'logs', base);
    const first = spawnWorker('cpu-1', { pool: 'cpu', baseQueue: base, logDir });
    workers.push(first);
    await waitForPollers(t.client, [{ name: q.cpu, type: 'activity' }], 60_000);

    // One long CPU activity: 1200 units of 5 ms, heartbeating after each unit.
    const handle = await startPoolCheck(
      t.client,
      { cpuActivities: 1, unitsPerActivity: 1200, gpuSteps: 0 },
      { taskQueue: base },
    );
    await eventually(
      async () => {
        const { raw } = await handle.describe();
        const act = raw.pendingActivities?.[0];
        const details = act?.heartbeatDetails?.payloads?.length ? act : undefined;
        return details;
      },
      30_000,
      'the activity to heartbeat',
    );
    await first.kill();
    expect(first.child.signalCode).toBe('SIGKILL');

    const second = spawnWorker('cpu-2', { pool: 'cpu', baseQueue: base, logDir });
    workers.push(second);
    const result = await handle.result();
    expect(result.cpuActivities).toBe(1);
    expect(result.cpuUnits).toBe(1200);

    // The activity's history shows a second attempt, which resumed past zero.
    const history = await handle.fetchHistory();
    const completed = history.events?.find((e) => e.activityTaskCompletedEventAttributes);
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
    expect(completed).toBeDefined();
    const payload = completed!.activityTaskCompletedEventAttributes!.result!.payloads![0]!;
    const activityResult = JSON.parse(Buffer.from(payload.data!).toString('utf8')) as {
      resumedFrom: number;
      attempt: number;
    };
    expect(activityResult.attempt).toBeGreaterThanOrEqual(2);
    expect(activityResult.resumedFrom).toBeGreaterThan(0);
    expect(Number(started.at(-1)?.activityTaskStartedEventAttributes?.attempt)).toBeGreaterThanOrEqual(2);
  });
});
