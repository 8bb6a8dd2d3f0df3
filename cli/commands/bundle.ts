import type { Command } from 'commander';
import { DEFAULT_BUNDLE_PATH, writeWorkflowBundle } from '../../workers/workflow-bundle.js';

export function registerBundle(program: Command): void {
  program
    .command('bundle')
    .description('prebuild the workflow bundle for production worker starts')
    .option('--out <file>', 'output file', DEFAULT_BUNDLE_PATH)
    .action(async (opts: { out: string }) => {
      const file = await writeWorkflowBundle(opts.out);
      console.log(`wrote ${file}; start workers with SLUICE_WORKFLOW_BUNDLE=${file} or --bundle ${file}`);
    });
}
