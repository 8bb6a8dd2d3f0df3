import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { InferenceError } from './errors.js';

/** The file in a model directory that describes it. */
export const MANIFEST_FILE = 'sluice-model.json';

/** What an input tensor carries; the pool builds each role from the preprocessed items. */
export const InputRole = z.enum(['input_ids', 'attention_mask', 'token_type_ids', 'pixel_values']);
export type InputRole = z.infer<typeof InputRole>;

const Dim = z.union([z.number().int().positive(), z.string().min(1)]);

const ModelInput = z.object({
  /** The graph input's name. */
  name: z.string().min(1),
  role: InputRole,
  dtype: z.enum(['int64', 'int32', 'float32']),
  /** Fixed sizes or symbolic names, e.g. `["batch", "sequence"]`. */
  shape: z.array(Dim).min(1),
});

const TextPreprocessing = z.object({
  /** The tokenizer file, relative to the model directory (Hugging Face `tokenizer.json`). */
  tokenizer: z.string().min(1).default('tokenizer.json'),
  /** Optional `tokenizer_config.json`, relative to the model directory. */
  tokenizerConfig: z.string().min(1).optional(),
  /** Most tokens per text, special tokens included. */
  maxTokens: z.number().int().positive(),
  /** What to do with a longer text: reject the item (quarantine) or cut it to `maxTokens`. */
  overLength: z.enum(['error', 'truncate']).default('error'),
  /** Pad each batch to its longest text, or always to `maxTokens` (models with a fixed sequence axis). */
  padding: z.enum(['longest', 'max']).default('longest'),
  /** Token id used for padding. */
  padId: z.number().int().nonnegative().default(0),
});

const ImagePreprocessing = z.object({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  /** Per-channel mean and std applied to [0,1] RGB values: `(x - mean) / std`. */
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  /** How the image is fitted to width × height (sharp's `fit`). */
  fit: z.enum(['fill', 'cover', 'contain']).default('fill'),
  /** Resampling kernel (sharp's `kernel`). */
  kernel: z.enum(['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3']).default('cubic'),
});

/** `sluice-model.json`: what the pool needs to feed a model and read its embedding. */
export const ModelManifest = z.object({
  format: z.literal(1),
  name: z.string().min(1),
  version: z.string().min(1),
  kind: z.enum(['text', 'image']),
  /** Embedding size. */
  dimensions: z.number().int().positive(),
  /** The ONNX file, relative to the model directory. */
  file: z.string().min(1).default('model.onnx'),
  inputs: z.array(ModelInput).min(1),
  output: z.object({
    name: z.string().min(1),
    /** `["batch", D]` for a pooled embedding, `["batch", "sequence", D]` for token states (then `pooling`). */
    shape: z.array(Dim).min(2).max(3),
  }),
  /** Pooling the pool applies to a token-level output (`mean` over the attention mask); `none` for pooled outputs. */
  pooling: z.enum(['none', 'mean', 'cls']).default('none'),
  /** L2-normalise the vectors in the pool (for models that do not do it in the graph). */
  normalize: z.boolean().default(false),
  text: TextPreprocessing.optional(),
  image: ImagePreprocessing.optional(),
  /** Free-form notes: where the model came from, what it was built for. */
  description: z.string().optional(),
  /** For a tower of a dual encoder: the other tower's model name. */
  pairedWith: z.string().optional(),
});
export type ModelManifest = z.infer<typeof ModelManifest>;
export type ModelManifestInput = z.input<typeof ModelManifest>;

/** Reads and checks `<dir>/sluice-model.json`; the kind's preprocessing block must be there. */
export async function readManifest(dir: string): Promise<ModelManifest> {
  const file = path.join(dir, MANIFEST_FILE);
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new InferenceError(
      'model-not-found',
      `model directory "${dir}" has no ${MANIFEST_FILE}; generate the bundled models with \`npm run models\` or ` +
        'write a manifest next to the ONNX file (docs/inference.md)',
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new InferenceError('invalid-manifest', `${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = ModelManifest.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InferenceError('invalid-manifest', `${file} is not a valid Sluice model manifest: ${problems}`);
  }
  const manifest = parsed.data;
  if (manifest.kind === 'text' && !manifest.text) {
    throw new InferenceError('invalid-manifest', `${file}: a text model needs a "text" preprocessing block`);
  }
  if (manifest.kind === 'image' && !manifest.image) {
    throw new InferenceError('invalid-manifest', `${file}: an image model needs an "image" preprocessing block`);
  }
  const roles = new Set(manifest.inputs.map((i) => i.role));
  if (manifest.kind === 'text' && !roles.has('input_ids')) {
    throw new InferenceError('invalid-manifest', `${file}: a text model needs an input with role "input_ids"`);
  }
  if (manifest.kind === 'image' && !roles.has('pixel_values')) {
    throw new InferenceError('invalid-manifest', `${file}: an image model needs an input with role "pixel_values"`);
  }
  return manifest;
}
