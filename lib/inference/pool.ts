import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DynamicBatcher } from './batcher.js';
import { InferenceError, InferenceItemError, ItemsRejectedError } from './errors.js';
import { ImagePreprocessor } from './image-preprocess.js';
import { readManifest, type ModelManifest } from './manifest.js';
import { createSessionOn, type ProviderName, type ProviderRequest } from './providers.js';
import { TextPreprocessor, type PackedTokens, type TokenizedText } from './text-preprocess.js';
import { TokenizerThreads } from './tokenizer-threads.js';

/** A model directory (`model.onnx`, `sluice-model.json`, `tokenizer.json` for text) and the version expected in it. */
export interface ModelRef {
  path: string;
  version: string;
}

export type { ProviderName } from './providers.js';

/** One finished batch, for metrics. */
export interface BatchEvent {
  model: string;
  version: string;
  provider: ProviderName;
  kind: 'text' | 'image';
  /** Items in the batch. */
  size: number;
  /** Wall time of building the tensors and `session.run`, in ms. */
  runMs: number;
}

/** Settings of an {@link InferencePool}. */
export interface InferenceOptions {
  /** Execution provider. `auto` takes CUDA when a CUDA-only session can be created, else the CPU. @default 'auto' */
  provider?: ProviderRequest;
  /** ONNX Runtime intra-op threads per session. @default 0 (ONNX Runtime's choice: one per core) */
  intraOpThreads?: number;
  /** ONNX Runtime inter-op threads per session. @default 0 */
  interOpThreads?: number;
  /** Most items per `session.run`. @default 64 */
  maxBatch?: number;
  /** Longest an item waits for a batch to fill, in ms. @default 5 */
  maxWaitMs?: number;
  /**
   * Worker threads that tokenize large text requests (≥ 256 texts) in parallel; 0 tokenizes on the calling thread.
   * A request goes to the threads in pieces of two batches, and each piece runs as soon as it is back, so the
   * threads tokenize while `session.run` holds this thread (onnxruntime-node 1.30 runs the model synchronously on
   * the JS thread). Worth it wherever there are cores to spare (GPU hosts; small models). @default 0
   */
  tokenizerThreads?: number;
  /**
   * Batches of one model the dynamic batcher runs at once. onnxruntime-node 1.30 runs `session.run` synchronously
   * on the JS thread (in a `setImmediate`), so a second batch cannot overlap the first on this thread; measured on
   * an H100 (BENCHMARKS.md, inference §7): no gain over 1. Overlap comes from `tokenizerThreads`. @default 1
   */
  batchesInFlight?: number;
  /** Called after every batch (metrics). */
  onBatch?: (event: BatchEvent) => void;
}

/** A model as the pool holds it. */
export interface LoadedModel {
  manifest: ModelManifest;
  /** The provider the session REALLY runs on (see `detectProviders`). */
  provider: ProviderName;
  dimensions: number;
  /** The resolved model directory. */
  path: string;
  /** How the provider was chosen. */
  providerDetail: string;
}

/** Per-item outcome of the `*Settled` calls. */
export type EmbedOutcome = { ok: true; vector: Float32Array } | { ok: false; error: InferenceItemError };

/** Counters of one loaded model. */
export interface ModelStats {
  model: string;
  version: string;
  path: string;
  provider: ProviderName;
  batches: number;
  items: number;
  rejectedItems: number;
  /** Sum of batch run times, in seconds. */
  runSeconds: number;
  meanBatchSize: number;
  /** Mean run time per batch, in ms. */
  meanBatchMs: number;
  maxBatchSize: number;
}

/** What {@link InferencePool.stats} returns. */
export interface InferenceStats {
  requestedProvider: ProviderRequest;
  maxBatch: number;
  maxWaitMs: number;
  models: ModelStats[];
}

type TextItem = TokenizedText;

/** Requests with at least this many texts go to the tokenizer threads (smaller ones are not worth the hop). */
const THREADED_TOKENIZE_MIN = 256;
/** Texts per tokenizer-thread request, in batches: the first batches run while the threads tokenize the rest. */
const THREAD_PIECE_BATCHES = 2;
type ImageItem = Float32Array;

