import { stringify } from 'lossless-json';
import type { TableName } from './source-schema.js';

/**
 * The internal change-event format: the value envelope of Debezium's PostgreSQL connector (field names from
 * `io.debezium.connector.postgresql.SourceInfo` / `PostgresSourceInfoStructMaker`), so that events from our own
 * pgoutput reader and from Debezium change files flow through the same merge.
 */

/** `c` insert, `u` update, `d` delete, `r` snapshot read, `t` truncate. */
export type DebeziumOp = 'c' | 'u' | 'd' | 'r' | 't';

/** A row image: column name → value in the event's {@link ValueEncoding}. */
export type DebeziumRow = Record<string, unknown>;

/** The `source` block of a Debezium PostgreSQL change event. */
export interface DebeziumSource {
  /** Producer version; ours is {@link SLUICE_SOURCE_VERSION}. */
  readonly version: string;
  /** Always `postgresql` for this connector. */
  readonly connector: string;
  /** The logical server name (Debezium's `topic.prefix`). */
  readonly name: string;
  /** Commit time of the change's transaction, in ms since the epoch (0 for snapshot reads). */
  readonly ts_ms: number;
  /** `true` / `last` / `first` / `incremental` during a snapshot, `false` when streaming. */
  readonly snapshot: string;
  readonly db: string;
  /**
   * An ordering token: a JSON array of two decimal LSN strings. Debezium puts the last commit LSN it had processed
   * first; ours puts the commit LSN of the event's own transaction, which orders events the same way and does not
   * depend on where a batch starts. Consumers should treat it as opaque.
   */
  readonly sequence: string | null;
  readonly schema: string;
  readonly table: string;
  /** The transaction id (xid). */
  readonly txId: number | null;
  /** The change's LSN as a 64-bit integer (exact below 2^53 bytes of WAL, about 9 PB). */
  readonly lsn: number | null;
  readonly xmin: number | null;
}

/** The `transaction` block Debezium adds with `provide.transaction.metadata`. */
export interface DebeziumTransaction {
  /** `<txId>:<commit LSN as an integer>`, as Debezium writes it. */
  readonly id: string;
  /** 1-based position of the event in its transaction. */
  readonly total_order: number;
  /** 1-based position of the event among its transaction's events for the same table. */
  readonly data_collection_order: number;
}

/** A Debezium change event value. */
export interface DebeziumEnvelope {
  /** The old row: the whole row with REPLICA IDENTITY FULL, only the key columns otherwise, `null` for inserts. */
  readonly before: DebeziumRow | null;
  /** The new row; `null` for deletes and truncates. */
  readonly after: DebeziumRow | null;
  readonly source: DebeziumSource;
  readonly op: DebeziumOp;
  /** When the event was produced, in ms since the epoch. */
  readonly ts_ms: number;
  readonly transaction?: DebeziumTransaction | null;
}

/** The `source.version` our pgoutput reader writes. */
export const SLUICE_SOURCE_VERSION = 'sluice-cdc-1';

/**
 * Debezium's default `unavailable.value.placeholder`: the value of a column whose TOASTed value did not change
 * and was not sent (REPLICA IDENTITY DEFAULT). Debezium writes it as a string, or as these bytes (base64 in JSON)
 * for bytea columns.
 */
export const UNAVAILABLE_VALUE_PLACEHOLDER = '__debezium_unavailable_value';

/** The placeholder's UTF-8 bytes in base64, as Debezium's JSON converter writes it for a bytea column. */
export const UNAVAILABLE_VALUE_PLACEHOLDER_BASE64 = Buffer.from(UNAVAILABLE_VALUE_PLACEHOLDER).toString('base64');

/**
 * How the row values of an event are encoded: `pg-text` is PostgreSQL's text output (strings and nulls, what
 * pgoutput and a text-mode `SELECT` send), `debezium-json` is what Debezium's JSON converter writes (numbers, base64
 * bytes, epoch-based temporal values…). Both are converted to Iceberg values by the Iceberg type of the column.
 */
export type ValueEncoding = 'pg-text' | 'debezium-json';

/** Where a change sits in the source's order. Later positions win when a batch is collapsed by key. */
export interface ChangePosition {
  /** LSN of the transaction's commit record: orders transactions. 0 for snapshot reads and Debezium files. */
  readonly commitLsn: bigint;
  /** End of the transaction's commit record: the watermark and the slot position after it is applied. */
  readonly commitEndLsn: bigint;
  /** The change's own LSN; several changes can share one (a multi-row insert is one WAL record). */
  readonly changeLsn: bigint;
  /** The change's position in the batch, the final tie-breaker (and the only order for Debezium files). */
  readonly sequence: number;
}

