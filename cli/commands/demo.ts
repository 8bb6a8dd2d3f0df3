import type { Command } from 'commander';
import { connectClient } from '../../client/connection.js';
import { startPipeline, type PipelineName } from '../../client/pipelines.js';
import type { ActivityFanOutResult, PoolCheckResult } from '../../schemas/platform.js';
import { sluiceEnv } from '../../lib/config.js';
import { baseTaskQueue, globals, stackConfig } from '../context.js';
import { startLocalStack, waitForStackWorkers } from '../local-stack.js';
import { uiWorkflowUrl, watchProgress } from '../progress-view.js';
import { holdUntilSignal } from './up.js';

/** One demo run: a pipeline, its demo input, and how to summarize its result in one line. */
interface DemoRun {
  pipeline: PipelineName;
  input: unknown;
  summarize(result: unknown): string;
}

/** The demo runs every pipeline that exists on demo data; each pipeline issue appends its own run here. */
const DEMO_RUNS: DemoRun[] = [
  {
    pipeline: 'pool-check',
    input: { cpuActivities: 16, gpuSteps: 4, matrixSize: 128 },
    summarize: (r) => {
      const p = r as PoolCheckResult;
      return `${p.cpuActivities} CPU activities (${p.cpuUnits} units); ${p.gpuSteps.length} GPU steps pinned to ${p.gpuHostsUsed.join(', ')}`;
    },
  },
  {
    pipeline: 'activity-fan-out',
    input: { count: 200, mode: 'parallel' },
    summarize: (r) => `${(r as ActivityFanOutResult).completed} no-op activities completed`,
  },
];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('bring the local stack up, run every pipeline on demo data, print a summary with UI links')
    .option('--exit', 'stop the stack when the runs are done (default: keep it up until Ctrl-C)')
    .action(async (opts: { exit?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const configPath = g.config ?? sluiceEnv.configPath;
      const config = stackConfig(g);
      const say = (line: string) => console.log(`sluice demo: ${line}`);
      const stack = await startLocalStack(config, { configPath, say });
      const { client, connection, namespace } = await connectClient({
        address: stack.server.address,
        namespace: config.server.namespace,
      });
      const rows: string[] = [];
      let failed = 0;
      try {
        await waitForStackWorkers(stack, client, config);
        say('workers are polling; running the pipelines');
        for (const run of DEMO_RUNS) {
          const started = Date.now();
          const handle = await startPipeline(client, run.pipeline, run.input, { taskQueue: baseTaskQueue(config) });
          say(`${run.pipeline}: ${handle.workflowId}`);
          const status = await watchProgress(handle);
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          const link = uiWorkflowUrl(config, namespace, handle.workflowId) ?? handle.workflowId;
          if (status === 'COMPLETED') {
            rows.push(
              `  ✓ ${run.pipeline.padEnd(18)} ${seconds.padStart(6)} s  ${run.summarize(await handle.result())}\n      ${link}`,
            );
          } else {
            failed += 1;
            rows.push(`  ✗ ${run.pipeline.padEnd(18)} ${seconds.padStart(6)} s  ${status}\n      ${link}`);
          }
        }
      } catch (err) {
        await connection.close();
        await stack.stop();
        throw err;
      }
      await connection.close();
      console.log('\nSluice demo summary');
      console.log(rows.join('\n'));
      if (stack.server.uiUrl) console.log(`\nTemporal UI: ${stack.server.uiUrl}`);
      for (const url of stack.metricsUrls) console.log(`metrics:     ${url}`);
      if (opts.exit) {
        await stack.stop();
      } else {
        say('the stack stays up; Ctrl-C stops it (or pass --exit)');
        await holdUntilSignal(stack, say);
      }
      if (failed > 0) process.exitCode = 1;
    });
}
