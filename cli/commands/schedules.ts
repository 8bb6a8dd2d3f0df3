import type { Command } from 'commander';
import {
  MANAGED_BY_MEMO,
  syncSchedules,
  type ComparableSchedule,
  type ScheduleChange,
} from '../../client/schedules.js';
import { baseTaskQueue, clientFor, globals, stackConfig } from '../context.js';

const MARKS = { create: '+', update: '~', delete: '-', unchanged: '=' } as const;

/** One line describing a schedule: what it starts, when, and whether it is paused. */
function describeSchedule(s: ComparableSchedule): string {
  const when = [...s.intervals.map((i) => `every ${i}`), ...s.cron.map((c) => `cron "${c}"`)].join(', ');
  const tz = s.timezone ? ` ${s.timezone}` : '';
  return `${s.workflowType} on ${s.taskQueue}, ${when}${tz}, overlap ${s.overlap}${s.paused ? ', paused' : ''}`;
}

/** The readable plan: one line per schedule, and for updates one indented line per changed field. */
export function formatSchedulePlan(plan: readonly ScheduleChange[]): string[] {
  const width = Math.max(0, ...plan.map((c) => c.id.length));
  const lines: string[] = [];
  for (const change of plan) {
    const subject = change.desired ?? change.existing;
    const head = `${MARKS[change.action]} ${change.id.padEnd(width)}  ${change.action.padEnd(9)}`;
    lines.push(subject && change.action !== 'update' ? `${head}  ${describeSchedule(subject)}` : head);
    for (const field of change.changes) lines.push(`      ${field}`);
  }
  return lines;
}

/** `3 to create, 1 to update, …`, or in a real run `created 3, updated 1, …`. */
export function formatPlanSummary(plan: readonly ScheduleChange[], dryRun: boolean): string {
  const count = (action: ScheduleChange['action']) => plan.filter((c) => c.action === action).length;
  const [create, update, del, unchanged] = [count('create'), count('update'), count('delete'), count('unchanged')];
  return dryRun
    ? `dry run: ${create} to create, ${update} to update, ${del} to delete, ${unchanged} unchanged; nothing was changed`
    : `${create} created, ${update} updated, ${del} deleted, ${unchanged} unchanged`;
}

/** Registers `sluice schedules sync` and `sluice schedules ls`. */
export function registerSchedules(program: Command): void {
  const schedules = program.command('schedules').description('keep Temporal schedules in step with temporal-dev.yml');

  schedules
    .command('sync')
    .description("create, update and delete schedules so the cluster's match temporal-dev.yml; prints the diff")
    .option('--dry-run', 'print the diff without changing anything')
    .action(async (opts: { dryRun?: boolean }, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const base = baseTaskQueue(config);
      const dryRun = opts.dryRun === true;
      const { client, connection, namespace, address } = await clientFor(g, config);
      try {
        const plan = await syncSchedules(client, config, { baseTaskQueue: base, dryRun });
        console.log(`schedules in namespace "${namespace}" at ${address} (task queue ${base}):`);
        for (const line of formatSchedulePlan(plan)) console.log(line);
        if (plan.length === 0) console.log('  (no schedules in temporal-dev.yml and none managed by sluice)');
        console.log(formatPlanSummary(plan, dryRun));
      } finally {
        await connection.close();
      }
    });

  schedules
    .command('ls')
    .description('list the schedules in the namespace (managed: created by `schedules sync`)')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = globals(cmd);
      const config = stackConfig(g);
      const { client, connection } = await clientFor(g, config);
      try {
        let n = 0;
        console.log(
          `${'SCHEDULE ID'.padEnd(40)} ${'WORKFLOW'.padEnd(18)} ${'STATE'.padEnd(8)} ${'MANAGED'.padEnd(8)} NEXT RUN`,
        );
        for await (const s of client.schedule.list()) {
          const managed = s.memo?.managedBy === MANAGED_BY_MEMO.managedBy ? 'yes' : 'no';
          const next = s.info.nextActionTimes[0]?.toISOString() ?? '-';
          const state = s.state.paused ? 'paused' : 'active';
          console.log(
            `${s.scheduleId.padEnd(40)} ${(s.action?.workflowType ?? '?').padEnd(18)} ${state.padEnd(8)} ${managed.padEnd(8)} ${next}`,
          );
          n += 1;
        }
        if (n === 0) console.log('(no schedules; `sluice schedules sync` creates those in temporal-dev.yml)');
      } finally {
        await connection.close();
      }
    });
}
