import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { collapseChanges, fillUnchangedValues, type TableChanges } from '../../lib/cdc/collapse.js';
import { UNAVAILABLE_VALUE_PLACEHOLDER, type ChangeEvent } from '../../lib/cdc/envelope.js';
import { ReplicationError, TruncateError } from '../../lib/cdc/errors.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { readChangeBatch } from '../../lib/cdc/pgoutput-reader.js';
import {
  advanceSlot,
  copyInitialSnapshot,
  dropSlot,
  ensurePublication,
  ensureSlot,
  readSlotStatus,
} from '../../lib/cdc/slot.js';
import { buildIcebergSchema, readSourceTable, type SourceTable } from '../../lib/cdc/source-schema.js';

// The real PostgreSQL from globalSetup (wal_level=logical). Replication slots belong to one database, so this file
// works in its own database and drops it at the end. A missing server fails the run (inject throws), never skips.
const postgresUrl = inject('postgresUrl');
const database = `sluice_cdc_repl_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const databaseUrl = (() => {
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  return url.toString();
})();

let admin: pg.Client;
let db: pg.Client;
let slotCounter = 0;
const slots: string[] = [];

/** A fresh slot name per test, dropped at the end. */
function newSlot(): string {
  const slot = `${database}_s${slotCounter++}`;
  slots.push(slot);
  return slot;
}

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return client;
}

/** A table with an int primary key, published in its own publication, with a slot created after it. */
async function publishedTable(name: string, columns = 'id int PRIMARY KEY, name text, qty int') {
  await db.query(`CREATE TABLE ${name} (${columns})`);
  const publication = `pub_${name}`;
  await ensurePublication(db, { publication, tables: [{ schema: 'public', table: name }] });
  const slot = newSlot();
  await ensureSlot(db, slot);
  return { slot, publication };
}

function ops(events: ChangeEvent[]) {
  return events.map((e) => [e.envelope.op, e.envelope.before, e.envelope.after]);
}

/** Applies collapsed changes to an in-memory table keyed by the first key column's value. */
function applyTo(model: Map<string, Map<number, unknown>>, changes: TableChanges): void {
  if (changes.truncated) model.clear();
  changes.ops.forEach((op, i) => {
    const key = String(changes.keys[i]![0]);
    if (op === 'delete') {
      model.delete(key);
      return;
    }
    model.set(key, new Map([...changes.columns].map(([id, values]) => [id, values[i]])));
  });
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  db = await connect();
});

afterAll(async () => {
  for (const slot of slots) await dropSlot(db, slot).catch(() => undefined);
  await db?.end();
  await admin?.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin?.end();
});

describe('publications and slots', () => {
  it('creates the publication and the slot once, and adds missing tables', async () => {
    await db.query('CREATE TABLE pub_a (id int PRIMARY KEY)');
    await db.query('CREATE TABLE pub_b (id int PRIMARY KEY)');
    const a = { schema: 'public', table: 'pub_a' };
    const b = { schema: 'public', table: 'pub_b' };
    expect(await ensurePublication(db, { publication: 'pub_ab', tables: [a] })).toEqual({
      created: true,
      addedTables: ['public.pub_a'],
    });
    expect(await ensurePublication(db, { publication: 'pub_ab', tables: [a] })).toEqual({
      created: false,
      addedTables: [],
    });
    expect(await ensurePublication(db, { publication: 'pub_ab', tables: [a, b] })).toEqual({
      created: false,
      addedTables: ['public.pub_b'],
    });
    const published = await db.query("SELECT tablename FROM pg_publication_tables WHERE pubname = 'pub_ab' ORDER BY 1");
    expect(published.rows.map((r) => r.tablename)).toEqual(['pub_a', 'pub_b']);

    const slot = newSlot();
    const first = await ensureSlot(db, slot);
    expect(first.created).toBe(true);
    expect(first.confirmedFlushLsn).toBeGreaterThan(0n);
    expect(await ensureSlot(db, slot)).toEqual({ created: false, confirmedFlushLsn: first.confirmedFlushLsn });

    const other = newSlot();
    await db.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [other]);
    await expect(ensureSlot(db, other)).rejects.toMatchObject({ kind: 'slot-mismatch', failureType: 'InvalidInput' });
  });

  it('reports a missing slot or publication with typed errors', async () => {
    await expect(readChangeBatch(db, { slot: 'no_such_slot', publication: 'pub_ab' })).rejects.toMatchObject({
      kind: 'slot-not-found',
      failureType: 'NotFound',
    });
    const slot = newSlot();
    await ensureSlot(db, slot);
    await db.query('INSERT INTO pub_a VALUES (1)');
    const err = await readChangeBatch(db, { slot, publication: 'no_such_pub' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err).toMatchObject({ kind: 'publication-not-found' });
    await expect(readSlotStatus(db, 'no_such_slot')).rejects.toMatchObject({ kind: 'slot-not-found' });
  });
});

describe('reading change batches', () => {
  it('returns inserts, updates and deletes of several transactions as envelopes, in order', async () => {
    const { slot, publication } = await publishedTable('workload');
    await db.query("INSERT INTO workload VALUES (1, 'one', 1), (2, 'two', 2)");
    await db.query("UPDATE workload SET name = 'uno', qty = 10 WHERE id = 1");
    await db.query('DELETE FROM workload WHERE id = 2');
    await db.query('BEGIN');
    await db.query("INSERT INTO workload VALUES (3, 'three', 3)");
    await db.query('UPDATE workload SET id = 4 WHERE id = 3');
    await db.query('COMMIT');

    const batch = await readChangeBatch(db, { slot, publication, serverName: 'shop' });
    expect(ops(batch.events)).toEqual([
      ['c', null, { id: '1', name: 'one', qty: '1' }],
      ['c', null, { id: '2', name: 'two', qty: '2' }],
      ['u', null, { id: '1', name: 'uno', qty: '10' }],
      ['d', { id: '2' }, null],
      ['c', null, { id: '3', name: 'three', qty: '3' }],
      // A key change carries the old key (REPLICA IDENTITY DEFAULT).
      ['u', { id: '3' }, { id: '4', name: 'three', qty: '3' }],
    ]);
    expect(batch.transactions).toBe(4);
    expect(batch.cutShort).toBe(false);
    const first = batch.events[0]!;
    expect(first.encoding).toBe('pg-text');
    expect(first.envelope.source).toMatchObject({
      connector: 'postgresql',
      name: 'shop',
      db: database,
      schema: 'public',
      table: 'workload',
    });
    expect(first.envelope.source.txId).toBeGreaterThan(0);
    expect(first.envelope.transaction).toMatchObject({ total_order: 1, data_collection_order: 1 });

    // Transactions are in commit order; events of one transaction share its commit LSN.
    const commits = batch.events.map((e) => e.position.commitLsn);
    expect(commits[0]).toBe(commits[1]);
    expect(commits[1]! < commits[2]! && commits[2]! < commits[3]! && commits[3]! < commits[4]!).toBe(true);
    expect(commits[4]).toBe(commits[5]);
    for (const e of batch.events) expect(e.position.commitEndLsn).toBeGreaterThan(e.position.commitLsn);
    expect(batch.lastCommitEndLsn).toBe(batch.events[5]!.position.commitEndLsn);
    expect(batch.advanceTo).toBe(batch.uptoLsn);
    expect(batch.uptoLsn).toBeGreaterThanOrEqual(batch.lastCommitEndLsn!);
    expect(batch.relations.get('public.workload')?.columns.map((c) => c.name)).toEqual(['id', 'name', 'qty']);
    expect(batch.firstCommitTimeMs).toBeGreaterThan(Date.now() - 600_000);

    const source = await readSourceTable(db, { schema: 'public', table: 'workload' });
    const collapsed = collapseChanges(batch.events, {
      tables: [{ source, schema: buildIcebergSchema(source).schema }],
    }).tables.get('public.workload')!;
    expect(collapsed.ops).toEqual(['upsert', 'delete', 'delete', 'upsert']);
    expect(collapsed.keys).toEqual([[1], [2], [3], [4]]);
    expect(collapsed.watermark).toBe(batch.lastCommitEndLsn);
  });

  it('stops batches at transaction boundaries', async () => {
    const { slot, publication } = await publishedTable('bounded');
    for (let t = 0; t < 3; t += 1) {
      await db.query('INSERT INTO bounded SELECT g, NULL, $1 FROM generate_series($2::int, $2::int + 4) g', [
        t,
        t * 10,
      ]);
    }
    const batch = await readChangeBatch(db, { slot, publication, maxChanges: 6, fetchSize: 4 });
    // Six changes end inside the second transaction, which comes back whole.
    expect(batch.events.length).toBe(10);
    expect(batch.transactions).toBe(2);
    expect(batch.cutShort).toBe(true);
    expect(batch.advanceTo).toBe(batch.lastCommitEndLsn);
    expect(new Set(batch.events.map((e) => e.envelope.after?.qty))).toEqual(new Set(['0', '1']));

    await advanceSlot(db, slot, batch.advanceTo!);
    const rest = await readChangeBatch(db, { slot, publication, maxChanges: 6 });
    expect(rest.events.map((e) => e.envelope.after?.qty)).toEqual(['2', '2', '2', '2', '2']);
  });

  it('peeks without consuming until the slot is advanced, and an advance is idempotent', async () => {
    const { slot, publication } = await publishedTable('peeked');
    await db.query("INSERT INTO peeked VALUES (1, 'a', 1)");
    const first = await readChangeBatch(db, { slot, publication });
    const again = await readChangeBatch(db, { slot, publication });
    expect(ops(again.events)).toEqual(ops(first.events));
    expect(again.events.map((e) => e.position)).toEqual(first.events.map((e) => e.position));

    const advanced = await advanceSlot(db, slot, first.advanceTo!);
    expect(advanced.moved).toBe(true);
    expect(advanced.confirmedFlushLsn).toBe(first.advanceTo);
    expect((await readChangeBatch(db, { slot, publication })).events).toEqual([]);
    expect((await advanceSlot(db, slot, first.advanceTo!)).moved).toBe(false);

    await db.query("INSERT INTO peeked VALUES (2, 'b', 2)");
    expect(ops((await readChangeBatch(db, { slot, publication })).events)).toEqual([
      ['c', null, { id: '2', name: 'b', qty: '2' }],
    ]);
  });

  it('turns a TRUNCATE into a truncate event that the merge refuses unless told to apply it', async () => {
    const { slot, publication } = await publishedTable('truncated');
    await db.query("INSERT INTO truncated VALUES (1, 'a', 1)");
    await db.query('TRUNCATE truncated');
    await db.query("INSERT INTO truncated VALUES (2, 'b', 2)");
    const batch = await readChangeBatch(db, { slot, publication });
    expect(batch.events.map((e) => e.envelope.op)).toEqual(['c', 't', 'c']);
    const source = await readSourceTable(db, { schema: 'public', table: 'truncated' });
    const tables = [{ source, schema: buildIcebergSchema(source).schema }];
    expect(() => collapseChanges(batch.events, { tables })).toThrow(TruncateError);
    const applied = collapseChanges(batch.events, { tables, onTruncate: 'apply' }).tables.get('public.truncated')!;
    expect(applied.truncated).toBe(true);
    expect(applied.keys).toEqual([[2]]);
  });
});

describe('partitioned tables', () => {
  it('publishes changes under the root table, and copies every partition', async () => {
    await db.query('CREATE TABLE parted (id int PRIMARY KEY, region text) PARTITION BY HASH (id)');
    await db.query('CREATE TABLE parted_0 PARTITION OF parted FOR VALUES WITH (MODULUS 2, REMAINDER 0)');
    await db.query('CREATE TABLE parted_1 PARTITION OF parted FOR VALUES WITH (MODULUS 2, REMAINDER 1)');
    await db.query("INSERT INTO parted SELECT g, 'r' || g FROM generate_series(1, 10) g");
    await ensurePublication(db, { publication: 'pub_parted', tables: [{ schema: 'public', table: 'parted' }] });
    const source = await readSourceTable(db, { schema: 'public', table: 'parted' });
    expect(source.relkind).toBe('p');
    const slot = newSlot();
    const copied: ChangeEvent[] = [];
    await copyInitialSnapshot({
      connection: databaseUrl,
      slot,
      tables: [source],
      onChunk: async (_t, events) => {
        copied.push(...events);
      },
    });
    expect(copied.map((e) => Number(e.envelope.after!.id)).sort((a, b) => a - b)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    await db.query("INSERT INTO parted VALUES (11, 'x'), (12, 'y')");
    const batch = await readChangeBatch(db, { slot, publication: 'pub_parted' });
    expect(batch.events.map((e) => [e.envelope.source.table, e.envelope.after!.id])).toEqual([
      ['parted', '11'],
      ['parted', '12'],
    ]);
  });
});

describe('replica identity', () => {
  // Incompressible, so that PostgreSQL stores it out of line (TOAST) instead of compressing it inline.
  const bigText = randomBytes(3000).toString('hex');

  it('DEFAULT: an unchanged TOASTed value is marked, and the merge keeps the current value', async () => {
    const { slot, publication } = await publishedTable('toasted', 'id int PRIMARY KEY, doc text, qty int');
    await db.query('INSERT INTO toasted VALUES (1, $1, 1), (2, $1, 2)', [bigText]);
    const inserted = await readChangeBatch(db, { slot, publication });
    await advanceSlot(db, slot, inserted.advanceTo!);
    await db.query('UPDATE toasted SET qty = qty + 10');

    const batch = await readChangeBatch(db, { slot, publication });
    expect(batch.events.map((e) => [e.envelope.op, e.unchangedColumns, e.envelope.after?.doc])).toEqual([
      ['u', ['doc'], UNAVAILABLE_VALUE_PLACEHOLDER],
      ['u', ['doc'], UNAVAILABLE_VALUE_PLACEHOLDER],
    ]);
    expect(batch.events[0]!.envelope.before).toBeNull();

    // The merge reads the current document from the Iceberg table (here: what the insert batch wrote).
    const source = await readSourceTable(db, { schema: 'public', table: 'toasted' });
    const schema = buildIcebergSchema(source).schema;
    const current = new Map<string, Map<number, unknown>>();
    applyTo(current, collapseChanges(inserted.events, { tables: [{ source, schema }] }).tables.get('public.toasted')!);
    const changes = collapseChanges(batch.events, { tables: [{ source, schema }] }).tables.get('public.toasted')!;
    expect(changes.unchanged.length).toBe(2);
    const filled = fillUnchangedValues(changes, (key) => current.get(String(key[0])));
    expect(filled.quarantined).toEqual([]);
    applyTo(current, filled.changes);
    expect([...current.values()].map((row) => [row.get(1), row.get(2), row.get(3)])).toEqual([
      [1, bigText, 11],
      [2, bigText, 12],
    ]);
  });

  it('FULL: updates and deletes carry the whole old row, and unchanged TOAST is filled in', async () => {
    const { slot, publication } = await publishedTable('full_identity', 'id int PRIMARY KEY, doc text, qty int');
    await db.query('ALTER TABLE full_identity REPLICA IDENTITY FULL');
    await db.query('INSERT INTO full_identity VALUES (1, $1, 1)', [bigText]);
    await db.query('UPDATE full_identity SET qty = 2');
    await db.query('DELETE FROM full_identity');
    const batch = await readChangeBatch(db, { slot, publication });
    expect(batch.events.map((e) => [e.envelope.op, e.unchangedColumns])).toEqual([
      ['c', []],
      ['u', []],
      ['d', []],
    ]);
    expect(batch.events[1]!.envelope.before).toEqual({ id: '1', doc: bigText, qty: '1' });
    expect(batch.events[1]!.envelope.after).toEqual({ id: '1', doc: bigText, qty: '2' });
    expect(batch.events[2]!.envelope.before).toEqual({ id: '1', doc: bigText, qty: '2' });
    expect(batch.relations.get('public.full_identity')?.replicaIdentity).toBe('full');
    // With FULL, pgoutput flags every column as part of the identity; the key still comes from the catalog.
    const source = await readSourceTable(db, { schema: 'public', table: 'full_identity' });
    expect(source.replicaIdentity).toBe('full');
    expect(buildIcebergSchema(source).key).toEqual(['id']);
  });
});

describe('initial snapshot', () => {
  it('copies the tables at the slot start: snapshot plus changes equal the source, with no gap or overlap', async () => {
    await db.query('CREATE TABLE snap (id int PRIMARY KEY, name text, qty int)');
    await db.query("INSERT INTO snap SELECT g, 'row ' || g, g FROM generate_series(1, 100) g");
    await ensurePublication(db, { publication: 'pub_snap', tables: [{ schema: 'public', table: 'snap' }] });
    const source = await readSourceTable(db, { schema: 'public', table: 'snap' });
    const schema = buildIcebergSchema(source).schema;
    const slot = newSlot();
    const writer = await connect();
    const snapshotEvents: ChangeEvent[] = [];
    let chunks = 0;
    try {
      const result = await copyInitialSnapshot({
        connection: databaseUrl,
        slot,
        tables: [source],
        chunkRows: 30,
        onChunk: async (table, events) => {
          expect(table.table).toBe('snap');
          snapshotEvents.push(...events);
          chunks += 1;
          // Changes committed while the copy runs must reach the slot, not the snapshot.
          if (chunks === 1) {
            await writer.query("INSERT INTO snap SELECT g, 'late ' || g, g FROM generate_series(101, 110) g");
            await writer.query("UPDATE snap SET name = 'changed' WHERE id = 1");
            await writer.query('DELETE FROM snap WHERE id = 2');
          }
        },
      });
      expect(result.rows.get('public.snap')).toBe(100);
      expect(chunks).toBe(4);
      expect(result.consistentPoint).toBeGreaterThan(0n);
      const status = await readSlotStatus(db, slot);
      expect(status.confirmedFlushLsn).toBe(result.consistentPoint);
    } finally {
      await writer.end();
    }

    expect(snapshotEvents.every((e) => e.envelope.op === 'r' && e.envelope.source.snapshot === 'true')).toBe(true);
    const snapshotIds = snapshotEvents.map((e) => Number(e.envelope.after!.id)).sort((a, b) => a - b);
    expect(snapshotIds).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(snapshotEvents.find((e) => e.envelope.after!.id === '1')!.envelope.after!.name).toBe('row 1');

    const changes = await readChangeBatch(db, { slot, publication: 'pub_snap' });
    expect(changes.events.length).toBe(12);
    expect(changes.events.filter((e) => e.envelope.op === 'c').map((e) => Number(e.envelope.after!.id))).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 101),
    );

    const model = new Map<string, Map<number, unknown>>();
    const tables = [{ source, schema }];
    applyTo(model, collapseChanges(snapshotEvents, { tables }).tables.get('public.snap')!);
    applyTo(model, collapseChanges(changes.events, { tables }).tables.get('public.snap')!);
    const truth = await db.query<{ id: number; name: string; qty: number }>(
      'SELECT id, name, qty FROM snap ORDER BY id',
    );
    const modelRows = [...model.values()]
      .map((row) => ({ id: row.get(1), name: row.get(2), qty: row.get(3) }))
      .sort((a, b) => (a.id as number) - (b.id as number));
    expect(modelRows).toEqual(truth.rows);
    expect(truth.rows.length).toBe(109);
  });

  it('drops the slot when the copy fails, so that onboarding can start over', async () => {
    const source: SourceTable = await readSourceTable(db, { schema: 'public', table: 'snap' });
    const slot = newSlot();
    await expect(
      copyInitialSnapshot({
        connection: databaseUrl,
        slot,
        tables: [source],
        onChunk: async () => {
          throw new Error('sink failed');
        },
      }),
    ).rejects.toThrow('sink failed');
    const left = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(left.rows).toEqual([]);
  });
});

describe('operability', () => {
  it('reports WAL retained by the slot growing with writes and shrinking after an advance', async () => {
    const { slot, publication } = await publishedTable('walled', 'id int PRIMARY KEY, pad text');
    const before = await readSlotStatus(db, slot);
    await db.query('INSERT INTO walled SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 2000) g');
    const grown = await readSlotStatus(db, slot);
    expect(grown.retainedWalBytes - before.retainedWalBytes).toBeGreaterThan(1_000_000n);
    expect(grown.lagBytes).toBeGreaterThan(1_000_000n);
    expect(grown.active).toBe(false);
    expect(grown.walStatus).toBe('reserved');
    expect(grown.currentLsn).toBeGreaterThanOrEqual(grown.restartLsn!);

    // restart_lsn moves only past a running-xacts record, which a checkpoint writes; it can take two advances.
    let after = grown;
    for (let attempt = 0; attempt < 5 && after.retainedWalBytes >= grown.retainedWalBytes / 2n; attempt += 1) {
      await db.query('CHECKPOINT');
      const batch = await readChangeBatch(db, { slot, publication, maxChanges: 100_000 });
      await advanceSlot(db, slot, batch.advanceTo ?? batch.uptoLsn);
      after = await readSlotStatus(db, slot);
    }
    expect(after.retainedWalBytes).toBeLessThan(grown.retainedWalBytes / 2n);
    expect(after.lagBytes).toBeLessThan(grown.lagBytes);
    expect(after.confirmedFlushLsn).toBeGreaterThan(grown.confirmedFlushLsn!);
  });

  it('advances past WAL written only by unpublished tables', async () => {
    const { slot, publication } = await publishedTable('quiet');
    await db.query('CREATE TABLE noisy (id int)');
    await db.query('INSERT INTO noisy SELECT generate_series(1, 1000)');
    const batch = await readChangeBatch(db, { slot, publication });
    expect(batch.events).toEqual([]);
    expect(batch.cutShort).toBe(false);
    expect(batch.advanceTo).toBe(batch.uptoLsn);
    const moved = await advanceSlot(db, slot, batch.advanceTo!);
    expect(moved.confirmedFlushLsn).toBe(batch.uptoLsn);
    expect(parseLsn((await db.query('SELECT pg_current_wal_flush_lsn()::text AS l')).rows[0].l)).toBeGreaterThanOrEqual(
      moved.confirmedFlushLsn,
    );
  });
});
