import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import {
  appendColumns,
  commitNewManifests,
  dataDirectory,
  groupRowsByPartition,
  writeAddedManifest,
} from '../../lib/iceberg/append.js';
import type { DataFile } from '../../lib/iceberg/data-file.js';
import {
  currentSchema,
  defaultPartitionSpec,
  newSnapshotId,
  type TableMetadata,
} from '../../lib/iceberg/metadata-json.js';
import { readParquetFooter, writeParquetDataFile, type ParquetWriteTuning } from '../../lib/iceberg/parquet/index.js';
import { partitionPath } from '../../lib/iceberg/partition-spec.js';
import { noChanges } from '../../lib/iceberg/table-update.js';
import type { FileIO } from '../../lib/storage/file-io.js';
import { compactTable } from '../../lib/iceberg/maintenance/index.js';
import type { PartitionFieldRequest } from '../../lib/iceberg/partition-spec.js';
import { updateTableSchema } from '../../lib/iceberg/schema-update.js';
import { Types, type NestedField, type Schema } from '../../lib/iceberg/types.js';
import { decimalToPlainString, type DecimalValue } from '../../lib/iceberg/values.js';
import { KeyIndexCache, upsertRows, type ChangeOp } from '../../lib/iceberg/upsert.js';
import * as x from '../../lib/iceberg/expressions.js';
import { deleteWhere, overwriteRows, type RowLevelWriteResult } from '../../lib/iceberg/overwrite.js';
import { canonicalSchema, readWithOurEngine, rowToCanonical } from './canonical.js';
import {
  readWithDuckdb,
  readWithPyiceberg,
  runSparkSql,
  type CanonicalRow,
  type SparkStatementResult,
} from './engines.js';
import {
  ALL_TYPES,
  CATALOG_SETUPS,
  EDGE_ROWS,
  GENERATED_ROWS,
  LONG_MAX,
  LONG_MIN,
  asReadByPyiceberg,
  byId,
  canonicalRows,
  columnsOf,
  date,
  dec,
  field,
  listOf,
  mapLimit,
  schemaFrom,
  schemaOf,
  structOf,
  time,
  ts,
  tstz,
  timed,
  ReaderSession,
  type InteropEnv,
  type TsRow,
} from './table-fixtures.js';

// Tables written by OUR engine (appendColumns, upsertRows, updateTableSchema), read back by pyiceberg 0.12
// (SqlCatalog), DuckDB 1.5.5 (iceberg_scan) and Spark 4.1 (JdbcCatalog), and by our own scan; every row must equal
// the rows we meant to write. Spark runs once per catalog setup, at the end, reading every table in one JVM.

const NS = 'ours';

// ---- every type ----------------------------------------------------------------------------------------------

const TIMES = schemaFrom(
  [
    ['id', Types.long, true],
    ['at', Types.time],
    ['ats', listOf(Types.time)],
  ],
  ['id'],
);
const TIME_ROWS: TsRow[] = [
  { id: 1n, at: time('00:00:00'), ats: [time('00:00:00.000001'), null] },
  { id: 2n, at: time('23:59:59.999999'), ats: [] },
  { id: 3n, at: time('12:34:56.000001'), ats: null },
  { id: 4n, at: null, ats: [time('01:02:03.5')] },
];

// ---- every partitioning ----------------------------------------------------------------------------------------

const PARTITIONED = schemaFrom(
  [
    ['id', Types.long, true],
    ['n', Types.int],
    ['s', Types.string],
    ['d', Types.date],
    ['ts', Types.timestamp],
    ['tstz', Types.timestamptz],
    ['dec', Types.decimal(9, 2)],
    ['u', Types.uuid],
  ],
  ['id'],
);

const P_IDS = [LONG_MIN, LONG_MAX, -1n, 0n, 1n, 7n, 42n, -1000n, 123456789012345n];
const P_INTS = [-2147483640, 2147483647, -1, 0, 9, 10, -10, -11, 19, 105, null];
const P_STRINGS = ['', 'a', 'abc', 'abcdef', 'abd', 'héllo', '🌍🌍🌍🌍', 'zz top', 'x/y=z%20&?#', 'ÄÖÜ', null];
const P_DATES = [
  '1900-01-01',
  '1969-12-31',
  '1970-01-01',
  '2000-02-29',
  '2024-02-29',
  '2024-12-31',
  '2025-01-01',
  null,
];
const P_TIMESTAMPS = [
  '1969-12-31T23:59:59.999999',
  '1970-01-01T00:00:00',
  '0001-01-01T00:00:00',
  '2023-12-31T23:59:59.999999',
  '2024-01-01T00:00:00',
  '2024-03-10T05:30:00.5',
  '2024-03-10T06:00:00',
  '2024-03-10T05:00:00',
  null,
];

const PARTITION_ROWS: TsRow[] = Array.from({ length: 44 }, (_, i) => {
  const s = P_TIMESTAMPS[i % P_TIMESTAMPS.length];
  const z = P_TIMESTAMPS[(i * 5 + 3) % P_TIMESTAMPS.length];
  const d = P_DATES[(i * 3) % P_DATES.length];
  return {
    id: P_IDS[i] ?? BigInt(1000 + i),
    n: P_INTS[(i * 7) % P_INTS.length],
    s: P_STRINGS[i % P_STRINGS.length],
    d: d == null ? null : date(d),
    ts: s == null ? null : ts(s),
    tstz: z == null ? null : tstz(`${z}Z`),
    dec: i % 10 === 9 ? null : dec(`${((i * 137) % 1000) - 500}.${String((i * 7) % 100).padStart(2, '0')}`),
    u:
      i % 12 === 11
        ? null
        : `${String(i).padStart(8, '0')}-0000-4000-8000-${(i * 7919).toString(16).padStart(12, '0')}`,
  };
});
const P_ROW_7 = PARTITION_ROWS[7] as TsRow;
const P_UUID = PARTITION_ROWS[5]?.u as string;
const decText = (v: unknown) => decimalToPlainString(v as DecimalValue);

