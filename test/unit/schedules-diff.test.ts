import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ScheduleDescription } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { formatPlanSummary, formatSchedulePlan } from '../../cli/commands/schedules.js';
import { UnknownPipelineError } from '../../client/pipelines.js';
import {
  canonicalJson,
  comparableFromDescription,
  comparableFromOptions,
  desiredSchedule,
  diffSchedules,
  durationMs,
  formatDurationMs,
  scheduleUpdate,
  type DescribedSchedule,
  type DesiredSchedule,
  type ExistingSchedule,
} from '../../client/schedules.js';
import { REPO_ROOT } from '../../lib/config.js';
import { loadStackConfig } from '../../lib/stack/stack-config-file.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { ScheduleConfig } from '../../schemas/stack-config.js';
import { InputValidationError } from '../../schemas/validation.js';

const BASE = 'unit-base';

function schedule(fields: Record<string, unknown>): ScheduleConfig {
  return ScheduleConfig.parse({
    id: 'fan-out-nightly',
    pipeline: 'activity-fan-out',
    spec: { every: ['1h'] },
    input: { count: 2, mode: 'parallel' },
    ...fields,
  });
}

/**
 * What `describe()` returns for a schedule created from `desired`, in the shapes the server and SDK use (checked
 * against a real server): durations as milliseconds, no offset when it is 0, cron compiled into a calendar that keeps
 * the comment, empty strings for unset fields, and the schedule memo.
 */
function describedAsServerWould(desired: DesiredSchedule, memo: Record<string, unknown> = { managedBy: 'sluice' }) {
  const { spec, action, policies, state } = desired.options;
  const ms = (d: number | string) => (typeof d === 'number' ? d : durationMs(d));
  const described: DescribedSchedule = {
    scheduleId: desired.id,
    spec: {
      calendars: (spec.cronExpressions ?? []).map((c) => ({
        second: [{ start: 0, end: 0, step: 1 }],
        minute: [{ start: 0, end: 0, step: 1 }],
        hour: [{ start: 0, end: 23, step: 1 }],
        dayOfMonth: [{ start: 1, end: 31, step: 1 }],
        month: [{ start: 'JANUARY', end: 'DECEMBER', step: 1 }],
        year: [],
        dayOfWeek: [{ start: 'SUNDAY', end: 'SATURDAY', step: 1 }],
        comment: (c.split('#')[1] ?? '').trim(),
      })),
      intervals: (spec.intervals ?? []).map((i) => ({ every: ms(i.every) }) as { every: number; offset: number }),
      skip: [],
      timezone: spec.timezone ?? '',
      jitter: spec.jitter === undefined ? undefined : ms(spec.jitter),
    },
    action: {
      type: 'startWorkflow',
      workflowId: action.workflowId ?? '',
      workflowType: String(action.workflowType),
      taskQueue: action.taskQueue,
      // The data converter round trip: a fresh object, keys in whatever order.
      args: JSON.parse(JSON.stringify(action.args ?? [])) as unknown[],
      searchAttributes: {},
      typedSearchAttributes: new TypedSearchAttributes([{ key: SearchAttributes.pipeline, value: desired.pipeline }]),
      staticSummary: action.staticSummary,
    },
    memo,
    policies: { overlap: policies?.overlap ?? 'SKIP' },
    state: { paused: state?.paused ?? false, note: state?.note ?? '' },
  };
  return described;
}

function existingFrom(config: ScheduleConfig, memo?: Record<string, unknown>): ExistingSchedule {
  return comparableFromDescription(describedAsServerWould(desiredSchedule(config, BASE), memo));
}

describe('durations', () => {
  it('parses config durations and prints the shortest exact form', () => {
    expect(durationMs('15m')).toBe(900_000);
    expect(durationMs('2s')).toBe(2000);
    expect(durationMs('1d')).toBe(86_400_000);
    expect(formatDurationMs(3_600_000)).toBe('1h');
    expect(formatDurationMs(90_000)).toBe('90s');
    expect(formatDurationMs(1500)).toBe('1500ms');
    expect(() => durationMs('soon')).toThrow(/"soon" is not a duration/);
  });

  it('canonical JSON ignores key order', () => {
    expect(canonicalJson([{ b: 1, a: { d: 2, c: 3 } }])).toBe(canonicalJson([{ a: { c: 3, d: 2 }, b: 1 }]));
  });
});

