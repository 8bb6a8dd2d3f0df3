import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import {
  PostgresCatalogDriver,
  SqlCatalog,
  SqliteCatalogDriver,
  type CatalogDriver,
} from '../../lib/iceberg/catalog/index.js';
import { currentSchema, type TableMetadata } from '../../lib/iceberg/metadata-json.js';
import {
  Types,
  type IcebergType,
  type ListType,
  type MapType,
  type NestedField,
  type Schema,
  type StructType,
} from '../../lib/iceberg/types.js';
import {
  dateFromIso,
  timeFromIso,
  timestampFromIso,
  timestamptzFromIso,
  type DecimalValue,
} from '../../lib/iceberg/values.js';
import { CompositeFileIO } from '../../lib/storage/index.js';
import type { FileIO } from '../../lib/storage/file-io.js';
import { rowToCanonical } from './canonical.js';
import { REPO_ROOT } from '../../lib/config.js';
import {
  INTEROP_PYTHON,
  type CanonicalRow,
  type CatalogRef,
  type DuckdbSource,
  type EngineReadResult,
  type ReadOptions,
  type S3Endpoint,
  type SparkStatementResult,
} from './engines.js';

/**
 * Shared pieces of the interop tests that run OUR engine against pyiceberg, DuckDB and Spark: the two catalog
 * setups (SQLite + file:// warehouse, PostgreSQL + s3:// warehouse on s3proxy) opened both as our `SqlCatalog` and
 * as the harness's `CatalogRef`, value constructors, and row/column helpers.
 */

/** One catalog database + warehouse, seen by our engine (`catalog`, `io`) and by the other engines (`ref`). */
export interface InteropEnv {
  label: string;
  ref: CatalogRef;
  catalog: SqlCatalog;
  io: FileIO;
  /** The warehouse holds `file:` URIs (Spark writes `file:/abs` paths there). */
  local: boolean;
  close(): Promise<void>;
}

export interface CatalogSetup {
  label: string;
  /** `prefix` keeps catalog names (and buckets) of different test files apart. */
  open(prefix: string): Promise<InteropEnv>;
}

const runId = randomBytes(4).toString('hex');

function envOf(label: string, ref: CatalogRef, driver: CatalogDriver, io: CompositeFileIO, local: boolean): InteropEnv {
  const catalog = new SqlCatalog({ name: ref.name, driver, io, warehouse: ref.warehouse });
  return {
    label,
    ref,
    catalog,
    io,
    local,
    async close() {
      await driver.close();
      await io.close();
    },
  };
}

/** The two catalog setups every interop test here runs against. */
export const CATALOG_SETUPS: CatalogSetup[] = [
  {
    label: 'SQLite catalog, file:// warehouse',
    async open(prefix) {
      const dir = mkdtempSync(path.join(inject('fixtureDir'), `${prefix}-sqlite-`));
      const ref: CatalogRef = {
        uri: `sqlite:///${dir}/catalog.db`,
        name: `${prefix}_sqlite_${runId}`,
        warehouse: `file://${dir}/warehouse`,
      };
      const driver = new SqliteCatalogDriver({ path: path.join(dir, 'catalog.db') });
      return envOf(this.label, ref, driver, new CompositeFileIO({}), true);
    },
  },
  {
    label: 'PostgreSQL catalog, s3:// warehouse (s3proxy)',
    async open(prefix) {
      const s3 = inject('s3');
      const bucket = `${prefix}-${runId}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      client.destroy();
      const ref: CatalogRef = {
        uri: inject('postgresUrl'),
        name: `${prefix}_pg_${runId}`,
        warehouse: `s3://${bucket}/warehouse`,
        s3,
      };
      const driver = new PostgresCatalogDriver({ connectionString: ref.uri });
      const io = new CompositeFileIO({
        file: false,
        s3: {
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
          credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        },
      });
      return envOf(this.label, ref, driver, io, false);
    },
  },
];

