import { GraphBuilder } from '../../lib/inference/onnx-graph.js';
import {
  ATTRIBUTE_WORDS,
  CATALOG_BACKGROUND,
  CATALOG_COLORS,
  CATALOG_GAP,
  CATALOG_IMAGE_SIZE,
  CATALOG_PATTERNS,
  CATALOG_SHAPES,
  COLOR_NAMES,
  SIZE_NAMES,
  mulberry32,
} from '../../lib/inference/synthetic-catalog.js';

/**
 * The catalog dual encoder. Both towers map into the same 19-d attribute space — 8 colour, 4 shape, 4 pattern and
 * 3 size coordinates — which is L2-normalised and rotated into 64 dimensions by one random orthonormal projection
 * (per version), then L2-normalised again:
 *
 * - text: WordPiece ids → Gather of designed embeddings (an attribute word, or a synonym, is the unit vector of its
 *   attribute; other tokens are zero) → masked sum over tokens → projection.
 * - image: pixels → per-pixel soft assignment to the 8 colours, the white pattern gap and the grey background (a
 *   1×1 convolution computing squared distances, then Softmax) → colour histogram, object area, bounding box (row
 *   and column maxima), gradient energy of the colour mask beyond the object's outline (difference convolutions), the
 *   share of the object in the lower half → six shape/pattern/size statistics → soft nearest-prototype assignment
 *   (Softmax of negative squared distances) per attribute → projection.
 *
 * The image prototypes are the class means of those statistics over the clean renderings of the grid (nearest
 * centroid), measured by running the statistics graph itself; see generate-models.ts.
 */

/** Attribute coordinates, in order. */
export const ATTRIBUTE_AXES: readonly string[] = [
  ...COLOR_NAMES,
  ...CATALOG_SHAPES,
  ...CATALOG_PATTERNS,
  ...SIZE_NAMES,
];
export const ATTRIBUTE_DIM = ATTRIBUTE_AXES.length; // 19
export const DUAL_DIM = 64;
export const DUAL_MAX_TOKENS = 32;

/** Filler words the tokenizer knows as whole words (they embed to zero). */
export const FILLER_WORDS = [
  'a', 'an', 'the', 'with', 'and', 'in', 'of', 'on', 'item', 'shape', 'pattern', 'color', 'colour', 'coloured',
  'colored', 'photo', 'picture', 'image', 'sticker', 'tile', 'print', 'one', 'some', 'very', 'shaped', 'size',
]; // prettier-ignore

/** The six shape/pattern/size statistics, in the column order of the statistics output. */
export const IMAGE_STATS = ['colorShare', 'gradX', 'gradY', 'fill', 'lowerShare', 'extent'] as const;

/** The statistics each attribute group is decided on, and the weight of each statistic in the distance. */
export const GROUPS = {
  shape: { stats: ['fill', 'lowerShare'], weights: [1, 1], temperature: 0.004 },
  pattern: { stats: ['colorShare', 'gradX', 'gradY'], weights: [1, 1.5, 1.5], temperature: 0.004 },
  size: { stats: ['extent'], weights: [1], temperature: 0.002 },
} as const;

/** Prototypes per group: one row of raw statistics per attribute value. */
export interface ImagePrototypes {
  shape: number[][];
  pattern: number[][];
  size: number[][];
}

/** Words of the text vocabulary: every attribute word and synonym, then the fillers. */
export function dualVocabWords(): string[] {
  return [...Object.values(ATTRIBUTE_WORDS).flat(), ...FILLER_WORDS];
}

/** A `rows × cols` matrix with orthonormal rows (Gram–Schmidt over seeded Gaussian rows), row-major. */
export function orthonormalRows(rows: number, cols: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const m: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const v = Array.from({ length: cols }, gauss);
    for (const u of m) {
      const dot = v.reduce((s, x, i) => s + x * u[i]!, 0);
      for (let i = 0; i < cols; i++) v[i]! -= dot * u[i]!;
    }
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    m.push(v.map((x) => x / norm));
  }
  return Float32Array.from(m.flat());
}

/** Normalises the 19-d attribute vector, projects it to 64-d and normalises again. */
function project(g: GraphBuilder, attrs: string, seed: number): string {
  const unit = g.op('LpNormalization', [attrs], { axis: 1, p: 2 });
  const projected = g.op('MatMul', [
    unit,
    g.floats(orthonormalRows(ATTRIBUTE_DIM, DUAL_DIM, seed), [ATTRIBUTE_DIM, DUAL_DIM]),
  ]);
  return g.op('LpNormalization', [projected], { axis: 1, p: 2 });
}

