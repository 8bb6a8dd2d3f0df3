import { assertNever } from '../../schemas/error-types.js';
import type { SparkFailureKind } from '../../schemas/spark.js';
import type { EventLogSummary, TaskFailure } from './event-log.js';

/** What the classifier looks at: the driver's exit, its log excerpt and the event log's failure events. */
export interface ClassifierInput {
  /** Exit code of the driver process (spark-submit); `null` when a signal ended it. */
  exitCode: number | null;
  signal?: string | null;
  /** Driver log lines (the submitter's excerpt: failure-looking lines, then the tail). */
  logLines: readonly string[];
  events?: EventLogSummary;
}

/** A failed attempt's kind, with the line or event that decided it. */
export interface Classification {
  kind: SparkFailureKind;
  evidence: string;
  source: 'exit-code' | 'driver-log' | 'event-log';
}

/** The order kinds are tested in: the most specific first, user code last (it matches any failure). */
export const DETECTION_ORDER: readonly SparkFailureKind[] = [
  'driver-oom',
  'execution-memory',
  'executor-oom',
  'container-memory-kill',
  'shuffle-fetch',
  'infrastructure',
  'user-code',
];

// A driver-side OOM: the main thread, a Py4J call into the driver JVM, or another driver thread.
const DRIVER_OOM = [
  /Exception in thread "[^"]+" java\.lang\.OutOfMemoryError/,
  // The submitter starts drivers with -XX:+ExitOnOutOfMemoryError; the JVM prints this as it exits.
  /Terminating due to java\.lang\.OutOfMemoryError/,
  /^: java\.lang\.OutOfMemoryError/,
  /py4j\.protocol\.Py4JJavaError.*java\.lang\.OutOfMemoryError/,
  /Uncaught exception in thread (?:driver|dag-scheduler|task-result-getter|spark-listener|"main").*OutOfMemoryError/i,
  /ERROR (?:SparkContext|Utils|DAGSchedulerEventProcessLoop|TaskResultGetter):.*java\.lang\.OutOfMemoryError/,
];
// Weaker: any OOM line that is not an executor's report (a driver thread's stack, e.g. TaskResultGetter's
// "Caused by: java.lang.OutOfMemoryError"). Trusted only when the event log shows no executor-side OOM.
const ANY_OOM = [/java\.lang\.OutOfMemoryError/];
// Lines that mention an OOM but report it from an executor.
const EXECUTOR_CONTEXT = /Lost task|executor \d+\)|\(executor|TaskSetManager|stage failure|ExecutorLost/;

const EXECUTION_MEMORY = [/SparkOutOfMemoryError/, /UNABLE_TO_ACQUIRE_MEMORY/, /Unable to acquire \d+ bytes of memory/];

const EXECUTOR_EXIT_52 = [
  /exited with code 52\b/,
  /[Ee]xit (?:code|status):? 52\b/,
  /Container exited with a non-zero exit code 52/,
];
const EXECUTOR_HEAP_OOM = /Lost task .*java\.lang\.OutOfMemoryError|executor \d+\): java\.lang\.OutOfMemoryError/;

const CONTAINER_KILL = [
  /exceeding memory limits/,
  /Container killed by YARN/,
  /Container killed on request\. Exit code is 137/,
  /OOMKilled/,
  /exited with code 13[7]\b/,
  /[Ee]xit (?:code|status):? 137\b/,
  /exited with code 143\b.*(?:memory|Killed)/,
];

