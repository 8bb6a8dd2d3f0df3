import {
  localClusterShape,
  masterKind,
  type SparkBudget,
  type SparkCost,
  type SparkResourceCaps,
  type SparkResources,
} from '../../schemas/spark.js';
import { defaultOverheadMib, formatMemoryMib, parseMemoryMib } from './memory.js';

/** {@link SparkResources} with every memory in MiB, the form the ladder and the cost model compute with. */
export interface ResourceNumbers {
  driverMemoryMib: number;
  driverCores: number;
  executorMemoryMib: number;
  /** `undefined`: Spark's default, max(384 MiB, 10%). */
  executorMemoryOverheadMib: number | undefined;
  executorOffHeapMib: number | undefined;
  executorCores: number;
  executorInstances: number;
  taskCpus: number;
  shufflePartitions: number | undefined;
}

/** Parses the memory strings of `r` (field paths in errors are `resources.<field>`). */
export function toNumbers(r: SparkResources, prefix = 'resources'): ResourceNumbers {
  return {
    driverMemoryMib: parseMemoryMib(r.driverMemory, `${prefix}.driverMemory`),
    driverCores: r.driverCores,
    executorMemoryMib: parseMemoryMib(r.executorMemory, `${prefix}.executorMemory`),
    executorMemoryOverheadMib:
      r.executorMemoryOverhead === undefined
        ? undefined
        : parseMemoryMib(r.executorMemoryOverhead, `${prefix}.executorMemoryOverhead`),
    executorOffHeapMib:
      r.executorOffHeap === undefined ? undefined : parseMemoryMib(r.executorOffHeap, `${prefix}.executorOffHeap`),
    executorCores: r.executorCores,
    executorInstances: r.executorInstances,
    taskCpus: r.taskCpus,
    shufflePartitions: r.shufflePartitions,
  };
}

/** The JSON form of `n`, memory written the Spark way. */
export function fromNumbers(n: ResourceNumbers): SparkResources {
  return {
    driverMemory: formatMemoryMib(n.driverMemoryMib),
    driverCores: n.driverCores,
    executorMemory: formatMemoryMib(n.executorMemoryMib),
    ...(n.executorMemoryOverheadMib === undefined
      ? {}
      : { executorMemoryOverhead: formatMemoryMib(n.executorMemoryOverheadMib) }),
    ...(n.executorOffHeapMib === undefined ? {} : { executorOffHeap: formatMemoryMib(n.executorOffHeapMib) }),
    executorCores: n.executorCores,
    executorInstances: n.executorInstances,
    taskCpus: n.taskCpus,
    ...(n.shufflePartitions === undefined ? {} : { shufflePartitions: n.shufflePartitions }),
  };
}

/** Caps as numbers; an absent cap is `Infinity`. */
export interface CapNumbers {
  driverMemoryMib: number;
  driverCores: number;
  executorMemoryMib: number;
  executorMemoryOverheadMib: number;
  executorOffHeapMib: number;
  executorCores: number;
  executorInstances: number;
  taskCpus: number;
  shufflePartitions: number;
}

export function capNumbers(c: SparkResourceCaps): CapNumbers {
  const mem = (v: string | undefined, field: string) =>
    v === undefined ? Infinity : parseMemoryMib(v, `caps.${field}`);
  return {
    driverMemoryMib: mem(c.driverMemory, 'driverMemory'),
    driverCores: c.driverCores ?? Infinity,
    executorMemoryMib: mem(c.executorMemory, 'executorMemory'),
    executorMemoryOverheadMib: mem(c.executorMemoryOverhead, 'executorMemoryOverhead'),
    executorOffHeapMib: mem(c.executorOffHeap, 'executorOffHeap'),
    executorCores: c.executorCores ?? Infinity,
    executorInstances: c.executorInstances ?? Infinity,
    taskCpus: c.taskCpus ?? Infinity,
    shufflePartitions: c.shufflePartitions ?? Infinity,
  };
}

/** `n` with every field held at or below its cap (and task cpus at or below executor cores). */
export function clampToCaps(n: ResourceNumbers, caps: CapNumbers): ResourceNumbers {
  const optional = (v: number | undefined, cap: number) => (v === undefined ? undefined : Math.min(v, cap));
  const executorCores = Math.min(n.executorCores, caps.executorCores);
  return {
    driverMemoryMib: Math.min(n.driverMemoryMib, caps.driverMemoryMib),
    driverCores: Math.min(n.driverCores, caps.driverCores),
    executorMemoryMib: Math.min(n.executorMemoryMib, caps.executorMemoryMib),
    executorMemoryOverheadMib: optional(n.executorMemoryOverheadMib, caps.executorMemoryOverheadMib),
    executorOffHeapMib: optional(n.executorOffHeapMib, caps.executorOffHeapMib),
    executorCores,
    executorInstances: Math.min(n.executorInstances, caps.executorInstances),
    taskCpus: Math.min(n.taskCpus, caps.taskCpus, executorCores),
    shufflePartitions: optional(n.shufflePartitions, caps.shufflePartitions),
  };
}

