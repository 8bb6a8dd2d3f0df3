import { proxyActivities, setHandler } from '@temporalio/workflow';
import type { PlatformActivities } from '../activities/platform-activities.js';
import { ActivityFanOutInput, type ActivityFanOutResult } from '../schemas/platform.js';
import type { Progress } from '../schemas/progress.js';
import { progressQuery } from './queries.js';
import { parseWorkflowInput } from './validate-input.js';

const { noop } = proxyActivities<PlatformActivities>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 3 },
});

/**
 * Runs `count` no-op activities, all at once (bounded by `maxInFlight`) or one after another. It measures what
 * orchestration alone costs: the platform benchmark times it, and every pipeline pays this overhead.
 */
export async function activityFanOut(rawInput: ActivityFanOutInput): Promise<ActivityFanOutResult> {
  const input = parseWorkflowInput(ActivityFanOutInput, rawInput, 'activityFanOut input');
  const progress: Progress = { phase: 'running', done: 0, total: input.count, unit: 'activities' };
  setHandler(progressQuery, () => progress);
  if (input.mode === 'sequential') {
    for (let i = 0; i < input.count; i++) {
      await noop();
      progress.done += 1;
    }
  } else {
    const limit = input.maxInFlight ?? input.count;
    let next = 0;
    const lane = async () => {
      while (next < input.count) {
        next += 1;
        await noop();
        progress.done += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, input.count) }, lane));
  }
  progress.phase = 'done';
  return { completed: progress.done };
}
