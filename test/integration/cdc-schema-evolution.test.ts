import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listQuarantine } from '../../lib/cdc/quarantine-store.js';
import { cdcMergeProgressQuery } from '../../workflows/cdc-merge.js';
import { cdcMergeResolveSchemaUpdate } from '../../workflows/cdc-merge-operations.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { readWithPyiceberg } from '../interop/engines.js';
import { eventually } from '../fixtures/temporal.js';
import { startCdcHarness, type CdcHarness } from './cdc-ops-harness.js';

// Source schema changes while the merge runs, against the real PostgreSQL, Temporal and a file:// warehouse:
// additive ones are followed on their own; a dropped column blocks the table until an operator update resolves it.
let h: CdcHarness;
beforeAll(async () => {
  h = await startCdcHarness('cdc_schema');
});
afterAll(async () => {
  await h?.close();
});

async function sourceRows(columns: string) {
  return (await h.db.query(`SELECT ${columns} FROM items ORDER BY id`)).rows as Record<string, unknown>[];
}

describe('cdc-merge follows source schema changes', () => {
  it('applies ADD COLUMN and int → bigint on its own, blocks on DROP COLUMN, and resolves with apply', async () => {
    await h.db.query(
      'CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL, label varchar(10), note text NOT NULL)',
    );
    await h.db.query("INSERT INTO items SELECT g, g, 'l' || g, 'n' || g FROM generate_series(1, 50) g");
    const { merge, icebergTable, sourceName } = await h.onboard('evo', 'items');

    // Additive: a new column, a widening (int → bigint), a longer varchar, in one transaction with rows that need them.
    await h.db.query('BEGIN');
    await h.db.query('ALTER TABLE items ADD COLUMN price numeric(10,2)');
    await h.db.query('ALTER TABLE items ALTER COLUMN qty TYPE bigint');
    await h.db.query('ALTER TABLE items ALTER COLUMN label TYPE varchar(40)');
    await h.db.query("INSERT INTO items VALUES (51, 5000000000, 'a much longer label than before', 'n51', 9.99)");
    await h.db.query('UPDATE items SET price = id * 1.5 WHERE id <= 10');
    await h.db.query('COMMIT');
    const evolved = await h.caughtUp(merge);
    expect(evolved.schemaChanges).toBe(2); // price added, qty widened (varchar(40) is still a string)
    expect(evolved.blockedTables ?? []).toEqual([]);
    const py = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(py.schema.find((c) => c.name === 'qty')).toMatchObject({ type: 'long' });
    expect(py.schema.find((c) => c.name === 'price')).toMatchObject({ type: 'decimal(10, 2)', required: false });
    expect(py.rows).toEqual(await sourceRows('id, qty::text AS qty, label, note, price::text AS price'));

    // Incompatible: a dropped column blocks this table (its changes are held), with a typed error in the query.
    await h.db.query('ALTER TABLE items DROP COLUMN note');
    await h.db.query("INSERT INTO items VALUES (52, 1, 'after drop', 2.00)");
    await h.db.query('UPDATE items SET qty = qty + 100 WHERE id IN (1, 2)');
    const blocked = await eventually(
      async () => {
        const p = await merge.query(cdcMergeProgressQuery);
        return p.blockedTables && p.blockedTables.length > 0 ? p : undefined;
      },
      20_000,
      'the table to be blocked',
    );
    expect(blocked.blockedTables![0]).toMatchObject({ table: 'public.items', icebergTable });
    expect(blocked.blockedTables![0]!.changes.join()).toMatch(/column "note" was dropped or renamed/);
    await h.caughtUp(merge); // the slot goes on: the held changes are in the quarantine
    const held = await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName, {
      errorKind: 'incompatible-schema-change',
    });
    expect(held.length).toBe(3);
    expect(held[0]!.record.failureType).toBe('Unsupported');
    expect((await merge.describe()).typedSearchAttributes.get(SearchAttributes.phase)).toBe('blocked');
    // The UI's "current details" of the run say what is blocked and how to resolve it.
    const metadata = await merge.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/public\.items[\s\S]*blocked[\s\S]*resolveSchemaChange/);
    // Not yet in Iceberg.
    const during = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(during.rows.map((r) => r.id)).not.toContain(52);

    // A table that is not blocked is refused by the update's validator.
    await expect(
      merge.executeUpdate(cdcMergeResolveSchemaUpdate, { args: [{ table: 'public.other', action: 'apply' }] }),
    ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);

    const resolved = await merge.executeUpdate(cdcMergeResolveSchemaUpdate, {
      args: [{ table: 'public.items', action: 'apply' }],
    });
    expect(resolved).toMatchObject({ action: 'apply', heldChanges: 3, replayed: 3 });
    await h.db.query("INSERT INTO items VALUES (53, 3, 'after apply', 3.00)");
    const after = await h.caughtUp(merge);
    expect(after.blockedTables).toEqual([]);
    const final = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(final.schema.find((c) => c.name === 'note')).toMatchObject({ required: false });
    // Rows written after the drop have no note (null); the others keep theirs.
    const expected = (await sourceRows('id, qty::text AS qty, label, price::text AS price')).map((r) => ({
      ...r,
      note: [1, 2, 52, 53].includes(r.id as number) ? null : `n${r.id as number}`,
    }));
    expect(final.rows.map(({ id, qty, label, price, note }) => ({ id, qty, label, price, note }))).toEqual(expected);
    expect((await merge.describe()).typedSearchAttributes.get(SearchAttributes.phase)).toBe('running');
    await h.recordHistory('cdc-merge-schema-blocked-run', merge, true);
  });

  it('resolves a rename with skip (held changes stay quarantined) and a key change with re-bootstrap', async () => {
    await h.db.query('CREATE TABLE things (id int PRIMARY KEY, b text, code text NOT NULL)');
    await h.db.query("INSERT INTO things SELECT g, 'b' || g, 'c' || g FROM generate_series(1, 30) g");
    const { merge, icebergTable, sourceName } = await h.onboard('skp', 'things');
    const blockedOn = (what: RegExp) =>
      eventually(
        async () => {
          const p = await merge.query(cdcMergeProgressQuery);
          const changes = p.blockedTables?.[0]?.changes.join('; ') ?? '';
          return what.test(changes) ? p : undefined;
        },
        20_000,
        `the table to be blocked (${what.source})`,
      );
    const held = async () =>
      (
        await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName, {
          errorKind: 'incompatible-schema-change',
        })
      ).length;

    // A rename reads as a drop plus an add: blocked. Skip accepts it; the held change stays in the quarantine.
    await h.db.query('ALTER TABLE things RENAME COLUMN b TO c');
    await h.db.query("UPDATE things SET c = 'renamed' WHERE id = 1");
    await blockedOn(/column "b" was dropped or renamed/);
    await h.caughtUp(merge);
    expect(await held()).toBe(1);
    const skipped = await merge.executeUpdate(cdcMergeResolveSchemaUpdate, {
      args: [{ table: icebergTable, action: 'skip' }],
    });
    expect(skipped).toMatchObject({ action: 'skip', heldChanges: 1, replayed: 0 });
    await h.db.query("UPDATE things SET c = 'after skip' WHERE id = 2");
    await h.caughtUp(merge);
    const py = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(py.rows.find((r) => r.id === 2)).toMatchObject({ c: 'after skip', b: null });
    expect(py.rows.find((r) => r.id === 1)).toMatchObject({ b: 'b1', c: null }); // the skipped change
    expect(await held()).toBe(1);

    // A key change cannot be applied: apply is refused, re-bootstrap copies the table again with the new key.
    await h.db.query('BEGIN');
    await h.db.query('ALTER TABLE things DROP CONSTRAINT things_pkey');
    await h.db.query('ALTER TABLE things ADD PRIMARY KEY (code)');
    await h.db.query('COMMIT');
    await h.db.query("UPDATE things SET c = 'new key' WHERE id = 3");
    await blockedOn(/the key changed from \(id\) to \(code\)/);
    const refused = await merge
      .executeUpdate(cdcMergeResolveSchemaUpdate, { args: [{ table: 'public.things', action: 'apply' }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    const cause = (refused as WorkflowUpdateFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('Unsupported');
    expect(cause.message).toMatch(/key changed[\s\S]*re-bootstrap/);
    const before = (await h.warehouse.catalog.loadTable(icebergTable)).metadata;
    const beforeRows = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    const rebuilt = await merge.executeUpdate(cdcMergeResolveSchemaUpdate, {
      args: [{ table: 'public.things', action: 're-bootstrap' }],
    });
    expect(rebuilt).toMatchObject({ action: 're-bootstrap', rowsCopied: 30 });
    // The same table with its history: one overwrite snapshot replaced the content; the snapshot before it still
    // reads as it did (until snapshot expiry), with its own schema and partitioning.
    const after = (await h.warehouse.catalog.loadTable(icebergTable)).metadata;
    expect(after.tableUuid).toBe(before.tableUuid);
    expect(after.snapshots.map((x) => x.snapshotId)).toEqual(
      expect.arrayContaining(before.snapshots.map((x) => x.snapshotId)),
    );
    const overwrite = after.snapshots.find((x) => x.snapshotId === after.currentSnapshotId)!;
    expect(overwrite).toMatchObject({ parentSnapshotId: before.currentSnapshotId });
    expect(overwrite.summary).toMatchObject({ operation: 'overwrite', 'total-records': '30' });
    expect(after.defaultSpecId).not.toBe(before.defaultSpecId); // bucket(code) instead of bucket(id)
    const history = await readWithPyiceberg(h.catalogRef, {
      table: icebergTable,
      snapshotId: before.currentSnapshotId!,
      orderBy: ['id'],
    });
    expect(history.rows).toEqual(beforeRows.rows);
    await h.db.query("UPDATE things SET c = 'after re-bootstrap' WHERE code = 'c4'");
    await h.db.query("INSERT INTO things VALUES (31, 'x', 'c31')");
    await h.caughtUp(merge);
    const copied = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['code'] });
    expect(copied.rows).toEqual((await h.db.query('SELECT id, c, code FROM things ORDER BY code')).rows);
    expect(await held()).toBe(0); // superseded by the copy
  });
});
