import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../lib/config.js';

/**
 * TypeScript side of the interop harness: each helper runs one script from `scripts/interop/` with the project venv's
 * Python, feeds it JSON, and parses the one JSON document it prints. Values use the canonical JSON encoding of
 * `docs/interop.md` (longs and decimals as strings, timestamps as ISO strings with microseconds, binary as base64),
 * so rows read by different engines compare with `toEqual`. A missing tool is an error, never a skip.
 */

/** The Python that `scripts/setup.sh` installs pyiceberg, DuckDB and pyspark into. */
export const INTEROP_PYTHON = path.join(REPO_ROOT, '.tools/venv/bin/python');
const SCRIPTS_DIR = path.join(REPO_ROOT, 'scripts/interop');

/** Credentials of an S3 endpoint (s3proxy in tests); path-style addressing is always used. */
export interface S3Endpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** pyiceberg needs a region, otherwise it asks AWS where the bucket is. */
  region: string;
}

/** An Iceberg JDBC/SQL catalog that pyiceberg (SqlCatalog) and Spark (JdbcCatalog) share. */
export interface CatalogRef {
  /**
   * `sqlite:////abs/catalog.db`, `postgres://user@host:port/db` (as `inject('postgresUrl')` gives it),
   * `postgresql+psycopg2://…` or a `jdbc:` URL. The scripts translate it for each engine.
   */
  uri: string;
  /** The `catalog_name` column value; Spark's catalog gets the same name. */
  name: string;
  /** `file:///abs/dir` or `s3://bucket/prefix`. */
  warehouse: string;
  /** Needed for an `s3://` warehouse. */
  s3?: S3Endpoint;
}

/** The Iceberg type as JSON: a type string for primitives, an object for nested types. */
export type CanonicalType =
  | string
  | { type: 'struct'; fields: CanonicalColumn[] }
  | { type: 'list'; element: CanonicalType; 'element-required': boolean | null }
  | { type: 'map'; key: CanonicalType; value: CanonicalType; 'value-required': boolean | null };

/** One column as an engine reports it; `required` is null where the engine does not say (DuckDB). */
export interface CanonicalColumn {
  name: string;
  type: CanonicalType;
  required: boolean | null;
}

export type CanonicalValue = null | boolean | number | string | CanonicalValue[] | { [key: string]: CanonicalValue };
export type CanonicalRow = Record<string, CanonicalValue>;

export interface EngineReadResult {
  engine: 'pyiceberg' | 'duckdb' | 'spark';
  schema: CanonicalColumn[];
  rows: CanonicalRow[];
  /** The metadata.json that was read (pyiceberg and DuckDB). */
  metadataLocation?: string;
  /** The snapshot that was read, as a decimal string (pyiceberg); null for a table without snapshots. */
  snapshotId?: string | null;
  /** Wall time of the script, JVM start included (filled in here, not by the script). */
  elapsedMs: number;
}

export interface ReadOptions {
  /** `<namespace>.<table>` */
  table: string;
  /** Read this snapshot instead of the current one. */
  snapshotId?: string | bigint;
  /** An engine-native row filter (pyiceberg expression string or SQL condition); simple comparisons work in all. */
  filter?: string;
  /** Projection. @default all columns */
  columns?: string[];
  /** Sort rows by these columns (raw values, nulls first). @default engine order */
  orderBy?: string[];
  /** Kill the script after this long. @default 120_000 (300_000 for Spark) */
  timeoutMs?: number;
}

