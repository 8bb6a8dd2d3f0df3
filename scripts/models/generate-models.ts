/**
 * `npm run models`: writes the generated ONNX models the tests, demo and benchmarks use into `.tools/models/`
 * (`<name>/<version>/{model.onnx, sluice-model.json, tokenizer.json}`). Nothing is downloaded. Idempotent: a second
 * run with the same generator version skips; `--force` rewrites.
 *
 *   node --import tsx scripts/models/generate-models.ts [--out DIR] [--force]
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { BUNDLED_MODEL_NAMES, MODELS_DIR } from '../../lib/inference/bundled-models.js';
import { MANIFEST_FILE, type ModelManifestInput } from '../../lib/inference/manifest.js';
import {
  CATALOG_IMAGE_SIZE,
  CATALOG_PATTERNS,
  CATALOG_SHAPES,
  SIZE_NAMES,
  catalogGrid,
  renderItemPixels,
  type CatalogItem,
} from '../../lib/inference/synthetic-catalog.js';
import {
  DUAL_DIM,
  DUAL_MAX_TOKENS,
  GROUPS,
  IMAGE_STATS,
  buildImageStatisticsModel,
  buildImageTower,
  buildTextTower,
  dualVocabWords,
  type ImagePrototypes,
} from './dual-encoder.js';
import { tokenizerConfigJson, wordPieceTokenizerJson, wordPieceVocab } from './tokenizer-json.js';
import { TRANSFORMER, buildTransformer, transformerVocabWords } from './transformer.js';

/** Bump when a generated model changes, so that `setup.sh` regenerates. */
export const GENERATOR_VERSION = '1';
const STAMP = '.sluice-generator';

/** The projection seed of each dual-encoder version: versions share the attribute space, not the vectors. */
const DUAL_VERSIONS = { '1': 101, '2': 202 } as const;

/** Pixels of one item as the image tower's input: CHW, normalised with mean 0.5 and std 0.5. */
export function itemTensor(item: CatalogItem): Float32Array {
  const size = CATALOG_IMAGE_SIZE;
  const px = renderItemPixels(item);
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let p = 0; p < size * size; p++) out[c * size * size + p] = (px[p * 3 + c]! / 255 - 0.5) / 0.5;
  return out;
}

/** Runs the statistics graph over the clean grid and takes the class mean of each group's statistics. */
async function calibrate(): Promise<ImagePrototypes> {
  const session = await ort.InferenceSession.create(buildImageStatisticsModel(), { executionProviders: ['cpu'] });
  const grid = catalogGrid();
  const size = 3 * CATALOG_IMAGE_SIZE * CATALOG_IMAGE_SIZE;
  const data = new Float32Array(grid.length * size);
  grid.forEach((item, i) => data.set(itemTensor(item), i * size));
  const out = await session.run({
    pixel_values: new ort.Tensor('float32', data, [grid.length, 3, CATALOG_IMAGE_SIZE, CATALOG_IMAGE_SIZE]),
  });
  await session.release();
  const stats = out.statistics!.data as Float32Array;
  const w = IMAGE_STATS.length;
  const means = (group: keyof typeof GROUPS, values: readonly string[], of: (item: CatalogItem) => string) => {
    const cols = GROUPS[group].stats.map((s) => IMAGE_STATS.indexOf(s));
    return values.map((value) => {
      const rows = grid.flatMap((item, i) => (of(item) === value ? [i] : []));
      return cols.map((c) => rows.reduce((s, i) => s + stats[i * w + c]!, 0) / rows.length);
    });
  };
  return {
    shape: means('shape', CATALOG_SHAPES, (i) => i.shape),
    pattern: means('pattern', CATALOG_PATTERNS, (i) => i.pattern),
    size: means('size', SIZE_NAMES, (i) => i.size),
  };
}

