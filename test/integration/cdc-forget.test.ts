import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { cdcMergeProgressQuery } from '../../workflows/cdc-merge.js';
import { cdcMergeForgetUpdate } from '../../workflows/cdc-merge-operations.js';
import { INTEROP_PYTHON, readWithPyiceberg } from '../interop/engines.js';
import { eventually } from '../fixtures/temporal.js';
import { startCdcHarness, type CdcHarness } from './cdc-ops-harness.js';

// Compliance forget against the real PostgreSQL, Temporal and a file:// warehouse: the key is deleted at once, and
// after the (short) retention window no file under the table's location, live or historical, holds it.
let h: CdcHarness;
beforeAll(async () => {
  h = await startCdcHarness('cdc_forget');
});
afterAll(async () => {
  await h?.close();
});

/** Every Parquet file under `root`, read by pyarrow: which hold `needle` in any column, and all ids seen. */
function scanParquetFiles(root: string, needle: string): { files: number; holding: string[]; ids: number[] } {
  const script = `
import json, os, sys
import pyarrow.parquet as pq
root, needle = sys.argv[1], sys.argv[2]
files, holding, ids = 0, [], set()
for d, _, names in os.walk(root):
    for n in names:
        if not n.endswith('.parquet'):
            continue
        p = os.path.join(d, n)
        files += 1
        t = pq.read_table(p)
        for col in t.column_names:
            values = t.column(col).to_pylist()
            if any(needle in str(v) for v in values):
                holding.append(p)
            if col == 'id':
                ids.update(int(v) for v in values if v is not None)
print(json.dumps({'files': files, 'holding': sorted(set(holding)), 'ids': sorted(ids)}))
`;
  return JSON.parse(execFileSync(INTEROP_PYTHON, ['-c', script, root, needle], { encoding: 'utf8' })) as {
    files: number;
    holding: string[];
    ids: number[];
  };
}

describe('sluice cdc forget (the forget update of cdc-merge)', () => {
  it('deletes a key at once, and from every file of the table when its purge runs', async () => {
    await h.db.query('CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, email text)');
    await h.db.query(
      "INSERT INTO people SELECT g, CASE WHEN g = 7 THEN 'forget-me-7' ELSE 'person ' || g END, 'p' || g || '@x' FROM generate_series(1, 60) g",
    );
    // The default retention (1 day) for the first forget: the key leaves the table at once, old files keep it.
    const { merge, icebergTable } = await h.onboard('fgt', 'people');
    // Several versions of the key in several files (each batch writes new files).
    for (let i = 0; i < 3; i++) {
      await h.db.query(`UPDATE people SET email = 'forget-me-7-v${i}@x' WHERE id = 7`);
      await h.db.query(`UPDATE people SET email = 'other-${i}@x' WHERE id = ${20 + i}`);
      await h.caughtUp(merge);
    }
    const tableRoot = `${h.dir}/wh`;
    expect(scanParquetFiles(tableRoot, 'forget-me-7').holding.length).toBeGreaterThan(1);

    // The CLI sends the forget update (the table by its Iceberg name, so the source comes from it).
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [path.join(REPO_ROOT, 'bin/sluice.js'), 'cdc', 'forget', '--table', icebergTable, '--key', '7'],
      { env: { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: 'default' } },
    );
    expect(stdout).toMatch(new RegExp(`forgot key \\(7\\) of ${icebergTable}: 1 row\\(s\\) deleted in snapshot \\d+`));
    // A key of the wrong arity is refused, and the merge goes on.
    await expect(
      merge.executeUpdate(cdcMergeForgetUpdate, { args: [{ table: 'public.people', key: ['7', 'x'] }] }),
    ).rejects.toThrow();
    expect((await merge.query(cdcMergeProgressQuery)).pendingPurges).toHaveLength(1);
    // Gone from the table at once (the source still has it: the operator deletes it there separately).
    const now = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    const source = (await h.db.query('SELECT id, name, email FROM people WHERE id <> 7 ORDER BY id')).rows;
    expect(now.rows).toEqual(source);

    // Until the purge, the history (older snapshots' files) still holds it.
    expect(scanParquetFiles(tableRoot, 'forget-me-7').holding.length).toBeGreaterThan(0);

    // Forgetting again with no retention purges at once, covering the first forget: compaction, snapshot expiry,
    // orphan removal.
    const again = await merge.executeUpdate(cdcMergeForgetUpdate, {
      args: [{ table: 'public.people', key: ['7'], retentionMs: 0 }],
    });
    expect(again.deleted).toBe(0);
    await eventually(
      async () => {
        const p = await merge.query(cdcMergeProgressQuery);
        return p.pendingPurges && p.pendingPurges.length === 0 ? p : undefined;
      },
      30_000,
      'the purge of the forgotten key',
    );
    const scan = scanParquetFiles(tableRoot, 'forget-me-7');
    expect(scan.files).toBeGreaterThan(0);
    expect(scan.holding).toEqual([]);
    expect(scan.ids).not.toContain(7);
    // Every other row survived, and the merge goes on.
    await h.db.query("UPDATE people SET name = 'after purge' WHERE id = 1");
    await h.caughtUp(merge);
    const after = await readWithPyiceberg(h.catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(after.rows).toEqual((await h.db.query('SELECT id, name, email FROM people WHERE id <> 7 ORDER BY id')).rows);
    const snapshots = (await h.warehouse.catalog.loadTable(icebergTable)).metadata.snapshots.length;
    expect(snapshots).toBeLessThanOrEqual(2);
    await h.recordHistory('cdc-merge-forget-run', merge, true);
  });
});
