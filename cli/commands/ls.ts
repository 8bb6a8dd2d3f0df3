import type { Command } from 'commander';
import { getPipeline } from '../../client/pipelines.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { clientFor, globals, stackConfig } from '../context.js';

export function registerLs(program: Command): void {
  program
    .command('ls')
    .description('list recent pipeline runs (found through the SluicePipeline search attribute)')
    .option('--pipeline <name>', 'only this pipeline')
    .option('--limit <n>', 'at most this many runs', '20')
    .action(async (opts: { pipeline?: string; limit: string }, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new Error(`--limit must be a positive integer, not "${opts.limit}"`);
      const name = SearchAttributes.pipeline.name;
      const query = opts.pipeline ? `${name} = '${getPipeline(opts.pipeline).name}'` : `${name} IS NOT NULL`;
      const { client, connection } = await clientFor(g, config);
      try {
        let n = 0;
        console.log(`${'WORKFLOW ID'.padEnd(56)} ${'PIPELINE'.padEnd(18)} ${'STATUS'.padEnd(11)} STARTED`);
        for await (const wf of client.workflow.list({ query, pageSize: limit })) {
          const pipeline = wf.typedSearchAttributes.get(SearchAttributes.pipeline) ?? '';
          console.log(
            `${wf.workflowId.padEnd(56)} ${pipeline.padEnd(18)} ${wf.status.name.padEnd(11)} ${wf.startTime.toISOString()}`,
          );
          if (++n >= limit) break;
        }
        if (n === 0) console.log('(no runs)');
      } finally {
        await connection.close();
      }
    });
}