/** The text tower over `vocab`. */
export function buildTextTower(vocab: readonly string[], seed: number): Uint8Array {
  const g = new GraphBuilder('sluice-dual-text');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const table = new Float32Array(vocab.length * ATTRIBUTE_DIM);
  for (const [value, words] of Object.entries(ATTRIBUTE_WORDS)) {
    const axis = ATTRIBUTE_AXES.indexOf(value);
    for (const w of words) table[vocab.indexOf(w) * ATTRIBUTE_DIM + axis] = 1;
  }
  const emb = g.op('Gather', [g.floats(table, [vocab.length, ATTRIBUTE_DIM]), ids], { axis: 0 });
  const maskF = g.op('Cast', [mask], { to: 1 });
  const masked = g.op('Mul', [emb, g.op('Unsqueeze', [maskF, g.ints([2])])]);
  let pooled = g.op('ReduceSum', [masked, g.ints([1])], { keepdims: 0 });
  // A text with no attribute word pools to zero; a tiny constant keeps the normalisation finite.
  pooled = g.op('Add', [pooled, g.floats(new Array<number>(ATTRIBUTE_DIM).fill(1e-4), [ATTRIBUTE_DIM])]);
  g.output(project(g, pooled, seed), 'text_embeds', 'float', ['batch', DUAL_DIM]);
  return g.toBytes('Sluice catalog dual encoder, text tower (generated; see scripts/models/dual-encoder.ts)');
}

/** Builds the statistics part of the image tower; returns the colour shares [N,8] and the statistics [N,6]. */
function imageStatistics(g: GraphBuilder, pixels: string): { colorShare: string; stats: string } {
  const H = CATALOG_IMAGE_SIZE;
  const eps = g.scalar(1e-6);
  // The input is normalised with mean 0.5 and std 0.5; undo it to get [0,1] RGB.
  const rgb = g.op('Add', [g.op('Mul', [pixels, g.scalar(0.5)]), g.scalar(0.5)]);
  const prototypes = [...COLOR_NAMES.map((c) => CATALOG_COLORS[c]), CATALOG_GAP, CATALOG_BACKGROUND].map((p) =>
    p.map((v) => v / 255),
  );
  const k = prototypes.length;
  const cross = g.op('Conv', [
    rgb,
    g.floats(
      prototypes.flatMap((p) => p.map((v) => -2 * v)),
      [k, 3, 1, 1],
    ),
    g.floats(
      prototypes.map((p) => p.reduce((s, v) => s + v * v, 0)),
      [k],
    ),
  ]);
  const sq = g.op('ReduceSum', [g.op('Mul', [rgb, rgb]), g.ints([1])], { keepdims: 1 });
  const dist2 = g.op('Add', [cross, sq]);
  const assign = g.op('Softmax', [g.op('Mul', [dist2, g.scalar(-1 / 0.01)])], { axis: 1 });
  const slice = (from: number, to: number) => g.op('Slice', [assign, g.ints([from]), g.ints([to]), g.ints([1])]);
  const colors = slice(0, COLOR_NAMES.length);
  const gray = slice(k - 1, k);
  const object = g.op('Sub', [g.scalar(1), gray]); // [N,1,H,W]
  const colorMask = g.op('ReduceSum', [colors, g.ints([1])], { keepdims: 1 });
  const sum23 = (t: string) => g.op('ReduceSum', [t, g.ints([2, 3])], { keepdims: 0 });

  const colorMass = sum23(colors); // [N,8]
  const colorTotal = g.op('ReduceSum', [colorMass, g.ints([1])], { keepdims: 1 });
  const colorShare = g.op('Div', [colorMass, g.op('Add', [colorTotal, eps])]);

  const area = g.op('Add', [sum23(object), eps]); // [N,1]
  const share = g.op('Div', [sum23(colorMask), area]);
  // Horizontal and vertical pixel differences; the object's own outline is subtracted, leaving the pattern's edges.
  const gradient = (t: string, axis: 'x' | 'y') =>
    sum23(g.op('Abs', [g.op('Conv', [t, g.floats([-1, 1], axis === 'x' ? [1, 1, 1, 2] : [1, 1, 2, 1])])]));
  const gradX = g.op('Div', [g.op('Sub', [gradient(colorMask, 'x'), gradient(object, 'x')]), area]);
  const gradY = g.op('Div', [g.op('Sub', [gradient(colorMask, 'y'), gradient(object, 'y')]), area]);
  const height = sum23(g.op('ReduceMax', [object, g.ints([3])], { keepdims: 1 }));
  const width = sum23(g.op('ReduceMax', [object, g.ints([2])], { keepdims: 1 }));
  const box = g.op('Add', [g.op('Mul', [height, width]), eps]);
  const fill = g.op('Div', [area, box]);
  const lower = new Float32Array(H * H);
  lower.fill(1, (H / 2) * H);
  const lowerShare = g.op('Div', [sum23(g.op('Mul', [object, g.floats(lower, [1, 1, H, H])])), area]);
  const extent = g.op('Div', [g.op('Sqrt', [box]), g.scalar(H)]);
  const stats = g.op('Concat', [share, gradX, gradY, fill, lowerShare, extent], { axis: 1 });
  return { colorShare, stats };
}

