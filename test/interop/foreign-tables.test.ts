import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactTable } from '../../lib/iceberg/maintenance/index.js';
import type { TableMetadata } from '../../lib/iceberg/metadata-json.js';
import { DELETE_FILE_PATH_FIELD_ID, POSITION_DELETE_SCHEMA, readParquetFile } from '../../lib/iceberg/parquet/index.js';
import { planFiles } from '../../lib/iceberg/scan.js';
import { schemaToJson, Types } from '../../lib/iceberg/types.js';
import { upsertRows, type ChangeOp } from '../../lib/iceberg/upsert.js';
import { readWithOurEngine } from './canonical.js';
import {
  readWithPyiceberg,
  runSparkSql,
  writeWithPyiceberg,
  type CanonicalRow,
  type SparkSqlResult,
} from './engines.js';
import {
  ALL_TYPES,
  CATALOG_SETUPS,
  EDGE_ROWS,
  GENERATED_ROWS,
  ReaderSession,
  asReadByPyiceberg,
  canonicalRows,
  columnsOf,
  schemaFrom,
  schemaOf,
  sparkResult,
  time,
  type InteropEnv,
  type TsRow,
} from './table-fixtures.js';

// Tables written by OTHER engines — pyiceberg (appends, overwrite, delete) and Spark (merge-on-read INSERT / DELETE /
// UPDATE / MERGE INTO with position deletes, and a table compacted by rewrite_data_files) — read by OUR engine
// (catalog.loadTable + scanTable) and compared row by row with what pyiceberg or Spark return for the same snapshot.

const NS = 'theirs';

// ---- pyiceberg ------------------------------------------------------------------------------------------------

/** The all-types schema plus a time column (pyiceberg writes time; Spark is not involved here). */
const PY_SCHEMA = schemaFrom(
  [...ALL_TYPES.fields.map((f) => [f.name, f.type, f.required] as const), ['at', Types.time] as const],
  ['id'],
);
const PY_ROWS: TsRow[] = [...EDGE_ROWS, ...GENERATED_ROWS].map((row, i) => ({
  ...row,
  at:
    i % 5 === 4
      ? null
      : time(`${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:59.${String(i).padStart(6, '0')}`),
}));
const PY_EDGE = PY_ROWS.slice(0, EDGE_ROWS.length);
const PY_GENERATED = PY_ROWS.slice(EDGE_ROWS.length);
/** The overwrite replaces ids 1000..1005 with these three rows. */
const PY_OVERWRITE_FILTER = 'id >= 1000 AND id <= 1005';
const PY_REPLACEMENTS: TsRow[] = PY_GENERATED.slice(0, 3).map((row) => ({
  ...row,
  label: `${String(row.label)} (overwritten)`,
}));
const PY_DELETE_FILTER = 'small < 0';

// ---- Spark ----------------------------------------------------------------------------------------------------

const MOR_PROPERTIES =
  "TBLPROPERTIES ('format-version'='2', 'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read', " +
  "'write.merge.mode'='merge-on-read')";

const MOR_COLUMNS = [
  'id',
  'name',
  'qty',
  'price',
  'big',
  'ratio',
  'measure',
  'flag',
  'raw',
  'd',
  'seen',
  'at',
  'tags',
  'attrs',
  'point',
  'events',
] as const;