/** A Debezium Connect schema field, from a change file written with `schemas.enable=true`. */
export interface ConnectField {
  readonly field: string;
  /** Connect type: `int32`, `int64`, `bytes`, `string`, `struct`, `array`… */
  readonly type: string;
  /** Logical type name: `io.debezium.time.MicroTimestamp`, `org.apache.kafka.connect.data.Decimal`… */
  readonly name?: string;
  readonly parameters?: Readonly<Record<string, string>>;
  readonly items?: ConnectField;
  readonly optional?: boolean;
}

/** One change, as the merge consumes it. */
export interface ChangeEvent {
  readonly envelope: DebeziumEnvelope;
  readonly encoding: ValueEncoding;
  readonly position: ChangePosition;
  /**
   * Columns of `after` whose values were not sent because they are TOASTed and did not change (REPLICA IDENTITY
   * DEFAULT); `after` holds {@link UNAVAILABLE_VALUE_PLACEHOLDER} for them. The merge must keep the row's current
   * value for these columns, never write the placeholder or a null.
   */
  readonly unchangedColumns: readonly string[];
  /** Connect schemas of the row's fields by column name, when the change file carried them. */
  readonly fieldSchemas?: ReadonlyMap<string, ConnectField>;
  /** Where the event came from, for quarantine records: `slot sluice_orders at 0/16B3748`, `s3://…/f.json:12`. */
  readonly origin: string;
}

/** What {@link buildEnvelope} needs. */
export interface EnvelopeInput {
  readonly op: DebeziumOp;
  readonly before: DebeziumRow | null;
  readonly after: DebeziumRow | null;
  readonly table: TableName;
  readonly db: string;
  /** Logical server name. */
  readonly serverName: string;
  readonly txId: number | null;
  readonly commitLsn: bigint;
  readonly changeLsn: bigint;
  /** Commit time in µs since the epoch (pgoutput's resolution); 0 when unknown. */
  readonly commitTimeMicros: bigint;
  /** Production time in ms since the epoch. */
  readonly nowMs: number;
  /** @default 'false' */
  readonly snapshot?: string;
  /** Positions within the transaction (1-based), when known. */
  readonly totalOrder?: number;
  readonly dataCollectionOrder?: number;
}

/** Builds a Debezium envelope with the PostgreSQL connector's field names. */
export function buildEnvelope(input: EnvelopeInput): DebeziumEnvelope {
  const streaming = input.txId !== null && input.commitLsn > 0n;
  return {
    before: input.before,
    after: input.after,
    source: {
      version: SLUICE_SOURCE_VERSION,
      connector: 'postgresql',
      name: input.serverName,
      ts_ms: Number(input.commitTimeMicros / 1000n),
      snapshot: input.snapshot ?? 'false',
      db: input.db,
      // JSON of two decimal strings; digits need no escaping, so a template gives the same text as JSON.stringify.
      sequence: streaming ? `["${input.commitLsn}","${input.changeLsn}"]` : null,
      schema: input.table.schema,
      table: input.table.table,
      txId: input.txId,
      lsn: input.changeLsn > 0n ? Number(input.changeLsn) : null,
      xmin: null,
    },
    op: input.op,
    ts_ms: input.nowMs,
    transaction:
      streaming && input.totalOrder !== undefined
        ? {
            id: `${input.txId}:${input.commitLsn}`,
            total_order: input.totalOrder,
            data_collection_order: input.dataCollectionOrder ?? input.totalOrder,
          }
        : null,
  };
}

/** The envelope as one line of JSON, 64-bit integers (bigints) written exactly. */
export function envelopeToJson(envelope: DebeziumEnvelope): string {
  return stringify(envelope, (_key, value: unknown) =>
    value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
  ) as string;
}

/**
 * An event as the raw line a quarantine keeps: the envelope, and for a change-file event that came with a Connect
 * schema, that schema's row fields too (`{schema, payload}`), so that a replay converts its values the same way
 * (a `precise` decimal is base64 bytes that only the Connect field's scale makes a number).
 */
export function changeEventToJson(event: ChangeEvent): string {
  const payload = envelopeToJson(event.envelope);
  if (!event.fieldSchemas) return payload;
  // lossless-json, like the envelope: a schema parsed from a line can hold 64-bit integers (a column default).
  const fields = stringify([...event.fieldSchemas.values()]) as string;
  return `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","optional":true,"fields":${fields}}]},"payload":${payload}}`;
}
