import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import type { CrashInjector, CrashPoint } from '../../lib/cdc/crash-points.js';
import type { QuarantineRecord } from '../../lib/cdc/quarantine.js';
import { listQuarantine, quarantineFiles } from '../../lib/cdc/quarantine-store.js';
import { updateTableSchema } from '../../lib/iceberg/schema-update.js';
import { cdcMergeReplayUpdate } from '../../workflows/cdc-merge-operations.js';
import { readWithPyiceberg } from '../interop/engines.js';
import { startCdcHarness, type CdcHarness } from './cdc-ops-harness.js';

// The quarantine and `sluice cdc quarantine ls|replay` (the real CLI binary) against the real PostgreSQL, Temporal
// and an S3 warehouse (s3proxy): every source change is either applied or quarantined, also across a crash between
// the quarantine write and the commit; a replay after fixing the cause applies the quarantined ones, except those a
// newer change of their key supersedes.
let h: CdcHarness;
// Crashes of the in-process worker's merge: each armed point throws once (a retryable failure) when reached, which
// leaves the warehouse as a kill -9 at that point would (nothing after the point runs); the merge retries the batch.
const crashPlan: CrashPoint[] = [];
const crashed: string[] = [];
const crashes: CrashInjector = {
  armed: true,
  reach(point, detail = '') {
    if (crashPlan[0] !== point) return;
    crashPlan.shift();
    crashed.push(point);
    throw new Error(`test crash at ${point} ${detail}`);
  },
};
beforeAll(async () => {
  h = await startCdcHarness('cdc_quar', { crashes, s3: true });
});
afterAll(async () => {
  await h?.close();
});

const run = promisify(execFile);
async function sluice(args: string[]) {
  const { stdout } = await run(process.execPath, [path.join(REPO_ROOT, 'bin/sluice.js'), ...args], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_NAMESPACE: 'default',
      // `ls` reads the S3 warehouse itself.
      SLUICE_S3_ENDPOINT: inject('s3').endpoint,
      SLUICE_S3_REGION: inject('s3').region,
      SLUICE_S3_ACCESS_KEY_ID: inject('s3').accessKeyId,
      SLUICE_S3_SECRET_ACCESS_KEY: inject('s3').secretAccessKey,
    },
    timeout: 60_000,
  });
  return stdout;
}