/** A graph that outputs the raw statistics, used to calibrate the prototypes. */
export function buildImageStatisticsModel(): Uint8Array {
  const g = new GraphBuilder('sluice-dual-image-statistics');
  const pixels = g.input('pixel_values', 'float', ['batch', 3, CATALOG_IMAGE_SIZE, CATALOG_IMAGE_SIZE]);
  const { colorShare, stats } = imageStatistics(g, pixels);
  g.output(colorShare, 'color_share', 'float', ['batch', COLOR_NAMES.length]);
  g.output(stats, 'statistics', 'float', ['batch', IMAGE_STATS.length]);
  return g.toBytes('Sluice catalog dual encoder, image statistics (calibration only)');
}

/** Soft nearest-prototype assignment of one attribute group: Softmax(−Σ w·(s − p)² / T). */
function softAssign(g: GraphBuilder, stats: string, group: keyof typeof GROUPS, prototypes: number[][]): string {
  const spec = GROUPS[group];
  const cols = spec.stats.map((s) => IMAGE_STATS.indexOf(s));
  const d = cols.length;
  // Select and weight the group's statistics: x = stats · S, with S[col_j, j] = sqrt(w_j).
  const select = new Float32Array(IMAGE_STATS.length * d);
  cols.forEach((c, j) => (select[c * d + j] = Math.sqrt(spec.weights[j]!)));
  const x = g.op('MatMul', [stats, g.floats(select, [IMAGE_STATS.length, d])]);
  const p = prototypes.map((row) => row.map((v, j) => v * Math.sqrt(spec.weights[j]!)));
  const k = p.length;
  const xx = g.op('ReduceSum', [g.op('Mul', [x, x]), g.ints([1])], { keepdims: 1 });
  const xp = g.op('MatMul', [
    x,
    g.floats(
      Array.from({ length: d * k }, (_, i) => -2 * p[i % k]![Math.floor(i / k)]!),
      [d, k],
    ),
  ]);
  const pp = g.floats(
    p.map((row) => row.reduce((s, v) => s + v * v, 0)),
    [k],
  );
  const dist2 = g.op('Add', [g.op('Add', [xp, xx]), pp]);
  return g.op('Softmax', [g.op('Mul', [dist2, g.scalar(-1 / spec.temperature)])], { axis: 1 });
}

/** The image tower with calibrated prototypes. */
export function buildImageTower(prototypes: ImagePrototypes, seed: number): Uint8Array {
  const g = new GraphBuilder('sluice-dual-image');
  const pixels = g.input('pixel_values', 'float', ['batch', 3, CATALOG_IMAGE_SIZE, CATALOG_IMAGE_SIZE]);
  const { colorShare, stats } = imageStatistics(g, pixels);
  const attrs = g.op(
    'Concat',
    [
      colorShare,
      softAssign(g, stats, 'shape', prototypes.shape),
      softAssign(g, stats, 'pattern', prototypes.pattern),
      softAssign(g, stats, 'size', prototypes.size),
    ],
    { axis: 1 },
  );
  g.output(project(g, attrs, seed), 'image_embeds', 'float', ['batch', DUAL_DIM]);
  return g.toBytes('Sluice catalog dual encoder, image tower (generated; see scripts/models/dual-encoder.ts)');
}
