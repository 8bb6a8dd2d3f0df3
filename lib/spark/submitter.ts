import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { masterKind, type SparkApplication, type SparkResources } from '../../schemas/spark.js';
import { resourceConf } from './resources.js';

/** One attempt to run: the application, where it runs and with what. */
export interface SparkSubmitRequest {
  /** Name shown by Spark (`--name`), e.g. `nightly-agg#2`. */
  appName: string;
  master: string;
  deployMode: 'client' | 'cluster';
  app: SparkApplication;
  resources: SparkResources;
  /** Event logs of this attempt go here (created if missing); read back after the attempt. */
  eventLogDir: string;
  /** The driver's stdout and stderr go to this file, whole. */
  driverLogPath: string;
}

/** Callbacks while the attempt runs. */
export interface SparkSubmitHooks {
  /** Aborting kills the application and everything it started. */
  signal?: AbortSignal;
  /** Every driver log line, as it arrives. */
  onLine?(line: string): void;
  /** Called once, when the application id shows up in the log. */
  onApplicationId?(id: string): void;
}

/** How an attempt ended. */
export interface SparkSubmitOutcome {
  /** The driver process's exit code; `null` when a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it, if any. */
  signal: string | null;
  /** True when `hooks.signal` aborted it. */
  cancelled: boolean;
  applicationId: string | undefined;
  driverLogPath: string;
  /** The lines the classifier reads: every line that looks like a failure, then the last lines of the log. */
  logExcerpt: string[];
  /** The attempt's event log file, when Spark wrote one. */
  eventLogPath: string | undefined;
  startedAt: string;
  wallMs: number;
}

/**
 * Runs Spark applications. `spark-submit` is the one implementation today; Livy (`POST /batches`) and the
 * Kubernetes Spark operator (`SparkApplication` resources) fit the same contract: start, stream the driver log,
 * report the application id, cancel on abort, and hand back the exit state and the event log.
 */
export interface SparkSubmitter {
  readonly name: string;
  submit(request: SparkSubmitRequest, hooks?: SparkSubmitHooks): Promise<SparkSubmitOutcome>;
}

/** `spark-submit` is not where SPARK_HOME says. Not retryable: the worker's configuration is wrong. */
export class SparkHomeError extends Error {
  override readonly name = 'SparkHomeError';
  readonly kind = 'spark-home-missing';
  readonly failureType = 'InvalidConfig' as const;
}

/** The Spark settings every attempt gets, so its event log can be read back as one plain JSON-lines file. */
export function eventLogConf(eventLogDir: string, pollingIntervalMs: number): Record<string, string> {
  return {
    'spark.eventLog.enabled': 'true',
    'spark.eventLog.dir': `file://${path.resolve(eventLogDir)}`,
    // Spark 4 rolls and compresses event logs by default; one uncompressed file is what we parse.
    'spark.eventLog.rolling.enabled': 'false',
    'spark.eventLog.compress': 'false',
    'spark.eventLog.logStageExecutorMetrics': 'true',
    'spark.executor.metrics.pollingInterval': String(pollingIntervalMs),
  };
}

// Where each master's driver log names the application: standalone/local-cluster, YARN, Kubernetes, and the event
// log line every client-mode driver writes.
const APP_ID_PATTERNS: readonly RegExp[] = [
  /Connected to Spark cluster with app ID (\S+)/,
  /Submitted application (application_\d+_\d+)/,
  /Logging events to \S*\/((?:app|local|application|spark)[-_][\w-]+?)(?:\.inprogress)?$/,
  /[Aa]pplication ID:? (spark-[0-9a-f]{32})/,
];

