import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { REPO_ROOT } from '../lib/config.js';

/** The only workflowsPath. */
export const WORKFLOWS_PATH = path.join(REPO_ROOT, 'workflows/index.ts');
/** Where `sluice bundle` writes the prebuilt bundle. */
export const DEFAULT_BUNDLE_PATH = path.join(REPO_ROOT, 'dist/workflow-bundle.cjs');

/** How a Worker gets its workflow code: a prebuilt file (production) or the sources (development). */
export type WorkflowSource =
  { workflowBundle: { codePath: string } } | { workflowsPath: string } | { workflowBundle: { code: string } };

/**
 * A prebuilt bundle when one is named (or `preferBundle` and the default one exists), else the sources, which the
 * Worker bundles at start (seconds).
 */
export function workflowSource(bundlePath?: string): WorkflowSource {
  if (bundlePath) {
    if (!existsSync(bundlePath))
      throw new Error(`workflow bundle ${bundlePath} does not exist; run \`npm run sluice -- bundle\``);
    return { workflowBundle: { codePath: bundlePath } };
  }
  return { workflowsPath: WORKFLOWS_PATH };
}

/** Bundles `workflows/index.ts` in memory. */
export async function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
}

/** Bundles the workflows to a file for production worker starts; returns the path. */
export async function writeWorkflowBundle(outFile: string = DEFAULT_BUNDLE_PATH): Promise<string> {
  const { code } = await bundleWorkflows();
  await mkdir(path.dirname(outFile), { recursive: true });
  await writeFile(outFile, code);
  return outFile;
}
