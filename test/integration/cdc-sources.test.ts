import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCdcOnboard } from '../../client/pipelines.js';
import { CDC_WATERMARK_PROPERTY } from '../../lib/cdc/collapse.js';
import type { CrashInjector, CrashPoint } from '../../lib/cdc/crash-points.js';
import { parseLsn } from '../../lib/cdc/lsn.js';
import { cdcMergeAddTableUpdate } from '../../workflows/cdc-merge-operations.js';
import { readWithPyiceberg } from '../interop/engines.js';
import { startCdcHarness, type CdcHarness } from './cdc-ops-harness.js';

// A source as operators run it: its connection string (with a password) only on the workers, named in the
// workflow input by an env: reference, and several tables on one slot and publication. Real PostgreSQL, Temporal and
// S3 (s3proxy). The merge dies (in-process: a crash point throws once, nothing after it runs, the batch is
// retried) right after the first table's commit of a batch that changed both tables.
const secretVariable = `SLUICE_TEST_CDC_SOURCE_${process.pid}`;
const password = `pw-${Math.random().toString(36).slice(2)}-never-in-history`;

const crashPlan: CrashPoint[] = [];
const crashed: string[] = [];
const crashes: CrashInjector = {
  armed: true,
  reach(point, detail = '') {
    if (crashPlan[0] !== point) return;
    crashPlan.shift();
    crashed.push(`${point} ${detail}`);
    throw new Error(`test crash at ${point} ${detail}`);
  },
};

let h: CdcHarness;
beforeAll(async () => {
  h = await startCdcHarness('cdc_src', { crashes, s3: true });
  // The test cluster trusts local connections, so the password is never checked; it only has to stay out of history.
  const url = new URL(h.databaseUrl);
  url.username = 'postgres';
  url.password = password;
  process.env[secretVariable] = url.toString();
});
afterAll(async () => {
  await h?.close();
  delete process.env[secretVariable];
});

/** Watermarks of the table's snapshots, oldest first. */
async function watermarks(icebergTable: string): Promise<bigint[]> {
  const { metadata } = await h.warehouse.catalog.loadTable(icebergTable);
  return [...metadata.snapshots]
    .sort((a, b) => (a.sequenceNumber < b.sequenceNumber ? -1 : 1))
    .map((s) => s.summary[CDC_WATERMARK_PROPERTY])
    .filter((w): w is string => w !== undefined)
    .map((w) => parseLsn(w));
}

/** Every string and byte payload (as UTF-8) anywhere in a history, joined: what the UI and CLI can show. */
function historyText(history: unknown): string {
  const parts: string[] = [];
  const walk = (value: unknown): void => {
    if (value instanceof Uint8Array) parts.push(Buffer.from(value).toString('utf8'));
    else if (typeof value === 'string') parts.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(history);
  return parts.join('\n');
}

async function expectEqualToSource(icebergTable: string, table: string): Promise<void> {
  const py = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
  const source = await h.db.query(`SELECT id, v FROM ${table} ORDER BY id`);
  expect(py.rows, `${icebergTable} equals ${table}`).toEqual(source.rows);
}

describe('a CDC source with a secret reference and two tables on one slot', () => {
  it('keeps the password out of history, adds a table, and commits both before the slot moves', async () => {
    await expect(
      startCdcOnboard(
        h.t.client,
        { source: { connectionString: process.env[secretVariable]! }, sourceName: 'refused', table: 'public.a' },
        { taskQueue: h.base },
      ),
    ).rejects.toThrow(/password would be stored in the workflow history/);

    await h.db.query('CREATE TABLE a (id int PRIMARY KEY, v text)');
    await h.db.query('CREATE TABLE b (id int PRIMARY KEY, v text)');
    await h.db.query("INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 50) g");
    await h.db.query("INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 30) g");
    const { merge, sourceName, icebergTable, onboarding } = await h.onboard('two', 'a', {}, `env:${secretVariable}`);
    // Changes of b before it is added: in its copy, or skipped by its watermark; never quarantined as unknown.
    await h.db.query("UPDATE b SET v = 'early' WHERE id <= 5");
    await h.caughtUp(merge);

    const added = await merge.executeUpdate(cdcMergeAddTableUpdate, { args: [{ table: 'public.b', buckets: 2 }] });
    expect(added).toMatchObject({ icebergTable: `${sourceName}.public.b`, rowsCopied: 30, alreadyOnboarded: false });
    const again = await merge
      .executeUpdate(cdcMergeAddTableUpdate, {
        args: [{ table: 'public.b', icebergTable: 'other.b' }],
      })
      .catch((err: unknown) => err);
    expect(String((again as Error).cause ?? again)).toMatch(/already merged/);

    await h.db.query("INSERT INTO b VALUES (100, 'after add')");
    await h.caughtUp(merge);
    await expectEqualToSource(icebergTable, 'a');
    await expectEqualToSource(added.icebergTable, 'b');

    // One transaction changes both tables; the batch dies right after the first table's (a's) commit, before b's
    // commit and before the slot advance. The retry skips a (its watermark) and commits b.
    crashPlan.push('after-commit');
    await h.db.query('BEGIN');
    await h.db.query("UPDATE a SET v = 'both' WHERE id <= 10");
    await h.db.query('DELETE FROM a WHERE id > 45');
    await h.db.query("UPDATE b SET v = 'both' WHERE id <= 10");
    await h.db.query("INSERT INTO b SELECT g, 'new' FROM generate_series(200, 220) g");
    await h.db.query('COMMIT');
    const progress = await h.caughtUp(merge, 60_000);
    expect(crashed).toHaveLength(1);
    expect(crashed[0]).toContain(`after-commit ${icebergTable} `);
    await expectEqualToSource(icebergTable, 'a');
    await expectEqualToSource(added.icebergTable, 'b');
    for (const table of [icebergTable, added.icebergTable]) {
      const marks = await watermarks(table);
      for (let i = 1; i < marks.length; i++) {
        expect(marks[i]! > marks[i - 1]!, `${table}: snapshot ${i} applies only later transactions`).toBe(true);
      }
    }
    expect(progress.tables).toEqual([icebergTable, added.icebergTable]);
    expect(progress.quarantined).toBe(0);

    // Neither history holds the password: the input names the reference, the worker resolved it.
    for (const handle of [onboarding, merge]) {
      const history = historyText(await handle.fetchHistory());
      expect(history).toContain(`env:${secretVariable}`);
      expect(history).not.toContain(password);
    }
    // SLUICE_RECORD_HISTORIES=1: the replay test's history of a merge with an added table and a retried batch.
    await h.recordHistory('cdc-merge-add-table-run', merge, true);
  });
});
