import type { Command } from 'commander';
import { runWorkerProcess } from '../../workers/run-worker.js';
import { connectionOverrides, globals, stackConfig } from '../context.js';

interface WorkerCommandOptions {
  pool: string;
  host?: string;
  bundle?: string;
  metricsPort?: string;
  slots?: string;
  queue?: string;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run one worker process of a pool until Ctrl-C (graceful shutdown)')
    .requiredOption('--pool <pool>', 'cpu | gpu')
    .option('--host <name>', 'GPU host name (gpu pool); polls sluice-gpu and sluice-gpu@<name>')
    .option(
      '--bundle <file>',
      'prebuilt workflow bundle (cpu pool; default SLUICE_WORKFLOW_BUNDLE, else bundle at start)',
    )
    .option('--metrics-port <port>', 'Prometheus port, or "off" (default from temporal-dev.yml)')
    .option('--slots <n>', 'gpu pool: concurrent GPU activities (default SLUICE_GPU_SLOTS, else temporal-dev.yml)')
    .option('--queue <name>', 'cpu pool: poll the dedicated queue <base>-<name> (workers.cpu.dedicated) instead')
    .action(async (opts: WorkerCommandOptions, cmd: Command) => {
      if (opts.pool !== 'cpu' && opts.pool !== 'gpu')
        throw new Error(`--pool must be "cpu" or "gpu", not "${opts.pool}"`);
      const g = globals(cmd);
      const config = stackConfig(g);
      let metricsPort: number | null | undefined;
      if (opts.metricsPort !== undefined) {
        metricsPort = opts.metricsPort === 'off' ? null : Number(opts.metricsPort);
        if (metricsPort !== null && !(Number.isInteger(metricsPort) && metricsPort > 0 && metricsPort < 65536)) {
          throw new Error(`--metrics-port must be a port number or "off", not "${opts.metricsPort}"`);
        }
      }
      if (opts.queue !== undefined && opts.pool !== 'cpu') throw new Error('--queue is for the cpu pool only');
      const dedicated = config.workers.cpu.dedicated.map((d) => d.name);
      if (opts.queue !== undefined && !dedicated.includes(opts.queue)) {
        throw new Error(
          `--queue ${opts.queue}: not declared in temporal-dev.yml workers.cpu.dedicated ` +
            `(${dedicated.length ? dedicated.join(', ') : 'none declared'}); no schedule would run there`,
        );
      }
      const slots = opts.slots === undefined ? undefined : Number(opts.slots);
      if (slots !== undefined && !(Number.isInteger(slots) && slots >= 1)) {
        throw new Error(`--slots must be an integer ≥ 1, not "${opts.slots}"`);
      }
      await runWorkerProcess({
        pool: opts.pool,
        host: opts.host,
        config,
        connection: connectionOverrides(g, config),
        bundlePath: opts.bundle,
        metricsPort,
        ...(slots !== undefined ? { slots } : {}),
        ...(opts.queue !== undefined ? { dedicatedQueue: opts.queue } : {}),
      });
    });
}