// ---- values --------------------------------------------------------------------------------------------------

/** A decimal from its plain text: `dec('-1.50')` is `{ unscaled: -150n, scale: 2 }`. */
export function dec(text: string): DecimalValue {
  const negative = text.startsWith('-');
  const [whole = '', fraction = ''] = text.replace(/^[-+]/, '').split('.');
  const magnitude = BigInt(`${whole}${fraction}` || '0');
  return { unscaled: negative ? -magnitude : magnitude, scale: fraction.length };
}

/** Days from 1970-01-01 of a `YYYY-MM-DD` date. */
export function date(text: string): number {
  return dateFromIso(text);
}

/** µs from the epoch of a zone-less ISO timestamp. */
export function ts(text: string): bigint {
  return timestampFromIso(text);
}

/** µs from the epoch (UTC) of an ISO timestamp with an offset. */
export function tstz(text: string): bigint {
  return timestamptzFromIso(text);
}

/** µs from midnight of `HH:MM:SS[.ffffff]`. */
export function time(text: string): bigint {
  return timeFromIso(text);
}

export function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

// ---- rows ----------------------------------------------------------------------------------------------------

/** A row in our value representation, by column name (nested values in the forms the Parquet writer accepts). */
export type TsRow = Record<string, unknown>;

/** Column values by field id of the table's current schema, for `appendColumns` / `upsertRows`. */
export function columnsOf(schema: Schema, rows: readonly TsRow[]): Map<number, unknown[]> {
  for (const row of rows) {
    for (const name of Object.keys(row)) {
      if (!schema.fields.some((f) => f.name === name)) throw new Error(`row has a column "${name}" the schema lacks`);
    }
  }
  return new Map(schema.fields.map((f) => [f.id, rows.map((r) => r[f.name] ?? null)]));
}

/** The canonical rows of TS rows under `schema`, sorted by the `id` column (a long). */
export function canonicalRows(fields: readonly NestedField[], rows: readonly TsRow[]): CanonicalRow[] {
  return byId(rows.map((r) => rowToCanonical(fields, r)));
}

