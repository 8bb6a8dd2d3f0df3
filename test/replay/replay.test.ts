import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { bundleWorkflows } from '../../workers/workflow-bundle.js';
import * as workflows from '../../workflows/index.js';

const HISTORY_DIR = path.join(REPO_ROOT, 'test/histories');
const histories = readdirSync(HISTORY_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, history: JSON.parse(readFileSync(path.join(HISTORY_DIR, f), 'utf8')) as unknown }));

function workflowTypeOf(history: unknown): string | undefined {
  const events = (
    history as { events?: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[] }
  ).events;
  return events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
}

describe('replay of committed histories', () => {
  let bundle: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    bundle = await bundleWorkflows();
  });

  it('there is at least one committed history for every workflow', () => {
    const covered = new Set(histories.map((h) => workflowTypeOf(h.history)));
    for (const name of Object.keys(workflows))
      expect(covered, `no history for ${name}; run npm run histories`).toContain(name);
  });

  it.each(histories)('$file replays deterministically against the current code', async ({ file, history }) => {
    await expect(
      Worker.runReplayHistory({ workflowBundle: bundle, replayName: file }, history),
    ).resolves.toBeUndefined();
  });

  it('a changed workflow fails replay with a determinism error', async () => {
    const changed = await bundleWorkflowCode({
      workflowsPath: path.join(REPO_ROOT, 'test/replay/fixtures/changed-workflows.ts'),
      logger: new DefaultLogger('WARN'),
    });
    const poolCheck = histories.find((h) => workflowTypeOf(h.history) === 'poolCheck');
    expect(poolCheck).toBeDefined();
    await expect(Worker.runReplayHistory({ workflowBundle: changed }, poolCheck!.history)).rejects.toBeInstanceOf(
      DeterminismViolationError,
    );
  });
});
