import type { Command } from 'commander';
import { connectClient } from '../../client/connection.js';
import { sluiceEnv } from '../../lib/config.js';
import { globals, stackConfig } from '../context.js';
import { startLocalStack, waitForStackWorkers, type LocalStack } from '../local-stack.js';

/** Blocks until SIGINT/SIGTERM, then stops the stack. */
export async function holdUntilSignal(stack: LocalStack, say: (line: string) => void): Promise<void> {
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  say('stopping: workers finish in-flight activities, then the server stops');
  await stack.stop();
}

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start the local stack of temporal-dev.yml (dev server with UI, both worker pools) until Ctrl-C')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const configPath = g.config ?? sluiceEnv.configPath;
      const config = stackConfig(g);
      const say = (line: string) => console.log(`sluice up: ${line}`);
      const stack = await startLocalStack(config, { configPath, say });
      const { client, connection } = await connectClient({
        address: stack.server.address,
        namespace: config.server.namespace,
      });
      try {
        await waitForStackWorkers(stack, client, config);
      } catch (err) {
        await stack.stop();
        throw err;
      } finally {
        await connection.close();
      }
      say(`Temporal at ${stack.server.address}, namespace "${config.server.namespace}"`);
      if (stack.server.uiUrl) say(`Temporal UI: ${stack.server.uiUrl}`);
      for (const url of stack.metricsUrls) say(`metrics: ${url}`);
      say('ready; Ctrl-C stops everything');
      await holdUntilSignal(stack, say);
    });
}
