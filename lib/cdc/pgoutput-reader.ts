import type pg from 'pg';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import {
  UNAVAILABLE_VALUE_PLACEHOLDER,
  buildEnvelope,
  type ChangeEvent,
  type ChangePosition,
  type DebeziumEnvelope,
  type DebeziumOp,
} from './envelope.js';
import { InvalidCdcOptionError, ReplicationError } from './errors.js';
import { formatLsn, parseLsn } from './lsn.js';
import { sessionSettingsSql } from './pg-types.js';
import { RAW_TEXT_TYPES, translateReplicationError, validatePublicationName, validateSlotName } from './slot.js';
import { qualifiedName } from './source-schema.js';

/**
 * Reads a bounded batch of whole transactions from a pgoutput slot without consuming it:
 * `pg_logical_slot_peek_binary_changes` up to the server's flushed WAL, through a cursor so that the client holds
 * one chunk of raw messages at a time, decoded with one pg-logical-replication `PgoutputPlugin` per batch (it
 * caches the Relation messages, which every decoding call sends again). The slot moves only when the caller
 * advances it after the Iceberg commit.
 */

/** Options of {@link readChangeBatch}. */
export interface ReadChangeBatchOptions {
  readonly slot: string;
  readonly publication: string;
  /**
   * Stop at the first transaction end once this many row changes are read. A single larger transaction still
   * comes back whole. The server is also told to stop decoding soon after (`upto_nchanges`, which counts BEGIN,
   * COMMIT and Relation messages too, so it gets {@link serverRowLimit}). Bigger batches are much cheaper per change:
   * every peek re-decodes WAL from the slot's restart LSN.
   * @default 10000
   */
  readonly maxChanges?: number;
  /** Stop at the first transaction end once this many bytes of pgoutput messages are read. @default 64 MiB */
  readonly maxBytes?: number;
  /** Messages per `FETCH`. @default 5000 */
  readonly fetchSize?: number;
  /** The logical server name written to `source.name`. @default the database name */
  readonly serverName?: string;
  /** @default Date.now */
  readonly now?: () => number;
}

/** A relation (table) definition as pgoutput sent it in this batch. */
export interface BatchRelation {
  readonly table: string;
  readonly replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  /** `isKey`: pgoutput's key flag, set on the replica identity's columns (every column under FULL). */
  readonly columns: readonly {
    readonly name: string;
    readonly typeOid: number;
    readonly typeMod: number;
    readonly isKey?: boolean;
  }[];
}

/** The result of {@link readChangeBatch}. */
export interface ChangeBatch {
  /** Row changes (and truncates, op `t`) of whole transactions, in commit order, then change order. */
  readonly events: ChangeEvent[];
  /** Whole transactions read, including those with no published row changes. */
  readonly transactions: number;
  /** Commit end LSN of the last transaction read; `undefined` when none was. */
  readonly lastCommitEndLsn: bigint | undefined;
  /** Commit times (ms since the epoch) of the first and last transaction read: lag in seconds is now − first. */
  readonly firstCommitTimeMs: number | undefined;
  readonly lastCommitTimeMs: number | undefined;
  /** Whether the batch stopped at a limit, so more changes before {@link ChangeBatch.uptoLsn} may wait. */
  readonly cutShort: boolean;
  /** The server's flushed WAL position when the batch was read; the peek went no further. */
  readonly uptoLsn: bigint;
  /**
   * How far the slot may be advanced once these events are committed to Iceberg: {@link ChangeBatch.uptoLsn}
   * when the batch was not cut short (so that WAL written only by unpublished tables is released too), the last
   * commit end LSN when it was; `undefined` when there is nothing to advance to.
   */
  readonly advanceTo: bigint | undefined;
  /** The relation definitions the batch carried, by `schema.table`, to detect source schema changes. */
  readonly relations: ReadonlyMap<string, BatchRelation>;
  /** Bytes of pgoutput messages read. */
  readonly bytes: number;
}

interface OpenTransaction {
  xid: number;
  commitLsn: bigint;
  commitTimeMicros: bigint;
  changes: PendingChange[];
  perTable: Map<string, number>;
}

interface PendingChange {
  op: DebeziumOp;
  relation: Pgoutput.MessageRelation;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  unchanged: string[];
  changeLsn: bigint;
}

const CURSOR = 'sluice_cdc_peek';

/**
 * The `upto_nchanges` a batch of `maxChanges` row changes asks the server for. The server counts every message,
 * and a transaction of one change is three (BEGIN, the change, COMMIT), so it gets room for that; the client still
 * stops at `maxChanges`. Without a limit the server would decode all pending WAL on every peek.
 */
