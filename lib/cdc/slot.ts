import pg from 'pg';
import { buildEnvelope, type ChangeEvent } from './envelope.js';
import { CdcError, InvalidCdcOptionError, ReplicationError } from './errors.js';
import { formatLsn, parseLsn } from './lsn.js';
import { sessionSettingsSql } from './pg-types.js';
import { qualifiedName, quoteIdent, quoteTable, type SourceTable, type TableName } from './source-schema.js';

/**
 * Publications and replication slots: creating them idempotently, reporting a slot's position and retained WAL,
 * advancing it after an Iceberg commit, and the initial snapshot that lines up exactly with a new slot.
 */

// Slot names allow only these characters; publication names are held to the same rule so that they need no
// quoting inside the `publication_names` option, which PostgreSQL parses as an identifier list.
const NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** @throws InvalidCdcOptionError unless `name` is a valid slot name (lower-case letters, digits, `_`; ≤ 63). */
export function validateSlotName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidCdcOptionError(
      'slot',
      `${JSON.stringify(name)} is not a valid replication slot name; use lower-case letters, digits and _ (at most 63)`,
    );
  }
}

/** @throws InvalidCdcOptionError unless `name` is a valid publication name (same rule as slots). */
export function validatePublicationName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidCdcOptionError(
      'publication',
      `${JSON.stringify(name)} is not a valid publication name; use lower-case letters, digits and _ (at most 63)`,
    );
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/**
 * Maps a PostgreSQL or connection error from slot work to a typed {@link CdcError}; other errors come back as they
 * are. Already-typed errors pass through.
 */
export function translateReplicationError(err: unknown, names: { slot?: string; publication?: string }): unknown {
  if (err instanceof CdcError || !(err instanceof Error)) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = err.message;
  const slot = names.slot ?? '?';
  const publication = names.publication ?? '?';
  if (/replication slot ".*" does not exist/.test(message)) {
    return new ReplicationError(
      'slot-not-found',
      slot,
      `replication slot "${slot}" does not exist; onboard the table again (cdc-onboard creates the slot)`,
      { cause: err },
    );
  }
  if (/publication ".*" does not exist/.test(message)) {
    return new ReplicationError(
      'publication-not-found',
      publication,
      `publication "${publication}" does not exist; onboard the table again (cdc-onboard creates the publication)`,
      { cause: err },
    );
  }
  if (/is active for PID/.test(message)) {
    return new ReplicationError(
      'slot-busy',
      slot,
      `replication slot "${slot}" is in use by another consumer (${message}); only one merge may read a slot at a ` +
        'time, retry when it finishes',
      { cause: err },
    );
  }
  if (/can no longer get changes|has been invalidated|wal_status|required WAL has been removed/i.test(message)) {
    return new ReplicationError(
      'slot-invalidated',
      slot,
      `replication slot "${slot}" lost the WAL it needs (${message}); changes are gone, so onboard the table ` +
        'again (new slot and snapshot), and raise max_slot_wal_keep_size or merge more often',
      { cause: err },
    );
  }
  if (
    /wal_level|all replication slots are in use|permission denied|must be superuser|replication role/i.test(message)
  ) {
    return new ReplicationError(
      'source-config',
      slot,
      `the source database is not set up for logical replication: ${message}; it needs wal_level = logical, free ` +
        'max_replication_slots and a role with REPLICATION (or superuser)',
      { cause: err },
    );
  }
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '53300') {
    return new ReplicationError('source-unavailable', slot, `the source database is unavailable: ${message}`, {
      cause: err,
    });
  }
  return err;
}

async function translated<T>(names: { slot?: string; publication?: string }, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw translateReplicationError(err, names);
  }
}

// ---- publications ----------------------------------------------------------------------------------------------

/** What {@link ensurePublication} did. */
export interface EnsurePublicationResult {
  readonly created: boolean;
  /** Tables added to an existing publication. */
  readonly addedTables: readonly string[];
}

