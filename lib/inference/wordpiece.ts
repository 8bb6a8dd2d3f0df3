/**
 * A fast path for BERT-style WordPiece tokenizers.
 *
 * @huggingface/tokenizers 0.2.0 (a pure-JS port) tokenizes 5–15k short texts/s per thread: its WordPiece loop
 * re-joins the word's characters into a new string for every candidate substring, and its normaliser walks the text
 * character by character into arrays. That makes the inference pool tokenizer-bound for small models and on GPUs
 * (BENCHMARKS.md, "Inference engine"). This module tokenizes the one shape of `tokenizer.json` our models use
 * (BertNormalizer or none, BertPreTokenizer or Whitespace, WordPiece, a `[CLS] … [SEP]` post-processor) directly on
 * string slices with `Map` lookups, and gives the **same ids** as the library (test/unit/inference/wordpiece.test.ts
 * compares them on thousands of generated texts). Anything else is refused by {@link FastWordPiece.create}, and a
 * text that contains an added token's literal content (e.g. `[SEP]` typed into the text) is refused per text by
 * {@link FastWordPiece.encode}; the caller then uses the library.
 *
 * It mirrors the library, not the Rust crate, where the two differ (e.g. the library puts spaces around CJK
 * ideographs of the Basic Multilingual Plane only, and `strip_accents: null` strips when lower-casing).
 */

/** The subset of `tokenizer.json` this module reads. */
interface TokenizerJson {
  added_tokens?: { id: number; content: string; normalized?: boolean }[];
  normalizer?: { type?: string; [key: string]: unknown } | null;
  pre_tokenizer?: { type?: string } | null;
  post_processor?: { type?: string; [key: string]: unknown } | null;
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    unk_token?: string;
    continuing_subword_prefix?: string;
    max_input_chars_per_word?: number;
    fuse_unk?: boolean;
  };
}

interface NormalizerConfig {
  cleanText: boolean;
  chineseChars: boolean;
  lowercase: boolean;
  stripAccents: boolean;
}

/** Punctuation for the BERT pre-tokenizer: Unicode category P plus every ASCII symbol. */
const PUNCT = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const BERT_SPLIT = new RegExp(`[^\\s${PUNCT}]+|[${PUNCT}]`, 'gu');
const WHITESPACE_SPLIT = /\w+|[^\w\s]+/g;
/** Control characters the BertNormalizer drops (tab, newline and carriage return are whitespace instead). */
const CONTROL = /[\0\uFFFD\p{Cf}\p{Co}\p{Cs}]|(?![\t\n\r])\p{Cc}/gu;
const WHITESPACE = /\s/g;
/** CJK ideographs the normaliser surrounds with spaces (UTF-16 code units, as the library tests them). */
const CJK = /[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]/g;
const MARKS = /\p{Mn}/gu;

/** Printable ASCII plus tab, newline, carriage return: the texts the scanner handles without regular expressions. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d)) return false;
  }
  return true;
}

/** ASCII punctuation as the BERT pre-tokenizer sees it (every non-alphanumeric printable character). */
function isAsciiPunct(c: number): boolean {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/** Whether code unit `c` is half of a surrogate pair. */
function isSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdfff;
}

export class FastWordPiece {
  private constructor(
    /** Every token (vocabulary plus added tokens, which win) → id. */
    private readonly first: Map<string, number>,
    /** Continuation pieces, keyed without their prefix → id. */
    private readonly cont: Map<string, number>,
    private readonly maxFirst: number,
    private readonly maxCont: number,
    private readonly unkId: number,
    private readonly maxChars: number,
    private readonly normalizer: NormalizerConfig | undefined,
    private readonly preTokenizer: 'bert' | 'whitespace',
    private readonly before: readonly number[],
    private readonly after: readonly number[],
    private readonly addedContents: readonly string[],
  ) {
    this.addedFirstChars = [...new Set(addedContents.map((c) => c[0]!))];
  }

  /** The distinct first characters of the added tokens' contents (`[` for BERT): one scan each rules most texts out. */
  private readonly addedFirstChars: readonly string[];

  /** Whether `text` contains an added token's content. */
  private holdsAddedToken(text: string): boolean {
    for (const first of this.addedFirstChars) {
      if (!text.includes(first)) continue;
      for (const c of this.addedContents) if (text.includes(c)) return true;
      return false;
    }
    return false;
  }