async function writeModel(
  dir: string,
  model: Uint8Array,
  manifest: ModelManifestInput,
  tokenizer?: { json: object; config: object },
): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.onnx'), model);
  if (tokenizer) {
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.json));
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizer.config, null, 2));
  }
  await writeFile(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Options of {@link generateModels}. */
export interface GenerateOptions {
  /** Write only the dual encoder (fast; what the unit tests need). @default false */
  dualOnly?: boolean;
}

/** Writes the generated models under `root`. Returns the directories written. */
export async function generateModels(root: string, opts: GenerateOptions = {}): Promise<string[]> {
  const written: string[] = [];
  const prototypes = await calibrate();
  const dualVocab = wordPieceVocab(dualVocabWords());
  const dualTokenizer = { json: wordPieceTokenizerJson(dualVocab), config: tokenizerConfigJson(DUAL_MAX_TOKENS) };
  const textInputs: ModelManifestInput['inputs'] = [
    { name: 'input_ids', role: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] },
    { name: 'attention_mask', role: 'attention_mask', dtype: 'int64', shape: ['batch', 'sequence'] },
  ];
  for (const [version, seed] of Object.entries(DUAL_VERSIONS)) {
    const textDir = path.join(root, BUNDLED_MODEL_NAMES.dualText, version);
    await writeModel(
      textDir,
      buildTextTower(dualVocab, seed),
      {
        format: 1,
        name: BUNDLED_MODEL_NAMES.dualText,
        version,
        kind: 'text',
        dimensions: DUAL_DIM,
        inputs: [...textInputs],
        output: { name: 'text_embeds', shape: ['batch', DUAL_DIM] },
        text: { tokenizer: 'tokenizer.json', tokenizerConfig: 'tokenizer_config.json', maxTokens: DUAL_MAX_TOKENS },
        pairedWith: BUNDLED_MODEL_NAMES.dualImage,
        description:
          'Text tower of the generated catalog dual encoder (colour × shape × pattern × size); shares its space ' +
          `with ${BUNDLED_MODEL_NAMES.dualImage} version ${version}. Generated by scripts/models/generate-models.ts.`,
      },
      dualTokenizer,
    );
    written.push(textDir);
    const imageDir = path.join(root, BUNDLED_MODEL_NAMES.dualImage, version);
    await writeModel(imageDir, buildImageTower(prototypes, seed), {
      format: 1,
      name: BUNDLED_MODEL_NAMES.dualImage,
      version,
      kind: 'image',
      dimensions: DUAL_DIM,
      inputs: [
        {
          name: 'pixel_values',
          role: 'pixel_values',
          dtype: 'float32',
          shape: ['batch', 3, CATALOG_IMAGE_SIZE, CATALOG_IMAGE_SIZE],
        },
      ],
      output: { name: 'image_embeds', shape: ['batch', DUAL_DIM] },
      image: {
        width: CATALOG_IMAGE_SIZE,
        height: CATALOG_IMAGE_SIZE,
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
        fit: 'fill',
        kernel: 'nearest',
      },
      pairedWith: BUNDLED_MODEL_NAMES.dualText,
      description:
        `Image tower of the generated catalog dual encoder; ${CATALOG_IMAGE_SIZE}×${CATALOG_IMAGE_SIZE} RGB items ` +
        `drawn by lib/inference/synthetic-catalog.ts. Prototypes calibrated on the clean grid: ${JSON.stringify(prototypes)}`,
    });
    written.push(imageDir);
  }
  if (opts.dualOnly) return written;
  const tVocab = wordPieceVocab(transformerVocabWords());
  const tDir = path.join(root, BUNDLED_MODEL_NAMES.transformer, '1');
  await writeModel(
    tDir,
    buildTransformer(tVocab.length, 7),
    {
      format: 1,
      name: BUNDLED_MODEL_NAMES.transformer,
      version: '1',
      kind: 'text',
      dimensions: TRANSFORMER.hidden,
      inputs: [...textInputs],
      output: { name: 'sentence_embedding', shape: ['batch', TRANSFORMER.hidden] },
      text: {
        tokenizer: 'tokenizer.json',
        tokenizerConfig: 'tokenizer_config.json',
        maxTokens: TRANSFORMER.maxTokens,
        overLength: 'truncate',
      },
      description:
        `Random-weight BERT-style encoder, ${TRANSFORMER.layers} layers × ${TRANSFORMER.hidden} hidden, ` +
        `${TRANSFORMER.heads} heads, up to ${TRANSFORMER.maxTokens} tokens, vocabulary ${tVocab.length}: for ` +
        'throughput runs only, its vectors mean nothing.',
    },
    { json: wordPieceTokenizerJson(tVocab), config: tokenizerConfigJson(TRANSFORMER.maxTokens) },
  );
  written.push(tDir);
  await writeFile(path.join(root, STAMP), GENERATOR_VERSION);
  return written;
}

async function run(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, force: { type: 'boolean' } } });
  const root = path.resolve(values.out ?? MODELS_DIR);
  const stamp = await readFile(path.join(root, STAMP), 'utf8').catch(() => '');
  if (!values.force && stamp.trim() === GENERATOR_VERSION) {
    console.log(`models: up to date in ${root} (generator ${GENERATOR_VERSION}); --force rewrites`);
    return;
  }
  const started = performance.now();
  const dirs = await generateModels(root);
  console.log(`models: wrote ${dirs.length} models in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const d of dirs) console.log(`  ${path.relative(process.cwd(), d)}`);
}

// Only as a script: bench/inference/bundle.sh bundles this module into another entry point.
if (process.argv[1]?.endsWith(path.join('models', 'generate-models.ts'))) {
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
