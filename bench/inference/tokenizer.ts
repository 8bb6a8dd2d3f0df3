/**
 * Tokenizer throughput on one thread: the hand-written WordPiece path (lib/inference/wordpiece.ts) vs
 * @huggingface/tokenizers, through `TextPreprocessor.encode` (what the pool calls), same texts, alternating the two
 * sides. Reports texts per CPU second (process user + system time, so other processes' load on the machine does not
 * count against either side) and per wall second. Used by bench/inference/run.ts (`--tokenizer-only` runs just this).
 */
import { readManifest, type ModelRef } from '../../lib/inference/index.js';
import { mulberry32 } from '../../lib/inference/synthetic-catalog.js';
import { TextPreprocessor } from '../../lib/inference/text-preprocess.js';
import type { Figure } from '../lib/results.js';

interface Rate {
  cpu: number;
  wall: number;
}

function measure(pre: TextPreprocessor, texts: readonly string[]): Rate {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let tokens = 0;
  for (let i = 0; i < texts.length; i++) {
    try {
      tokens += pre.encode(texts[i]!, i).ids.length;
    } catch {
      // Over-long or empty texts are per-item errors; they cost the same on both sides.
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  const cpu = (used.user + used.system) / 1e6;
  if (tokens === 0) throw new Error('no tokens');
  return { cpu: texts.length / cpu, wall: texts.length / wall };
}

/** Texts with accents, CJK, emoji, punctuation and digits (they take the normaliser's general path). */
export function mixedUnicodeTexts(n: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const words = ['Café', 'niño', 'über', 'Straße', '東京', '中文', 'emoji😀', 'naïve', 'résumé', 'red', 'circle'];
  const tail = ['!', '?', ',', '42', '3.14', '👍🏽', '—', '(x)'];
  return Array.from({ length: n }, () =>
    Array.from({ length: 6 + Math.floor(rand() * 14) }, () => pick(words) + (rand() < 0.2 ? pick(tail) : '')).join(' '),
  );
}

/**
 * Texts/s of both tokenizers for `ref` over `texts` (best of `reps` alternating runs each, after a warm-up), as a
 * figure (fast path vs the library as the peer).
 */
export async function compareTokenizers(
  name: string,
  ref: ModelRef,
  texts: readonly string[],
  reps: number,
  log: (...parts: unknown[]) => void,
): Promise<{ figure: Figure; note: string }> {
  const manifest = await readManifest(ref.path);
  const fast = await TextPreprocessor.load(ref.path, manifest);
  const lib = await TextPreprocessor.load(ref.path, manifest, { fastWordPiece: false });
  if (fast.engine !== 'wordpiece') throw new Error(`${ref.path}: the fast WordPiece path does not apply`);
  const warm = texts.slice(0, Math.min(texts.length, 2000));
  measure(fast, warm);
  measure(lib, warm);
  const fastRuns: Rate[] = [];
  const libRuns: Rate[] = [];
  for (let r = 0; r < reps; r++) {
    libRuns.push(measure(lib, texts));
    fastRuns.push(measure(fast, texts));
  }
  const best = (xs: Rate[], k: keyof Rate) => Math.max(...xs.map((x) => x[k]));
  const f = { cpu: best(fastRuns, 'cpu'), wall: best(fastRuns, 'wall') };
  const l = { cpu: best(libRuns, 'cpu'), wall: best(libRuns, 'wall') };
  const round = (x: number) => Math.round(x);
  log(
    `tokenizer ${name}: fast WordPiece ${round(f.cpu)} texts/CPU-s (${round(f.wall)}/wall-s), ` +
      `@huggingface/tokenizers ${round(l.cpu)} texts/CPU-s (${round(l.wall)}/wall-s): ${(f.cpu / l.cpu).toFixed(1)}×`,
  );
  return {
    figure: {
      name: `tokenizer_${name}_fast_wordpiece_vs_library`,
      value: round(f.cpu),
      unit: 'texts per CPU second, one thread',
      peer: { name: '@huggingface/tokenizers 0.2.0, same texts, same TextPreprocessor', value: round(l.cpu) },
      ratio: Math.round((f.cpu / l.cpu) * 100) / 100,
      ratioMeaning: 'fast / library (higher is better)',
      goal: null,
    },
    note:
      `tokenizer ${name}: ${texts.length} texts × ${reps} alternating runs; CPU-time rates fast ` +
      `${fastRuns.map((x) => round(x.cpu)).join(', ')} vs library ${libRuns.map((x) => round(x.cpu)).join(', ')}; ` +
      `wall-time rates fast ${fastRuns.map((x) => round(x.wall)).join(', ')} vs library ` +
      `${libRuns.map((x) => round(x.wall)).join(', ')}`,
  };
}