/**
 * Creates the publication for `tables`, or adds the missing tables to an existing one. Partitioned tables publish
 * their changes under the root table (`publish_via_partition_root`), so a merge sees one table.
 *
 * @throws ReplicationError `source-config` when the role may not create publications.
 */
export async function ensurePublication(
  client: pg.ClientBase,
  options: { publication: string; tables: readonly TableName[] },
): Promise<EnsurePublicationResult> {
  const { publication, tables } = options;
  validatePublicationName(publication);
  return translated({ publication }, async () => {
    const existing = await client.query<{ puballtables: boolean }>(
      'SELECT puballtables FROM pg_publication WHERE pubname = $1',
      [publication],
    );
    if (existing.rows.length === 0) {
      const list = tables.map(quoteTable).join(', ');
      await client.query(
        `CREATE PUBLICATION ${quoteIdent(publication)} ${tables.length > 0 ? `FOR TABLE ${list}` : ''} ` +
          'WITH (publish_via_partition_root = true)',
      );
      return { created: true, addedTables: tables.map(qualifiedName) };
    }
    if (existing.rows[0]?.puballtables) return { created: false, addedTables: [] };
    const published = await client.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
      [publication],
    );
    const have = new Set(published.rows.map((r) => qualifiedName({ schema: r.schemaname, table: r.tablename })));
    const missing = tables.filter((t) => !have.has(qualifiedName(t)));
    if (missing.length > 0) {
      await client.query(
        `ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${missing.map(quoteTable).join(', ')}`,
      );
    }
    return { created: false, addedTables: missing.map(qualifiedName) };
  });
}