/** A Spark SQL row literal for the merge-on-read table, with edge values on the first rows. */
function morRow(i: number): string {
  const v: Record<(typeof MOR_COLUMNS)[number], string> = {
    id: String(i),
    name: i % 7 === 0 ? 'NULL' : i === 1 ? `'name 1 é 🌍 "dq"'` : `'name ${i}'`,
    qty: String(i * 3 - 20),
    price: `${i}.${String(i % 100).padStart(2, '0')}`,
    big: `CAST('${i}2345678901234567890123456.${String(i).padStart(10, '0')}' AS DECIMAL(38,10))`,
    ratio: i === 1 ? "CAST('NaN' AS FLOAT)" : i === 2 ? "CAST('-Infinity' AS FLOAT)" : `CAST(${i / 4} AS FLOAT)`,
    measure: i === 1 ? '1e300D' : i === 2 ? "CAST('-0.0' AS DOUBLE)" : i === 3 ? "CAST('NaN' AS DOUBLE)" : `${i / 8}D`,
    flag: i % 3 === 0 ? 'NULL' : String(i % 2 === 0),
    raw: i === 4 ? "X''" : i % 5 === 0 ? 'NULL' : `X'${Buffer.from(`raw-${i}`).toString('hex').toUpperCase()}'`,
    d:
      i === 1
        ? "DATE '0001-01-01'"
        : i === 2
          ? "DATE '9999-12-31'"
          : `DATE '19${String(60 + i)}-02-${String((i % 28) + 1).padStart(2, '0')}'`,
    seen:
      i === 1
        ? "TIMESTAMP_NTZ '1969-12-31 23:59:59.999999'"
        : i % 4 === 0
          ? 'NULL'
          : `TIMESTAMP_NTZ '2024-01-${String((i % 28) + 1).padStart(2, '0')} 10:00:00.${String(i).padStart(6, '0')}'`,
    at:
      i === 2
        ? "TIMESTAMP '1969-12-31 23:59:59.999999+00:00'"
        : i % 6 === 0
          ? 'NULL'
          : `TIMESTAMP '2024-03-${String((i % 3) + 1).padStart(2, '0')} 23:59:59.${String(999_999 - i).padStart(6, '0')}+00:00'`,
    tags: i === 3 ? 'CAST(array() AS array<string>)' : i % 4 === 0 ? 'NULL' : `array('t${i}', NULL, 'ü')`,
    attrs: i === 3 ? 'CAST(map() AS map<string,int>)' : i % 5 === 0 ? 'NULL' : `map('k${i}', ${i}, 'é', NULL, 'a', -1)`,
    point:
      i % 6 === 0
        ? 'NULL'
        : i % 6 === 1
          ? "named_struct('x', CAST(NULL AS INT), 'y', CAST(NULL AS STRING))"
          : `named_struct('x', ${i}, 'y', 'p${i}')`,
    events:
      i % 4 === 1
        ? 'NULL'
        : i === 2
          ? 'CAST(array() AS array<struct<k: string, v: double>>)'
          : `array(named_struct('k', 'e${i}', 'v', ${i * 1.5}D), named_struct('k', 'f${i}', 'v', CAST(NULL AS DOUBLE)))`,
  };
  return `(${MOR_COLUMNS.map((c) => v[c]).join(', ')})`;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);

function morStatements(): string[] {
  const t = `${NS}.mor`;
  const select = `SELECT * FROM ${t} ORDER BY id`;
  return [
    `CREATE TABLE ${t} (id bigint NOT NULL, name string, qty int, price decimal(10,2), big decimal(38,10),
       ratio float, measure double, flag boolean, raw binary, d date, seen timestamp_ntz, at timestamp,
       tags array<string>, attrs map<string,int>, point struct<x: int, y: string>,
       events array<struct<k: string, v: double>>)
     USING iceberg PARTITIONED BY (bucket(4, id), days(at)) ${MOR_PROPERTIES}`,
    `INSERT INTO ${t} VALUES ${range(1, 10).map(morRow).join(', ')}`,
    `${select} /* state 1 */`,
    `INSERT INTO ${t} VALUES ${range(11, 20).map(morRow).join(', ')}`,
    `${select} /* state 2 */`,
    `DELETE FROM ${t} WHERE id IN (2, 3, 15)`,
    `${select} /* state 3 */`,
    // Moves rows to another day partition: a position delete in the old one, the new row in the new one.
    `UPDATE ${t} SET name = concat(coalesce(name, 'null'), ' updated'), qty = qty + 100,
       at = TIMESTAMP '2024-06-01 12:00:00+00:00' WHERE id % 4 = 0`,
    `${select} /* state 4 */`,
    `MERGE INTO ${t} tgt
     USING (SELECT * FROM VALUES (5, 'delete me'), (6, 'six merged'), (7, 'seven merged'), (30, 'thirty'),
                                 (31, 'thirty-one') AS s(id, name)) src
     ON tgt.id = src.id
     WHEN MATCHED AND src.name = 'delete me' THEN DELETE
     WHEN MATCHED THEN UPDATE SET tgt.name = src.name, tgt.tags = array(src.name)
     WHEN NOT MATCHED THEN INSERT (${MOR_COLUMNS.join(', ')}) VALUES (src.id, src.name, CAST(src.id AS INT),
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, TIMESTAMP '2024-07-01 00:00:00+00:00', NULL, NULL, NULL, NULL)`,
    `${select} /* state 5 */`,
    `DELETE FROM ${t} WHERE name IS NULL OR qty > 120`,
    `${select} /* state 6 */`,
    `SELECT snapshot_id, operation FROM ${t}.snapshots ORDER BY committed_at`,
    `SELECT content, file_path, record_count FROM ${t}.delete_files`,
    `SELECT file_path FROM ${t}.data_files`,
  ];
}

