import type { Command } from 'commander';
import { registerSearchAttributes } from '../../client/search-attribute-setup.js';
import { clientFor, globals, stackConfig } from '../context.js';

export function registerSetup(program: Command): void {
  program
    .command('setup')
    .description("register Sluice's search attributes on a cluster (the dev server gets them from `sluice up`)")
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const { connection, namespace, address } = await clientFor(g, config);
      try {
        const added = await registerSearchAttributes(connection, namespace);
        console.log(
          added.length > 0
            ? `registered ${added.join(', ')} in namespace "${namespace}" at ${address}`
            : `search attributes already registered in namespace "${namespace}" at ${address}`,
        );
      } catch (err) {
        throw new Error(
          `could not register search attributes in "${namespace}" at ${address}: ${(err as Error).message}\n` +
            '  on Temporal Cloud, add them with `tcld namespace search-attributes add` instead',
        );
      } finally {
        await connection.close();
      }
    });
}
