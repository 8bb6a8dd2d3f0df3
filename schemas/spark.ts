import { z } from 'zod';

/**
 * The Spark job spec (`spark-job` pipeline) and the shapes its workflow, activities and CLI exchange. JSON-exact:
 * memory sizes stay strings as the user wrote them (`512m`, `4g`) and are parsed by `lib/spark/memory.ts`.
 */

/** Spark's size suffixes, as `spark-submit` accepts them for memory settings. */
export const MEMORY_PATTERN = /^[1-9][0-9]{0,9}[kmgtKMGT]$/;

/** A memory size: digits then `k`, `m`, `g` or `t`, e.g. `512m`, `4g`. `12 GB`, `4gb` and bare numbers are refused. */
export const MemorySize = z
  .string()
  .regex(MEMORY_PATTERN, 'a memory size such as "512m" or "4g": digits then k, m, g or t, with no space and no "b"');

/** MiB in one unit of each suffix. */
const MIB_PER_UNIT: Record<string, number> = { k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 };

/** MiB of a {@link MemorySize} string (already validated). Fractions of a MiB round up. */
export function memoryMib(size: string): number {
  const unit = size.slice(-1).toLowerCase();
  return Math.ceil(Number(size.slice(0, -1)) * MIB_PER_UNIT[unit]!);
}

const LOCAL_CLUSTER = /^local-cluster\[(\d+),\s*(\d+),\s*(\d+)\]$/;

/** The masters the spark-submit submitter knows. */
export const MASTER_KINDS = ['local', 'local-cluster', 'standalone', 'yarn', 'k8s'] as const;
export type MasterKind = (typeof MASTER_KINDS)[number];

/** The kind of a master URL, or `undefined` for one Sluice does not know. */
export function masterKind(master: string): MasterKind | undefined {
  if (/^local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?$/.test(master)) return 'local';
  if (LOCAL_CLUSTER.test(master)) return 'local-cluster';
  if (/^spark:\/\/[^\s/:]+:\d+(,[^\s/:]+:\d+)*$/.test(master)) return 'standalone';
  if (master === 'yarn') return 'yarn';
  if (/^k8s:\/\/https?:\/\/\S+$/.test(master)) return 'k8s';
  return undefined;
}

/** Workers, cores per worker and MiB per worker of a `local-cluster[N,cores,memMB]` master. */
export function localClusterShape(master: string): { workers: number; cores: number; memoryMib: number } | undefined {
  const m = LOCAL_CLUSTER.exec(master);
  if (!m) return undefined;
  return { workers: Number(m[1]), cores: Number(m[2]), memoryMib: Number(m[3]) };
}

export const SparkMaster = z.string().refine((m) => masterKind(m) !== undefined, {
  message:
    'unknown master; use local, local[N], local-cluster[N,cores,memMB], spark://host:port, yarn or k8s://https://host:port',
});

/** The application: a Python script or a jar with its main class. */
export const SparkApplication = z
  .strictObject({
    /** Path of the `.py` file or the `.jar`; the worker host must be able to read it. */
    resource: z.string().min(1),
    /** The JVM main class; required for a jar. */
    mainClass: z
      .string()
      .regex(/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/, 'a Java class name')
      .optional(),
    /** Application arguments. @default [] */
    args: z.array(z.string()).default([]),
    /** Extra `--conf` settings. Resource keys (memory, cores, task cpus) belong in `resources`, not here. */
    conf: z.record(z.string().regex(/^spark\./, 'a Spark setting starting with "spark."'), z.string()).default({}),
    /** Extra `--py-files` / `--jars`. */
    pyFiles: z.array(z.string().min(1)).default([]),
    jars: z.array(z.string().min(1)).default([]),
  })
  .superRefine((app, ctx) => {
    const isJar = app.resource.endsWith('.jar');
    const isPy = app.resource.endsWith('.py');
    if (!isJar && !isPy) {
      ctx.addIssue({ code: 'custom', path: ['resource'], message: 'the application must be a .py or a .jar file' });
    }
    if (isJar && !app.mainClass) {
      ctx.addIssue({ code: 'custom', path: ['mainClass'], message: 'a jar application needs mainClass' });
    }
    for (const key of Object.keys(app.conf)) {
      if (RESOURCE_CONF_KEYS.has(key)) {
        ctx.addIssue({
          code: 'custom',
          path: ['conf', key],
          message: `${key} is a resource the retry ladder manages; set it in resources instead`,
        });
      }
    }
  });

