import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleOptions,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import { TypedSearchAttributes, type Workflow } from '@temporalio/common';
import { SearchAttributes } from '../schemas/search-attributes.js';
import type { ScheduleConfig, StackConfig } from '../schemas/stack-config.js';
import { dedicatedCpuQueue, taskQueues } from '../schemas/task-queues.js';
import { parseOrThrow } from '../schemas/validation.js';
import { getPipeline } from './pipelines.js';

/**
 * `sluice schedules sync`: makes the cluster's schedules match `temporal-dev.yml`. The flow is
 * config → {@link desiredSchedule} → {@link comparableFromOptions}, cluster → describe → {@link comparableFromDescription},
 * then the pure {@link diffSchedules} decides, and {@link syncSchedules} applies the plan.
 *
 * Both sides are reduced to one normalized, comparable form because the server hands back a different shape than it
 * was given: durations come back as milliseconds, an offset of 0 disappears, and cron strings are compiled into
 * structured calendars. To compare cron entries anyway, each one is sent with a comment holding the expression
 * (`0 * * * * # cron: 0 * * * *`); the server keeps that comment on the calendar it compiles.
 */

/** The memo key and value that mark a schedule as created by `sluice schedules sync`. */
export const MANAGED_BY_MEMO = { managedBy: 'sluice' } as const;

/** Prefix of the calendar comment that carries a cron expression through the server's compilation. */
const CRON_COMMENT_PREFIX = 'cron: ';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;

