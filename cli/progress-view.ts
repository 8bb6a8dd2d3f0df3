import { SingleBar, Presets } from 'cli-progress';
import type { WorkflowHandle } from '@temporalio/client';
import type { StackConfig } from '../schemas/stack-config.js';
import type { Progress } from '../schemas/progress.js';
import { progressQuery } from '../workflows/queries.js';

/** The dev UI's page for a workflow, when the local stack runs a UI. */
export function uiWorkflowUrl(config: StackConfig, namespace: string, workflowId: string): string | undefined {
  if (!config.server.uiPort) return undefined;
  return `http://${config.server.ip}:${config.server.uiPort}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function isClosed(status: string): boolean {
  return status !== 'RUNNING';
}

/**
 * Renders the workflow's progress query as a bar (or as lines when stdout is not a terminal) until the run closes.
 * Returns the final status name.
 */
export async function watchProgress(handle: WorkflowHandle, intervalMs = 500): Promise<string> {
  const tty = process.stdout.isTTY;
  const bar = tty
    ? new SingleBar(
        { format: ' {bar} {percentage}% | {value}/{total} {unit} | {phase} {detail}', hideCursor: true },
        Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastLine = '';
  for (;;) {
    const description = await handle.describe();
    let progress: Progress | undefined;
    try {
      progress = await handle.query(progressQuery);
    } catch {
      // A run with no worker yet, or already closed without a query handler, has no progress to show.
    }
    if (progress) {
      const payload = { unit: progress.unit, phase: progress.phase, detail: progress.detail ?? '' };
      if (bar) {
        if (!started) bar.start(Math.max(progress.total, 1), progress.done, payload);
        bar.setTotal(Math.max(progress.total, 1));
        bar.update(progress.done, payload);
        started = true;
      } else {
        const line =
          `${progress.phase}: ${progress.done}/${progress.total} ${progress.unit} ${progress.detail ?? ''}`.trim();
        if (line !== lastLine) console.log(line);
        lastLine = line;
      }
    }
    if (isClosed(description.status.name)) {
      bar?.stop();
      return description.status.name;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
