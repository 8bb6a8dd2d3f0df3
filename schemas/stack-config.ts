import { z } from 'zod';
import { DEDICATED_QUEUE_NAME } from './task-queues.js';

/**
 * The schema of `temporal-dev.yml`: the local stack (dev server, worker pools, schedules, defaults).
 * Strict objects, so a misspelt key is an error that names it rather than a silently ignored setting.
 */

const Port = z.number().int().min(1).max(65535);
const Duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration such as "500ms", "30s", "5m", "1h" or "1d"');
const Identifier = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'letters, digits, "_" or "-", starting with a letter');

const SearchAttributeTypeName = z.enum(['Text', 'Keyword', 'Int', 'Double', 'Bool', 'Datetime', 'KeywordList']);

export const DevServerConfig = z.strictObject({
  /** Address the dev server binds to. @default 127.0.0.1 */
  ip: z.string().default('127.0.0.1'),
  /** Frontend gRPC port. @default 7233 */
  port: Port.default(7233),
  /** Web UI port; `null` runs headless. @default 8233 */
  uiPort: Port.nullable().default(8233),
  /** SQLite file that keeps state across restarts; `null` keeps everything in memory. */
  dbFile: z.string().nullable().default('.sluice/temporal.db'),
  /** Namespace the workers and clients use. @default default */
  namespace: z.string().min(1).default('default'),
  /** Extra search attributes beyond Sluice's own (name → type). */
  searchAttributes: z.record(Identifier, SearchAttributeTypeName).default({}),
  /** Dynamic config values, passed as `--dynamic-config-value KEY=JSON`. */
  dynamicConfig: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  /** Codec server URL the UI uses to decode payloads, when encryption is on. */
  codecEndpoint: z.url().optional(),
});

export const CpuPoolConfig = z.strictObject({
  /** Base task queue; the GPU queues derive from it. @default sluice */
  taskQueue: Identifier.default('sluice'),
  /** Worker processes to start. @default 1 */
  processes: z.number().int().min(1).max(64).default(1),
  /** Concurrent activity executions per process. @default 8 */
  maxConcurrentActivities: z.number().int().min(1).max(10_000).default(8),
  /** Concurrent workflow tasks per process. @default 40 */
  maxConcurrentWorkflowTasks: z.number().int().min(2).max(10_000).default(40),
  /** How long in-flight activities may finish after a shutdown signal. @default 30s */
  shutdownGraceTime: Duration.default('30s'),
  /** First Prometheus port; each process takes the next. `null` turns metrics off. @default 9464 */
  metricsPort: Port.nullable().default(9464),
  /**
   * Dedicated CPU queues (`<taskQueue>-<name>`), each served by worker processes of its own; a schedule runs on one
   * with `queue: <name>`. The processes take the metrics ports after the main ones. @default none
   */
  dedicated: z
    .array(
      z.strictObject({
        name: z
          .string()
          .regex(DEDICATED_QUEUE_NAME, 'lowercase letters, digits or "-" (max 40), not starting with "gpu"'),
        /** Worker processes polling it. @default 1 */
        processes: z.number().int().min(1).max(64).default(1),
      }),
    )
    .default([]),
});

export const GpuHostConfig = z.strictObject({
  /** Host name, used in the queue name `sluice-gpu@<name>`. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" or "-" (max 63)'),
  /** Concurrent GPU activities on this host. @default 1 */
  slots: z.number().int().min(1).max(256).default(1),
});

export const GpuPoolConfig = z.strictObject({
  /** Hosts of the GPU pool; locally each becomes one worker process. */
  hosts: z.array(GpuHostConfig).default([{ name: 'gpu-local', slots: 1 }]),
  /** How long in-flight GPU activities may finish after a shutdown signal. @default 30s */
  shutdownGraceTime: Duration.default('30s'),
  /** First Prometheus port for GPU workers; `null` turns metrics off. @default 9474 */
  metricsPort: Port.nullable().default(9474),
});