describe('sluice cdc quarantine', () => {
  it('counts every change as applied or quarantined, lists them, and replays them after the fix', async () => {
    await h.db.query('CREATE TABLE q (id int PRIMARY KEY, v text NOT NULL, at timestamptz)');
    await h.db.query(
      "INSERT INTO q SELECT g, 'v' || g, timestamptz '2025-01-01 00:00:00+00' FROM generate_series(1, 20) g",
    );
    const { merge, sourceName, icebergTable } = await h.onboard('quar', 'q');
    const start = await h.caughtUp(merge);

    // The source starts allowing nulls, which the Iceberg column (required) cannot take yet.
    await h.db.query('ALTER TABLE q ALTER COLUMN v DROP NOT NULL');
    await h.db.query("INSERT INTO q SELECT g, 'new' || g, now() FROM generate_series(101, 110) g"); // 10 applied
    await h.db.query("UPDATE q SET v = 'u' || id WHERE id BETWEEN 1 AND 5"); // 5 applied
    await h.db.query('DELETE FROM q WHERE id BETWEEN 6 AND 8'); // 3 applied
    await h.db.query('INSERT INTO q SELECT g, NULL, now() FROM generate_series(201, 205) g'); // 5 quarantined
    await h.db.query("INSERT INTO q VALUES (300, 'never', 'infinity')"); // 1 quarantined for good
    const caught = await h.caughtUp(merge);
    const changes = caught.changes - start.changes;
    expect(changes).toBe(24);
    expect(caught.rowsMerged - start.rowsMerged).toBe(18);
    expect(caught.quarantined - start.quarantined).toBe(6);

    const wh = ['--warehouse', h.warehouse.warehouse, '--source', sourceName];
    const listed = await sluice(['cdc', 'quarantine', 'ls', ...wh, '--error', 'value-conversion']);
    expect(listed).toMatch(/6 record\(s\)/);
    expect(listed).toMatch(/column "v": cannot convert null/);

    // Replaying before the fix changes nothing: the records stay pending (the update the CLI sends, in-process).
    const early = await merge.executeUpdate(cdcMergeReplayUpdate, { args: [{}] });
    expect(early).toMatchObject({ selected: 6, replayed: 0, stillFailing: 6 });

    // The fix, as an operator would make it (Spark's ALTER COLUMN v DROP NOT NULL does the same), then the replay.
    await updateTableSchema(h.warehouse.catalog, icebergTable, [{ op: 'make-optional', column: 'v' }]);
    const replayed = await sluice([
      'cdc',
      'quarantine',
      'replay',
      '--source',
      sourceName,
      '--error',
      'value-conversion',
    ]);
    expect(replayed).toMatch(/selected 6, replayed 5, still failing 1/);

    const py = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    const source = await h.db.query(
      `SELECT id, v, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00' AS at
         FROM q WHERE id <> 300 ORDER BY id`,
    );
    expect(py.rows).toEqual(source.rows);

    const pending = await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName);
    expect(pending.map((e) => e.record.message)).toEqual([expect.stringMatching(/infinity/)]);
    const done = await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName, { status: 'done' });
    expect(done).toHaveLength(5);
    expect(done.every((d) => d.mark?.outcome === 'replayed' && d.record.table === 'public.q')).toBe(true);
  });

  it('keeps every quarantined change across a crash before the write and after the commit', async () => {
    await h.db.query('CREATE TABLE c (id int PRIMARY KEY, at timestamptz NOT NULL)');
    await h.db.query("INSERT INTO c SELECT g, timestamptz '2025-01-01 00:00:00+00' FROM generate_series(1, 10) g");
    const { merge, sourceName, icebergTable } = await h.onboard('crash', 'c');
    await h.caughtUp(merge);

    // The next batch dies after writing its quarantine records and before its upsert, then its retry dies right after
    // the Iceberg commit (before the activity returns). The second retry finds every transaction at or below the
    // watermark: with the quarantine written after the commit, its records would be gone.
    crashPlan.push('before-write', 'after-commit');
    await h.db.query('BEGIN');
    await h.db.query('INSERT INTO c SELECT g, now() FROM generate_series(11, 20) g'); // 10 applied
    await h.db.query("UPDATE c SET at = 'infinity' WHERE id IN (1, 2, 3)"); // 3 quarantined
    await h.db.query('DELETE FROM c WHERE id IN (4, 5)'); // 2 applied
    await h.db.query("INSERT INTO c VALUES (21, '-infinity')"); // 1 quarantined
    await h.db.query('COMMIT');
    await h.caughtUp(merge, 60_000);
    expect(crashed).toEqual(['before-write', 'after-commit']);

    // 16 source changes = 12 applied + 4 quarantined, each recorded once although the batch ran three times.
    const lines: QuarantineRecord[] = [];
    for (const file of await quarantineFiles(h.warehouse.io, h.warehouse.warehouse, sourceName)) {
      for (const line of Buffer.from(await h.warehouse.io.read(file))
        .toString('utf8')
        .split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as QuarantineRecord);
      }
    }
    expect(lines).toHaveLength(4);
    expect(lines.every((r) => r.table === 'public.c' && r.errorKind === 'value-conversion')).toBe(true);
    const py = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(py.rows.map((r) => Number(r.id))).toEqual([1, 2, 3, ...Array.from({ length: 15 }, (_, i) => i + 6)]);
    // The quarantined updates left rows 1-3 as they were before them.
    expect(py.rows.slice(0, 3).map((r) => r.at)).toEqual(Array(3).fill('2025-01-01T00:00:00.000000+00:00'));
  });

  it('replays a quarantined change only when no newer change of its key came after it', async () => {
    await h.db.query('CREATE TABLE r (id int PRIMARY KEY, v text NOT NULL)');
    await h.db.query("INSERT INTO r SELECT g, 'a' FROM generate_series(1, 4) g");
    const { merge, sourceName, icebergTable } = await h.onboard('guard', 'r');
    await h.caughtUp(merge);
    await h.db.query('ALTER TABLE r ALTER COLUMN v DROP NOT NULL');
    // Four changes the required Iceberg column cannot take yet...
    await h.db.query('UPDATE r SET v = NULL WHERE id IN (1, 2)');
    await h.db.query('INSERT INTO r VALUES (10, NULL), (11, NULL)');
    // ...then newer changes of two of their keys: an update that applies, and a delete of a key Iceberg never had
    // (it leaves no trace in the table).
    await h.db.query("UPDATE r SET v = 'newer' WHERE id = 1");
    await h.db.query('DELETE FROM r WHERE id = 10');
    await h.caughtUp(merge);
    expect(await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName)).toHaveLength(4);

    await updateTableSchema(h.warehouse.catalog, icebergTable, [{ op: 'make-optional', column: 'v' }]);
    const result = await merge.executeUpdate(cdcMergeReplayUpdate, { args: [{ table: 'public.r' }] });
    expect(result).toMatchObject({ selected: 4, replayed: 2, skippedNewer: 2, stillFailing: 0 });

    // Without the check, row 1 would be back at null and row 10 would live again.
    const py = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    const source = await h.db.query('SELECT id, v FROM r ORDER BY id');
    expect(py.rows).toEqual(source.rows);
    expect(source.rows).toEqual([
      { id: 1, v: 'newer' },
      { id: 2, v: null },
      { id: 3, v: 'a' },
      { id: 4, v: 'a' },
      { id: 11, v: null },
    ]);
    const done = await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName, { status: 'done' });
    const outcome = (id: string) => done.find((d) => JSON.parse(d.record.raw).after?.id === id)?.mark;
    expect(outcome('2')?.outcome).toBe('replayed');
    expect(outcome('11')?.outcome).toBe('replayed');
    expect(outcome('1')).toMatchObject({ outcome: 'superseded', reason: expect.stringMatching(/column "v"/) });
    expect(outcome('10')).toMatchObject({ outcome: 'superseded', reason: expect.stringMatching(/deleted the key/) });
    expect(await listQuarantine(h.warehouse.io, h.warehouse.warehouse, sourceName)).toHaveLength(0);
    const listed = await sluice([
      'cdc',
      'quarantine',
      'ls',
      '--warehouse',
      h.warehouse.warehouse,
      '--source',
      sourceName,
      '--status',
      'done',
    ]);
    expect(listed.match(/not applied: a newer change of the key supersedes/g)).toHaveLength(2);
  });
});
