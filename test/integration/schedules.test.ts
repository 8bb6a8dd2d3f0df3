import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { registerSchedules } from '../../cli/commands/schedules.js';
import { addGlobalOptions } from '../../cli/context.js';
import { syncSchedules, type ScheduleChange } from '../../client/schedules.js';
import { parseStackConfig } from '../../lib/stack/stack-config-file.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import type { StackConfig } from '../../schemas/stack-config.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import type { WorkflowSource } from '../../workers/workflow-bundle.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

/** The shared dev server of the integration run (global setup); it fails the run when it cannot start. */
async function temporalForTests(): Promise<{
  address: string;
  workflows(): Promise<WorkflowSource>;
  stop(): Promise<void>;
}> {
  return {
    address: inject('temporalAddress'),
    workflows: async () => ({ workflowBundle: testWorkflowBundle() }),
    stop: async () => {},
  };
}

/** A stack config with just these schedules; everything else takes its defaults. */
function stackWith(schedules: unknown[]): StackConfig {
  return parseStackConfig(stringify({ schedules }), 'test stack');
}

function actions(plan: ScheduleChange[]): [string, string][] {
  return plan.map((c) => [c.id, c.action]);
}

async function exists(client: Client, id: string): Promise<boolean> {
  try {
    await client.schedule.getHandle(id).describe();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

async function listed(client: Client, id: string): Promise<boolean> {
  for await (const s of client.schedule.list()) if (s.scheduleId === id) return true;
  return false;
}

describe('schedules sync against a real server', { timeout: 120_000 }, () => {
  let server: Awaited<ReturnType<typeof temporalForTests>>;
  let t: Awaited<ReturnType<typeof connectToTestServer>>;

  beforeAll(async () => {
    server = await temporalForTests();
    t = await connectToTestServer(server.address);
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    await server?.stop();
  });

  /** Serves the schedule's queue with a cpu worker until its first run finishes; that run's result and description. */
  async function firstScheduledRun(id: string, queue: { baseTaskQueue: string; dedicatedQueue?: string }) {
    const worker = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      ...queue,
      workflows: await server.workflows(),
      shutdownGraceTime: '1s',
    });
    return worker.runUntil(async () => {
      const started = await eventually(
        async () => (await t.client.schedule.getHandle(id).describe()).info.recentActions[0]?.action.workflow,
        30_000,
        `schedule ${id} to start a workflow`,
      );
      const handle = t.client.workflow.getHandle(started.workflowId, started.firstExecutionRunId);
      return { workflowId: started.workflowId, result: await handle.result(), described: await handle.describe() };
    });
  }

  it('dry run reports create and changes nothing', async () => {
    const base = uniqueQueue('sched-dry');
    const id = `${base}/fan-out`;
    const config = stackWith([
      { id, pipeline: 'activity-fan-out', spec: { every: ['1h'] }, input: { count: 1, mode: 'sequential' } },
    ]);
    const plan = await syncSchedules(t.client, config, { baseTaskQueue: base, dryRun: true });
    expect(actions(plan)).toEqual([[id, 'create']]);
    expect(plan[0]?.desired).toMatchObject({ workflowType: 'activityFanOut', taskQueue: base, intervals: ['1h'] });
    expect(await exists(t.client, id)).toBe(false);
  });

  it('creates, reports a second sync unchanged, updates, and deletes only its own', async () => {
    const base = uniqueQueue('sched-life');
    const hourly = {
      id: `${base}/hourly`,
      pipeline: 'activity-fan-out',
      spec: { every: ['1h', '90m'], jitter: '30s' },
      input: { count: 3, mode: 'parallel' },
      note: 'hourly fan-out',
    };
    const nightly = {
      id: `${base}/nightly`,
      pipeline: 'pool-check',
      spec: { cron: ['0 3 * * *', '30  4 * * MON'], timezone: 'Europe/Berlin' },
      input: { cpuActivities: 2 },
      paused: true,
    };
    const byHand = `${base}/by-hand`;
    await t.client.schedule.create({
      scheduleId: byHand,
      spec: { intervals: [{ every: '1h' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'activityFanOut',
        taskQueue: base,
        args: [{ count: 1, mode: 'parallel' }],
      },
      state: { paused: true },
    });
    try {
      const created = await syncSchedules(t.client, stackWith([hourly, nightly]), { baseTaskQueue: base });
      expect(actions(created)).toEqual([
        [hourly.id, 'create'],
        [nightly.id, 'create'],
      ]);
      const d = await t.client.schedule.getHandle(hourly.id).describe();
      expect(d.memo).toEqual({ managedBy: 'sluice', stackQueue: base });
      expect(d.action).toMatchObject({ workflowType: 'activityFanOut', taskQueue: base, workflowId: hourly.id });
      expect(d.action.args).toEqual([{ count: 3, mode: 'parallel' }]);
      expect(d.action.staticSummary).toBe('3 no-op activities, parallel');
      expect(d.state).toMatchObject({ paused: false, note: 'hourly fan-out' });
      const n = await t.client.schedule.getHandle(nightly.id).describe();
      expect(n.state.paused).toBe(true);
      expect(n.spec.timezone).toBe('Europe/Berlin');
      expect(n.action.args).toEqual([expect.objectContaining({ cpuActivities: 2, gpuSteps: 4 })]);

      // Idempotent: what describe() hands back (ms durations, compiled cron) compares equal to the config.
      const again = await syncSchedules(t.client, stackWith([hourly, nightly]), { baseTaskQueue: base });
      expect(again.map((c) => [c.id, c.action, c.changes])).toEqual([
        [hourly.id, 'unchanged', []],
        [nightly.id, 'unchanged', []],
      ]);

      const hourly2 = { ...hourly, input: { count: 5, mode: 'parallel' } };
      const nightly2 = { ...nightly, overlap: 'BUFFER_ONE', paused: false };
      const dry = await syncSchedules(t.client, stackWith([hourly2, nightly2]), { baseTaskQueue: base, dryRun: true });
      expect(actions(dry)).toEqual([
        [hourly.id, 'update'],
        [nightly.id, 'update'],
      ]);
      expect((await t.client.schedule.getHandle(hourly.id).describe()).action.args).toEqual([
        { count: 3, mode: 'parallel' },
      ]);
      const updated = await syncSchedules(t.client, stackWith([hourly2, nightly2]), { baseTaskQueue: base });
      expect(updated[0]?.changes).toContain('args: [{"count":3,"mode":"parallel"}] → [{"count":5,"mode":"parallel"}]');
      expect(updated[1]?.changes).toEqual(['overlap: SKIP → BUFFER_ONE', 'paused: true → false']);
      expect((await t.client.schedule.getHandle(hourly.id).describe()).action.args).toEqual([
        { count: 5, mode: 'parallel' },
      ]);
      const n2 = await t.client.schedule.getHandle(nightly.id).describe();
      expect(n2.policies.overlap).toBe('BUFFER_ONE');
      expect(n2.state.paused).toBe(false);
      expect(actions(await syncSchedules(t.client, stackWith([hourly2, nightly2]), { baseTaskQueue: base }))).toEqual([
        [hourly.id, 'unchanged'],
        [nightly.id, 'unchanged'],
      ]);

      // Deletion candidates come from list(), which is eventually consistent.
      await eventually(
        async () => ((await listed(t.client, nightly.id)) ? true : undefined),
        15_000,
        'the schedule to be listed',
      );
      const removed = await syncSchedules(t.client, stackWith([hourly2]), { baseTaskQueue: base });
      expect(actions(removed)).toEqual([
        [hourly.id, 'unchanged'],
        [nightly.id, 'delete'],
      ]);
      expect(await exists(t.client, nightly.id)).toBe(false);
      expect(await exists(t.client, hourly.id)).toBe(true);
      expect(await exists(t.client, byHand)).toBe(true);

      await eventually(
        async () => ((await listed(t.client, hourly.id)) ? true : undefined),
        15_000,
        'the schedule to be listed',
      );
      expect(actions(await syncSchedules(t.client, stackWith([]), { baseTaskQueue: base }))).toEqual([
        [hourly.id, 'delete'],
      ]);
      expect(await exists(t.client, hourly.id)).toBe(false);
      expect(await exists(t.client, byHand)).toBe(true);
    } finally {
      for (const id of [hourly.id, nightly.id, byHand])
        await t.client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
    }
  });

  it('`sluice schedules sync` prints the diff and a summary', async () => {
    const base = uniqueQueue('sched-cli');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-schedules-cli-'));
    const configFile = path.join(dir, 'temporal-dev.yml');
    const id = `${base}/cli`;
    writeFileSync(
      configFile,
      stringify({
        workers: { cpu: { taskQueue: base } },
        schedules: [
          {
            id,
            pipeline: 'activity-fan-out',
            spec: { every: ['1h'] },
            input: { count: 2, mode: 'parallel' },
            paused: true,
          },
        ],
      }),
    );
    const runCli = async (...args: string[]): Promise<string> => {
      const lines: string[] = [];
      const log = vi
        .spyOn(console, 'log')
        .mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
      try {
        const program = addGlobalOptions(new Command('sluice')).exitOverride();
        registerSchedules(program);
        await program.parseAsync(
          ['--address', server.address, '--namespace', 'default', '--config', configFile, ...args],
          {
            from: 'user',
          },
        );
      } finally {
        log.mockRestore();
      }
      return lines.join('\n');
    };
    try {
      const dry = await runCli('schedules', 'sync', '--dry-run');
      expect(dry).toMatch(
        new RegExp(`^\\+ ${id} +create +activityFanOut on ${base}, every 1h, overlap SKIP, paused$`, 'm'),
      );
      expect(dry).toContain('dry run: 1 to create, 0 to update, 0 to delete, 0 unchanged; nothing was changed');
      expect(await exists(t.client, id)).toBe(false);

      expect(await runCli('schedules', 'sync')).toContain('1 created, 0 updated, 0 deleted, 0 unchanged');
      const second = await runCli('schedules', 'sync');
      expect(second).toMatch(new RegExp(`^= ${id} +unchanged`, 'm'));
      expect(second).toContain('0 created, 0 updated, 0 deleted, 1 unchanged');

      await eventually(
        async () => ((await listed(t.client, id)) ? true : undefined),
        15_000,
        'the schedule to be listed',
      );
      expect(await runCli('schedules', 'ls')).toMatch(new RegExp(`^${id} +activityFanOut +paused +yes `, 'm'));
    } finally {
      await t.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a schedule created by sync fires and its run completes on a cpu worker', async () => {
    const base = uniqueQueue('sched-fire');
    const id = `${base}/every-2s`;
    const config = stackWith([
      { id, pipeline: 'activity-fan-out', spec: { every: ['2s'] }, input: { count: 2, mode: 'parallel' } },
    ]);
    expect(actions(await syncSchedules(t.client, config, { baseTaskQueue: base }))).toEqual([[id, 'create']]);
    try {
      const run = await firstScheduledRun(id, { baseTaskQueue: base });
      expect(run.workflowId.startsWith(`${id}-`)).toBe(true);
      expect(run.result).toEqual({ completed: 2 });
      expect(run.described.type).toBe('activityFanOut');
      expect(run.described.taskQueue).toBe(base);
      expect(run.described.typedSearchAttributes.get(SearchAttributes.pipeline)).toBe('activity-fan-out');
    } finally {
      await t.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    expect(await exists(t.client, id)).toBe(false);
  });

  it('a schedule with `queue` runs on a worker of that dedicated CPU queue', async () => {
    const base = uniqueQueue('sched-dedicated');
    const id = `${base}/dedicated-every-2s`;
    const config = parseStackConfig(
      stringify({
        workers: { cpu: { dedicated: [{ name: 'maintenance' }] } },
        schedules: [
          {
            id,
            pipeline: 'activity-fan-out',
            spec: { every: ['2s'] },
            input: { count: 1, mode: 'parallel' },
            queue: 'maintenance',
          },
        ],
      }),
      'test stack',
    );
    expect(actions(await syncSchedules(t.client, config, { baseTaskQueue: base }))).toEqual([[id, 'create']]);
    try {
      // Only the dedicated queue is served: a run on the base queue would never finish.
      const run = await firstScheduledRun(id, { baseTaskQueue: base, dedicatedQueue: 'maintenance' });
      expect(run.result).toEqual({ completed: 1 });
      expect(run.described.taskQueue).toBe(`${base}-maintenance`);
      // Removing the entry deletes it: it belongs to this stack although it runs on another queue.
      const plan = await syncSchedules(t.client, stackWith([]), { baseTaskQueue: base });
      expect(plan.filter((c) => c.id === id).map((c) => c.action)).toEqual(['delete']);
    } finally {
      await t.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    }
    expect(await exists(t.client, id)).toBe(false);
  });
});