interface RowFilter {
  /** pyiceberg expression, DuckDB and Spark SQL conditions, and the same predicate in TypeScript. */
  pyiceberg: string;
  duckdb: string;
  /** A DuckDB condition that should match the same rows but returns none (a known DuckDB bug). */
  duckdbKnownEmpty?: string;
  spark: string;
  matches(row: TsRow): boolean;
}

interface Partitioning {
  table: string;
  spec: PartitionFieldRequest[];
  filters: RowFilter[];
}

const between = (v: unknown, lo: bigint, hi: bigint) => typeof v === 'bigint' && v >= lo && v < hi;

const PARTITIONINGS: Partitioning[] = [
  {
    table: 'p_identity',
    spec: [
      { sourceColumn: 's', transform: 'identity' },
      { sourceColumn: 'n', transform: 'identity' },
    ],
    filters: [
      {
        pyiceberg: "s = 'x/y=z%20&?#'",
        duckdb: "s = 'x/y=z%20&?#'",
        spark: "s = 'x/y=z%20&?#'",
        matches: (r) => r.s === 'x/y=z%20&?#',
      },
      { pyiceberg: 'n IS NULL', duckdb: 'n IS NULL', spark: 'n IS NULL', matches: (r) => r.n === null },
    ],
  },
  {
    table: 'p_bucket_long',
    spec: [{ sourceColumn: 'id', transform: 'bucket[8]' }],
    filters: [
      { pyiceberg: 'id = 42', duckdb: 'id = 42', spark: 'id = 42', matches: (r) => r.id === 42n },
      {
        pyiceberg: `id = ${LONG_MIN}`,
        duckdb: `id = ${LONG_MIN}`,
        spark: `id = ${LONG_MIN}L`,
        matches: (r) => r.id === LONG_MIN,
      },
    ],
  },
  {
    table: 'p_bucket_string',
    spec: [{ sourceColumn: 's', transform: 'bucket[4]' }],
    filters: [
      { pyiceberg: "s = 'héllo'", duckdb: "s = 'héllo'", spark: "s = 'héllo'", matches: (r) => r.s === 'héllo' },
    ],
  },
  {
    table: 'p_truncate_string',
    spec: [{ sourceColumn: 's', transform: 'truncate[3]' }],
    filters: [
      {
        pyiceberg: "s = '🌍🌍🌍🌍'",
        duckdb: "s = '🌍🌍🌍🌍'",
        spark: "s = '🌍🌍🌍🌍'",
        matches: (r) => r.s === '🌍🌍🌍🌍',
      },
      { pyiceberg: "s = 'abcdef'", duckdb: "s = 'abcdef'", spark: "s = 'abcdef'", matches: (r) => r.s === 'abcdef' },
    ],
  },
  {
    table: 'p_truncate_int',
    spec: [{ sourceColumn: 'n', transform: 'truncate[10]' }],
    filters: [
      { pyiceberg: 'n < 0', duckdb: 'n < 0', spark: 'n < 0', matches: (r) => typeof r.n === 'number' && r.n < 0 },
      { pyiceberg: 'n = 19', duckdb: 'n = 19', spark: 'n = 19', matches: (r) => r.n === 19 },
    ],
  },
  {
    table: 'p_year',
    spec: [
      { sourceColumn: 'ts', transform: 'year' },
      { sourceColumn: 'd', transform: 'year' },
    ],
    filters: [
      {
        pyiceberg: "ts >= '2024-01-01T00:00:00'",
        duckdb: "ts >= TIMESTAMP '2024-01-01 00:00:00'",
        spark: "ts >= TIMESTAMP_NTZ '2024-01-01 00:00:00'",
        matches: (r) => between(r.ts, ts('2024-01-01T00:00:00'), LONG_MAX),
      },
      {
        pyiceberg: "d < '1970-01-01'",
        duckdb: "d < DATE '1970-01-01'",
        spark: "d < DATE '1970-01-01'",
        matches: (r) => typeof r.d === 'number' && r.d < 0,
      },
    ],
  },
  {
    table: 'p_month',
    spec: [
      { sourceColumn: 'tstz', transform: 'month' },
      { sourceColumn: 'd', transform: 'month' },
    ],
    filters: [
      {
        pyiceberg: "tstz < '1970-01-01T00:00:00+00:00'",
        duckdb: "tstz < TIMESTAMPTZ '1970-01-01 00:00:00+00'",
        spark: "tstz < TIMESTAMP '1970-01-01 00:00:00+00:00'",
        matches: (r) => typeof r.tstz === 'bigint' && r.tstz < 0n,
      },
      {
        pyiceberg: "d = '2024-02-29'",
        duckdb: "d = DATE '2024-02-29'",
        spark: "d = DATE '2024-02-29'",
        matches: (r) => r.d === date('2024-02-29'),
      },
    ],
  },
  {
    table: 'p_day',
    spec: [
      { sourceColumn: 'ts', transform: 'day' },
      { sourceColumn: 'd', transform: 'day' },
    ],
    filters: [
      {
        pyiceberg: "ts < '1970-01-01T00:00:00'",
        duckdb: "ts < TIMESTAMP '1970-01-01 00:00:00'",
        spark: "ts < TIMESTAMP_NTZ '1970-01-01 00:00:00'",
        matches: (r) => typeof r.ts === 'bigint' && r.ts < 0n,
      },
      {
        pyiceberg: "d = '1969-12-31'",
        duckdb: "d = DATE '1969-12-31'",
        spark: "d = DATE '1969-12-31'",
        matches: (r) => r.d === -1,
      },
    ],
  },
  {
    table: 'p_hour',
    spec: [
      { sourceColumn: 'tstz', transform: 'hour' },
      { sourceColumn: 'ts', transform: 'hour' },
    ],
    filters: [
      {
        pyiceberg: "tstz >= '2024-03-10T05:00:00+00:00' AND tstz < '2024-03-10T06:00:00+00:00'",
        duckdb: "tstz >= TIMESTAMPTZ '2024-03-10 05:00:00+00' AND tstz < TIMESTAMPTZ '2024-03-10 06:00:00+00'",
        spark: "tstz >= TIMESTAMP '2024-03-10 05:00:00+00:00' AND tstz < TIMESTAMP '2024-03-10 06:00:00+00:00'",
        matches: (r) => between(r.tstz, tstz('2024-03-10T05:00:00Z'), tstz('2024-03-10T06:00:00Z')),
      },
      {
        pyiceberg: "ts = '1969-12-31T23:59:59.999999'",
        duckdb: "ts = TIMESTAMP '1969-12-31 23:59:59.999999'",
        spark: "ts = TIMESTAMP_NTZ '1969-12-31 23:59:59.999999'",
        matches: (r) => r.ts === -1n,
      },
    ],
  },
  {
    table: 'p_bucket_misc',
    spec: [
      { sourceColumn: 'n', transform: 'bucket[3]' },
      { sourceColumn: 'd', transform: 'bucket[5]' },
      { sourceColumn: 'tstz', transform: 'bucket[7]' },
      { sourceColumn: 'dec', transform: 'bucket[4]' },
      { sourceColumn: 'u', transform: 'bucket[6]' },
    ],
    filters: [
      {
        pyiceberg: `u = '${P_UUID}'`,
        // DuckDB 1.5.5 prunes bucket partitions of a uuid column with a wrong hash (pyiceberg-written tables too):
        // \`u = '…'\` returns no rows. Comparing as text skips the pruning; the natural filter is asserted to return
        // [] below, so that a fixed DuckDB is noticed.
        duckdb: `CAST(u AS VARCHAR) = '${P_UUID}'`,
        duckdbKnownEmpty: `u = '${P_UUID}'`,
        spark: `u = '${P_UUID}'`,
        matches: (r) => r.u === P_UUID,
      },
      {
        pyiceberg: `dec = ${decText(P_ROW_7.dec)}`,
        duckdb: `dec = ${decText(P_ROW_7.dec)}`,
        spark: `dec = ${decText(P_ROW_7.dec)}`,
        matches: (r) => r.dec !== null && decText(r.dec) === decText(P_ROW_7.dec),
      },
      {
        pyiceberg: "d = '2000-02-29'",
        duckdb: "d = DATE '2000-02-29'",
        spark: "d = DATE '2000-02-29'",
        matches: (r) => r.d === date('2000-02-29'),
      },
    ],
  },
  {
    table: 'p_truncate_misc',
    spec: [
      { sourceColumn: 'id', transform: 'truncate[16]' },
      { sourceColumn: 'dec', transform: 'truncate[50]' },
    ],
    filters: [
      { pyiceberg: 'id = 42', duckdb: 'id = 42', spark: 'id = 42', matches: (r) => r.id === 42n },
      {
        pyiceberg: 'dec < 0',
        duckdb: 'dec < 0',
        spark: 'dec < 0',
        matches: (r) => r.dec !== null && (r.dec as DecimalValue).unscaled < 0n,
      },
    ],
  },
];

