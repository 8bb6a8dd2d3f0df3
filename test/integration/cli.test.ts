import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTE_KEYS } from '../../schemas/search-attributes.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { registerSearchAttributes } from '../../client/search-attribute-setup.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../lib/stack/temporal-server.js';
import { createCpuWorker, createGpuHostWorkers } from '../../workers/pool-workers.js';
import type { Worker } from '@temporalio/worker';
import { connectToTestServer, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

const run = promisify(execFile);

/** Runs the real `sluice` binary against the shared dev server on the test's own queues. */
async function sluice(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(REPO_ROOT, 'bin/sluice.js'), ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: 'default', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the sluice CLI against a real server', () => {
  let t: Awaited<ReturnType<typeof connectToTestServer>>;
  let workers: Worker[];
  let running: Promise<unknown>;
  const base = uniqueQueue('cli');
  beforeAll(async () => {
    t = await connectToTestServer();
    const common = {
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      shutdownGraceTime: '1s' as const,
    };
    workers = [
      await createCpuWorker({ ...common, workflows: { workflowBundle: testWorkflowBundle() } }),
      ...(await createGpuHostWorkers({ ...common, host: 'gpu-cli' })),
    ];
    running = Promise.all(workers.map((w) => w.run()));
  });
  afterAll(async () => {
    workers?.forEach((w) => w.shutdown());
    await running;
    await t?.close();
  });

  it('start --wait runs a pipeline and prints its result; status and ls find it', async () => {
    const started = await sluice(
      [
        'start',
        'pool-check',
        '--input',
        '{"cpuActivities": 2, "gpuSteps": 1, "matrixSize": 4}',
        '--id',
        `${base}-run`,
        '--wait',
      ],
      { SLUICE_TASK_QUEUE: base },
    );
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(started.stdout).toContain(`started pool-check: ${base}-run`);
    expect(started.stdout).toContain('"gpuHostsUsed": [\n    "gpu-cli"\n  ]');

    const status = await sluice(['status', `${base}-run`]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`${base}-run\\s+poolCheck\\s+COMPLETED`));
    expect(status.stdout).toMatch(/done: 3\/3 steps \(100%\)/);

    let listed = '';
    for (let i = 0; i < 50 && !listed.includes(`${base}-run`); i++) {
      listed = (await sluice(['ls', '--pipeline', 'pool-check', '--limit', '100'])).stdout;
      if (!listed.includes(`${base}-run`)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(listed).toMatch(new RegExp(`${base}-run\\s+pool-check\\s+COMPLETED`));
  });

  it('an unknown pipeline lists the known ones; a bad input names the field; both exit 1', async () => {
    const unknown = await sluice(['start', 'no-such-pipeline']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown pipeline "no-such-pipeline"');
    expect(unknown.stderr).toContain('pool-check');
    expect(unknown.stderr).toContain('activity-fan-out');

    const bad = await sluice(['start', 'activity-fan-out', '--input', '{"count": 0, "mode": "sideways"}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/count: Too small/);
    expect(bad.stderr).toMatch(/mode: Invalid option/);
  });

  it('an unreachable server is named with what to check', async () => {
    const res = await sluice(['status', 'x'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
    expect(res.stderr).toContain('TEMPORAL_ADDRESS');
  });

  it('a bad temporal-dev.yml is rejected with the field path', async () => {
    const res = await sluice(['status', 'x', '--config', path.join(REPO_ROOT, 'test/fixtures/bad-stack.yml')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/workers\.gpu\.hosts\[0\]\.slots: Too small/);
  });
});

describe('sluice setup on a cluster without the search attributes', () => {
  let server: TemporalDevServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('registers them once, then finds them already there', async () => {
    server = await startTemporalDevServer({ logDir: path.join(inject('fixtureDir'), 'logs', 'setup') });
    const t = await connectToTestServer(server.address);
    try {
      expect((await registerSearchAttributes(t.client.connection, 'default')).sort()).toEqual(
        SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).sort(),
      );
      expect(await registerSearchAttributes(t.client.connection, 'default')).toEqual([]);
      const listed = await t.client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(listed.customAttributes ?? {})).toContain('SluicePipeline');
    } finally {
      await t.close();
    }
  });
});
