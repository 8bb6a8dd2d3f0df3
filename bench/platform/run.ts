/**
 * Orchestration overhead every Sluice pipeline pays, measured on a real Temporal dev server (in memory) with an
 * in-process cpu-pool worker:
 *   1. the round trip of one no-op activity (p50, p95), from a sequential run of no-op activities;
 *   2. a sustained fan-out of 1,000 no-op activities from one workflow (activities per second);
 *   3. workflow starts per second from one client.
 * Run: `npm run bench:platform` (add `-- --quick` for a smoke run). Writes bench/results/platform.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startActivityFanOut } from '../../client/pipelines.js';
import { devServerSearchAttributes } from '../../cli/local-stack.js';
import { startTemporalDevServer } from '../../lib/stack/temporal-server.js';
import { StackConfig } from '../../schemas/stack-config.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { bundleWorkflows } from '../../workers/workflow-bundle.js';
import { median, quantile, writeResults, type Figure } from '../lib/results.js';

const quick = process.argv.includes('--quick');
const SEQUENTIAL = quick ? 50 : 300;
const FAN_OUT = quick ? 200 : 1000;
const FAN_OUT_REPEATS = quick ? 1 : 3;
const STARTS = quick ? 100 : 500;
const START_CONCURRENCY = 32;

function ms(t: unknown): number {
  // Event times arrive as protobuf Timestamps ({seconds: Long, nanos}).
  const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number };
  const seconds = typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0);
  return seconds * 1000 + (ts.nanos ?? 0) / 1e6;
}

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  const server = await startTemporalDevServer({
    logDir: dir,
    searchAttributes: devServerSearchAttributes(StackConfig.parse({})),
  });
  const connection = await Connection.connect({ address: server.address });
  const native = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  const base = 'bench-platform';
  const worker = await createCpuWorker({
    connection: native,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: await bundleWorkflows() },
    maxConcurrentActivities: 100,
    maxConcurrentWorkflowTasks: 40,
    shutdownGraceTime: '1s',
  });
  const figures: Figure[] = [];
  try {
    await worker.runUntil(async () => {
      // Warm-up: JIT, connections, the workflow cache.
      await (await startActivityFanOut(client, { count: 20, mode: 'sequential' }, { taskQueue: base })).result();

      // 1. Round trip of one no-op activity.
      const seq = await startActivityFanOut(client, { count: SEQUENTIAL, mode: 'sequential' }, { taskQueue: base });
      await seq.result();
      const events = (await seq.fetchHistory()).events ?? [];
      const scheduledAt = new Map<string, number>();
      const roundTrips: number[] = [];
      const stepTimes: number[] = [];
      let lastScheduled: number | undefined;
      const wfTaskScheduled = new Map<string, number>();
      const wfTaskStarted = new Map<string, number>();
      const wfTaskWait: number[] = [];
      const wfTaskRun: number[] = [];
      for (const e of events) {
        if (e.workflowTaskScheduledEventAttributes) wfTaskScheduled.set(String(e.eventId), ms(e.eventTime));
        if (e.workflowTaskStartedEventAttributes) {
          const sched = String(e.workflowTaskStartedEventAttributes.scheduledEventId);
          wfTaskStarted.set(String(e.eventId), ms(e.eventTime));
          wfTaskWait.push(ms(e.eventTime) - wfTaskScheduled.get(sched)!);
        }
        if (e.workflowTaskCompletedEventAttributes) {
          wfTaskRun.push(
            ms(e.eventTime) - wfTaskStarted.get(String(e.workflowTaskCompletedEventAttributes.startedEventId))!,
          );
        }
        if (e.activityTaskScheduledEventAttributes) {
          const t = ms(e.eventTime);
          scheduledAt.set(String(e.eventId), t);
          if (lastScheduled !== undefined) stepTimes.push(t - lastScheduled);
          lastScheduled = t;
        }
        const done = e.activityTaskCompletedEventAttributes;
        if (done) roundTrips.push(ms(e.eventTime) - scheduledAt.get(String(done.scheduledEventId))!);
      }
      figures.push(
        {
          name: 'activity_round_trip_p50',
          value: quantile(roundTrips, 0.5),
          unit: 'ms',
          peer: null,
          ratio: null,
          goal: null,
        },
        {
          name: 'activity_round_trip_p95',
          value: quantile(roundTrips, 0.95),
          unit: 'ms',
          peer: null,
          ratio: null,
          goal: null,
        },
        {
          name: 'sequential_step_p50',
          value: quantile(stepTimes, 0.5),
          unit: 'ms',
          peer: null,
          ratio: null,
          goal: null,
        },
        {
          name: 'sequential_step_p95',
          value: quantile(stepTimes, 0.95),
          unit: 'ms',
          peer: null,
          ratio: null,
          goal: null,
        },
        {
          name: 'workflow_task_wait_p50',
          value: quantile(wfTaskWait, 0.5),
          unit: 'ms',
          peer: null,
          ratio: null,
          goal: null,
        },
        {
          name: 'workflow_task_run_p50',
          value: quantile(wfTaskRun, 0.5),
          unit: 'ms',
          peer: null,
          ratio: null,
          goal: null,
        },
      );

      // 2. Sustained fan-out from one workflow.
      const rates: number[] = [];
      for (let i = 0; i < FAN_OUT_REPEATS; i++) {
        const h = await startActivityFanOut(client, { count: FAN_OUT, mode: 'parallel' }, { taskQueue: base });
        await h.result();
        const d = await h.describe();
        rates.push(FAN_OUT / ((d.closeTime!.getTime() - d.startTime.getTime()) / 1000));
      }
      figures.push({
        name: `fan_out_${FAN_OUT}_activities_per_s`,
        value: median(rates),
        unit: 'activities/s',
        peer: null,
        ratio: null,
        goal: null,
      });

      // 3. Workflow starts per second (start acknowledged by the server), 32 in flight.
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: START_CONCURRENCY }, async () => {
          while (next < STARTS) {
            next += 1;
            await startActivityFanOut(client, { count: 1, mode: 'sequential' }, { taskQueue: base });
          }
        }),
      );
      const startsPerSecond = STARTS / ((performance.now() - t0) / 1000);
      figures.push({
        name: 'workflow_starts_per_s',
        value: startsPerSecond,
        unit: 'starts/s',
        peer: null,
        ratio: null,
        goal: null,
      });
    });
  } finally {
    await connection.close();
    await native.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const f of figures) f.value = Math.round(f.value * 10) / 10;
  const file = writeResults('platform', `npm run bench:platform${quick ? ' -- --quick' : ''}`, figures, [
    'Baseline figures: the platform issue names no peer; later issues compare their overhead against these.',
    'activity_round_trip = ActivityTaskScheduled to ActivityTaskCompleted (server event times);',
    'sequential_step = one scheduled activity to the next in a sequential loop (adds the workflow task).',
    `Dev server in memory, one in-process cpu worker (100 activity slots); fan-out median of ${FAN_OUT_REPEATS}.`,
  ]);
  console.table(figures.map((f) => ({ figure: f.name, value: f.value, unit: f.unit })));
  console.log(`wrote ${file}`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
