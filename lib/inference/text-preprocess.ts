import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { InferenceError, InferenceItemError } from './errors.js';
import type { ModelManifest } from './manifest.js';
import { FastWordPiece } from './wordpiece.js';

/** One tokenized text, ready to be padded into a batch. */
export interface TokenizedText {
  ids: Int32Array;
  typeIds: Int32Array | undefined;
}

/**
 * Many tokenized texts in three flat arrays (no object or array per text): good text `k` (the `k`-th text that was
 * not rejected) is `texts[index[k]]` and its ids are `ids[starts[k] … starts[k + 1])`. What the batch path pads
 * into a batch's feeds directly.
 */
export interface PackedTokens {
  /** Good texts. */
  count: number;
  ids: Int32Array;
  /** Token type ids, parallel to `ids`; `undefined` when all are 0. */
  typeIds: Int32Array | undefined;
  /** `count + 1` offsets into `ids`. */
  starts: Int32Array;
  /** Index of good text `k` in the caller's array (plus the `offset` given to `encodeMany`). */
  index: Int32Array;
  /** The rejected texts, by ascending index. */
  errors: InferenceItemError[];
}

/** A growable Int32Array. */
class IntBuffer {
  data: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Int32Array(Math.max(16, capacity));
  }
  reserve(extra: number): void {
    if (this.length + extra <= this.data.length) return;
    const grown = new Int32Array(Math.max(this.data.length * 2, this.length + extra));
    grown.set(this.data.subarray(0, this.length));
    this.data = grown;
  }
  trimmed(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

/** The text preprocessing a model's manifest describes: its tokenizer, the token budget and the over-length rule. */
export class TextPreprocessor {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly maxTokens: number,
    readonly overLength: 'error' | 'truncate',
    private readonly sepId: number | undefined,
    private readonly modelName: string,
    /** The hand-written WordPiece path (wordpiece.ts) when the tokenizer has the BERT shape it supports. */
    private readonly fast: FastWordPiece | undefined,
    /** Which tokenizer encodes: `wordpiece` (the fast path, library for texts it refuses) or `library`. */
    readonly engine: 'wordpiece' | 'library',
  ) {}

  /** Loads the tokenizer files the manifest names from the model directory; nothing is downloaded. */
  static async load(
    dir: string,
    manifest: ModelManifest,
    opts: { fastWordPiece?: boolean } = {},
  ): Promise<TextPreprocessor> {
    const text = manifest.text;
    if (!text) throw new InferenceError('invalid-manifest', `model "${manifest.name}" has no text preprocessing`);
    const readJson = async (file: string): Promise<object> => {
      const full = path.join(dir, file);
      try {
        return JSON.parse(await readFile(full, 'utf8')) as object;
      } catch (err) {
        throw new InferenceError('model-not-found', `model "${manifest.name}": cannot read ${full}`, { cause: err });
      }
    };
    const tokenizerJson = await readJson(text.tokenizer);
    const config = text.tokenizerConfig ? await readJson(text.tokenizerConfig) : {};
    const tokenizer = new Tokenizer(tokenizerJson, config);
    const sep = tokenizer.token_to_id('[SEP]') ?? tokenizer.token_to_id('</s>');
    const fast = opts.fastWordPiece === false ? undefined : FastWordPiece.create(tokenizerJson, config);
    const usable = fast instanceof FastWordPiece ? fast : undefined;
    return new TextPreprocessor(
      tokenizer,
      text.maxTokens,
      text.overLength,
      sep,
      manifest.name,
      usable,
      usable ? 'wordpiece' : 'library',
    );
  }

  /**
   * Tokenizes `texts` into one {@link PackedTokens}; same ids, truncation and per-item errors as {@link encode}
   * (error indexes are `offset + i`), without a per-text allocation on the fast WordPiece path.
   */
  encodeMany(texts: readonly string[], offset = 0): PackedTokens {
    const n = texts.length;
    const ids = new IntBuffer(n * 16);
    let types: IntBuffer | undefined;
    const starts = new Int32Array(n + 1);
    const index = new Int32Array(n);
    const errors: InferenceItemError[] = [];
    const scratch: number[] = [];
    let count = 0;
    for (let i = 0; i < n; i++) {
      const text = texts[i]!;
      let tokens: ArrayLike<number>;
      let typeIds: ArrayLike<number> | undefined;
      try {
        if (text.trim() === '') throw this.emptyText(offset + i);
        scratch.length = 0;
        if (this.fast?.encodeInto(text, scratch)) tokens = scratch;
        else {
          const encoding = this.tokenizer.encode(text);
          tokens = encoding.ids;
          typeIds = encoding.token_type_ids;
        }
      } catch (err) {
        if (!(err instanceof InferenceItemError)) throw err;
        errors.push(err);
        continue;
      }
      let len = tokens.length;
      let sepLast = false;
      if (len > this.maxTokens) {
        if (this.overLength === 'error') {
          errors.push(this.tooLong(offset + i, len, text.length));
          continue;
        }
        sepLast = this.sepId !== undefined && tokens[len - 1] === this.sepId;
        len = this.maxTokens;
      }
      ids.reserve(len);
      const at = ids.length;
      const d = ids.data;
      for (let j = 0; j < len; j++) d[at + j] = tokens[j]!;
      if (sepLast) d[at + len - 1] = this.sepId!;
      if (typeIds && !types) {
        types = new IntBuffer(ids.data.length);
        types.length = at;
      }
      if (types) {
        types.reserve(len);
        const t = types.data;
        for (let j = 0; j < len; j++) t[at + j] = typeIds?.[j] ?? 0;
        types.length = at + len;
      }
      ids.length = at + len;
      index[count] = offset + i;
      count++;
      starts[count] = ids.length;
    }
    return {
      count,
      ids: ids.trimmed(),
      typeIds: types?.trimmed(),
      starts: starts.subarray(0, count + 1),
      index: index.subarray(0, count),
      errors,
    };
  }

  private emptyText(index: number): InferenceItemError {
    return new InferenceItemError('empty-text', index, `item #${index}: the text is empty; nothing to embed`);
  }

  private tooLong(index: number, tokens: number, chars: number): InferenceItemError {
    return new InferenceItemError(
      'text-too-long',
      index,
      `item #${index}: the text has ${tokens} tokens, over model "${this.modelName}"'s limit of ` +
        `${this.maxTokens} (${chars} characters); shorten it, or set overLength "truncate" in the manifest`,
    );
  }

  /**
   * Tokenizes one text. An empty text, or one over `maxTokens` under `overLength: "error"`, is an
   * {@link InferenceItemError} for item `index`; under `"truncate"` the ids are cut and the last one is the
   * separator again, as Hugging Face's truncation does.
   */
  encode(text: string, index: number): TokenizedText {
    if (text.trim() === '') throw this.emptyText(index);
    const fastIds = this.fast?.encode(text);
    const encoding = fastIds ? undefined : this.tokenizer.encode(text);
    let ids = fastIds ?? encoding!.ids;
    let typeIds = encoding?.token_type_ids;
    if (ids.length > this.maxTokens) {
      if (this.overLength === 'error') throw this.tooLong(index, ids.length, text.length);
      const last = ids[ids.length - 1];
      ids = ids.slice(0, this.maxTokens);
      if (this.sepId !== undefined && last === this.sepId) ids[ids.length - 1] = this.sepId;
      typeIds = typeIds?.slice(0, this.maxTokens);
    }
    return { ids: Int32Array.from(ids), typeIds: typeIds ? Int32Array.from(typeIds) : undefined };
  }
}
