import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  remoteKillCommand,
  SparkSubmitProcess,
  submissionIdInLine,
  waitForCompletionConf,
  type SparkSubmitRequest,
} from '../../../lib/spark/submitter.js';
import { SparkApplication, SparkResources } from '../../../schemas/spark.js';

// The exact spark-submit command lines per master. YARN and Kubernetes have no cluster here, so these lines are
// all that is tested of them; standalone and local-cluster also run against real Spark in the integration tests.
const home = '/opt/spark';
const submitter = new SparkSubmitProcess({ sparkHome: home });

function request(master: string, deployMode: 'client' | 'cluster', over: Partial<SparkSubmitRequest> = {}) {
  return {
    appName: 'orders#3',
    master,
    deployMode,
    app: SparkApplication.parse({
      resource: '/jobs/orders.jar',
      mainClass: 'com.example.Orders',
      args: ['2026-11-25'],
      conf: { 'spark.sql.adaptive.enabled': 'true' },
    }),
    resources: SparkResources.parse({
      driverMemory: '2g',
      driverCores: 2,
      executorMemory: '4g',
      executorMemoryOverhead: '1g',
      executorCores: 4,
      executorInstances: 10,
      taskCpus: 2,
      shufflePartitions: 400,
    }),
    eventLogDir: '/w/events',
    driverLogPath: '/w/driver.log',
    ...over,
  };
}

/** `--conf` pairs as a record, and everything else in order. */
function split(args: string[]) {
  const conf: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--conf') {
      const [k, ...v] = args[++i]!.split('=');
      conf[k!] = v.join('=');
    } else rest.push(args[i]!);
  }
  return { conf, rest };
}

const resourceConf = {
  'spark.driver.memory': '2g',
  'spark.executor.memory': '4g',
  'spark.executor.memoryOverhead': '1g',
  'spark.executor.cores': '4',
  'spark.task.cpus': '2',
  'spark.sql.shuffle.partitions': '400',
  'spark.sql.adaptive.enabled': 'true',
};

describe('spark-submit command lines per master', () => {
  it('YARN cluster mode: instances and driver cores, wait for the application', () => {
    const { conf, rest } = split(submitter.buildArgs(request('yarn', 'cluster')));
    expect(rest).toEqual([
      '--master',
      'yarn',
      '--deploy-mode',
      'cluster',
      '--name',
      'orders#3',
      '--class',
      'com.example.Orders',
      '/jobs/orders.jar',
      '2026-11-25',
    ]);
    expect(conf).toMatchObject({
      ...resourceConf,
      'spark.executor.instances': '10',
      'spark.driver.cores': '2',
      'spark.yarn.submit.waitAppCompletion': 'true',
      'spark.eventLog.enabled': 'true',
      'spark.eventLog.dir': 'file:///w/events',
    });
    expect(conf['spark.cores.max']).toBeUndefined();
  });

  it('YARN client mode: no wait setting (the driver is the spark-submit process)', () => {
    const { conf, rest } = split(submitter.buildArgs(request('yarn', 'client')));
    expect(rest.slice(0, 4)).toEqual(['--master', 'yarn', '--deploy-mode', 'client']);
    expect(conf['spark.yarn.submit.waitAppCompletion']).toBeUndefined();
    expect(conf['spark.executor.instances']).toBe('10');
  });

  it('Kubernetes cluster mode: the k8s:// URL as given, instances, wait for the application', () => {
    const master = 'k8s://https://kube.example:6443';
    const { conf, rest } = split(submitter.buildArgs(request(master, 'cluster')));
    expect(rest.slice(0, 4)).toEqual(['--master', master, '--deploy-mode', 'cluster']);
    expect(conf).toMatchObject({
      ...resourceConf,
      'spark.executor.instances': '10',
      'spark.driver.cores': '2',
      'spark.kubernetes.submission.waitAppCompletion': 'true',
    });
  });

  it('standalone: total cores instead of instances; cluster mode waits for the driver', () => {
    const master = 'spark://m1.example:7077,m2.example:7077';
    const cluster = split(submitter.buildArgs(request(master, 'cluster')));
    expect(cluster.rest.slice(0, 4)).toEqual(['--master', master, '--deploy-mode', 'cluster']);
    expect(cluster.conf).toMatchObject({
      ...resourceConf,
      'spark.cores.max': '40',
      'spark.standalone.submit.waitAppCompletion': 'true',
    });
    expect(cluster.conf['spark.executor.instances']).toBeUndefined();
    const client = split(submitter.buildArgs(request(master, 'client')));
    expect(client.conf['spark.standalone.submit.waitAppCompletion']).toBeUndefined();
  });

  it('waits only in cluster mode, and only on cluster masters', () => {
    expect(waitForCompletionConf('local-cluster[1,1,1024]', 'client')).toEqual({});
    expect(waitForCompletionConf('spark://h:7077', 'client')).toEqual({});
    expect(waitForCompletionConf('local[2]', 'cluster')).toEqual({});
  });
});

