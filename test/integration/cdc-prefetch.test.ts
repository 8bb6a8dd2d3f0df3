import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readChangeBatch, type ChangeBatch } from '../../lib/cdc/pgoutput-reader.js';
import { BatchPrefetcher, prefetchKeyOf, readBatchWithPrefetch } from '../../lib/cdc/prefetch.js';
import { advanceSlot, dropSlot, ensurePublication, ensureSlot } from '../../lib/cdc/slot.js';

// Reading the next batch ahead, past a slot that has not moved yet (lib/cdc/prefetch.ts), against the real
// PostgreSQL from globalSetup: a batch read with `startAfter` must be exactly the batch a fresh peek returns once the
// slot is advanced there. The file works in its own database and drops it at the end; a missing server fails the
// run (inject throws), never skips.
const postgresUrl = inject('postgresUrl');
const database = `sluice_cdc_prefetch_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();

let admin: pg.Client;
let db: pg.Client;
let other: pg.Client;
const slots: string[] = [];
const now = () => 1_700_000_000_000;

/** Everything a merge uses from a batch, comparable with toEqual (events as plain data). */
function comparable(batch: ChangeBatch) {
  return {
    events: batch.events.map((e) => ({
      envelope: e.envelope,
      position: e.position,
      unchanged: e.unchangedColumns,
      origin: e.origin,
    })),
    transactions: batch.transactions,
    lastCommitEndLsn: batch.lastCommitEndLsn,
    firstCommitTimeMs: batch.firstCommitTimeMs,
    lastCommitTimeMs: batch.lastCommitTimeMs,
    cutShort: batch.cutShort,
    advanceTo: batch.advanceTo,
    relations: Object.fromEntries([...batch.relations].sort(([a], [b]) => a.localeCompare(b))),
  };
}

/**
 * Two tables, a publication and a slot, then a history with what makes a read-ahead hard: transactions that
 * interleave (one begins before another commits and commits after it), a table whose Relation message comes only
 * in an earlier batch, an unpublished table's changes, and a column added in the middle.
 */
async function history(prefix: string): Promise<{ slot: string; publication: string }> {
  const a = `${prefix}_a`;
  const b = `${prefix}_b`;
  await db.query(`CREATE TABLE ${a} (id int PRIMARY KEY, name text, qty int)`);
  await db.query(`CREATE TABLE ${b} (id bigint PRIMARY KEY, note text)`);
  await db.query(`CREATE TABLE ${prefix}_unpublished (id int PRIMARY KEY)`);
  const publication = `pub_${prefix}`;
  await ensurePublication(db, {
    publication,
    tables: [
      { schema: 'public', table: a },
      { schema: 'public', table: b },
    ],
  });
  const slot = `${database}_${prefix}`;
  slots.push(slot);
  await ensureSlot(db, slot);
  await db.query(`INSERT INTO ${a} SELECT g, 'a' || g, g FROM generate_series(1, 4) g`);
  await db.query(`INSERT INTO ${b} SELECT g, 'b' || g FROM generate_series(1, 3) g`);
  // Interleaved: `other` begins first and commits last.
  await other.query('BEGIN');
  await other.query(`INSERT INTO ${a} VALUES (100, 'long', 1)`);
  await db.query(`UPDATE ${b} SET note = 'changed' WHERE id = 2`);
  await db.query(`INSERT INTO ${prefix}_unpublished VALUES (1)`);
  await db.query(`DELETE FROM ${a} WHERE id = 3`);
  await other.query(`UPDATE ${a} SET qty = qty + 1 WHERE id = 1`);
  await other.query('COMMIT');
  for (let t = 0; t < 4; t++) await db.query(`UPDATE ${b} SET note = 'n' || $1::text WHERE id <= 3`, [t]);
  await db.query(`ALTER TABLE ${a} ADD COLUMN extra text`);
  await db.query(`INSERT INTO ${a} VALUES (5, 'e', 5, 'x'), (6, 'f', 6, 'y')`);
  await db.query(`UPDATE ${b} SET note = 'last' WHERE id = 1`);
  await db.query(`DELETE FROM ${a} WHERE id = 100`);
  return { slot, publication };
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  db = new pg.Client({ connectionString: databaseUrl });
  other = new pg.Client({ connectionString: databaseUrl });
  await Promise.all([db.connect(), other.connect()]);
});

afterAll(async () => {
  for (const slot of slots) await dropSlot(db, slot).catch(() => undefined);
  await other?.end();
  await db?.end();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
});

describe('reading a batch ahead of the slot', () => {
  for (const maxChanges of [1, 2, 3, 5]) {
    it(`returns what a fresh peek returns after the advance, batch after batch (maxChanges ${maxChanges})`, async () => {
      const { slot, publication } = await history(`h${maxChanges}`);
      const all = await readAllOnce(`h${maxChanges}_all`, slot, publication);
      let current = await readChangeBatch(db, { slot, publication, maxChanges, now });
      let batches = 1;
      const seen = [...current.events];
      while (current.cutShort) {
        const after = current.lastCommitEndLsn!;
        const ahead = await readChangeBatch(db, {
          slot,
          publication,
          maxChanges,
          now,
          startAfter: after,
          skippedMessages: current.messages,
        });
        await advanceSlot(db, slot, current.advanceTo!);
        const fresh = await readChangeBatch(db, { slot, publication, maxChanges, now });
        expect(comparable(ahead)).toEqual(comparable(fresh));
        expect(ahead.messages).toBeLessThanOrEqual(fresh.messages);
        current = fresh;
        seen.push(...current.events);
        batches += 1;
      }
      // The whole history came through, each change once, in batches.
      expect(batches).toBeGreaterThan(3);
      // (Positions count within a batch and origins name the slot, so only the envelopes compare.)
      expect(seen.map((e) => e.envelope)).toEqual(all.map((e) => e.envelope));
    });
  }

  it('with no skipped-message hint the server limit is used up by the skipped part: a shorter batch, never a wrong one', async () => {
    const { slot, publication } = await history('nohint');
    const first = await readChangeBatch(db, { slot, publication, maxChanges: 4, now });
    expect(first.cutShort).toBe(true);
    const ahead = await readChangeBatch(db, {
      slot,
      publication,
      maxChanges: 4,
      now,
      startAfter: first.lastCommitEndLsn!,
    });
    await advanceSlot(db, slot, first.advanceTo!);
    const fresh = await readChangeBatch(db, { slot, publication, maxChanges: 4, now });
    expect(ahead.cutShort).toBe(true);
    expect(ahead.events.length).toBeLessThanOrEqual(fresh.events.length);
    expect(comparable(ahead).events).toEqual(comparable(fresh).events.slice(0, ahead.events.length));
  });
});

describe('the merge read with a prefetcher', () => {
  it('uses a read-ahead only once the slot is confirmed exactly where it was read after', async () => {
    const { slot, publication } = await history('merge');
    const prefetcher = new BatchPrefetcher();
    const input = { connectionString: databaseUrl, slot, publication, maxChanges: 3, sourceName: 'src' };
    const key = prefetchKeyOf(input);
    let reads = 0;
    const read = () =>
      readBatchWithPrefetch(
        prefetcher,
        key,
        (work) => work(db),
        (c, start) => {
          reads += 1;
          return readChangeBatch(c, { slot, publication, maxChanges: 3, serverName: 'src', now, ...start });
        },
      );
    const first = await read();
    expect(first.cutShort).toBe(true);
    expect(prefetcher.has(key)).toBe(true);
    await prefetcher.settle(key);
    expect(reads).toBe(2);

    // A retry of the same batch (the slot did not move): the read-ahead is dropped and the batch is read again.
    const retried = await read();
    expect(comparable(retried)).toEqual(comparable(first));
    expect(prefetcher.stats).toMatchObject({ used: 0, discarded: 1 });
    await prefetcher.settle(key);

    // After the advance the read-ahead is the next batch, and no peek runs for it.
    await advanceSlot(db, slot, retried.advanceTo!);
    const readsBefore = reads;
    const second = await read();
    expect(prefetcher.stats.used).toBe(1);
    // Only the read-ahead of the batch after it ran (second was cut short too).
    expect(reads).toBe(readsBefore + (second.cutShort ? 1 : 0));
    await prefetcher.settle(key);
    const check = await readChangeBatch(db, { slot, publication, maxChanges: 3, serverName: 'src', now });
    expect(comparable(second)).toEqual(comparable(check));

    // A failed merge discards what was read ahead.
    await prefetcher.discard(key);
    expect(prefetcher.has(key)).toBe(false);
  });
});

/** All changes of a slot in one fresh read (on a copy of the slot, so the original is untouched). */
async function readAllOnce(name: string, slot: string, publication: string) {
  const copy = `${database}_${name}`;
  slots.push(copy);
  await db.query('SELECT pg_copy_logical_replication_slot($1, $2)', [slot, copy]);
  return (await readChangeBatch(db, { slot: copy, publication, maxChanges: 1_000_000, now })).events;
}
