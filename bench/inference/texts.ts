/** The benchmarks' deterministic texts. */
import { mulberry32 } from '../../lib/inference/synthetic-catalog.js';

/** Deterministic texts: syllable words (one token each for the transformer), `minWords`…`maxWords` long. */
export function syllableTexts(n: number, minWords: number, maxWords: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const c = 'bcdfghklmnprstvwz';
  const v = 'aeiou';
  const pick = (s: string) => s[Math.floor(rand() * s.length)]!;
  return Array.from({ length: n }, () => {
    const words = minWords + Math.floor(rand() * (maxWords - minWords + 1));
    return Array.from({ length: words }, () => pick(c) + pick(v) + (rand() < 0.6 ? pick(c) : '')).join(' ');
  });
}

/** Deterministic catalog-style descriptions for the dual encoder's text tower (well under its 32 tokens). */
export function catalogTexts(n: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const colors = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'black', 'crimson', 'navy'];
  const shapes = ['circle', 'square', 'triangle', 'diamond', 'round', 'box'];
  const patterns = ['solid', 'striped', 'dotted', 'checkered', 'plain', 'spotted'];
  const sizes = ['small', 'medium', 'large', 'tiny', 'big'];
  const fillers = ['a', 'the', 'with', 'sticker', 'tile', 'print', 'item', 'photo of'];
  return Array.from(
    { length: n },
    (_, i) =>
      `${pick(fillers)} ${pick(sizes)} ${pick(colors)} ${pick(patterns)} ${pick(shapes)} ${pick(fillers)} ${i % 997}`,
  );
}
