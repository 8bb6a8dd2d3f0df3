import { heartbeat, sleep } from '@temporalio/activity';
import { HostWorkInput, type HostWorkResult } from '../schemas/platform.js';
import { validateActivityInput } from './failures.js';

/** What a GPU worker knows about itself. */
export interface GpuHostActivityDeps {
  /** This host's name; its private queue is `<base>-gpu@<host>`. */
  host: string;
  /** Concurrent GPU activities this host runs. */
  slots: number;
}

/** A reservation answer: the host whose worker took the task from the shared queue. */
export interface GpuHostReservation {
  host: string;
  slots: number;
}

/** Multiplies two deterministic n×n matrices; a CPU stand-in for a kernel that keeps the host busy. */
function matmulChecksum(n: number): number {
  const a = new Float64Array(n * n);
  const b = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) {
    a[i] = (i % 7) / 7;
    b[i] = (i % 5) / 5;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += a[i * n + k]! * b[k * n + j]!;
      sum += acc;
    }
  }
  return sum;
}

/**
 * Activities every GPU worker registers, on the shared GPU queue and on its own host queue. Pipelines add their
 * inference activities beside these (issue 6); `reserveGpuHost` is the piece the pinning helper needs.
 */
export function createGpuHostActivities(deps: GpuHostActivityDeps) {
  return {
    /** Answers with this worker's host; taken from the shared queue, it picks whichever host is free. */
    async reserveGpuHost(): Promise<GpuHostReservation> {
      return { host: deps.host, slots: deps.slots };
    },

    /**
     * A pinned compute step: a matrix product on this host, then an optional hold (heartbeating) so that tests can
     * kill the host while a step is running.
     */
    async hostWork(input: HostWorkInput): Promise<HostWorkResult> {
      const { step, matrixSize, holdMs } = validateActivityInput(HostWorkInput, input, 'hostWork input');
      const started = performance.now();
      const checksum = matrixSize > 0 ? matmulChecksum(matrixSize) : 0;
      for (let held = 0; held < holdMs; held += 200) {
        heartbeat({ step, held });
        await sleep(Math.min(200, holdMs - held));
      }
      return { host: deps.host, step, pid: process.pid, checksum, durationMs: performance.now() - started };
    },
  };
}

export type GpuHostActivities = ReturnType<typeof createGpuHostActivities>;
