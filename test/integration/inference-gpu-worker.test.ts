import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForPollers } from '../../cli/local-stack.js';
import { REPO_ROOT } from '../../lib/config.js';
import { bundledModels, type BundledModels } from '../../lib/inference/index.js';
import { describeItem, renderItemPng, type CatalogItem } from '../../lib/inference/synthetic-catalog.js';
import { startProcess, tailLog, type ManagedProcess } from '../../lib/stack/managed-process.js';
import { freePort } from '../../lib/stack/ports.js';
import { taskQueues } from '../../schemas/task-queues.js';
import { generateModels } from '../../scripts/models/generate-models.js';
import { connectToTestServer, uniqueQueue } from '../fixtures/temporal.js';
import type { inferencePinnedEmbed } from './inference-pinned-embed.workflow.js';

/** Cosine of two unit vectors given as number arrays. */
function dot(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, x, i) => s + x * b[i]!, 0);
}

describe('GPU pool worker with the inference engine (CPU provider)', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  let gpuWorker: ManagedProcess | undefined;
  let modelsRoot: string;
  let models: BundledModels;
  let workflowCode: string;
  let metricsPort: number;
  const base = uniqueQueue('inference');
  const host = 'gpu-inf';

  beforeAll(async () => {
    t = await connectToTestServer();
    modelsRoot = mkdtempSync(path.join(os.tmpdir(), 'sluice-inference-it-'));
    await generateModels(modelsRoot, { dualOnly: true });
    models = bundledModels(modelsRoot);
    metricsPort = await freePort();
    gpuWorker = startProcess(
      host,
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin/sluice.js'),
        'worker',
        '--pool',
        'gpu',
        '--host',
        host,
        '--slots',
        '2',
        '--metrics-port',
        String(metricsPort),
      ],
      {
        logDir: path.join(inject('fixtureDir'), 'logs', base),
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: inject('temporalAddress'),
          TEMPORAL_NAMESPACE: 'default',
          SLUICE_TASK_QUEUE: base,
          SLUICE_LOG_LEVEL: 'info',
          SLUICE_MODELS: `${models.dualText.path}@1,${models.dualImage.path}@1`,
          SLUICE_INFERENCE_PROVIDER: 'cpu',
          SLUICE_INFERENCE_MAX_BATCH: '16',
          SLUICE_INFERENCE_INTRA_OP_THREADS: '1',
        },
      },
    );
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(REPO_ROOT, 'test/integration/inference-pinned-embed.workflow.ts'),
      logger: new DefaultLogger('ERROR'),
    });
    workflowCode = code;
    const q = taskQueues(base);
    const died = gpuWorker.exited.then(async () => {
      throw new Error(`the GPU worker exited during start:\n${await tailLog(gpuWorker!.logFile, 40)}`);
    });
    await Promise.race([
      waitForPollers(
        t.client,
        [
          { name: q.gpu, type: 'activity' },
          { name: q.gpuHost(host), type: 'activity' },
        ],
        120_000,
      ),
      died,
    ]);
    died.catch(() => undefined);
  });

  afterAll(async () => {
    await gpuWorker?.stop(5_000);
    await t?.close();
    if (modelsRoot) rmSync(modelsRoot, { recursive: true, force: true });
  });

  async function runPinned(calls: Parameters<typeof inferencePinnedEmbed>[0]) {
    const worker = await Worker.create({
      connection: t.nativeConnection,
      namespace: 'default',
      taskQueue: base,
      workflowBundle: { code: workflowCode },
      shutdownGraceTime: '1s',
    });
    return worker.runUntil(
      t.client.workflow.execute<typeof inferencePinnedEmbed>('inferencePinnedEmbed', {
        taskQueue: base,
        workflowId: uniqueQueue('inference-wf'),
        args: [calls],
        workflowExecutionTimeout: '2m',
      }),
    );
  }

  it('embeds texts and images on the pinned host, quarantines bad items, and exports batch metrics', async () => {
    const item: CatalogItem = { color: 'purple', shape: 'diamond', pattern: 'striped', size: 'large' };
    const imageDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-inference-img-'));
    const good = path.join(imageDir, 'item.png');
    const other = path.join(imageDir, 'other.png');
    const broken = path.join(imageDir, 'broken.png');
    writeFileSync(good, await renderItemPng(item, { noise: 12, seed: 3 }));
    writeFileSync(other, await renderItemPng({ ...item, color: 'yellow', shape: 'circle' }));
    writeFileSync(broken, 'not a png');
    try {
      const tooLong = Array.from({ length: 50 }, () => 'purple').join(' ');
      const out = await runPinned([
        { model: models.dualText, texts: [describeItem(item), tooLong, 'yellow circle'] },
        { model: models.dualImage, imagePaths: [good, broken, `file://${other}`, path.join(imageDir, 'missing.png')] },
      ]);
      expect(out.host).toBe(host);
      const [texts, images] = out.results;
      expect(texts).toMatchObject({ model: 'sluice-dual-text', version: '1', provider: 'cpu', host, dimensions: 64 });
      expect(texts!.vectors.map((v) => v === null)).toEqual([false, true, false]);
      expect(texts!.rejected).toEqual([expect.objectContaining({ index: 1, kind: 'text-too-long' })]);
      expect(images!.vectors.map((v) => v === null)).toEqual([false, true, false, true]);
      expect(images!.rejected.map((r) => [r.index, r.kind])).toEqual([
        [1, 'undecodable-image'],
        [3, 'undecodable-image'],
      ]);
      // The worker's two towers share a space: the description matches its own picture, not the other one.
      expect(dot(texts!.vectors[0]!, images!.vectors[0]!)).toBeGreaterThan(0.95);
      expect(dot(texts!.vectors[0]!, images!.vectors[2]!)).toBeLessThan(0.6);
      // "yellow circle" names 2 of the 4 attributes of the yellow circle's picture: cosine 2 / (√2 · 2) = 1/√2.
      expect(dot(texts!.vectors[2]!, images!.vectors[2]!)).toBeCloseTo(Math.SQRT1_2, 1);

      expect(out.status).toMatchObject({ host, requestedProvider: 'cpu', activeProvider: 'cpu' });
      const warmText = out.status.models.find((m) => m.model === 'sluice-dual-text')!;
      // Warm-up ran one item through each model at start, before this workflow's items.
      expect(warmText.items).toBe(1 + 2);
      expect(warmText.rejectedItems).toBe(1);

      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/sluice_inference_items_total\{model="sluice-dual-text",version="1",provider="cpu"\} 3/);
      expect(metrics).toMatch(
        /sluice_inference_batch_size_count\{model="sluice-dual-image",version="1",provider="cpu"\} \d+/,
      );
      expect(metrics).toMatch(/sluice_inference_model_info\{model="sluice-dual-image",version="1",provider="cpu"\} 1/);
    } finally {
      rmSync(imageDir, { recursive: true, force: true });
    }
  });

  it('fails at once, without retries, when the model version is not the one on disk', async () => {
    const err = await runPinned([{ model: { path: models.dualText.path, version: '9' }, texts: ['red'] }]).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    let cause: unknown = (err as WorkflowFailedError).cause;
    while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('InvalidInput');
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    expect((cause as ApplicationFailure).message).toContain('not the requested version 9');
  });
});