export type SparkApplication = z.infer<typeof SparkApplication>;

/** The conf keys that {@link SparkResources} owns; the ladder changes them, so the app's conf may not. */
export const RESOURCE_CONF_KEYS: ReadonlySet<string> = new Set([
  'spark.driver.memory',
  'spark.driver.cores',
  'spark.executor.memory',
  'spark.executor.memoryOverhead',
  'spark.executor.cores',
  'spark.executor.instances',
  'spark.task.cpus',
  'spark.memory.offHeap.enabled',
  'spark.memory.offHeap.size',
  'spark.sql.shuffle.partitions',
  'spark.cores.max',
]);

/** What one attempt asks for. Memory overhead defaults to Spark's own rule, max(384m, 10% of executor memory). */
export const SparkResources = z.strictObject({
  driverMemory: MemorySize.default('1g'),
  driverCores: z.number().int().min(1).max(64).default(1),
  executorMemory: MemorySize.default('1g'),
  /** `spark.executor.memoryOverhead`; unset means Spark's default. */
  executorMemoryOverhead: MemorySize.optional(),
  /** `spark.memory.offHeap.size` (turns off-heap on); unset means off. */
  executorOffHeap: MemorySize.optional(),
  executorCores: z.number().int().min(1).max(256).default(1),
  executorInstances: z.number().int().min(1).max(10_000).default(1),
  /** `spark.task.cpus`: cores each task takes, so executorCores / taskCpus tasks share an executor's heap. */
  taskCpus: z.number().int().min(1).max(256).default(1),
  /** `spark.sql.shuffle.partitions`; unset means Spark's default (200). */
  shufflePartitions: z.number().int().min(1).max(1_000_000).optional(),
});
export type SparkResources = z.infer<typeof SparkResources>;

/** Upper bounds the ladder and the recommender never cross. Each must be at least the request. */
export const SparkResourceCaps = z.strictObject({
  driverMemory: MemorySize.optional(),
  driverCores: z.number().int().min(1).optional(),
  executorMemory: MemorySize.optional(),
  executorMemoryOverhead: MemorySize.optional(),
  executorOffHeap: MemorySize.optional(),
  executorCores: z.number().int().min(1).optional(),
  executorInstances: z.number().int().min(1).optional(),
  taskCpus: z.number().int().min(1).optional(),
  shufflePartitions: z.number().int().min(1).optional(),
});
export type SparkResourceCaps = z.infer<typeof SparkResourceCaps>;

/**
 * `memory-ladder` (the default): attempt 2 doubles `spark.task.cpus`; attempts 3–5 give executors ×2, ×3, ×4
 * memory with overhead and off-heap ×2; a driver OOM doubles driver memory. `shuffle-partitions`, for skew-free
 * aggregations: each memory failure doubles the shuffle partitions instead (executor size unchanged).
 */
export const SparkRetryPolicyName = z.enum(['memory-ladder', 'shuffle-partitions']);
export type SparkRetryPolicyName = z.infer<typeof SparkRetryPolicyName>;

export const SparkRetryPolicy = z.strictObject({
  policy: SparkRetryPolicyName.default('memory-ladder'),
  /** Attempts in all, the first included. @default 5 */
  maxAttempts: z.number().int().min(1).max(10).default(5),
});

/** A spending limit for one run, in resource-hours or in money (prices per GB·h and vcore·h). */
export const SparkBudget = z
  .strictObject({
    maxGbHours: z.number().positive().optional(),
    maxVcoreHours: z.number().positive().optional(),
    /** Price of one GB·h and one vcore·h, and the most the run may cost, in `currency`. */
    price: z
      .strictObject({
        perGbHour: z.number().nonnegative(),
        perVcoreHour: z.number().nonnegative(),
        max: z.number().positive(),
        currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as "USD"'),
      })
      .optional(),
  })
  .refine((b) => b.maxGbHours !== undefined || b.maxVcoreHours !== undefined || b.price !== undefined, {
    message: 'a budget needs maxGbHours, maxVcoreHours or price',
  });
