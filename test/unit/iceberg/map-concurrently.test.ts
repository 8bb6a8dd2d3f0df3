import { describe, expect, it } from 'vitest';
import { mapConcurrently } from '../../../lib/iceberg/maintenance/table-files.js';

describe('mapConcurrently', () => {
  it('keeps the input order with at most `limit` in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapConcurrently([5, 1, 4, 2, 3], 2, async (n, i) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, n));
      inFlight -= 1;
      return `${i}:${n}`;
    });
    expect(out).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3']);
    expect(most).toBe(2);
  });

  it('starts nothing after a failure and throws only once the items in flight have settled', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    const run = mapConcurrently([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 4, async (n) => {
      started.push(n);
      if (n === 0) throw new Error('item 0 failed');
      await new Promise((r) => setTimeout(r, 20));
      finished.push(n);
      return n;
    });
    await expect(run).rejects.toThrow('item 0 failed');
    // Items 1–3 were already in flight and ran to the end before the error came back; none started after it.
    expect(started).toEqual([0, 1, 2, 3]);
    expect(finished.sort()).toEqual([1, 2, 3]);
  });
});