  /**
   * Builds the fast path for a `tokenizer.json` (and the optional `tokenizer_config.json`), or says why it cannot:
   * the caller then uses @huggingface/tokenizers for this model.
   */
  static create(json: unknown, config: object = {}): FastWordPiece | { unsupported: string } {
    const tj = json as TokenizerJson;
    const model = tj.model;
    if (model?.type !== 'WordPiece') return { unsupported: `model type ${model?.type ?? 'missing'}, not WordPiece` };
    if (!model.vocab || typeof model.vocab !== 'object') return { unsupported: 'WordPiece model without a vocab' };
    if (model.fuse_unk) return { unsupported: 'fuse_unk is set' };
    const prefix = model.continuing_subword_prefix;
    if (typeof prefix !== 'string') return { unsupported: 'no continuing_subword_prefix' };
    if (typeof model.unk_token !== 'string') return { unsupported: 'no unk_token' };
    const cfg = config as { remove_space?: unknown; do_lowercase_and_remove_accent?: unknown };
    if (cfg.remove_space === true || cfg.do_lowercase_and_remove_accent)
      return { unsupported: 'tokenizer_config asks for remove_space or do_lowercase_and_remove_accent' };

    let normalizer: NormalizerConfig | undefined;
    const n = tj.normalizer;
    if (n === null || n === undefined) normalizer = undefined;
    else if (n.type === 'BertNormalizer') {
      const lowercase = Boolean(n.lowercase);
      normalizer = {
        cleanText: Boolean(n.clean_text),
        chineseChars: Boolean(n.handle_chinese_chars),
        lowercase,
        stripAccents: lowercase ? n.strip_accents !== false : Boolean(n.strip_accents),
      };
    } else return { unsupported: `normalizer ${n.type}` };

    const pt = tj.pre_tokenizer?.type;
    const preTokenizer = pt === 'BertPreTokenizer' ? 'bert' : pt === 'Whitespace' ? 'whitespace' : undefined;
    if (!preTokenizer) return { unsupported: `pre_tokenizer ${pt ?? 'none'}` };

    // Vocabulary as the library sees it: the model's, then every added token's content → its id.
    const first = new Map<string, number>(Object.entries(model.vocab));
    const unkModelId = first.get(model.unk_token);
    const added = tj.added_tokens ?? [];
    for (const t of added) {
      if (t.normalized && n) return { unsupported: `added token ${t.content} is normalized` };
      first.set(t.content, t.id);
    }
    const idOf = (token: string): number | undefined => first.get(token) ?? unkModelId;
    const unkId = idOf(model.unk_token);
    if (unkId === undefined) return { unsupported: `unk_token ${model.unk_token} is not in the vocabulary` };

    const cont = new Map<string, number>();
    let maxFirst = 0;
    let maxCont = 0;
    for (const [token, id] of first) {
      maxFirst = Math.max(maxFirst, token.length);
      if (token.startsWith(prefix)) {
        const rest = token.slice(prefix.length);
        cont.set(rest, id);
        maxCont = Math.max(maxCont, rest.length);
      }
    }

    // The post-processor's single-sequence template: ids before and after the text.
    const before: number[] = [];
    const after: number[] = [];
    const pp = tj.post_processor;
    if (pp?.type === 'TemplateProcessing') {
      const single = (pp.single as { SpecialToken?: { id: string }; Sequence?: { id: string } }[] | undefined) ?? [];
      let seen = false;
      for (const item of single) {
        if (item.SpecialToken) {
          const id = idOf(item.SpecialToken.id);
          if (id === undefined) return { unsupported: `template token ${item.SpecialToken.id} has no id` };
          (seen ? after : before).push(id);
        } else if (item.Sequence?.id === 'A' && !seen) seen = true;
        else return { unsupported: 'template other than special tokens around sequence A' };
      }
      if (!seen) return { unsupported: 'template without sequence A' };
    } else if (pp?.type === 'BertProcessing') {
      const cls = (pp.cls as [string, number] | undefined)?.[0];
      const sep = (pp.sep as [string, number] | undefined)?.[0];
      const clsId = cls === undefined ? undefined : idOf(cls);
      const sepId = sep === undefined ? undefined : idOf(sep);
      if (clsId === undefined || sepId === undefined) return { unsupported: 'BertProcessing without cls/sep ids' };
      before.push(clsId);
      after.push(sepId);
    } else if (pp !== null && pp !== undefined) return { unsupported: `post_processor ${pp.type}` };

    return new FastWordPiece(
      first,
      cont,
      maxFirst,
      maxCont,
      unkId,
      model.max_input_chars_per_word ?? 100,
      normalizer,
      preTokenizer,
      before,
      after,
      added.map((t) => t.content).filter((c) => c.length > 0),
    );
  }