/** Milliseconds of a config duration such as `"15m"`; the stack schema has already checked the syntax. */
export function durationMs(text: string): number {
  const match = DURATION.exec(text);
  if (!match) throw new TypeError(`"${text}" is not a duration such as "500ms", "30s", "5m", "1h" or "1d"`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** The shortest exact spelling of a duration: 3600000 → `1h`, 90000 → `90s`. */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/** JSON with object keys sorted, so that two equal values always print the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** A cron expression with runs of whitespace collapsed, as it is compared and stored in the calendar comment. */
function normalizeCron(expression: string): string {
  return expression.trim().split(/\s+/).join(' ');
}

/** A schedule as `temporal-dev.yml` wants it: the validated pipeline input and the SDK options to create it with. */
export interface DesiredSchedule {
  id: string;
  pipeline: string;
  /** The pipeline input after its schema (defaults applied); the schedule passes it as the workflow's only argument. */
  input: unknown;
  options: ScheduleOptions<ScheduleOptionsStartWorkflowAction<Workflow>>;
}

/**
 * Turns one schedule entry of `temporal-dev.yml` into {@link DesiredSchedule}. The input is validated with the
 * pipeline's schema here, before anything reaches the cluster. Throws `UnknownPipelineError` for an unknown
 * pipeline, `InputValidationError` naming each bad field, and `Error` for spec entries Sluice cannot keep in sync.
 *
 * @param baseTaskQueue the stack's base task queue; the workflow runs on its `cpu` queue, or on the dedicated queue
 *   the entry names (`queue`).
 */
export function desiredSchedule(config: ScheduleConfig, baseTaskQueue: string): DesiredSchedule {
  const pipeline = getPipeline(config.pipeline);
  const input: unknown = parseOrThrow(pipeline.input, config.input, `input of schedule "${config.id}"`);
  const where = `schedule "${config.id}" in temporal-dev.yml`;
  if (config.queue !== undefined && pipeline.usesGpuPool) {
    throw new Error(
      `${where}: pipeline "${pipeline.name}" uses the GPU pool, whose queues derive from the workflow's queue, so it ` +
        `cannot run on the dedicated queue "${config.queue}"; remove \`queue\``,
    );
  }
  const taskQueue =
    config.queue === undefined ? taskQueues(baseTaskQueue).cpu : dedicatedCpuQueue(baseTaskQueue, config.queue);

  const intervals = (config.spec.every ?? []).map((every) => {
    const ms = durationMs(every);
    // The server rounds intervals to whole seconds; refusing the rest keeps the comparison exact.
    if (ms < 1000 || ms % 1000 !== 0) {
      throw new Error(`${where}: spec.every "${every}" is not a whole number of seconds; use e.g. "1s" or "90s"`);
    }
    return { every: ms };
  });
  const cronExpressions = (config.spec.cron ?? []).map((raw) => {
    const cron = normalizeCron(raw);
    if (cron.includes('#')) {
      throw new Error(
        `${where}: cron "${raw}" has a "#" comment; remove it (sync stores the expression as the comment)`,
      );
    }
    if (/^(CRON_)?TZ=/.test(cron)) {
      throw new Error(`${where}: cron "${raw}" sets its own time zone; set spec.timezone instead`);
    }
    if (cron.startsWith('@every')) {
      throw new Error(`${where}: cron "${raw}" is an interval; write it under spec.every instead`);
    }
    return `${cron} # ${CRON_COMMENT_PREFIX}${cron}`;
  });

  return {
    id: config.id,
    pipeline: pipeline.name,
    input,
    options: {
      scheduleId: config.id,
      spec: {
        intervals,
        cronExpressions,
        timezone: config.spec.timezone,
        jitter: config.spec.jitter === undefined ? undefined : durationMs(config.spec.jitter),
      },
      action: {
        type: 'startWorkflow',
        workflowType: pipeline.workflowType,
        taskQueue,
        args: [input],
        // A prefix: the server appends the scheduled time, so every run gets its own id.
        workflowId: config.id,
        staticSummary: pipeline.summary(input),
        typedSearchAttributes: [{ key: SearchAttributes.pipeline, value: pipeline.name }],
      },
      policies: { overlap: config.overlap },
      state: { paused: config.paused, note: config.note },
      // The base queue too: a schedule on a dedicated queue still belongs to this stack when its entry is removed.
      memo: { ...MANAGED_BY_MEMO, stackQueue: taskQueues(baseTaskQueue).cpu },
    },
  };
}

/** The fields sync compares, each normalized so that what was sent and what `describe()` returns are equal. */
export interface ComparableSchedule {
  id: string;
  /** Sorted interval durations, e.g. `["1h"]`; an offset shows as `1h+5m`. */
  intervals: string[];
  /** Sorted cron expressions with whitespace collapsed. A calendar sync did not create shows as `calendar {…}`. */
  cron: string[];
  /** IANA zone name; empty means the server default (UTC). */
  timezone: string;
  /** Jitter duration, `0s` when none. */
  jitter: string;
  workflowType: string;
  taskQueue: string;
  workflowId: string;
  /** The workflow arguments as canonical JSON. */
  args: string;
  /** The `SluicePipeline` search attribute of started runs. */
  pipeline: string;
  summary: string;
  overlap: string;
  paused: boolean;
  note: string;
}

/** A schedule found on the cluster. */
export interface ExistingSchedule extends ComparableSchedule {
  /** True when the schedule's memo says `managedBy: sluice`; only those are ever deleted by sync. */
  managed: boolean;
  /** The base task queue of the stack whose sync created it (memo `stackQueue`; absent on older schedules). */
  stackQueue?: string;
}

function intervalLabel(every: number, offset: number | undefined): string {
  return offset ? `${formatDurationMs(every)}+${formatDurationMs(offset)}` : formatDurationMs(every);
}

function actionPipeline(attributes: ScheduleOptionsStartWorkflowAction<Workflow>['typedSearchAttributes']): string {
  if (attributes instanceof TypedSearchAttributes) return attributes.get(SearchAttributes.pipeline) ?? '';
  const pair = attributes?.find((p) => p.key.name === SearchAttributes.pipeline.name);
  return typeof pair?.value === 'string' ? pair.value : '';
}

function sorted(values: string[]): string[] {
  return [...values].sort();
}

/** The comparable form of what sync would send for a {@link DesiredSchedule}. */
export function comparableFromOptions(desired: DesiredSchedule): ComparableSchedule {
  const { spec, action, policies, state } = desired.options;
  return {
    id: desired.id,
    intervals: sorted(
      (spec.intervals ?? []).map((i) => intervalLabel(toMs(i.every), i.offset === undefined ? 0 : toMs(i.offset))),
    ),
    cron: sorted((spec.cronExpressions ?? []).map((c) => normalizeCron(c.split('#')[0] ?? c))),
    timezone: spec.timezone ?? '',
    jitter: formatDurationMs(spec.jitter === undefined ? 0 : toMs(spec.jitter)),
    workflowType: typeof action.workflowType === 'string' ? action.workflowType : action.workflowType.name,
    taskQueue: action.taskQueue,
    workflowId: action.workflowId ?? `${desired.id}-workflow`,
    args: canonicalJson(action.args ?? []),
    pipeline: actionPipeline(action.typedSearchAttributes),
    summary: action.staticSummary ?? '',
    overlap: policies?.overlap ?? 'SKIP',
    paused: state?.paused ?? false,
    note: state?.note ?? '',
  };
}

function toMs(duration: number | string): number {
  return typeof duration === 'number' ? duration : durationMs(duration);
}

/** The parts of a `ScheduleDescription` that {@link comparableFromDescription} reads; tests can build one by hand. */
export type DescribedSchedule = Pick<ScheduleDescription, 'scheduleId' | 'spec' | 'action' | 'memo'> & {
  policies: Pick<ScheduleDescription['policies'], 'overlap'>;
  state: Pick<ScheduleDescription['state'], 'paused' | 'note'>;
};

/** The comparable form of a schedule as `describe()` returns it. */
export function comparableFromDescription(d: DescribedSchedule): ExistingSchedule {
  // The server compiles cron strings into calendars; the comment sync attached says which expression it was.
  const cron = (d.spec.calendars ?? []).map(({ comment, ...calendar }) =>
    comment?.startsWith(CRON_COMMENT_PREFIX)
      ? normalizeCron(comment.slice(CRON_COMMENT_PREFIX.length))
      : `calendar ${canonicalJson(calendar)}`,
  );
  return {
    id: d.scheduleId,
    intervals: sorted((d.spec.intervals ?? []).map((i) => intervalLabel(i.every, i.offset))),
    cron: sorted(cron),
    timezone: d.spec.timezone ?? '',
    jitter: formatDurationMs(d.spec.jitter ?? 0),
    workflowType: d.action.workflowType,
    taskQueue: d.action.taskQueue,
    workflowId: d.action.workflowId,
    args: canonicalJson(d.action.args ?? []),
    pipeline: actionPipeline(d.action.typedSearchAttributes),
    summary: d.action.staticSummary ?? '',
    overlap: d.policies.overlap ?? 'SKIP',
    paused: d.state.paused,
    note: d.state.note ?? '',
    managed: d.memo?.managedBy === MANAGED_BY_MEMO.managedBy,
    ...(typeof d.memo?.stackQueue === 'string' ? { stackQueue: d.memo.stackQueue } : {}),
  };
}

/** What sync does with one schedule. */
export type ScheduleSyncAction = 'create' | 'update' | 'delete' | 'unchanged';

/** One line of the sync plan. */
export interface ScheduleChange {
  id: string;
  action: ScheduleSyncAction;
  /** For `update`: one `field: old → new` entry per changed field; empty otherwise. */
  changes: string[];
  /** What the config wants (absent for `delete`). */
  desired?: ComparableSchedule;
  /** What the cluster has (absent for `create`). */
  existing?: ExistingSchedule;
}

const COMPARED_FIELDS = [
  'intervals',
  'cron',
  'timezone',
  'jitter',
  'workflowType',
  'taskQueue',
  'workflowId',
  'args',
  'pipeline',
  'summary',
  'overlap',
  'paused',
  'note',
] as const satisfies readonly (keyof ComparableSchedule)[];

function show(value: ComparableSchedule[keyof ComparableSchedule]): string {
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  if (typeof value === 'string') return value === '' ? '(none)' : value;
  return String(value);
}

function sameValue(a: ComparableSchedule[keyof ComparableSchedule], b: ComparableSchedule[keyof ComparableSchedule]) {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return a === b;
}

/** Options of {@link diffSchedules}. */
export interface DiffScheduleOptions {
  /**
   * Only managed schedules of the stack with this base task queue are deleted (memo `stackQueue`, else the queue
   * their workflows run on), so that two stacks (or two tests) with different base queues in one namespace never
   * delete each other's schedules. `undefined` deletes any managed one.
   */
  taskQueue?: string;
  /**
   * The stack's dedicated CPU queues: a managed schedule created before schedules carried `stackQueue` in their memo
   * (which an update cannot add) and since moved to one of them still belongs to this stack.
   */
  dedicatedTaskQueues?: readonly string[];
}

/**
 * The pure sync decision. A desired schedule missing on the cluster is `create`d; one that differs in any compared
 * field is an `update` listing each change; an existing schedule that the config no longer names is a `delete`, but
 * only when sync created it (memo `managedBy: sluice`, see {@link DiffScheduleOptions.taskQueue}). Schedules made by
 * hand are never touched unless the config names their id. The plan lists the config's schedules in order, then the
 * deletions by id.
 */
export function diffSchedules(
  desired: readonly ComparableSchedule[],
  existing: readonly ExistingSchedule[],
  opts: DiffScheduleOptions = {},
): ScheduleChange[] {
  const existingById = new Map(existing.map((e) => [e.id, e]));
  const desiredIds = new Set(desired.map((d) => d.id));
  const plan: ScheduleChange[] = desired.map((want): ScheduleChange => {
    const have = existingById.get(want.id);
    if (!have) return { id: want.id, action: 'create', changes: [], desired: want };
    const changes = COMPARED_FIELDS.filter((field) => !sameValue(want[field], have[field])).map(
      (field) => `${field}: ${show(have[field])} → ${show(want[field])}`,
    );
    return { id: want.id, action: changes.length > 0 ? 'update' : 'unchanged', changes, desired: want, existing: have };
  });
  const deletions = existing
    .filter(
      (e) =>
        e.managed &&
        !desiredIds.has(e.id) &&
        (opts.taskQueue === undefined ||
          (e.stackQueue !== undefined
            ? e.stackQueue === opts.taskQueue
            : e.taskQueue === opts.taskQueue || (opts.dedicatedTaskQueues ?? []).includes(e.taskQueue))),
    )
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e): ScheduleChange => ({ id: e.id, action: 'delete', changes: [], existing: e }));
  return [...plan, ...deletions];
}