// ---- the copy-on-write table ---------------------------------------------------------------------------------

const COW = schemaFrom(
  [
    ['id', Types.long, true],
    ['region', Types.string, true],
    ['qty', Types.int],
    ['price', Types.decimal(10, 2)],
    ['updated', Types.timestamptz],
  ],
  ['id'],
);
const COW_SPEC: PartitionFieldRequest[] = [
  { sourceColumn: 'region', transform: 'identity' },
  { sourceColumn: 'id', transform: 'bucket[2]' },
];

function cowRow(id: number, round: number, extra: TsRow = {}): TsRow {
  return {
    id: BigInt(id),
    region: ['eu', 'us', 'ap'][id % 3]!,
    qty: id % 11 === 0 ? null : id * 7 + round,
    price: dec(`${id}.${String(round).padStart(2, '0')}`),
    updated: tstz(`2024-06-${String((id % 28) + 1).padStart(2, '0')}T08:30:00Z`),
    ...extra,
  };
}

// ---- the mixed-history table ---------------------------------------------------------------------------------

const MIXED = schemaFrom(
  [
    ['id', Types.long, true],
    ['name', Types.string],
    ['qty', Types.int],
    ['price', Types.decimal(10, 2)],
    ['updated', Types.timestamptz],
    ['meta', structOf(['src', Types.string], ['n', Types.int])],
  ],
  ['id'],
);
const MIXED_SPEC: PartitionFieldRequest[] = [
  { sourceColumn: 'id', transform: 'bucket[4]' },
  { sourceColumn: 'updated', transform: 'day' },
];

/** Expected rows of the mixed table, keyed by field id so that renames and widenings need no rewriting. */
class RowModel {
  private readonly rows = new Map<bigint, Map<number, unknown>>();

