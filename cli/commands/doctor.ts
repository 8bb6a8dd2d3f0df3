import { CommanderError, type Command } from 'commander';
import { resolveConnection } from '../../client/connection.js';
import { runDoctor, type DoctorCheck } from '../../client/doctor.js';
import { baseTaskQueue, connectionOverrides, globals, stackConfig } from '../context.js';
import { sluiceEnv } from '../../lib/config.js';

const MARKS = { ok: '✓', warn: '!', fail: '✗' } as const;

/** The printed report: one `✓`/`!`/`✗` line per check, its hint indented under it. */
export function formatDoctorReport(checks: readonly DoctorCheck[]): string[] {
  const width = Math.max(0, ...checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${MARKS[c.level]} ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.hint) lines.push(`  ${' '.repeat(width)}  → ${c.hint}`);
  }
  return lines;
}

/** Registers `sluice doctor`. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check the server, namespace, search attributes, worker pollers and ONNX Runtime; exits 1 on a failure',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const { connectionOptions, namespace } = resolveConnection(connectionOverrides(g, config));
      const checks = await runDoctor({
        connectionOptions,
        namespace,
        baseTaskQueue: baseTaskQueue(config),
        gpuHosts: config.workers.gpu.hosts.map((h) => h.name),
        dedicatedQueues: config.workers.cpu.dedicated.map((d) => d.name),
        inferenceProvider: sluiceEnv.inference.provider,
      });
      for (const line of formatDoctorReport(checks)) console.log(line);
      const failed = checks.filter((c) => !c.ok).length;
      const warned = checks.filter((c) => c.level === 'warn').length;
      console.log(
        failed > 0
          ? `${failed} of ${checks.length} checks failed${warned > 0 ? `, ${warned} warning${warned === 1 ? '' : 's'}` : ''}`
          : `all ${checks.length} checks passed${warned > 0 ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}`,
      );
      // main.ts exits with a CommanderError's code and prints nothing more: the report above is the message.
      if (failed > 0) throw new CommanderError(1, 'sluice.doctor.failed', `${failed} doctor checks failed`);
    });
}
