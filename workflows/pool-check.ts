import { log, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { GpuHostActivities } from '../activities/gpu-host-activities.js';
import type { PlatformActivities } from '../activities/platform-activities.js';
import { PoolCheckInput, type PoolCheckResult } from '../schemas/platform.js';
import type { Progress } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { PinnedGpuHost } from './pinning/pinned-gpu-host.js';
import { progressQuery } from './queries.js';
import { parseWorkflowInput } from './validate-input.js';

const { cpuWork } = proxyActivities<PlatformActivities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
  summary: 'CPU work unit',
});

/**
 * The platform check: fans work out over the `cpu` pool, then pins a run of steps to one GPU host (moving to another
 * if that host dies). `sluice demo` runs it to show both pools working; it is also the smallest end-to-end test of
 * a deployment.
 */
export async function poolCheck(rawInput: PoolCheckInput): Promise<PoolCheckResult> {
  const input = parseWorkflowInput(PoolCheckInput, rawInput, 'poolCheck input');
  const progress: Progress = {
    phase: 'cpu-fan-out',
    done: 0,
    total: input.cpuActivities + input.gpuSteps,
    unit: 'steps',
  };
  setHandler(progressQuery, () => progress);
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'pool-check' },
    { key: SearchAttributes.phase, value: 'cpu-fan-out' },
  ]);

  const cpuResults = await Promise.all(
    Array.from({ length: input.cpuActivities }, async (_, i) => {
      const r = await cpuWork({ label: `cpu-${i}`, units: input.unitsPerActivity, unitMs: 5 });
      progress.done += 1;
      return r;
    }),
  );

  progress.phase = 'gpu-pinned';
  upsertSearchAttributes([{ key: SearchAttributes.phase, value: 'gpu-pinned' }]);
  const pinned = new PinnedGpuHost<GpuHostActivities>({
    hostScheduleToStartTimeout: input.hostScheduleToStartTimeout as `${number}s`,
    activityOptions: { startToCloseTimeout: '2m', heartbeatTimeout: '5s', retry: { maximumAttempts: 3 } },
  });
  const gpuSteps = [];
  for (let step = 0; step < input.gpuSteps; step++) {
    progress.detail = `step ${step + 1}/${input.gpuSteps} on ${pinned.host ?? '(reserving)'}`;
    gpuSteps.push(
      await pinned.run((acts) => acts.hostWork({ step, matrixSize: input.matrixSize, holdMs: input.holdMs })),
    );
    progress.done += 1;
  }

  progress.phase = 'done';
  progress.detail = undefined;
  upsertSearchAttributes([{ key: SearchAttributes.phase, value: 'done' }]);
  log.info('pool check done', { hosts: pinned.hostsUsed });
  return {
    cpuActivities: cpuResults.length,
    cpuUnits: cpuResults.reduce((n, r) => n + r.unitsDone, 0),
    gpuSteps,
    gpuHostsUsed: pinned.hostsUsed,
    hostReservations: pinned.reservationCount,
  };
}
