import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type Worker } from '@temporalio/worker';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { SparkHistoryStore } from '../../lib/spark/history.js';
import { findSparkHome, findSparkPython } from '../../lib/spark/spark-home.js';
import { SparkSubmitProcess } from '../../lib/spark/submitter.js';
import { taskQueues } from '../../schemas/task-queues.js';
import { SparkJobInput } from '../../schemas/spark.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { connectToTestServer, uniqueQueue } from '../fixtures/temporal.js';
import type { sparkParent } from './spark-child.workflow.js';

// spark-job triggered from another workflow: a parent (test-only bundle, spark-child.workflow.ts) starts sparkJob
// with executeChild and gets its result. Real Spark 4.1 (pip pyspark, local-cluster) and the smallest job.
const postgresUrl = inject('postgresUrl');
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const database = `sluice_spark_child_${suffix}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();

let admin: pg.Client;
let history: SparkHistoryStore;
let workDir: string;
let t: Awaited<ReturnType<typeof connectToTestServer>>;
let worker: Worker;
let running: Promise<void>;
let base: string;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  history = SparkHistoryStore.connect(databaseUrl);
  workDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-spark-child-'));
  t = await connectToTestServer();
  base = uniqueQueue('spark-child');
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(REPO_ROOT, 'test/integration/spark-child.workflow.ts'),
    logger: new DefaultLogger('ERROR'),
  });
  worker = await createCpuWorker({
    connection: t.nativeConnection,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: { code } },
    shutdownGraceTime: '5s',
    spark: {
      submitter: new SparkSubmitProcess({
        sparkHome: findSparkHome(),
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
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await t?.close();
  await history?.close();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
  if (workDir && !process.env.SLUICE_KEEP_TEST_LOGS) rmSync(workDir, { recursive: true, force: true });
});

describe('spark-job as a child workflow', () => {
  it('runs when a parent workflow starts it with executeChild, and hands the parent its result', async () => {
    const name = `child-sum-${suffix}`;
    const spec = {
      name,
      owner: 'spark-it',
      master: 'local-cluster[1,1,1024]',
      app: {
        resource: path.join(REPO_ROOT, 'test/fixtures/spark-jobs/small_sum.py'),
        args: ['1000'],
        conf: { 'spark.ui.enabled': 'false' },
      },
      resources: { driverMemory: '512m', executorMemory: '512m', executorCores: 1 },
      caps: { executorMemory: '1g' },
    };
    const parentId = uniqueQueue('spark-parent');
    const result = await t.client.workflow.execute<typeof sparkParent>('sparkParent', {
      taskQueue: taskQueues(base).cpu,
      workflowId: parentId,
      args: [SparkJobInput.parse({ spec })],
    });
    expect(result.parentWorkflowId).toBe(parentId);
    expect(result.childWorkflowId).toBe(`spark/${name}`);
    expect(result.child).toMatchObject({ jobName: name, outcome: 'succeeded' });
    expect(result.child.attempts).toHaveLength(1);
    expect(result.child.attempts[0]).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
    expect(result.child.attempts[0]!.applicationId).toMatch(/^app-\d{14}-\d{4}$/);
    expect(result.child.cost.total.gbHours).toBeGreaterThan(0);

    // The child is a real workflow of its own, linked to the parent, and the history records its run.
    const child = await t.client.workflow.getHandle(result.childWorkflowId).describe();
    expect(child.type).toBe('sparkJob');
    expect(child.status.name).toBe('COMPLETED');
    expect(child.parentExecution?.workflowId).toBe(parentId);
    const runs = await history.recentRuns(name);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ outcome: 'succeeded' });
  }, 120_000);
});
