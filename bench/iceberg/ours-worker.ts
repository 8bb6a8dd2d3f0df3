/**
 * Our engine's side of the Iceberg benchmarks, one case per process so that its peak RSS is its own:
 *
 *   append --table T   create T (unpartitioned, untimed), then time `appendColumns` of base.parquet's rows
 *   upsert --table T   `upsertRows` of changes.parquet into T (the orchestrator times the whole process)
 *   scan --table T     two full scans of T (`scanTable`, deletes applied), cold then warm, with checksums
 *
 * Every mode takes --data, --catalog and --warehouse, and prints one JSON line (see bench-tables.ts).
 * Run through bench/iceberg/run.ts.
 */
import path from 'node:path';
import { appendColumns } from '../../lib/iceberg/append.js';
import { upsertRows } from '../../lib/iceberg/upsert.js';
import { closeEncodePool, warmEncodePool } from '../../lib/iceberg/parquet/index.js';
import {
  BENCH_SCHEMA,
  NAMESPACE,
  emitResult,
  flag,
  openCatalog,
  pathsFromArgs,
  readChanges,
  readRows,
  scanChecksums,
  since,
} from './bench-tables.js';

async function append(): Promise<Record<string, unknown>> {
  const paths = pathsFromArgs();
  const table = `${NAMESPACE}.${flag('table')}`;
  const { catalog, io } = await openCatalog(paths);
  let start = performance.now();
  const input = await readRows(path.join(paths.dataDir, 'base.parquet'));
  const loadMs = since(start);
  await catalog.createTable(table, { schema: BENCH_SCHEMA });
  // Library start-up before the timed call, as the pyiceberg worker imports pyarrow before its clock starts: the
  // encoder threads and their WebAssembly modules are loaded once per process.
  await warmEncodePool(2);
  const rssBeforeMiB = Math.round(process.memoryUsage().rss / 2 ** 20);
  start = performance.now();
  const cpuBefore = process.cpuUsage();
  const result = await appendColumns(catalog, io, table, { columns: input.columns });
  const appendMs = since(start);
  const cpu = process.cpuUsage(cpuBefore);
  return {
    rows: input.rowCount,
    loadMs,
    appendMs,
    appendCpuMs: Math.round((cpu.user + cpu.system) / 1000),
    rssBeforeMiB,
    dataFiles: result.dataFiles.length,
    bytes: result.dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
  };
}

async function upsert(): Promise<Record<string, unknown>> {
  const startedMs = performance.now(); // ms since the process started: Node's start plus tsx and the imports
  const paths = pathsFromArgs();
  const table = `${NAMESPACE}.${flag('table')}`;
  const { catalog, io } = await openCatalog(paths);
  let start = performance.now();
  const changes = await readChanges(path.join(paths.dataDir, 'changes.parquet'));
  const readMs = since(start);
  start = performance.now();
  const result = await upsertRows(catalog, io, table, { columns: changes.columns, ops: changes.ops });
  const upsertMs = since(start);
  return {
    startupMs: Math.round(startedMs),
    readMs,
    upsertMs,
    changes: changes.rowCount,
    updated: result.updated,
    inserted: result.inserted,
    deleted: result.deleted,
    missingDeletes: result.missingDeletes,
    dataFiles: result.dataFiles.length,
    deleteFiles: result.deleteFiles.length,
  };
}

async function scan(): Promise<Record<string, unknown>> {
  const paths = pathsFromArgs();
  const table = `${NAMESPACE}.${flag('table')}`;
  const { catalog, io } = await openCatalog(paths);
  const timedScan = async () => {
    const start = performance.now();
    const cpuBefore = process.cpuUsage();
    const checksums = await scanChecksums(catalog, io, table);
    const cpu = process.cpuUsage(cpuBefore);
    return { ms: since(start), cpuMs: Math.round((cpu.user + cpu.system) / 1000), checksums };
  };
  const cold = await timedScan();
  const warm = await timedScan();
  return {
    coldMs: cold.ms,
    warmMs: warm.ms,
    coldCpuMs: cold.cpuMs,
    warmCpuMs: warm.cpuMs,
    checksums: cold.checksums,
    sameBothTimes: JSON.stringify(cold.checksums) === JSON.stringify(warm.checksums),
  };
}

async function run(): Promise<void> {
  const mode = process.argv[2];
  const modes: Record<string, () => Promise<Record<string, unknown>>> = { append, upsert, scan };
  const body = mode === undefined ? undefined : modes[mode];
  if (!body) throw new Error(`unknown mode ${mode}; use one of ${Object.keys(modes).join(', ')}`);
  try {
    emitResult({ engine: 'ours', mode, ...(await body()) });
  } finally {
    await closeEncodePool();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
