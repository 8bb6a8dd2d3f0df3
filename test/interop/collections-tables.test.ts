import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { lookupExtractions, storeExtractions } from '../../lib/collections/extraction-cache.js';
import {
  readCollectionsVersion,
  writeCollectionsVersion,
  RUN_PROPERTY,
  ROWS_PROPERTY,
  VERSION_PROPERTY,
  type WriteCollectionsResult,
} from '../../lib/collections/publish.js';
import type { ExtractionRecord, PublishedCollection } from '../../lib/collections/types.js';
import { timestamptzFromIso } from '../../lib/iceberg/values.js';
import type { Schema } from '../../lib/iceberg/types.js';
import { canonicalSchema, readWithOurEngine, rowToCanonical, sortRows } from './canonical.js';
import { INTEROP_PYTHON, runSparkSql, type CanonicalRow, type CatalogRef } from './engines.js';
import { CATALOG_SETUPS, ReaderSession, schemaOf, sparkResult, type InteropEnv } from './table-fixtures.js';

// The two tables of collections-build, written by OUR code (lib/collections/publish.ts and extraction-cache.ts, the
// functions the pipeline's activities call) and read back by pyiceberg 0.12, DuckDB 1.5.5 and Spark 4.1: the
// collections table (map<string,string> attributes, list<struct<item_id, score, verified>> items, partitioned by
// identity(version), one snapshot per version tagged `sluice.collections.*`, a rerun of a version replaces its rows)
// and the extraction cache (upserted by (content_hash, prompt_version, model) with position deletes).
// Spark runs once per catalog setup, for both tables.

const COLLECTIONS = 'coll.collections';
const EXTRACTIONS = 'coll.extractions';
const COLLECTIONS_ORDER = ['version', 'collection_id'];
const EXTRACTIONS_ORDER = ['content_hash', 'prompt_version', 'model'];

const member = (itemId: string, score: number, verified: boolean) => ({ itemId, score, verified });

/** Version v1 as the first run (run-a) wrote it; replaced later by run-c. */
const V1_RUN_A: PublishedCollection[] = [
  {
    id: 'c-red-dress',
    name: 'Red dresses',
    attributes: { category: 'dress', color: 'red' },
    items: [member('item-0001', 0.9375, true), member('item-0002', 0.5, false)],
    partial: false,
  },
  {
    id: 'c-linen',
    name: 'Linen, été',
    attributes: { material: 'linen', season: 'été ☀', category: 'shirt' },
    items: [member('item-0003', 0.25, true)],
    partial: true,
  },
  { id: 'c-empty', name: 'Nothing matched', attributes: {}, items: [], partial: false },
];
const V2: PublishedCollection[] = [
  {
    id: 'c-red-dress',
    name: 'Red dresses',
    attributes: { category: 'dress', color: 'red' },
    items: [member('item-0002', 0.875, true), member('item-0001', 0.75, true), member('item-0009', 0.125, false)],
    partial: false,
  },
  {
    id: 'c-wool',
    name: 'Wool coats',
    attributes: { category: 'coat', material: 'wool' },
    items: [member('item-0100', 1, true)],
    partial: false,
  },
];
const V1_RUN_C: PublishedCollection[] = [
  {
    id: 'c-red-dress',
    name: 'Red dresses (rerun)',
    attributes: { category: 'dress', color: 'red' },
    items: [member('item-0001', 0.8125, true)],
    partial: false,
  },
  {
    id: 'c-blue',
    name: 'Blue "quoted" \\ things',
    attributes: { color: 'blue' },
    items: [member('item-0004', 0.0625, false), member('item-0005', 0.03125, true)],
    partial: true,
  },
];
const BUILT_V1_A = new Date('2026-11-20T10:00:00.123Z');
const BUILT_V2 = new Date('2026-11-21T11:30:00Z');
const BUILT_V1_C = new Date('2026-11-22T09:15:30.5Z');

