import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledModels, type BundledModels } from '../../../lib/inference/index.js';
import { generateModels } from '../../../scripts/models/generate-models.js';

/**
 * Generates the dual encoder (both versions) into a fresh temp directory, so that unit tests need neither
 * `npm run models` nor the 47 MB transformer. Returns the refs and a cleanup.
 */
export async function generateDualModels(): Promise<{ models: BundledModels; root: string; cleanup: () => void }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sluice-models-'));
  await generateModels(root, { dualOnly: true });
  return { models: bundledModels(root), root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