/** Sorts canonical rows by their `id` (a long, so a decimal string). */
export function byId(rows: readonly CanonicalRow[]): CanonicalRow[] {
  return [...rows].sort((a, b) => {
    const x = BigInt(a.id as string);
    const y = BigInt(b.id as string);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * pyiceberg 0.12 reads a null `list<struct>` as `[]` (apache/iceberg-python#3833): what pyiceberg must print for
 * rows whose list-of-struct columns are null.
 */
export function asReadByPyiceberg(fields: readonly NestedField[], rows: readonly CanonicalRow[]): CanonicalRow[] {
  const listOfStruct = fields
    .filter((f) => f.type.kind === 'list' && f.type.element.kind === 'struct')
    .map((f) => f.name);
  if (listOfStruct.length === 0) return [...rows];
  return rows.map((row) => {
    const out = { ...row };
    for (const name of listOfStruct) if (out[name] === null) out[name] = [];
    return out;
  });
}

/** The current schema of a loaded table. */
export function schemaOf(metadata: TableMetadata): Schema {
  return currentSchema(metadata);
}

/** A top-level field by name (throws when missing). */
export function field(schema: Pick<Schema, 'fields'>, name: string): NestedField {
  const found = schema.fields.find((f) => f.name === name);
  if (!found) throw new Error(`no column "${name}" in ${schema.fields.map((f) => f.name).join(', ')}`);
  return found;
}

/** Builds a schema from `[name, type, required?]` triples with ids in order (createTable reassigns them anyway). */
export function schemaFrom(
  columns: readonly (readonly [string, IcebergType, boolean?])[],
  identifier: readonly string[] = [],
): Schema {
  const fields = columns.map(([name, type, required], i): NestedField => ({
    id: i + 1,
    name,
    type,
    required: required ?? false,
  }));
  return {
    schemaId: 0,
    identifierFieldIds: identifier.map((name) => field({ fields }, name).id),
    fields,
  };
}

/** The one Spark result whose statement starts with `prefix` (after whitespace); throws when there is none. */
export function sparkResult(results: readonly SparkStatementResult[], prefix: string): SparkStatementResult {
  const found = results.filter((r) => r.sql.trimStart().startsWith(prefix));
  if (found.length !== 1) {
    throw new Error(
      `expected one Spark result for a statement starting with ${JSON.stringify(prefix)}, got ${found.length}`,
    );
  }
  return found[0] as SparkStatementResult;
}

/**
 * Runs `work` over `items` with at most `limit` in flight. Waits for every started item before rejecting, so that a
 * failure never leaves work running into the next test.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      out[index] = await work(items[index] as T);
    }
  });
  const settled = await Promise.allSettled(workers);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return out;
}

// ---- nested type builders (ids only need to be unique: createTable reassigns them as Java does) ---------------

let nestedId = 10_000;

export function listOf(element: IcebergType, elementRequired = false): ListType {
  return { kind: 'list', elementId: nestedId++, elementRequired, element };
}

export function mapOf(key: IcebergType, value: IcebergType, valueRequired = false): MapType {
  return { kind: 'map', keyId: nestedId++, key, valueId: nestedId++, valueRequired, value };
}

export function structOf(...fields: readonly (readonly [string, IcebergType, boolean?])[]): StructType {
  return {
    kind: 'struct',
    fields: fields.map(([name, type, required]) => ({ id: nestedId++, name, type, required: required ?? false })),
  };
}

/** Runs `work`; with SLUICE_INTEROP_TIMING=1 prints how long it took (to find where the minutes go). */
export async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    if (process.env.SLUICE_INTEROP_TIMING) {
      process.stderr.write(`[interop timing] ${what}: ${Math.round(performance.now() - started)} ms\n`);
    }
  }
}

// ---- the all-types table (written by us, and by pyiceberg in foreign-tables.test.ts) --------------------------

/** Every primitive type plus struct, list (of primitives and of structs) and map columns. */
export const ALL_TYPES = schemaFrom(
  [
    ['id', Types.long, true],
    ['flag', Types.boolean],
    ['small', Types.int],
    ['big', Types.long],
    ['ratio', Types.float],
    ['measure', Types.double],
    ['amount', Types.decimal(38, 9)],
    ['price', Types.decimal(10, 2)],
    ['exact', Types.decimal(38, 0)],
    ['day', Types.date],
    ['local_ts', Types.timestamp],
    ['utc_ts', Types.timestamptz],
    ['label', Types.string],
    ['uid', Types.uuid],
    ['code', Types.fixed(4)],
    ['blob', Types.binary],
    ['tags', listOf(Types.int)],
    ['names', listOf(Types.string, true)],
    ['stamps', listOf(Types.timestamptz)],
    ['attrs', mapOf(Types.string, Types.long)],
    ['counts', mapOf(Types.int, Types.string)],
    [
      'point',
      structOf(
        ['x', Types.int],
        ['note', Types.string],
        ['inner', structOf(['deep', Types.long], ['when', Types.date])],
      ),
    ],
    ['events', listOf(structOf(['k', Types.string, true], ['v', Types.double]), true)],
    ['req_label', Types.string, true],
  ],
  ['id'],
);

export const LONG_MIN = -(2n ** 63n);
export const LONG_MAX = 2n ** 63n - 1n;
export const NINES_38 = 10n ** 38n - 1n;

/** Edge values and nulls of every type in {@link ALL_TYPES}. */
export const EDGE_ROWS: TsRow[] = [
  {
    id: LONG_MIN,
    flag: true,
    small: -2147483648,
    big: LONG_MIN,
    ratio: Math.fround(0.1),
    measure: 1e300,
    amount: { unscaled: -NINES_38, scale: 9 },
    price: dec('-99999999.99'),
    exact: { unscaled: 12345678901234567890123456789012345678n, scale: 0 },
    day: date('0001-01-01'),
    local_ts: ts('1969-12-31T23:59:59.999999'),
    utc_ts: tstz('0001-01-01T00:00:00Z'),
    label: 'héllo 🌍 \'quoted\' "double"\nnext line\ttab \\ backslash',
    uid: '123E4567-E89B-12D3-A456-426614174000', // upper case in, lower case out
    code: bytes(0, 1, 2, 3),
    blob: new Uint8Array(0),
    tags: [1, null, 3],
    names: ['a', '', 'ü'],
    stamps: [0n, null, -1n],
    attrs: new Map<string, bigint | null>([
      ['a', 9007199254740993n],
      ['b', null],
      ['é', -1n],
      ['z', 0n],
    ]),
    counts: new Map([
      [10, 'ten'],
      [9, 'nine'],
      [-1, 'minus one'],
    ]),
    point: { x: 1, note: 'x', inner: { deep: 2n ** 53n + 1n, when: date('2000-02-29') } },
    events: [
      { k: 'first', v: 0.5 },
      { k: 'second', v: null },
    ],
    req_label: 'required',
  },
  {
    id: LONG_MAX,
    flag: false,
    small: 2147483647,
    big: LONG_MAX,
    ratio: NaN,
    measure: -Infinity,
    amount: { unscaled: NINES_38, scale: 9 },
    price: dec('0.00'),
    exact: { unscaled: -NINES_38, scale: 0 },
    day: date('9999-12-31'),
    local_ts: ts('9999-12-31T23:59:59.999999'),
    utc_ts: tstz('2024-02-29T12:34:56.789012Z'),
    label: '',
    uid: '00000000-0000-0000-0000-000000000000',
    code: bytes(255, 255, 255, 255),
    blob: bytes(0xde, 0xad, 0xbe, 0xef, 0),
    tags: [],
    names: [],
    stamps: [],
    attrs: new Map(),
    counts: new Map(),
    point: { x: null, note: null, inner: null },
    events: [],
    req_label: '',
  },
  { id: 0n, ratio: Infinity, measure: -0, req_label: 'nulls everywhere else' },
  {
    id: 1n,
    ratio: -0,
    measure: NaN,
    small: 0,
    big: 0n,
    amount: dec('0.000000000'),
    price: dec('0.01'),
    exact: dec('0'),
    day: date('1969-12-31'),
    local_ts: ts('1970-01-01T00:00:00'),
    utc_ts: tstz('1969-12-31T23:59:59.999999Z'),
    label: 'null',
    point: { x: 0, note: '', inner: { deep: null, when: null } },
    events: [{ k: '', v: -0 }],
    req_label: 'zeros',
  },
  { id: 2n, ratio: Math.fround(3.4e38), measure: 5e-324, tags: [null], req_label: 'float max, double min' },
  {
    id: 3n,
    ratio: 1.401298464324817e-45,
    measure: Number.MAX_VALUE,
    attrs: new Map([['ключ', 1n]]),
    req_label: 'float min',
  },
  { id: 4n, ratio: -Math.fround(1.1), measure: -Number.MIN_VALUE, names: ['日本語', '🌍'], req_label: '日本語' },
];

/** Ordinary rows spread over a few days, for several files and partitions. */
export const GENERATED_ROWS: TsRow[] = Array.from({ length: 24 }, (_, i) => ({
  id: BigInt(1000 + i),
  flag: i % 3 === 0 ? null : i % 2 === 0,
  small: i * 7 - 50,
  big: BigInt(i) * 1_000_000_007n - 5n,
  ratio: Math.fround(i * 0.25 - 1),
  measure: i / 8 - 1,
  amount: dec(`${i}.${String(i).padStart(9, '0')}`),
  price: dec(`${i * 3}.${String(i % 100).padStart(2, '0')}`),
  exact: { unscaled: BigInt(i) * 10n ** 30n, scale: 0 },
  day: date(`2024-03-${String((i % 4) + 1).padStart(2, '0')}`),
  local_ts: ts(`2024-03-${String((i % 4) + 1).padStart(2, '0')}T10:00:00.${String(i).padStart(6, '0')}`),
  utc_ts: tstz(`2024-03-${String((i % 4) + 1).padStart(2, '0')}T23:59:59.${String(999_999 - i).padStart(6, '0')}Z`),
  label: `row ${i}`,
  uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  code: bytes(i, i + 1, i + 2, i + 3),
  blob: new TextEncoder().encode(`blob-${i}`),
  tags: i % 5 === 0 ? null : [i, i + 1],
  names: i % 4 === 0 ? null : [`n${i}`],
  stamps: [BigInt(i) * 3_600_000_000n],
  attrs: i % 6 === 0 ? null : new Map([[`k${i}`, BigInt(i) * 1_000_000_007n]]),
  counts: new Map([[i, `c${i}`]]),
  point: i % 7 === 0 ? null : { x: i, note: i % 3 === 0 ? null : `p${i}`, inner: { deep: BigInt(-i), when: i } },
  events: i % 4 === 1 ? null : [{ k: `e${i}`, v: i * 1.5 }],
  req_label: `required ${i}`,
}));

// ---- a long-lived reader process -----------------------------------------------------------------------------

/**
 * The read loop of {@link ReaderSession}: it imports the harness's own `pyiceberg_read.read_table` and
 * `duckdb_read.read_table` (so the rows are encoded exactly as `readWithPyiceberg`/`readWithDuckdb` print them) and
 * answers one JSON request per line. One process per session saves the 1–3 s that each script run spends importing
 * pyiceberg/pyarrow and setting up S3, which adds up over the ~100 reads of these tests.
 */
const READ_LOOP = String.raw`
import argparse, json, sys, time, traceback
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import cli, duckdb_read, pyiceberg_read

_catalogs = {}
_make_catalog = cli.pyiceberg_catalog
def _cached_catalog(args, *, init_tables):
    key = (args.catalog_uri, args.catalog_name, args.warehouse, args.s3_endpoint, init_tables)
    if key not in _catalogs:
        _catalogs[key] = _make_catalog(args, init_tables=init_tables)
    return _catalogs[key]
cli.pyiceberg_catalog = _cached_catalog

readers = {"pyiceberg": pyiceberg_read.read_table, "duckdb": duckdb_read.read_table}
out = sys.stdout
sys.stdout = sys.stderr  # nothing but replies on the real stdout
for line in sys.stdin:
    request = json.loads(line)
    if request["args"].get("snapshot_id") is not None:
        request["args"]["snapshot_id"] = int(request["args"]["snapshot_id"])
    started = time.perf_counter()
    try:
        reply = {"id": request["id"], "result": readers[request["engine"]](argparse.Namespace(**request["args"]))}
    except Exception as err:
        reply = {"id": request["id"], "error": f"{type(err).__name__}: {' '.join(str(err).split())}",
                 "traceback": traceback.format_exc()}
    reply["elapsedMs"] = round((time.perf_counter() - started) * 1000)
    out.write(json.dumps(reply, ensure_ascii=False, allow_nan=False) + "\n")
    out.flush()
`;

interface Pending {
  resolve(result: EngineReadResult): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One Python process that reads tables with pyiceberg (SqlCatalog) or DuckDB (iceberg_scan) on request, using the
 * harness scripts' own read functions; a missing tool is an error, never a skip.
 */
export class ReaderSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stdout = '';
  private stderrTail = '';
  private exited: Error | undefined;

  constructor() {
    if (!existsSync(INTEROP_PYTHON)) {
      throw new Error(`${INTEROP_PYTHON} does not exist; run \`npm run setup\` to install pyiceberg, DuckDB and Spark`);
    }
    this.child = spawn(INTEROP_PYTHON, ['-c', READ_LOOP, path.join(REPO_ROOT, 'scripts/interop')], {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-20_000);
    });
    this.child.stdin.on('error', () => undefined);
    this.child.on('close', (code) => {
      this.exited = new Error(
        `the reader process exited with ${code}; its stderr ends:\n${this.stderrTail.slice(-4000)}`,
      );
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(this.exited);
        this.pending.delete(id);
      }
    });
  }

  /** Like `readWithPyiceberg`. */
  pyiceberg(catalog: CatalogRef, opts: ReadOptions): Promise<EngineReadResult> {
    return this.request('pyiceberg', {
      ...this.catalogArgs(catalog),
      table: opts.table,
      ...this.readArgs(opts),
    });
  }

  /** Like `readWithDuckdb`. */
  duckdb(source: DuckdbSource, opts: Omit<ReadOptions, 'table'> = {}): Promise<EngineReadResult> {
    const where =
      'metadataLocation' in source
        ? {
            metadata: source.metadataLocation,
            catalog_uri: null,
            catalog_name: null,
            table: null,
            ...this.s3Args(source.s3),
          }
        : {
            metadata: null,
            catalog_uri: source.catalog.uri,
            catalog_name: source.catalog.name,
            table: source.table,
            ...this.s3Args(source.catalog.s3),
          };
    return this.request('duckdb', { ...where, ...this.readArgs(opts) });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const closed = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    this.child.stdin.end();
    await closed;
  }

  private s3Args(s3: S3Endpoint | undefined) {
    return {
      s3_endpoint: s3?.endpoint ?? null,
      s3_key: s3?.accessKeyId ?? null,
      s3_secret: s3?.secretAccessKey ?? null,
      s3_region: s3?.region ?? 'us-east-1',
    };
  }

  private catalogArgs(catalog: CatalogRef) {
    return {
      catalog_uri: catalog.uri,
      catalog_name: catalog.name,
      warehouse: catalog.warehouse,
      ...this.s3Args(catalog.s3),
    };
  }

  private readArgs(opts: Omit<ReadOptions, 'table'>) {
    return {
      // 64-bit: sent as a string, turned into a Python int by the read loop.
      snapshot_id: opts.snapshotId === undefined ? null : String(opts.snapshotId),
      filter: opts.filter ?? null,
      columns: opts.columns?.length ? opts.columns.join(',') : null,
      order_by: opts.orderBy?.length ? opts.orderBy.join(',') : null,
    };
  }

  private request(engine: 'pyiceberg' | 'duckdb', args: Record<string, unknown>): Promise<EngineReadResult> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    const line = JSON.stringify({ id, engine, args });
    return new Promise<EngineReadResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${engine} read ${JSON.stringify(args)} did not finish within 120 s`));
      }, 120_000);
      this.pending.set(id, { resolve, reject, timer });
      this.child.stdin.write(`${line}\n`);
    });
  }

  private onStdout(chunk: string): void {
    this.stdout += chunk;
    let newline: number;
    while ((newline = this.stdout.indexOf('\n')) >= 0) {
      const line = this.stdout.slice(0, newline);
      this.stdout = this.stdout.slice(newline + 1);
      const reply = JSON.parse(line) as {
        id: number;
        result?: Omit<EngineReadResult, 'elapsedMs'>;
        error?: string;
        traceback?: string;
        elapsedMs: number;
      };
      const p = this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.error !== undefined) p.reject(new Error(`${reply.error}\n${reply.traceback ?? ''}`));
      else p.resolve({ ...(reply.result as Omit<EngineReadResult, 'elapsedMs'>), elapsedMs: reply.elapsedMs });
    }
  }
}
