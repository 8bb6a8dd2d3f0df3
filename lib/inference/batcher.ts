/** Options of a {@link DynamicBatcher}. */
export interface BatcherOptions<T, R> {
  /** Most items per run. */
  maxBatch: number;
  /** Longest an item waits for others before a partial batch runs; 0 runs as soon as the event loop turns. */
  maxWaitMs: number;
  /** Runs one batch; returns one result per item, in order. A throw fails every request with an item in it. */
  run: (items: T[]) => Promise<R[]>;
  /**
   * Batches running at once. 2 lets the next batch's inputs be built on this thread while the previous batch runs
   * in ONNX Runtime's threads (worth it on a GPU, where building the feeds is as long as the run). @default 1
   */
  maxInFlight?: number;
}

interface Request<T, R> {
  items: readonly T[];
  results: R[];
  remaining: number;
  done: boolean;
  resolve: (results: R[]) => void;
  reject: (err: unknown) => void;
}

/** A run of consecutive items of one request that still wait in the queue. */
interface Segment<T, R> {
  request: Request<T, R>;
  start: number;
  end: number;
  enqueuedAt: number;
  /** Submitted with `noWait`: its batch runs without waiting for more items. */
  noWait: boolean;
}

/**
 * Coalesces the items of concurrent callers into batches of up to `maxBatch`, waiting at most `maxWaitMs` for a
 * batch to fill. Runs one batch at a time (an ONNX Runtime session runs on the calling thread anyway) and keeps
 * each caller's items in order. Items queue as segments, so a million-item request costs a few objects, not one
 * per item.
 */
export class DynamicBatcher<T, R> {
  private readonly queue: Segment<T, R>[] = [];
  private queued = 0;
  /** Queued segments submitted with `noWait`. */
  private urgent = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: BatcherOptions<T, R>) {
    if (!(opts.maxBatch >= 1)) throw new RangeError(`maxBatch must be ≥ 1, not ${opts.maxBatch}`);
    if (!(opts.maxWaitMs >= 0)) throw new RangeError(`maxWaitMs must be ≥ 0, not ${opts.maxWaitMs}`);
  }

  /** Items waiting for a batch. */
  get pending(): number {
    return this.queued;
  }

  /**
   * Queues `items`; resolves with their results in order once every one has been through a batch. `noWait`: their
   * batch runs as soon as the event loop turns (with whatever else is queued then), without waiting `maxWaitMs`
   * for more items (a bulk caller's last partial batch).
   */
  submit(items: readonly T[], opts: { noWait?: boolean } = {}): Promise<R[]> {
    if (this.closed) return Promise.reject(new Error('the batcher is closed'));
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<R[]>((resolve, reject) => {
      const request: Request<T, R> = {
        items,
        results: new Array<R>(items.length),
        remaining: items.length,
        done: false,
        resolve,
        reject,
      };
      const noWait = opts.noWait === true;
      this.queue.push({ request, start: 0, end: items.length, enqueuedAt: performance.now(), noWait });
      if (noWait) this.urgent++;
      this.queued += items.length;
      this.schedule();
    });
  }

  /** Fails everything still queued with `reason` and refuses new items. A running batch finishes. */
  close(reason: Error): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const seg of this.queue.splice(0)) this.fail(seg.request, reason);
    this.queued = 0;
    this.urgent = 0;
  }

  private schedule(): void {
    if (this.inFlight >= (this.opts.maxInFlight ?? 1) || this.queued === 0) return;
    const oldest = this.queue[0]!.enqueuedAt;
    const waited = performance.now() - oldest;
    if (this.queued >= this.opts.maxBatch || waited >= this.opts.maxWaitMs || this.urgent > 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      // Run on the next turn so that callers submitting in the same tick coalesce.
      this.inFlight += 1;
      setImmediate(() => void this.runOne());
      return;
    }
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        this.schedule();
      },
      Math.max(0, this.opts.maxWaitMs - waited),
    );
  }

  private take(): Segment<T, R>[] {
    const taken: Segment<T, R>[] = [];
    let room = this.opts.maxBatch;
    while (room > 0 && this.queue.length > 0) {
      const seg = this.queue[0]!;
      const n = Math.min(room, seg.end - seg.start);
      taken.push({ ...seg, end: seg.start + n });
      seg.start += n;
      room -= n;
      if (seg.start === seg.end) {
        this.queue.shift();
        if (seg.noWait) this.urgent--;
      }
    }
    this.queued -= this.opts.maxBatch - room;
    return taken;
  }

  private async runOne(): Promise<void> {
    const segments = this.take();
    // With room for another batch in flight, the next one may start while this one runs.
    this.schedule();
    const items: T[] = [];
    for (const s of segments) for (let i = s.start; i < s.end; i++) items.push(s.request.items[i]!);
    try {
      if (items.length > 0) {
        const results = await this.opts.run(items);
        if (results.length !== items.length) {
          throw new Error(`batch run returned ${results.length} results for ${items.length} items`);
        }
        let k = 0;
        for (const s of segments) {
          const req = s.request;
          for (let i = s.start; i < s.end; i++) req.results[i] = results[k++]!;
          req.remaining -= s.end - s.start;
          if (req.remaining === 0 && !req.done) {
            req.done = true;
            req.resolve(req.results);
          }
        }
      }
    } catch (err) {
      for (const s of segments) this.fail(s.request, err);
    } finally {
      this.inFlight -= 1;
      this.schedule();
    }
  }

  private fail(request: Request<T, R>, err: unknown): void {
    if (request.done) return;
    request.done = true;
    request.reject(err);
    // Drop the request's other queued items: nobody waits for them any more.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const seg = this.queue[i]!;
      if (seg.request === request) {
        this.queued -= seg.end - seg.start;
        if (seg.noWait) this.urgent--;
        this.queue.splice(i, 1);
      }
    }
  }
}
