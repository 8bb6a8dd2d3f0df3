import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { listQuarantine } from '../../lib/cdc/quarantine-store.js';
import { updateTableSchema } from '../../lib/iceberg/schema-update.js';
import { cdcMergeReplayUpdate } from '../../workflows/cdc-merge-operations.js';
import { readWithPyiceberg } from '../interop/engines.js';
import { startCdcHarness, type CdcHarness } from './cdc-ops-harness.js';

// The quarantine and `sluice cdc quarantine ls|replay` (the real CLI binary) against the real PostgreSQL, Temporal
// and a file:// warehouse: every source change is either applied or quarantined, and a replay after fixing the
// cause applies the quarantined ones.
let h: CdcHarness;
beforeAll(async () => {
  h = await startCdcHarness('cdc_quar');
});
afterAll(async () => {
  await h?.close();
});

const run = promisify(execFile);
async function sluice(args: string[]) {
  const { stdout } = await run(process.execPath, [path.join(REPO_ROOT, 'bin/sluice.js'), ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: 'default' },
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
});
