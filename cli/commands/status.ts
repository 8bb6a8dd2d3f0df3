import type { Command } from 'commander';
import type { Progress } from '../../schemas/progress.js';
import { progressQuery } from '../../workflows/queries.js';
import { clientFor, globals, stackConfig } from '../context.js';
import { uiWorkflowUrl, watchProgress } from '../progress-view.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("show a run's status and progress")
    .argument('<workflowId>')
    .option('--watch', 'follow progress with a live bar until the run closes')
    .action(async (workflowId: string, opts: { watch?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const { client, connection, namespace } = await clientFor(g, config);
      try {
        const handle = client.workflow.getHandle(workflowId);
        const d = await handle.describe();
        console.log(`${workflowId}  ${d.type}  ${d.status.name}  started ${d.startTime.toISOString()}`);
        const url = uiWorkflowUrl(config, namespace, workflowId);
        if (url) console.log(`  ${url}`);
        if (opts.watch) {
          const final = await watchProgress(handle);
          console.log(`closed: ${final}`);
          return;
        }
        let progress: Progress | undefined;
        try {
          progress = await handle.query(progressQuery);
        } catch (err) {
          console.log(`  progress: unavailable (${(err as Error).message.split('\n')[0]})`);
        }
        if (progress) {
          const pct = progress.total > 0 ? ` (${Math.round((100 * progress.done) / progress.total)}%)` : '';
          console.log(
            `  ${progress.phase}: ${progress.done}/${progress.total} ${progress.unit}${pct} ${progress.detail ?? ''}`,
          );
        }
      } finally {
        await connection.close();
      }
    });
}
