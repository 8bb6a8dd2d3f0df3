import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DynamicBatcher } from './batcher.js';
import { InferenceError, InferenceItemError, ItemsRejectedError } from './errors.js';
import { ImagePreprocessor } from './image-preprocess.js';
import { readManifest, type ModelManifest } from './manifest.js';
import { createSessionOn, type ProviderName, type ProviderRequest } from './providers.js';
import { TextPreprocessor, type TokenizedText } from './text-preprocess.js';
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
   * Worth it where the model outruns one tokenizer thread (small models, GPUs). @default 0
   */
  tokenizerThreads?: number;
  /**
   * Batches of one model running at once: with 2, the next batch's feeds are built while the previous one runs.
   * Measured on an H100 (BENCHMARKS.md, inference §7): no gain over 1 for the generated models. @default 1
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
type ImageItem = Float32Array;

/** A loaded model: its session, preprocessing, batcher and counters. */
class ModelRuntime {
  readonly stats: Omit<ModelStats, 'meanBatchSize' | 'meanBatchMs'>;
  readonly textBatcher?: DynamicBatcher<TextItem, Float32Array>;
  readonly imageBatcher?: DynamicBatcher<ImageItem, Float32Array>;

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
    const timed = async <T>(items: T[], build: (items: T[]) => Record<string, ort.Tensor>) => {
      const started = performance.now();
      const vectors = await this.runBatch(build(items), items.length);
      const runMs = performance.now() - started;
      this.stats.batches++;
      this.stats.items += items.length;
      this.stats.runSeconds += runMs / 1000;
      this.stats.maxBatchSize = Math.max(this.stats.maxBatchSize, items.length);
      opts.onBatch?.({
        model: m.name,
        version: m.version,
        provider: loaded.provider,
        kind: m.kind,
        size: items.length,
        runMs,
      });
      return vectors;
    };
    const batcherOpts = {
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs,
      maxInFlight: opts.batchesInFlight ?? 1,
    };
    if (m.kind === 'text') {
      this.textBatcher = new DynamicBatcher<TextItem, Float32Array>({
        ...batcherOpts,
        run: (items) => timed(items, (b) => this.textFeeds(b)),
      });
    } else {
      this.imageBatcher = new DynamicBatcher<ImageItem, Float32Array>({
        ...batcherOpts,
        run: (items) => timed(items, (b) => this.imageFeeds(b)),
      });
    }
  }

  private get label(): string {
    return `model "${this.loaded.manifest.name}" version ${this.loaded.manifest.version} (${this.loaded.path})`;
  }

  private textFeeds(items: TextItem[]): Record<string, ort.Tensor> {
    const m = this.loaded.manifest;
    const spec = m.text!;
    const seq = spec.padding === 'max' ? spec.maxTokens : Math.max(...items.map((t) => t.ids.length));
    const n = items.length;
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
      const stride = wide ? 2 : 1;
      if (input.role === 'input_ids' && spec.padId !== 0)
        for (let k = 0; k < n * seq; k++) data[k * stride] = spec.padId;
      for (let r = 0; r < n; r++) {
        const item = items[r]!;
        const base = r * seq;
        const len = item.ids.length;
        if (input.role === 'input_ids') for (let j = 0; j < len; j++) data[(base + j) * stride] = item.ids[j]!;
        else if (input.role === 'attention_mask') for (let j = 0; j < len; j++) data[(base + j) * stride] = 1;
        else for (let j = 0; j < len; j++) data[(base + j) * stride] = item.typeIds?.[j] ?? 0;
      }
      feeds[input.name] = new ort.Tensor(wide ? 'int64' : 'int32', buffer, [n, seq]);
    }
    return feeds;
  }

  private imageFeeds(items: ImageItem[]): Record<string, ort.Tensor> {
    const m = this.loaded.manifest;
    const pre = this.image!;
    const data = new Float32Array(items.length * pre.size);
    items.forEach((item, i) => data.set(item, i * pre.size));
    const input = m.inputs.find((i) => i.role === 'pixel_values')!;
    return { [input.name]: new ort.Tensor('float32', data, [items.length, 3, pre.height, pre.width]) };
  }

  private async runBatch(feeds: Record<string, ort.Tensor>, n: number): Promise<Float32Array[]> {
    const m = this.loaded.manifest;
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (err) {
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
    const result = out[m.output.name];
    if (!result) {
      throw new InferenceError(
        'model-input-mismatch',
        `${this.label} has no output tensor "${m.output.name}"; its outputs are ${Object.keys(out).join(', ')}`,
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
    const vectors: Float32Array[] = [];
    if (!tokenLevel) {
      for (let i = 0; i < n; i++) vectors.push(data.slice(i * d, (i + 1) * d));
    } else {
      const seq = dims[1]!;
      const mask = this.maskOf(feeds, n, seq);
      for (let i = 0; i < n; i++) {
        const v = new Float32Array(d);
        if (m.pooling === 'cls') v.set(data.subarray(i * seq * d, i * seq * d + d));
        else {
          let count = 0;
          for (let t = 0; t < seq; t++) {
            if (!mask[i * seq + t]) continue;
            count++;
            const base = (i * seq + t) * d;
            for (let k = 0; k < d; k++) v[k] = v[k]! + data[base + k]!;
          }
          if (count > 0) for (let k = 0; k < d; k++) v[k] = v[k]! / count;
        }
        vectors.push(v);
      }
    }
    if (m.normalize) for (const v of vectors) l2normalize(v);
    result.dispose?.();
    return vectors;
  }

  private maskOf(feeds: Record<string, ort.Tensor>, n: number, seq: number): Uint8Array {
    const input = this.loaded.manifest.inputs.find((i) => i.role === 'attention_mask');
    const mask = new Uint8Array(n * seq).fill(1);
    const t = input ? feeds[input.name] : undefined;
    if (t) {
      const data = t.data as BigInt64Array | Int32Array;
      for (let i = 0; i < n * seq; i++) mask[i] = Number(data[i]) !== 0 ? 1 : 0;
    }
    return mask;
  }

  async release(): Promise<void> {
    const closed = new InferenceError('pool-closed', `${this.label}: the inference pool was closed`);
    this.textBatcher?.close(closed);
    this.imageBatcher?.close(closed);
    await this.tokenizerThreads?.close();
    await this.session.release();
  }
}

function l2normalize(v: Float32Array): void {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm;
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
      if (rt.loaded.manifest.kind === 'text') await this.embedTexts(ref, ['warm up']);
      else {
        const pre = rt.image!;
        await rt.imageBatcher!.submit([new Float32Array(pre.size)]);
      }
    }
  }

  /**
   * Embeds texts; resolves with one outcome per text, in order. Rejected texts (too long, empty) get their
   * {@link InferenceItemError} and do not enter a batch; the others are embedded.
   */
  async embedTextsSettled(model: ModelRef, texts: readonly string[]): Promise<EmbedOutcome[]> {
    const rt = await this.runtime(model);
    if (!rt.text || !rt.textBatcher) {
      throw new InferenceError(
        'wrong-model-kind',
        `model "${rt.loaded.manifest.name}" is an image model; use embedImages`,
      );
    }
    const outcomes = new Array<EmbedOutcome>(texts.length);
    const good: TextItem[] = [];
    const goodIndex: number[] = [];
    const reject = (i: number, error: InferenceItemError) => {
      outcomes[i] = { ok: false, error };
      rt.stats.rejectedItems++;
    };
    if (rt.tokenizerThreads && texts.length >= THREADED_TOKENIZE_MIN) {
      (await rt.tokenizerThreads.encode(texts)).forEach((t, i) => {
        if (t instanceof InferenceItemError) reject(i, t);
        else {
          good.push(t);
          goodIndex.push(i);
        }
      });
    } else {
      texts.forEach((text, i) => {
        try {
          good.push(rt.text!.encode(text, i));
          goodIndex.push(i);
        } catch (err) {
          if (!(err instanceof InferenceItemError)) throw err;
          reject(i, err);
        }
      });
    }
    const vectors = await rt.textBatcher.submit(good);
    vectors.forEach((vector, k) => (outcomes[goodIndex[k]!] = { ok: true, vector }));
    return outcomes;
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

function strict(outcomes: EmbedOutcome[]): Float32Array[] {
  const rejected = outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
  if (rejected.length > 0) throw new ItemsRejectedError(rejected);
  return outcomes.map((o) => (o as { vector: Float32Array }).vector);
}