/** Whether two resource sets ask for exactly the same thing. */
export function sameResources(a: ResourceNumbers, b: ResourceNumbers): boolean {
  return (Object.keys(a) as (keyof ResourceNumbers)[]).every((k) => a[k] === b[k]);
}

/** Memory a task can count on: the executor heap shared by the tasks that run at once. */
export function heapPerTaskMib(n: ResourceNumbers): number {
  return (n.executorMemoryMib * n.taskCpus) / n.executorCores;
}

/**
 * The spark-submit options and `--conf` settings for `r` on `master`. Standalone and local-cluster masters size
 * the application by total cores (`spark.cores.max` = instances × executor cores); YARN and Kubernetes by
 * `spark.executor.instances`.
 */
export function resourceConf(r: SparkResources, master: string): Record<string, string> {
  const n = toNumbers(r);
  const conf: Record<string, string> = {
    'spark.driver.memory': r.driverMemory,
    'spark.executor.memory': r.executorMemory,
    'spark.executor.cores': String(n.executorCores),
    'spark.task.cpus': String(n.taskCpus),
  };
  const kind = masterKind(master);
  if (kind === 'standalone' || kind === 'local-cluster') {
    conf['spark.cores.max'] = String(n.executorInstances * n.executorCores);
  } else if (kind === 'yarn' || kind === 'k8s') {
    conf['spark.executor.instances'] = String(n.executorInstances);
    conf['spark.driver.cores'] = String(n.driverCores);
  }
  if (r.executorMemoryOverhead) conf['spark.executor.memoryOverhead'] = r.executorMemoryOverhead;
  if (r.executorOffHeap) {
    conf['spark.memory.offHeap.enabled'] = 'true';
    conf['spark.memory.offHeap.size'] = r.executorOffHeap;
  }
  if (n.shufflePartitions !== undefined) conf['spark.sql.shuffle.partitions'] = String(n.shufflePartitions);
  return conf;
}

/** GB and vcores an attempt holds while it runs: the driver plus every executor container. */
export function footprint(r: SparkResources, master: string): { gb: number; vcores: number } {
  const n = toNumbers(r);
  const driverMib = n.driverMemoryMib + defaultOverheadMib(n.driverMemoryMib);
  const kind = masterKind(master);
  if (kind === 'local') {
    // One JVM does everything; its threads are the cores.
    const threads = /^local\[(\d+)/.exec(master);
    return { gb: driverMib / 1024, vcores: threads ? Number(threads[1]) : 1 };
  }
  let instances = n.executorInstances;
  const shape = localClusterShape(master);
  if (shape) instances = Math.min(instances, shape.workers * Math.floor(shape.cores / n.executorCores));
  const executorMib =
    n.executorMemoryMib +
    (n.executorMemoryOverheadMib ?? defaultOverheadMib(n.executorMemoryMib)) +
    (n.executorOffHeapMib ?? 0);
  return { gb: (driverMib + instances * executorMib) / 1024, vcores: n.driverCores + instances * n.executorCores };
}

/** GB·h and vcore·h of holding `r` for `wallMs`, with money when the budget has prices. */
export function attemptCost(r: SparkResources, master: string, wallMs: number, budget?: SparkBudget): SparkCost {
  const { gb, vcores } = footprint(r, master);
  const hours = wallMs / 3_600_000;
  return priced({ gbHours: gb * hours, vcoreHours: vcores * hours }, budget);
}

/** Adds `money` to a cost when the budget prices resources. */
export function priced(cost: { gbHours: number; vcoreHours: number }, budget?: SparkBudget): SparkCost {
  if (!budget?.price) return { gbHours: cost.gbHours, vcoreHours: cost.vcoreHours };
  return {
    gbHours: cost.gbHours,
    vcoreHours: cost.vcoreHours,
    money: cost.gbHours * budget.price.perGbHour + cost.vcoreHours * budget.price.perVcoreHour,
  };
}

/** Sum of costs. */
export function addCosts(costs: readonly SparkCost[], budget?: SparkBudget): SparkCost {
  const sum = costs.reduce(
    (acc, c) => ({ gbHours: acc.gbHours + c.gbHours, vcoreHours: acc.vcoreHours + c.vcoreHours }),
    {
      gbHours: 0,
      vcoreHours: 0,
    },
  );
  return priced(sum, budget);
}

/** The first limit of `budget` that `cost` passes, in words, or `undefined` when it is within budget. */
export function budgetOverrun(cost: SparkCost, budget: SparkBudget | undefined): string | undefined {
  if (!budget) return undefined;
  if (budget.maxGbHours !== undefined && cost.gbHours > budget.maxGbHours) {
    return `${cost.gbHours.toFixed(4)} GB·h > maxGbHours ${budget.maxGbHours}`;
  }
  if (budget.maxVcoreHours !== undefined && cost.vcoreHours > budget.maxVcoreHours) {
    return `${cost.vcoreHours.toFixed(4)} vcore·h > maxVcoreHours ${budget.maxVcoreHours}`;
  }
  if (budget.price && cost.money !== undefined && cost.money > budget.price.max) {
    return `${cost.money.toFixed(4)} ${budget.price.currency} > price.max ${budget.price.max}`;
  }
  return undefined;
}