/**
 * What {@link InferencePool.embedTextBatch} returns: every input's vector in ONE Float32Array (no array, object or
 * promise per item). `vectors.subarray(i * dimensions, (i + 1) * dimensions)` is input `i`'s vector (a view: copy
 * it with `slice` to keep it without keeping the whole batch's buffer).
 */
export interface EmbeddingBatch {
  /** Inputs asked for: the rows of `vectors`. */
  count: number;
  dimensions: number;
  /** `count × dimensions`, row `i` = input `i`; the rows of rejected inputs are zeros. */
  vectors: Float32Array;
  /** The rejected inputs (over-long, empty, undecodable), by ascending index; they entered no batch. */
  rejected: InferenceItemError[];
}

/** A loaded model: its session, preprocessing, batcher and counters. */
class ModelRuntime {
  readonly stats: Omit<ModelStats, 'meanBatchSize' | 'meanBatchMs'>;
  readonly textBatcher?: DynamicBatcher<TextItem, Float32Array>;
  readonly imageBatcher?: DynamicBatcher<ImageItem, Float32Array>;
  readonly maxBatch: number;
  /** Set by `release`: direct batches refuse to start. */
  private released = false;
  private readonly onBatch: InferenceOptions['onBatch'];
  /** The manifest's attention_mask input, if any (mean pooling averages over it; without one, over every position). */
  private readonly hasMask: boolean;

  constructor(
    readonly loaded: LoadedModel,
    private readonly session: ort.InferenceSession,
    readonly text: TextPreprocessor | undefined,
    readonly image: ImagePreprocessor | undefined,
    readonly tokenizerThreads: TokenizerThreads | undefined,
    opts: Required<Pick<InferenceOptions, 'maxBatch' | 'maxWaitMs'>> &
      Pick<InferenceOptions, 'onBatch' | 'batchesInFlight'>,
  ) {
    const m = loaded.manifest;
    this.maxBatch = opts.maxBatch;
    this.onBatch = opts.onBatch;
    this.hasMask = m.inputs.some((i) => i.role === 'attention_mask');
    this.stats = {
      model: m.name,
      version: m.version,
      path: loaded.path,
      provider: loaded.provider,
      batches: 0,
      items: 0,
      rejectedItems: 0,
      runSeconds: 0,
      maxBatchSize: 0,
    };
    const batcherOpts = {
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs,
      maxInFlight: opts.batchesInFlight ?? 1,
    };
    const d = m.dimensions;
    const views = (out: Float32Array, n: number) => {
      const vectors = new Array<Float32Array>(n);
      for (let r = 0; r < n; r++) vectors[r] = out.subarray(r * d, (r + 1) * d);
      return vectors;
    };
    if (m.kind === 'text') {
      this.textBatcher = new DynamicBatcher<TextItem, Float32Array>({
        ...batcherOpts,
        run: async (items) => {
          const out = new Float32Array(items.length * d);
          await this.runTextRows(packItems(items), 0, items.length, out);
          return views(out, items.length);
        },
      });
    } else {
      this.imageBatcher = new DynamicBatcher<ImageItem, Float32Array>({
        ...batcherOpts,
        run: async (items) => {
          const out = new Float32Array(items.length * d);
          await this.timed(items.length, () =>
            this.runFeeds(this.imageFeeds(items), items.length, undefined, out, undefined),
          );
          return views(out, items.length);
        },
      });
    }
  }

  private get label(): string {
    return `model "${this.loaded.manifest.name}" version ${this.loaded.manifest.version} (${this.loaded.path})`;
  }