/**
 * The update function sync passes to `handle.update()`: the desired spec and action, the desired overlap over the
 * schedule's other policies, and the desired pause state and note. Pure (it builds a new object and reads only its
 * arguments), because the SDK may call it more than once.
 */
export function scheduleUpdate(desired: DesiredSchedule, previous: ScheduleDescription): ScheduleUpdateOptions {
  const { spec, action, policies, state } = desired.options;
  return {
    ...previous,
    spec,
    action,
    policies: { ...previous.policies, overlap: policies?.overlap },
    state: { paused: state?.paused ?? false, note: state?.note },
  };
}

/** Options of {@link syncSchedules}. */
export interface SyncSchedulesOptions {
  /** The stack's base task queue (`SLUICE_TASK_QUEUE` or temporal-dev.yml's `workers.cpu.taskQueue`). */
  baseTaskQueue: string;
  /** Compute and return the plan without changing anything. @default false */
  dryRun?: boolean;
}

/** A sync step failed on the cluster; the message names the schedule and the step. */
export class ScheduleSyncError extends Error {
  override readonly name = 'ScheduleSyncError';
}

/** The messages of an error and its causes, since the SDK wraps the server's reason in `cause`. */
function reasonOf(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = e.cause) parts.push(e.message);
  return parts.length > 0 ? parts.join(': ') : String(err);
}

