import type { Command } from 'commander';
import { createCodecFromEnv, dataConverterFor } from '../client/codec.js';
import { connectClient, type ConnectionOverrides } from '../client/connection.js';
import { sluiceEnv } from '../lib/config.js';
import { loadStackConfig } from '../lib/stack/stack-config-file.js';
import type { StackConfig } from '../schemas/stack-config.js';

/** Global options every command accepts. */
export interface GlobalOptions {
  address?: string;
  namespace?: string;
  profile?: string;
  config?: string;
}

/** Adds the global options to the root program. */
export function addGlobalOptions(program: Command): Command {
  return program
    .option(
      '--address <host:port>',
      'Temporal frontend address (default: TEMPORAL_ADDRESS, the profile, localhost:7233)',
    )
    .option('--namespace <name>', 'Temporal namespace (default: TEMPORAL_NAMESPACE, the profile, temporal-dev.yml)')
    .option('--profile <name>', 'profile in temporal.toml (default: TEMPORAL_PROFILE or "default")')
    .option('--config <file>', 'stack description (default: SLUICE_CONFIG or ./temporal-dev.yml)');
}

/** The root program's options, from any subcommand. */
export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** Reads temporal-dev.yml (or --config). */
export function stackConfig(opts: GlobalOptions): StackConfig {
  return loadStackConfig(opts.config ?? sluiceEnv.configPath);
}

/** Connection overrides from the global options; the namespace falls back to temporal-dev.yml's. */
export function connectionOverrides(opts: GlobalOptions, config?: StackConfig): ConnectionOverrides {
  const namespace = opts.namespace ?? (process.env.TEMPORAL_NAMESPACE ? undefined : config?.server.namespace);
  return { address: opts.address, namespace, profile: opts.profile };
}

/** Connects a client with the codec from the environment. */
export async function clientFor(opts: GlobalOptions, config?: StackConfig) {
  return connectClient(connectionOverrides(opts, config), dataConverterFor(createCodecFromEnv(sluiceEnv)));
}

/** The base task queue: SLUICE_TASK_QUEUE, then temporal-dev.yml. */
export function baseTaskQueue(config: StackConfig): string {
  return sluiceEnv.taskQueueOverride ?? config.workers.cpu.taskQueue;
}