  /** Applies changes given by column name under `schema`; the last change per key wins, like upsertRows. */
  apply(schema: Schema, ops: readonly ChangeOp[], rows: readonly TsRow[]): void {
    rows.forEach((row, i) => {
      const id = row.id as bigint;
      if (ops[i] === 'delete') this.rows.delete(id);
      else this.rows.set(id, new Map(schema.fields.map((f) => [f.id, row[f.name] ?? null])));
    });
  }

  expected(schema: Schema): CanonicalRow[] {
    return byId(
      [...this.rows.values()].map((values) =>
        rowToCanonical(
          schema.fields,
          schema.fields.map((f) => values.get(f.id) ?? null),
        ),
      ),
    );
  }

  get size(): number {
    return this.rows.size;
  }
}

function mixedRow(id: number, round: number, extra: TsRow = {}): TsRow {
  return {
    id: BigInt(id),
    name: `r${round}-${id}`,
    qty: id * 10 + round,
    price: dec(`${id}.${String(round).padStart(2, '0')}`),
    // Rows move between day partitions as rounds go by; some have no day at all (null partition).
    updated:
      (id + round) % 9 === 0 ? null : tstz(`2024-05-${String(((id + round) % 3) + 1).padStart(2, '0')}T12:00:00Z`),
    meta: id % 5 === 0 ? null : { src: `round ${round}`, n: round },
    ...extra,
  };
}

// ---- DELTA_BINARY_PACKED integers ----------------------------------------------------------------------------

const DELTA = schemaFrom(
  [
    ['id', Types.long, true],
    ['n', Types.long],
    ['ts', Types.timestamp],
    ['tstz', Types.timestamptz],
    ['s', Types.string],
  ],
  ['id'],
);

function deltaRow(id: number, round: number): TsRow {
  return {
    id: BigInt(id),
    n: id % 6 === 0 ? null : BigInt(id) * 1_000_000_007n * (id % 2 === 0 ? -1n : 1n) + BigInt(round),
    ts: ts('2024-01-01T00:00:00') + BigInt(id) * 3_600_000_001n,
    tstz: id % 5 === 0 ? null : tstz('1969-12-31T23:59:59.999999Z') - BigInt(id * round),
    s: `d${id}-${round}`,
  };
}
const DELTA_ROWS: TsRow[] = Array.from({ length: 32 }, (_, i) => deltaRow(i + 1, 0));

/**
 * writeDataFiles' work for one partitioned append, with Parquet tuning that `appendColumns` does not pass on
 * (`integerEncoding`).
 */
async function writeDataFilesWith(
  io: FileIO,
  metadata: TableMetadata,
  rows: readonly TsRow[],
  tuning: ParquetWriteTuning,
): Promise<DataFile[]> {
  const schema = currentSchema(metadata);
  const spec = defaultPartitionSpec(metadata);
  const columns = columnsOf(schema, rows);
  const files: DataFile[] = [];
  for (const group of groupRowsByPartition(spec, schema, columns, rows.length)) {
    const written = await writeParquetDataFile({
      schema,
      columns: new Map([...columns].map(([id, values]) => [id, group.rows.map((r) => values[r])] as const)),
      rowCount: group.rows.length,
      ...tuning,
    });
    const footer = readParquetFooter(written.bytes);
    expect(footer.rowGroups.length).toBeGreaterThan(1);
    const filePath = `${dataDirectory(metadata)}/${partitionPath(spec, schema, group.partition)}/delta-${randomUUID()}.parquet`;
    await io.write(filePath, written.bytes);
    files.push({
      content: 'data',
      filePath,
      fileFormat: 'PARQUET',
      partition: group.partition,
      specId: spec.specId,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      splitOffsets: written.splitOffsets,
      sortOrderId: 0,
    });
  }
  return files;
}

/** A Spark check that the last test of each catalog setup runs in one JVM. */
interface SparkCheck {
  name: string;
  sql: string;
  expected?: CanonicalRow[];
  error?: RegExp;
}

function qualified(table: string): string {
  return `${NS}.${table}`;
}