function stepFailed(id: string, step: string, err: unknown): ScheduleSyncError {
  const reason = reasonOf(err);
  const hint = /search attribute/i.test(reason)
    ? '\n  the SluicePipeline search attribute may be missing; run `npm run sluice -- setup`'
    : err instanceof ScheduleAlreadyRunning
      ? '\n  it was created while sync ran; run sync again'
      : '';
  return new ScheduleSyncError(`could not ${step} schedule "${id}": ${reason}${hint}`, { cause: err });
}

async function describeIfPresent(client: Client, id: string): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw stepFailed(id, 'describe', err);
  }
}

/**
 * Reads what the cluster has: every schedule the config names (described by id, which is strongly consistent) and
 * every other schedule whose memo marks it as Sluice's (found through `list()`, which is eventually consistent, so
 * a schedule created a moment ago may be missed for deletion until the next sync).
 */
export async function existingSchedules(client: Client, ids: readonly string[]): Promise<ExistingSchedule[]> {
  const found = new Map<string, ScheduleDescription>();
  for (const id of ids) {
    const d = await describeIfPresent(client, id);
    if (d) found.set(id, d);
  }
  for await (const summary of client.schedule.list()) {
    if (found.has(summary.scheduleId) || summary.memo?.managedBy !== MANAGED_BY_MEMO.managedBy) continue;
    // list() may still show a schedule deleted a moment ago; describe decides.
    const d = await describeIfPresent(client, summary.scheduleId);
    if (d) found.set(summary.scheduleId, d);
  }
  return [...found.values()].map(comparableFromDescription);
}

