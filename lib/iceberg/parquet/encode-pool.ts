import { Worker } from 'node:worker_threads';
import type { ParquetEncodeOptions } from './wasm-encode.js';

/**
 * A small pool of worker threads that encode Parquet row groups, so that a large file uses more than one core:
 * parquet-wasm is single-threaded, and zstd plus encoding is most of a write's time. Workers start on first use,
 * are unreferenced while idle (they never keep the process alive), and exit after {@link IDLE_EXIT_MS} without
 * work, which also returns their WebAssembly memory (it only grows while a worker lives).
 */

/** How long an idle worker stays, so that consecutive writes skip the ~0.1 s start-up. */
const IDLE_EXIT_MS = 30_000;

interface Job {
  readonly id: number;
  readonly ipc: Uint8Array;
  readonly options: ParquetEncodeOptions;
  /** The most workers this job's caller allows. */
  readonly poolSize: number;
  readonly resolve: (bytes: Uint8Array) => void;
  readonly reject: (err: Error) => void;
}

interface PoolWorker {
  readonly worker: Worker;
  job: Job | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

const workers: PoolWorker[] = [];
const queue: Job[] = [];
let nextJobId = 0;

/**
 * Encodes one Arrow IPC stream on a pool worker. At most `poolSize` workers run; further jobs wait in order.
 * The IPC buffer is transferred to the worker, so the caller must not use it afterwards.
 */
export function encodeInWorker(ipc: Uint8Array, options: ParquetEncodeOptions, poolSize: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    queue.push({ id: nextJobId++, ipc, options, poolSize, resolve, reject });
    dispatch();
  });
}

/**
 * Whether a job sent now would start at once: nothing is queued and a worker is free or may still be started. Small
 * files are offloaded only then, so that they never wait behind a large write's row groups (a compaction in the
 * same process).
 */
export function encodePoolIdle(poolSize: number): boolean {
  return queue.length === 0 && (workers.length < poolSize || workers.some((w) => w.job === undefined));
}

function dispatch(): void {
  while (queue.length > 0) {
    let free = workers.find((w) => w.job === undefined);
    if (!free && workers.length < (queue[0] as Job).poolSize) free = startWorker();
    if (!free) return;
    const job = queue.shift() as Job;
    if (free.idleTimer) clearTimeout(free.idleTimer);
    free.idleTimer = undefined;
    free.job = job;
    // Referenced while busy: an awaited encode must keep the process alive until it answers.
    free.worker.ref();
    // Transfer only a buffer the IPC view covers whole; a shared or larger buffer is copied instead.
    const own = job.ipc.byteOffset === 0 && job.ipc.byteLength === job.ipc.buffer.byteLength;
    free.worker.postMessage(
      { id: job.id, ipc: job.ipc, options: job.options },
      own ? [job.ipc.buffer as ArrayBuffer] : [],
    );
  }
}

function startWorker(): PoolWorker {
  const worker = new Worker(new URL('./encode-worker.js', import.meta.url));
  const entry: PoolWorker = { worker, job: undefined, idleTimer: undefined };
  workers.push(entry);
  worker.unref();
  worker.on('message', (message: { id: number; bytes?: Uint8Array; error?: string }) => {
    const job = entry.job;
    if (!job || job.id !== message.id) return;
    entry.job = undefined;
    entry.worker.unref();
    if (message.bytes) job.resolve(message.bytes);
    else job.reject(new Error(`Parquet encoding failed in a worker: ${message.error ?? 'no reason given'}`));
    entry.idleTimer = setTimeout(() => void retire(entry), IDLE_EXIT_MS);
    entry.idleTimer.unref();
    dispatch();
  });
  const fail = (err: Error): void => {
    const job = entry.job;
    entry.job = undefined;
    void retire(entry);
    job?.reject(err);
    dispatch();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (entry.job) fail(new Error(`a Parquet encoding worker exited with code ${code}`));
    else void retire(entry);
  });
  return entry;
}

async function retire(entry: PoolWorker): Promise<void> {
  const at = workers.indexOf(entry);
  if (at >= 0) workers.splice(at, 1);
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  await entry.worker.terminate();
}

/**
 * Starts pool workers up to `size` and waits until each has loaded the encoder, so that the first large write of
 * a long-lived process (a worker that is about to write) does not pay for thread and WebAssembly start-up. Warm
 * workers still exit after {@link IDLE_EXIT_MS} without work.
 */
export async function warmEncodePool(size = 2): Promise<void> {
  const ready: Promise<void>[] = [];
  while (workers.length < size) {
    const entry = startWorker();
    entry.worker.ref();
    ready.push(
      new Promise<void>((resolve, reject) => {
        const onMessage = (message: { ready?: boolean }) => {
          if (!message.ready) return;
          entry.worker.off('message', onMessage);
          entry.worker.off('error', reject);
          if (entry.job === undefined) {
            entry.worker.unref();
            entry.idleTimer = setTimeout(() => void retire(entry), IDLE_EXIT_MS);
            entry.idleTimer.unref();
          }
          resolve();
        };
        entry.worker.on('message', onMessage);
        entry.worker.once('error', reject);
      }),
    );
  }
  await Promise.all(ready);
}

/** Stops every pool worker now (tests and shutdown hooks; idle workers also stop by themselves). */
export async function closeEncodePool(): Promise<void> {
  await Promise.all([...workers].map(retire));
}
