import { GraphBuilder, floatAttr } from '../../lib/inference/onnx-graph.js';
import { mulberry32 } from '../../lib/inference/synthetic-catalog.js';

/** Shape of the random transformer encoder (MiniLM-L6-sized). */
export const TRANSFORMER = { layers: 6, hidden: 384, heads: 6, ffn: 1536, maxTokens: 128 } as const;

/**
 * Words of the transformer's vocabulary: every consonant–vowel–consonant syllable and its `##` continuation, so
 * that English-looking text tokenizes into a realistic number of pieces.
 */
export function transformerVocabWords(): string[] {
  const consonants = 'bcdfghklmnprstvwz'.split('');
  const vowels = 'aeiou'.split('');
  const words: string[] = [];
  for (const a of consonants) for (const v of vowels) words.push(a + v);
  for (const a of consonants) for (const v of vowels) for (const b of consonants) words.push(a + v + b);
  return [...words, ...words.map((w) => `##${w}`)];
}

/**
 * A BERT-style encoder with random weights (seeded, N(0, 0.02)): token + position embeddings, `layers` post-norm
 * blocks of multi-head self-attention (additive mask) and a GELU feed-forward, masked mean pooling, L2
 * normalisation. Its vectors mean nothing; it exists so that throughput runs do transformer-sized work.
 */
export function buildTransformer(vocabSize: number, seed: number): Uint8Array {
  const { layers, hidden: H, heads, ffn, maxTokens } = TRANSFORMER;
  const dh = H / heads;
  const rand = mulberry32(seed);
  const normal = (n: number, std = 0.02) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++)
      out[i] = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand()) * std;
    return out;
  };
  const g = new GraphBuilder('sluice-transformer-random');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const ones = (n: number) => g.floats(new Float32Array(n).fill(1), [n]);
  const zeros = (n: number) => g.floats(new Float32Array(n), [n]);
  const layerNorm = (x: string) =>
    g.op('LayerNormalization', [x, ones(H), zeros(H)], { axis: -1, epsilon: floatAttr(1e-12) });
  const linear = (x: string, inDim: number, outDim: number) =>
    g.op('Add', [
      g.op('MatMul', [x, g.floats(normal(inDim * outDim), [inDim, outDim])]),
      g.floats(normal(outDim), [outDim]),
    ]);

  // Embeddings: tokens plus positions 0…sequence−1.
  const tokens = g.op('Gather', [g.floats(normal(vocabSize * H), [vocabSize, H]), ids], { axis: 0 });
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), g.ints([1], [])], { axis: 0 });
  const positions = g.op('Range', [g.ints([0], []), seqLen, g.ints([1], [])]);
  const posEmb = g.op('Gather', [g.floats(normal(maxTokens * H), [maxTokens, H]), positions], { axis: 0 });
  let x = layerNorm(g.op('Add', [tokens, posEmb]));

  // Additive attention mask: 0 where attended, −10000 on padding; [N,1,1,S].
  const maskF = g.op('Cast', [mask], { to: 1 });
  const maskBias = g.op('Unsqueeze', [
    g.op('Mul', [g.op('Sub', [g.scalar(1), maskF]), g.scalar(-10000)]),
    g.ints([1, 2]),
  ]);
  const splitHeads = g.ints([0, 0, heads, dh]);
  const mergeHeads = g.ints([0, 0, H]);
  const scale = g.scalar(1 / Math.sqrt(dh));

  for (let l = 0; l < layers; l++) {
    const heads4 = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, splitHeads])], { perm });
    const q = heads4(linear(x, H, H), [0, 2, 1, 3]); // [N,h,S,dh]
    const k = heads4(linear(x, H, H), [0, 2, 3, 1]); // [N,h,dh,S]
    const v = heads4(linear(x, H, H), [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, k]), scale]), maskBias]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 2, 1, 3] }), mergeHeads]);
    x = layerNorm(g.op('Add', [x, linear(merged, H, H)]));
    // GELU in its erf form, which ONNX Runtime fuses into one kernel.
    const h = linear(x, H, ffn);
    const gelu = g.op('Mul', [
      g.op('Mul', [h, g.scalar(0.5)]),
      g.op('Add', [g.scalar(1), g.op('Erf', [g.op('Div', [h, g.scalar(Math.SQRT2)])])]),
    ]);
    x = layerNorm(g.op('Add', [x, linear(gelu, ffn, H)]));
  }

  const maskU = g.op('Unsqueeze', [maskF, g.ints([2])]);
  const summed = g.op('ReduceSum', [g.op('Mul', [x, maskU]), g.ints([1])], { keepdims: 0 });
  const count = g.op('Max', [g.op('ReduceSum', [maskU, g.ints([1])], { keepdims: 0 }), g.scalar(1)]);
  const pooled = g.op('LpNormalization', [g.op('Div', [summed, count])], { axis: 1, p: 2 });
  g.output(pooled, 'sentence_embedding', 'float', ['batch', H]);
  return g.toBytes(
    'Sluice random-weight transformer encoder for throughput runs (generated; scripts/models/transformer.ts)',
  );
}