/** A failed script run; `stderr` holds the script's own `<script>: error: …` line and any engine log. */
export class InteropScriptError extends Error {
  override readonly name = 'InteropScriptError';
  constructor(
    message: string,
    readonly script: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

interface ScriptRun<T> {
  result: T;
  elapsedMs: number;
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs `scripts/interop/<script>` and parses its stdout; rejects with the script's stderr on any failure. */
async function runScript<T>(
  script: string,
  args: string[],
  opts: { stdin?: string; timeoutMs: number },
): Promise<ScriptRun<T>> {
  if (!existsSync(INTEROP_PYTHON)) {
    throw new InteropScriptError(
      `${INTEROP_PYTHON} does not exist; run \`npm run setup\` to install pyiceberg, DuckDB and Spark`,
      script,
      null,
      '',
    );
  }
  const started = performance.now();
  const child = spawn(INTEROP_PYTHON, [path.join(SCRIPTS_DIR, script), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => undefined); // a script that exits early closes stdin; its exit code tells why
  child.stdin.end(opts.stdin ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  }).finally(() => clearTimeout(timer));
  const stdout = Buffer.concat(out).toString('utf8');
  const stderr = Buffer.concat(err).toString('utf8');
  const elapsedMs = Math.round(performance.now() - started);
  if (timedOut) {
    throw new InteropScriptError(
      `${script} did not finish within ${opts.timeoutMs} ms; its stderr ends:\n${tail(stderr, 30)}`,
      script,
      exitCode,
      stderr,
    );
  }
  if (exitCode !== 0) {
    const errorLine = stderr.split('\n').findLast((l) => l.includes(': error: ')) ?? tail(stderr, 1);
    throw new InteropScriptError(
      `${script} exited with ${exitCode}: ${errorLine}\n--- stderr (last 30 lines) ---\n${tail(stderr, 30)}`,
      script,
      exitCode,
      stderr,
    );
  }
  try {
    return { result: JSON.parse(stdout) as T, elapsedMs };
  } catch {
    throw new InteropScriptError(
      `${script} printed something that is not JSON: ${stdout.slice(0, 500)}`,
      script,
      exitCode,
      stderr,
    );
  }
}

function s3Args(s3: S3Endpoint | undefined): string[] {
  return s3
    ? [
        '--s3-endpoint',
        s3.endpoint,
        '--s3-key',
        s3.accessKeyId,
        '--s3-secret',
        s3.secretAccessKey,
        '--s3-region',
        s3.region,
      ]
    : [];
}

function catalogArgs(catalog: CatalogRef): string[] {
  return [
    '--catalog-uri',
    catalog.uri,
    '--catalog-name',
    catalog.name,
    '--warehouse',
    catalog.warehouse,
    ...s3Args(catalog.s3),
  ];
}

function readArgs(opts: Omit<ReadOptions, 'table'>): string[] {
  const args: string[] = [];
  if (opts.snapshotId !== undefined) args.push('--snapshot-id', String(opts.snapshotId));
  if (opts.filter) args.push('--filter', opts.filter);
  if (opts.columns?.length) args.push('--columns', opts.columns.join(','));
  if (opts.orderBy?.length) args.push('--order-by', opts.orderBy.join(','));
  return args;
}

async function read(script: string, args: string[], timeoutMs: number): Promise<EngineReadResult> {
  const { result, elapsedMs } = await runScript<Omit<EngineReadResult, 'elapsedMs'>>(script, args, { timeoutMs });
  return { ...result, elapsedMs };
}

/** Reads a table through pyiceberg 0.12's SqlCatalog (`scripts/interop/pyiceberg_read.py`). */
export function readWithPyiceberg(catalog: CatalogRef, opts: ReadOptions): Promise<EngineReadResult> {
  return read(
    'pyiceberg_read.py',
    [...catalogArgs(catalog), '--table', opts.table, ...readArgs(opts)],
    opts.timeoutMs ?? 120_000,
  );
}

/**
 * Where DuckDB finds the table: its metadata.json (a path, `file://` or `s3://` URI), or the catalog, whose
 * `iceberg_tables` row the script reads itself (DuckDB has no JDBC catalog support).
 */
export type DuckdbSource = { metadataLocation: string; s3?: S3Endpoint } | { catalog: CatalogRef; table: string };

/** Reads a table with DuckDB 1.5.5's iceberg extension, loaded offline (`scripts/interop/duckdb_read.py`). */
export function readWithDuckdb(source: DuckdbSource, opts: Omit<ReadOptions, 'table'> = {}): Promise<EngineReadResult> {
  const where =
    'metadataLocation' in source
      ? ['--metadata', source.metadataLocation, ...s3Args(source.s3)]
      : [
          '--catalog-uri',
          source.catalog.uri,
          '--catalog-name',
          source.catalog.name,
          '--table',
          source.table,
          ...s3Args(source.catalog.s3),
        ];
  return read('duckdb_read.py', [...where, ...readArgs(opts)], opts.timeoutMs ?? 120_000);
}

/**
 * Reads a table with Spark 4.1 and iceberg-spark-runtime 1.11 through a JdbcCatalog (`scripts/interop/spark_read.py`).
 * One JVM per call (~10-20 s on two cores); batch reads into `runSparkSql` when a test needs several.
 * Spark cannot load a table that has a `time` column at all.
 */
export function readWithSpark(catalog: CatalogRef, opts: ReadOptions): Promise<EngineReadResult> {
  return read(
    'spark_read.py',
    [...catalogArgs(catalog), '--table', opts.table, ...readArgs(opts)],
    opts.timeoutMs ?? 300_000,
  );
}

export interface SparkStatementResult {
  sql: string;
  /** Absent when the statement failed under `continueOnError`. */
  schema?: CanonicalColumn[];
  rows?: CanonicalRow[];
  /** `<ExceptionType>: <message>` of a failed statement (only with `continueOnError`). */
  error?: string;
}

export interface SparkSqlOptions {
  /** Record a failing statement's error and go on. @default false (the first failure rejects) */
  continueOnError?: boolean;
  /** @default 300_000 */
  timeoutMs?: number;
}

export interface SparkSqlResult {
  results: SparkStatementResult[];
  elapsedMs: number;
}

/**
 * Runs SQL statements in order in ONE Spark session (`scripts/interop/spark_sql.py`): the catalog is the default
 * catalog (so `db.t` works), with Iceberg's extensions for MERGE INTO and `CALL <catalog>.system.*` procedures.
 */
export async function runSparkSql(
  catalog: CatalogRef,
  statements: string[],
  opts: SparkSqlOptions = {},
): Promise<SparkSqlResult> {
  const args = [...catalogArgs(catalog), ...(opts.continueOnError ? ['--continue-on-error'] : [])];
  const { result, elapsedMs } = await runScript<{ results: SparkStatementResult[] }>('spark_sql.py', args, {
    stdin: JSON.stringify(statements),
    timeoutMs: opts.timeoutMs ?? 300_000,
  });
  return { results: result.results, elapsedMs };
}

/** One commit made by `writeWithPyiceberg`. */
export type PyicebergCommit =
  | { mode: 'append'; rows: CanonicalRow[] }
  | { mode: 'overwrite'; rows: CanonicalRow[]; /** pyiceberg filter; @default all rows */ filter?: string }
  | { mode: 'delete'; filter: string };

export interface PyicebergWriteSpec {
  /** `<namespace>.<table>`; the namespace is created when missing. */
  table: string;
  /** Iceberg schema JSON as in table metadata (`{"type":"struct","fields":[…]}`); needed to create the table. */
  schema?: unknown;
  /** Partition fields by source column name, e.g. `{ source: 'ts', transform: 'day' }`. */
  partitionSpec?: { source: string; transform: string; name?: string }[];
  properties?: Record<string, string>;
  /** Drop the table first, so reruns start clean. @default false */
  dropIfExists?: boolean;
  commits?: PyicebergCommit[];
}

export interface PyicebergWriteResult {
  table: string;
  location: string;
  metadataLocation: string;
  /** One entry per commit, in order; ids as decimal strings. */
  snapshots: { snapshotId: string | null; operation: string | null }[];
  elapsedMs: number;
}

/** Creates (or reuses) a table with pyiceberg and commits rows to it (`scripts/interop/pyiceberg_write.py`). */
export async function writeWithPyiceberg(
  catalog: CatalogRef,
  spec: PyicebergWriteSpec,
  opts: { timeoutMs?: number } = {},
): Promise<PyicebergWriteResult> {
  const { result, elapsedMs } = await runScript<Omit<PyicebergWriteResult, 'elapsedMs'>>(
    'pyiceberg_write.py',
    catalogArgs(catalog),
    { stdin: JSON.stringify(spec), timeoutMs: opts.timeoutMs ?? 120_000 },
  );
  return { ...result, elapsedMs };
}
