/**
 * What the Iceberg benchmark workers share: the table schema (the one generate_data.py writes), the SQLite catalog
 * and file:// warehouse every engine uses, reading the generated Parquet inputs into our column form, and the one
 * JSON line each worker prints for the orchestrator.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SqlCatalog, SqliteCatalogDriver } from '../../lib/iceberg/catalog/index.js';
import { scanTable } from '../../lib/iceberg/scan.js';
import type { ChangeOp } from '../../lib/iceberg/upsert.js';
import { readParquetFile, type ColumnValues } from '../../lib/iceberg/parquet/index.js';
import { Types, type NestedField, type Schema } from '../../lib/iceberg/types.js';
import type { FileIO } from '../../lib/storage/file-io.js';
import { LocalFileIO } from '../../lib/storage/index.js';

/** The catalog name every engine uses (`catalog_name`, pyiceberg's SqlCatalog name, Spark's catalog name). */
export const CATALOG_NAME = 'sluice_bench';
/** The namespace of every benchmark table. */
export const NAMESPACE = 'bench';

/** A long key plus five mixed columns; field ids match the `PARQUET:field_id`s of the generated files. */
export const BENCH_SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
    { id: 3, name: 'amount', required: false, type: Types.double },
    { id: 4, name: 'updated_at', required: false, type: Types.timestamptz },
    { id: 5, name: 'quantity', required: false, type: Types.int },
    { id: 6, name: 'active', required: false, type: Types.boolean },
  ],
};

/** The `op` column of change files: `update`, `insert` or `delete`. */
const OP_FIELD: NestedField = { id: 100, name: 'op', required: true, type: Types.string };

/** The partition spec of the upsert and scan tables. */
export const BUCKETED_BY_ID = [{ sourceColumn: 'id', transform: 'bucket[16]' }] as const;

/** Merge-on-read for every row-level operation (what Spark's MERGE INTO needs to write position deletes). */
export const MERGE_ON_READ_PROPERTIES: Readonly<Record<string, string>> = {
  'format-version': '2',
  'write.delete.mode': 'merge-on-read',
  'write.update.mode': 'merge-on-read',
  'write.merge.mode': 'merge-on-read',
};

/** Where a worker finds its inputs, catalog and warehouse (the orchestrator passes them as flags). */
export interface BenchPaths {
  /** The generated inputs (generate_data.py --out). */
  dataDir: string;
  /** The SQLite catalog database. */
  catalogPath: string;
  /** The warehouse root, an absolute directory. */
  warehouseDir: string;
}

/** The value of `--name` on the command line, or `fallback`; throws when the flag is missing and has no fallback. */
export function flag(name: string, fallback?: string): string {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? process.argv[at + 1] : fallback;
  if (value === undefined) throw new Error(`missing --${name}; bench/iceberg/run.ts passes it`);
  return value;
}

/** The paths from `--data`, `--catalog` and `--warehouse`. */
export function pathsFromArgs(): BenchPaths {
  return {
    dataDir: path.resolve(flag('data')),
    catalogPath: path.resolve(flag('catalog')),
    warehouseDir: path.resolve(flag('warehouse')),
  };
}

/** Our catalog on the shared SQLite database, with a LocalFileIO. */
export async function openCatalog(paths: BenchPaths): Promise<{ catalog: SqlCatalog; io: LocalFileIO }> {
  const io = new LocalFileIO({});
  const catalog = new SqlCatalog({
    name: CATALOG_NAME,
    driver: new SqliteCatalogDriver({ path: paths.catalogPath }),
    io,
    warehouse: `file://${paths.warehouseDir}`,
  });
  await catalog.initialize();
  if (!(await catalog.namespaceExists(NAMESPACE))) await catalog.createNamespace(NAMESPACE);
  return { catalog, io };
}

/** Rows of a generated file as our column form (values.ts representation), by field id. */
export async function readRows(file: string): Promise<{ rowCount: number; columns: Map<number, ColumnValues> }> {
  const batch = readParquetFile(await readFile(file), { schema: BENCH_SCHEMA });
  return { rowCount: batch.rowCount, columns: batch.columns };
}

/** A change file as `upsertRows` input: the row columns and one op per row. */
export async function readChanges(
  file: string,
): Promise<{ rowCount: number; columns: Map<number, ColumnValues>; ops: ChangeOp[]; kinds: string[] }> {
  const batch = readParquetFile(await readFile(file), { schema: { fields: [OP_FIELD, ...BENCH_SCHEMA.fields] } });
  const kinds = batch.columns.get(OP_FIELD.id) as string[];
  batch.columns.delete(OP_FIELD.id);
  return {
    rowCount: batch.rowCount,
    columns: batch.columns,
    ops: kinds.map((k) => (k === 'delete' ? 'delete' : 'upsert')),
    kinds,
  };
}

/** Checksums of a table's live rows, in the form generate_data.py writes to expected.json. */
export interface TableChecksums {
  rows: number;
  idSum: string;
  quantitySum: string;
  updatedAtSum: string;
}

/** Scans every live row of a table and sums a few columns, so that the values are really decoded and checked. */
export async function scanChecksums(catalog: SqlCatalog, io: FileIO, table: string): Promise<TableChecksums> {
  const { metadata } = await catalog.loadTable(table);
  let rows = 0;
  let idSum = 0n;
  let quantitySum = 0;
  let updatedAtSum = 0n;
  for await (const batch of scanTable(io, metadata)) {
    rows += batch.rowCount;
    const ids = batch.columns.get(1) as bigint[];
    const quantities = batch.columns.get(5) as (number | null)[];
    const times = batch.columns.get(4) as (bigint | null)[];
    for (let i = 0; i < batch.rowCount; i++) {
      idSum += ids[i]!;
      quantitySum += quantities[i] ?? 0;
      updatedAtSum += times[i] ?? 0n;
    }
  }
  return { rows, idSum: String(idSum), quantitySum: String(quantitySum), updatedAtSum: String(updatedAtSum) };
}

/** The peak resident set size of this process so far, in MiB. */
export function peakRssMiB(): number {
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

/**
 * Prints the worker's one result line (the orchestrator reads the last stdout line as JSON), with the process's
 * peak RSS and its CPU time (main thread and encoder worker threads: getrusage counts every thread).
 */
export function emitResult(result: Record<string, unknown>): void {
  const cpu = process.cpuUsage();
  const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  process.stdout.write(
    JSON.stringify({ ...result, cpuMs, peakRssMiB: peakRssMiB() }, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v,
    ) + '\n',
  );
}

/** Milliseconds since `start` (a `performance.now()` value), to 0.1 ms. */
export function since(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}
