import type { Command } from 'commander';
import { startPipeline } from '../../client/pipelines.js';
import { baseTaskQueue, clientFor, globals, stackConfig } from '../context.js';
import { readInputArgument } from '../input.js';
import { uiWorkflowUrl, watchProgress } from '../progress-view.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('start a pipeline run')
    .argument('<pipeline>', 'pipeline name (an unknown name lists the known ones)')
    .option('--input <file|json>', 'pipeline input as JSON or a .json file', '{}')
    .option('--id <workflowId>', 'workflow id (default: the pipeline business key)')
    .option('--wait', 'show progress and wait for the result')
    .action(async (name: string, opts: { input: string; id?: string; wait?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const input = readInputArgument(opts.input);
      const { client, connection, namespace } = await clientFor(g, config);
      try {
        const handle = await startPipeline(client, name, input, {
          workflowId: opts.id,
          taskQueue: baseTaskQueue(config),
        });
        console.log(`started ${name}: ${handle.workflowId} (run ${handle.firstExecutionRunId})`);
        const url = uiWorkflowUrl(config, namespace, handle.workflowId);
        if (url) console.log(`  ${url}`);
        if (opts.wait) {
          await watchProgress(handle);
          console.log(JSON.stringify(await handle.result(), null, 2));
        }
      } finally {
        await connection.close();
      }
    });
}
