/**
 * Where the catch-up time goes: one merge of a backlog, phase by phase, in this process (no Temporal): the slot peek
 * and pgoutput decoding (`readChangeBatch`), the per-key collapse (`collapseChanges`), and the Iceberg upsert
 * (`upsertRows`, position deletes + inserts). The server's share of the peek (logical decoding in the PostgreSQL
 * backend) is the peek's wall time minus this process's CPU time in it.
 * Run: `node --import tsx bench/cdc/profile-merge.ts [--rows 200000] [--changes 100000]` (add `--cpu-prof` to
 * node for a profile). Prints one JSON object.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { createCdcActivities } from '../../activities/cdc-activities.js';
import { collapseChanges, readChangeBatch, readWatermark, watermarkProperties } from '../../lib/cdc/index.js';
import { currentSchema, currentSnapshot } from '../../lib/iceberg/metadata-json.js';
import { upsertRows } from '../../lib/iceberg/upsert.js';
import { createOrdersTable } from '../../lib/stack/demo-workload.js';
import { startPostgresCluster } from '../../lib/stack/postgres-cluster.js';
import { createSourcePools, openWarehouse } from '../../lib/stack/warehouse.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const ROWS = flag('rows', 200_000);
const CHANGES = flag('changes', 100_000);
/** `--phase-profile FILE`: a V8 CPU profile of the measured phases only (not the setup), for chrome://inspect. */
const PHASE_PROFILE = (() => {
  const i = argv.indexOf('--phase-profile');
  return i >= 0 ? argv[i + 1] : undefined;
})();

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; wallMs: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const value = await work();
  const used = process.cpuUsage(cpu);
  return {
    value,
    wallMs: Math.round(performance.now() - started),
    cpuMs: Math.round((used.user + used.system) / 1000),
  };
}

async function run(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-profile-merge-'));
  const postgres = await startPostgresCluster({ settings: { max_wal_size: '4GB' } });
  const pools = createSourcePools();
  const warehouse = await openWarehouse({
    warehouse: `file://${dir}/wh`,
    catalogName: 'profile',
    catalog: { type: 'sqlite', path: path.join(dir, 'c.db') },
  });
  const url = postgres.url();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await createOrdersTable(db, ROWS);
    const acts = createCdcActivities({ catalog: warehouse.catalog, io: warehouse.io, pgPoolFor: pools.poolFor });
    await new MockActivityEnvironment().run(acts.onboardTable, {
      connectionString: url,
      sourceName: 'prof',
      table: 'public.orders',
      buckets: 16,
      icebergTable: 'prof.orders',
      slot: 'sluice_prof',
      publication: 'sluice_prof',
    });
    let written = 0;
    for (let k = 0; written < CHANGES; k++) {
      const lo = (k * 10_000) % ROWS;
      await db.query('BEGIN');
      await db.query(`UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id > $1 AND id <= $1 + 6000`, [lo]);
      await db.query(
        `INSERT INTO orders SELECT g, 'late', 'new', 1, now() FROM generate_series($1::bigint, $1 + 2499) g`,
        [ROWS + 1 + k * 2500],
      );
      await db.query('DELETE FROM orders WHERE id > $1 + 6000 AND id <= $1 + 7500', [lo]);
      await db.query('COMMIT');
      written += 10_000;
    }
    const { metadata } = await warehouse.catalog.loadTable('prof.orders');
    const schema = currentSchema(metadata);
    const watermark = readWatermark(currentSnapshot(metadata)?.summary);
    const client = await pools.poolFor(url).connect();
    const inspector = PHASE_PROFILE ? new Session() : undefined;
    if (inspector) {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.start');
    }
    const read = await timed(() =>
      readChangeBatch(client, {
        slot: 'sluice_prof',
        publication: 'sluice_prof',
        maxChanges: CHANGES,
        serverName: 'prof',
      }),
    );
    client.release();
    const source = { schema: 'public', table: 'orders' };
    const collapse = await timed(async () =>
      collapseChanges(read.value.events, { tables: [{ source, schema, ...(watermark ? { watermark } : {}) }] }),
    );
    const changes = collapse.value.tables.get('public.orders')!;
    const upsert = await timed(() =>
      upsertRows(warehouse.catalog, warehouse.io, 'prof.orders', {
        columns: changes.columns,
        ops: changes.ops,
        snapshotProperties: watermarkProperties(read.value.lastCommitEndLsn!),
      }),
    );
    if (inspector) {
      const { profile } = await inspector.post('Profiler.stop');
      writeFileSync(PHASE_PROFILE!, JSON.stringify(profile));
      inspector.disconnect();
    }
    const events = read.value.events.length;
    const totalWall = read.wallMs + collapse.wallMs + upsert.wallMs;
    console.log(
      JSON.stringify(
        {
          rows: ROWS,
          events,
          loadAverage: os.loadavg()[0],
          phases: {
            peekAndDecode: { wallMs: read.wallMs, cpuMs: read.cpuMs },
            collapse: { wallMs: collapse.wallMs, cpuMs: collapse.cpuMs },
            upsert: {
              wallMs: upsert.wallMs,
              cpuMs: upsert.cpuMs,
              inserted: upsert.value.inserted,
              updated: upsert.value.updated,
              deleted: upsert.value.deleted,
            },
          },
          changesPerSecondWall: Math.round(events / (totalWall / 1000)),
          changesPerSecondThisProcessCpu: Math.round(events / ((read.cpuMs + collapse.cpuMs + upsert.cpuMs) / 1000)),
        },
        null,
        2,
      ),
    );
  } finally {
    await db.end();
    await pools.close();
    await warehouse.close();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