function compactedStatements(catalogName: string): string[] {
  const t = `${NS}.compacted`;
  const select = `SELECT * FROM ${t} ORDER BY id`;
  const rows = (from: number, to: number) =>
    range(from, to)
      .map(
        (i) =>
          `(${i}, 'c${i}', ${i}, TIMESTAMP '2024-02-${String((i % 9) + 1).padStart(2, '0')} 01:02:03.000004+00:00')`,
      )
      .join(', ');
  return [
    `CREATE TABLE ${t} (id bigint NOT NULL, name string, qty int, at timestamp) USING iceberg
     PARTITIONED BY (bucket(2, id)) ${MOR_PROPERTIES}`,
    // Partition-scoped delete files: one file lists rows of several data files (no referenced_data_file).
    `ALTER TABLE ${t} SET TBLPROPERTIES ('write.delete.granularity'='partition')`,
    `INSERT INTO ${t} VALUES ${rows(1, 6)}`,
    `INSERT INTO ${t} VALUES ${rows(7, 12)}`,
    `INSERT INTO ${t} VALUES ${rows(13, 18)}`,
    `INSERT INTO ${t} VALUES ${rows(19, 24)}`,
    `DELETE FROM ${t} WHERE id % 5 = 0`,
    `UPDATE ${t} SET qty = qty * 10, name = concat(name, '*') WHERE id % 3 = 0`,
    `${select} /* before compaction */`,
    `CALL ${catalogName}.system.rewrite_data_files(table => '${t}', options => map('rewrite-all', 'true'))`,
    `${select} /* after compaction */`,
    `SELECT content, file_path FROM ${t}.delete_files /* after compaction */`,
    `DELETE FROM ${t} WHERE id IN (1, 2, 13)`,
    `${select} /* after a delete on the compacted files */`,
    `SELECT snapshot_id, operation FROM ${t}.snapshots ORDER BY committed_at`,
  ];
}

/**
 * Schema evolution (int → bigint of an identity-partition source, rename, add, float → double, drop) and partition
 * evolution (a second spec) between writes, then merge-on-read deletes across both specs.
 */
