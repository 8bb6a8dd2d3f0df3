import pg from 'pg';
import type { CatalogDriver, SqlErrorClass, SqlExecutor, SqlRow, SqlValue } from './sql-driver.js';

/** Options of {@link PostgresCatalogDriver}: an existing pool, or what to build one from. */
export type PostgresCatalogDriverOptions =
  | {
      /** A pool the caller owns; {@link PostgresCatalogDriver.close} leaves it open. */
      readonly pool: pg.Pool;
    }
  | {
      /** `postgres://user:password@host:port/database`. */
      readonly connectionString: string;
      /**
       * Most connections the driver's own pool opens.
       * @default 4
       */
      readonly maxConnections?: number;
    };

// SQLSTATE classes and codes that mean "the database is not (currently) able to serve us": connection
// exceptions (08), operator intervention such as shutdown (57P*), insufficient resources (53*), and transaction
// rollbacks caused by concurrency (40001 serialization failure, 40P01 deadlock).
const UNAVAILABLE_SQLSTATE = /^(08|57P|53|40001|40P01)/;
const NETWORK_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/**
 * A {@link CatalogDriver} over a `pg` pool. Each statement runs on any pooled connection (autocommit); a
 * transaction holds one connection from `BEGIN` to `COMMIT`. The compare-and-swap commit is a single `UPDATE`, so
 * it needs no transaction: under READ COMMITTED a second concurrent `UPDATE … WHERE metadata_location = old`
 * waits for the first and then matches no row.
 */
export class PostgresCatalogDriver implements CatalogDriver {
  readonly dialect = 'postgres';
  readonly pool: pg.Pool;
  private readonly ownsPool: boolean;

  constructor(options: PostgresCatalogDriverOptions) {
    if ('pool' in options) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      this.pool = new pg.Pool({ connectionString: options.connectionString, max: options.maxConnections ?? 4 });
      this.ownsPool = true;
      // An idle pooled connection that the server drops emits 'error' on the pool; unhandled, it would crash the
      // process. The next query on a fresh connection reports any lasting problem.
      this.pool.on('error', () => undefined);
    }
  }

  async query(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    return (await this.pool.query(numberPlaceholders(sql), [...params])).rows as SqlRow[];
  }

  async execute(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.pool.query(numberPlaceholders(sql), [...params])).rowCount ?? 0;
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: SqlExecutor = {
      query: async (sql, params = []) => (await client.query(numberPlaceholders(sql), [...params])).rows as SqlRow[],
      execute: async (sql, params = []) => (await client.query(numberPlaceholders(sql), [...params])).rowCount ?? 0,
    };
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
        // A connection that cannot even roll back must not go back into the pool.
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async columnsOf(table: string): Promise<string[] | undefined> {
    // to_regclass resolves the unqualified name through the search path, as the catalog's own SQL does.
    const found = await this.query(
      'SELECT a.attname AS column_name FROM pg_attribute a WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 ' +
        'AND NOT a.attisdropped ORDER BY a.attnum',
      [table],
    );
    return found.length === 0 ? undefined : found.map((r) => String(r.column_name).toLowerCase());
  }

  classifyError(err: unknown): SqlErrorClass {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    if (code === '23505') return 'unique-violation';
    if (UNAVAILABLE_SQLSTATE.test(code) || NETWORK_CODES.has(code)) return 'unavailable';
    const message = err instanceof Error ? err.message : '';
    // pg reports a connection lost mid-query with a plain Error and no code.
    if (/Connection terminated|connection timeout|Client has encountered a connection error/i.test(message)) {
      return 'unavailable';
    }
    return 'other';
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }
}

/** Rewrites `?` placeholders to `$1…$n`. The catalog's SQL has no `?` inside string literals. */
function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
