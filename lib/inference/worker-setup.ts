import type client from 'prom-client';
import type { Logger } from '../observability/logger.js';
import { registerInferenceMetrics } from './metrics.js';
import { InferencePool, type ModelRef } from './pool.js';
import { detectProviders, type ProviderRequest } from './providers.js';

/** The inference settings of a GPU worker (from `sluiceEnv.inference`). */
export interface WorkerInferenceSettings {
  models: readonly ModelRef[];
  provider: ProviderRequest;
  intraOpThreads: number;
  interOpThreads: number;
  maxBatch: number;
  maxWaitMs: number;
  tokenizerThreads: number;
}

/**
 * Builds a GPU worker's inference pool: its batches feed the worker's Prometheus registry, the provider it really
 * gets is logged (and is an error when `cuda` was asked for and cannot run), and the configured models are loaded
 * and warmed up before the worker polls, so that the first task pays no start-up cost.
 */
export async function startWorkerInferencePool(
  settings: WorkerInferenceSettings,
  registry: client.Registry,
  logger: Logger,
): Promise<InferencePool> {
  const metrics = registerInferenceMetrics(registry);
  const detection = await detectProviders(settings.provider, settings);
  logger.info({ ...detection }, 'inference provider');
  if (settings.provider === 'cuda' && detection.active !== 'cuda') {
    throw new Error(`SLUICE_INFERENCE_PROVIDER=cuda but CUDA is not usable here: ${detection.detail}`);
  }
  const pool = new InferencePool({ ...settings, onBatch: metrics.onBatch });
  try {
    const started = performance.now();
    await pool.warmUp(settings.models);
    for (const ref of settings.models) {
      const loaded = await pool.load(ref);
      metrics.modelLoaded(loaded.manifest.name, loaded.manifest.version, loaded.provider);
    }
    if (settings.models.length > 0) {
      logger.info(
        {
          models: settings.models.map((m) => `${m.path}@${m.version}`),
          ms: Math.round(performance.now() - started),
        },
        'models warmed up',
      );
    }
  } catch (err) {
    await pool.close();
    throw err;
  }
  return pool;
}
