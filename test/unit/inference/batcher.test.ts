import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../../lib/inference/batcher.js';

/** A batcher whose run doubles numbers and records the batches it saw. */
function recordingBatcher(maxBatch: number, maxWaitMs: number, fail?: (items: number[]) => boolean) {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher<number, number>({
    maxBatch,
    maxWaitMs,
    run: async (items) => {
      batches.push([...items]);
      await new Promise((r) => setTimeout(r, 2));
      if (fail?.(items)) throw new Error(`batch ${items.join(',')} failed`);
      return items.map((x) => x * 2);
    },
  });
  return { batcher, batches };
}

describe('DynamicBatcher', () => {
  it('coalesces concurrent callers into one batch and hands each its own results in order', async () => {
    const { batcher, batches } = recordingBatcher(64, 50);
    const [a, b, c] = await Promise.all([batcher.submit([1, 2]), batcher.submit([3]), batcher.submit([4, 5, 6])]);
    expect(a).toEqual([2, 4]);
    expect(b).toEqual([6]);
    expect(c).toEqual([8, 10, 12]);
    expect(batches).toEqual([[1, 2, 3, 4, 5, 6]]);
  });

  it('runs one batch at a time by default, and up to maxInFlight at once when asked, results in order', async () => {
    for (const maxInFlight of [1, 2]) {
      let running = 0;
      let peak = 0;
      const releases: (() => void)[] = [];
      const batcher = new DynamicBatcher<number, number>({
        maxBatch: 4,
        maxWaitMs: 0,
        maxInFlight,
        run: async (items) => {
          running += 1;
          peak = Math.max(peak, running);
          // Batches finish in reverse order of start once released, to check results still land in order.
          await new Promise<void>((r) => releases.unshift(r));
          running -= 1;
          return items.map((x) => x * 10);
        },
      });
      const all = batcher.submit(Array.from({ length: 12 }, (_, i) => i));
      for (let released = 0; released < 3;) {
        await new Promise((r) => setTimeout(r, 5));
        const batch = releases.splice(0);
        batch.forEach((release) => release());
        released += batch.length;
      }
      expect(await all).toEqual(Array.from({ length: 12 }, (_, i) => i * 10));
      expect(peak).toBe(maxInFlight);
    }
  });

  it('splits a large request into batches of at most maxBatch, keeping order', async () => {
    const { batcher, batches } = recordingBatcher(4, 5);
    const items = Array.from({ length: 10 }, (_, i) => i);
    const out = await batcher.submit(items);
    expect(out).toEqual(items.map((x) => x * 2));
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat()).toEqual(items);
  });

  it('fills a batch across callers that arrive within maxWaitMs, and runs a partial batch after it', async () => {
    const { batcher, batches } = recordingBatcher(8, 40);
    const first = batcher.submit([1]);
    await new Promise((r) => setTimeout(r, 5));
    const second = batcher.submit([2, 3]);
    expect(await first).toEqual([2]);
    expect(await second).toEqual([4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('items queued while a batch runs go into the next batch together', async () => {
    const { batcher, batches } = recordingBatcher(3, 0);
    const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((x) => batcher.submit([x])));
    expect(results.flat()).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(batches.flat()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(3);
    expect(batches.length).toBeLessThan(7);
  });

  it('a failed batch fails the requests in it, not those in other batches', async () => {
    const { batcher } = recordingBatcher(2, 0, (items) => items.includes(99));
    const bad = batcher.submit([99, 1]);
    const good = batcher.submit([5, 6]);
    await expect(bad).rejects.toThrow('batch 99,1 failed');
    expect(await good).toEqual([10, 12]);
  });

  it('close fails queued requests and refuses new ones', async () => {
    const { batcher } = recordingBatcher(100, 10_000);
    const waiting = batcher.submit([1, 2]);
    batcher.close(new Error('closed for the test'));
    await expect(waiting).rejects.toThrow('closed for the test');
    await expect(batcher.submit([3])).rejects.toThrow('closed');
    expect(batcher.pending).toBe(0);
  });

  it('rejects nonsensical settings', () => {
    expect(() => new DynamicBatcher({ maxBatch: 0, maxWaitMs: 1, run: async () => [] })).toThrow(RangeError);
    expect(() => new DynamicBatcher({ maxBatch: 1, maxWaitMs: -1, run: async () => [] })).toThrow(RangeError);
  });
});
