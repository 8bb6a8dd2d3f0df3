import client from 'prom-client';
import type { BatchEvent } from './pool.js';

/** Prometheus metrics of an inference pool, registered into a worker's registry. */
export interface InferenceMetrics {
  /** Pass as `InferenceOptions.onBatch`. */
  onBatch(event: BatchEvent): void;
  /** Records which provider a loaded model really runs on (a 1-valued info gauge). */
  modelLoaded(model: string, version: string, provider: string): void;
}

/**
 * Registers `sluice_inference_batch_size` (histogram), `sluice_inference_batch_seconds` (histogram of run time),
 * `sluice_inference_items_total` (counter; `rate()` of it is items/s) and `sluice_inference_model_info` (provider
 * per loaded model) into `registry`.
 */
export function registerInferenceMetrics(registry: client.Registry): InferenceMetrics {
  const labelNames = ['model', 'version', 'provider'] as const;
  const batchSize = new client.Histogram({
    name: 'sluice_inference_batch_size',
    help: 'Items per session.run batch',
    labelNames,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  const batchSeconds = new client.Histogram({
    name: 'sluice_inference_batch_seconds',
    help: 'Wall time of one batch: building its tensors and session.run',
    labelNames,
    buckets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
    registers: [registry],
  });
  const items = new client.Counter({
    name: 'sluice_inference_items_total',
    help: 'Items embedded; rate() gives items per second',
    labelNames,
    registers: [registry],
  });
  const info = new client.Gauge({
    name: 'sluice_inference_model_info',
    help: 'A loaded model and the execution provider it really runs on (value 1)',
    labelNames,
    registers: [registry],
  });
  return {
    onBatch(e) {
      const labels = { model: e.model, version: e.version, provider: e.provider };
      batchSize.observe(labels, e.size);
      batchSeconds.observe(labels, e.runMs / 1000);
      items.inc(labels, e.size);
    },
    modelLoaded(model, version, provider) {
      info.set({ model, version, provider }, 1);
    },
  };
}