export type SparkBudget = z.infer<typeof SparkBudget>;

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const RESOURCE_FIELDS = [
  'driverMemory',
  'driverCores',
  'executorMemory',
  'executorMemoryOverhead',
  'executorOffHeap',
  'executorCores',
  'executorInstances',
  'taskCpus',
  'shufflePartitions',
] as const satisfies readonly (keyof SparkResources & keyof SparkResourceCaps)[];

function numericValue(v: string | number): number {
  return typeof v === 'number' ? v : memoryMib(v);
}

/** The whole job spec: one Spark application with its resources, caps, retry policy, owner and budget. */
export const SparkJobSpec = z
  .strictObject({
    /** The job's stable name: the learning history is keyed by it (and the template hash). */
    name: z.string().regex(JOB_NAME, 'letters, digits, ".", "_" or "-" (max 128), starting with a letter or digit'),
    /** Who answers for the job (a team or a person); recorded with every run. */
    owner: z.string().min(1).max(200),
    master: SparkMaster,
    /** `client` runs the driver in the spark-submit process (needed for local masters). @default client */
    deployMode: z.enum(['client', 'cluster']).default('client'),
    app: SparkApplication,
    resources: SparkResources.default(SparkResources.parse({})),
    caps: SparkResourceCaps.default({}),
    retry: SparkRetryPolicy.default(SparkRetryPolicy.parse({})),
    budget: SparkBudget.optional(),
    /** Start from the size learned from earlier runs (it may be smaller than `resources`). @default true */
    useLearnedSizing: z.boolean().default(true),
    /** How long one attempt may run. @default 3600 */
    attemptTimeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(7 * 24 * 3600)
      .default(3600),
  })
  .superRefine((spec, ctx) => {
    const kind = masterKind(spec.master);
    if ((kind === 'local' || kind === 'local-cluster') && spec.deployMode === 'cluster') {
      ctx.addIssue({ code: 'custom', path: ['deployMode'], message: `a ${kind} master runs in client mode only` });
    }
    if (kind === 'standalone' && spec.deployMode === 'cluster' && spec.app.resource.endsWith('.py')) {
      // spark-submit refuses it too ("Cluster deploy mode is currently not supported for python applications on
      // standalone clusters"), but only after the attempt started; say so at validation, naming the field.
      ctx.addIssue({
        code: 'custom',
        path: ['deployMode'],
        message:
          'Spark does not run Python applications in cluster deploy mode on a standalone master; use deployMode "client" (or a YARN or Kubernetes master)',
      });
    }
    for (const field of RESOURCE_FIELDS) {
      const cap = spec.caps[field];
      const request = spec.resources[field];
      if (cap === undefined || request === undefined) continue;
      if (numericValue(cap) < numericValue(request)) {
        ctx.addIssue({
          code: 'custom',
          path: ['caps', field],
          message: `cap ${cap} is below the request resources.${field} = ${request}`,
        });
      }
    }
    if (spec.resources.taskCpus > spec.resources.executorCores) {
      ctx.addIssue({
        code: 'custom',
        path: ['resources', 'taskCpus'],
        message: `taskCpus ${spec.resources.taskCpus} exceeds executorCores ${spec.resources.executorCores}`,
      });
    }
    const shape = localClusterShape(spec.master);
    if (shape) {
      // A local-cluster worker never launches an executor larger than itself: the app would wait forever.
      const largest = spec.caps.executorMemory ?? spec.resources.executorMemory;
      if (memoryMib(largest) > shape.memoryMib) {
        ctx.addIssue({
          code: 'custom',
          path: [spec.caps.executorMemory ? 'caps' : 'resources', 'executorMemory'],
          message: `${largest} does not fit a ${shape.memoryMib} MB local-cluster worker; cap executorMemory at ${shape.memoryMib}m`,
        });
      }
      const cores = spec.caps.executorCores ?? spec.resources.executorCores;
      if (cores > shape.cores) {
        ctx.addIssue({
          code: 'custom',
          path: [spec.caps.executorCores ? 'caps' : 'resources', 'executorCores'],
          message: `${cores} executor cores do not fit a ${shape.cores}-core local-cluster worker`,
        });
      }
    }
  });
