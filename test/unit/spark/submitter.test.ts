import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readEventLog } from '../../../lib/spark/event-log.js';
import { applicationIdInLine, groupAlive, SparkHomeError, SparkSubmitProcess } from '../../../lib/spark/submitter.js';
import { SparkApplication, SparkResources } from '../../../schemas/spark.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-submitter-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const request = (dir: string) => ({
  appName: 'unit#1',
  master: 'local-cluster[1,1,1024]',
  deployMode: 'client' as const,
  app: SparkApplication.parse({
    resource: '/jobs/x.py',
    args: ['--day', '2026-11-25'],
    conf: { 'spark.ui.enabled': 'false' },
  }),
  resources: SparkResources.parse({ executorMemory: '512m', executorCores: 1 }),
  eventLogDir: path.join(dir, 'events'),
  driverLogPath: path.join(dir, 'driver.log'),
});

/** A stand-in SPARK_HOME whose spark-submit logs like Spark, starts a grandchild and writes an event log. */
function fakeSparkHome(script: string): string {
  const home = mkdtempSync(path.join(tmp, 'home-'));
  mkdirSync(path.join(home, 'bin'));
  const bin = path.join(home, 'bin/spark-submit');
  writeFileSync(bin, `#!/bin/bash\n${script}\n`);
  chmodSync(bin, 0o755);
  return home;
}

describe('SparkSubmitProcess', () => {
  it('names SPARK_HOME when spark-submit is missing', async () => {
    await expect(new SparkSubmitProcess({ sparkHome: undefined }).submit(request(tmp))).rejects.toThrow(
      /SPARK_HOME is not set/,
    );
    const empty = mkdtempSync(path.join(tmp, 'empty-'));
    const err = await new SparkSubmitProcess({ sparkHome: empty }).submit(request(tmp)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkHomeError);
    expect((err as SparkHomeError).message).toContain(`SPARK_HOME=${empty} has no bin/spark-submit`);
    expect((err as SparkHomeError).failureType).toBe('InvalidConfig');
  });

  it('passes resources, the event log settings and the app arguments', () => {
    const args = new SparkSubmitProcess({ sparkHome: tmp }).buildArgs(request('/w'));
    expect(args.slice(0, 6)).toEqual([
      '--master',
      'local-cluster[1,1,1024]',
      '--deploy-mode',
      'client',
      '--name',
      'unit#1',
    ]);
    expect(args).toEqual(
      expect.arrayContaining([
        'spark.executor.memory=512m',
        'spark.cores.max=1',
        'spark.eventLog.enabled=true',
        'spark.eventLog.dir=file:///w/events',
        'spark.eventLog.rolling.enabled=false',
        'spark.ui.enabled=false',
        'spark.driver.extraJavaOptions=-XX:+ExitOnOutOfMemoryError',
      ]),
    );
    expect(args.slice(-3)).toEqual(['/jobs/x.py', '--day', '2026-11-25']);
  });

  it('finds the application id in each master’s log line', () => {
    expect(
      applicationIdInLine(
        'INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20261126021732-0000',
      ),
    ).toBe('app-20261126021732-0000');
    expect(applicationIdInLine('INFO Client: Submitted application application_1700000000000_0042')).toBe(
      'application_1700000000000_0042',
    );
    expect(
      applicationIdInLine(
        'INFO SingleEventLogFileWriter: Logging events to file:/tmp/ev/local-1795658985924.inprogress',
      ),
    ).toBe('local-1795658985924');
    expect(applicationIdInLine('INFO SparkContext: Running Spark version 4.1.1')).toBeUndefined();
  });

  it('streams the log, reads the event log, and reports the exit code', async () => {
    const home = fakeSparkHome(`
dir=$(echo "$@" | grep -o 'spark.eventLog.dir=file://[^ ]*' | sed 's|spark.eventLog.dir=file://||')
echo "INFO Connected to Spark cluster with app ID app-20261126000000-0007"
echo '{"Event":"SparkListenerStageExecutorMetrics","Executor ID":"0","Executor Metrics":{"JVMHeapMemory":300000000,"OnHeapExecutionMemory":1000}}' > "$dir/app-20261126000000-0007"
echo "ValueError: boom" >&2
exit 3`);
    const dir = mkdtempSync(path.join(tmp, 'run-'));
    const ids: string[] = [];
    const outcome = await new SparkSubmitProcess({ sparkHome: home }).submit(request(dir), {
      onApplicationId: (id) => ids.push(id),
    });
    expect(outcome).toMatchObject({ exitCode: 3, cancelled: false, applicationId: 'app-20261126000000-0007' });
    expect(ids).toEqual(['app-20261126000000-0007']);
    expect(outcome.logExcerpt).toContain('ValueError: boom');
    expect(readFileSync(outcome.driverLogPath, 'utf8')).toContain('Connected to Spark cluster');
    expect((await readEventLog(outcome.eventLogPath!)).peaks).toMatchObject({
      peakJVMHeapMemory: 300000000,
      peakExecutionMemory: 1000,
    });
  });

  it('kills the whole process group on abort, grandchildren included', async () => {
    const home = fakeSparkHome(`
sleep 300 &
echo "child $!"
echo "INFO Connected to Spark cluster with app ID app-20261126000000-0008"
wait`);
    const dir = mkdtempSync(path.join(tmp, 'cancel-'));
    const abort = new AbortController();
    let pgid = 0;
    const submitter = new SparkSubmitProcess({ sparkHome: home, killGraceMs: 2000 });
    const done = submitter.submit(request(dir), {
      signal: abort.signal,
      onApplicationId: () => abort.abort(),
      onLine: (line) => {
        if (line.startsWith('child '))
          pgid = Number(
            readFileSync(`/proc/${line.slice(6)}/stat`, 'utf8')
              .split(') ')[1]!
              .split(' ')[2],
          );
      },
    });
    const outcome = await done;
    expect(outcome.cancelled).toBe(true);
    expect(pgid).toBeGreaterThan(0);
    expect(groupAlive(pgid)).toBe(false);
  });
});