describe.each(CATALOG_SETUPS)('tables written by our engine: $label', (setup) => {
  let env: InteropEnv;
  // Long-lived reader processes (pyiceberg, DuckDB); the all-types test also goes through the harness's scripts.
  let pySession: ReaderSession;
  let duckSession: ReaderSession;
  const spark: SparkCheck[] = [];
  let allTypesFields: readonly NestedField[];
  let allTypesExpected: CanonicalRow[];

  async function create(table: string, schema: Schema, partitionSpec: PartitionFieldRequest[] = []): Promise<Schema> {
    const created = await env.catalog.createTable(qualified(table), { schema, partitionSpec });
    return schemaOf(created.metadata);
  }

  async function ours(table: string, snapshotId?: bigint): Promise<CanonicalRow[]> {
    const { metadata } = await env.catalog.loadTable(qualified(table));
    return (await readWithOurEngine(env.io, metadata, { snapshotId, orderBy: ['id'] })).rows;
  }

  beforeAll(async () => {
    env = await setup.open('ours');
    await env.catalog.createNamespace(NS);
    pySession = new ReaderSession();
    duckSession = new ReaderSession();
  });
  afterAll(async () => {
    await Promise.all([pySession?.close(), duckSession?.close()]);
    await env?.close();
  });

  it('every primitive and nested type with edge values and nulls: pyiceberg, DuckDB and our scan read every row', async () => {
    const schema = await create('all_types', ALL_TYPES);
    allTypesFields = schema.fields;
    // Two appends: two snapshots, and pyiceberg reads the first by id.
    const first = await appendColumns(env.catalog, env.io, qualified('all_types'), {
      columns: columnsOf(schema, EDGE_ROWS),
    });
    await appendColumns(env.catalog, env.io, qualified('all_types'), { columns: columnsOf(schema, GENERATED_ROWS) });
    allTypesExpected = canonicalRows(schema.fields, [...EDGE_ROWS, ...GENERATED_ROWS]);
    spark.push({
      name: 'all_types',
      sql: `SELECT * FROM ${qualified('all_types')} ORDER BY id`,
      expected: allTypesExpected,
    });

    expect(await ours('all_types')).toEqual(allTypesExpected);
    const py = await readWithPyiceberg(env.ref, { table: qualified('all_types'), orderBy: ['id'] });
    expect(py.schema).toEqual(canonicalSchema(schema));
    expect(py.rows).toEqual(asReadByPyiceberg(schema.fields, allTypesExpected));
    const pyFirst = await readWithPyiceberg(env.ref, {
      table: qualified('all_types'),
      snapshotId: first.snapshotId,
      orderBy: ['id'],
      columns: ['id', 'point', 'attrs', 'events'],
    });
    expect(pyFirst.rows).toEqual(
      asReadByPyiceberg(
        schema.fields,
        canonicalRows(
          ['id', 'point', 'attrs', 'events'].map((name) => field(schema, name)),
          EDGE_ROWS,
        ),
      ),
    );
    const duck = await readWithDuckdb({ catalog: env.ref, table: qualified('all_types') }, { orderBy: ['id'] });
    expect(duck.metadataLocation).toBe((await env.catalog.loadTable(qualified('all_types'))).metadataLocation);
    expect(duck.rows).toEqual(allTypesExpected);
  });

  it('a time column (which Spark refuses) reads in pyiceberg, DuckDB and our scan', async () => {
    const schema = await create('times', TIMES);
    await appendColumns(env.catalog, env.io, qualified('times'), { columns: columnsOf(schema, TIME_ROWS) });
    const expected = canonicalRows(schema.fields, TIME_ROWS);
    spark.push({ name: 'times', sql: `SELECT * FROM ${qualified('times')}`, error: /does not support time/ });
    expect(await ours('times')).toEqual(expected);
    const py = await pySession.pyiceberg(env.ref, { table: qualified('times'), orderBy: ['id'] });
    expect(py.rows).toEqual(expected);
    const duck = await duckSession.duckdb({ catalog: env.ref, table: qualified('times') }, { orderBy: ['id'] });
    expect(duck.rows).toEqual(expected);
  });

  it('identity, bucket, truncate and year/month/day/hour partitions: full and filtered (pruned) reads', async () => {
    await mapLimit(PARTITIONINGS, 2, async (p) => {
      const schema = await create(p.table, PARTITIONED, p.spec);
      const half = Math.ceil(PARTITION_ROWS.length / 2);
      for (const rows of [PARTITION_ROWS.slice(0, half), PARTITION_ROWS.slice(half)]) {
        await appendColumns(env.catalog, env.io, qualified(p.table), { columns: columnsOf(schema, rows) });
      }
      const expected = canonicalRows(schema.fields, PARTITION_ROWS);
      const table = qualified(p.table);
      spark.push({ name: p.table, sql: `SELECT * FROM ${table} ORDER BY id`, expected });
      expect(await ours(p.table), `our scan of ${p.table}`).toEqual(expected);
      const py = await pySession.pyiceberg(env.ref, { table, orderBy: ['id'] });
      expect(py.rows, `pyiceberg, ${p.table}`).toEqual(expected);
      const duck = await duckSession.duckdb({ catalog: env.ref, table }, { orderBy: ['id'] });
      expect(duck.rows, `DuckDB, ${p.table}`).toEqual(expected);
      for (const filter of p.filters) {
        const want = canonicalRows(schema.fields, PARTITION_ROWS.filter(filter.matches));
        expect(want.length, `the filter ${filter.pyiceberg} should match some rows`).toBeGreaterThan(0);
        const pyFiltered = await pySession.pyiceberg(env.ref, { table, filter: filter.pyiceberg, orderBy: ['id'] });
        expect(pyFiltered.rows, `pyiceberg, ${p.table} WHERE ${filter.pyiceberg}`).toEqual(want);
        const duckFiltered = await duckSession.duckdb(
          { catalog: env.ref, table },
          { filter: filter.duckdb, orderBy: ['id'] },
        );
        expect(duckFiltered.rows, `DuckDB, ${p.table} WHERE ${filter.duckdb}`).toEqual(want);
        if (filter.duckdbKnownEmpty) {
          const wrong = await duckSession.duckdb({ catalog: env.ref, table }, { filter: filter.duckdbKnownEmpty });
          expect(wrong.rows, `DuckDB, ${p.table} WHERE ${filter.duckdbKnownEmpty} (known DuckDB bug)`).toEqual([]);
        }
        spark.push({
          name: `${p.table} WHERE ${filter.spark}`,
          sql: `SELECT * FROM ${table} WHERE ${filter.spark} ORDER BY id`,
          expected: want,
        });
      }
    });
  });

  it('appends, upserts (position deletes), a schema change, more upserts and compaction: pyiceberg reads every step', async () => {
    const table = qualified('mixed');
    let schema = await create('mixed', MIXED, MIXED_SPEC);
    const model = new RowModel();
    const cache = new KeyIndexCache();
    const steps: { step: string; snapshotId: bigint; schema: Schema; expected: CanonicalRow[] }[] = [];

    async function check(step: string): Promise<void> {
      const loaded = await env.catalog.loadTable(table);
      schema = schemaOf(loaded.metadata);
      const expected = model.expected(schema);
      const snapshotId = loaded.metadata.currentSnapshotId as bigint;
      steps.push({ step, snapshotId, schema, expected });
      const oursNow = await timed(`our scan ${step}`, () =>
        readWithOurEngine(env.io, loaded.metadata, { orderBy: ['id'] }),
      );
      expect(oursNow.rows, `our scan, ${step}`).toEqual(expected);
      const py = await timed(`pyiceberg ${step}`, () => pySession.pyiceberg(env.ref, { table, orderBy: ['id'] }));
      expect(py.snapshotId, step).toBe(String(snapshotId));
      expect(py.schema, step).toEqual(canonicalSchema(schema));
      expect(py.rows, `pyiceberg, ${step}`).toEqual(expected);
    }

    async function upsert(step: string, changes: [ChangeOp, TsRow][]): Promise<void> {
      const ops = changes.map(([op]) => op);
      const rows = changes.map(([, row]) => row);
      const result = await timed(step, () =>
        upsertRows(env.catalog, env.io, table, {
          columns: columnsOf(schema, rows),
          ops,
          keyIndex: cache,
        }),
      );
      expect(
        result.deleteFiles.every((f) => f.content === 'position-deletes'),
        step,
      ).toBe(true);
      model.apply(schema, ops, rows);
      await check(step);
    }

    // 1. Append 30 rows in one commit.
    const initial = Array.from({ length: 30 }, (_, i) => mixedRow(i + 1, 0));
    // Small row groups, so that later position deletes point into row groups after the first.
    await appendColumns(env.catalog, env.io, table, { columns: columnsOf(schema, initial), maxRowGroupRows: 4 });
    model.apply(
      schema,
      initial.map(() => 'upsert'),
      initial,
    );
    await check('1: append');

    // 2. Updates, deletes, inserts, a key changed twice in one batch, a delete of a missing key.
    await upsert('2: upsert round 1', [
      ...[1, 2, 3, 4, 5, 10, 15].map((id): [ChangeOp, TsRow] => ['upsert', mixedRow(id, 1)]),
      ...[6, 7, 8].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
      ...[100, 101, 102, 103, 104].map((id): [ChangeOp, TsRow] => ['upsert', mixedRow(id, 1)]),
      ['upsert', mixedRow(20, 1, { name: 'first write' })],
      ['upsert', mixedRow(20, 1, { name: 'second write wins' })],
      ['delete', { id: 999n }],
    ]);

    // 3. Rows rewritten in round 1 change again (deletes against upsert-written files); a deleted key comes back.
    await upsert('3: upsert round 2', [
      ...[1, 2, 100, 101, 21, 22].map((id): [ChangeOp, TsRow] => ['upsert', mixedRow(id, 2)]),
      ...[3, 102, 23].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
      ['upsert', mixedRow(6, 2, { name: 'resurrected' })],
      ['upsert', mixedRow(24, 2)],
      ['delete', { id: 24n }],
    ]);
    const beforeSchemaChange = steps.at(-1)!;

    // 4. Schema change: add a column, widen int → long, rename.
    await updateTableSchema(env.catalog, table, [
      { op: 'add-column', name: 'note', type: Types.string },
      { op: 'update-column-type', column: 'qty', type: Types.long },
      { op: 'rename-column', column: 'name', newName: 'label' },
    ]);
    await check('4: schema change (add note, qty int → long, rename name → label)');
    expect(schema.fields.map((f) => [f.name, f.type.kind])).toEqual([
      ['id', 'long'],
      ['label', 'string'],
      ['qty', 'long'],
      ['price', 'decimal'],
      ['updated', 'timestamptz'],
      ['meta', 'struct'],
      ['note', 'string'],
    ]);

    const renamed = (id: number, round: number, extra: TsRow = {}): TsRow => {
      const { name, qty, ...rest } = mixedRow(id, round);
      return { ...rest, label: name, qty: BigInt(qty as number), note: `note ${round}-${id}`, ...extra };
    };

    // 5. Upserts under the new schema: qty beyond int range, old-schema rows replaced, new rows.
    await upsert('5: upsert round 3', [
      ...[1, 4, 9, 11, 104].map((id): [ChangeOp, TsRow] => ['upsert', renamed(id, 3)]),
      ['upsert', renamed(12, 3, { qty: 2n ** 40n, note: null })],
      ...[300, 301, 302].map((id): [ChangeOp, TsRow] => ['upsert', renamed(id, 3)]),
      ...[13, 14].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
    ]);

    // 6. Deletes of rows from every era, and updates of rows written under both schemas.
    await upsert('6: upsert round 4', [
      ...[300, 2, 100, 25, 26].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
      ...[301, 101, 27, 12].map((id): [ChangeOp, TsRow] => ['upsert', renamed(id, 4, { qty: -(2n ** 62n) })]),
    ]);

    // 7. A plain append on top.
    const appended = Array.from({ length: 6 }, (_, i) => renamed(200 + i, 5));
    await appendColumns(env.catalog, env.io, table, { columns: columnsOf(schema, appended) });
    model.apply(
      schema,
      appended.map(() => 'upsert'),
      appended,
    );
    await check('7: append after the schema change');

    // 8. Compaction (bin-pack, deletes applied): one `replace` snapshot; the rows must not change.
    const compacted = await timed('8: compaction', () =>
      compactTable(env.catalog, env.io, table, { minInputFiles: 2 }),
    );
    expect(compacted.snapshotId).toBeDefined();
    expect(compacted.rewrittenDataFiles.length).toBeGreaterThan(compacted.addedDataFiles.length);
    expect(compacted.removedDeleteFiles.length).toBeGreaterThan(0);
    await check('8: compaction');
    const afterCompaction = (await env.catalog.loadTable(table)).metadata;
    expect(afterCompaction.snapshots.at(-1)?.summary.operation).toBe('replace');

    // 9. Upserts against the compacted files (new position deletes name the rewritten files).
    await upsert('9: upsert round 5, after compaction', [
      ...[1, 9, 200, 301].map((id): [ChangeOp, TsRow] => ['upsert', renamed(id, 6)]),
      ...[4, 201, 27].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
      ['upsert', renamed(400, 6)],
    ]);

    const final = steps.at(-1)!;
    expect(model.size).toBe(final.expected.length);
    spark.push({ name: 'mixed', sql: `SELECT * FROM ${table} ORDER BY id`, expected: final.expected });

    // Time travel to before the schema change: pyiceberg and DuckDB use that snapshot's schema (name, qty int).
    const old = beforeSchemaChange;
    const pyOld = await pySession.pyiceberg(env.ref, { table, snapshotId: old.snapshotId, orderBy: ['id'] });
    expect(pyOld.schema).toEqual(canonicalSchema(old.schema));
    expect(pyOld.rows).toEqual(old.expected);
    const duckOld = await duckSession.duckdb(
      { catalog: env.ref, table },
      { snapshotId: old.snapshotId, orderBy: ['id'] },
    );
    expect(duckOld.rows).toEqual(old.expected);
    spark.push({
      name: 'mixed, time travel',
      sql: `SELECT * FROM ${table} VERSION AS OF ${old.snapshotId} ORDER BY id`,
      expected: old.expected,
    });
    // Our scan, like the engines above, reads every snapshot in that snapshot's own schema.
    // A schema change adds no snapshot: step 4 reads the snapshot of step 3, in step 3's schema.
    for (const s of steps) {
      const made = steps.find((t) => t.snapshotId === s.snapshotId)!;
      expect(await ours('mixed', s.snapshotId), `our scan at snapshot of step ${s.step}`).toEqual(made.expected);
    }

    // The final state in DuckDB.
    const duck = await duckSession.duckdb({ catalog: env.ref, table }, { orderBy: ['id'] });
    expect(duck.rows).toEqual(final.expected);
  });

  it('DELTA_BINARY_PACKED longs/timestamps in many row groups, with position deletes: every engine reads them', async () => {
    // appendColumns drops `integerEncoding` (see the report), so the file is written with writeParquetDataFile and
    // committed like an append; upsertRows then adds position deletes that point into later row groups.
    const table = qualified('delta_encoded');
    const schema = await create('delta_encoded', DELTA, [{ sourceColumn: 'id', transform: 'bucket[2]' }]);
    const { metadata } = await env.catalog.loadTable(table);
    const dataFiles = await writeDataFilesWith(env.io, metadata, DELTA_ROWS, {
      integerEncoding: 'delta',
      maxRowGroupRows: 3,
    });
    const snapshotId = newSnapshotId([]);
    const manifest = await writeAddedManifest(env.io, metadata, snapshotId, dataFiles, 'data');
    await commitNewManifests(env.catalog, env.io, table, {
      snapshotId,
      manifests: [manifest],
      operation: 'append',
      changes: {
        ...noChanges(),
        addedDataFiles: dataFiles.length,
        addedRecords: BigInt(DELTA_ROWS.length),
        addedFilesSize: dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
      },
    });
    const changes: [ChangeOp, TsRow][] = [
      ...[7, 12, 19, 30].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
      ...[5, 25].map((id): [ChangeOp, TsRow] => ['upsert', deltaRow(id, 1)]),
    ];
    await upsertRows(env.catalog, env.io, table, {
      columns: columnsOf(
        schema,
        changes.map(([, r]) => r),
      ),
      ops: changes.map(([op]) => op),
    });
    const model = new Map(DELTA_ROWS.map((r) => [r.id as bigint, r]));
    for (const [op, row] of changes) {
      if (op === 'delete') model.delete(row.id as bigint);
      else model.set(row.id as bigint, row);
    }
    const expected = canonicalRows(schema.fields, [...model.values()]);
    spark.push({ name: 'delta_encoded', sql: `SELECT * FROM ${table} ORDER BY id`, expected });
    expect(await ours('delta_encoded')).toEqual(expected);
    expect((await pySession.pyiceberg(env.ref, { table, orderBy: ['id'] })).rows).toEqual(expected);
    expect((await duckSession.duckdb({ catalog: env.ref, table }, { orderBy: ['id'] })).rows).toEqual(expected);
  });

  it('copy-on-write deletes and overwrites (after merge-on-read upserts): pyiceberg, DuckDB and Spark read every step', async () => {
    const table = qualified('cow');
    const schema = await create('cow', COW, COW_SPEC);
    const model = new Map<bigint, TsRow>();
    const put = (rows: readonly TsRow[]) => rows.forEach((r) => model.set(r.id as bigint, r));
    const expected = () => canonicalRows(schema.fields, [...model.values()]);
    const operations: string[] = [];

    async function check(step: string, result?: RowLevelWriteResult): Promise<void> {
      const { metadata } = await env.catalog.loadTable(table);
      if (result) {
        expect(result.snapshotId, step).toBe(metadata.currentSnapshotId);
        operations.push(metadata.snapshots.at(-1)!.summary.operation);
      }
      expect(await ours('cow'), `our scan, ${step}`).toEqual(expected());
      const py = await pySession.pyiceberg(env.ref, { table, orderBy: ['id'] });
      expect(py.snapshotId, step).toBe(String(metadata.currentSnapshotId));
      expect(py.rows, `pyiceberg, ${step}`).toEqual(expected());
    }

    // 1. 48 rows in small row groups; 2. merge-on-read updates and deletes (position deletes in several partitions).
    const initial = Array.from({ length: 48 }, (_, i) => cowRow(i, 0));
    await appendColumns(env.catalog, env.io, table, { columns: columnsOf(schema, initial), maxRowGroupRows: 5 });
    put(initial);
    const mor: [ChangeOp, TsRow][] = [
      ...[0, 1, 2, 5, 9].map((id): [ChangeOp, TsRow] => ['upsert', cowRow(id, 1)]),
      ...[3, 4, 7, 12].map((id): [ChangeOp, TsRow] => ['delete', { id: BigInt(id) }]),
    ];
    await upsertRows(env.catalog, env.io, table, {
      columns: columnsOf(
        schema,
        mor.map(([, r]) => r),
      ),
      ops: mor.map(([op]) => op),
    });
    for (const [op, row] of mor) {
      if (op === 'delete') model.delete(row.id as bigint);
      else model.set(row.id as bigint, row);
    }
    await check('2: merge-on-read upsert');

    // 3. CoW delete by a range on a non-partition column: files with position deletes are rewritten without them.
    const del = await deleteWhere(env.catalog, env.io, table, {
      filter: x.and(x.gtEq('qty', 20), x.lt('qty', 300)),
      snapshotProperties: { 'sluice.step': 'cow-delete' },
    });
    for (const [id, row] of model) if ((row.qty as number) >= 20 && (row.qty as number) < 300) model.delete(id);
    expect(del.rewrittenDataFiles.length).toBeGreaterThan(0);
    expect(del.removedDeleteFiles.length).toBeGreaterThan(0);
    await check('3: copy-on-write delete', del);

    // 4. Overwrite by filter: region 'us' rows with id ≥ 20 are replaced by new rows.
    const replacement = [20, 23, 26, 500, 503].map((id) => cowRow(id, 2, { region: 'us' }));
    const over = await overwriteRows(env.catalog, env.io, table, {
      overwrite: { filter: x.and(x.eq('region', 'us'), x.gtEq('id', 20n)) },
      columns: columnsOf(schema, replacement),
    });
    for (const [id, row] of model) if (row.region === 'us' && id >= 20n) model.delete(id);
    put(replacement);
    await check('4: overwrite by filter', over);

    // 5. Dynamic partition overwrite: the 'ap' partition is replaced, a new 'sa' one appears.
    const partitionRows = [600, 601, 602].map((id, i) => cowRow(id, 3, { region: i === 2 ? 'sa' : 'ap' }));
    const dyn = await overwriteRows(env.catalog, env.io, table, {
      overwrite: { partitions: 'dynamic' },
      columns: columnsOf(schema, partitionRows),
    });
    for (const [id, row] of model) if (row.region === 'ap') model.delete(id);
    put(partitionRows);
    await check('5: dynamic partition overwrite', dyn);

    // 6. A delete of whole files only (a `delete` snapshot).
    const whole = await deleteWhere(env.catalog, env.io, table, { filter: x.eq('region', 'sa') });
    model.delete(602n);
    expect(whole.addedDataFiles).toEqual([]);
    await check('6: whole-file delete', whole);
    expect(operations).toEqual(['overwrite', 'overwrite', 'overwrite', 'delete']);

    spark.push({ name: 'cow', sql: `SELECT * FROM ${table} ORDER BY id`, expected: expected() });
    expect((await duckSession.duckdb({ catalog: env.ref, table }, { orderBy: ['id'] })).rows).toEqual(expected());
  });

  it('Spark reads every table above in one JVM (and refuses the time table)', async () => {
    expect(spark.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'all_types',
        'times',
        'mixed',
        'mixed, time travel',
        'delta_encoded',
        'cow',
        ...PARTITIONINGS.map((p) => p.table),
      ]),
    );
    const { results } = await runSparkSql(
      env.ref,
      spark.map((c) => c.sql),
      { continueOnError: true },
    );
    const byStatement = new Map<string, SparkStatementResult>(results.map((r) => [r.sql, r]));
    const mismatches: { name: string; problem: string }[] = [];
    for (const check of spark) {
      const result = byStatement.get(check.sql);
      if (!result) {
        mismatches.push({ name: check.name, problem: 'no result' });
      } else if (check.error) {
        if (!check.error.test(result.error ?? ''))
          mismatches.push({
            name: check.name,
            problem: `expected an error ${check.error}, got ${result.error ?? 'rows'}`,
          });
      } else if (result.error) {
        mismatches.push({ name: check.name, problem: result.error });
      } else {
        expect(result.rows, `Spark, ${check.name}`).toEqual(check.expected);
      }
    }
    expect(mismatches).toEqual([]);
    // Spark has no uuid or fixed type: they read as string and binary with the same canonical values.
    const allTypes = byStatement.get(spark.find((c) => c.name === 'all_types')!.sql)!;
    const types = Object.fromEntries((allTypes.schema ?? []).map((c) => [c.name, c.type]));
    expect(types).toMatchObject({
      id: 'long',
      uid: 'string',
      code: 'binary',
      utc_ts: 'timestamptz',
      local_ts: 'timestamp',
    });
    expect(allTypesFields.length).toBe(ALL_TYPES.fields.length);
    expect(allTypesExpected.length).toBe(EDGE_ROWS.length + GENERATED_ROWS.length);
  });
});
