/**
 * Untimed preparation for the Iceberg benchmarks, written by our engine:
 *
 *   upsert-bases --tables a,b,c
 *       the upsert benchmark's base tables: each `bucket[16](id)`, merge-on-read properties, base.parquet's rows
 *       appended in one commit (16 data files). Every engine gets its own identical copy.
 *   scan-tables --rounds N
 *       the scan benchmark's tables, each base.parquet plus N rounds of rounds/round-NN.parquet:
 *         scan_pos        our `upsertRows` (position deletes);
 *         scan_compacted  the same, then `compactTable` (lib/iceberg/maintenance);
 *         scan_eq         the bench-only equality-delete writer (equality-delete-writer.ts).
 *   verify --tables a,b --expect afterChanges|afterRounds
 *       scans each table with our engine and compares row count and checksums with expected.json.
 *
 * Every mode takes --data, --catalog and --warehouse and prints one JSON line.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { appendColumns } from '../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../lib/iceberg/catalog/sql-catalog.js';
import { compactTable } from '../../lib/iceberg/maintenance/index.js';
import { closeEncodePool } from '../../lib/iceberg/parquet/index.js';
import { KeyIndexCache, upsertRows } from '../../lib/iceberg/upsert.js';
import {
  BENCH_SCHEMA,
  BUCKETED_BY_ID,
  MERGE_ON_READ_PROPERTIES,
  NAMESPACE,
  emitResult,
  flag,
  openCatalog,
  pathsFromArgs,
  readChanges,
  readRows,
  scanChecksums,
  since,
  type TableChecksums,
} from './bench-tables.js';
import { upsertWithEqualityDeletes } from './equality-delete-writer.js';

async function createBucketedTable(catalog: SqlCatalog, table: string): Promise<void> {
  if (await catalog.tableExists(table)) await catalog.dropTable(table, { purge: true });
  await catalog.createTable(table, {
    schema: BENCH_SCHEMA,
    partitionSpec: [...BUCKETED_BY_ID],
    properties: MERGE_ON_READ_PROPERTIES,
  });
}

async function upsertBases(): Promise<Record<string, unknown>> {
  const paths = pathsFromArgs();
  const { catalog, io } = await openCatalog(paths);
  const input = await readRows(path.join(paths.dataDir, 'base.parquet'));
  const appendMs: Record<string, number> = {};
  for (const name of flag('tables').split(',')) {
    const table = `${NAMESPACE}.${name}`;
    await createBucketedTable(catalog, table);
    const start = performance.now();
    await appendColumns(catalog, io, table, { columns: input.columns });
    appendMs[name] = since(start);
  }
  return { rows: input.rowCount, appendMs };
}

async function scanTables(): Promise<Record<string, unknown>> {
  const paths = pathsFromArgs();
  const rounds = Number(flag('rounds', '10'));
  const { catalog, io } = await openCatalog(paths);
  const names = ['scan_pos', 'scan_eq', 'scan_compacted'];
  const base = await readRows(path.join(paths.dataDir, 'base.parquet'));
  for (const name of names) {
    await createBucketedTable(catalog, `${NAMESPACE}.${name}`);
    await appendColumns(catalog, io, `${NAMESPACE}.${name}`, { columns: base.columns });
  }
  const cache = new KeyIndexCache();
  const roundMs: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 1; r <= rounds; r++) {
    const changes = await readChanges(
      path.join(paths.dataDir, 'rounds', `round-${String(r).padStart(2, '0')}.parquet`),
    );
    for (const name of names) {
      const start = performance.now();
      if (name === 'scan_eq') await upsertWithEqualityDeletes(catalog, io, `${NAMESPACE}.${name}`, changes);
      else await upsertRows(catalog, io, `${NAMESPACE}.${name}`, { ...changes, keyIndex: cache });
      roundMs[name]!.push(since(start));
    }
  }
  const start = performance.now();
  const compacted = await compactTable(catalog, io, `${NAMESPACE}.scan_compacted`);
  const compactMs = since(start);
  return {
    rounds,
    tables: names,
    roundMs,
    compactMs,
    compacted: {
      rewrittenDataFiles: compacted.rewrittenDataFiles.length,
      addedDataFiles: compacted.addedDataFiles.length,
      removedDeleteFiles: compacted.removedDeleteFiles.length,
    },
    compaction: 'compactTable (lib/iceberg/maintenance)',
  };
}

async function verify(): Promise<Record<string, unknown>> {
  const paths = pathsFromArgs();
  const { catalog, io } = await openCatalog(paths);
  const expectKey = flag('expect');
  const expected = JSON.parse(await readFile(path.join(paths.dataDir, 'expected.json'), 'utf8')) as Record<
    string,
    TableChecksums | undefined
  >;
  const want = expected[expectKey];
  if (!want) throw new Error(`expected.json has no "${expectKey}"`);
  const tables: Record<string, { ok: boolean; got: TableChecksums }> = {};
  for (const name of flag('tables').split(',')) {
    const got = await scanChecksums(catalog, io, `${NAMESPACE}.${name}`);
    tables[name] = { ok: JSON.stringify(got) === JSON.stringify(want), got };
  }
  return { expect: expectKey, want, tables, allOk: Object.values(tables).every((t) => t.ok) };
}

async function run(): Promise<void> {
  const mode = process.argv[2];
  const modes: Record<string, () => Promise<Record<string, unknown>>> = {
    'upsert-bases': upsertBases,
    'scan-tables': scanTables,
    verify,
  };
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