function evolvedStatements(): string[] {
  const t = `${NS}.evolved`;
  return [
    `CREATE TABLE ${t} (id bigint NOT NULL, a int, b string, c float, ts timestamp) USING iceberg
     PARTITIONED BY (a) ${MOR_PROPERTIES}`,
    // gzip metadata files (.gz.metadata.json), which our catalog must decode.
    `ALTER TABLE ${t} SET TBLPROPERTIES ('write.metadata.compression-codec'='gzip')`,
    `INSERT INTO ${t} VALUES (1, 10, 'x', 1.5, TIMESTAMP '2024-01-01 00:00:00+00:00'),
       (2, 20, 'y', 2.5, TIMESTAMP '2024-01-02 00:00:00+00:00'), (4, 10, 'z', 3.5, NULL), (5, NULL, 'n', NULL, NULL)`,
    `ALTER TABLE ${t} ALTER COLUMN a TYPE bigint`,
    `ALTER TABLE ${t} ADD PARTITION FIELD days(ts)`,
    `ALTER TABLE ${t} RENAME COLUMN b TO bb`,
    `ALTER TABLE ${t} ADD COLUMN d string`,
    `ALTER TABLE ${t} ALTER COLUMN c TYPE double`,
    `INSERT INTO ${t} VALUES (3, 30000000000, 'w', 2.25, TIMESTAMP '2024-01-03 00:00:00+00:00', 'dd'),
       (6, 10, 'v', 0.1D, TIMESTAMP '2024-01-01 12:00:00+00:00', NULL)`,
    `DELETE FROM ${t} WHERE id IN (1, 6)`,
    `UPDATE ${t} SET d = 'upd', a = a + 1 WHERE id IN (2, 5)`,
    `ALTER TABLE ${t} DROP COLUMN bb`,
    `SELECT * FROM ${t} ORDER BY id /* evolved */`,
  ];
}

/** One-row row groups (Java's writer checks the size after every record), then position deletes into them. */
function rowGroupStatements(): string[] {
  const t = `${NS}.row_groups`;
  return [
    `CREATE TABLE ${t} (id bigint NOT NULL, s string) USING iceberg
     TBLPROPERTIES ('format-version'='2', 'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read',
       'write.parquet.row-group-size-bytes'='1', 'write.parquet.row-group-check-min-record-count'='1',
       'write.parquet.row-group-check-max-record-count'='3')`,
    `INSERT INTO ${t} SELECT id, concat('s', id) FROM range(0, 50) DISTRIBUTE BY 1`,
    `DELETE FROM ${t} WHERE id % 7 = 3`,
    `UPDATE ${t} SET s = 'updated' WHERE id > 44`,
    `SELECT * FROM ${t} ORDER BY id /* row groups */`,
    // For our upsert below: the key it needs.
    `ALTER TABLE ${t} SET IDENTIFIER FIELDS id`,
  ];
}

/** Spark's rows of the SELECT whose comment names the state. */
function sparkState(spark: SparkSqlResult, comment: string): CanonicalRow[] {
  const found = spark.results.filter((r) => r.sql.includes(`/* ${comment} */`) && r.sql.startsWith('SELECT * '));
  if (found.length !== 1 || !found[0]?.rows) throw new Error(`no Spark rows for "${comment}"`);
  return found[0].rows;
}

function ids(rows: readonly CanonicalRow[]): number[] {
  return rows.map((r) => Number(r.id));
}

