import type pg from 'pg';
import { parseLsn } from './lsn.js';
import type { ChangeBatch } from './pgoutput-reader.js';

/**
 * Reading the next batch of a slot while the current one is merged. PostgreSQL decodes a peek in its own backend
 * (the other core), so the next peek can run while this process collapses, upserts and commits the current batch.
 * The slot has not moved yet, so the read-ahead peeks past it: `readChangeBatch` with `startAfter` = the current
 * batch's last commit end LSN, which drops the current batch's transactions in the server.
 *
 * A read-ahead batch is used only by the next merge of the same slot, and only when the slot's confirmed position
 * is exactly the LSN it was read after, i.e. the current batch was committed to Iceberg **and** the slot was
 * advanced past it. WAL past a position never changes, so such a batch is what a fresh peek would return (up to
 * its bound). Anything else (a failed or retried merge, a slot that did not move, a slot moved elsewhere, another
 * batch size) discards it and the merge peeks as before. Exactly-once does not depend on it: the merge still
 * filters every change by the tables' watermarks.
 */

/** What a read-ahead is for: the same source, slot, publication and batch bound, after the same LSN. */
export interface PrefetchKey {
  readonly connectionString: string;
  readonly slot: string;
  readonly publication: string;
  readonly maxChanges: number;
  readonly serverName: string;
}

interface Entry {
  readonly id: string;
  readonly after: bigint;
  readonly startedAtMs: number;
  /** Settles with the batch, or with undefined when the read failed (a failed read-ahead is never used). */
  readonly batch: Promise<ChangeBatch | undefined>;
}

/** Counters, for tests and the benchmark's notes. */
export interface PrefetchStats {
  started: number;
  used: number;
  discarded: number;
  failed: number;
}

function entryId(key: PrefetchKey): string {
  return JSON.stringify([key.connectionString, key.slot, key.publication, key.maxChanges, key.serverName]);
}

/**
 * One read-ahead per slot, in this process. The merge calls {@link BatchPrefetcher.take} before it peeks,
 * {@link BatchPrefetcher.start} once it has its batch, {@link BatchPrefetcher.settle} before it returns (so the slot
 * is free for the advance that follows: a peek holds the slot while the server decodes) and
 * {@link BatchPrefetcher.discard} when it fails.
 */
export class BatchPrefetcher {
  private readonly entries = new Map<string, Entry>();
  readonly stats: PrefetchStats = { started: 0, used: 0, discarded: 0, failed: 0 };

  constructor(
    private readonly options: {
      /** A read-ahead older than this is dropped unused (the merge was paused; the memory goes back). @default 60000 */
      maxAgeMs?: number;
      /** @default Date.now */
      now?: () => number;
    } = {},
  ) {}

  /** Starts reading the batch after `after` (the current batch's last commit end LSN), replacing any other one. */
  start(key: PrefetchKey, after: bigint, read: () => Promise<ChangeBatch>): void {
    const id = entryId(key);
    if (this.entries.has(id)) this.stats.discarded += 1;
    this.stats.started += 1;
    const batch = read().then(
      (b) => b,
      () => {
        this.stats.failed += 1;
        return undefined;
      },
    );
    this.entries.set(id, { id, after, startedAtMs: (this.options.now ?? Date.now)(), batch });
  }

  /** Whether a read-ahead of `key` is held (finished or not). */
  has(key: PrefetchKey): boolean {
    return this.entries.has(entryId(key));
  }

  /**
   * The read-ahead batch of `key` when the slot's confirmed position (`confirmedLsn`, read by the caller just now)
   * is exactly where it was read after; otherwise none, and the read-ahead is dropped either way. Waits for a
   * read-ahead still in flight.
   */
  async take(key: PrefetchKey, confirmedLsn: bigint | undefined): Promise<ChangeBatch | undefined> {
    const id = entryId(key);
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    const batch = await entry.batch;
    const fresh = (this.options.now ?? Date.now)() - entry.startedAtMs <= (this.options.maxAgeMs ?? 60_000);
    if (batch === undefined || !fresh || confirmedLsn === undefined || confirmedLsn !== entry.after) {
      if (batch !== undefined) this.stats.discarded += 1;
      return undefined;
    }
    this.stats.used += 1;
    return batch;
  }

  /** Waits until the read-ahead of `key`, if any, has finished (so its peek no longer holds the slot). */
  async settle(key: PrefetchKey): Promise<void> {
    await this.entries.get(entryId(key))?.batch;
  }

  /** Waits for the read-ahead of `key` to finish and drops it: after a failed merge, nothing read ahead is kept. */
  async discard(key: PrefetchKey): Promise<void> {
    const id = entryId(key);
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    if ((await entry.batch) !== undefined) this.stats.discarded += 1;
  }
}

/** The slot's confirmed position now (`undefined` when the slot has none or does not exist). */
export async function readConfirmedLsn(client: pg.ClientBase, slot: string): Promise<bigint | undefined> {
  const r = await client.query<{ confirmed: string | null }>(
    'SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const text = r.rows[0]?.confirmed;
  return text ? parseLsn(text) : undefined;
}

/** The read-ahead key of a merge's input. */
export function prefetchKeyOf(input: {
  connectionString: string;
  slot: string;
  publication: string;
  maxChanges: number;
  sourceName: string;
}): PrefetchKey {
  return {
    connectionString: input.connectionString,
    slot: input.slot,
    publication: input.publication,
    maxChanges: input.maxChanges,
    serverName: input.sourceName,
  };
}

/** Where a batch read starts: the slot's position, or past a batch being merged (see `readChangeBatch`). */
export interface ReadStart {
  readonly startAfter?: bigint;
  readonly skippedMessages?: number;
}

/**
 * The merge's batch: the read-ahead batch when it is valid for the slot's position now, else a fresh peek. When the
 * batch was cut short (more is waiting), the next one starts reading ahead at once, past this batch's last commit.
 * Without a prefetcher this is just `read(client, {})`.
 */
export async function readBatchWithPrefetch(
  prefetcher: BatchPrefetcher | undefined,
  key: PrefetchKey,
  withClient: <T>(work: (client: pg.ClientBase) => Promise<T>) => Promise<T>,
  read: (client: pg.ClientBase, start: ReadStart) => Promise<ChangeBatch>,
): Promise<ChangeBatch> {
  let batch: ChangeBatch | undefined;
  if (prefetcher?.has(key)) {
    const confirmed = await withClient((c) => readConfirmedLsn(c, key.slot));
    batch = await prefetcher.take(key, confirmed);
  }
  batch ??= await withClient((c) => read(c, {}));
  const after = batch.lastCommitEndLsn;
  if (prefetcher && batch.cutShort && after !== undefined) {
    // A Relation message that came in a skipped transaction is sent again in a read from the advanced slot.
    const skippedMessages = batch.messages + batch.relations.size;
    prefetcher.start(key, after, () => withClient((c) => read(c, { startAfter: after, skippedMessages })));
  }
  return batch;
}
