import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSparkJob } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import { SparkHistoryStore } from '../../lib/spark/history.js';
import { findSparkHome, findSparkPython } from '../../lib/spark/spark-home.js';
import { SparkSubmitProcess } from '../../lib/spark/submitter.js';
import { startProcess, tailLog, type ManagedProcess } from '../../lib/stack/managed-process.js';
import type { SparkJobResult, SparkJobSpec } from '../../schemas/spark.js';
import type { z } from 'zod';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

// spark-job against a real Spark standalone cluster: a Master and one Worker started from the pip pyspark's jars
// (spark-class), on free ports, logs in the fixture directory. A PySpark job runs in client mode (standalone runs
// no Python drivers in cluster mode); a JVM job (SlowSteps.java, compiled here) runs in cluster mode, where the
// driver lives on the worker and a cancel must go through the master. The master's JSON UI is the witness.
const postgresUrl = inject('postgresUrl');
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const database = `sluice_spark_sa_${suffix}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();
const sparkHome = findSparkHome();
const root = path.join(inject('fixtureDir'), `spark-standalone-${suffix}`);
const logDir = path.join(root, 'logs');
const workDir = path.join(root, 'attempts');
const SPARK_TEST_TIMEOUT = 300_000;

let admin: pg.Client;
let history: SparkHistoryStore;
let t: Awaited<ReturnType<typeof connectToTestServer>>;
let worker: Worker;
let running: Promise<void>;
let base: string;
let master: ManagedProcess | undefined;
let sparkWorker: ManagedProcess | undefined;
let masterUrl: string;
let masterUi: string;
let workerUi: string;
let jar: string;

interface MasterState {
  status: string;
  aliveworkers: number;
  activeapps: { id: string; name: string; state: string }[];
  completedapps: { id: string; name: string; state: string }[];
  activedrivers: { id: string; state: string }[];
  completeddrivers: { id: string; state: string }[];
}

async function masterState(): Promise<MasterState> {
  const res = await fetch(`${masterUi}/json/`);
  if (!res.ok) throw new Error(`master UI answered ${res.status}`);
  return (await res.json()) as MasterState;
}

async function workerExecutors(): Promise<{ appid: string }[]> {
  const res = await fetch(`${workerUi}/json/`);
  return ((await res.json()) as { executors: { appid: string }[] }).executors;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Processes whose command line contains `needle`. */
function processesMatching(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle))
        found.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

beforeAll(async () => {
  if (!sparkHome) throw new Error('no SPARK_HOME and no .tools/venv pyspark: run scripts/setup.sh');
  mkdirSync(logDir, { recursive: true });
  const [masterPort, masterUiPort, workerUiPort] = [await freePort(), await freePort(), await freePort()];
  masterUrl = `spark://127.0.0.1:${masterPort}`;
  masterUi = `http://127.0.0.1:${masterUiPort}`;
  workerUi = `http://127.0.0.1:${workerUiPort}`;
  const env = {
    ...process.env,
    SPARK_HOME: sparkHome,
    SPARK_LOCAL_IP: '127.0.0.1',
    SPARK_SCALA_VERSION: '2.13',
    SPARK_LOG_DIR: logDir,
    // The REST submission server would take the fixed port 6066; the legacy gateway (the master's RPC port) is
    // what the submitter submits and kills through.
    SPARK_MASTER_OPTS: '-Dspark.master.rest.enabled=false',
  };
  const sparkClass = path.join(sparkHome, 'bin/spark-class');
  master = startProcess(
    'spark-master',
    sparkClass,
    ['org.apache.spark.deploy.master.Master', '--host', '127.0.0.1', '--port', String(masterPort)].concat([
      '--webui-port',
      String(masterUiPort),
    ]),
    { logDir, env },
  );
  // Two cores and 2 GB: a cluster-mode driver (1 core, 512m) and one executor (1 core, 512m) fit side by side.
  sparkWorker = startProcess(
    'spark-worker',
    sparkClass,
    [
      'org.apache.spark.deploy.worker.Worker',
      masterUrl,
      '--host',
      '127.0.0.1',
      '--cores',
      '2',
      '--memory',
      '2g',
    ].concat(['--webui-port', String(workerUiPort), '--work-dir', path.join(root, 'worker')]),
    { logDir, env },
  );

  // The JVM job for cluster mode, compiled against the distribution's own jars while the cluster starts.
  const classes = path.join(root, 'classes');
  jar = path.join(root, 'slow-steps.jar');
  const run = promisify(execFile);
  await run('javac', [
    '-cp',
    `${sparkHome}/jars/*`,
    '-d',
    classes,
    path.join(REPO_ROOT, 'test/fixtures/spark-jobs/SlowSteps.java'),
  ]);
  await run('jar', ['cf', jar, '-C', classes, '.']);

  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  history = SparkHistoryStore.connect(databaseUrl);
  t = await connectToTestServer();
  base = uniqueQueue('spark-sa');
  worker = await createCpuWorker({
    connection: t.nativeConnection,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: testWorkflowBundle() },
    shutdownGraceTime: '5s',
    spark: {
      submitter: new SparkSubmitProcess({
        sparkHome,
        pythonExecutable: findSparkPython(),
        env: { SPARK_LOCAL_IP: '127.0.0.1' },
        killGraceMs: 3000,
      }),
      history,
      workDir,
      heartbeatIntervalMs: 1000,
    },
  });
  running = worker.run();

  const died = Promise.race([master.exited, sparkWorker.exited]).then(async () => {
    throw new Error(
      `the Spark master or worker exited during start:\n${await tailLog(master!.logFile, 20)}\n${await tailLog(sparkWorker!.logFile, 20)}`,
    );
  });
  died.catch(() => undefined);
  await Promise.race([
    eventually(
      async () => {
        const state = await masterState().catch(() => undefined);
        return state?.status === 'ALIVE' && state.aliveworkers === 1 ? state : undefined;
      },
      150_000,
      'the standalone master to see its worker',
    ),
    died,
  ]);
}, 240_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await t?.close();
  await history?.close();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
  await sparkWorker?.stop(10_000);
  await master?.stop(10_000);
});