describe.each(CATALOG_SETUPS)('tables written by pyiceberg and Spark, read by our engine: $label', (setup) => {
  let env: InteropEnv;
  let pySession: ReaderSession;
  let spark: SparkSqlResult;

  async function metadataOf(table: string): Promise<TableMetadata> {
    return (await env.catalog.loadTable(`${NS}.${table}`)).metadata;
  }

  async function ours(metadata: TableMetadata, snapshotId?: bigint): Promise<CanonicalRow[]> {
    return (await readWithOurEngine(env.io, metadata, { snapshotId, orderBy: ['id'] })).rows;
  }

  beforeAll(async () => {
    env = await setup.open('foreign');
    pySession = new ReaderSession();
  });
  afterAll(async () => {
    await pySession?.close();
    await env?.close();
  });

  it('pyiceberg appends, an overwrite and a delete: our scan equals pyiceberg at every snapshot', async () => {
    const table = `${NS}.py_all_types`;
    const written = await writeWithPyiceberg(env.ref, {
      table,
      schema: schemaToJson(PY_SCHEMA),
      partitionSpec: [
        { source: 'day', transform: 'day' },
        { source: 'id', transform: 'bucket[4]' },
        { source: 'label', transform: 'truncate[2]' },
      ],
      commits: [
        { mode: 'append', rows: canonicalRows(PY_SCHEMA.fields, PY_EDGE) },
        { mode: 'append', rows: canonicalRows(PY_SCHEMA.fields, PY_GENERATED) },
        { mode: 'overwrite', filter: PY_OVERWRITE_FILTER, rows: canonicalRows(PY_SCHEMA.fields, PY_REPLACEMENTS) },
        { mode: 'delete', filter: PY_DELETE_FILTER },
      ],
    });
    expect(written.snapshots.length).toBeGreaterThanOrEqual(4);

    // What each commit leaves (pyiceberg writes a null list<struct> as [], so the files hold []).
    const afterAppends = [...PY_EDGE, ...PY_GENERATED];
    const inOverwrite = (r: TsRow) => (r.id as bigint) >= 1000n && (r.id as bigint) <= 1005n;
    const afterOverwrite = [...afterAppends.filter((r) => !inOverwrite(r)), ...PY_REPLACEMENTS];
    const afterDelete = afterOverwrite.filter((r) => !(typeof r.small === 'number' && r.small < 0));
    const expectedNow = asReadByPyiceberg(PY_SCHEMA.fields, canonicalRows(PY_SCHEMA.fields, afterDelete));

    const loaded = await env.catalog.loadTable(table);
    expect(loaded.metadataLocation).toBe(written.metadataLocation);
    const metadata = loaded.metadata;
    const schema = schemaOf(metadata);
    expect(await ours(metadata)).toEqual(asReadByPyiceberg(schema.fields, canonicalRows(schema.fields, afterDelete)));
    expect(canonicalRows(schema.fields, afterDelete).length).toBe(expectedNow.length);

    // Every snapshot pyiceberg committed (an overwrite may be two: delete + append), compared with pyiceberg's read.
    const snapshotIds = metadata.snapshots.map((s) => s.snapshotId);
    expect(snapshotIds.map(String)).toEqual(expect.arrayContaining(written.snapshots.map((s) => s.snapshotId)));
    for (const snapshotId of snapshotIds) {
      const theirs = await pySession.pyiceberg(env.ref, { table, snapshotId, orderBy: ['id'] });
      expect(await ours(metadata, snapshotId), `snapshot ${snapshotId}`).toEqual(theirs.rows);
    }
    const first = await readWithPyiceberg(env.ref, { table, snapshotId: snapshotIds[0], orderBy: ['id'] });
    expect(first.rows).toEqual(asReadByPyiceberg(schema.fields, canonicalRows(schema.fields, PY_EDGE)));
    expect(await ours(metadata, snapshotIds[0])).toEqual(first.rows);
  });

  it('Spark writes a merge-on-read table and a compacted table (one JVM)', async () => {
    spark = await runSparkSql(env.ref, [
      `CREATE NAMESPACE IF NOT EXISTS ${NS}`,
      ...morStatements(),
      ...compactedStatements(env.ref.name),
      ...evolvedStatements(),
      ...rowGroupStatements(),
    ]);
    // Spark's own view, checked against what the statements must do.
    expect(ids(sparkState(spark, 'state 2'))).toEqual(range(1, 20));
    expect(ids(sparkState(spark, 'state 6'))).toEqual(
      // 2, 3, 15 deleted; 5 deleted by MERGE; 14 (null name), 16 and 20 (qty 128 and 140 after UPDATE) deleted.
      [1, 4, 6, 7, 8, 9, 10, 11, 12, 13, 17, 18, 19, 30, 31],
    );
    const deleteFiles = sparkResult(spark.results, `SELECT content, file_path, record_count FROM ${NS}.mor`).rows ?? [];
    expect(deleteFiles.length).toBeGreaterThan(0);
    expect(deleteFiles.every((f) => f.content === 1)).toBe(true); // position deletes only
  });

  it('Spark merge-on-read (INSERT, DELETE, UPDATE, MERGE INTO): our scan equals Spark at every snapshot', async () => {
    const metadata = await metadataOf('mor');
    const snapshots = sparkResult(spark.results, `SELECT snapshot_id, operation FROM ${NS}.mor`).rows ?? [];
    expect(snapshots.map((s) => s.operation)).toEqual([
      'append',
      'append',
      'delete',
      'overwrite',
      'overwrite',
      'delete',
    ]);
    expect(metadata.snapshots.map((s) => String(s.snapshotId))).toEqual(snapshots.map((s) => String(s.snapshot_id)));
    if (env.local) {
      // Spark's HadoopFileIO writes file:/abs (one slash); our FileIO must read those paths.
      const paths = (sparkResult(spark.results, `SELECT file_path FROM ${NS}.mor`).rows ?? []).map((r) =>
        String(r.file_path),
      );
      expect(paths.length).toBeGreaterThan(0);
      expect(paths.every((p) => p.startsWith('file:/') && !p.startsWith('file://'))).toBe(true);
    }
    const tasks = await planFiles(env.io, metadata);
    expect(tasks.some((t) => t.positionDeletes.length > 0)).toBe(true);
    expect(tasks.every((t) => t.equalityDeletes.length === 0)).toBe(true);
    for (const [index, snapshot] of metadata.snapshots.entries()) {
      const state = `state ${index + 1}`;
      expect(await ours(metadata, snapshot.snapshotId), `our scan at Spark's ${state}`).toEqual(
        sparkState(spark, state),
      );
    }
    expect(await ours(metadata)).toEqual(sparkState(spark, 'state 6'));
  });

  it('Spark-compacted table (rewrite_data_files): our scan equals Spark before, after, and after a later delete', async () => {
    const metadata = await metadataOf('compacted');
    const snapshots = sparkResult(spark.results, `SELECT snapshot_id, operation FROM ${NS}.compacted`).rows ?? [];
    expect(snapshots.map((s) => s.operation)).toEqual([
      'append',
      'append',
      'append',
      'append',
      'delete',
      'overwrite',
      'replace',
      'delete',
    ]);
    const deleteFiles = await planFiles(env.io, metadata, { snapshotId: BigInt(String(snapshots[5]?.snapshot_id)) });
    expect(deleteFiles.some((t) => t.positionDeletes.some((d) => d.referencedDataFile === undefined))).toBe(true);
    const call = sparkResult(spark.results, 'CALL ');
    expect(Number(call.rows?.[0]?.rewritten_data_files_count)).toBeGreaterThan(0);
    const at = (i: number) => BigInt(String(snapshots[i]?.snapshot_id));
    expect(await ours(metadata, at(5))).toEqual(sparkState(spark, 'before compaction'));
    expect(await ours(metadata, at(6))).toEqual(sparkState(spark, 'after compaction'));
    expect(await ours(metadata, at(7))).toEqual(sparkState(spark, 'after a delete on the compacted files'));
    expect(await ours(metadata)).toEqual(sparkState(spark, 'after a delete on the compacted files'));
    expect(sparkState(spark, 'after compaction')).toEqual(sparkState(spark, 'before compaction'));
  });

  it('Spark schema and partition evolution, then merge-on-read deletes: our scan equals Spark', async () => {
    const loaded = await env.catalog.loadTable(`${NS}.evolved`);
    expect(loaded.metadataLocation).toMatch(/\.gz\.metadata\.json$/);
    const metadata = loaded.metadata;
    expect(metadata.partitionSpecs.length).toBe(2);
    expect(await ours(metadata)).toEqual(sparkState(spark, 'evolved'));
    expect(ids(sparkState(spark, 'evolved'))).toEqual([2, 3, 4, 5]);
    // Every snapshot reads (older ones in their own schema) with the rows it had.
    const rowIds = await Promise.all(metadata.snapshots.map(async (s) => ids(await ours(metadata, s.snapshotId))));
    expect(rowIds).toEqual([
      [1, 2, 4, 5],
      [1, 2, 3, 4, 5, 6],
      [2, 3, 4, 5],
      [2, 3, 4, 5],
    ]);
  });

  it('Spark files with one-row row groups and position deletes into them: our scan equals Spark', async () => {
    const metadata = await metadataOf('row_groups');
    const expected = sparkState(spark, 'row groups');
    expect(ids(expected)).toEqual(range(0, 49).filter((id) => id % 7 !== 3));
    expect(await ours(metadata)).toEqual(expected);
  });

  it("our upsert into the Spark table (deletes name Spark's data file paths as written): pyiceberg and DuckDB agree", async () => {
    const table = `${NS}.row_groups`;
    const before = await metadataOf('row_groups');
    const schema = schemaOf(before);
    expect(schema.identifierFieldIds).toEqual([schema.fields[0]?.id]);
    const changes: [ChangeOp, TsRow][] = [
      ['delete', { id: 0n }],
      ['delete', { id: 20n }],
      ['delete', { id: 49n }],
      ['upsert', { id: 1n, s: 'ours 1' }],
      ['upsert', { id: 46n, s: 'ours 46' }],
      ['upsert', { id: 3n, s: 'back from the dead' }],
      ['upsert', { id: 100n, s: 'new' }],
    ];
    const result = await upsertRows(env.catalog, env.io, table, {
      columns: columnsOf(
        schema,
        changes.map(([, r]) => r),
      ),
      ops: changes.map(([op]) => op),
    });
    expect(result).toMatchObject({ inserted: 2, updated: 2, deleted: 3, missingDeletes: 0 });
    // Our position deletes must name Spark's data files exactly as its manifests do (file:/abs on a local
    // warehouse): readers match delete rows to data files by comparing the path strings.
    const sparkPaths = new Set((await planFiles(env.io, before)).map((t) => t.dataFile.filePath));
    expect(result.deleteFiles.length).toBeGreaterThan(0);
    for (const file of result.deleteFiles) {
      const batch = readParquetFile(await env.io.read(file.filePath), { schema: POSITION_DELETE_SCHEMA });
      const named = new Set(batch.columns.get(DELETE_FILE_PATH_FIELD_ID) as string[]);
      expect([...named].every((p) => sparkPaths.has(p))).toBe(true);
      if (env.local) expect([...named].every((p) => p.startsWith('file:/') && !p.startsWith('file://'))).toBe(true);
    }
    const model = new Map(sparkState(spark, 'row groups').map((r) => [String(r.id), r]));
    for (const [op, row] of changes) {
      if (op === 'delete') model.delete(String(row.id));
      else model.set(String(row.id), { id: String(row.id), s: row.s as string });
    }
    const expected = [...model.values()].sort((a, b) => Number(a.id) - Number(b.id));
    expect(await ours(await metadataOf('row_groups'))).toEqual(expected);
    expect((await pySession.pyiceberg(env.ref, { table, orderBy: ['id'] })).rows).toEqual(expected);
    expect((await pySession.duckdb({ catalog: env.ref, table }, { orderBy: ['id'] })).rows).toEqual(expected);
  });

  it('our compaction of the Spark merge-on-read table: pyiceberg, DuckDB and our scan still read Spark rows', async () => {
    const table = `${NS}.mor`;
    const result = await compactTable(env.catalog, env.io, table, { minInputFiles: 2 });
    expect(result.snapshotId).toBeDefined();
    expect(result.rewrittenDataFiles.length).toBeGreaterThan(0);
    const metadata = await metadataOf('mor');
    const expected = sparkState(spark, 'state 6');
    expect(await ours(metadata)).toEqual(expected);
    const tasks = await planFiles(env.io, metadata);
    expect(tasks.every((t) => t.positionDeletes.length === 0)).toBe(true);
    const py = await pySession.pyiceberg(env.ref, { table, orderBy: ['id'] });
    expect(py.rows).toEqual(asReadByPyiceberg(schemaOf(metadata).fields, expected));
    const duck = await pySession.duckdb({ catalog: env.ref, table }, { orderBy: ['id'] });
    expect(duck.rows).toEqual(expected);
  });
});
