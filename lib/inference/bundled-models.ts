import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelRef } from './pool.js';

/** Where `npm run models` writes the generated models: `<repo>/.tools/models/<name>/<version>/`. */
export const MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../.tools/models');

/** The generated models, by role. */
export interface BundledModels {
  /** Text tower of the catalog dual encoder (64-d, shares its space with `dualImage` of the same version). */
  dualText: ModelRef;
  /** Image tower of the catalog dual encoder (64×64 RGB in). */
  dualImage: ModelRef;
  /** The same dual encoder with another projection: version 2, for version flips and rollbacks. */
  dualTextV2: ModelRef;
  dualImageV2: ModelRef;
  /** A 6-layer, 384-wide transformer text encoder with random weights, for throughput runs (not meaningful vectors). */
  transformer: ModelRef;
}

/** Model names the generator writes; a model lives in `<root>/<name>/<version>/`. */
export const BUNDLED_MODEL_NAMES = {
  dualText: 'sluice-dual-text',
  dualImage: 'sluice-dual-image',
  transformer: 'sluice-transformer-random',
} as const;

/** References to the generated models under `root` (default {@link MODELS_DIR}). */
export function bundledModels(root: string = MODELS_DIR): BundledModels {
  const ref = (name: string, version: string): ModelRef => ({ path: path.join(root, name, version), version });
  return {
    dualText: ref(BUNDLED_MODEL_NAMES.dualText, '1'),
    dualImage: ref(BUNDLED_MODEL_NAMES.dualImage, '1'),
    dualTextV2: ref(BUNDLED_MODEL_NAMES.dualText, '2'),
    dualImageV2: ref(BUNDLED_MODEL_NAMES.dualImage, '2'),
    transformer: ref(BUNDLED_MODEL_NAMES.transformer, '1'),
  };
}
