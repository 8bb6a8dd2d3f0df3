import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns, commitNewManifests, writeAddedManifest } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import type { DataFile } from '../../../lib/iceberg/data-file.js';
import {
  and,
  eq,
  gt,
  gtEq,
  isIn,
  isNull,
  lt,
  not,
  notEq,
  notIn,
  notNull,
  or,
  InvalidExpressionError,
  type Expression,
} from '../../../lib/iceberg/expressions.js';
import { newSnapshotId } from '../../../lib/iceberg/metadata-json.js';
import { writeParquetDataFile } from '../../../lib/iceberg/parquet/index.js';
import { planFiles, projectSchema, scanTable, type TableScanOptions } from '../../../lib/iceberg/scan.js';
import { noChanges } from '../../../lib/iceberg/table-update.js';
import { applyTransform, parseTransform } from '../../../lib/iceberg/transforms.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import { LocalFileIO } from '../../../lib/storage/index.js';

/** Counts the files a scan reads, to check what planning skipped and that reading is lazy. */
class CountingFileIO extends LocalFileIO {
  readonly reads: string[] = [];
  override async read(uri: string): Promise<Uint8Array> {
    this.reads.push(uri);
    return super.read(uri);
  }
}

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
    { id: 3, name: 'score', required: false, type: Types.double },
    { id: 4, name: 'ts', required: false, type: Types.timestamptz },
    {
      id: 5,
      name: 'address',
      required: false,
      type: {
        kind: 'struct',
        fields: [
          { id: 6, name: 'city', required: true, type: Types.string },
          { id: 7, name: 'zip', required: false, type: Types.int },
        ],
      },
    },
  ],
};

interface Row {
  id: bigint;
  name: string | null;
  score: number | null;
  ts: bigint;
  address: [string, number | null] | null;
}

const T0 = BigInt(Date.UTC(2024, 0, 1)) * 1000n;
const HOUR = 3_600_000_000n;
const CITIES = ['Oslo', 'Lima', 'Pune', 'Kyiv'];

function makeRows(ids: number[]): Row[] {
  return ids.map((i) => ({
    id: BigInt(i),
    name: i % 7 === 0 ? null : `name-${String(i).padStart(4, '0')}`,
    score: i % 11 === 0 ? NaN : i % 5 === 0 ? null : i / 4,
    ts: T0 + BigInt(i) * HOUR,
    address: i % 9 === 0 ? null : [CITIES[i % 4] as string, i % 3 === 0 ? null : 10000 + i],
  }));
}

