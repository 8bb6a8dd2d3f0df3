import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import client from 'prom-client';
import { log } from '@temporalio/activity';
import { sluiceMetrics } from './runtime.js';

/**
 * Prometheus gauges of CDC replication slots, set from what the merge's slot activities (`advanceSlot`,
 * `slotStatus`) return after every batch: retained WAL and lag in bytes. The merge workflow logs its own alert
 * (`retainedWalAlertBytes`); the gauge lets Prometheus alert on any limit.
 */
const retainedWal = new client.Gauge({
  name: 'sluice_cdc_slot_retained_wal_bytes',
  help: 'WAL the CDC replication slot keeps on the source (current LSN − restart LSN), after the last batch',
  labelNames: ['slot'],
  registers: [sluiceMetrics.registry],
});
const lag = new client.Gauge({
  name: 'sluice_cdc_slot_lag_bytes',
  help: 'WAL not yet applied to Iceberg (current LSN − confirmed flush LSN), after the last batch',
  labelNames: ['slot'],
  registers: [sluiceMetrics.registry],
});

const SLOT_ACTIVITIES: ReadonlySet<string> = new Set(['advanceSlot', 'slotStatus']);

interface SlotStatusLike {
  slot?: unknown;
  retainedWalBytes?: unknown;
  lagBytes?: unknown;
}

/** Observes the slot activities' results into the gauges above; other activities pass through untouched. */
export const cdcSlotMetricsInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const result: unknown = await next(input);
      if (SLOT_ACTIVITIES.has(ctx.info.activityType) && typeof result === 'object' && result !== null) {
        const status = result as SlotStatusLike;
        if (typeof status.slot === 'string') {
          try {
            if (typeof status.retainedWalBytes === 'string')
              retainedWal.set({ slot: status.slot }, Number(status.retainedWalBytes));
            if (typeof status.lagBytes === 'string') lag.set({ slot: status.slot }, Number(status.lagBytes));
          } catch (err) {
            log.warn('cdc slot metrics not recorded', { error: String(err) });
          }
        }
      }
      return result;
    },
  },
});
