import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { loadStackConfig, parseStackConfig } from '../../lib/stack/stack-config-file.js';
import { InputValidationError } from '../../schemas/validation.js';

function problemsOf(yaml: string): string[] {
  try {
    parseStackConfig(yaml, 'x.yml');
  } catch (err) {
    expect(err).toBeInstanceOf(InputValidationError);
    return (err as InputValidationError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the config to be rejected');
}

describe('temporal-dev.yml schema', () => {
  it('the committed temporal-dev.yml is valid and describes two GPU hosts', () => {
    const config = loadStackConfig(path.join(REPO_ROOT, 'temporal-dev.yml'));
    expect(config.server.port).toBe(7233);
    expect(config.server.uiPort).toBe(8233);
    expect(config.workers.gpu.hosts.map((h) => h.name)).toEqual(['gpu-a', 'gpu-b']);
    expect(config.schedules[0]).toMatchObject({
      id: 'pool-check-hourly',
      pipeline: 'pool-check',
      paused: true,
      overlap: 'SKIP',
    });
  });

  it('an empty file gets every default', () => {
    const config = parseStackConfig('');
    expect(config.workers.cpu).toMatchObject({
      taskQueue: 'sluice',
      maxConcurrentActivities: 8,
      shutdownGraceTime: '30s',
    });
    expect(config.defaults.catalog).toEqual({ type: 'sqlite', path: '.sluice/catalog.db' });
    expect(config.schedules).toEqual([]);
  });

  it('names the field and the problem for each bad value', () => {
    const problems = problemsOf(`
server:
  port: 70000
  prot: 1
workers:
  gpu:
    hosts:
      - name: "bad host"
        slots: 0
schedules:
  - id: s1
    pipeline: pool-check
    spec: {}
    overlap: SOMETIMES
defaults:
  warehouse: hdfs://x
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.port: Too big/),
        expect.stringMatching(/^server: Unrecognized key: "prot"/),
        expect.stringMatching(/^workers\.gpu\.hosts\[0\]\.name: letters, digits/),
        expect.stringMatching(/^workers\.gpu\.hosts\[0\]\.slots: Too small/),
        expect.stringMatching(/^schedules\[0\]\.spec: a schedule spec needs at least one entry/),
        expect.stringMatching(/^schedules\[0\]\.overlap: Invalid option/),
        expect.stringMatching(/^defaults\.warehouse: a file:\/\/ or s3:\/\/ URI/),
      ]),
    );
  });

  it('dedicated CPU queues: valid names, declared once, and a schedule may only name a declared one', () => {
    const problems = problemsOf(`
workers:
  cpu:
    dedicated:
      - name: maintenance
      - name: maintenance
      - name: gpu-extra
schedules:
  - id: s1
    pipeline: activity-fan-out
    spec: { every: [1h] }
    queue: compaction
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^workers\.cpu\.dedicated\[1\]\.name: "maintenance" appears twice/),
        expect.stringMatching(/^workers\.cpu\.dedicated\[2\]\.name: lowercase letters.*not starting with "gpu"/),
        expect.stringMatching(/^schedules\[0\]\.queue: no dedicated queue "compaction" in workers\.cpu\.dedicated/),
      ]),
    );
    const ok = parseStackConfig(
      'workers:\n  cpu:\n    dedicated: [{ name: maintenance }]\nschedules:\n' +
        '  - { id: s1, pipeline: activity-fan-out, spec: { every: [1h] }, queue: maintenance }\n',
      'x.yml',
    );
    expect(ok.workers.cpu.dedicated).toEqual([{ name: 'maintenance', processes: 1 }]);
    expect(ok.schedules[0]?.queue).toBe('maintenance');
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problemsOf('server:\n  port: [1, 2\n')[0]).toMatch(/^line \d+:/);
  });

  it('the error message names the file', () => {
    expect(() => parseStackConfig('server: {port: "x"}', 'my-stack.yml')).toThrow(
      /my-stack\.yml is invalid:\n {2}- server\.port/,
    );
  });

  it('a missing file is an error that names it', () => {
    expect(() => loadStackConfig('/nonexistent/temporal-dev.yml')).toThrow(
      /cannot read the stack description \/nonexistent/,
    );
  });
});