function extraction(n: number, over: Partial<ExtractionRecord> = {}): ExtractionRecord {
  return {
    itemId: `item-${String(n).padStart(4, '0')}`,
    contentHash: `${n.toString(16).padStart(4, '0')}${'ab'.repeat(30)}`,
    promptVersion: 'p1',
    model: 'qwen2-vl-stand-in',
    attributes: { color: ['red', 'blue', 'green'][n % 3]!, category: n % 2 ? 'dress' : 'shirt' },
    promptTokens: 900 + n,
    completionTokens: 40 + n,
    costUsd: 0.000125 * n,
    extractedAt: `2026-11-2${n % 5}T0${n % 10}:00:00.000Z`,
    ...over,
  };
}

/** The first batch: 5 answers; the second batch upserts one existing key and adds two (one a new model). */
const BATCH_1 = [1, 2, 3, 4, 5].map((n) => extraction(n));
const BATCH_2 = [
  extraction(3, { attributes: { color: 'scarlet', category: 'dress', note: 'ünïcode "q"' }, costUsd: 0.5 }),
  extraction(6),
  extraction(2, { model: 'zero-shot:clip-v1', promptTokens: 0, completionTokens: 0, costUsd: 0 }),
];

/** The canonical rows of collections as the table should hold them. */
function collectionRows(
  schema: Schema,
  version: string,
  builtAt: Date,
  collections: readonly PublishedCollection[],
): CanonicalRow[] {
  return collections.map((c) =>
    rowToCanonical(schema.fields, {
      collection_id: c.id,
      name: c.name,
      attributes: new Map(Object.entries(c.attributes)),
      items: c.items.map((m) => ({ item_id: m.itemId, score: m.score, verified: m.verified })),
      partial: c.partial,
      version,
      built_at: BigInt(builtAt.getTime()) * 1000n,
    }),
  );
}

function extractionRows(schema: Schema, records: readonly ExtractionRecord[]): CanonicalRow[] {
  const byKey = new Map(records.map((r) => [`${r.contentHash}/${r.promptVersion}/${r.model}`, r]));
  return sortRows(
    [...byKey.values()].map((r) =>
      rowToCanonical(schema.fields, {
        content_hash: r.contentHash,
        prompt_version: r.promptVersion,
        model: r.model,
        item_id: r.itemId,
        attributes: JSON.stringify(r.attributes),
        prompt_tokens: BigInt(r.promptTokens),
        completion_tokens: BigInt(r.completionTokens),
        cost_usd: r.costUsd,
        extracted_at: timestamptzFromIso(r.extractedAt),
      }),
    ),
    EXTRACTIONS_ORDER,
  );
}

interface PySnapshot {
  snapshotId: string;
  parentId: string | null;
  operation: string;
  summary: Record<string, string>;
}

const SNAPSHOTS_SCRIPT = `
import json, sys
sys.path.insert(0, sys.argv[1])
import cli
args = cli.argparse.Namespace(**json.loads(sys.argv[2]))
table = cli.pyiceberg_catalog(args, init_tables=False).load_table(args.table)
out = []
for s in table.snapshots():
    summary = dict(s.summary.additional_properties) if s.summary else {}
    out.append({"snapshotId": str(s.snapshot_id),
                "parentId": None if s.parent_snapshot_id is None else str(s.parent_snapshot_id),
                "operation": s.summary.operation.value if s.summary else None,
                "summary": summary})
print(json.dumps(out))
`;

/** The snapshots of a table as pyiceberg reports them (id, parent, operation, summary properties). */
async function pyicebergSnapshots(ref: CatalogRef, table: string): Promise<PySnapshot[]> {
  const args = {
    catalog_uri: ref.uri,
    catalog_name: ref.name,
    warehouse: ref.warehouse,
    s3_endpoint: ref.s3?.endpoint ?? null,
    s3_key: ref.s3?.accessKeyId ?? null,
    s3_secret: ref.s3?.secretAccessKey ?? null,
    s3_region: ref.s3?.region ?? 'us-east-1',
    table,
  };
  const child = spawn(
    INTEROP_PYTHON,
    ['-c', SNAPSHOTS_SCRIPT, path.join(REPO_ROOT, 'scripts/interop'), JSON.stringify(args)],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`pyiceberg snapshot listing exited with ${code}: ${stderr.slice(-3000)}`);
  return JSON.parse(stdout) as PySnapshot[];
}

