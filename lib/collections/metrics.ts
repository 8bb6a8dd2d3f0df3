import client from 'prom-client';
import type { CollectionsQuarantineRecord, VlmUsage } from './types.js';

/** Prometheus counters of the collections pipeline: VLM spend per stage, and quarantined records. */
export interface CollectionsMetrics {
  vlmRequests: client.Counter<'stage' | 'model'>;
  vlmTokens: client.Counter<'stage' | 'model' | 'direction'>;
  vlmCostUsd: client.Counter<'stage' | 'model'>;
  quarantined: client.Counter<'stage' | 'reason'>;
}

const byRegistry = new WeakMap<client.Registry, CollectionsMetrics>();

/** The collections counters in `registry`, created once per registry. */
export function collectionsMetrics(registry: client.Registry): CollectionsMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const metrics: CollectionsMetrics = {
    vlmRequests: new client.Counter({
      name: 'sluice_vlm_requests_total',
      help: 'HTTP requests sent to the VLM endpoint (retries and repair requests included), by pipeline stage',
      labelNames: ['stage', 'model'],
      registers: [registry],
    }),
    vlmTokens: new client.Counter({
      name: 'sluice_vlm_tokens_total',
      help: 'Tokens the VLM endpoint reported, by stage and direction (prompt, completion)',
      labelNames: ['stage', 'model', 'direction'],
      registers: [registry],
    }),
    vlmCostUsd: new client.Counter({
      name: 'sluice_vlm_cost_usd_total',
      help: 'Estimated VLM cost in USD (tokens × the run’s price per 1k tokens), by stage',
      labelNames: ['stage', 'model'],
      registers: [registry],
    }),
    quarantined: new client.Counter({
      name: 'sluice_collections_quarantined_total',
      help: 'Items (or item × collection pairs) the collections pipeline quarantined, by stage and reason',
      labelNames: ['stage', 'reason'],
      registers: [registry],
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

/** Counts VLM spend of one stage. */
export function countVlmUsage(
  metrics: CollectionsMetrics | undefined,
  stage: 'extract' | 'verify' | 'judge',
  model: string,
  usage: VlmUsage,
): void {
  if (!metrics || usage.calls === 0) return;
  metrics.vlmRequests.inc({ stage, model }, usage.calls);
  metrics.vlmTokens.inc({ stage, model, direction: 'prompt' }, usage.promptTokens);
  metrics.vlmTokens.inc({ stage, model, direction: 'completion' }, usage.completionTokens);
  metrics.vlmCostUsd.inc({ stage, model }, usage.costUsd);
}

/** Counts quarantined records. */
export function countQuarantined(
  metrics: CollectionsMetrics | undefined,
  records: readonly CollectionsQuarantineRecord[],
): void {
  if (!metrics) return;
  for (const r of records) metrics.quarantined.inc({ stage: r.stage, reason: r.reason });
}