export type SparkJobSpec = z.infer<typeof SparkJobSpec>;

/** Input of the `sparkJob` workflow. */
export const SparkJobInput = z.strictObject({
  spec: SparkJobSpec,
});
export type SparkJobInput = z.infer<typeof SparkJobInput>;

/** Business-key workflow id: one run of a job at a time. */
export function sparkJobWorkflowId(jobName: string): string {
  return `spark/${jobName}`;
}

/** Why an attempt failed. The classifier (lib/spark/classifier.ts) switches exhaustively over these. */
export const SPARK_FAILURE_KINDS = [
  'executor-oom',
  'container-memory-kill',
  'driver-oom',
  'execution-memory',
  'shuffle-fetch',
  'user-code',
  'infrastructure',
] as const;
export const SparkFailureKind = z.enum(SPARK_FAILURE_KINDS);
export type SparkFailureKind = z.infer<typeof SparkFailureKind>;

/** Peak memory metrics from an attempt's event log, in bytes; absent when the log did not record them. */
export const SparkPeakMetrics = z.strictObject({
  /** Max over executors of `JVMHeapMemory`. */
  peakJVMHeapMemory: z.number().nonnegative().optional(),
  peakJVMOffHeapMemory: z.number().nonnegative().optional(),
  /** Max over executors of on-heap + off-heap execution memory. */
  peakExecutionMemory: z.number().nonnegative().optional(),
  peakStorageMemory: z.number().nonnegative().optional(),
  /** Largest `Peak Execution Memory` of one task. */
  peakTaskExecutionMemory: z.number().nonnegative().optional(),
  /** The driver's `JVMHeapMemory` peak. */
  driverPeakJVMHeapMemory: z.number().nonnegative().optional(),
  /** Executors the attempt saw (lost ones included). */
  executorsAdded: z.number().int().nonnegative().optional(),
  executorsLost: z.number().int().nonnegative().optional(),
});
export type SparkPeakMetrics = z.infer<typeof SparkPeakMetrics>;

/** Resource use of one attempt or a run. */
export const SparkCost = z.strictObject({
  gbHours: z.number().nonnegative(),
  vcoreHours: z.number().nonnegative(),
  /** `gbHours × perGbHour + vcoreHours × perVcoreHour` when the budget has prices. */
  money: z.number().nonnegative().optional(),
});
export type SparkCost = z.infer<typeof SparkCost>;

/** What one attempt did; the workflow keeps one per attempt, the history stores them. */
export const SparkAttemptRecord = z.strictObject({
  attempt: z.number().int().min(1),
  resources: SparkResources,
  /** Why the ladder chose these resources, e.g. `request`, `learned`, `task.cpus ×2`. */
  step: z.string(),
  outcome: z.enum(['succeeded', 'failed', 'cancelled']),
  failureKind: SparkFailureKind.optional(),
  /** The log line or event that decided the kind. */
  evidence: z.string().optional(),
  exitCode: z.number().int().nullable(),
  applicationId: z.string().optional(),
  startedAt: z.string(),
  wallMs: z.number().int().nonnegative(),
  cost: SparkCost,
  peaks: SparkPeakMetrics,
  driverLogPath: z.string().optional(),
  eventLogPath: z.string().optional(),
});
export type SparkAttemptRecord = z.infer<typeof SparkAttemptRecord>;

/** Where the first attempt's size came from. */
export const SparkSizingSource = z.enum(['request', 'learned']);

/** The sizing recommendation for the next run, with the reason in words. */
export const SparkSizingRecommendation = z.strictObject({
  source: SparkSizingSource,
  resources: SparkResources,
  reason: z.string(),
  /** Successful runs the recommendation rests on. */
  basedOnRuns: z.number().int().nonnegative(),
});
export type SparkSizingRecommendation = z.infer<typeof SparkSizingRecommendation>;