describe.each(CATALOG_SETUPS)('collections-build tables read by pyiceberg, DuckDB and Spark: $label', (setup) => {
  let env: InteropEnv;
  let py: ReaderSession;
  let duck: ReaderSession;
  /** Spark statements (with what they must return), run in one session by the last test. */
  const spark: { sql: string; expected: CanonicalRow[] }[] = [];

  beforeAll(async () => {
    env = await setup.open('coll');
    py = new ReaderSession();
    duck = new ReaderSession();
  });
  afterAll(async () => {
    await Promise.all([py?.close(), duck?.close()]);
    await env?.close();
  });

  it('collections table: two versions, a rerun replacing v1, the map and list<struct> columns and the snapshot tags', async () => {
    const write = (
      version: string,
      runKey: string,
      builtAt: Date,
      collections: PublishedCollection[],
    ): Promise<WriteCollectionsResult> =>
      writeCollectionsVersion({
        catalog: env.catalog,
        io: env.io,
        table: COLLECTIONS,
        version,
        runKey,
        collections,
        builtAt,
        summary: { 'sluice.collections.members': String(collections.reduce((n, c) => n + c.items.length, 0)) },
      });
    const a = await write('v1', 'run-a', BUILT_V1_A, V1_RUN_A);
    const b = await write('v2', 'run-b', BUILT_V2, V2);
    // A retry of run-b commits nothing.
    const bAgain = await write('v2', 'run-b', BUILT_V2, V2);
    expect(bAgain).toEqual({ ...b, alreadyWritten: true });
    const c = await write('v1', 'run-c', BUILT_V1_C, V1_RUN_C);
    expect([a.alreadyWritten, b.alreadyWritten, c.alreadyWritten]).toEqual([false, false, false]);
    expect([a.rows, b.rows, c.rows]).toEqual([3, 2, 2]);

    const { metadata } = await env.catalog.loadTable(COLLECTIONS);
    const schema = schemaOf(metadata);
    expect(String(metadata.currentSnapshotId)).toBe(c.snapshotId);
    const v1a = collectionRows(schema, 'v1', BUILT_V1_A, V1_RUN_A);
    const v1 = collectionRows(schema, 'v1', BUILT_V1_C, V1_RUN_C);
    const v2 = collectionRows(schema, 'v2', BUILT_V2, V2);
    const expected = sortRows([...v1, ...v2], COLLECTIONS_ORDER);
    const atRunA = sortRows(v1a, COLLECTIONS_ORDER);
    const atRunB = sortRows([...v1a, ...v2], COLLECTIONS_ORDER);

    // Our own scan and the pipeline's reader agree with what was written.
    expect((await readWithOurEngine(env.io, metadata, { orderBy: COLLECTIONS_ORDER })).rows).toEqual(expected);
    expect(await readCollectionsVersion(env.catalog, env.io, COLLECTIONS, 'v1')).toEqual(
      [...V1_RUN_C].sort((x, y) => (x.id < y.id ? -1 : 1)),
    );

    // pyiceberg: schema, every row, a filter on the partition column, and time travel to each version's snapshot.
    const pyAll = await py.pyiceberg(env.ref, { table: COLLECTIONS, orderBy: COLLECTIONS_ORDER });
    expect(pyAll.schema).toEqual(canonicalSchema(schema));
    expect(pyAll.schema.map((col) => col.type)).toEqual([
      'string',
      'string',
      { type: 'map', key: 'string', value: 'string', 'value-required': false },
      {
        type: 'list',
        element: {
          type: 'struct',
          fields: [
            { name: 'item_id', type: 'string', required: false },
            { name: 'score', type: 'double', required: false },
            { name: 'verified', type: 'boolean', required: false },
          ],
        },
        'element-required': false,
      },
      'boolean',
      'string',
      'timestamptz',
    ]);
    expect(pyAll.snapshotId).toBe(c.snapshotId);
    expect(pyAll.rows).toEqual(expected);
    const pyV1 = await py.pyiceberg(env.ref, {
      table: COLLECTIONS,
      filter: "version = 'v1'",
      orderBy: COLLECTIONS_ORDER,
    });
    expect(pyV1.rows).toEqual(sortRows(v1, COLLECTIONS_ORDER));
    const pyV2 = await py.pyiceberg(env.ref, {
      table: COLLECTIONS,
      filter: "version = 'v2'",
      columns: ['collection_id', 'items'],
      orderBy: ['collection_id'],
    });
    expect(pyV2.rows).toEqual(
      sortRows(v2, COLLECTIONS_ORDER).map((r) => ({ collection_id: r.collection_id!, items: r.items! })),
    );
    expect(
      (await py.pyiceberg(env.ref, { table: COLLECTIONS, snapshotId: a.snapshotId, orderBy: COLLECTIONS_ORDER })).rows,
    ).toEqual(atRunA);
    expect(
      (await py.pyiceberg(env.ref, { table: COLLECTIONS, snapshotId: b.snapshotId, orderBy: COLLECTIONS_ORDER })).rows,
    ).toEqual(atRunB);

    // pyiceberg sees one snapshot per write, tagged with version, run key and row count; the rerun is an overwrite.
    const snapshots = await pyicebergSnapshots(env.ref, COLLECTIONS);
    expect(snapshots.map((s) => s.snapshotId)).toEqual([a.snapshotId, b.snapshotId, c.snapshotId]);
    expect(snapshots.map((s) => s.parentId)).toEqual([null, a.snapshotId, b.snapshotId]);
    expect(snapshots.map((s) => s.operation)).toEqual(['append', 'append', 'overwrite']);
    expect(
      snapshots.map((s) => [
        s.summary[VERSION_PROPERTY],
        s.summary[RUN_PROPERTY],
        s.summary[ROWS_PROPERTY],
        s.summary['sluice.collections.members'],
      ]),
    ).toEqual([
      ['v1', 'run-a', '3', '3'],
      ['v2', 'run-b', '2', '4'],
      ['v1', 'run-c', '2', '3'],
    ]);
    // Iceberg's own counters: the overwrite dropped v1's 3 rows (one data file) and added 2.
    expect(snapshots[2]!.summary).toMatchObject({
      'added-records': '2',
      'deleted-records': '3',
      'deleted-data-files': '1',
      'total-records': '4',
    });

    // DuckDB: every row, the partition filter, and time travel to run-a's snapshot.
    expect((await duck.duckdb({ catalog: env.ref, table: COLLECTIONS }, { orderBy: COLLECTIONS_ORDER })).rows).toEqual(
      expected,
    );
    expect(
      (
        await duck.duckdb(
          { catalog: env.ref, table: COLLECTIONS },
          { filter: "version = 'v2'", orderBy: COLLECTIONS_ORDER },
        )
      ).rows,
    ).toEqual(sortRows(v2, COLLECTIONS_ORDER));
    expect(
      (
        await duck.duckdb(
          { catalog: env.ref, table: COLLECTIONS },
          { snapshotId: a.snapshotId, orderBy: COLLECTIONS_ORDER },
        )
      ).rows,
    ).toEqual(atRunA);

    spark.push(
      { sql: `SELECT * FROM ${COLLECTIONS} ORDER BY version, collection_id`, expected },
      {
        sql: `SELECT * FROM ${COLLECTIONS} WHERE version = 'v1' ORDER BY collection_id`,
        expected: sortRows(v1, COLLECTIONS_ORDER),
      },
      {
        sql: `SELECT * FROM ${COLLECTIONS} VERSION AS OF ${b.snapshotId} ORDER BY version, collection_id`,
        expected: atRunB,
      },
      {
        sql:
          `SELECT CAST(snapshot_id AS STRING) AS id, operation, summary['${VERSION_PROPERTY}'] AS version, ` +
          `summary['${RUN_PROPERTY}'] AS run FROM ${COLLECTIONS}.snapshots ORDER BY committed_at, id`,
        expected: [
          { id: a.snapshotId, operation: 'append', version: 'v1', run: 'run-a' },
          { id: b.snapshotId, operation: 'append', version: 'v2', run: 'run-b' },
          { id: c.snapshotId, operation: 'overwrite', version: 'v1', run: 'run-c' },
        ],
      },
    );
  });

  it('extraction cache: an upsert of an existing key replaces its row; every engine reads the same rows', async () => {
    expect(await storeExtractions(env.catalog, env.io, EXTRACTIONS, BATCH_1)).toBe(5);
    expect(await storeExtractions(env.catalog, env.io, EXTRACTIONS, BATCH_2)).toBe(3);
    const { metadata } = await env.catalog.loadTable(EXTRACTIONS);
    const schema = schemaOf(metadata);
    expect(metadata.snapshots.map((s) => s.summary['sluice.collections.extractions'])).toEqual(['5', '3']);
    const expected = extractionRows(schema, [...BATCH_1, ...BATCH_2]);
    expect(expected).toHaveLength(7);
    const upserted = expected.find(
      (r) => r.content_hash === BATCH_2[0]!.contentHash && r.model === 'qwen2-vl-stand-in',
    );
    expect(upserted?.attributes).toBe(JSON.stringify(BATCH_2[0]!.attributes));

    expect((await readWithOurEngine(env.io, metadata, { orderBy: EXTRACTIONS_ORDER })).rows).toEqual(expected);
    const cached = await lookupExtractions(
      env.catalog,
      env.io,
      EXTRACTIONS,
      [1, 2, 3, 6].map((n) => ({
        contentHash: extraction(n).contentHash,
        promptVersion: 'p1',
        model: 'qwen2-vl-stand-in',
      })),
    );
    expect(cached.get(extraction(3).contentHash)).toEqual(BATCH_2[0]);
    expect([...cached.keys()].sort()).toEqual([1, 2, 3, 6].map((n) => extraction(n).contentHash).sort());

    const pyRead = await py.pyiceberg(env.ref, { table: EXTRACTIONS, orderBy: EXTRACTIONS_ORDER });
    expect(pyRead.schema).toEqual(canonicalSchema(schema));
    expect(pyRead.schema.filter((col) => col.required).map((col) => col.name)).toEqual(
      schema.fields.map((f) => f.name),
    );
    expect(pyRead.rows).toEqual(expected);
    const keyFilter = `content_hash = '${extraction(3).contentHash}'`;
    expect(
      (await py.pyiceberg(env.ref, { table: EXTRACTIONS, filter: keyFilter, orderBy: EXTRACTIONS_ORDER })).rows,
    ).toEqual(expected.filter((r) => r.content_hash === extraction(3).contentHash));
    const snapshots = await pyicebergSnapshots(env.ref, EXTRACTIONS);
    expect(snapshots.map((s) => s.summary['sluice.collections.extractions'])).toEqual(['5', '3']);
    // The upsert of one existing key wrote one position delete.
    expect(snapshots[1]!.summary).toMatchObject({ 'added-position-deletes': '1', 'total-records': '8' });

    expect((await duck.duckdb({ catalog: env.ref, table: EXTRACTIONS }, { orderBy: EXTRACTIONS_ORDER })).rows).toEqual(
      expected,
    );
    spark.push(
      { sql: `SELECT * FROM ${EXTRACTIONS} ORDER BY content_hash, prompt_version, model`, expected },
      {
        sql: `SELECT * FROM ${EXTRACTIONS} WHERE model = 'zero-shot:clip-v1'`,
        expected: expected.filter((r) => r.model === 'zero-shot:clip-v1'),
      },
    );
  });

  it('Spark reads both tables (and the snapshot tags) in one session', async () => {
    expect(spark).toHaveLength(6);
    const { results } = await runSparkSql(
      env.ref,
      spark.map((s) => s.sql),
    );
    for (const check of spark) {
      expect(sparkResult(results, check.sql).rows, `Spark: ${check.sql}`).toEqual(check.expected);
    }
  });
});