  /** Runs `batch` (building its feeds and `session.run`), counting it and reporting it to `onBatch`. */
  private async timed(size: number, batch: () => Promise<void>): Promise<void> {
    const started = performance.now();
    await batch();
    const runMs = performance.now() - started;
    this.stats.batches++;
    this.stats.items += size;
    this.stats.runSeconds += runMs / 1000;
    if (size > this.stats.maxBatchSize) this.stats.maxBatchSize = size;
    if (this.onBatch) {
      const m = this.loaded.manifest;
      this.onBatch({ model: m.name, version: m.version, provider: this.loaded.provider, kind: m.kind, size, runMs });
    }
  }

  /**
   * Good texts `from … to` of `p` as ONE batch: pads their ids straight into the batch's feeds, runs the session and
   * writes text `k`'s vector at row `p.index[k]` of `out`.
   */
  runTextRows(p: PackedTokens, from: number, to: number, out: Float32Array): Promise<void> {
    if (this.released) {
      return Promise.reject(new InferenceError('pool-closed', `${this.label}: the inference pool was closed`));
    }
    return this.timed(to - from, () => {
      const { feeds, lengths } = this.textFeeds(p, from, to);
      return this.runFeeds(feeds, to - from, lengths, out, p.index.subarray(from, to));
    });
  }

  /**
   * Embeds every good text of `p` into `out` (row `p.index[k]`): full batches run at once, on their own; the rest
   * (fewer than `maxBatch` texts) goes through the dynamic batcher to share a batch with other callers' texts —
   * without waiting for them when this request is `bulk` (it had at least `maxBatch` texts: its caller has
   * nothing more to add).
   */
  async embedPacked(p: PackedTokens, out: Float32Array, bulk: boolean): Promise<void> {
    const full = p.count - (p.count % this.maxBatch);
    for (let from = 0; from < full; from += this.maxBatch) await this.runTextRows(p, from, from + this.maxBatch, out);
    if (full === p.count) return;
    const rest: TextItem[] = [];
    for (let k = full; k < p.count; k++) {
      const s = p.starts[k]!;
      const e = p.starts[k + 1]!;
      rest.push({ ids: p.ids.subarray(s, e), typeIds: p.typeIds?.subarray(s, e) });
    }
    const vectors = await this.textBatcher!.submit(rest, { noWait: bulk || full > 0 });
    const d = this.loaded.manifest.dimensions;
    for (let k = full; k < p.count; k++) out.set(vectors[k - full]!, p.index[k]! * d);
  }

