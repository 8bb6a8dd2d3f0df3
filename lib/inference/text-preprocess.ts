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
   * Tokenizes one text. An empty text, or one over `maxTokens` under `overLength: "error"`, is an
   * {@link InferenceItemError} for item `index`; under `"truncate"` the ids are cut and the last one is the
   * separator again, as Hugging Face's truncation does.
   */
  encode(text: string, index: number): TokenizedText {
    if (text.trim() === '') {
      throw new InferenceItemError('empty-text', index, `item #${index}: the text is empty; nothing to embed`);
    }
    const fastIds = this.fast?.encode(text);
    const encoding = fastIds ? undefined : this.tokenizer.encode(text);
    let ids = fastIds ?? encoding!.ids;
    let typeIds = encoding?.token_type_ids;
    if (ids.length > this.maxTokens) {
      if (this.overLength === 'error') {
        throw new InferenceItemError(
          'text-too-long',
          index,
          `item #${index}: the text has ${ids.length} tokens, over model "${this.modelName}"'s limit of ` +
            `${this.maxTokens} (${text.length} characters); shorten it, or set overLength "truncate" in the manifest`,
        );
      }
      const last = ids[ids.length - 1];
      ids = ids.slice(0, this.maxTokens);
      if (this.sepId !== undefined && last === this.sepId) ids[ids.length - 1] = this.sepId;
      typeIds = typeIds?.slice(0, this.maxTokens);
    }
    return { ids: Int32Array.from(ids), typeIds: typeIds ? Int32Array.from(typeIds) : undefined };
  }
}
