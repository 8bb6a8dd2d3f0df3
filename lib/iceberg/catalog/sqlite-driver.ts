import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { CatalogDriver, SqlErrorClass, SqlExecutor, SqlRow, SqlValue } from './sql-driver.js';

/** Options of {@link SqliteCatalogDriver}. */
export interface SqliteCatalogDriverOptions {
  /**
   * The database file (created when missing, with its directory), or `:memory:` for a private in-memory catalog.
   * Other processes (pyiceberg, Spark's JdbcCatalog with `jdbc:sqlite:<path>`) can open the same file.
   */
  readonly path: string;
  /**
   * How long a statement waits for another process's write lock before failing with `SQLITE_BUSY`
   * (then reported as `CatalogUnavailableError`, which is retryable).
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
}

/**
 * A {@link CatalogDriver} over one better-sqlite3 connection. better-sqlite3 is synchronous; every call is queued
 * behind the previous one so that a transaction spanning awaits (writing a file between two statements, say) never
 * has another caller's statement run inside it on the shared connection. Across processes, SQLite's own file lock
 * serializes writers; transactions start with `BEGIN IMMEDIATE` so that they take the write lock up front instead
 * of failing half-way on a lock upgrade.
 */
export class SqliteCatalogDriver implements CatalogDriver {
  readonly dialect = 'sqlite';
  private readonly db: Database.Database;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly direct: SqlExecutor;
  // The catalog runs a handful of fixed statements; preparing each once saves re-parsing on every call.
  private readonly statements = new Map<string, Database.Statement>();

  constructor(options: SqliteCatalogDriverOptions) {
    if (options.path !== ':memory:') mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    this.direct = {
      query: async (sql, params = []) => this.prepared(sql).all(...params) as SqlRow[],
      execute: async (sql, params = []) => this.prepared(sql).run(...params).changes,
    };
  }

  query(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return this.serialized(() => this.direct.query(sql, params));
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.serialized(() => this.direct.execute(sql, params));
  }

  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.serialized(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await work(this.direct);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  columnsOf(table: string): Promise<string[] | undefined> {
    return this.serialized(async () => {
      const rows = this.db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as { name: string }[];
      return rows.length === 0 ? undefined : rows.map((r) => r.name.toLowerCase());
    });
  }

  classifyError(err: unknown): SqlErrorClass {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') return 'unique-violation';
    if (/^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|PROTOCOL)/.test(code)) return 'unavailable';
    return 'other';
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    this.db.close();
  }

  private prepared(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private serialized<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    // The queue only orders calls; a failure belongs to its caller, not to the next one in line.
    this.queue = next.catch(() => undefined);
    return next;
  }
}
