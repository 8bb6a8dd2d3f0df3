import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { sluiceMetrics } from './runtime.js';

/** Counts and times every activity execution into Sluice's Prometheus registry. */
export const activityMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const labels = { activity_type: ctx.info.activityType, task_queue: ctx.info.taskQueue };
      const end = sluiceMetrics.activityDuration.startTimer(labels);
      try {
        const result = await next(input);
        sluiceMetrics.activityExecutions.inc({ ...labels, outcome: 'completed' });
        return result;
      } catch (err) {
        sluiceMetrics.activityExecutions.inc({ ...labels, outcome: 'failed' });
        throw err;
      } finally {
        end();
      }
    },
  },
});
