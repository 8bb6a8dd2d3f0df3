import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest, type BundledModels } from '../../../lib/inference/index.js';
import { mulberry32 } from '../../../lib/inference/synthetic-catalog.js';
import { TextPreprocessor } from '../../../lib/inference/text-preprocess.js';
import { FastWordPiece } from '../../../lib/inference/wordpiece.js';
import { tokenizerConfigJson, wordPieceTokenizerJson, wordPieceVocab } from '../../../scripts/models/tokenizer-json.js';
import { transformerVocabWords } from '../../../scripts/models/transformer.js';
import { generateDualModels } from './generated-models.js';

let models: BundledModels;
let cleanup: () => void;
beforeAll(async () => {
  ({ models, cleanup } = await generateDualModels());
}, 120_000);
afterAll(() => cleanup?.());

const read = (dir: string, file: string) => JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as object;

/** Building blocks of the generated texts: every class of character the normaliser and pre-tokenizer treat apart. */
const PIECES = {
  ascii: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.split(''),
  digits: '0123456789'.split(''),
  punct: '.,!?-\'"():;/&#%+*@[]{}<>$^_`|~=\\'.split(''),
  accents: ['é', 'ñ', 'ü', 'É', 'Ñ', 'Ü', 'ç', 'å', 'ø', 'e\u0301', 'n\u0303', 'İ', 'ß', 'Σ', 'ς', 'ﬁ', 'Ⅻ', 'ǅ'],
  cjk: ['中', '文', '字', '一', '㐀', '豈', '𠀀', 'あ', 'カ', '한', '国'],
  emoji: ['😀', '😃', '👍🏽', '👨\u200d👩\u200d👧', '🇫🇷', '❤️', '\u{1F9D1}'],
  controls: [
    '\0',
    '\x01',
    '\x07',
    '\x7f',
    '\x85',
    '\u200b',
    '\u200d',
    '\ufeff',
    '\ufffd',
    '\ue000',
    '\u{F0000}',
    '\ud800',
    '\udc00',
  ],
  spaces: [' ', ' ', ' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u3000', '\u2028', '\u2003'],
  unicodePunct: ['¿', '¡', '«', '»', '—', '…', '、', '。', '「', '§', '¶', '·'],
  added: ['[SEP]', '[CLS]', '[UNK]', '[MASK]', '[PAD]', '[sep]'],
};

/** `count` texts from `vocabWords` and the pieces above, seeded. */
function generateTexts(vocabWords: readonly string[], count: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const words = vocabWords.filter((w) => !w.startsWith('##') && !w.startsWith('['));
  const texts: string[] = ['', ' ', '   \t\n ', '\u3000\u00a0', '\0\x01', '\u200b', '[SEP]', 'x'.repeat(250)];
  const word = (): string => {
    const r = rand();
    if (r < 0.35) return pick(words);
    if (r < 0.45) return pick(words).toUpperCase();
    if (r < 0.55) return Array.from({ length: 1 + Math.floor(rand() * 12) }, () => pick(PIECES.ascii)).join('');
    if (r < 0.62) return Array.from({ length: 1 + Math.floor(rand() * 6) }, () => pick(PIECES.digits)).join('');
    if (r < 0.7) return pick(words) + pick(PIECES.accents) + pick(words);
    if (r < 0.75) return pick(PIECES.cjk) + pick(PIECES.cjk) + (rand() < 0.5 ? pick(words) : '');
    if (r < 0.79) return pick(words) + pick(PIECES.emoji);
    if (r < 0.83) return pick(words) + pick(PIECES.controls) + pick(words);
    if (r < 0.88) return pick(words) + pick(PIECES.punct) + pick(words);
    if (r < 0.9) return pick(PIECES.unicodePunct) + pick(words);
    if (r < 0.93) {
      // Around max_input_chars_per_word (100 here, 8 in one variant).
      const len = pick([7, 8, 9, 99, 100, 101, 150]);
      return Array.from({ length: len }, () => pick(PIECES.ascii)).join('');
    }
    if (r < 0.94) return 'é'.repeat(pick([99, 100, 101]));
    if (r < 0.95) return pick(PIECES.added);
    return pick(words) + pick(words);
  };
  while (texts.length < count) {
    const n = Math.floor(rand() * 14);
    let t = '';
    for (let i = 0; i < n; i++) t += (i > 0 ? pick(PIECES.spaces) : '') + word();
    if (rand() < 0.1) t = pick(PIECES.spaces) + t + pick(PIECES.spaces);
    texts.push(t);
  }
  return texts;
}

