import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { InferenceItemError, type ItemErrorKind } from './errors.js';
import type { ModelManifest } from './manifest.js';
import { TextPreprocessor, type PackedTokens, type TokenizedText } from './text-preprocess.js';

/**
 * Tokenization on worker threads. @huggingface/tokenizers runs at roughly 10–15k short texts/s on one thread, far
 * below what ONNX Runtime does with a small model (and what a GPU does with any), so a pool with
 * `tokenizerThreads > 0` spreads large requests over that many threads. The threads load the model's
 * `tokenizer.json` themselves; texts go in, packed ids come back (transferred, not copied). They tokenize through
 * `TextPreprocessor`, so BERT-shaped tokenizers take the fast WordPiece path (wordpiece.ts, ~10× the library).
 *
 * This module is also the threads' entry point: loaded with `workerData.sluiceTokenizer`, it serves requests. Its
 * URL is `import.meta.url`, which is the bundle's own URL when it is bundled (bench/inference/bundle.sh), so a
 * bundled process starts its threads from the same file.
 */

interface ThreadInit {
  dir: string;
  manifest: ModelManifest;
}
interface EncodeRequest {
  id: number;
  texts: string[];
  /** Index of texts[0] in the caller's array, for error messages. */
  offset: number;
}
interface EncodeResponse {
  id: number;
  ids: Int32Array;
  typeIds: Int32Array | undefined;
  starts: Int32Array;
  index: Int32Array;
  errors: { index: number; kind: ItemErrorKind; message: string }[];
}

const init = (workerData as { sluiceTokenizer?: ThreadInit } | null)?.sluiceTokenizer;
if (!isMainThread && init && parentPort) {
  const port = parentPort;
  const pre = await TextPreprocessor.load(init.dir, init.manifest);
  port.on('message', (req: EncodeRequest) => {
    const p = pre.encodeMany(req.texts, req.offset);
    // Copies of the used parts (the packed arrays may be views of larger buffers), transferred, not cloned.
    const ids = p.ids.slice();
    const typeIds = p.typeIds?.slice();
    const starts = p.starts.slice();
    const index = p.index.slice();
    const errors = p.errors.map((e) => ({ index: e.index, kind: e.kind, message: e.message }));
    const res: EncodeResponse = { id: req.id, ids, typeIds, starts, index, errors };
    port.postMessage(res, [ids.buffer, starts.buffer, index.buffer, ...(typeIds ? [typeIds.buffer] : [])]);
  });
}

/** Where the threads start from: this module (or the bundle that holds it). */
const THREAD_URL = new URL(import.meta.url);

/**
 * Starts a thread on this module. From source (TypeScript, under tsx or vitest) the thread first registers tsx's
 * loader: worker threads do not inherit the parent's `--import tsx` hooks on Node 20.
 */
function startThread(data: { sluiceTokenizer: ThreadInit }): Worker {
  if (!THREAD_URL.pathname.endsWith('.ts')) return new Worker(THREAD_URL, { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const code =
    `import(${JSON.stringify(tsx)}).then((m) => { m.register(); ` +
    `return import(${JSON.stringify(THREAD_URL.href)}); })`;
  return new Worker(code, { eval: true, workerData: data });
}

/** A text, tokenized, or the reason it was rejected. */
export type TokenizeOutcome = TokenizedText | InferenceItemError;

/** A fixed set of tokenizer threads for one model. */
export class TokenizerThreads {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (r: EncodeResponse) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private nextWorker = 0;
  private readonly inFlight = new Map<Worker, number>();

  constructor(dir: string, manifest: ModelManifest, threads: number) {
    this.workers = Array.from({ length: threads }, () => {
      const w = startThread({ sluiceTokenizer: { dir, manifest } });
      w.on('message', (res: EncodeResponse) => {
        const p = this.pending.get(res.id);
        this.pending.delete(res.id);
        this.inFlight.set(w, (this.inFlight.get(w) ?? 1) - 1);
        if (this.inFlight.get(w) === 0) w.unref();
        p?.resolve(res);
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      // Idle threads must not keep the process alive; a thread with requests in flight does (see request()).
      w.unref();
      return w;
    });
  }

  /** Resolves once every thread has loaded the tokenizer and answered (a model's warm-up). */
  async warmUp(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.request(['warm up'], 0, w)));
  }

  private request(texts: string[], offset: number, to?: Worker): Promise<EncodeResponse> {
    const id = this.nextId++;
    const worker = to ?? this.workers[this.nextWorker++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.inFlight.set(worker, (this.inFlight.get(worker) ?? 0) + 1);
      worker.ref();
      worker.postMessage({ id, texts, offset } satisfies EncodeRequest);
    });
  }

  /**
   * Tokenizes `texts[0 … n)` on one thread (the next in turn) into packed tokens; `index` and the errors' indexes
   * count from `offset` (the position of `texts[0]` in the caller's array).
   */
  async encodePacked(texts: string[], offset: number): Promise<PackedTokens> {
    const res = await this.request(texts, offset);
    return {
      count: res.index.length,
      ids: res.ids,
      typeIds: res.typeIds,
      starts: res.starts,
      index: res.index,
      errors: res.errors.map((e) => new InferenceItemError(e.kind, e.index, e.message)),
    };
  }

  /** Tokenizes `texts` across the threads; one outcome per text, in order. */
  async encode(texts: readonly string[]): Promise<TokenizeOutcome[]> {
    const per = Math.ceil(texts.length / this.workers.length);
    const parts: Promise<PackedTokens>[] = [];
    for (let start = 0; start < texts.length; start += per)
      parts.push(this.encodePacked(texts.slice(start, start + per), start));
    const outcomes = new Array<TokenizeOutcome>(texts.length);
    for (const p of await Promise.all(parts)) {
      for (const e of p.errors) outcomes[e.index] = e;
      for (let k = 0; k < p.count; k++) {
        const s = p.starts[k]!;
        const e = p.starts[k + 1]!;
        outcomes[p.index[k]!] = { ids: p.ids.subarray(s, e), typeIds: p.typeIds?.subarray(s, e) };
      }
    }
    return outcomes;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