/** The application id in a driver log line, if the line names it. */
export function applicationIdInLine(line: string): string | undefined {
  for (const pattern of APP_ID_PATTERNS) {
    const m = pattern.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

// Lines the classifier needs even when they are far from the end of the log.
const EVIDENCE =
  /OutOfMemory|exited with code|ExecutorLost|FetchFailed|Container killed|exceeding memory|UNABLE_TO_ACQUIRE_MEMORY|Unable to acquire|Traceback|Error:|Exception|unresponsive|Lost executor|aborting job|exit code/;

/** Options of {@link SparkSubmitProcess}. */
export interface SparkSubmitProcessOptions {
  /** The Spark distribution (or the pyspark package directory) holding `bin/spark-submit`. */
  sparkHome: string | undefined;
  /** The Python that runs PySpark drivers and workers. @default PYSPARK_PYTHON, else python3 on PATH */
  pythonExecutable?: string;
  /** Extra environment for spark-submit. */
  env?: Record<string, string>;
  /** `spark.executor.metrics.pollingInterval` in ms; short so short jobs still show their peaks. @default 500 */
  metricsPollingIntervalMs?: number;
  /** Time between SIGTERM and SIGKILL when cancelling. @default 5000 */
  killGraceMs?: number;
  /** Lines kept from the end of the log for the classifier (the captures in test/fixtures/spark-logs keep as many). @default 60 */
  tailLines?: number;
  /**
   * Start the driver JVM with `-XX:+ExitOnOutOfMemoryError`. A driver OOM in one of Spark's own threads (the
   * scheduler's dispatcher, say) otherwise leaves a driver that never finishes; with the flag it exits at once
   * and the attempt is classified and resized. @default true
   */
  exitDriverOnOom?: boolean;
}

/** Runs each attempt as a `spark-submit` child process in its own process group. */
export class SparkSubmitProcess implements SparkSubmitter {
  readonly name = 'spark-submit';
  constructor(private readonly opts: SparkSubmitProcessOptions) {}

  /** The spark-submit path, or a {@link SparkHomeError} that names SPARK_HOME. */
  sparkSubmitPath(): string {
    const home = this.opts.sparkHome;
    if (!home) {
      throw new SparkHomeError(
        'SPARK_HOME is not set, so spark-submit cannot be found; set SPARK_HOME to a Spark distribution or the pyspark package directory (python -c "import pyspark,os;print(os.path.dirname(pyspark.__file__))")',
      );
    }
    const bin = path.join(home, 'bin', 'spark-submit');
    if (!existsSync(bin)) {
      throw new SparkHomeError(`SPARK_HOME=${home} has no bin/spark-submit; point SPARK_HOME at a Spark distribution`);
    }
    return bin;
  }

  /** The spark-submit arguments for `req` (exported for tests and `--dry-run`). */
  buildArgs(req: SparkSubmitRequest): string[] {
    const conf: Record<string, string> = {
      ...req.app.conf,
      ...resourceConf(req.resources, req.master),
      ...eventLogConf(req.eventLogDir, this.opts.metricsPollingIntervalMs ?? 500),
    };
    if (this.opts.exitDriverOnOom ?? true) {
      const own = req.app.conf['spark.driver.extraJavaOptions'];
      conf['spark.driver.extraJavaOptions'] = [own, '-XX:+ExitOnOutOfMemoryError'].filter(Boolean).join(' ');
    }
    const args = ['--master', req.master, '--deploy-mode', req.deployMode, '--name', req.appName];
    if (req.app.mainClass) args.push('--class', req.app.mainClass);
    if (req.app.pyFiles.length > 0) args.push('--py-files', req.app.pyFiles.join(','));
    if (req.app.jars.length > 0) args.push('--jars', req.app.jars.join(','));
    for (const [key, value] of Object.entries(conf).sort(([a], [b]) => a.localeCompare(b))) {
      args.push('--conf', `${key}=${value}`);
    }
    args.push(req.app.resource, ...req.app.args);
    return args;
  }

  async submit(req: SparkSubmitRequest, hooks: SparkSubmitHooks = {}): Promise<SparkSubmitOutcome> {
    const bin = this.sparkSubmitPath();
    mkdirSync(req.eventLogDir, { recursive: true });
    mkdirSync(path.dirname(req.driverLogPath), { recursive: true });
    const startedAt = new Date();
    const log = createWriteStream(req.driverLogPath, { flags: 'a' });
    const env: NodeJS.ProcessEnv = { ...process.env, SPARK_HOME: this.opts.sparkHome, ...this.opts.env };
    if (this.opts.pythonExecutable) {
      env.PYSPARK_PYTHON = this.opts.pythonExecutable;
      env.PYSPARK_DRIVER_PYTHON = this.opts.pythonExecutable;
    }
    // The launcher finds its jars by Scala version; a pip pyspark has no build tree to probe (docs/spark.md).
    env.SPARK_SCALA_VERSION ??= '2.13';
    // The attempt's own directory is the working directory, so relative outputs (spark-warehouse, derby.log) stay there.
    const child = spawn(bin, this.buildArgs(req), {
      env,
      cwd: path.dirname(req.driverLogPath),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pgid = child.pid;

    const tailLimit = this.opts.tailLines ?? 60;
    const tail: string[] = [];
    const evidence: string[] = [];
    let applicationId: string | undefined;
    const onLine = (line: string) => {
      log.write(`${line}\n`);
      tail.push(line);
      if (tail.length > tailLimit) tail.shift();
      if (EVIDENCE.test(line) && evidence.length < 400) evidence.push(line);
      if (!applicationId) {
        const id = applicationIdInLine(line);
        if (id) {
          applicationId = id;
          hooks.onApplicationId?.(id);
        }
      }
      hooks.onLine?.(line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      let pending = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) onLine(line);
      });
      stream.on('end', () => {
        if (pending) onLine(pending);
        pending = '';
      });
    }

    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      if (pgid !== undefined) void this.killGroup(pgid, req, applicationId);
    };
    if (hooks.signal?.aborted) onAbort();
    else hooks.signal?.addEventListener('abort', onAbort, { once: true });

    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    }).finally(() => hooks.signal?.removeEventListener('abort', onAbort));
    // The driver is gone; anything it left in its group (executors of a local cluster, Python workers) goes too.
    if (pgid !== undefined) await this.reapGroup(pgid);
    await new Promise<void>((resolve) => log.end(() => resolve()));

    const eventLogPath = findEventLog(req.eventLogDir, applicationId);
    applicationId ??= eventLogPath ? path.basename(eventLogPath).replace(/\.inprogress$/, '') : undefined;
    const excerpt = [...evidence, '--- tail ---', ...tail.filter((l) => !evidence.includes(l))];
    return {
      exitCode: exit.code,
      signal: exit.signal,
      cancelled,
      applicationId,
      driverLogPath: req.driverLogPath,
      logExcerpt: excerpt,
      eventLogPath,
      startedAt: startedAt.toISOString(),
      wallMs: Date.now() - startedAt.getTime(),
    };
  }

  /**
   * Cancels an attempt: in cluster deploy mode the driver runs elsewhere, so Spark is asked to kill it; then the
   * local process group gets SIGTERM, and SIGKILL after the grace time.
   */
  private async killGroup(pgid: number, req: SparkSubmitRequest, applicationId: string | undefined): Promise<void> {
    if (req.deployMode === 'cluster' && applicationId) await this.killRemote(req, applicationId).catch(() => undefined);
    signalGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + (this.opts.killGraceMs ?? 5000);
    while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
    signalGroup(pgid, 'SIGKILL');
  }

  /** `spark-submit --kill` for standalone and Kubernetes; YARN applications die with their submitter's client. */
  private async killRemote(req: SparkSubmitRequest, applicationId: string): Promise<void> {
    const kind = masterKind(req.master);
    if (kind !== 'standalone' && kind !== 'k8s') return;
    const child = spawn(this.sparkSubmitPath(), ['--master', req.master, '--kill', applicationId], {
      stdio: 'ignore',
      env: { ...process.env, SPARK_HOME: this.opts.sparkHome },
    });
    await new Promise<void>((resolve) => child.once('close', () => resolve()));
  }

  /** Waits briefly for the group to empty, then kills what is left. */
  private async reapGroup(pgid: number): Promise<void> {
    const deadline = Date.now() + 2000;
    while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
    if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
    const hardDeadline = Date.now() + 5000;
    while (groupAlive(pgid) && Date.now() < hardDeadline) await sleep(100);
  }
}

/** Whether any process of group `pgid` is alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The attempt's event log: the file named after the application, else the newest file in the directory. */
export function findEventLog(dir: string, applicationId: string | undefined): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => !f.startsWith('.'));
  if (applicationId) {
    for (const name of [applicationId, `${applicationId}.inprogress`])
      if (files.includes(name)) return path.join(dir, name);
  }
  const newest = files.map((f) => ({ f, t: statSync(path.join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t)[0];
  return newest ? path.join(dir, newest.f) : undefined;
}
