import { Command, CommanderError } from 'commander';
import { addGlobalOptions } from './context.js';
import { registerBundle } from './commands/bundle.js';
import { registerCdc } from './commands/cdc.js';
import { registerCodecServer } from './commands/codec-server.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerLs } from './commands/ls.js';
import { registerSchedules } from './commands/schedules.js';
import { registerSetup } from './commands/setup.js';
import { registerSpark } from './commands/spark.js';
import { registerStart } from './commands/start.js';
import { registerStatus } from './commands/status.js';
import { registerUp } from './commands/up.js';
import { registerWorker } from './commands/worker.js';
import { registerQuota } from './commands/quota.js';
import { registerIndex } from './commands/index-cmd.js';
import { registerCollections } from './commands/collections-cmd.js';
import { registerVlmStandIn } from './commands/vlm-stand-in-cmd.js';

/** Builds the `sluice` program; exported so tests can run commands in-process. */
export function buildProgram(): Command {
  const program = addGlobalOptions(
    new Command('sluice').description('Sluice: durable data and ML platform jobs on Temporal').showHelpAfterError(),
  );
  for (const register of [
    registerUp,
    registerDemo,
    registerWorker,
    registerStart,
    registerStatus,
    registerLs,
    registerSchedules,
    registerDoctor,
    registerSetup,
    registerCodecServer,
    registerBundle,
    registerSpark,
    registerQuota,
    registerCdc,
    registerIndex,
    registerCollections,
    registerVlmStandIn,
  ]) {
    register(program);
  }
  return program;
}

async function run(): Promise<void> {
  await buildProgram().parseAsync(process.argv);
}

run().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`sluice: ${err instanceof Error ? err.message : String(err)}`);
  if (process.env.SLUICE_DEBUG && err instanceof Error) console.error(err.stack);
  process.exit(1);
});