  private textFeeds(p: PackedTokens, from: number, to: number) {
    const m = this.loaded.manifest;
    const spec = m.text!;
    const n = to - from;
    const lengths = new Int32Array(n);
    let longest = 0;
    for (let r = 0; r < n; r++) {
      const len = p.starts[from + r + 1]! - p.starts[from + r]!;
      lengths[r] = len;
      if (len > longest) longest = len;
    }
    const seq = spec.padding === 'max' ? spec.maxTokens : longest;
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of m.inputs) {
      if (input.role === 'pixel_values') {
        throw new InferenceError(
          'model-input-mismatch',
          `${this.label}: a text model cannot have a pixel_values input`,
        );
      }
      const wide = input.dtype === 'int64';
      const buffer = wide ? new BigInt64Array(n * seq) : new Int32Array(n * seq);
      // int64 values are written as their low 32 bits through an Int32 view (ids are small and non-negative;
      // little-endian, as on every platform onnxruntime-node ships for): a BigInt per token is ~20× slower.
      const data = new Int32Array(buffer.buffer);
      const source = input.role === 'input_ids' ? p.ids : input.role === 'token_type_ids' ? p.typeIds : undefined;
      if (input.role === 'input_ids' && spec.padId !== 0) {
        if (wide) for (let k = 0; k < n * seq; k++) data[k * 2] = spec.padId;
        else data.fill(spec.padId);
      }
      for (let r = 0; r < n; r++) {
        const start = p.starts[from + r]!;
        const len = lengths[r]!;
        const base = r * seq;
        if (input.role === 'attention_mask') {
          if (wide) for (let j = 0; j < len; j++) data[(base + j) * 2] = 1;
          else data.fill(1, base, base + len);
        } else if (source) {
          // Token type ids absent from the packed tokens are all 0: the zeroed buffer already says so.
          if (wide) for (let j = 0; j < len; j++) data[(base + j) * 2] = source[start + j]!;
          else data.set(source.subarray(start, start + len), base);
        }
      }
      feeds[input.name] = new ort.Tensor(wide ? 'int64' : 'int32', buffer, [n, seq]);
    }
    return { feeds, lengths };
  }

  private imageFeeds(items: ImageItem[]): Record<string, ort.Tensor> {
    const m = this.loaded.manifest;
    const pre = this.image!;
    const data = new Float32Array(items.length * pre.size);
    items.forEach((item, i) => data.set(item, i * pre.size));
    const input = m.inputs.find((i) => i.role === 'pixel_values')!;
    return { [input.name]: new ort.Tensor('float32', data, [items.length, 3, pre.height, pre.width]) };
  }

  /**
   * Runs the session on `feeds` (a batch of `n`) and writes batch row `r`'s vector at row `rows[r]` of `out` (row `r`
   * without `rows`), pooled over its first `lengths[r]` tokens for token-level outputs, L2-normalised if the
   * manifest says so.
   */
  private async runFeeds(
    feeds: Record<string, ort.Tensor>,
    n: number,
    lengths: Int32Array | undefined,
    out: Float32Array,
    rows: Int32Array | undefined,
  ): Promise<void> {
    const m = this.loaded.manifest;
    let outputs: ort.InferenceSession.ReturnType;
    try {
      outputs = await this.session.run(feeds);
    } catch (err) {
      if (this.released) {
        throw new InferenceError('pool-closed', `${this.label}: the inference pool was closed`, { cause: err });
      }
      const msg = (err as Error).message ?? String(err);
      const tensor = Object.keys(feeds).find((name) => msg.includes(name)) ?? Object.keys(feeds).join(', ');
      const shapes = Object.entries(feeds)
        .map(([name, t]) => `${name} [${t.dims.join(', ')}] ${t.type}`)
        .join('; ');
      throw new InferenceError(
        'model-input-mismatch',
        `${this.label} refused input tensor ${tensor}: ${msg.split('\n')[0]}; fed ${shapes}; check the manifest's ` +
          'inputs (names, dtypes, shapes) against the ONNX graph',
        { cause: err },
      );
    }
    const result = outputs[m.output.name];
    if (!result) {
      throw new InferenceError(
        'model-input-mismatch',
        `${this.label} has no output tensor "${m.output.name}"; its outputs are ${Object.keys(outputs).join(', ')}`,
      );
    }
    const dims = result.dims;
    const d = m.dimensions;
    const tokenLevel = dims.length === 3;
    if (dims[0] !== n || dims[dims.length - 1] !== d || (tokenLevel && m.pooling === 'none') || dims.length > 3) {
      throw new InferenceError(
        'model-input-mismatch',
        `${this.label}: output tensor "${m.output.name}" has shape [${dims.join(', ')}], expected [${n}, ${d}]` +
          (tokenLevel ? ' or [batch, sequence, D] with pooling "mean"/"cls" in the manifest' : ''),
      );
    }
    const data = result.data as Float32Array;
    const rowOf = (r: number) => (rows ? rows[r]! : r) * d;
    if (!tokenLevel) {
      const contiguous = !rows || n === 0 || rows[n - 1]! - rows[0]! === n - 1;
      if (contiguous) out.set(data.subarray(0, n * d), rowOf(0));
      else for (let r = 0; r < n; r++) out.set(data.subarray(r * d, (r + 1) * d), rowOf(r));
    } else {
      const seq = dims[1]!;
      for (let r = 0; r < n; r++) {
        const at = rowOf(r);
        const base = r * seq * d;
        if (m.pooling === 'cls') {
          out.set(data.subarray(base, base + d), at);
          continue;
        }
        // Mean over the attended positions: the first lengths[r] tokens (every position without a mask input).
        const count = this.hasMask && lengths ? Math.min(lengths[r]!, seq) : seq;
        for (let t = 0; t < count; t++) {
          const b = base + t * d;
          for (let k = 0; k < d; k++) out[at + k] = out[at + k]! + data[b + k]!;
        }
        if (count > 0) for (let k = 0; k < d; k++) out[at + k] = out[at + k]! / count;
      }
    }
    if (m.normalize) for (let r = 0; r < n; r++) l2normalizeAt(out, rowOf(r), d);
    result.dispose?.();
  }

  async release(): Promise<void> {
    this.released = true;
    const closed = new InferenceError('pool-closed', `${this.label}: the inference pool was closed`);
    this.textBatcher?.close(closed);
    this.imageBatcher?.close(closed);
    await this.tokenizerThreads?.close();
    await this.session.release();
  }
}

