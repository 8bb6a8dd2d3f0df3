/**
 * Runs one benchmark worker process and measures it from the outside: wall time from spawn to exit (so the
 * engine's start — Node and tsx, the Python interpreter and its imports, the JVM — is included), and the peak RSS
 * of its whole process tree, sampled from /proc. The worker's own result is the JSON object on its last stdout line.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** How often the process tree's RSS is sampled. */
const SAMPLE_INTERVAL_MS = 100;
const PAGE_BYTES = 4096;

/** What one worker run gave. */
export interface WorkerRun {
  /** Spawn to exit, in ms. */
  wallMs: number;
  /** The highest sum of RSS over the worker and its descendants seen in the samples, in MiB. */
  treePeakRssMiB: number;
  /** The worker's JSON result line. */
  result: Record<string, unknown>;
}

/** The worker's process and all its descendants, from /proc/<pid>/stat parent links. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are fixed.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process exited between readdir and read.
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.pop()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

function treeRssBytes(root: number): number {
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_BYTES;
    } catch {
      // Gone already.
    }
  }
  return total;
}

/**
 * Spawns `command args…` in `cwd`, waits for it, and returns its measurements.
 * @throws Error with the tail of its stderr when it exits non-zero or prints no JSON line.
 */
export function runWorker(
  label: string,
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<WorkerRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let peak = 0;
    const sample = () => {
      if (child.pid !== undefined) peak = Math.max(peak, treeRssBytes(child.pid));
    };
    const timer = setInterval(sample, SAMPLE_INTERVAL_MS);
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      const wallMs = Math.round((performance.now() - started) * 10) / 10;
      clearInterval(timer);
      const lastLine = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        const tail = stderr.trim().split('\n').slice(-30).join('\n');
        reject(new Error(`${label} exited with ${code ?? signal}:\n${tail}`));
        return;
      }
      try {
        const result = JSON.parse(lastLine) as Record<string, unknown>;
        resolve({ wallMs, treePeakRssMiB: Math.round((peak / 2 ** 20) * 10) / 10, result });
      } catch {
        reject(new Error(`${label} printed no JSON result line; stdout ends with: ${lastLine.slice(-500)}`));
      }
    });
  });
}