export function serverRowLimit(maxChanges: number): number {
  return Math.min(maxChanges * 3 + 16, 2_147_483_647);
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidCdcOptionError(name, `must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Reads the next batch of whole transactions from the slot, without consuming it: run it again and the same
 * changes come back until {@link advanceSlot} moves the slot. Only one consumer may read a slot at a time.
 *
 * Values are PostgreSQL's text output (`pg-text`), read under {@link sessionSettingsSql} so that they convert
 * exactly. With REPLICA IDENTITY DEFAULT an unchanged TOASTed column is listed in `unchangedColumns` (and holds
 * Debezium's placeholder in `after`); with FULL, `before` is the whole old row and the library fills unchanged
 * values from it. A TRUNCATE becomes one op `t` event per table.
 *
 * @throws ReplicationError `slot-not-found`, `publication-not-found`, `slot-busy`, `slot-invalidated`,
 *   `source-unavailable`, or `corrupt-change` for a message the decoder cannot read.
 */
export async function readChangeBatch(client: pg.ClientBase, options: ReadChangeBatchOptions): Promise<ChangeBatch> {
  const { slot, publication } = options;
  validateSlotName(slot);
  validatePublicationName(publication);
  const maxChanges = positiveInteger('maxChanges', options.maxChanges ?? 10_000);
  const maxBytes = positiveInteger('maxBytes', options.maxBytes ?? 64 * 1024 * 1024);
  const fetchSize = positiveInteger('fetchSize', options.fetchSize ?? 5000);
  const nowMs = (options.now ?? Date.now)();

  const decoder = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  const events: ChangeEvent[] = [];
  const relations = new Map<string, BatchRelation>();
  /** `schema.table` of each relation the decoder handed out (a Relation message replaces the object). */
  const tableNames = new Map<Pgoutput.MessageRelation, string>();
  let open: OpenTransaction | undefined;
  let transactions = 0;
  let lastCommitEndLsn: bigint | undefined;
  let firstCommitTimeMs: number | undefined;
  let lastCommitTimeMs: number | undefined;
  let bytes = 0;
  let rowsFetched = 0;
  let stoppedEarly = false;
  let uptoLsn = 0n;

  await client.query('BEGIN');
  try {
    await client.query(sessionSettingsSql(true));
    const head = await client.query<{ flush: string; db: string }>(
      'SELECT pg_current_wal_flush_lsn()::text AS flush, current_database() AS db',
    );
    uptoLsn = parseLsn(head.rows[0]?.flush ?? '0/0');
    const db = head.rows[0]?.db ?? '';
    const serverName = options.serverName ?? db;
    await client.query(
      `DECLARE ${CURSOR} NO SCROLL CURSOR FOR
         SELECT lsn::text AS lsn, data
           FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3, 'proto_version', '1', 'publication_names', $4)`,
      [slot, formatLsn(uptoLsn), serverRowLimit(maxChanges), publication],
    );

    const finishTransaction = (commit: Pgoutput.MessageCommit, rowLsn: bigint) => {
      if (!open) throw corrupt(slot, rowLsn, 'a COMMIT without a BEGIN');
      const commitEndLsn = commit.commitEndLsn === null ? rowLsn : parseLsn(commit.commitEndLsn);
      const txn = open;
      const commitText = formatLsn(txn.commitLsn);
      for (let i = 0; i < txn.changes.length; i++) {
        const change = txn.changes[i]!;
        let table = tableNames.get(change.relation);
        if (table === undefined) {
          table = qualifiedName({ schema: change.relation.schema, table: change.relation.name });
          tableNames.set(change.relation, table);
        }
        const tableOrder = (txn.perTable.get(table) ?? 0) + 1;
        txn.perTable.set(table, tableOrder);
        events.push(
          new SlotChangeEvent(
            buildEnvelope({
              op: change.op,
              before: change.before,
              after: change.after,
              table: { schema: change.relation.schema, table: change.relation.name },
              db,
              serverName,
              txId: txn.xid,
              commitLsn: txn.commitLsn,
              changeLsn: change.changeLsn,
              commitTimeMicros: txn.commitTimeMicros,
              nowMs,
              totalOrder: i + 1,
              dataCollectionOrder: tableOrder,
            }),
            { commitLsn: txn.commitLsn, commitEndLsn, changeLsn: change.changeLsn, sequence: events.length },
            change.unchanged,
            slot,
            commitText,
          ),
        );
      }
      transactions += 1;
      lastCommitEndLsn = commitEndLsn;
      const commitMs = Number(txn.commitTimeMicros / 1000n);
      firstCommitTimeMs ??= commitMs;
      lastCommitTimeMs = commitMs;
      open = undefined;
    };

    let exhausted = false;
    while (!exhausted && !stoppedEarly) {
      const chunk = await client.query<{ lsn: string; data: string }>({
        text: `FETCH ${fetchSize} FROM ${CURSOR}`,
        types: RAW_TEXT_TYPES,
      });
      rowsFetched += chunk.rows.length;
      exhausted = chunk.rows.length < fetchSize;
      for (const row of chunk.rows) {
        const rowLsn = parseLsn(row.lsn);
        const buffer = Buffer.from(row.data.slice(2), 'hex');
        bytes += buffer.length;
        let message: Pgoutput.Message;
        try {
          message = decoder.parse(buffer);
        } catch (err) {
          throw corrupt(slot, rowLsn, (err as Error).message, err);
        }
        switch (message.tag) {
          case 'begin':
            open = {
              xid: message.xid,
              commitLsn: message.commitLsn === null ? rowLsn : parseLsn(message.commitLsn),
              commitTimeMicros: BigInt(message.commitTime as bigint),
              changes: [],
              perTable: new Map(),
            };
            break;
          case 'relation':
            // Keep values as the server's text: the library would otherwise run pg's process-global parsers
            // (Dates in the process time zone, JSON objects). Only this batch's decoder sees the change.
            for (const column of message.columns) column.parser = (raw: unknown) => raw;
            relations.set(qualifiedName({ schema: message.schema, table: message.name }), {
              table: qualifiedName({ schema: message.schema, table: message.name }),
              replicaIdentity: message.replicaIdentity,
              columns: message.columns.map((c) => ({
                name: c.name,
                typeOid: c.typeOid,
                typeMod: c.typeMod,
                isKey: (c.flags & 1) === 1,
              })),
            });
            break;
          case 'insert':
            pending(open, slot, rowLsn).push(rowChange('c', message.relation, null, message.new, rowLsn));
            break;
          case 'update':
            pending(open, slot, rowLsn).push(
              rowChange('u', message.relation, message.old ?? message.key, message.new, rowLsn),
            );
            break;
          case 'delete':
            pending(open, slot, rowLsn).push(
              rowChange('d', message.relation, message.old ?? message.key, null, rowLsn),
            );
            break;
          case 'truncate':
            for (const relation of message.relations) {
              pending(open, slot, rowLsn).push({
                op: 't',
                relation,
                before: null,
                after: null,
                unchanged: [],
                changeLsn: rowLsn,
              });
            }
            break;
          case 'commit':
            finishTransaction(message, rowLsn);
            if (events.length >= maxChanges || bytes >= maxBytes) stoppedEarly = true;
            break;
          default:
            // Type and origin messages carry nothing the merge needs.
            break;
        }
        if (stoppedEarly) break;
      }
    }
    await client.query(`CLOSE ${CURSOR}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw translateReplicationError(err, { slot, publication });
  }
  // The server stops at `upto_nchanges` rows too; when it may have, later changes can be waiting below uptoLsn. A
  // transaction still open means the peek ended inside one, which whole-transaction decoding should never do.
  const cutShort = stoppedEarly || rowsFetched >= serverRowLimit(maxChanges) || open !== undefined;
  const advanceTo = cutShort ? lastCommitEndLsn : uptoLsn > (lastCommitEndLsn ?? 0n) ? uptoLsn : lastCommitEndLsn;
  return {
    events,
    transactions,
    lastCommitEndLsn,
    firstCommitTimeMs,
    lastCommitTimeMs,
    cutShort,
    uptoLsn,
    advanceTo,
    relations,
    bytes,
  };
}

