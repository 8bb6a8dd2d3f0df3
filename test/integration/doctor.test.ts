import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { formatDoctorReport, registerDoctor } from '../../cli/commands/doctor.js';
import { addGlobalOptions } from '../../cli/context.js';
import { checkOnnxRuntime, runDoctor, type DoctorCheck, type DoctorOptions } from '../../client/doctor.js';
import { freePort } from '../../lib/stack/ports.js';
import { startTemporalDevServer } from '../../lib/stack/temporal-server.js';
import { SEARCH_ATTRIBUTE_KEYS, cliTypeName } from '../../schemas/search-attributes.js';
import { createCpuWorker, createGpuHostWorkers } from '../../workers/pool-workers.js';
import type { WorkflowSource } from '../../workers/workflow-bundle.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

/** The shared dev server of the integration run (global setup); it fails the run when it cannot start. */
async function temporalForTests(): Promise<{
  address: string;
  workflows(): Promise<WorkflowSource>;
  stop(): Promise<void>;
}> {
  return {
    address: inject('temporalAddress'),
    workflows: async () => ({ workflowBundle: testWorkflowBundle() }),
    stop: async () => {},
  };
}

function byName(checks: DoctorCheck[], name: string): DoctorCheck {
  const found = checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check named "${name}" in: ${checks.map((c) => c.name).join(', ')}`);
  return found;
}

function doctorOptions(address: string, base: string, gpuHosts: string[]): DoctorOptions {
  return { connectionOptions: { address }, namespace: 'default', baseTaskQueue: base, gpuHosts, connectTimeout: '3s' };
}

describe('sluice doctor against real servers', { timeout: 120_000 }, () => {
  let server: Awaited<ReturnType<typeof temporalForTests>>;
  let t: Awaited<ReturnType<typeof connectToTestServer>>;

  beforeAll(async () => {
    server = await temporalForTests();
    t = await connectToTestServer(server.address);
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    await server?.stop();
  });

  it('with no workers, the server checks pass and every poller check fails with a start hint', async () => {
    const base = uniqueQueue('doctor-idle');
    const checks = await runDoctor(doctorOptions(server.address, base, ['gpu-a']));
    expect(checks.map((c) => c.name)).toEqual([
      'connection',
      'namespace',
      'search attributes',
      `pollers ${base} (workflow)`,
      `pollers ${base} (activity)`,
      `pollers ${base}-gpu (activity)`,
      `pollers ${base}-gpu@gpu-a (activity)`,
      'onnx runtime',
    ]);
    expect(byName(checks, 'connection')).toMatchObject({ level: 'ok', ok: true });
    expect(byName(checks, 'connection').detail).toContain(server.address);
    expect(byName(checks, 'search attributes')).toMatchObject({ level: 'ok' });
    for (const c of checks.filter((c) => c.name.startsWith('pollers '))) {
      expect(c).toMatchObject({ level: 'fail', ok: false });
      expect(c.detail).toMatch(/^no (workflow|activity) pollers on /);
      expect(c.hint).toMatch(/npm run sluice -- worker --pool (cpu|gpu)/);
    }
    expect(byName(checks, `pollers ${base}-gpu@gpu-a (activity)`).hint).toContain('--host gpu-a');
  });

  it('with a cpu worker and one GPU host running, their poller checks pass and the other host still fails', async () => {
    const base = uniqueQueue('doctor-busy');
    const cpu = await createCpuWorker({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      workflows: await server.workflows(),
      shutdownGraceTime: '1s',
      identity: 'doctor-test-cpu',
    });
    const gpu = await createGpuHostWorkers({
      connection: t.nativeConnection,
      namespace: 'default',
      baseTaskQueue: base,
      host: 'gpu-up',
      shutdownGraceTime: '1s',
    });
    const passing = [
      `pollers ${base} (workflow)`,
      `pollers ${base} (activity)`,
      `pollers ${base}-gpu (activity)`,
      `pollers ${base}-gpu@gpu-up (activity)`,
    ];
    const healthy = eventually(
      async () => {
        const checks = await runDoctor(doctorOptions(server.address, base, ['gpu-up', 'gpu-down']));
        return passing.every((name) => byName(checks, name).ok) ? checks : undefined;
      },
      30_000,
      'the poller checks to pass',
    );
    const [checks] = await Promise.all([cpu.runUntil(healthy), ...gpu.map((w) => w.runUntil(healthy))]);
    for (const name of passing) expect(byName(checks, name)).toMatchObject({ level: 'ok', ok: true });
    expect(byName(checks, `pollers ${base} (workflow)`).detail).toMatch(/^1 poller: doctor-test-cpu \(\d+s ago\)$/);
    expect(byName(checks, `pollers ${base}-gpu@gpu-up (activity)`).detail).toMatch(/\d+@gpu-up/);
    expect(byName(checks, `pollers ${base}-gpu@gpu-down (activity)`)).toMatchObject({ level: 'fail', ok: false });
  });

  it('`sluice doctor` prints ✓/✗ lines and exits 1 when a check fails', async () => {
    const base = uniqueQueue('doctor-cli');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-doctor-cli-'));
    const configFile = path.join(dir, 'temporal-dev.yml');
    writeFileSync(
      configFile,
      stringify({ workers: { cpu: { taskQueue: base }, gpu: { hosts: [{ name: 'gpu-cli' }] } } }),
    );
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
    let error: unknown;
    try {
      const program = addGlobalOptions(new Command('sluice')).exitOverride();
      registerDoctor(program);
      await program.parseAsync(
        ['--address', server.address, '--namespace', 'default', '--config', configFile, 'doctor'],
        {
          from: 'user',
        },
      );
    } catch (err) {
      error = err;
    } finally {
      log.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(1);
    const out = lines.join('\n');
    expect(out).toMatch(/^✓ connection +Temporal server .* answers at /m);
    expect(out).toMatch(new RegExp(`^✓ search attributes +all ${SEARCH_ATTRIBUTE_KEYS.length} registered`, 'm'));
    expect(out).toMatch(new RegExp(`^✗ pollers ${base}-gpu@gpu-cli \\(activity\\) +no activity pollers`, 'm'));
    expect(out).toMatch(/^ +→ start GPU host "gpu-cli"/m);
    expect(out).toMatch(/^4 of 8 checks failed/m);
  });

  it('on a server started without the search attributes, that check fails and names what is missing', async () => {
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-doctor-bare-'));
    let bare: Awaited<ReturnType<typeof startTemporalDevServer>> | undefined;
    try {
      bare = await startTemporalDevServer({ logDir });
      const checks = await runDoctor(doctorOptions(bare.address, uniqueQueue('doctor-bare'), []));
      expect(byName(checks, 'connection').ok).toBe(true);
      const attributes = byName(checks, 'search attributes');
      expect(attributes).toMatchObject({ level: 'fail', ok: false });
      for (const key of SEARCH_ATTRIBUTE_KEYS)
        expect(attributes.detail).toContain(`${key.name} (${cliTypeName(key.type)})`);
      expect(attributes.hint).toContain('npm run sluice -- setup');
    } finally {
      await bare?.stop();
      rmSync(logDir, { recursive: true, force: true });
    }
  });

  it('against an address where nothing listens, the connection check fails and names the address', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const checks = await runDoctor(doctorOptions(address, uniqueQueue('doctor-none'), ['gpu-a']));
    // The checks that need a server are left out; the local ONNX Runtime check still runs.
    expect(checks.map((c) => c.name)).toEqual(['connection', 'onnx runtime']);
    const connection = byName(checks, 'connection');
    expect(connection).toMatchObject({ level: 'fail', ok: false });
    expect(connection.detail).toContain(`cannot reach Temporal at ${address}`);
    expect(connection.hint).toContain(address);
    expect(connection.hint).toMatch(/TEMPORAL_ADDRESS/);
    expect(formatDoctorReport(checks)[0]).toMatch(new RegExp(`^✗ connection +cannot reach Temporal at ${address}`));
  });
});

describe('onnx runtime check', () => {
  it('warns when onnxruntime-node is not installed', async () => {
    const missing = Object.assign(new Error("Cannot find package 'onnxruntime-node' imported from /x.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const c = await checkOnnxRuntime(() => Promise.reject(missing));
    expect(c).toEqual({
      name: 'onnx runtime',
      level: 'warn',
      ok: true,
      detail: 'onnxruntime-node is not installed; GPU inference arrives with issue 6',
      hint: 'nothing to do until then; CPU pipelines do not need it',
    });
  });

  it('lists the execution providers when it loads, and says only CPU is verified', async () => {
    const ort = {
      default: {
        listSupportedBackends: () => [
          { name: 'cpu', bundled: true },
          { name: 'cuda', bundled: false },
        ],
      },
    };
    const c = await checkOnnxRuntime(() => Promise.resolve(ort));
    expect(c.level).toBe('ok');
    expect(c.detail).toBe('onnxruntime-node execution providers: cpu, cuda; only CPU is verified');
  });

  it('fails when the package is installed but does not load', async () => {
    const c = await checkOnnxRuntime(() =>
      Promise.reject(new Error('libonnxruntime.so.1: cannot open shared object file')),
    );
    expect(c).toMatchObject({ level: 'fail', ok: false });
    expect(c.detail).toContain('libonnxruntime.so.1');
  });

  it('reports what the real import finds on this machine', async () => {
    const c = await checkOnnxRuntime();
    expect(['ok', 'warn']).toContain(c.level);
  });
});