describe('desiredSchedule', () => {
  it('validates the input with the pipeline schema and builds the SDK options', () => {
    const d = desiredSchedule(
      schedule({ spec: { every: ['2s'], cron: ['0  3 * * *'], timezone: 'Europe/Berlin', jitter: '5s' }, note: 'n' }),
      BASE,
    );
    expect(d.input).toEqual({ count: 2, mode: 'parallel' });
    expect(d.options.scheduleId).toBe('fan-out-nightly');
    expect(d.options.spec).toEqual({
      intervals: [{ every: 2000 }],
      cronExpressions: ['0 3 * * * # cron: 0 3 * * *'],
      timezone: 'Europe/Berlin',
      jitter: 5000,
    });
    expect(d.options.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'activityFanOut',
      taskQueue: BASE,
      args: [{ count: 2, mode: 'parallel' }],
      workflowId: 'fan-out-nightly',
      staticSummary: '2 no-op activities, parallel',
    });
    expect(d.options.action.typedSearchAttributes).toEqual([
      { key: SearchAttributes.pipeline, value: 'activity-fan-out' },
    ]);
    expect(d.options.policies).toEqual({ overlap: 'SKIP' });
    expect(d.options.state).toEqual({ paused: false, note: 'n' });
    expect(d.options.memo).toEqual({ managedBy: 'sluice', stackQueue: BASE });
  });

  it('runs an entry with `queue` on its dedicated CPU queue, and refuses it for a GPU pipeline', () => {
    const d = desiredSchedule(schedule({ queue: 'maintenance' }), BASE);
    expect(d.options.action.taskQueue).toBe(`${BASE}-maintenance`);
    expect(d.options.memo).toEqual({ managedBy: 'sluice', stackQueue: BASE });
    expect(() => desiredSchedule(schedule({ pipeline: 'pool-check', input: {}, queue: 'maintenance' }), BASE)).toThrow(
      /pipeline "pool-check" uses the GPU pool.*cannot run on the dedicated queue "maintenance"/,
    );
  });

  it('applies schema defaults to the input', () => {
    const d = desiredSchedule(schedule({ pipeline: 'pool-check', input: { cpuActivities: 4 } }), BASE);
    expect(d.input).toMatchObject({ cpuActivities: 4, gpuSteps: 4, unitsPerActivity: 5 });
    expect(d.options.action.workflowType).toBe('poolCheck');
  });

  it("accepts every schedule in the repository's temporal-dev.yml", () => {
    const config = loadStackConfig(path.join(REPO_ROOT, 'temporal-dev.yml'));
    expect(config.schedules.length).toBeGreaterThan(0);
    for (const s of config.schedules) expect(desiredSchedule(s, BASE).id).toBe(s.id);
  });

  it('names an unknown pipeline', () => {
    expect(() => desiredSchedule(schedule({ pipeline: 'nope' }), BASE)).toThrow(UnknownPipelineError);
  });

  it('names the bad input field', () => {
    let error: unknown;
    try {
      desiredSchedule(schedule({ input: { count: 0, mode: 'parallel' } }), BASE);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InputValidationError);
    expect((error as Error).message).toMatch(/input of schedule "fan-out-nightly" is invalid[\s\S]*count/);
  });

  it('refuses spec entries it could not keep in sync', () => {
    expect(() => desiredSchedule(schedule({ spec: { every: ['1500ms'] } }), BASE)).toThrow(/whole number of seconds/);
    expect(() => desiredSchedule(schedule({ spec: { cron: ['0 * * * * # hourly'] } }), BASE)).toThrow(/comment/);
    expect(() => desiredSchedule(schedule({ spec: { cron: ['CRON_TZ=UTC 0 * * * *'] } }), BASE)).toThrow(
      /spec\.timezone/,
    );
    expect(() => desiredSchedule(schedule({ spec: { cron: ['@every 5m'] } }), BASE)).toThrow(/spec\.every/);
  });
});