/** Packs per-item token arrays (the batcher's items) into one {@link PackedTokens}, indexes 0…n−1. */
function packItems(items: readonly TextItem[]): PackedTokens {
  const n = items.length;
  const starts = new Int32Array(n + 1);
  for (let r = 0; r < n; r++) starts[r + 1] = starts[r]! + items[r]!.ids.length;
  const ids = new Int32Array(starts[n]!);
  const typed = items.some((t) => t.typeIds);
  const typeIds = typed ? new Int32Array(starts[n]!) : undefined;
  const index = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const t = items[r]!;
    ids.set(t.ids, starts[r]!);
    if (typeIds && t.typeIds) typeIds.set(t.typeIds, starts[r]!);
    index[r] = r;
  }
  return { count: n, ids, typeIds, starts, index, errors: [] };
}

/** L2-normalises `v[at … at + d)` in place. */
function l2normalizeAt(v: Float32Array, at: number, d: number): void {
  let s = 0;
  for (let i = at; i < at + d; i++) s += v[i]! * v[i]!;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = at; i < at + d; i++) v[i] = v[i]! / norm;
}

/** Checks that the ONNX graph has the inputs and output the manifest names, with compatible fixed sizes. */
function checkSignature(session: ort.InferenceSession, manifest: ModelManifest, label: string): void {
  for (const input of manifest.inputs) {
    const meta = session.inputMetadata.find((mm) => mm.name === input.name);
    if (!meta) {
      throw new InferenceError(
        'model-input-mismatch',
        `${label}: the manifest names input tensor "${input.name}" (${input.role}), but the ONNX graph's inputs are ` +
          `${session.inputNames.join(', ')}`,
      );
    }
    if (meta.isTensor) {
      const graphShape = meta.shape;
      const mismatch =
        graphShape.length !== input.shape.length ||
        graphShape.some(
          (dim, i) => typeof dim === 'number' && typeof input.shape[i] === 'number' && dim !== input.shape[i],
        );
      if (mismatch || (meta.type !== input.dtype && !(meta.type === 'int64' && input.dtype === 'int64'))) {
        throw new InferenceError(
          'model-input-mismatch',
          `${label}: input tensor "${input.name}" is ${meta.type} [${graphShape.join(', ')}] in the ONNX graph but ` +
            `${input.dtype} [${input.shape.join(', ')}] in the manifest`,
        );
      }
    }
  }
  if (!session.outputNames.includes(manifest.output.name)) {
    throw new InferenceError(
      'model-input-mismatch',
      `${label}: the manifest names output tensor "${manifest.output.name}", but the ONNX graph's outputs are ` +
        `${session.outputNames.join(', ')}`,
    );
  }
}

/**
 * A pool of ONNX Runtime sessions keyed by (model directory, version, requested provider), with text and image
 * preprocessing and dynamic batching. Concurrent callers of the same model share batches. Knows nothing of
 * Temporal; activities wrap it.
 */
export class InferencePool {
  private readonly models = new Map<string, Promise<ModelRuntime>>();
  private readonly opts: Required<Omit<InferenceOptions, 'onBatch' | 'batchesInFlight'>> &
    Pick<InferenceOptions, 'onBatch' | 'batchesInFlight'>;
  private closed = false;

