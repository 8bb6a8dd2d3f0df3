import client from 'prom-client';
import type { SparkCost } from '../../schemas/spark.js';

/** Prometheus counters of Spark resource use: GB·h and vcore·h per job and outcome, and attempts per kind. */
export interface SparkMetrics {
  gbHours: client.Counter<'job' | 'outcome'>;
  vcoreHours: client.Counter<'job' | 'outcome'>;
  attempts: client.Counter<'job' | 'outcome' | 'failure_kind'>;
}

const byRegistry = new WeakMap<client.Registry, SparkMetrics>();

/** The Spark counters in `registry`, created once per registry. */
export function sparkMetrics(registry: client.Registry): SparkMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const metrics: SparkMetrics = {
    gbHours: new client.Counter({
      name: 'sluice_spark_gb_hours_total',
      help: 'GB·hours held by Spark attempts (driver + executor containers × wall time); outcome=failed is wasted',
      labelNames: ['job', 'outcome'],
      registers: [registry],
    }),
    vcoreHours: new client.Counter({
      name: 'sluice_spark_vcore_hours_total',
      help: 'vcore·hours held by Spark attempts; outcome=failed is wasted',
      labelNames: ['job', 'outcome'],
      registers: [registry],
    }),
    attempts: new client.Counter({
      name: 'sluice_spark_attempts_total',
      help: 'Spark attempts by outcome and failure kind',
      labelNames: ['job', 'outcome', 'failure_kind'],
      registers: [registry],
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Counts one finished attempt. */
export function countAttempt(
  metrics: SparkMetrics | undefined,
  job: string,
  outcome: 'succeeded' | 'failed' | 'cancelled',
  failureKind: string | undefined,
  cost: SparkCost,
): void {
  if (!metrics) return;
  metrics.gbHours.inc({ job, outcome }, cost.gbHours);
  metrics.vcoreHours.inc({ job, outcome }, cost.vcoreHours);
  metrics.attempts.inc({ job, outcome, failure_kind: failureKind ?? 'none' });
}