export const OverlapPolicyName = z.enum([
  'SKIP',
  'BUFFER_ONE',
  'BUFFER_ALL',
  'CANCEL_OTHER',
  'TERMINATE_OTHER',
  'ALLOW_ALL',
]);

export const ScheduleSpecConfig = z
  .strictObject({
    /** Fixed intervals, e.g. `["15m"]`. */
    every: z.array(Duration).optional(),
    /** Cron expressions, e.g. `["0 * * * *"]`. */
    cron: z.array(z.string().min(1)).optional(),
    /** IANA time zone for cron. @default UTC */
    timezone: z.string().optional(),
    /** Random delay added to each action. */
    jitter: Duration.optional(),
  })
  .refine((s) => (s.every?.length ?? 0) + (s.cron?.length ?? 0) > 0, {
    message: 'a schedule spec needs at least one entry in "every" or "cron"',
  });

export const ScheduleConfig = z.strictObject({
  /** Schedule id, unique in the namespace. */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'letters, digits, ".", "_", "/" or "-"'),
  /** Pipeline to start; one of the registered pipeline names. */
  pipeline: z.string().min(1),
  spec: ScheduleSpecConfig,
  /** Pipeline input; validated against the pipeline's schema by `schedules sync`. */
  input: z.unknown().default({}),
  /** What to do when the previous run is still going. @default SKIP */
  overlap: OverlapPolicyName.default('SKIP'),
  /** Create or keep the schedule paused. @default false */
  paused: z.boolean().default(false),
  /** A note shown in the UI. */
  note: z.string().optional(),
  /**
   * Run the workflows on this dedicated CPU queue (a name from `workers.cpu.dedicated`) instead of the base queue.
   * Only for pipelines that stay on the CPU pool. @default the base queue
   */
  queue: z.string().optional(),
});

export const CatalogConfig = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1) }),
  z.strictObject({ type: z.literal('postgres'), uri: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URI') }),
]);

export const DefaultsConfig = z.strictObject({
  /** Warehouse root for Iceberg tables: `file://…` or `s3://bucket/prefix`. */
  warehouse: z
    .string()
    .regex(/^(file|s3):\/\//, 'a file:// or s3:// URI')
    .default('file://.sluice/warehouse'),
  /** Iceberg catalog name, shared with pyiceberg and Spark. @default sluice */
  catalogName: Identifier.default('sluice'),
  catalog: CatalogConfig.default({ type: 'sqlite', path: '.sluice/catalog.db' }),
});

export const StackConfig = z
  .strictObject({
    server: DevServerConfig.default(DevServerConfig.parse({})),
    workers: z
      .strictObject({
        cpu: CpuPoolConfig.default(CpuPoolConfig.parse({})),
        gpu: GpuPoolConfig.default(GpuPoolConfig.parse({})),
      })
      .default({ cpu: CpuPoolConfig.parse({}), gpu: GpuPoolConfig.parse({}) }),
    schedules: z.array(ScheduleConfig).default([]),
    defaults: DefaultsConfig.default(DefaultsConfig.parse({})),
  })
  .superRefine((config, ctx) => {
    const names = config.workers.cpu.dedicated.map((d) => d.name);
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i) {
        ctx.addIssue({
          code: 'custom',
          path: ['workers', 'cpu', 'dedicated', i, 'name'],
          message: `"${name}" appears twice`,
        });
      }
    });
    config.schedules.forEach((schedule, i) => {
      if (schedule.queue !== undefined && !names.includes(schedule.queue)) {
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', i, 'queue'],
          message:
            `no dedicated queue "${schedule.queue}" in workers.cpu.dedicated ` +
            `(${names.length ? names.map((n) => `"${n}"`).join(', ') : 'none declared'}); no worker would poll it`,
        });
      }
    });
  });

export type StackConfig = z.infer<typeof StackConfig>;
export type ScheduleConfig = z.infer<typeof ScheduleConfig>;
export type GpuHostConfig = z.infer<typeof GpuHostConfig>;
