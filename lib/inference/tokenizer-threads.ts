import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { InferenceItemError, type ItemErrorKind } from './errors.js';
import type { ModelManifest } from './manifest.js';
import { TextPreprocessor, type TokenizedText } from './text-preprocess.js';

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
  /** Token count per text; −1 for a rejected text. */
  lengths: Int32Array;
  typeIds: Int32Array | undefined;
  errors: { index: number; kind: ItemErrorKind; message: string }[];
}

const init = (workerData as { sluiceTokenizer?: ThreadInit } | null)?.sluiceTokenizer;
if (!isMainThread && init && parentPort) {
  const port = parentPort;
  const pre = await TextPreprocessor.load(init.dir, init.manifest);
  port.on('message', (req: EncodeRequest) => {
    const encoded: (TokenizedText | undefined)[] = [];
    const errors: EncodeResponse['errors'] = [];
    let total = 0;
    req.texts.forEach((text, k) => {
      try {
        const t = pre.encode(text, req.offset + k);
        encoded.push(t);
        total += t.ids.length;
      } catch (err) {
        if (!(err instanceof InferenceItemError)) throw err;
        encoded.push(undefined);
        errors.push({ index: err.index, kind: err.kind, message: err.message });
      }
    });
    const ids = new Int32Array(total);
    const lengths = new Int32Array(req.texts.length);
    const withTypes = encoded.some((t) => t?.typeIds);
    const typeIds = withTypes ? new Int32Array(total) : undefined;
    let at = 0;
    encoded.forEach((t, k) => {
      if (!t) {
        lengths[k] = -1;
        return;
      }
      ids.set(t.ids, at);
      if (typeIds && t.typeIds) typeIds.set(t.typeIds, at);
      lengths[k] = t.ids.length;
      at += t.ids.length;
    });
    const res: EncodeResponse = { id: req.id, ids, lengths, typeIds, errors };
    port.postMessage(res, [ids.buffer, lengths.buffer, ...(typeIds ? [typeIds.buffer] : [])]);
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

  private request(texts: string[], offset: number): Promise<EncodeResponse> {
    const id = this.nextId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.inFlight.set(worker, (this.inFlight.get(worker) ?? 0) + 1);
      worker.ref();
      worker.postMessage({ id, texts, offset } satisfies EncodeRequest);
    });
  }

  /** Tokenizes `texts` across the threads; one outcome per text, in order. */
  async encode(texts: readonly string[]): Promise<TokenizeOutcome[]> {
    const per = Math.ceil(texts.length / this.workers.length);
    const parts: Promise<EncodeResponse>[] = [];
    for (let start = 0; start < texts.length; start += per)
      parts.push(this.request(texts.slice(start, start + per), start));
    const outcomes: TokenizeOutcome[] = [];
    for (const res of await Promise.all(parts)) {
      const errors = new Map(res.errors.map((e) => [e.index, e]));
      let at = 0;
      res.lengths.forEach((len) => {
        const index = outcomes.length;
        if (len < 0) {
          const e = errors.get(index)!;
          outcomes.push(new InferenceItemError(e.kind, e.index, e.message));
          return;
        }
        outcomes.push({ ids: res.ids.subarray(at, at + len), typeIds: res.typeIds?.subarray(at, at + len) });
        at += len;
      });
    }
    return outcomes;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