describe('comparable forms', () => {
  it('what describe() returns after create compares equal to what was sent', () => {
    const config = schedule({
      spec: { every: ['1h', '90s'], cron: ['0 3 * * *', '@daily'], timezone: 'UTC', jitter: '1m' },
      overlap: 'BUFFER_ONE',
      paused: true,
      note: 'nightly',
    });
    const desired = desiredSchedule(config, BASE);
    const existing = comparableFromDescription(describedAsServerWould(desired));
    const { managed, ...withoutManaged } = existing;
    expect(managed).toBe(true);
    expect(withoutManaged).toEqual(comparableFromOptions(desired));
    expect(existing.intervals).toEqual(['1h', '90s']);
    expect(existing.cron).toEqual(['0 3 * * *', '@daily']);
  });

  it('shows a calendar that sync did not create so that it differs', () => {
    const desired = desiredSchedule(schedule({ spec: { cron: ['0 3 * * *'] } }), BASE);
    const described = describedAsServerWould(desired);
    const calendar = described.spec.calendars?.[0];
    if (calendar) calendar.comment = 'made in the UI';
    const [change] = diffSchedules([comparableFromOptions(desired)], [comparableFromDescription(described)]);
    expect(change?.action).toBe('update');
    expect(change?.changes[0]).toMatch(/^cron: \[calendar \{.*\}\] → \[0 3 \* \* \*\]$/);
  });

  it('reads an offset and the absence of a memo', () => {
    const described = describedAsServerWould(desiredSchedule(schedule({}), BASE), {});
    described.spec.intervals = [{ every: 3_600_000, offset: 300_000 }];
    const existing = comparableFromDescription(described);
    expect(existing.intervals).toEqual(['1h+5m']);
    expect(existing.managed).toBe(false);
  });
});

describe('diffSchedules', () => {
  const a = schedule({ id: 'a' });
  const b = schedule({ id: 'b', spec: { cron: ['0 * * * *'] } });
  const want = (...configs: ScheduleConfig[]) => configs.map((c) => comparableFromOptions(desiredSchedule(c, BASE)));

  it('creates what is missing and leaves what matches', () => {
    const plan = diffSchedules(want(a, b), [existingFrom(b)]);
    expect(plan.map((c) => [c.id, c.action, c.changes])).toEqual([
      ['a', 'create', []],
      ['b', 'unchanged', []],
    ]);
  });

  it('lists each changed field of an update', () => {
    const changed = schedule({ id: 'a', input: { count: 5, mode: 'parallel' }, overlap: 'ALLOW_ALL', paused: true });
    const [change] = diffSchedules(want(changed), [existingFrom(a)]);
    expect(change?.action).toBe('update');
    expect(change?.changes).toEqual([
      'args: [{"count":2,"mode":"parallel"}] → [{"count":5,"mode":"parallel"}]',
      'summary: 2 no-op activities, parallel → 5 no-op activities, parallel',
      'overlap: SKIP → ALLOW_ALL',
      'paused: false → true',
    ]);
  });

  it('sees spec changes: interval, cron, time zone, jitter', () => {
    const changed = schedule({
      id: 'a',
      spec: { every: ['2h'], cron: ['5 * * * *'], timezone: 'Asia/Tokyo', jitter: '10s' },
    });
    const [change] = diffSchedules(want(changed), [existingFrom(a)]);
    expect(change?.changes).toEqual([
      'intervals: [1h] → [2h]',
      'cron: [] → [5 * * * *]',
      'timezone: (none) → Asia/Tokyo',
      'jitter: 0s → 10s',
    ]);
  });

  it('sees a moved task queue', () => {
    const existing = { ...existingFrom(a), taskQueue: 'elsewhere' };
    expect(diffSchedules(want(a), [existing])[0]?.changes).toEqual([`taskQueue: elsewhere → ${BASE}`]);
  });

  it('ignores interval order', () => {
    const config = schedule({ id: 'a', spec: { every: ['1h', '2h'] } });
    const existing = { ...existingFrom(config), intervals: ['2h', '1h'].sort() };
    expect(diffSchedules(want(schedule({ id: 'a', spec: { every: ['2h', '1h'] } })), [existing])[0]?.action).toBe(
      'unchanged',
    );
  });

  it('deletes only schedules that sync manages', () => {
    const managed = existingFrom(schedule({ id: 'gone' }));
    const byHand = existingFrom(schedule({ id: 'by-hand' }), { owner: 'someone' });
    const plan = diffSchedules(want(a), [managed, byHand, existingFrom(a)]);
    expect(plan.map((c) => [c.id, c.action])).toEqual([
      ['a', 'unchanged'],
      ['gone', 'delete'],
    ]);
    expect(plan[1]?.existing?.id).toBe('gone');
  });

  it('updates a schedule the config names even when sync did not create it', () => {
    const byHand = { ...existingFrom(a, {}), paused: true };
    expect(diffSchedules(want(a), [byHand])[0]?.action).toBe('update');
  });

  it("with a task queue scope, deletes this stack's schedules on dedicated queues by their memo", () => {
    const config = schedule({ id: 'mine-dedicated', queue: 'maintenance' });
    const mine = existingFrom(config, desiredSchedule(config, BASE).options.memo);
    expect(mine).toMatchObject({ taskQueue: `${BASE}-maintenance`, stackQueue: BASE });
    const theirs = { ...mine, id: 'theirs-dedicated', stackQueue: 'other-base' };
    const plan = diffSchedules([], [theirs, mine], { taskQueue: BASE });
    expect(plan.map((c) => [c.id, c.action])).toEqual([['mine-dedicated', 'delete']]);
    // One created before the memo carried stackQueue, then moved to a dedicated queue: known by the stack's queues.
    const older = existingFrom(schedule({ id: 'older-moved', queue: 'maintenance' }));
    expect(older.stackQueue).toBeUndefined();
    expect(diffSchedules([], [older], { taskQueue: BASE }).map((c) => c.action)).toEqual([]);
    expect(
      diffSchedules([], [older], { taskQueue: BASE, dedicatedTaskQueues: [`${BASE}-maintenance`] }).map(
        (c) => c.action,
      ),
    ).toEqual(['delete']);
  });

  it('with a task queue scope, leaves managed schedules of other stacks alone', () => {
    const mine = existingFrom(schedule({ id: 'mine-gone' }));
    const theirs = { ...existingFrom(schedule({ id: 'theirs' })), taskQueue: 'other-base' };
    const plan = diffSchedules([], [theirs, mine], { taskQueue: BASE });
    expect(plan.map((c) => [c.id, c.action])).toEqual([['mine-gone', 'delete']]);
    expect(diffSchedules([], [theirs, mine]).map((c) => c.id)).toEqual(['mine-gone', 'theirs']);
  });
});

