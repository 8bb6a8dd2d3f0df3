import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../lib/config.js';
import { freePort } from '../../lib/stack/ports.js';

const run = promisify(execFile);

describe('sluice demo --cdc-source files', () => {
  it('runs the CDC demo from Debezium change files, says so, and the Iceberg table matches the files', async () => {
    const dir = mkdtempSync(path.join(inject('fixtureDir'), 'demo-files-'));
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
        defaults: {
          warehouse: `file://${path.join(dir, 'warehouse')}`,
          catalogName: 'demo_files_it',
          catalog: { type: 'sqlite', path: path.join(dir, 'catalog.db') },
        },
      }),
    );
    const { stdout } = await run(
      process.execPath,
      [path.join(REPO_ROOT, 'bin/sluice.js'), 'demo', '--exit', '--cdc-source', 'files', '--config', config],
      { env: { ...process.env, SLUICE_STATE_DIR: dir }, timeout: 180_000 },
    );
    expect(stdout).toContain('Sluice demo summary');
    // No PostgreSQL was started: the file source took its place and the demo says so.
    expect(stdout).not.toMatch(/started PostgreSQL/);
    expect(stdout).toContain('using the Debezium change-file source instead of PostgreSQL (--cdc-source files)');
    expect(stdout).toMatch(
      /✓ cdc \(orders, files\) .*\d+ changes in \d+ Debezium change files .*freshness p50 [\d.]+ s, p95 [\d.]+ s, max [\d.]+ s; Iceberg matches the change files \(\d+ rows\)/,
    );
    expect(stdout).toContain('source: Debezium change files, not PostgreSQL');
    expect(stdout).toContain('cdc-files/demo_files cancelled');
    expect(stdout).not.toContain('✗');
  });
});