  /**
   * The ids of `text`, special tokens included, as the library's `encode(text).ids`; `undefined` when the text
   * contains an added token's content (the library splits those out first; the caller uses it for this text).
   */
  encode(text: string): number[] | undefined {
    const out: number[] = [];
    return this.encodeInto(text, out) ? out : undefined;
  }

  /**
   * {@link encode} appending to `out` (a scratch array the caller reuses, so that a batch of texts allocates no
   * array per text); `false`, with `out` untouched, when the text is for the library.
   */
  encodeInto(text: string, out: number[]): boolean {
    if (this.addedContents.length > 0 && this.holdsAddedToken(text)) return false;
    for (const id of this.before) out.push(id);
    const norm = this.normalizer;
    if (this.preTokenizer === 'bert' && isPlainAscii(text)) {
      // Printable ASCII: cleaning, CJK spacing and accent stripping change nothing; tab/newline/CR are separators.
      const s = norm?.lowercase ? text.toLowerCase() : text;
      let start = -1;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
          if (start >= 0) this.word(s, start, i, false, out);
          start = -1;
        } else if (isAsciiPunct(c)) {
          if (start >= 0) this.word(s, start, i, false, out);
          start = -1;
          this.word(s, i, i + 1, false, out);
        } else if (start < 0) start = i;
      }
      if (start >= 0) this.word(s, start, s.length, false, out);
    } else {
      const s = norm ? normalize(text, norm) : text;
      const re = this.preTokenizer === 'bert' ? BERT_SPLIT : WHITESPACE_SPLIT;
      re.lastIndex = 0;
      for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        const w = m[0];
        let surrogates = false;
        for (let i = 0; i < w.length && !surrogates; i++) surrogates = isSurrogate(w.charCodeAt(i));
        this.word(s, m.index, m.index + w.length, surrogates, out);
      }
    }
    for (const id of this.after) out.push(id);
    return true;
  }

  /** Greedy longest-match-first WordPiece of `s[start, end)`, appending ids to `out`. */
  private word(s: string, start: number, end: number, surrogates: boolean, out: number[]): void {
    // Code point boundaries of the word (only computed when it holds surrogate pairs).
    let bounds: number[] | undefined;
    if (surrogates) {
      bounds = [];
      for (const ch of s.slice(start, end)) bounds.push((bounds.at(-1) ?? 0) + ch.length);
      if (bounds.length > this.maxChars) {
        out.push(this.unkId);
        return;
      }
    } else if (end - start > this.maxChars) {
      out.push(this.unkId);
      return;
    }
    const mark = out.length;
    let at = start;
    while (at < end) {
      const map = at === start ? this.first : this.cont;
      let stop = Math.min(end, at + (at === start ? this.maxFirst : this.maxCont));
      let id: number | undefined;
      while (stop > at) {
        if (!bounds || bounds.includes(stop - start)) {
          id = map.get(s.slice(at, stop));
          if (id !== undefined) break;
        }
        stop--;
      }
      if (id === undefined) {
        out.length = mark;
        out.push(this.unkId);
        return;
      }
      out.push(id);
      at = stop;
    }
  }
}

/** The BertNormalizer's steps, in its order, on the library's character classes. */
function normalize(text: string, n: NormalizerConfig): string {
  let s = text;
  if (n.cleanText) s = s.replace(CONTROL, '').replace(WHITESPACE, ' ');
  if (n.chineseChars) s = s.replace(CJK, ' $& ');
  if (n.lowercase) s = s.toLowerCase();
  if (n.stripAccents) s = s.normalize('NFD').replace(MARKS, '');
  return s;
}
