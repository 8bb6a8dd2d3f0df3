import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../lib/config.js';
import { freePort } from '../../lib/stack/ports.js';

const run = promisify(execFile);

describe('sluice demo --exit', () => {
  it('brings its own stack up (with a private PostgreSQL), runs every pipeline including CDC, prints the summary, and stops', async () => {
    const dir = mkdtempSync(path.join(inject('fixtureDir'), 'demo-'));
    const [port, uiPort, cpuMetrics, gpuMetrics] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const config = path.join(dir, 'stack.yml');
    writeFileSync(
      config,
      stringify({
        server: { port, uiPort, dbFile: path.join(dir, 'temporal.db') },
        workers: {
          cpu: { metricsPort: cpuMetrics },
          gpu: { hosts: [{ name: 'gpu-demo', slots: 1 }], metricsPort: gpuMetrics },
        },
        // A private catalog and warehouse, not the repository's .sluice ones.
        defaults: {
          warehouse: `file://${path.join(dir, 'warehouse')}`,
          catalogName: 'demo_it',
          catalog: { type: 'sqlite', path: path.join(dir, 'catalog.db') },
        },
      }),
    );
    const { stdout } = await run(
      process.execPath,
      [path.join(REPO_ROOT, 'bin/sluice.js'), 'demo', '--exit', '--config', config],
      {
        env: { ...process.env, SLUICE_STATE_DIR: dir },
        timeout: 180_000,
      },
    );
    expect(stdout).toContain('Sluice demo summary');
    expect(stdout).toMatch(/✓ pool-check .*GPU steps pinned to gpu-demo/);
    expect(stdout).toMatch(/✓ activity-fan-out .*200 no-op activities completed/);
    // CDC: the stack's own PostgreSQL started, the workload was merged, freshness measured, and the table matches.
    expect(stdout).toMatch(/started PostgreSQL on 127\.0\.0\.1:\d+ \(wal_level=logical\)/);
    expect(stdout).toMatch(
      /✓ cdc \(orders\) .*\d+ changes in \d+ transactions .*freshness p50 [\d.]+ s, p95 [\d.]+ s, max [\d.]+ s; Iceberg matches the source \(\d+ rows\)/,
    );
    expect(stdout).toContain('committed to Iceberg');
    // Collections: the synthetic catalog built into gated, published collections with the zero-shot extractor.
    expect(stdout).toMatch(
      /✓ collections-build .* \d+ collections over \d+ items, P@10 [\d.]+, R@10 [\d.]+, extractor zero-shot, VLM calls 0/,
    );
    expect(stdout).toMatch(/collections: vocabulary approved/);
    expect(stdout).toContain(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/cdc%2Fdemo`);
    // --exit cancelled the merge before the workers stopped.
    expect(stdout).toContain('cdc/demo cancelled');
    expect(stdout).toContain(`Temporal UI: http://127.0.0.1:${uiPort}`);
    expect(stdout).toContain(`metrics:     http://127.0.0.1:${cpuMetrics}/metrics`);
    if (stdout.includes('✗')) console.log(stdout);
    expect(stdout).not.toContain('✗');
    // --exit stopped the server: its port is free again.
    await expect(fetch(`http://127.0.0.1:${uiPort}`)).rejects.toThrow();
  });
});