/**
 * A change event read from a slot. Its `origin` (the slot and two LSNs as text) is computed on the prototype, only
 * when a quarantine record or an error reads it: formatting it for every event, or an accessor per event object,
 * was a measurable share of decoding.
 */
class SlotChangeEvent implements ChangeEvent {
  readonly encoding = 'pg-text' as const;
  constructor(
    readonly envelope: DebeziumEnvelope,
    readonly position: ChangePosition,
    readonly unchangedColumns: readonly string[],
    private readonly slot: string,
    private readonly commitText: string,
  ) {}

  get origin(): string {
    return `slot ${this.slot} at ${formatLsn(this.position.changeLsn)} (commit ${this.commitText})`;
  }
}

function pending(open: OpenTransaction | undefined, slot: string, lsn: bigint): PendingChange[] {
  if (!open) throw corrupt(slot, lsn, 'a row change outside a transaction');
  return open.changes;
}

function corrupt(slot: string, lsn: bigint, problem: string, cause?: unknown): ReplicationError {
  return new ReplicationError(
    'corrupt-change',
    slot,
    `cannot decode the pgoutput message of slot "${slot}" at LSN ${formatLsn(lsn)}: ${problem}; check that the ` +
      'slot uses pgoutput with proto_version 1',
    cause === undefined ? undefined : { cause },
  );
}

function rowChange(
  op: DebeziumOp,
  relation: Pgoutput.MessageRelation,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
  changeLsn: bigint,
): PendingChange {
  const unchanged: string[] = [];
  let image: Record<string, unknown> | null = null;
  if (after) {
    image = {};
    for (const column of relation.columns) {
      if (!(column.name in after)) continue;
      const value = after[column.name];
      // The library leaves an unchanged TOAST datum `undefined` when there is no old row to copy it from.
      if (value === undefined) {
        unchanged.push(column.name);
        image[column.name] = UNAVAILABLE_VALUE_PLACEHOLDER;
      } else {
        image[column.name] = value;
      }
    }
  }
  let old: Record<string, unknown> | null = null;
  if (before) {
    old = {};
    // A key-only old row (REPLICA IDENTITY DEFAULT/INDEX) has just the identity columns; keep it that way.
    for (const [name, value] of Object.entries(before)) if (value !== undefined) old[name] = value;
  }
  return { op, relation, before: old, after: image, unchanged, changeLsn };
}
