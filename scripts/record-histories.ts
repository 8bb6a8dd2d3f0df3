/**
 * Regenerates the committed workflow histories under test/histories/ that the replay tests replay against the
 * current workflow code. Run it after an intentional, patched change to a workflow: `npm run histories`.
 * It starts its own dev server and in-process workers, runs each workflow on small inputs, and writes one JSON
 * history per case.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { devServerSearchAttributes } from '../cli/local-stack.js';
import { startPipeline } from '../client/pipelines.js';
import { REPO_ROOT } from '../lib/config.js';
import { startTemporalDevServer } from '../lib/stack/temporal-server.js';
import { StackConfig } from '../schemas/stack-config.js';
import { createCpuWorker, createGpuHostWorkers } from '../workers/pool-workers.js';
import { bundleWorkflows } from '../workers/workflow-bundle.js';

/**
 * One recorded case: a pipeline and its input. File names are `<case>.json`.
 *
 * The CDC workflows (`cdcOnboard`, `cdcMerge`) need PostgreSQL and a catalog, so their histories
 * (`test/histories/cdc-*.json`) are recorded by their integration test instead:
 * `SLUICE_RECORD_HISTORIES=1 npx vitest run --config vitest.integration.config.ts test/integration/cdc-pipeline.test.ts`
 * (docs/cdc-pipeline.md).
 */
export const HISTORY_CASES: { name: string; pipeline: string; input: unknown }[] = [
  {
    name: 'pool-check',
    pipeline: 'pool-check',
    input: { cpuActivities: 3, unitsPerActivity: 2, gpuSteps: 2, matrixSize: 4 },
  },
  {
    name: 'activity-fan-out-parallel',
    pipeline: 'activity-fan-out',
    input: { count: 5, mode: 'parallel', maxInFlight: 2 },
  },
  { name: 'activity-fan-out-sequential', pipeline: 'activity-fan-out', input: { count: 3, mode: 'sequential' } },
];

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-histories-'));
  const server = await startTemporalDevServer({
    logDir: dir,
    searchAttributes: devServerSearchAttributes(StackConfig.parse({})),
  });
  const connection = await Connection.connect({ address: server.address });
  const native = await NativeConnection.connect({ address: server.address });
  try {
    const client = new Client({ connection, namespace: 'default' });
    const base = 'histories';
    const workers = [
      await createCpuWorker({
        connection: native,
        namespace: 'default',
        baseTaskQueue: base,
        workflows: { workflowBundle: await bundleWorkflows() },
        shutdownGraceTime: '1s',
      }),
      ...(await createGpuHostWorkers({
        connection: native,
        namespace: 'default',
        baseTaskQueue: base,
        host: 'gpu-rec',
        shutdownGraceTime: '1s',
      })),
    ];
    const running = Promise.all(workers.map((w) => w.run()));
    const outDir = path.join(REPO_ROOT, 'test/histories');
    mkdirSync(outDir, { recursive: true });
    for (const c of HISTORY_CASES) {
      const handle = await startPipeline(client, c.pipeline, c.input, {
        taskQueue: base,
        workflowId: `history-${c.name}`,
      });
      await handle.result();
      const history = await handle.fetchHistory();
      // The same JSON form as `temporal workflow show --output json`, which the replayer parses back.
      writeFileSync(path.join(outDir, `${c.name}.json`), historyToJSON(history) + '\n');
      console.log(`recorded test/histories/${c.name}.json (${history.events?.length ?? 0} events)`);
    }
    workers.forEach((w) => w.shutdown());
    await running;
  } finally {
    await connection.close();
    await native.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
