/**
 * The CDC merge's Iceberg side alone, without PostgreSQL or Temporal: an `orders`-shaped table (`bucket(16, id)`)
 * gets `--batches` upserts of `--changes` changes each (60% updates, 25% inserts, 15% deletes, distinct keys per
 * batch), through one shared key-index cache as in the worker, so the table collects a data file and a
 * position-delete file per bucket and batch as it does under a continuous merge without maintenance. Prints this
 * process's CPU time per batch (first, median, last), so that the per-change cost and its growth with the file
 * count can be compared across changes on a loaded machine.
 * Run: `node --import tsx bench/cdc/profile-upsert.ts [--rows 200000] [--changes 100000] [--batches 1]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendColumns } from '../../lib/iceberg/append.js';
import { SqlCatalog, SqliteCatalogDriver } from '../../lib/iceberg/catalog/index.js';
import { Types, type Schema } from '../../lib/iceberg/types.js';
import { KeyIndexCache, upsertRows, type ChangeOp } from '../../lib/iceberg/upsert.js';
import { LocalFileIO } from '../../lib/storage/index.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const ROWS = flag('rows', 200_000);
const CHANGES = flag('changes', 100_000);
const BATCHES = flag('batches', 1);

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'customer', required: true, type: Types.string },
    { id: 3, name: 'status', required: true, type: Types.string },
    { id: 4, name: 'amount', required: false, type: Types.decimal(12, 2) },
    { id: 5, name: 'updated_at', required: true, type: Types.timestamptz },
  ],
};

function rowsOf(ids: readonly number[]): Map<number, unknown[]> {
  return new Map<number, unknown[]>([
    [1, ids.map((id) => BigInt(id))],
    [2, ids.map((id) => `customer ${id % 97}`)],
    [3, ids.map((id) => ['new', 'paid', 'shipped'][id % 3])],
    [4, ids.map((id) => ({ unscaled: BigInt((id * 7) % 100000), scale: 2 }))],
    [5, ids.map((id) => 1_700_000_000_000_000n + BigInt(id) * 60_000_000n)],
  ]);
}

/** A deterministic PRNG, so every run changes the same keys. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function run(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-profile-upsert-'));
  const io = new LocalFileIO({});
  const catalog = new SqlCatalog({
    name: 'profile',
    driver: new SqliteCatalogDriver({ path: path.join(dir, 'catalog.db') }),
    io,
    warehouse: `file://${dir}/wh`,
  });
  try {
    await catalog.initialize();
    await catalog.createNamespace('db');
    await catalog.createTable('db.orders', {
      schema,
      partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[16]' }],
    });
    const live = Array.from({ length: ROWS }, (_, i) => i + 1);
    await appendColumns(catalog, io, 'db.orders', { columns: rowsOf(live) });
    const cache = new KeyIndexCache();
    const random = prng(7);
    let next = ROWS + 1;
    const perBatch: { cpuMs: number; wallMs: number }[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const updates = Math.round(CHANGES * 0.6);
      const deletes = Math.round(CHANGES * 0.15);
      const inserts = CHANGES - updates - deletes;
      const ids: number[] = [];
      const ops: ChangeOp[] = [];
      for (let i = 0; i < updates + deletes; i++) {
        // Swap-remove a random live key: distinct keys within the batch.
        const at = Math.floor(random() * live.length);
        const id = live[at]!;
        live[at] = live[live.length - 1]!;
        live.pop();
        ids.push(id);
        ops.push(i < updates ? 'upsert' : 'delete');
      }
      for (let i = 0; i < updates; i++) live.push(ids[i]!);
      for (let i = 0; i < inserts; i++) {
        ids.push(next);
        live.push(next++);
        ops.push('upsert');
      }
      const columns = rowsOf(ids);
      const cpu = process.cpuUsage();
      const started = performance.now();
      await upsertRows(catalog, io, 'db.orders', { columns, ops, keyIndex: cache });
      const used = process.cpuUsage(cpu);
      perBatch.push({
        cpuMs: Math.round((used.user + used.system) / 1000),
        wallMs: Math.round(performance.now() - started),
      });
    }
    const sorted = perBatch.map((p) => p.cpuMs).sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        rows: ROWS,
        changesPerBatch: CHANGES,
        batches: BATCHES,
        loadAverage: os.loadavg()[0],
        cpuMs: {
          first: perBatch[0]?.cpuMs,
          median: sorted[Math.floor(sorted.length / 2)],
          last: perBatch.at(-1)?.cpuMs,
        },
        wallMs: { first: perBatch[0]?.wallMs, last: perBatch.at(-1)?.wallMs },
        cpuMsPerBatch: perBatch.map((p) => p.cpuMs),
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
