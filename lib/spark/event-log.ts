import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { SparkPeakMetrics } from '../../schemas/spark.js';

/** A failed task as the event log tells it (`SparkListenerTaskEnd`'s `Task End Reason`). */
export interface TaskFailure {
  /** `ExceptionFailure`, `ExecutorLostFailure`, `FetchFailed`, `TaskKilled`, … */
  reason: string;
  /** For exception failures: the exception class, e.g. `java.lang.OutOfMemoryError`. */
  className?: string;
  description?: string;
  /** For executor loss: e.g. `Command exited with code 52`. */
  lossReason?: string;
  exitCausedByApp?: boolean;
}

/** What the classifier and the learning store need from one attempt's event log. */
export interface EventLogSummary {
  applicationId?: string;
  peaks: SparkPeakMetrics;
  taskFailures: TaskFailure[];
  /** `SparkListenerExecutorRemoved` reasons. */
  executorRemovals: string[];
  /** Messages of failed jobs (`SparkListenerJobEnd` with `JobFailed`). */
  jobFailures: string[];
  /** Lines that were not JSON (a log cut off by a kill ends with a partial line). */
  unreadableLines: number;
}

type Json = Record<string, unknown>;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

const MAX_FAILURES_KEPT = 50;

/** Folds event-log events into an {@link EventLogSummary}; feed it lines with {@link EventLogReader.line}. */
export class EventLogReader {
  private readonly summary: EventLogSummary = {
    peaks: {},
    taskFailures: [],
    executorRemovals: [],
    jobFailures: [],
    unreadableLines: 0,
  };
  private executorsAdded = 0;
  private executorsLost = 0;

  line(text: string): void {
    if (text.trim() === '') return;
    let event: Json;
    try {
      event = JSON.parse(text) as Json;
    } catch {
      this.summary.unreadableLines += 1;
      return;
    }
    this.event(event);
  }

  event(event: Json): void {
    switch (event.Event) {
      case 'SparkListenerApplicationStart':
        this.summary.applicationId = str(event['App ID']) ?? this.summary.applicationId;
        break;
      case 'SparkListenerExecutorAdded':
        this.executorsAdded += 1;
        break;
      case 'SparkListenerExecutorRemoved': {
        this.executorsLost += 1;
        const reason = str(event['Removed Reason']);
        if (reason && this.summary.executorRemovals.length < MAX_FAILURES_KEPT)
          this.summary.executorRemovals.push(reason);
        break;
      }
      case 'SparkListenerStageExecutorMetrics':
        this.executorMetrics(str(event['Executor ID']), obj(event['Executor Metrics']));
        break;
      case 'SparkListenerExecutorMetricsUpdate': {
        const updates = Array.isArray(event['Executor Metrics Updated']) ? event['Executor Metrics Updated'] : [];
        for (const u of updates) this.executorMetrics(str(event['Executor ID']), obj(obj(u)?.['Executor Metrics']));
        break;
      }
      case 'SparkListenerTaskEnd':
        this.taskEnd(event);
        break;
      case 'SparkListenerJobEnd': {
        const result = obj(event['Job Result']);
        if (result?.Result === 'JobFailed') {
          const message = str(obj(result.Exception)?.Message) ?? 'job failed';
          if (this.summary.jobFailures.length < MAX_FAILURES_KEPT) this.summary.jobFailures.push(message);
        }
        break;
      }
      default:
        break;
    }
  }

  private executorMetrics(executorId: string | undefined, metrics: Json | undefined): void {
    if (!metrics) return;
    const p = this.summary.peaks;
    const heap = num(metrics.JVMHeapMemory);
    if (executorId === 'driver') {
      p.driverPeakJVMHeapMemory = max(p.driverPeakJVMHeapMemory, heap);
      return;
    }
    p.peakJVMHeapMemory = max(p.peakJVMHeapMemory, heap);
    p.peakJVMOffHeapMemory = max(p.peakJVMOffHeapMemory, num(metrics.JVMOffHeapMemory));
    const onExec = num(metrics.OnHeapExecutionMemory);
    const offExec = num(metrics.OffHeapExecutionMemory);
    if (onExec !== undefined || offExec !== undefined) {
      p.peakExecutionMemory = max(p.peakExecutionMemory, (onExec ?? 0) + (offExec ?? 0));
    }
    const onStore = num(metrics.OnHeapStorageMemory);
    const offStore = num(metrics.OffHeapStorageMemory);
    if (onStore !== undefined || offStore !== undefined) {
      p.peakStorageMemory = max(p.peakStorageMemory, (onStore ?? 0) + (offStore ?? 0));
    }
  }

  private taskEnd(event: Json): void {
    const taskMetrics = obj(event['Task Metrics']);
    this.summary.peaks.peakTaskExecutionMemory = max(
      this.summary.peaks.peakTaskExecutionMemory,
      num(taskMetrics?.['Peak Execution Memory']),
    );
    // Task-level executor peaks: the only executor metrics a stage that never completed leaves behind.
    const executorId = str(obj(event['Task Info'])?.['Executor ID']);
    this.executorMetrics(executorId ?? 'unknown-executor', obj(event['Task Executor Metrics']));
    const reason = obj(event['Task End Reason']);
    const kind = str(reason?.Reason);
    if (!reason || !kind || kind === 'Success') return;
    if (this.summary.taskFailures.length >= MAX_FAILURES_KEPT) return;
    const failure: TaskFailure = { reason: kind };
    const className = str(reason['Class Name']);
    if (className) failure.className = className;
    const description = str(reason.Description) ?? str(reason.Message);
    if (description) failure.description = description.slice(0, 2000);
    const loss = str(reason['Loss Reason']);
    if (loss) failure.lossReason = loss;
    if (typeof reason['Exit Caused By App'] === 'boolean') failure.exitCausedByApp = reason['Exit Caused By App'];
    this.summary.taskFailures.push(failure);
  }

  result(): EventLogSummary {
    const peaks = { ...this.summary.peaks };
    if (this.executorsAdded > 0) peaks.executorsAdded = this.executorsAdded;
    if (this.executorsLost > 0) peaks.executorsLost = this.executorsLost;
    return { ...this.summary, peaks };
  }
}

function max(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** Reads a JSON-lines event log file (a plain, uncompressed, unrolled one; see `eventLogConf`). */
export async function readEventLog(file: string): Promise<EventLogSummary> {
  const reader = new EventLogReader();
  if (!existsSync(file)) return reader.result();
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of lines) reader.line(line);
  return reader.result();
}

/** Parses event-log text already in memory (tests, excerpts). */
export function parseEventLogText(text: string): EventLogSummary {
  const reader = new EventLogReader();
  for (const line of text.split('\n')) reader.line(line);
  return reader.result();
}