/** The `planSparkJob` activity's answer: the template hash and the first attempt's resources. */
export const SparkJobPlan = z.strictObject({
  templateHash: z.string(),
  recommendation: SparkSizingRecommendation,
  /** Mean wall time of earlier successful attempts, for the budget's estimate. */
  typicalWallMs: z.number().int().nonnegative().optional(),
  /** Cost expected of the first attempt (zero without history). */
  estimate: SparkCost,
  /** Set when the first attempt alone is expected to pass the budget. */
  overBudget: z.string().optional(),
});
export type SparkJobPlan = z.infer<typeof SparkJobPlan>;

/** The workflow's result, also stored in the history. */
export const SparkJobResult = z.strictObject({
  jobName: z.string(),
  templateHash: z.string(),
  outcome: z.enum(['succeeded', 'failed']),
  sizing: SparkSizingRecommendation,
  attempts: z.array(SparkAttemptRecord),
  finalResources: SparkResources.optional(),
  cost: z.strictObject({ total: SparkCost, wasted: SparkCost }),
});
export type SparkJobResult = z.infer<typeof SparkJobResult>;

/** The `progress` query of a Spark job. */
export const SparkJobProgress = z.strictObject({
  phase: z.string(),
  done: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  unit: z.string(),
  detail: z.string().optional(),
  jobName: z.string(),
  attempts: z.array(SparkAttemptRecord),
  current: z
    .strictObject({
      attempt: z.number().int(),
      resources: SparkResources,
      step: z.string(),
      applicationId: z.string().optional(),
    })
    .optional(),
});
export type SparkJobProgress = z.infer<typeof SparkJobProgress>;

/** Heartbeat details of the submit activity. */
export interface SparkSubmitHeartbeat {
  applicationId?: string;
  logLines: number;
  lastLine?: string;
}

/** `planSparkJob`: hash the template, open the run in the history, choose the first size. */
export const PlanSparkJobInput = z.strictObject({
  spec: SparkJobSpec,
  /** `<workflowId>/<runId>`: the history's key for this run. */
  runKey: z.string().min(1),
  startedAt: z.string(),
});
export type PlanSparkJobInput = z.input<typeof PlanSparkJobInput>;

/** `runSparkAttempt`: one spark-submit with `resources`. */
export const RunSparkAttemptInput = z.strictObject({
  spec: SparkJobSpec,
  runKey: z.string().min(1),
  attempt: z.number().int().min(1),
  resources: SparkResources,
  step: z.string(),
});
export type RunSparkAttemptInput = z.input<typeof RunSparkAttemptInput>;

/** `planNextSparkAttempt`: the ladder's next size after a failure, and the budget check for it. */
export const PlanNextSparkAttemptInput = z.strictObject({
  spec: SparkJobSpec,
  first: SparkResources,
  last: SparkAttemptRecord,
  executorStep: z.number().int().min(0),
  spent: SparkCost,
  typicalWallMs: z.number().int().nonnegative().optional(),
});
export type PlanNextSparkAttemptInput = z.input<typeof PlanNextSparkAttemptInput>;

/** The next attempt, or why there is none. */
export const NextSparkAttempt = z.discriminatedUnion('retry', [
  z.strictObject({
    retry: z.literal(true),
    resources: SparkResources,
    step: z.string(),
    executorStep: z.number().int().min(0),
    /** Cost expected of the attempt (from typical or last wall time). */
    estimate: SparkCost,
    /** Set when spent + estimate passes the budget: the run must stop. */
    overBudget: z.string().optional(),
  }),
  z.strictObject({ retry: z.literal(false), reason: z.string() }),
]);
export type NextSparkAttempt = z.infer<typeof NextSparkAttempt>;

/** `finishSparkRun`: close the run in the history. */
export const FinishSparkRunInput = z.strictObject({
  runKey: z.string().min(1),
  result: SparkJobResult,
  outcome: z.enum(['succeeded', 'failed', 'cancelled']),
});
export type FinishSparkRunInput = z.input<typeof FinishSparkRunInput>;
