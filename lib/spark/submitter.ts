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
  /**
   * The handle a cluster-mode submission is killed by, when it differs from the application id: the standalone
   * driver id (`driver-…`) or the Kubernetes `namespace:driver-pod`.
   */
  submissionId?: string;
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

// Where a cluster-mode spark-submit names the submission it made: the standalone driver (legacy gateway and REST
// server) and the Kubernetes driver pod (`namespace:pod`).
const SUBMISSION_ID_PATTERNS: readonly RegExp[] = [
  /Driver successfully submitted as (driver-\d{14}-\d{4})/,
  /Submission successfully created as (driver-\d{14}-\d{4})/,
  /submission ID (\S+:\S+?)(?: into Kubernetes)?\.?$/,
];

/** The submission id in a spark-submit log line, if the line names it. */
export function submissionIdInLine(line: string): string | undefined {
  for (const pattern of SUBMISSION_ID_PATTERNS) {
    const m = pattern.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

// A standalone cluster-mode client that waits for its driver ends with this line, exit code 0 whatever the state.
const STANDALONE_DRIVER_END = /State of driver (driver-\S+) is (FINISHED|FAILED|ERROR|KILLED|UNKNOWN)/;

/** A command that runs outside the attempt's process group: the remote kill of a cluster-mode submission. */
export interface SparkCommand {
  command: string;
  args: string[];
}

/**
 * How to kill a cluster-mode application whose driver runs elsewhere, or `undefined` when killing the local
 * spark-submit process group is enough (client mode: the driver is in the group, and the cluster manager ends the
 * application when its driver goes away).
 * - standalone: the legacy gateway's `org.apache.spark.deploy.Client kill <master> <driver-id>`, which talks to the
 *   master's RPC port. (`spark-submit --kill` goes through the REST server, which Spark 4 leaves off by default and
 *   which listens on its own port.)
 * - Kubernetes: `spark-submit --master k8s://… --kill <namespace>:<driver-pod>`.
 * - YARN: `spark-submit --kill` has no YARN client, so `yarn application -kill <application id>` (the Hadoop CLI;
 *   `$HADOOP_HOME/bin/yarn`, else `yarn` on PATH).
 */
export function remoteKillCommand(
  req: Pick<SparkSubmitRequest, 'master' | 'deployMode'>,
  ids: { applicationId?: string | undefined; submissionId?: string | undefined },
  homes: { sparkHome: string; hadoopHome?: string | undefined },
): SparkCommand | undefined {
  if (req.deployMode !== 'cluster') return undefined;
  const kind = masterKind(req.master);
  if (kind === 'standalone' && ids.submissionId) {
    return {
      command: path.join(homes.sparkHome, 'bin', 'spark-class'),
      args: ['org.apache.spark.deploy.Client', 'kill', req.master, ids.submissionId],
    };
  }
  if (kind === 'k8s' && ids.submissionId) {
    return {
      command: path.join(homes.sparkHome, 'bin', 'spark-submit'),
      args: ['--master', req.master, '--kill', ids.submissionId],
    };
  }
  if (kind === 'yarn' && ids.applicationId?.startsWith('application_')) {
    return {
      command: homes.hadoopHome ? path.join(homes.hadoopHome, 'bin', 'yarn') : 'yarn',
      args: ['application', '-kill', ids.applicationId],
    };
  }
  return undefined;
}

/**
 * Settings that keep a cluster-mode spark-submit running until its application ends, so that the attempt's
 * activity lasts as long as the application and sees how it ended. Standalone's client leaves at once by default.
 */
export function waitForCompletionConf(master: string, deployMode: 'client' | 'cluster'): Record<string, string> {
  if (deployMode !== 'cluster') return {};
  switch (masterKind(master)) {
    case 'standalone':
      return { 'spark.standalone.submit.waitAppCompletion': 'true' };
    case 'yarn':
      return { 'spark.yarn.submit.waitAppCompletion': 'true' };
    case 'k8s':
      return { 'spark.kubernetes.submission.waitAppCompletion': 'true' };
    default:
      return {};
  }
}

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
  /** Where `bin/yarn` is, for killing YARN cluster-mode applications. @default HADOOP_HOME, else `yarn` on PATH */
  hadoopHome?: string;
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
      ...waitForCompletionConf(req.master, req.deployMode),
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
    let submissionId: string | undefined;
    let driverEnd: string | undefined;
    const onLine = (line: string) => {
      log.write(`${line}\n`);
      tail.push(line);
      if (tail.length > tailLimit) tail.shift();
      if (EVIDENCE.test(line) && evidence.length < 400) evidence.push(line);
      submissionId ??= submissionIdInLine(line);
      driverEnd = STANDALONE_DRIVER_END.exec(line)?.[2] ?? driverEnd;
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
      if (pgid !== undefined) void this.killGroup(pgid, req, { applicationId, submissionId });
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
    // A standalone cluster-mode client exits 0 even when its driver failed or was killed; the driver's own log is
    // on the worker (`<work dir>/<driver id>/stderr`), so the attempt fails on the client's word.
    const driverFailed = exit.code === 0 && driverEnd !== undefined && driverEnd !== 'FINISHED';
    if (driverFailed) excerpt.unshift(`standalone driver ${submissionId ?? '(unknown id)'} ended ${driverEnd}`);
    return {
      exitCode: driverFailed ? 1 : exit.code,
      signal: exit.signal,
      cancelled,
      applicationId,
      ...(submissionId ? { submissionId } : {}),
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
  private async killGroup(
    pgid: number,
    req: SparkSubmitRequest,
    ids: { applicationId: string | undefined; submissionId: string | undefined },
  ): Promise<void> {
    await this.killRemote(req, ids).catch(() => undefined);
    signalGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + (this.opts.killGraceMs ?? 5000);
    while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
    signalGroup(pgid, 'SIGKILL');
  }

  /** The cluster manager's kill for a cluster-mode application ({@link remoteKillCommand}); bounded to 60 s. */
  private async killRemote(
    req: SparkSubmitRequest,
    ids: { applicationId: string | undefined; submissionId: string | undefined },
  ): Promise<void> {
    const cmd = remoteKillCommand(req, ids, {
      sparkHome: path.dirname(path.dirname(this.sparkSubmitPath())),
      hadoopHome: this.opts.hadoopHome ?? process.env.HADOOP_HOME,
    });
    if (!cmd) return;
    const env: NodeJS.ProcessEnv = { ...process.env, SPARK_HOME: this.opts.sparkHome, ...this.opts.env };
    env.SPARK_SCALA_VERSION ??= '2.13';
    const child = spawn(cmd.command, cmd.args, { stdio: 'ignore', env, timeout: 60_000 });
    await new Promise<void>((resolve) => {
      child.once('error', () => resolve());
      child.once('close', () => resolve());
    });
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