function spec(name: string, over: Pick<z.input<typeof SparkJobSpec>, 'app'> & Partial<z.input<typeof SparkJobSpec>>) {
  return {
    name: `${name}-${suffix}`,
    owner: 'spark-it',
    master: masterUrl,
    resources: { driverMemory: '512m', executorMemory: '512m', executorCores: 1 },
    caps: { executorMemory: '1g' },
    ...over,
  };
}

describe('spark-job on a real standalone master', () => {
  it(
    'runs a PySpark job in client mode and records the application id the master knows',
    async () => {
      const job = spec('sa-sum', {
        app: {
          resource: path.join(REPO_ROOT, 'test/fixtures/spark-jobs/small_sum.py'),
          args: ['1000'],
          conf: { 'spark.ui.enabled': 'false' },
        },
      });
      const handle = await startSparkJob(t.client, { spec: job }, { taskQueue: base });
      const result: SparkJobResult = await handle.result();
      expect(result.outcome).toBe('succeeded');
      expect(result.attempts).toHaveLength(1);
      const appId = result.attempts[0]!.applicationId;
      expect(appId).toMatch(/^app-\d{14}-\d{4}$/);
      expect(readFileSync(result.attempts[0]!.driverLogPath!, 'utf8')).toContain('RESULT sum=');
      const state = await eventually(
        async () => {
          const s = await masterState();
          return s.completedapps.some((a) => a.id === appId) ? s : undefined;
        },
        30_000,
        'the master to list the application as completed',
      );
      // (small_sum.py names itself in its SparkSession builder, so the id is what ties the two together.)
      expect(state.completedapps.find((a) => a.id === appId)).toMatchObject({ state: 'FINISHED' });
      const runs = await history.recentRuns(job.name);
      expect(runs[0]!.attempts[0]).toMatchObject({ outcome: 'succeeded', applicationId: appId });
    },
    SPARK_TEST_TIMEOUT,
  );

  it(
    'ends a client-mode application on the master, executors included, when the workflow is cancelled',
    async () => {
      // The executors are the worker's children, not in spark-submit's process group: only the master can end them.
      const job = spec('sa-client-long', {
        app: {
          resource: path.join(REPO_ROOT, 'test/fixtures/spark-jobs/slow_steps.py'),
          args: ['600', '0.5'],
          conf: { 'spark.ui.enabled': 'false' },
        },
      });
      const handle = await startSparkJob(t.client, { spec: job }, { taskQueue: base });
      const appId = await eventually(
        async () => {
          const app = (await masterState()).activeapps[0];
          if (!app) return undefined;
          return (await workerExecutors()).some((e) => e.appid === app.id) ? app.id : undefined;
        },
        180_000,
        'the client-mode application and its executor to run',
      );
      expect(processesMatching(`--app-id ${appId}`).length).toBeGreaterThan(0);
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const after = await eventually(
        async () => {
          const s = await masterState();
          return s.activeapps.length === 0 ? s : undefined;
        },
        60_000,
        'the master to end the application',
      );
      expect(after.completedapps.map((a) => a.id)).toContain(appId);
      await eventually(
        async () =>
          (await workerExecutors()).length === 0 && processesMatching(`--app-id ${appId}`).length === 0
            ? true
            : undefined,
        30_000,
        'the worker to stop the executor JVM',
      );
      const runs = await history.recentRuns(job.name);
      expect(runs[0]!.attempts[0]).toMatchObject({ outcome: 'cancelled', applicationId: appId });
    },
    SPARK_TEST_TIMEOUT,
  );

  it(
    'waits for a cluster-mode driver to finish, then kills a cluster-mode driver on the master when cancelled',
    async () => {
      // A short run: the attempt lasts until the driver on the worker finishes (spark-submit waits for it).
      const short = spec('sa-cluster-ok', {
        deployMode: 'cluster',
        app: { resource: jar, mainClass: 'SlowSteps', args: ['2', '100'], conf: { 'spark.ui.enabled': 'false' } },
      });
      const ok = await (await startSparkJob(t.client, { spec: short }, { taskQueue: base })).result();
      expect(ok.outcome).toBe('succeeded');
      const okApp = ok.attempts[0]!.applicationId;
      expect(okApp).toMatch(/^app-\d{14}-\d{4}$/); // from the event log the driver wrote
      const afterOk = await masterState();
      expect(afterOk.completedapps.find((a) => a.id === okApp)).toMatchObject({ state: 'FINISHED' });
      expect(afterOk.completeddrivers.map((d) => d.state)).toContain('FINISHED');

      const long = spec('sa-cluster-long', {
        deployMode: 'cluster',
        app: { resource: jar, mainClass: 'SlowSteps', args: ['600', '500'], conf: { 'spark.ui.enabled': 'false' } },
      });
      const handle = await startSparkJob(t.client, { spec: long }, { taskQueue: base });
      // The driver runs on the worker and its application has an executor there.
      const live = await eventually(
        async () => {
          const s = await masterState();
          const driver = s.activedrivers.find((d) => d.state === 'RUNNING');
          const app = s.activeapps.find((a) => a.name === `${long.name}#1`);
          if (!driver || !app) return undefined;
          const executors = await workerExecutors();
          return executors.some((e) => e.appid === app.id) ? { driver: driver.id, app: app.id } : undefined;
        },
        180_000,
        'the cluster-mode driver and its executor to run',
      );
      expect(processesMatching(live.driver).length).toBeGreaterThan(0); // the DriverWrapper JVM on the worker

      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      // The master killed the driver; the application and its executor are gone, and so are their JVMs.
      const after = await eventually(
        async () => {
          const s = await masterState();
          return s.activeapps.length === 0 && s.activedrivers.length === 0 ? s : undefined;
        },
        60_000,
        'the master to end the application',
      );
      expect(after.completeddrivers.find((d) => d.id === live.driver)).toMatchObject({ state: 'KILLED' });
      expect(after.completedapps.find((a) => a.id === live.app)).toBeDefined();
      await eventually(
        async () => ((await workerExecutors()).length === 0 ? true : undefined),
        30_000,
        'the worker to drop the executor',
      );
      await eventually(
        async () =>
          processesMatching(live.driver).length === 0 && processesMatching(live.app).length === 0 ? true : undefined,
        30_000,
        'the driver and executor JVMs to exit',
      );
      const runs = await history.recentRuns(long.name);
      expect(runs[0]).toMatchObject({ outcome: 'cancelled' });
      expect(existsSync(runs[0]!.attempts[0]!.driverLogPath!)).toBe(true);
      expect(readFileSync(runs[0]!.attempts[0]!.driverLogPath!, 'utf8')).toContain(live.driver);
    },
    SPARK_TEST_TIMEOUT,
  );
});
