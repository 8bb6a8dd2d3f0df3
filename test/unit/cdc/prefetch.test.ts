import { describe, expect, it } from 'vitest';
import type { ChangeBatch } from '../../../lib/cdc/pgoutput-reader.js';
import { BatchPrefetcher, prefetchKeyOf, readBatchWithPrefetch, type ReadStart } from '../../../lib/cdc/prefetch.js';

const key = prefetchKeyOf({
  connectionString: 'postgres://x/db',
  slot: 's',
  publication: 'p',
  maxChanges: 10,
  sourceName: 'src',
});

function batch(lastCommitEndLsn: bigint | undefined, cutShort: boolean, messages = 7): ChangeBatch {
  return {
    events: [],
    transactions: 1,
    lastCommitEndLsn,
    firstCommitTimeMs: undefined,
    lastCommitTimeMs: undefined,
    cutShort,
    uptoLsn: 1000n,
    advanceTo: lastCommitEndLsn,
    relations: new Map([['public.t', { table: 'public.t', replicaIdentity: 'default', columns: [] }]]),
    bytes: 0,
    messages,
  };
}

describe('BatchPrefetcher', () => {
  it('hands out a read-ahead only when the slot is confirmed exactly where it was read after', async () => {
    const p = new BatchPrefetcher();
    const ahead = batch(200n, false);
    p.start(key, 100n, async () => ahead);
    expect(p.has(key)).toBe(true);
    expect(await p.take(key, 100n)).toBe(ahead);
    expect(p.has(key)).toBe(false);
    expect(p.stats).toEqual({ started: 1, used: 1, discarded: 0, failed: 0 });

    for (const confirmed of [99n, 101n, undefined]) {
      p.start(key, 100n, async () => ahead);
      expect(await p.take(key, confirmed)).toBeUndefined();
      // Dropped either way: a later call with the right position finds nothing.
      expect(await p.take(key, 100n)).toBeUndefined();
    }
    expect(p.stats.discarded).toBe(3);
  });

  it('never hands out a failed, stale or other key read-ahead', async () => {
    let now = 0;
    const p = new BatchPrefetcher({ maxAgeMs: 1000, now: () => now });
    p.start(key, 1n, () => Promise.reject(new Error('peek failed')));
    expect(await p.take(key, 1n)).toBeUndefined();
    expect(p.stats.failed).toBe(1);

    p.start(key, 1n, async () => batch(2n, false));
    now = 1001;
    expect(await p.take(key, 1n)).toBeUndefined();

    p.start(key, 1n, async () => batch(2n, false));
    expect(await p.take({ ...key, maxChanges: 11 }, 1n)).toBeUndefined();
    expect(await p.take({ ...key, slot: 'other' }, 1n)).toBeUndefined();
    expect(p.has(key)).toBe(true);
  });

  it('settle waits for the read in flight and keeps it; discard waits and drops it', async () => {
    const p = new BatchPrefetcher();
    let release!: () => void;
    let done = false;
    p.start(key, 1n, async () => {
      await new Promise<void>((r) => (release = r));
      done = true;
      return batch(2n, false);
    });
    const settled = p.settle(key);
    release();
    await settled;
    expect(done).toBe(true);
    expect(p.has(key)).toBe(true);
    await p.discard(key);
    expect(p.has(key)).toBe(false);
    expect(await p.take(key, 1n)).toBeUndefined();
    await p.settle(key); // nothing held: returns at once
  });
});

describe('readBatchWithPrefetch', () => {
  it('reads ahead only after a batch that was cut short, past its last commit', async () => {
    const p = new BatchPrefetcher();
    const starts: ReadStart[] = [];
    const results = [batch(100n, true, 7), batch(200n, true, 5), batch(300n, false)];
    const read = async (_c: unknown, start: ReadStart) => {
      starts.push(start);
      return results[starts.length - 1]!;
    };
    const confirmed = { lsn: 0n };
    // The confirmed position comes from the slot: a fake client answering pg_replication_slots.
    const client = {
      query: async () => ({ rows: [{ confirmed: `0/${confirmed.lsn.toString(16)}` }] }),
    };
    const connect = <T>(work: (c: never) => Promise<T>) => work(client as never);

    expect(await readBatchWithPrefetch(p, key, connect, read)).toBe(results[0]);
    await p.settle(key);
    // The read-ahead skips the batch's messages plus one per relation (sent again after the advance).
    expect(starts).toEqual([{}, { startAfter: 100n, skippedMessages: 8 }]);

    confirmed.lsn = 100n;
    expect(await readBatchWithPrefetch(p, key, connect, read)).toBe(results[1]);
    await p.settle(key);
    expect(starts).toEqual([{}, { startAfter: 100n, skippedMessages: 8 }, { startAfter: 200n, skippedMessages: 6 }]);

    confirmed.lsn = 200n;
    expect(await readBatchWithPrefetch(p, key, connect, read)).toBe(results[2]);
    // Caught up: nothing is read ahead.
    expect(p.has(key)).toBe(false);
    expect(starts.length).toBe(3);

    // Without a prefetcher it is a plain read.
    expect(await readBatchWithPrefetch(undefined, key, connect, async () => results[0]!)).toBe(results[0]);
  });
});
