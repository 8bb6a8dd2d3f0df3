import { describe, expect, it } from 'vitest';
import { formatMemoryMib, MemorySizeError, parseMemoryMib } from '../../../lib/spark/memory.js';
import { masterKind, SparkJobSpec } from '../../../schemas/spark.js';
import { fieldProblems } from '../../../schemas/validation.js';

const base = {
  name: 'nightly-agg',
  owner: 'data-eng',
  master: 'local-cluster[1,2,2048]',
  app: { resource: '/jobs/agg.py' },
};

function problems(spec: unknown) {
  const r = SparkJobSpec.safeParse(spec);
  return r.success ? [] : fieldProblems(r.error);
}

describe('memory strings', () => {
  it.each([
    ['512m', 512],
    ['4g', 4096],
    ['2048k', 2],
    ['1t', 1024 * 1024],
    ['3G', 3072],
  ])('parses %s as %d MiB', (text, mib) => {
    expect(parseMemoryMib(text)).toBe(mib);
  });

  it.each(['12 GB', '4gb', '1.5g', '512', '', 'g', '-1g', '0m'])('refuses %j and names the field', (text) => {
    expect(() => parseMemoryMib(text, 'resources.executorMemory')).toThrow(MemorySizeError);
    expect(() => parseMemoryMib(text, 'resources.executorMemory')).toThrow(/resources\.executorMemory/);
  });

  it('formats whole GiB as g and the rest as m', () => {
    expect(formatMemoryMib(4096)).toBe('4g');
    expect(formatMemoryMib(1536)).toBe('1536m');
    expect(formatMemoryMib(511.2)).toBe('512m');
  });
});

describe('SparkJobSpec', () => {
  it('accepts a minimal spec and fills the defaults', () => {
    const spec = SparkJobSpec.parse(base);
    expect(spec.resources.executorMemory).toBe('1g');
    expect(spec.retry).toEqual({ policy: 'memory-ladder', maxAttempts: 5 });
    expect(spec.useLearnedSizing).toBe(true);
  });

  it('names the field of a malformed memory string', () => {
    expect(problems({ ...base, resources: { executorMemory: '12 GB' } })).toEqual([
      { path: 'resources.executorMemory', message: expect.stringContaining('"512m" or "4g"') },
    ]);
  });

  it('refuses an unknown master', () => {
    const p = problems({ ...base, master: 'mesos://host:5050' });
    expect(p.map((x) => x.path)).toEqual(['master']);
    expect(p[0]!.message).toMatch(/unknown master/);
  });

  it('refuses a PySpark application in cluster deploy mode on a standalone master', () => {
    const p = problems({ ...base, master: 'spark://spark-master:7077', deployMode: 'cluster' });
    expect(p.map((x) => x.path)).toEqual(['deployMode']);
    expect(p[0]!.message).toMatch(/Python applications in cluster deploy mode on a standalone master/);
    // The same application in client mode, a jar in cluster mode, and PySpark in YARN cluster mode are fine.
    expect(problems({ ...base, master: 'spark://spark-master:7077', deployMode: 'client' })).toEqual([]);
    expect(
      problems({
        ...base,
        master: 'spark://spark-master:7077',
        deployMode: 'cluster',
        app: { resource: '/jobs/agg.jar', mainClass: 'com.example.Agg' },
      }),
    ).toEqual([]);
    expect(problems({ ...base, master: 'yarn', deployMode: 'cluster' })).toEqual([]);
  });

  it('refuses a cap below the request, naming the cap', () => {
    const p = problems({
      ...base,
      master: 'yarn',
      resources: { executorMemory: '4g', taskCpus: 2, executorCores: 4 },
      caps: { executorMemory: '2g', taskCpus: 1 },
    });
    expect(p.map((x) => x.path).sort()).toEqual(['caps.executorMemory', 'caps.taskCpus']);
    expect(p.find((x) => x.path === 'caps.executorMemory')!.message).toMatch(/cap 2g is below .*4g/);
  });

  it('refuses a jar without a main class and resource keys in conf', () => {
    const p = problems({
      ...base,
      app: { resource: '/jobs/agg.jar', conf: { 'spark.executor.memory': '8g', 'spark.sql.adaptive.enabled': 'true' } },
    });
    expect(p.map((x) => x.path).sort()).toEqual(['app.conf.spark.executor.memory', 'app.mainClass']);
  });

  it('refuses an executor cap that cannot fit a local-cluster worker', () => {
    const p = problems({ ...base, caps: { executorMemory: '4g' } });
    expect(p.map((x) => x.path)).toEqual(['caps.executorMemory']);
    expect(p[0]!.message).toMatch(/2048 MB local-cluster worker/);
  });

  it('knows every master the submitter supports', () => {
    expect(masterKind('local')).toBe('local');
    expect(masterKind('local[4]')).toBe('local');
    expect(masterKind('local[*]')).toBe('local');
    expect(masterKind('local-cluster[2,1,1024]')).toBe('local-cluster');
    expect(masterKind('spark://10.0.0.1:7077')).toBe('standalone');
    expect(masterKind('yarn')).toBe('yarn');
    expect(masterKind('k8s://https://api.example:6443')).toBe('k8s');
    expect(masterKind('k8s://api.example')).toBeUndefined();
  });
});