const SHUFFLE_FETCH = [/FetchFailedException/, /MetadataFetchFailedException/, /\bFetchFailed\(/];

const INFRASTRUCTURE = [
  /All masters are unresponsive/,
  /Master removed our application/,
  /Failed to connect to master/,
  /Application .* failed \d+ times due to AM Container/,
  // Not "Executor … removed" or "exited with code 143" either: every local-cluster shutdown logs those.
  // Not "Removing worker" or "Worker decommissioning not enabled": every local-cluster start or stop logs them.
  /\bWorker lost\b|Executor lost for unknown reasons|Executor \S+ (?:is )?decommissioned/,
  /Pod (?:has been )?(?:deleted|evicted)|The node was low on resource/i,
  /Connection refused: .*:7077|UnknownHostException/,
];

function firstMatch(lines: readonly string[], patterns: readonly RegExp[], exclude?: RegExp): string | undefined {
  for (const line of lines) {
    if (exclude?.test(line)) continue;
    if (patterns.some((p) => p.test(line))) return line;
  }
  return undefined;
}

function eventMatch(events: EventLogSummary | undefined, test: (f: TaskFailure) => boolean): string | undefined {
  const failure = events?.taskFailures.find(test);
  if (!failure) return undefined;
  return [failure.reason, failure.className, failure.lossReason, failure.description?.split('\n')[0]]
    .filter(Boolean)
    .join(': ');
}

/** The event log's evidence of an executor heap OOM: a task lost to exit 52 or failed with OutOfMemoryError. */
function executorOomEvent(events: EventLogSummary | undefined): string | undefined {
  return eventMatch(
    events,
    (f) =>
      (f.reason === 'ExecutorLostFailure' && /code 52\b/.test(f.lossReason ?? '')) ||
      f.className === 'java.lang.OutOfMemoryError',
  );
}

const trim = (line: string) => (line.length > 400 ? `${line.slice(0, 400)}…` : line);

/** Whether `kind` explains this failure, and by what. Exhaustive: a new kind needs its detector here. */
function detect(kind: SparkFailureKind, input: ClassifierInput): Classification | undefined {
  const lines = input.logLines;
  const events = input.events;
  const found = (evidence: string | undefined, source: Classification['source']) =>
    evidence === undefined ? undefined : { kind, evidence: trim(evidence), source };
  switch (kind) {
    case 'driver-oom':
      // A client-mode driver that dies of an OOM in a non-main thread exits with Spark's OOM code, 52.
      if (input.exitCode === 52) return found('driver exited with code 52 (SparkExitCode.OOM)', 'exit-code');
      return (
        found(firstMatch(lines, DRIVER_OOM, EXECUTOR_CONTEXT), 'driver-log') ??
        ((executorOomEvent(events) ?? firstMatch(lines, [...EXECUTOR_EXIT_52, EXECUTOR_HEAP_OOM]))
          ? undefined
          : found(firstMatch(lines, ANY_OOM, EXECUTOR_CONTEXT), 'driver-log'))
      );
    case 'execution-memory':
      return (
        found(
          eventMatch(events, (f) => /SparkOutOfMemoryError/.test(`${f.className} ${f.description}`)),
          'event-log',
        ) ?? found(firstMatch(lines, EXECUTION_MEMORY), 'driver-log')
      );
    case 'executor-oom':
      return (
        found(executorOomEvent(events), 'event-log') ??
        found(firstMatch(lines, EXECUTOR_EXIT_52), 'driver-log') ??
        found(firstMatch(lines, [EXECUTOR_HEAP_OOM]), 'driver-log')
      );
    case 'container-memory-kill':
      return (
        found(
          eventMatch(
            events,
            (f) =>
              f.reason === 'ExecutorLostFailure' && /code 137\b|exceeding memory|OOMKilled/.test(f.lossReason ?? ''),
          ),
          'event-log',
        ) ?? found(firstMatch(lines, CONTAINER_KILL), 'driver-log')
      );
    case 'shuffle-fetch':
      return (
        found(
          eventMatch(events, (f) => f.reason === 'FetchFailed'),
          'event-log',
        ) ?? found(firstMatch(lines, SHUFFLE_FETCH), 'driver-log')
      );
    case 'infrastructure':
      return (
        found(
          eventMatch(events, (f) => f.reason === 'ExecutorLostFailure' && f.exitCausedByApp === false),
          'event-log',
        ) ??
        found(firstMatch(lines, INFRASTRUCTURE), 'driver-log') ??
        // The driver itself killed from outside with nothing in its log: its host or container went away.
        (input.exitCode === null || input.exitCode === 137 || input.exitCode === 143
          ? found(
              `driver ended by ${input.signal ?? `exit code ${input.exitCode}`} with no failure in its log`,
              'exit-code',
            )
          : undefined)
      );
    case 'user-code': {
      // The exception line itself ("ValueError: bad input") says more than the "Traceback" line before it.
      const line =
        firstMatch(lines, [/^\w+(?:\.\w+)*(?:Error|Exception): /]) ??
        firstMatch(lines, [/Traceback \(most recent call last\)/]) ??
        firstMatch(lines, [/Exception|Error/]);
      return found(line ?? `driver exited with code ${input.exitCode}`, line ? 'driver-log' : 'exit-code');
    }
    default:
      return assertNever(kind, 'Spark failure kind');
  }
}

/**
 * Classifies a finished attempt, or returns `undefined` when it succeeded (exit code 0). Kinds are tested in
 * {@link DETECTION_ORDER}; the event log's task-failure reasons are preferred over log lines because they are
 * structured, and user code is what remains when nothing else explains the failure.
 */
export function classifyFailure(input: ClassifierInput): Classification | undefined {
  if (input.exitCode === 0) return undefined;
  for (const kind of DETECTION_ORDER) {
    const hit = detect(kind, input);
    if (hit) return hit;
  }
  return { kind: 'user-code', evidence: `driver exited with code ${input.exitCode}`, source: 'exit-code' };
}
