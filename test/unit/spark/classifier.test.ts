import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyFailure, DETECTION_ORDER } from '../../../lib/spark/classifier.js';
import { parseEventLogText } from '../../../lib/spark/event-log.js';
import { REPO_ROOT } from '../../../lib/config.js';
import { SPARK_FAILURE_KINDS, type SparkFailureKind } from '../../../schemas/spark.js';

/** One capture of scripts/spark/capture-log-excerpts.py: a real Spark run's exit code, log excerpt and events. */
interface Capture {
  scenario: string;
  expectedKind: SparkFailureKind | null;
  exitCode: number;
  sparkVersion: string;
  driverLogExcerpt: string[];
  eventLogExcerpt: string[];
}

const dir = path.join(REPO_ROOT, 'test/fixtures/spark-logs');
const captures: Capture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Capture);

describe('classifier on log excerpts captured from real Spark runs', () => {
  it('has a capture for every failure kind and for a success', () => {
    const kinds = new Set(captures.map((c) => c.expectedKind));
    for (const kind of SPARK_FAILURE_KINDS) expect(kinds, `capture for ${kind}`).toContain(kind);
    expect(kinds).toContain(null);
    expect(captures.every((c) => c.sparkVersion.startsWith('4.1'))).toBe(true);
  });

  it.each(captures.map((c) => [c.scenario, c] as const))('%s', (_name, capture) => {
    const events = parseEventLogText(capture.eventLogExcerpt.join('\n'));
    const withEvents = classifyFailure({ exitCode: capture.exitCode, logLines: capture.driverLogExcerpt, events });
    expect(withEvents?.kind ?? null).toBe(capture.expectedKind);
    // The driver log alone (no event log: a driver killed before writing it) must give the same answer.
    const logOnly = classifyFailure({ exitCode: capture.exitCode, logLines: capture.driverLogExcerpt });
    expect(logOnly?.kind ?? null).toBe(capture.expectedKind);
    if (withEvents) expect(withEvents.evidence.length).toBeGreaterThan(0);
  });
});

describe('classifier rules without a capture', () => {
  it('tests every kind, user code last', () => {
    expect([...DETECTION_ORDER].sort()).toEqual([...SPARK_FAILURE_KINDS].sort());
    expect(DETECTION_ORDER.at(-1)).toBe('user-code');
  });

  // YARN and Kubernetes messages cannot be produced by a local cluster; these lines are written from their
  // documented formats, not captured.
  it.each([
    [
      'container-memory-kill',
      'ExecutorLostFailure (executor 3 exited caused by one of the running tasks) Reason: Container killed by YARN for exceeding memory limits. 5.5 GB of 5.5 GB physical memory used.',
    ],
    ['executor-oom', 'Diagnostics: Container exited with a non-zero exit code 52. Error file: prelaunch.err.'],
    ['infrastructure', 'Application application_1700000000000_0042 failed 2 times due to AM Container for appattempt'],
  ] as const)('classifies %s from a YARN line', (kind, line) => {
    expect(classifyFailure({ exitCode: 1, logLines: [line] })?.kind).toBe(kind);
  });

  it('calls a driver killed from outside with a clean log an infrastructure loss', () => {
    expect(
      classifyFailure({ exitCode: null, signal: 'SIGKILL', logLines: ['INFO DAGScheduler: Job 0 started'] }),
    ).toMatchObject({ kind: 'infrastructure', source: 'exit-code' });
  });

  it('ignores the worker lines every local-cluster start and stop logs', () => {
    // Real INFO lines of a local-cluster run whose script raised a ValueError (they once read as infrastructure).
    const lines = [
      '26/11/26 02:36:17 INFO Worker: Worker decommissioning not enabled.',
      'Traceback (most recent call last):',
      'ValueError: bad input: expected 999 rows, got 1000',
      '26/11/26 02:37:45 INFO Master: Removing worker worker-20261126023617-127.0.0.1-36283 on 127.0.0.1:36283',
      '26/11/26 02:37:45 ERROR TaskSchedulerImpl: Lost executor 0 on 127.0.0.1: Command exited with code 143',
    ];
    expect(classifyFailure({ exitCode: 1, logLines: lines })).toEqual({
      kind: 'user-code',
      evidence: 'ValueError: bad input: expected 999 rows, got 1000',
      source: 'driver-log',
    });
  });

  it('reads a driver exit code 52 as a driver OOM', () => {
    expect(classifyFailure({ exitCode: 52, logLines: [] })?.kind).toBe('driver-oom');
  });
});
