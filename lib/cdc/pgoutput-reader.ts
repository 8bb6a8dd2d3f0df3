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
  /**
   * Read as if the slot had already been advanced to this commit end LSN (a batch that is being merged but not yet
   * committed, so the slot has not moved): the server still decodes from the slot's position, and drops the
   * transactions that commit before this LSN itself; their Relation and Type messages still reach the decoder, which
   * needs them for the later transactions. This is how the next batch is read ahead while the current one is merged
   * (lib/cdc/prefetch.ts). @default the slot's position
   */
  readonly startAfter?: bigint;
  /**
   * With {@link ReadChangeBatchOptions.startAfter}: about how many messages the server produces for the skipped
   * transactions (the previous batch's {@link ChangeBatch.messages}), added to the server's `upto_nchanges` so that
   * the skipped part does not use up the limit. @default 0
   */
  readonly skippedMessages?: number;
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
  /**
   * Messages the server produced for this batch's transactions (from its first message through its last COMMIT,
   * Relation messages included, skipped transactions not): a batch read right after this one with
   * {@link ReadChangeBatchOptions.startAfter} passes it as {@link ReadChangeBatchOptions.skippedMessages}.
   */
  readonly messages: number;
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
  const startAfter = options.startAfter;
  const skippedMessages = options.skippedMessages ?? 0;
  if (!Number.isSafeInteger(skippedMessages) || skippedMessages < 0) {
    throw new InvalidCdcOptionError('skippedMessages', `must be a non-negative integer, got ${skippedMessages}`);
  }
  const serverLimit = Math.min(
    serverRowLimit(maxChanges) + (startAfter === undefined ? 0 : skippedMessages),
    2_147_483_647,
  );

  const decoder = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  /** The Relation messages read so far, by relation OID (a later one for the same table replaces it). */
  const relationsById = new Map<number, Pgoutput.MessageRelation>();
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
  /** Rows the server produced in all (with `startAfter`, skipped ones included). */
  let serverRows = -1;
  /** Messages of this batch's own transactions: from the first kept one through the last COMMIT read. */
  let kept = 0;
  let messages = 0;
  /** Relations defined only in skipped transactions, for the batch's `relations` when its changes use them. */
  const skippedRelations = new Map<string, BatchRelation>();
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
    if (startAfter === undefined) {
      await client.query(
        `DECLARE ${CURSOR} NO SCROLL CURSOR FOR
           SELECT lsn::text AS lsn, encode(data, 'base64') AS data
             FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3, 'proto_version', '1', 'publication_names', $4)`,
        [slot, formatLsn(uptoLsn), serverLimit, publication],
      );
    } else {
      // The server keeps every message from the first BEGIN whose commit LSN (its first field) is at or after
      // `startAfter` (transactions come in commit order), and the Relation ('R') and Type ('Y') messages before it.
      await client.query(
        `DECLARE ${CURSOR} NO SCROLL CURSOR FOR
           WITH c AS MATERIALIZED (
             SELECT p.lsn, p.data, p.ord
               FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3, 'proto_version', '1',
                                                        'publication_names', $4) WITH ORDINALITY AS p(lsn, xid, data, ord)
           ), f AS (
             SELECT coalesce((SELECT min(ord) FROM c
                               WHERE get_byte(data, 0) = 66 AND substring(data FROM 2 FOR 8) >= $5::bytea),
                             (SELECT count(*) + 1 FROM c)) AS first,
                    (SELECT count(*) FROM c) AS total
           )
           SELECT c.lsn::text AS lsn, encode(c.data, 'base64') AS data, f.total::text AS total, c.ord >= f.first AS kept
             FROM c, f
            WHERE c.ord >= f.first OR get_byte(c.data, 0) IN (82, 89)
            ORDER BY c.ord`,
        [slot, formatLsn(uptoLsn), serverLimit, publication, lsnBytes(startAfter)],
      );
    }

    const finishTransaction = (commitEndLsn: bigint, rowLsn: bigint) => {
      if (!open) throw corrupt(slot, rowLsn, 'a COMMIT without a BEGIN');
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
      const chunk = await client.query<{ lsn: string; data: string; total?: string; kept?: string }>({
        text: `FETCH ${fetchSize} FROM ${CURSOR}`,
        types: RAW_TEXT_TYPES,
      });
      rowsFetched += chunk.rows.length;
      exhausted = chunk.rows.length < fetchSize;
      for (const row of chunk.rows) {
        if (row.total !== undefined && serverRows < 0) serverRows = Number(row.total);
        // Every column comes as the server's text (RAW_TEXT_TYPES): the boolean is 't' or 'f'.
        const skipped = row.kept === 'f';
        if (!skipped) kept += 1;
        const rowLsn = parseLsn(row.lsn);
        // Base64 (the server breaks its lines; the decoder skips them): a third less text to receive than hex.
        const buffer = Buffer.from(row.data, 'base64');
        bytes += buffer.length;
        // Row changes, BEGIN and COMMIT (nearly every message) are read here, straight into what the batch keeps;
        // the library reads the rest (Relation, Type, Truncate, Origin), and its relation cache serves Truncate.
        const tag = buffer[0];
        if (tag === TAG_INSERT || tag === TAG_UPDATE || tag === TAG_DELETE) {
          let change: PendingChange;
          try {
            change = decodeRowChange(buffer, relationsById, rowLsn);
          } catch (err) {
            throw corrupt(slot, rowLsn, (err as Error).message, err);
          }
          pending(open, slot, rowLsn).push(change);
          continue;
        }
        if (tag === TAG_BEGIN || tag === TAG_COMMIT) {
          if (buffer.length < (tag === TAG_BEGIN ? 21 : 26)) throw corrupt(slot, rowLsn, 'unexpected end of message');
          if (tag === TAG_BEGIN) {
            open = {
              xid: buffer.readInt32BE(17),
              commitLsn: lsnOr(buffer.readBigUInt64BE(1), rowLsn),
              commitTimeMicros: buffer.readBigUInt64BE(9) + PG_EPOCH_UNIX_MICROS,
              changes: [],
              perTable: new Map(),
            };
            continue;
          }
          finishTransaction(lsnOr(buffer.readBigUInt64BE(10), rowLsn), rowLsn);
          messages = kept;
          if (events.length >= maxChanges || bytes >= maxBytes) stoppedEarly = true;
          if (stoppedEarly) break;
          continue;
        }
        let message: Pgoutput.Message;
        try {
          message = decoder.parse(buffer);
        } catch (err) {
          throw corrupt(slot, rowLsn, (err as Error).message, err);
        }
        switch (message.tag) {
          case 'relation':
            // Keep values as the server's text: the library would otherwise run pg's process-global parsers
            // (Dates in the process time zone, JSON objects). Only this batch's decoder sees the change.
            for (const column of message.columns) column.parser = (raw: unknown) => raw;
            relationsById.set(message.relationOid, message);
            (skipped ? skippedRelations : relations).set(
              qualifiedName({ schema: message.schema, table: message.name }),
              {
                table: qualifiedName({ schema: message.schema, table: message.name }),
                replicaIdentity: message.replicaIdentity,
                columns: message.columns.map((c) => ({
                  name: c.name,
                  typeOid: c.typeOid,
                  typeMod: c.typeMod,
                  isKey: (c.flags & 1) === 1,
                })),
              },
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
          case 'begin':
          case 'commit':
          case 'insert':
          case 'update':
          case 'delete':
            // Read above, never by the library.
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
  const cutShort = stoppedEarly || (serverRows >= 0 ? serverRows : rowsFetched) >= serverLimit || open !== undefined;
  // A table whose Relation message came in a skipped transaction: the batch still names its definition, as a read
  // from the slot's own position would have.
  for (const table of tableNames.values()) {
    if (relations.has(table)) continue;
    const skippedRelation = skippedRelations.get(table);
    if (skippedRelation) relations.set(table, skippedRelation);
  }
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
    messages,
  };
}

/** An LSN as the 8 big-endian bytes pgoutput writes (so that `bytea` order is LSN order). */
function lsnBytes(lsn: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(lsn);
  return out;
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

const TAG_BEGIN = 0x42;
const TAG_COMMIT = 0x43;
const TAG_INSERT = 0x49;
const TAG_UPDATE = 0x55;
const TAG_DELETE = 0x44;
const SUB_KEY = 0x4b;
const SUB_OLD = 0x4f;
const SUB_NEW = 0x4e;
/** Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01. */
const PG_EPOCH_UNIX_MICROS = 946_684_800_000_000n;

/** An LSN field: 0 means "none", in which case the row's own LSN stands in (as the library did). */
function lsnOr(lsn: bigint, rowLsn: bigint): bigint {
  return lsn === 0n ? rowLsn : lsn;
}

/** Where {@link readImage} and its siblings are in a message. */
interface MessageCursor {
  readonly buf: Buffer;
  pos: number;
}

/**
 * An Insert, Update or Delete message (pgoutput proto 1) as a pending change, read straight from its bytes into the
 * row images the batch keeps: the after-image with unchanged TOASTed columns listed (and holding the placeholder),
 * the before-image without absent values. The same result as the pg-logical-replication tuple objects run through
 * the former copy step, without those intermediate objects and strings per value.
 */
function decodeRowChange(
  buf: Buffer,
  relations: ReadonlyMap<number, Pgoutput.MessageRelation>,
  changeLsn: bigint,
): PendingChange {
  const tag = buf[0];
  const relation = relations.get(buf.readInt32BE(1));
  if (!relation) throw new Error('missing relation');
  const cur: MessageCursor = { buf, pos: 5 };
  const unchanged: string[] = [];
  if (tag === TAG_INSERT) {
    cur.pos += 1; // 'N'
    return { op: 'c', relation, before: null, after: readImage(cur, relation, null, unchanged), unchanged, changeLsn };
  }
  const sub = buf[cur.pos++];
  if (tag === TAG_UPDATE) {
    let before: Record<string, unknown> | null = null;
    if (sub === SUB_KEY) {
      before = readKey(cur, relation);
      cur.pos += 1; // 'N'
    } else if (sub === SUB_OLD) {
      before = readOld(cur, relation);
      cur.pos += 1; // 'N'
    } else if (sub !== SUB_NEW) {
      throw new Error(`unknown submessage key ${String.fromCharCode(sub ?? 0)}`);
    }
    // With an old row (REPLICA IDENTITY FULL), an unchanged TOASTed value is taken from it.
    const after = readImage(cur, relation, sub === SUB_OLD ? before : null, unchanged);
    return { op: 'u', relation, before, after, unchanged, changeLsn };
  }
  let before: Record<string, unknown>;
  if (sub === SUB_KEY) before = readKey(cur, relation);
  else if (sub === SUB_OLD) before = readOld(cur, relation);
  else throw new Error(`unknown submessage key ${String.fromCharCode(sub ?? 0)}`);
  return { op: 'd', relation, before, after: null, unchanged: [], changeLsn };
}

/** Marks a TupleData value that is an unchanged TOASTed datum (pgoutput's 'u'). */
const UNCHANGED = Symbol('unchanged');

/** The next TupleData column's value: text as a string, null, binary as bytes, or {@link UNCHANGED}. */
function readValue(cur: MessageCursor): unknown {
  const { buf } = cur;
  const kind = buf[cur.pos++];
  switch (kind) {
    case 0x74 /* t */: {
      const length = buf.readInt32BE(cur.pos);
      const start = cur.pos + 4;
      const end = start + length;
      if (length < 0 || end > buf.length) throw new Error('unexpected end of message');
      cur.pos = end;
      return buf.toString('utf8', start, end);
    }
    case 0x6e /* n */:
      return null;
    case 0x75 /* u */:
      return UNCHANGED;
    case 0x62 /* b */: {
      const length = buf.readInt32BE(cur.pos);
      const start = cur.pos + 4;
      const end = start + length;
      if (length < 0 || end > buf.length) throw new Error('unexpected end of message');
      cur.pos = end;
      return buf.subarray(start, end);
    }
    default:
      throw new Error(`unknown attribute kind ${String.fromCharCode(kind ?? 0)}`);
  }
}

/** The column names of a TupleData's fields, checking that the relation has that many. */
function columnName(relation: Pgoutput.MessageRelation, i: number): string {
  const column = relation.columns[i];
  if (!column) throw new Error(`a tuple has more columns than relation ${relation.schema}.${relation.name}`);
  return column.name;
}

/** An after-image: unchanged TOASTed values come from `old` when it has them, else are listed in `unchanged`. */
function readImage(
  cur: MessageCursor,
  relation: Pgoutput.MessageRelation,
  old: Record<string, unknown> | null,
  unchanged: string[],
): Record<string, unknown> {
  const n = cur.buf.readInt16BE(cur.pos);
  cur.pos += 2;
  const image: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const name = columnName(relation, i);
    let value = readValue(cur);
    if (value === UNCHANGED) {
      value = old?.[name];
      if (value === undefined) {
        unchanged.push(name);
        value = UNAVAILABLE_VALUE_PLACEHOLDER;
      }
    }
    image[name] = value;
  }
  return image;
}

/** A whole old row (REPLICA IDENTITY FULL), without the unchanged TOASTed values it cannot carry. */
function readOld(cur: MessageCursor, relation: Pgoutput.MessageRelation): Record<string, unknown> {
  const n = cur.buf.readInt16BE(cur.pos);
  cur.pos += 2;
  const old: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const name = columnName(relation, i);
    const value = readValue(cur);
    if (value !== UNCHANGED) old[name] = value;
  }
  return old;
}

/**
 * A key-only old row (REPLICA IDENTITY DEFAULT or INDEX): the identity columns, in the relation's key order; the
 * other columns come as nulls that stand for "not sent", so they are left out, as are null values.
 */
function readKey(cur: MessageCursor, relation: Pgoutput.MessageRelation): Record<string, unknown> {
  const n = cur.buf.readInt16BE(cur.pos);
  cur.pos += 2;
  const tuple: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (let i = 0; i < n; i++) {
    const name = columnName(relation, i);
    const value = readValue(cur);
    tuple[name] = value === UNCHANGED ? undefined : value;
  }
  const key: Record<string, unknown> = {};
  for (const name of relation.keyColumns) {
    const value = tuple[name];
    if (value !== null && value !== undefined) key[name] = value;
  }
  return key;
}