/** Drops the publication; a missing one is not an error. */
export async function dropPublication(client: pg.ClientBase, publication: string): Promise<void> {
  validatePublicationName(publication);
  await translated({ publication }, () => client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`));
}

// ---- slots -----------------------------------------------------------------------------------------------------

/** What {@link ensureSlot} did. */
export interface EnsureSlotResult {
  readonly created: boolean;
  /** The LSN from which the slot decodes: its `confirmed_flush_lsn`. */
  readonly confirmedFlushLsn: bigint;
}

/**
 * Creates a pgoutput logical slot, or checks that the existing one is a pgoutput slot of this database. A new slot
 * sees only changes committed after it exists; for a consistent initial copy use {@link copyInitialSnapshot},
 * which creates the slot itself.
 *
 * @throws ReplicationError `slot-mismatch` when a slot of that name has another plugin or database; `source-config`
 *   when the server is not set up for logical replication.
 */
export async function ensureSlot(client: pg.ClientBase, slot: string): Promise<EnsureSlotResult> {
  validateSlotName(slot);
  return translated({ slot }, async () => {
    const existing = await readSlotRow(client, slot);
    if (existing) {
      const db = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db;
      if (existing.plugin !== 'pgoutput' || existing.slot_type !== 'logical' || existing.database !== db) {
        throw new ReplicationError(
          'slot-mismatch',
          slot,
          `replication slot "${slot}" exists but is a ${existing.slot_type} slot with plugin ` +
            `${existing.plugin ?? 'none'} in database ${existing.database ?? 'none'}, not a pgoutput slot in ${db}; ` +
            'choose another slot name or drop that slot',
        );
      }
      return { created: false, confirmedFlushLsn: parseLsn(existing.confirmed_flush_lsn ?? '0/0') };
    }
    const created = await client.query<{ lsn: string }>(
      "SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
      [slot],
    );
    return { created: true, confirmedFlushLsn: parseLsn(created.rows[0]?.lsn ?? '0/0') };
  });
}

interface SlotRow {
  slot_name: string;
  plugin: string | null;
  slot_type: string;
  database: string | null;
  active: boolean;
  active_pid: number | null;
  restart_lsn: string | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
  safe_wal_size: string | null;
  current_lsn: string;
}

async function readSlotRow(client: pg.ClientBase, slot: string): Promise<SlotRow | undefined> {
  const result = await client.query<SlotRow>(
    `SELECT slot_name, plugin, slot_type, database, active, active_pid, restart_lsn::text AS restart_lsn,
            confirmed_flush_lsn::text AS confirmed_flush_lsn, wal_status, safe_wal_size::text AS safe_wal_size,
            pg_current_wal_lsn()::text AS current_lsn
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return result.rows[0];
}

/** A slot's position and what it costs the source. */
export interface SlotStatus {
  readonly slot: string;
  readonly database: string | null;
  /** Whether a consumer holds the slot now, and its backend PID. */
  readonly active: boolean;
  readonly activePid: number | null;
  /** The oldest WAL the slot still needs. */
  readonly restartLsn: bigint | undefined;
  /** Everything before this has been applied (the slot was advanced to it). */
  readonly confirmedFlushLsn: bigint | undefined;
  /** `pg_current_wal_lsn()` when the status was read. */
  readonly currentLsn: bigint;
  /** WAL bytes the server keeps for this slot: current LSN − restart LSN. */
  readonly retainedWalBytes: bigint;
  /** WAL bytes not yet applied: current LSN − confirmed flush LSN (the lag as an LSN distance). */
  readonly lagBytes: bigint;
  /** `reserved`, `extended`, `unreserved` or `lost` (WAL already removed: the slot is unusable). */
  readonly walStatus: string | null;
  /** Bytes that can still be written before the slot loses WAL (`max_slot_wal_keep_size`); null when unlimited. */
  readonly safeWalBytes: bigint | null;
}

/**
 * Reads a slot's status.
 *
 * @throws ReplicationError `slot-not-found`.
 */
export async function readSlotStatus(client: pg.ClientBase, slot: string): Promise<SlotStatus> {
  validateSlotName(slot);
  return translated({ slot }, async () => {
    const row = await readSlotRow(client, slot);
    if (!row) {
      throw new ReplicationError(
        'slot-not-found',
        slot,
        `replication slot "${slot}" does not exist; onboard the table again (cdc-onboard creates the slot)`,
      );
    }
    const current = parseLsn(row.current_lsn);
    const restart = row.restart_lsn === null ? undefined : parseLsn(row.restart_lsn);
    const confirmed = row.confirmed_flush_lsn === null ? undefined : parseLsn(row.confirmed_flush_lsn);
    return {
      slot,
      database: row.database,
      active: row.active,
      activePid: row.active_pid,
      restartLsn: restart,
      confirmedFlushLsn: confirmed,
      currentLsn: current,
      retainedWalBytes: restart === undefined ? 0n : current - restart,
      lagBytes: confirmed === undefined ? 0n : current > confirmed ? current - confirmed : 0n,
      walStatus: row.wal_status,
      safeWalBytes: row.safe_wal_size === null ? null : BigInt(row.safe_wal_size),
    };
  });
}

/** What {@link advanceSlot} did. */
export interface AdvanceResult {
  /** The slot's confirmed position afterwards. */
  readonly confirmedFlushLsn: bigint;
  /** False when the slot was already at or past `to` (a retried advance). */
  readonly moved: boolean;
}

/**
 * Moves the slot to `to` (a transaction's commit end LSN, or the batch's `advanceTo`), letting the server reclaim
 * WAL. Call it only after the Iceberg commit that holds every change up to `to`. Idempotent: a slot already at or
 * past `to` is left alone. The server never moves a slot past its flushed WAL.
 *
 * An advance is not crash-durable on the source: after a crash the slot can return to an earlier position, which is
 * why exactly-once rests on the watermark in the Iceberg snapshot, not on the slot.
 *
 * @throws ReplicationError `slot-not-found`, `slot-busy`.
 */
export async function advanceSlot(client: pg.ClientBase, slot: string, to: bigint): Promise<AdvanceResult> {
  validateSlotName(slot);
  return translated({ slot }, async () => {
    const row = await readSlotRow(client, slot);
    if (!row) {
      throw new ReplicationError(
        'slot-not-found',
        slot,
        `replication slot "${slot}" does not exist; cannot advance it`,
      );
    }
    const confirmed = parseLsn(row.confirmed_flush_lsn ?? '0/0');
    if (confirmed >= to) return { confirmedFlushLsn: confirmed, moved: false };
    const result = await client.query<{ end_lsn: string }>(
      'SELECT end_lsn::text AS end_lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)',
      [slot, formatLsn(to)],
    );
    return { confirmedFlushLsn: parseLsn(result.rows[0]?.end_lsn ?? formatLsn(to)), moved: true };
  });
}

/** Drops the slot; a missing slot is not an error. @throws ReplicationError `slot-busy` while a consumer holds it. */
export async function dropSlot(client: pg.ClientBase, slot: string): Promise<boolean> {
  validateSlotName(slot);
  return translated({ slot }, async () => {
    const result = await client.query(
      'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    return (result.rowCount ?? 0) > 0;
  });
}

// ---- initial snapshot ---------------------------------------------------------------------------------------

/**
 * A pg type-parser set that returns every value as the server's text: the engine converts values itself, and
 * `pg`'s process-global parsers turn timestamps into `Date`s in the process time zone and int8 into strings.
 */
export const RAW_TEXT_TYPES = {
  getTypeParser: () => (value: string) => value,
} as unknown as pg.CustomTypesConfig;

/** Options of {@link copyInitialSnapshot}. */
export interface InitialSnapshotOptions {
  /** Connection string or config of the source database (the role needs REPLICATION). */
  readonly connection: string | pg.ClientConfig;
  /** The slot to create; it must not exist yet. */
  readonly slot: string;
  /** The tables to copy (from {@link readSourceTable}). */
  readonly tables: readonly SourceTable[];
  /** Rows per chunk handed to `onChunk`. @default 10000 */
  readonly chunkRows?: number;
  /** Logical server name in the envelopes. @default the database name */
  readonly serverName?: string;
  /** Receives each chunk of snapshot rows (op `r`, `pg-text` values); the copy waits for it. */
  readonly onChunk: (table: SourceTable, events: ChangeEvent[]) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What {@link copyInitialSnapshot} did. */
export interface InitialSnapshotResult {
  readonly slot: string;
  /**
   * The slot's consistent point: the snapshot holds every transaction that committed before it, and the slot
   * delivers every transaction that commits after it. Store it as the table's first watermark.
   */
  readonly consistentPoint: bigint;
  readonly snapshotName: string;
  /** Rows copied per table (`schema.table`). */
  readonly rows: ReadonlyMap<string, number>;
}

/**
 * Creates the slot and copies the tables from exactly the slot's starting point, so that the copy plus the slot's
 * changes equal the source with no gap and no overlap: a replication connection runs `CREATE_REPLICATION_SLOT …
 * LOGICAL pgoutput EXPORT_SNAPSHOT`, and a second connection reads the tables in a `REPEATABLE READ READ ONLY`
 * transaction that imports that snapshot, through a cursor, in chunks.
 *
 * The exported snapshot lives only as long as the replication connection stays idle, so the copy cannot be resumed:
 * when it fails, the slot is dropped (so that a retry starts over with a new snapshot) and the error is rethrown.
 *
 * @throws InvalidCdcOptionError for a bad slot name; ReplicationError `source-config` (no replication privilege,
 *   wal_level), `source-unavailable`; the slot already existing is a PostgreSQL error (drop it first).
 */
export async function copyInitialSnapshot(options: InitialSnapshotOptions): Promise<InitialSnapshotResult> {
  validateSlotName(options.slot);
  const slot = options.slot;
  const base: pg.ClientConfig =
    typeof options.connection === 'string' ? { connectionString: options.connection } : options.connection;
  // @types/pg lacks `replication`; the driver passes it through as a startup parameter.
  const replication = new pg.Client({ ...base, replication: 'database' } as pg.ClientConfig);
  const reader = new pg.Client(base);
  let slotCreated = false;
  try {
    await translated({ slot }, async () => {
      await replication.connect();
      await reader.connect();
    });
    // Replication connections take only simple queries, without parameters; the slot name was validated above.
    const created = await translated({ slot }, () =>
      replication.query<{ consistent_point: string; snapshot_name: string }>(
        `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`,
      ),
    );
    slotCreated = true;
    const row = created.rows[0];
    if (!row?.snapshot_name) {
      throw new ReplicationError('source-config', slot, `CREATE_REPLICATION_SLOT for "${slot}" exported no snapshot`);
    }
    const consistentPoint = parseLsn(row.consistent_point);
    const rows = new Map<string, number>();
    await translated({ slot }, async () => {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await reader.query(`SET TRANSACTION SNAPSHOT '${row.snapshot_name.replaceAll("'", "''")}'`);
      await reader.query(sessionSettingsSql(true));
      const db = (await reader.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db ?? '';
      for (const table of options.tables) {
        let count = 0;
        for await (const chunk of readTableChunks(reader, table, {
          chunkRows: options.chunkRows ?? 10_000,
          db,
          serverName: options.serverName ?? db,
          nowMs: (options.now ?? Date.now)(),
        })) {
          count += chunk.length;
          await options.onChunk(table, chunk);
        }
        rows.set(qualifiedName(table), count);
      }
      await reader.query('COMMIT');
    });
    return { slot, consistentPoint, snapshotName: row.snapshot_name, rows };
  } catch (err) {
    if (slotCreated) {
      // A half-copied snapshot cannot be resumed; without its slot a retry can start over cleanly. The replication
      // connection goes first so that it cannot be holding the slot.
      await replication.end().catch(() => undefined);
      await reader.query('ROLLBACK').catch(() => undefined);
      await dropSlot(reader, slot).catch(() => undefined);
    }
    throw err;
  } finally {
    await Promise.allSettled([reader.end(), replication.end()]);
  }
}

/**
 * Reads a table in chunks through a cursor, as snapshot-read envelopes (op `r`, `pg-text` values). Run it inside
 * a transaction whose session settings are {@link sessionSettingsSql}; {@link copyInitialSnapshot} does.
 */
export async function* readTableChunks(
  client: pg.ClientBase,
  table: SourceTable,
  options: { chunkRows: number; db: string; serverName: string; nowMs: number },
): AsyncGenerator<ChangeEvent[]> {
  if (!Number.isInteger(options.chunkRows) || options.chunkRows < 1) {
    throw new InvalidCdcOptionError('chunkRows', `must be a positive integer, got ${options.chunkRows}`);
  }
  const cursor = 'sluice_cdc_snapshot';
  const columns = table.columns.map((c) => quoteIdent(c.name)).join(', ');
  // ONLY: an inheritance parent's changes do not include its children, so neither may its copy. A partitioned
  // table is published through its root and copied through it (ONLY would return no rows).
  const from = table.relkind === 'p' ? quoteTable(table) : `ONLY ${quoteTable(table)}`;
  await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${columns} FROM ${from}`);
  let sequence = 0;
  try {
    for (;;) {
      const result = await client.query<Record<string, string | null>>({
        text: `FETCH ${options.chunkRows} FROM ${cursor}`,
        types: RAW_TEXT_TYPES,
      });
      if (result.rows.length === 0) break;
      yield result.rows.map((row) => {
        const event: ChangeEvent = {
          envelope: buildEnvelope({
            op: 'r',
            before: null,
            after: { ...row },
            table,
            db: options.db,
            serverName: options.serverName,
            txId: null,
            commitLsn: 0n,
            changeLsn: 0n,
            commitTimeMicros: 0n,
            nowMs: options.nowMs,
            snapshot: 'true',
          }),
          encoding: 'pg-text',
          position: { commitLsn: 0n, commitEndLsn: 0n, changeLsn: 0n, sequence },
          unchangedColumns: [],
          origin: `snapshot of ${qualifiedName(table)} row ${sequence}`,
        };
        sequence += 1;
        return event;
      });
      if (result.rows.length < options.chunkRows) break;
    }
  } finally {
    await client.query(`CLOSE ${cursor}`).catch(() => undefined);
  }
}