describe('scheduleUpdate', () => {
  it('replaces spec, action, overlap and state without touching the previous description', () => {
    const desired = desiredSchedule(schedule({ overlap: 'BUFFER_ALL', paused: true, note: 'new' }), BASE);
    const previous = {
      ...describedAsServerWould(desiredSchedule(schedule({ spec: { cron: ['0 * * * *'] } }), BASE)),
      policies: { overlap: 'SKIP', catchupWindow: 120_000, pauseOnFailure: true },
      state: { paused: false, note: 'old', remainingActions: 3 },
      info: {},
    } as unknown as ScheduleDescription;
    const snapshot = structuredClone({ spec: previous.spec, policies: previous.policies, state: previous.state });
    const first = scheduleUpdate(desired, previous);
    const second = scheduleUpdate(desired, previous);
    expect(second).toEqual(first);
    expect({ spec: previous.spec, policies: previous.policies, state: previous.state }).toEqual(snapshot);
    expect(first.spec).toBe(desired.options.spec);
    expect(first.action).toBe(desired.options.action);
    expect(first.policies).toEqual({ overlap: 'BUFFER_ALL', catchupWindow: 120_000, pauseOnFailure: true });
    expect(first.state).toEqual({ paused: true, note: 'new' });
  });
});

describe('plan printing', () => {
  it('marks each action and lists update fields', () => {
    const a = schedule({ id: 'a' });
    const plan = diffSchedules(
      [a, schedule({ id: 'bb', overlap: 'ALLOW_ALL' }), schedule({ id: 'c' })].map((c) =>
        comparableFromOptions(desiredSchedule(c, BASE)),
      ),
      [
        existingFrom(schedule({ id: 'bb' })),
        existingFrom(schedule({ id: 'c' })),
        existingFrom(schedule({ id: 'old' })),
      ],
    );
    const lines = formatSchedulePlan(plan);
    expect(lines[0]).toMatch(/^\+ a +create +activityFanOut on unit-base, every 1h, overlap SKIP$/);
    expect(lines[1]).toMatch(/^~ bb +update/);
    expect(lines[2]).toBe('      overlap: SKIP → ALLOW_ALL');
    expect(lines[3]).toMatch(/^= c +unchanged/);
    expect(lines[4]).toMatch(/^- old +delete/);
    expect(formatPlanSummary(plan, true)).toBe(
      'dry run: 1 to create, 1 to update, 1 to delete, 1 unchanged; nothing was changed',
    );
    expect(formatPlanSummary(plan, false)).toBe('1 created, 1 updated, 1 deleted, 1 unchanged');
  });
});