function toColumns(rows: readonly Row[]): Map<number, unknown[]> {
  return new Map<number, unknown[]>([
    [1, rows.map((r) => r.id)],
    [2, rows.map((r) => r.name)],
    [3, rows.map((r) => r.score)],
    [4, rows.map((r) => r.ts)],
    [5, rows.map((r) => r.address)],
  ]);
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('filtered scans', () => {
  let temp: TempCatalog<CountingFileIO>;
  let io: CountingFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-scan-filter-', () => new CountingFileIO({}));
    ({ io, catalog } = temp);
  });
  afterEach(() => temp.cleanup());

  async function scanRows(options: TableScanOptions = {}): Promise<Map<number, unknown[]>[]> {
    const { metadata } = await catalog.loadTable('db.t');
    const out: Map<number, unknown[]>[] = [];
    for await (const batch of scanTable(io, metadata, options)) {
      for (let r = 0; r < batch.rowCount; r++) {
        out.push(new Map([...batch.columns].map(([id, values]) => [id, [values[r]]] as const)));
      }
    }
    return out;
  }

  async function scanIds(options: TableScanOptions = {}): Promise<bigint[]> {
    const rows = await scanRows(options);
    return rows.map((r) => r.get(1)![0] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async function planned(options: TableScanOptions = {}) {
    const { metadata } = await catalog.loadTable('db.t');
    return planFiles(io, metadata, options);
  }

  const bucketOf = (id: number) => applyTransform(parseTransform('bucket[8]'), Types.long, BigInt(id)) as number;

  it('prunes a bucketed table to the buckets of eq and IN literals', async () => {
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[8]' }] });
    await appendColumns(catalog, io, 'db.t', { columns: toColumns(makeRows(range(1, 200))) });
    expect(await planned()).toHaveLength(8);

    const one = await planned({ filter: eq('id', 42) });
    expect(one).toHaveLength(1);
    expect(one[0]!.dataFile.partition).toEqual([bucketOf(42)]);
    expect(await scanIds({ filter: eq('id', 42) })).toEqual([42n]);

    const ids = [42, 43, 44, 45];
    const buckets = new Set(ids.map(bucketOf));
    const some = await planned({ filter: isIn('id', ids) });
    expect(some).toHaveLength(buckets.size);
    expect(new Set(some.map((t) => t.dataFile.partition[0]))).toEqual(buckets);
    expect(await scanIds({ filter: isIn('id', ids) })).toEqual(ids.map(BigInt));
    // Ranges say nothing about buckets; the files' id bounds prune the buckets that hold neither 1 nor 2.
    expect(await planned({ filter: lt('id', 3) })).toHaveLength(new Set([1, 2].map(bucketOf)).size);
    // An id outside every file's bounds prunes everything.
    expect(await planned({ filter: eq('id', 1000) })).toHaveLength(0);
  });

  it('skips whole manifests on their partition summaries before reading them', async () => {
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[8]' }] });
    // One id per commit: each manifest's summary covers exactly one bucket.
    const ids = range(1, 40).filter(
      (i, _, all) => all.findIndex((j) => bucketOf(j) === bucketOf(i)) === all.indexOf(i),
    );
    expect(ids.length).toBe(8);
    for (const id of ids) await appendColumns(catalog, io, 'db.t', { columns: toColumns(makeRows([id])) });
    const { metadata } = await catalog.loadTable('db.t');
    const target = ids[3]!;
    io.reads.length = 0;
    const tasks = await planFiles(io, metadata, { filter: eq('id', target) });
    expect(tasks.map((t) => t.dataFile.partition)).toEqual([[bucketOf(target)]]);
    const manifestReads = io.reads.filter((uri) => uri.endsWith('-m0.avro'));
    expect(manifestReads).toHaveLength(1);
    io.reads.length = 0;
    await planFiles(io, metadata, {});
    expect(io.reads.filter((uri) => uri.endsWith('-m0.avro'))).toHaveLength(8);
  });

  it('prunes files by min/max metrics and returns exactly the matching rows', async () => {
    await catalog.createTable('db.t', { schema });
    const all: Row[] = [];
    for (const [from, to] of [
      [1, 100],
      [101, 200],
      [201, 300],
    ] as const) {
      const rows = makeRows(range(from, to));
      all.push(...rows);
      await appendColumns(catalog, io, 'db.t', { columns: toColumns(rows) });
    }
    expect(await planned({ filter: lt('id', 150) })).toHaveLength(2);
    expect(await planned({ filter: gtEq('id', 201) })).toHaveLength(1);
    expect(await planned({ filter: and(gt('id', 100), lt('id', 201)) })).toHaveLength(1);
    expect(await planned({ filter: or(lt('id', 2), gt('id', 299)) })).toHaveLength(2);
    expect(await planned({ filter: eq('name', 'name-0150') })).toHaveLength(1);
    expect(await planned({ filter: lt('ts', new Date(Date.UTC(2024, 0, 1, 50))) })).toHaveLength(1);

    // Each filter against the same rows filtered in memory with plain JavaScript.
    const cases: [Expression, (r: Row) => boolean][] = [
      [lt('id', 150), (r) => r.id < 150n],
      [eq('name', 'name-0150'), (r) => r.name === 'name-0150'],
      [isNull('name'), (r) => r.name === null],
      [notEq('name', 'name-0150'), (r) => r.name !== 'name-0150'],
      [gt('score', 60), (r) => r.score !== null && r.score > 60],
      [not(gt('score', 60)), (r) => !(r.score !== null && r.score > 60)],
      [eq('address.city', 'Lima'), (r) => r.address?.[0] === 'Lima'],
      [isNull('address.zip'), (r) => r.address === null || r.address[1] === null],
      [notIn('address.city', ['Lima', 'Oslo']), (r) => !['Lima', 'Oslo'].includes(r.address?.[0] as string)],
      [
        and(gtEq('ts', '2024-01-05T00:00:00Z'), lt('ts', '2024-01-06T00:00:00+00:00')),
        (r) => r.ts >= T0 + 96n * HOUR && r.ts < T0 + 120n * HOUR,
      ],
      [or(eq('id', 7), and(notNull('score'), lt('score', 2))), (r) => r.id === 7n || (r.score !== null && r.score < 2)],
    ];
    for (const [filter, keep] of cases) {
      const expected = all.filter(keep).map((r) => r.id);
      expect(expected.length).toBeGreaterThan(0);
      expect(await scanIds({ filter })).toEqual(expected);
    }
  });

  it('projects columns by name while filtering on columns it leaves out', async () => {
    await catalog.createTable('db.t', { schema });
    const rows = makeRows(range(1, 60));
    await appendColumns(catalog, io, 'db.t', { columns: toColumns(rows) });
    const got = await scanRows({ columns: ['name'], filter: and(gt('id', 50), eq('address.city', 'Pune')) });
    const expected = rows.filter((r) => r.id > 50n && r.address?.[0] === 'Pune').map((r) => r.name);
    expect(got.map((r) => [...r.keys()])).toEqual(expected.map(() => [2]));
    expect(got.map((r) => r.get(2)![0])).toEqual(expected);

    // A struct field keeps its struct with only that field.
    const { metadata } = await catalog.loadTable('db.t');
    expect(projectSchema(metadata.schemas[0]!, ['id', 'address.zip']).fields.map((f) => f.name)).toEqual([
      'id',
      'address',
    ]);
    const zips = await scanRows({ columns: ['address.zip', 'id'], filter: eq('address.city', 'Oslo') });
    const oslo = rows.filter((r) => r.address?.[0] === 'Oslo');
    expect(zips.map((r) => r.get(5)![0])).toEqual(oslo.map((r) => [r.address![1]]));
    await expect(scanRows({ columns: ['nope'] })).rejects.toThrow(/"nope"/);
    await expect(scanRows({ filter: eq('nope', 1) })).rejects.toThrow(InvalidExpressionError);
    expect(await scanIds({ filter: eq('ID', 3), caseSensitive: false })).toEqual([3n]);
  });

  it('applies equality deletes when the projection leaves out the equality column', async () => {
    await catalog.createTable('db.t', { schema });
    const rows = makeRows(range(1, 20));
    await appendColumns(catalog, io, 'db.t', { columns: toColumns(rows) });
    const { metadata } = await catalog.loadTable('db.t');
    const idField = metadata.schemas[0]!.fields[0]!;
    const written = await writeParquetDataFile({
      schema: { fields: [idField] },
      columns: new Map([[idField.id, [5n, 7n, 8n]]]),
    });
    const deletePath = `${metadata.location}/data/eq-deletes-1.parquet`;
    await io.write(deletePath, written.bytes);
    const deleteFile: DataFile = {
      content: 'equality-deletes',
      filePath: deletePath,
      fileFormat: 'PARQUET',
      partition: [],
      specId: 0,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      equalityIds: [idField.id],
      ...written.metrics,
    };
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const manifest = await writeAddedManifest(io, metadata, snapshotId, [deleteFile], 'deletes');
    await commitNewManifests(catalog, io, 'db.t', {
      snapshotId,
      manifests: [manifest],
      operation: 'delete',
      changes: { ...noChanges(), addedEqualityDeleteFiles: 1, addedEqualityDeletes: 3n },
    });
    // Without a filter on id, only the equality delete needs the id column.
    const names = await scanRows({ columns: ['name'] });
    expect(names.map((r) => r.get(2)![0])).toEqual(rows.filter((r) => ![5n, 7n, 8n].includes(r.id)).map((r) => r.name));
    expect(names.every((r) => [...r.keys()].join() === '2')).toBe(true);
    const expected = rows.filter((r) => ![5n, 7n, 8n].includes(r.id) && r.id > 3n).map((r) => r.name);
    const got = await scanRows({ columns: ['name'], filter: gt('id', 3) });
    expect(got.map((r) => r.get(2)![0])).toEqual(expected);
    expect(got.every((r) => !r.has(1))).toBe(true);
    // Planning still attaches the delete to the surviving data file.
    const tasks = await planned({ filter: gt('id', 3) });
    expect(tasks.map((t) => t.equalityDeletes.length)).toEqual([1]);
  });

  it('filters a time-travel read of an older snapshot', async () => {
    await catalog.createTable('db.t', { schema });
    const first = await appendColumns(catalog, io, 'db.t', { columns: toColumns(makeRows(range(1, 100))) });
    await appendColumns(catalog, io, 'db.t', { columns: toColumns(makeRows(range(101, 200))) });
    expect(await scanIds({ filter: gt('id', 90) })).toHaveLength(110);
    const old = await scanIds({ snapshotId: first.snapshotId, filter: gt('id', 90) });
    expect(old).toEqual(range(91, 100).map(BigInt));
    expect(await planned({ snapshotId: first.snapshotId, filter: gt('id', 100) })).toHaveLength(0);
    const { metadata } = await catalog.loadTable('db.t');
    const asOf = metadata.snapshotLog[0]!.timestampMs;
    expect(await scanIds({ asOfTimestampMs: asOf, filter: lt('id', 3) })).toEqual([1n, 2n]);
  });
});