describe('remote kill commands', () => {
  const homes = { sparkHome: home, hadoopHome: '/opt/hadoop' };

  it('standalone cluster mode: the legacy gateway kills the driver through the master RPC port', () => {
    expect(
      remoteKillCommand(
        { master: 'spark://m:7077', deployMode: 'cluster' },
        { submissionId: 'driver-20261126052614-0001' },
        homes,
      ),
    ).toEqual({
      command: path.join(home, 'bin/spark-class'),
      args: ['org.apache.spark.deploy.Client', 'kill', 'spark://m:7077', 'driver-20261126052614-0001'],
    });
  });

  it('Kubernetes cluster mode: spark-submit --kill namespace:driver-pod', () => {
    const master = 'k8s://https://kube.example:6443';
    expect(
      remoteKillCommand(
        { master, deployMode: 'cluster' },
        { applicationId: 'spark-0123456789abcdef0123456789abcdef', submissionId: 'jobs:orders-3-driver' },
        homes,
      ),
    ).toEqual({
      command: path.join(home, 'bin/spark-submit'),
      args: ['--master', master, '--kill', 'jobs:orders-3-driver'],
    });
  });

  it('YARN cluster mode: yarn application -kill, from HADOOP_HOME or PATH', () => {
    const id = { applicationId: 'application_1700000000000_0042' };
    expect(remoteKillCommand({ master: 'yarn', deployMode: 'cluster' }, id, homes)).toEqual({
      command: '/opt/hadoop/bin/yarn',
      args: ['application', '-kill', 'application_1700000000000_0042'],
    });
    expect(remoteKillCommand({ master: 'yarn', deployMode: 'cluster' }, id, { sparkHome: home })?.command).toBe('yarn');
  });

  it('client mode, local masters and unknown ids: the process group kill is all', () => {
    for (const master of ['spark://m:7077', 'yarn', 'k8s://https://k:6443', 'local-cluster[1,1,1024]']) {
      expect(
        remoteKillCommand(
          { master, deployMode: 'client' },
          { applicationId: 'application_1_1', submissionId: 'x:y' },
          homes,
        ),
      ).toBeUndefined();
    }
    expect(remoteKillCommand({ master: 'spark://m:7077', deployMode: 'cluster' }, {}, homes)).toBeUndefined();
    expect(
      remoteKillCommand({ master: 'yarn', deployMode: 'cluster' }, { applicationId: 'app-1' }, homes),
    ).toBeUndefined();
  });
});

describe('submission ids in spark-submit output', () => {
  it('reads the standalone driver id (legacy gateway and REST) and the Kubernetes driver pod', () => {
    expect(submissionIdInLine('INFO ClientEndpoint: Driver successfully submitted as driver-20261126052525-0000')).toBe(
      'driver-20261126052525-0000',
    );
    expect(
      submissionIdInLine(
        'INFO RestSubmissionClient: Submission successfully created as driver-20261126052525-0001. Polling submission state...',
      ),
    ).toBe('driver-20261126052525-0001');
    expect(
      submissionIdInLine(
        'INFO KubernetesClientApplication: Deployed Spark application orders#3 with application ID spark-0123456789abcdef0123456789abcdef and submission ID jobs:orders-3-driver into Kubernetes',
      ),
    ).toBe('jobs:orders-3-driver');
    expect(submissionIdInLine('INFO ClientEndpoint: State of driver-20261126052525-0000 is RUNNING')).toBeUndefined();
  });
});

describe('standalone cluster-mode outcome', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-submit-cmd-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A spark-submit that talks like the standalone legacy gateway and exits 0, as it does whatever the driver did. */
  function gateway(state: string): string {
    const sparkHome = mkdtempSync(path.join(tmp, 'home-'));
    mkdirSync(path.join(sparkHome, 'bin'));
    writeFileSync(
      path.join(sparkHome, 'bin/spark-submit'),
      `#!/bin/bash
echo "INFO ClientEndpoint: Driver successfully submitted as driver-20261126052614-0001"
echo "INFO ClientEndpoint: State of driver-20261126052614-0001 is RUNNING"
echo "INFO ClientEndpoint: State of driver driver-20261126052614-0001 is ${state}, exiting spark-submit JVM."
exit 0
`,
    );
    chmodSync(path.join(sparkHome, 'bin/spark-submit'), 0o755);
    return sparkHome;
  }

  it('fails the attempt when the driver did not finish, and keeps the driver id', async () => {
    for (const [state, exitCode] of [
      ['FAILED', 1],
      ['KILLED', 1],
      ['FINISHED', 0],
    ] as const) {
      const dir = mkdtempSync(path.join(tmp, 'run-'));
      const outcome = await new SparkSubmitProcess({ sparkHome: gateway(state) }).submit(
        request('spark://m:7077', 'cluster', {
          eventLogDir: path.join(dir, 'events'),
          driverLogPath: path.join(dir, 'driver.log'),
        }),
      );
      expect(outcome.exitCode).toBe(exitCode);
      expect(outcome.submissionId).toBe('driver-20261126052614-0001');
      if (exitCode === 1)
        expect(outcome.logExcerpt[0]).toBe(`standalone driver driver-20261126052614-0001 ended ${state}`);
    }
  });
});
