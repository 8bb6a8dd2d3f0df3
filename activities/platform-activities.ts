import { activityInfo, heartbeat, sleep } from '@temporalio/activity';
import { CpuWorkInput, type CpuWorkResult } from '../schemas/platform.js';
import { validateActivityInput } from './failures.js';

/** Dependencies of the platform activities. None yet; the factory shape keeps wiring uniform. */
export type PlatformActivityDeps = Record<string, never>;

/** Platform activities that run on the `cpu` pool. */
export function createPlatformActivities(_deps: PlatformActivityDeps = {}) {
  return {
    /** Does nothing; the orchestration-overhead benchmark measures the cost of its round trip. */
    async noop(): Promise<void> {},

    /**
     * Busy work in units, heartbeating after each unit with the count done. A retry (after a worker crash) resumes
     * from the last heartbeat instead of starting over; the result says how far the earlier attempts got.
     */
    async cpuWork(input: CpuWorkInput): Promise<CpuWorkResult> {
      const { label, units, unitMs } = validateActivityInput(CpuWorkInput, input, 'cpuWork input');
      const info = activityInfo();
      const previous = info.heartbeatDetails as { unitsDone?: number } | undefined;
      const resumedFrom = Math.min(previous?.unitsDone ?? 0, units);
      for (let done = resumedFrom; done < units;) {
        await sleep(unitMs);
        done += 1;
        heartbeat({ unitsDone: done });
      }
      return { label, unitsDone: units, resumedFrom, attempt: info.attempt, pid: process.pid };
    },
  };
}

export type PlatformActivities = ReturnType<typeof createPlatformActivities>;