/**
 * Makes the cluster's schedules match `config.schedules` and returns the plan (what was done, or with `dryRun` what
 * would be done). Every entry is validated before anything changes. Running it twice in a row makes the second plan
 * all `unchanged`. Deletes only schedules that sync created for this base task queue. Throws
 * {@link ScheduleSyncError} naming the schedule when a step fails; earlier steps stay applied.
 */
export async function syncSchedules(
  client: Client,
  config: Pick<StackConfig, 'schedules'> & { workers?: Pick<StackConfig['workers'], 'cpu'> },
  opts: SyncSchedulesOptions,
): Promise<ScheduleChange[]> {
  const seen = new Set<string>();
  for (const s of config.schedules) {
    if (seen.has(s.id)) throw new Error(`schedule id "${s.id}" appears twice in temporal-dev.yml; ids must be unique`);
    seen.add(s.id);
  }
  const desired = config.schedules.map((s) => desiredSchedule(s, opts.baseTaskQueue));
  const existing = await existingSchedules(
    client,
    desired.map((d) => d.id),
  );
  const plan = diffSchedules(desired.map(comparableFromOptions), existing, {
    taskQueue: taskQueues(opts.baseTaskQueue).cpu,
    dedicatedTaskQueues: (config.workers?.cpu.dedicated ?? []).map((d) =>
      dedicatedCpuQueue(opts.baseTaskQueue, d.name),
    ),
  });
  if (opts.dryRun) return plan;

  const desiredById = new Map(desired.map((d) => [d.id, d]));
  for (const step of plan) {
    const want = desiredById.get(step.id);
    try {
      switch (step.action) {
        case 'create':
          if (want) await client.schedule.create(want.options);
          break;
        case 'update':
          if (want) await client.schedule.getHandle(step.id).update((prev) => scheduleUpdate(want, prev));
          break;
        case 'delete':
          await client.schedule.getHandle(step.id).delete();
          break;
        case 'unchanged':
          break;
      }
    } catch (err) {
      throw stepFailed(step.id, step.action, err);
    }
  }
  return plan;
}