interface Variant {
  name: string;
  json: object;
  config: object;
  words: readonly string[];
}

function variants(): Variant[] {
  const out: Variant[] = [];
  for (const [name, ref] of [
    ['sluice-dual-text/1', models.dualText],
    ['sluice-dual-text/2', { ...models.dualText, path: path.join(path.dirname(models.dualText.path), '2') }],
  ] as const) {
    const json = read(ref.path, 'tokenizer.json') as { model: { vocab: Record<string, number> } };
    out.push({ name, json, config: read(ref.path, 'tokenizer_config.json'), words: Object.keys(json.model.vocab) });
  }
  // The transformer's and the demo intent model's tokenizers come from the same generator; build the transformer's
  // here so that the test needs neither the 47 MB model nor `npm run models`.
  const tVocab = wordPieceVocab(transformerVocabWords());
  out.push({
    name: 'sluice-transformer-random/1',
    json: wordPieceTokenizerJson(tVocab),
    config: tokenizerConfigJson(128),
    words: tVocab.map((w) => w.replace(/^##/, '')),
  });
  // Other settings of the supported shape, on a vocabulary that also holds accented, CJK and emoji pieces.
  const base = out[0]!;
  const richVocab = wordPieceVocab([
    ...base.words.filter((w) => !w.startsWith('[')),
    'café',
    'niño',
    '##é',
    '##ñ',
    'é',
    'ü',
    '中',
    '文',
    '中文',
    '😀',
    '##😀',
    '👍',
    '##🏽',
    'Red',
    'CIRCLE',
    '##E',
    'É',
    '𠀀',
    // Halves of a surrogate pair: the library never matches them (it slices at code points), nor must the fast path.
    '\ud83d',
    '##\ude03',
    '@',
    '[',
    ']',
    '$',
    '_',
    '¿',
  ]);
  const rich = wordPieceTokenizerJson(richVocab) as Record<string, unknown> & {
    normalizer: Record<string, unknown>;
    model: Record<string, unknown>;
  };
  const withNorm = (normalizer: object | null, extra: Record<string, unknown> = {}) => ({
    ...rich,
    normalizer,
    ...extra,
  });
  const bert = rich.normalizer;
  const words = richVocab;
  const cfg = tokenizerConfigJson(64);
  out.push({ name: 'rich vocab, default normaliser', json: rich, config: cfg, words });
  out.push({ name: 'strip_accents false', json: withNorm({ ...bert, strip_accents: false }), config: cfg, words });
  out.push({
    name: 'no lowercase, strip_accents true',
    json: withNorm({ ...bert, lowercase: false, strip_accents: true }),
    config: cfg,
    words,
  });
  out.push({
    name: 'no lowercase, strip_accents null',
    json: withNorm({ ...bert, lowercase: false, strip_accents: null }),
    config: cfg,
    words,
  });
  out.push({ name: 'clean_text false', json: withNorm({ ...bert, clean_text: false }), config: cfg, words });
  out.push({
    name: 'handle_chinese_chars false',
    json: withNorm({ ...bert, handle_chinese_chars: false }),
    config: cfg,
    words,
  });
  out.push({ name: 'no normaliser', json: withNorm(null), config: cfg, words });
  out.push({
    name: 'Whitespace pre-tokenizer',
    json: { ...rich, pre_tokenizer: { type: 'Whitespace' } },
    config: cfg,
    words,
  });
  out.push({
    name: 'BertProcessing, max_input_chars_per_word 8',
    json: {
      ...rich,
      post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
      model: { ...rich.model, max_input_chars_per_word: 8 },
    },
    config: cfg,
    words,
  });
  return out;
}

describe('fast WordPiece path vs @huggingface/tokenizers', { timeout: 120_000 }, () => {
  it('gives identical ids on thousands of generated texts for every generated tokenizer and setting', () => {
    const vs = variants();
    expect(vs.length).toBe(12);
    let compared = 0;
    let fastEncoded = 0;
    let unknownSeen = 0;
    let longWords = 0;
    for (const [k, v] of vs.entries()) {
      const lib = new Tokenizer(v.json, v.config);
      const fast = FastWordPiece.create(v.json, v.config);
      expect(fast, v.name).toBeInstanceOf(FastWordPiece);
      const f = fast as FastWordPiece;
      const unk = lib.token_to_id('[UNK]');
      for (const text of generateTexts(v.words, 2000, 100 + k)) {
        const want = lib.encode(text).ids;
        const got = f.encode(text);
        if (got === undefined) {
          // Refused only for texts holding an added token's content; the library handles those.
          expect(
            ['[SEP]', '[CLS]', '[UNK]', '[MASK]', '[PAD]'].some((t) => text.includes(t)),
            v.name,
          ).toBe(true);
        } else {
          fastEncoded++;
          if (got.join(',') !== want.join(',')) {
            // Print the text escaped, so that a failure names the exact characters.
            expect({ variant: v.name, text: JSON.stringify(text), ids: got }).toEqual({
              variant: v.name,
              text: JSON.stringify(text),
              ids: want,
            });
          }
          if (got.includes(unk!)) unknownSeen++;
          if (/\S{101}/u.test(text)) longWords++;
        }
        compared++;
      }
    }
    expect(compared).toBe(24_000);
    // The fast path did the work (only texts with added-token content fell back), and the [UNK] and long-word
    // paths were exercised.
    expect(fastEncoded).toBeGreaterThan(22_000);
    expect(unknownSeen).toBeGreaterThan(500);
    expect(longWords).toBeGreaterThan(50);
  });

  it('refuses tokenizers of another shape, so that the library handles them', () => {
    const json = wordPieceTokenizerJson(wordPieceVocab(['red'])) as Record<string, unknown>;
    const model = json.model as Record<string, unknown>;
    const refused = (j: object, c: object = {}) => 'unsupported' in (FastWordPiece.create(j, c) as object);
    expect(refused(json)).toBe(false);
    expect(refused({ ...json, model: { ...model, type: 'BPE' } })).toBe(true);
    expect(refused({ ...json, normalizer: { type: 'NFKC' } })).toBe(true);
    expect(refused({ ...json, pre_tokenizer: { type: 'Metaspace' } })).toBe(true);
    expect(refused({ ...json, pre_tokenizer: null })).toBe(true);
    expect(refused({ ...json, post_processor: { type: 'RobertaProcessing' } })).toBe(true);
    expect(refused({ ...json, model: { ...model, fuse_unk: true } })).toBe(true);
    expect(refused({ ...json, model: { ...model, unk_token: '<unk>' } })).toBe(true);
    expect(refused(json, { remove_space: true })).toBe(true);
    const added = (json.added_tokens as object[]).map((t) => ({ ...t, normalized: true }));
    expect(refused({ ...json, added_tokens: added })).toBe(true);
  });

  it('is what TextPreprocessor uses for the generated models, with the same ids, truncation and errors', async () => {
    const manifest = await readManifest(models.dualText.path);
    const truncating = { ...manifest, text: { ...manifest.text!, maxTokens: 6, overLength: 'truncate' as const } };
    for (const m of [manifest, truncating]) {
      const fast = await TextPreprocessor.load(models.dualText.path, m);
      const lib = await TextPreprocessor.load(models.dualText.path, m, { fastWordPiece: false });
      expect(fast.engine).toBe('wordpiece');
      expect(lib.engine).toBe('library');
      const words = Object.keys(
        (read(models.dualText.path, 'tokenizer.json') as { model: { vocab: object } }).model.vocab,
      );
      for (const [i, text] of generateTexts(words, 500, 9).entries()) {
        const outcome = (p: TextPreprocessor) => {
          try {
            const t = p.encode(text, i);
            return { ids: Array.from(t.ids), typeIds: t.typeIds && Array.from(t.typeIds) };
          } catch (err) {
            return { error: (err as Error).message };
          }
        };
        expect(outcome(fast), JSON.stringify(text)).toEqual(outcome(lib));
      }
    }
  });
});