  constructor(opts: InferenceOptions = {}) {
    this.opts = {
      provider: opts.provider ?? 'auto',
      intraOpThreads: opts.intraOpThreads ?? 0,
      interOpThreads: opts.interOpThreads ?? 0,
      maxBatch: opts.maxBatch ?? 64,
      maxWaitMs: opts.maxWaitMs ?? 5,
      tokenizerThreads: opts.tokenizerThreads ?? 0,
      ...(opts.batchesInFlight ? { batchesInFlight: opts.batchesInFlight } : {}),
      ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
    };
  }

  private key(ref: ModelRef): string {
    return `${path.resolve(ref.path)}\u0000${ref.version}\u0000${this.opts.provider}`;
  }

  private runtime(ref: ModelRef): Promise<ModelRuntime> {
    if (this.closed) return Promise.reject(new InferenceError('pool-closed', 'the inference pool is closed'));
    const key = this.key(ref);
    let entry = this.models.get(key);
    if (!entry) {
      entry = this.open(ref).then((rt) => {
        this.settled.push(rt);
        return rt;
      });
      // A failed load is not cached: the next call tries again (the file may have been written meanwhile).
      entry.catch(() => this.models.delete(key));
      this.models.set(key, entry);
    }
    return entry;
  }

  private async open(ref: ModelRef): Promise<ModelRuntime> {
    const dir = path.resolve(ref.path);
    const manifest = await readManifest(dir);
    if (manifest.version !== ref.version) {
      throw new InferenceError(
        'model-version-mismatch',
        `model directory ${dir} holds "${manifest.name}" version ${manifest.version}, not the requested version ` +
          `${ref.version}; point at the directory of version ${ref.version}`,
      );
    }
    const label = `model "${manifest.name}" version ${manifest.version} (${dir})`;
    const text = manifest.kind === 'text' ? await TextPreprocessor.load(dir, manifest) : undefined;
    const image = manifest.kind === 'image' ? new ImagePreprocessor(manifest.image!) : undefined;
    const file = path.join(dir, manifest.file);
    let created: Awaited<ReturnType<typeof createSessionOn>>;
    try {
      created = await createSessionOn(file, this.opts.provider, {
        intraOpThreads: this.opts.intraOpThreads,
        interOpThreads: this.opts.interOpThreads,
      });
    } catch (err) {
      if (err instanceof InferenceError) throw err;
      throw new InferenceError(
        'model-not-found',
        `${label}: ONNX Runtime cannot load ${file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    try {
      checkSignature(created.session, manifest, label);
    } catch (err) {
      await created.session.release();
      throw err;
    }
    const loaded: LoadedModel = {
      manifest,
      provider: created.provider,
      dimensions: manifest.dimensions,
      path: dir,
      providerDetail: created.detail,
    };
    const threads =
      text && this.opts.tokenizerThreads > 0
        ? new TokenizerThreads(dir, manifest, this.opts.tokenizerThreads)
        : undefined;
    return new ModelRuntime(loaded, created.session, text, image, threads, this.opts);
  }

  /** Loads a model (once per model, version and provider) and says which provider it really runs on. */
  async load(model: ModelRef): Promise<LoadedModel> {
    return (await this.runtime(model)).loaded;
  }

  /** Loads every model and runs one item through each, so that the first real request pays no start-up cost. */
  async warmUp(models: readonly ModelRef[]): Promise<void> {
    for (const ref of models) {
      const rt = await this.runtime(ref);
      if (rt.loaded.manifest.kind === 'text') {
        await this.embedTexts(ref, ['warm up']);
        await rt.tokenizerThreads?.warmUp();
      } else {
        const pre = rt.image!;
        await rt.imageBatcher!.submit([new Float32Array(pre.size)]);
      }
    }
  }

  /**
   * Embeds texts in bulk: one {@link EmbeddingBatch} (all vectors in one Float32Array, row `i` = `texts[i]`) and the
   * rejected texts (too long, empty: they enter no batch, their rows stay zero). The backfill's path: texts are
   * tokenized straight into flat arrays, full batches run without the dynamic batcher's wait, and no array, object
   * or promise is made per text. With `tokenizerThreads`, large requests are tokenized on the threads a few batches
   * at a time while the first batches run. Smaller requests (under `maxBatch` texts) still share batches with
   * concurrent callers.
   */
  async embedTextBatch(model: ModelRef, texts: readonly string[]): Promise<EmbeddingBatch> {
    const rt = await this.runtime(model);
    if (!rt.text || !rt.textBatcher) {
      throw new InferenceError(
        'wrong-model-kind',
        `model "${rt.loaded.manifest.name}" is an image model; use embedImages`,
      );
    }
    const d = rt.loaded.dimensions;
    const vectors = new Float32Array(texts.length * d);
    const rejected: InferenceItemError[] = [];
    if (rt.tokenizerThreads && texts.length >= THREADED_TOKENIZE_MIN) {
      // All pieces are posted at once; each runs as soon as it is back, while the threads tokenize the next ones.
      const piece = rt.maxBatch * THREAD_PIECE_BATCHES;
      const parts: Promise<PackedTokens>[] = [];
      for (let start = 0; start < texts.length; start += piece)
        parts.push(rt.tokenizerThreads.encodePacked(texts.slice(start, start + piece), start));
      // A failed batch stops the loop; the pieces not awaited yet must not become unhandled rejections.
      for (const part of parts) part.catch(() => undefined);
      for (const part of parts) {
        const packed = await part;
        rejected.push(...packed.errors);
        await rt.embedPacked(packed, vectors, true);
      }
    } else {
      const packed = rt.text.encodeMany(texts);
      rejected.push(...packed.errors);
      await rt.embedPacked(packed, vectors, texts.length >= rt.maxBatch);
    }
    rt.stats.rejectedItems += rejected.length;
    return { count: texts.length, dimensions: d, vectors, rejected };
  }

  /**
   * Embeds texts that are already tokenized (`PackedTokens`, e.g. from `TextPreprocessor.encodeMany` in a reader
   * ahead of the model): row `tokens.index[k]` of the result is good text `k`'s vector, over `rows` rows. The batch
   * path without its tokenizer; `tokens.errors` are passed through as `rejected`. A text longer than the model's
   * `maxTokens` is a `model-input-mismatch` naming the model and `input_ids`.
   */
  async embedTokens(model: ModelRef, tokens: PackedTokens, rows = tokens.count): Promise<EmbeddingBatch> {
    const rt = await this.runtime(model);
    const spec = rt.loaded.manifest.text;
    if (!spec || !rt.textBatcher) {
      throw new InferenceError('wrong-model-kind', `model "${rt.loaded.manifest.name}" is an image model`);
    }
    for (let k = 0; k < tokens.count; k++) {
      const len = tokens.starts[k + 1]! - tokens.starts[k]!;
      const row = tokens.index[k]!;
      if (len > spec.maxTokens || len < 1 || row < 0 || row >= rows) {
        throw new InferenceError(
          'model-input-mismatch',
          `model "${rt.loaded.manifest.name}": tokenized text ${k} (row ${row} of ${rows}) has ${len} ids for ` +
            `input_ids; the model takes 1 to ${spec.maxTokens} per text`,
        );
      }
    }
    const d = rt.loaded.dimensions;
    const vectors = new Float32Array(rows * d);
    await rt.embedPacked(tokens, vectors, tokens.count >= rt.maxBatch);
    return { count: rows, dimensions: d, vectors, rejected: [...tokens.errors] };
  }

  /**
   * Embeds texts; resolves with one outcome per text, in order. Rejected texts (too long, empty) get their
   * {@link InferenceItemError} and do not enter a batch; the others are embedded. The vectors are views of one
   * Float32Array per call ({@link embedTextBatch}); `slice` one to keep it alone.
   */
  async embedTextsSettled(model: ModelRef, texts: readonly string[]): Promise<EmbedOutcome[]> {
    return outcomesOf(await this.embedTextBatch(model, texts));
  }

  /** Embeds texts; throws {@link ItemsRejectedError} when any text is rejected (use the settled variant to go on). */
  async embedTexts(model: ModelRef, texts: readonly string[]): Promise<Float32Array[]> {
    return strict(await this.embedTextsSettled(model, texts));
  }

  /**
   * Embeds encoded images (PNG, JPEG, WebP…); resolves with one outcome per image. Undecodable images get their
   * {@link InferenceItemError}; the others are embedded.
   */
  async embedImagesSettled(model: ModelRef, images: readonly Uint8Array[]): Promise<EmbedOutcome[]> {
    const rt = await this.runtime(model);
    if (!rt.image || !rt.imageBatcher) {
      throw new InferenceError(
        'wrong-model-kind',
        `model "${rt.loaded.manifest.name}" is a text model; use embedTexts`,
      );
    }
    const pre = rt.image;
    const outcomes = new Array<EmbedOutcome>(images.length);
    const decoded = new Array<Float32Array | undefined>(images.length);
    // sharp decodes on libuv's thread pool; a bounded window keeps memory flat for long arrays.
    const window = 16;
    for (let start = 0; start < images.length; start += window) {
      await Promise.all(
        images.slice(start, start + window).map(async (bytes, k) => {
          const i = start + k;
          const out = new Float32Array(pre.size);
          try {
            await pre.decodeInto(bytes, i, out, 0);
            decoded[i] = out;
          } catch (err) {
            if (!(err instanceof InferenceItemError)) throw err;
            outcomes[i] = { ok: false, error: err };
            rt.stats.rejectedItems++;
          }
        }),
      );
    }
    const goodIndex = decoded.flatMap((d, i) => (d ? [i] : []));
    const vectors = await rt.imageBatcher.submit(goodIndex.map((i) => decoded[i]!));
    vectors.forEach((vector, k) => (outcomes[goodIndex[k]!] = { ok: true, vector }));
    return outcomes;
  }

  /** Embeds images; throws {@link ItemsRejectedError} when any image is rejected. */
  async embedImages(model: ModelRef, images: readonly Uint8Array[]): Promise<Float32Array[]> {
    return strict(await this.embedImagesSettled(model, images));
  }

  /** Batches, items, run time and the active provider of every loaded model. */
  stats(): InferenceStats {
    return {
      requestedProvider: this.opts.provider,
      maxBatch: this.opts.maxBatch,
      maxWaitMs: this.opts.maxWaitMs,
      models: this.loadedRuntimes().map((rt) => ({
        ...rt.stats,
        meanBatchSize: rt.stats.batches > 0 ? rt.stats.items / rt.stats.batches : 0,
        meanBatchMs: rt.stats.batches > 0 ? (rt.stats.runSeconds * 1000) / rt.stats.batches : 0,
      })),
    };
  }

  private readonly settled: ModelRuntime[] = [];

  private loadedRuntimes(): ModelRuntime[] {
    return this.settled;
  }

  /** Releases every session; queued requests fail with `pool-closed`. */
  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.models.values()];
    this.models.clear();
    this.settled.length = 0;
    const runtimes = await Promise.allSettled(entries);
    for (const r of runtimes) if (r.status === 'fulfilled') await r.value.release();
  }
}

/** One outcome per input of `batch`: its row (a view) or why it was rejected. */
export function outcomesOf(batch: EmbeddingBatch): EmbedOutcome[] {
  const d = batch.dimensions;
  const outcomes = new Array<EmbedOutcome>(batch.count);
  for (const error of batch.rejected) outcomes[error.index] = { ok: false, error };
  for (let i = 0; i < batch.count; i++)
    outcomes[i] ??= { ok: true, vector: batch.vectors.subarray(i * d, (i + 1) * d) };
  return outcomes;
}

function strict(outcomes: EmbedOutcome[]): Float32Array[] {
  const rejected = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
  if (rejected.length > 0) throw new ItemsRejectedError(rejected);
  return outcomes.map((o) => (o as { vector: Float32Array }).vector);
}
