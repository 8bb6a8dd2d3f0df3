/** A value bound to a `?` placeholder. The catalog tables hold only strings (and NULL). */
export type SqlValue = string | number | null;

/** A row as the database returns it, keyed by (lower-case) column name. */
export type SqlRow = Record<string, unknown>;

/** Runs statements. SQL uses `?` placeholders in both dialects; the Postgres driver renumbers them to `$n`. */
export interface SqlExecutor {
  /** Runs a query and returns its rows. */
  query(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>;
  /** Runs a statement and returns how many rows it changed. */
  execute(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/** How the catalog should react to a driver error. */
export type SqlErrorClass =
  /** A primary-key or unique constraint refused an insert or update. */
  | 'unique-violation'
  /** The database did not answer, dropped the connection, or was busy/locked; retrying may succeed. */
  | 'unavailable'
  /** Anything else (a bug, a permission problem…): surfaced as is. */
  | 'other';

/**
 * The small surface the SQL catalog needs from a database. Two implementations: SQLite (better-sqlite3) and
 * PostgreSQL (pg). Both run the same SQL: the catalog uses only `VARCHAR`, `=`, `LIKE … ESCAPE`, `UNION` and
 * `ORDER BY`, which both dialects share.
 */
export interface CatalogDriver extends SqlExecutor {
  /** Which database this is, for the few places where the dialects differ. */
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `work` in one transaction on one connection, committing when it resolves and rolling back when it
   * throws. Statements of other callers do not interleave with it on the same connection.
   */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** The (lower-case) column names of `table`, or `undefined` when the table does not exist. */
  columnsOf(table: string): Promise<string[] | undefined>;
  /** Classifies an error this driver threw. */
  classifyError(err: unknown): SqlErrorClass;
  /** Closes the connection (or the pool, when the driver created it). */
  close(): Promise<void>;
}
