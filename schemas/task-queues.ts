/**
 * Task queue names, declared once. Every queue derives from one base name (`sluice` in production), so a test
 * that picks its own base gets a private set of queues and never sees another test's tasks.
 *
 * - `<base>`: the `cpu` pool; hosts the workflows and the CPU activities.
 * - `<base>-gpu`: the shared GPU pool; any GPU host may take a task from it (used to reserve a host).
 * - `<base>-gpu@<host>`: polled by exactly one GPU host; steps that need that host's local state go here.
 * - `<base>-<name>`: a dedicated CPU queue (`workers.cpu.dedicated` in temporal-dev.yml), served by CPU worker
 *   processes of its own, so that heavy scheduled work (table maintenance) never shares an event loop with
 *   latency-sensitive work (a continuous CDC merge). Only pipelines that stay on the CPU pool may run there: GPU
 *   queues derive from the workflow's own queue.
 */
export const DEFAULT_TASK_QUEUE = 'sluice';

/** The three kinds of queue for one base name. */
export interface TaskQueueSet {
  readonly cpu: string;
  readonly gpu: string;
  gpuHost(host: string): string;
}

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Returns the queue set for `base` (default `sluice`). */
export function taskQueues(base: string = DEFAULT_TASK_QUEUE): TaskQueueSet {
  return {
    cpu: base,
    gpu: `${base}-gpu`,
    gpuHost(host: string): string {
      if (!HOST_NAME.test(host)) {
        throw new TypeError(`GPU host name "${host}" is invalid; use letters, digits, '.', '_' or '-' (max 63)`);
      }
      return `${base}-gpu@${host}`;
    },
  };
}

/** A dedicated queue's name: lowercase letters, digits and "-", not starting with "gpu" (those are the GPU queues'). */
export const DEDICATED_QUEUE_NAME = /^(?!gpu)[a-z][a-z0-9-]{0,39}$/;

/** The task queue of the dedicated CPU queue `name` under `base`: `<base>-<name>`. */
export function dedicatedCpuQueue(base: string, name: string): string {
  if (!DEDICATED_QUEUE_NAME.test(name)) {
    throw new TypeError(
      `dedicated queue name "${name}" is invalid; use lowercase letters, digits or "-" (max 40), not starting with "gpu"`,
    );
  }
  return `${base}-${name}`;
}

/** The production queues. */
export const TaskQueues: TaskQueueSet = taskQueues();
