// A test-only workflow (bundled by inference-gpu-worker.test.ts, not part of workflows/index.ts): it reserves a GPU
// host through the shared queue and runs the inference activities pinned to that host's own queue.
import { PinnedGpuHost } from '../../workflows/pinning/pinned-gpu-host.js';
import type { InferenceActivities } from '../../activities/inference-activities.js';
import type { EmbedBatchInput, EmbedBatchResult, InferenceStatusResult } from '../../schemas/inference.js';

export interface PinnedEmbedResult {
  host: string;
  results: EmbedBatchResult[];
  status: InferenceStatusResult;
}

export async function inferencePinnedEmbed(calls: EmbedBatchInput[]): Promise<PinnedEmbedResult> {
  const pinned = new PinnedGpuHost<InferenceActivities>({
    activityOptions: { startToCloseTimeout: '2m', retry: { maximumAttempts: 3, initialInterval: '200ms' } },
  });
  return pinned.run(async (activities, host) => {
    const results: EmbedBatchResult[] = [];
    for (const call of calls) results.push(await activities.embedBatch(call));
    return { host, results, status: await activities.inferenceStatus() };
  });
}
