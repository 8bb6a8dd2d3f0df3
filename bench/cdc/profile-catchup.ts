/**
 * The catch-up loop without Temporal: a backlog on a private PostgreSQL 15, merged by the real `mergeBatch` and
 * `advanceSlot` activities called one after the other as `cdc-merge` calls them, until the slot is caught up. Per
 * batch it prints the wall time, this process's CPU, PostgreSQL's CPU (all its processes, from /proc) and the
 * slot's restart and confirmed LSNs, so that it shows where a batch's time goes and whether the restart point
 * follows the slot. The backlog is the benchmark's: transactions of 6,000 updates, 2,500 inserts, 1,500 deletes.
 * Run: `node --import tsx bench/cdc/profile-catchup.ts [--rows 200000] [--changes 500000] [--batch 100000]
 * [--prefetch 0|1] [--phase-profile out.cpuprofile]`. Prints one JSON object.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { createCdcActivities } from '../../activities/cdc-activities.js';
import { BatchPrefetcher } from '../../lib/cdc/prefetch.js';
import { createOrdersTable } from '../../lib/stack/demo-workload.js';
import { startPostgresCluster } from '../../lib/stack/postgres-cluster.js';
import { createSourcePools, openWarehouse } from '../../lib/stack/warehouse.js';
import type { MergeBatchResult } from '../../schemas/cdc.js';
import { writeOrdersBacklog } from './backlog.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const ROWS = flag('rows', 200_000);
const CHANGES = flag('changes', 500_000);
const BATCH = flag('batch', 100_000);
const PREFETCH = flag('prefetch', 1) !== 0;
/** `--phase-profile FILE`: a V8 CPU profile of the merge loop only (not the setup). */
const PHASE_PROFILE = (() => {
  const i = argv.indexOf('--phase-profile');
  return i >= 0 ? argv[i + 1] : undefined;
})();

/** CPU seconds of a process and its waited-for children, from /proc. */
function procCpu(pid: number, withChildren: boolean): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return (withChildren ? own + Number(f[13]) + Number(f[14]) : own) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by the cluster: the postmaster, its exited children, and its live children. */
function postgresCpu(postmaster: number): number {
  let total = procCpu(postmaster, true);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === postmaster) total += procCpu(Number(entry), false);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

async function run(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-profile-catchup-'));
  const postgres = await startPostgresCluster({ settings: { max_wal_size: '4GB', shared_buffers: '256MB' } });
  const postmaster = Number(readFileSync(path.join(postgres.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
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
    const acts = createCdcActivities({
      catalog: warehouse.catalog,
      io: warehouse.io,
      pgPoolFor: pools.poolFor,
      prefetch: PREFETCH ? new BatchPrefetcher() : false,
    });
    const env = new MockActivityEnvironment();
    await env.run(acts.onboardTable, {
      connectionString: url,
      sourceName: 'prof',
      table: 'public.orders',
      buckets: 16,
      icebergTable: 'prof.orders',
      slot: 'sluice_prof',
      publication: 'sluice_prof',
    });
    await writeOrdersBacklog(db, ROWS, CHANGES);
    const slotRow = async () =>
      (
        await db.query<{ restart: string; confirmed: string }>(
          `SELECT restart_lsn::text AS restart, confirmed_flush_lsn::text AS confirmed
             FROM pg_replication_slots WHERE slot_name = 'sluice_prof'`,
        )
      ).rows[0]!;
    const batches: Record<string, unknown>[] = [];
    const load = [os.loadavg()[0]];
    const inspector = PHASE_PROFILE ? new Session() : undefined;
    if (inspector) {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.start');
    }
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const pg0 = postgresCpu(postmaster);
    let changes = 0;
    for (;;) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const p0 = postgresCpu(postmaster);
      const result: MergeBatchResult = await env.run(acts.mergeBatch, {
        connectionString: url,
        sourceName: 'prof',
        tables: [{ source: 'public.orders', icebergTable: 'prof.orders' }],
        slot: 'sluice_prof',
        publication: 'sluice_prof',
        maxChanges: BATCH,
      });
      const t1 = performance.now();
      const p1 = postgresCpu(postmaster);
      if (result.advanceTo) {
        await env.run(acts.advanceSlot, { connectionString: url, slot: 'sluice_prof', to: result.advanceTo });
      }
      const t2 = performance.now();
      const c = process.cpuUsage(c0);
      const slot = await slotRow();
      changes += result.changes;
      batches.push({
        changes: result.changes,
        mergeMs: Math.round(t1 - t0),
        advanceMs: Math.round(t2 - t1),
        cpuMs: Math.round((c.user + c.system) / 1000),
        pgMergeCpuMs: Math.round((p1 - p0) * 1000),
        pgAdvanceCpuMs: Math.round((postgresCpu(postmaster) - p1) * 1000),
        restart: slot.restart,
        confirmed: slot.confirmed,
      });
      if (!result.cutShort) break;
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (inspector) {
      const { profile } = await inspector.post('Profiler.stop');
      writeFileSync(PHASE_PROFILE!, JSON.stringify(profile));
      inspector.disconnect();
    }
    const workerCpu = (cpu.user + cpu.system) / 1e6;
    load.push(os.loadavg()[0]);
    console.log(
      JSON.stringify(
        {
          rows: ROWS,
          changes,
          batch: BATCH,
          prefetch: PREFETCH,
          loadAverage: load,
          seconds: Number(seconds.toFixed(2)),
          changesPerSecond: Math.round(changes / seconds),
          workerCpuS: Number(workerCpu.toFixed(2)),
          changesPerWorkerCpuS: Math.round(changes / workerCpu),
          postgresCpuS: Number((postgresCpu(postmaster) - pg0).toFixed(2)),
          batches,
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
