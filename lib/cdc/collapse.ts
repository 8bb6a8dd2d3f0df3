import type { ChangeOp } from '../iceberg/upsert.js';
import { typeToString, type NestedField, type Schema } from '../iceberg/types.js';
import type { PrimitiveValue } from '../iceberg/values.js';
import { debeziumJsonToIceberg } from './debezium-values.js';
import {
  UNAVAILABLE_VALUE_PLACEHOLDER,
  UNAVAILABLE_VALUE_PLACEHOLDER_BASE64,
  changeEventToJson,
  type ChangeEvent,
  type DebeziumRow,
} from './envelope.js';
import {
  ChangeError,
  InvalidCdcOptionError,
  TruncateError,
  UnknownColumnError,
  ValueConversionError,
  describeSourceValue,
} from './errors.js';
import { formatLsn, parseLsn } from './lsn.js';
import { pgTextToIceberg } from './pg-types.js';
import { quarantineRecord, type QuarantineRecord } from './quarantine.js';
import { qualifiedName, type TableName } from './source-schema.js';

/**
 * Collapses a batch of change events per key into what `upsertRows` takes: for each key only the last change
 * counts, ordered by (commit LSN, change LSN, sequence), which is the source's exact order. Values are converted to
 * Iceberg values by the Iceberg schema; events that cannot be converted or applied become quarantine records.
 *
 * Exactly-once: each table's Iceberg snapshot summary holds {@link CDC_WATERMARK_PROPERTY}, the commit end LSN of
 * the last transaction applied. Transactions at or below it are skipped, so a retried merge (or a slot that went
 * back after a source crash) applies nothing twice. Commit end LSNs are strictly increasing in commit order; commit
 * LSNs are not a safe mark, since the next transaction's commit record can start exactly at this one's end.
 */

/** The snapshot summary property holding a table's watermark: the commit end LSN (`X/Y`) applied last. */
export const CDC_WATERMARK_PROPERTY = 'sluice.cdc.commit-lsn';

/** The watermark in a snapshot summary, or `undefined` when the table has none yet. */
export function readWatermark(summary: Readonly<Record<string, string>> | undefined): bigint | undefined {
  const text = summary?.[CDC_WATERMARK_PROPERTY];
  return text === undefined ? undefined : parseLsn(text);
}

/** Snapshot properties recording `lsn` as the watermark (for `upsertRows`'s `snapshotProperties`). */
export function watermarkProperties(lsn: bigint): Record<string, string> {
  return { [CDC_WATERMARK_PROPERTY]: formatLsn(lsn) };
}

/** One target table of a collapse. */
export interface CollapseTable {
  /** The source table whose events go to it. */
  readonly source: TableName;
  /** The Iceberg table's current schema; identifier fields are the key. Columns match source columns by name. */
  readonly schema: Schema;
  /** The table's committed watermark: transactions with a commit end LSN at or below it are skipped. */
  readonly watermark?: bigint;
}

/** Options of {@link collapseChanges}. */
export interface CollapseOptions {
  readonly tables: readonly CollapseTable[];
  /**
   * What a TRUNCATE of a target table does: `fail` throws {@link TruncateError}; `apply` drops the batch's earlier
   * changes for the table and sets {@link TableChanges.truncated}, and the merge must then delete every row of the
   * Iceberg table before applying the rest, in the same commit.
   * @default 'fail'
   */
  readonly onTruncate?: 'fail' | 'apply';
}

/** Columns whose values a row must take from the table's current row before it is upserted. */
export interface UnchangedValues {
  /** Index of the row in {@link TableChanges.ops}. */
  readonly row: number;
  readonly fieldIds: readonly number[];
  /** The key of the row to copy them from: the row's own key, or its old key when an update changed the key. */
  readonly lookupKey: readonly PrimitiveValue[];
  /** The event that left them unknown, for a quarantine record. */
  readonly origin: string;
  readonly raw: string;
  readonly commitLsn?: string;
}

/** The collapsed changes of one table. */
export interface TableChanges {
  /** `schema.table` of the source. */
  readonly table: string;
  /**
   * One array per top-level field id, one entry per row: full after-images for upserts, the key (others null) for
   * deletes. Entries listed in {@link TableChanges.unchanged} are `undefined` until
   * {@link fillUnchangedValues} fills them: never upsert before that.
   */
  readonly columns: Map<number, unknown[]>;
  readonly ops: ChangeOp[];
  /** Each row's key values, in identifier-field order. */
  readonly keys: PrimitiveValue[][];
  readonly unchanged: UnchangedValues[];
  /** Whether the table was truncated in the batch (`onTruncate: 'apply'`): delete all rows first. */
  readonly truncated: boolean;
  /** The highest commit end LSN among the table's applied or quarantined events; `undefined` when none. */
  readonly watermark: bigint | undefined;
  /** Events for the table that were kept (before collapsing). */
  readonly events: number;
  /** Events skipped because their transaction is at or below the table's watermark. */
  readonly skippedBelowWatermark: number;
}

/** The result of {@link collapseChanges}. */
export interface CollapsedBatch {
  /** By `schema.table`; every target table has an entry, possibly empty. */
  readonly tables: Map<string, TableChanges>;
  /** Events that cannot be applied, for the quarantine. */
  readonly quarantined: QuarantineRecord[];
}

/** A field's slot in {@link KeyState.values} that the change did not set (unchanged TOAST). */
const NOT_SET: unique symbol = Symbol('not set');
/** Shared by every row without unknown values; never mutated. */
const NO_IDS: ReadonlySet<number> = new Set<number>();

interface KeyState {
  key: PrimitiveValue[];
  op: ChangeOp;
  /** One entry per top-level field, in schema order ({@link NOT_SET} when the change did not set it); empty for deletes. */
  values: unknown[];
  /** Field ids whose value is unknown (unchanged TOAST with no earlier image in the batch). */
  unknown: ReadonlySet<number>;
  lookupKey: PrimitiveValue[];
  order: number;
  /** The event, whose JSON (`raw`) is built only when a record needs it: serializing every event dominated. */
  event: ChangeEvent;
  commitLsn?: string;
}

interface TableState {
  target: CollapseTable;
  /** `schema.table` of the source. */
  name: string;
  keyFields: NestedField[];
  /** Each top-level field's index among the key fields, -1 for non-key fields (schema order). */
  keyIndexOf: number[];
  fieldsByName: Map<string, NestedField>;
  keys: Map<string | number, KeyState>;
  truncated: boolean;
  watermark: bigint | undefined;
  events: number;
  skipped: number;
}

function isOrdered(events: readonly ChangeEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (comparePositions(events[i - 1]!, events[i]!) > 0) return false;
  return true;
}

/** Compares two events' positions: commit LSN, then change LSN, then sequence. */
export function comparePositions(a: ChangeEvent, b: ChangeEvent): number {
  const x = a.position;
  const y = b.position;
  if (x.commitLsn !== y.commitLsn) return x.commitLsn < y.commitLsn ? -1 : 1;
  if (x.changeLsn !== y.changeLsn) return x.changeLsn < y.changeLsn ? -1 : 1;
  return x.sequence - y.sequence;
}

const keyReplacer = (_k: string, v: unknown) =>
  typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('hex')}` : v;

function keyText(values: readonly unknown[]): string {
  // One integer or string column is the common key: skip JSON for it (a map key per change adds up).
  if (values.length === 1) {
    const v = values[0];
    if (typeof v === 'bigint') return `[${v}n]`;
    if (typeof v === 'number') return `[${v}]`;
  }
  return JSON.stringify(values, keyReplacer);
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A key as a `Map` key: a one-column integer key that a double holds exactly is that number (no string per event),
 * any other key its {@link keyText}. A table's key has one type, so both forms never stand for the same key.
 */
function keyId(values: readonly unknown[]): string | number {
  if (values.length === 1) {
    const v = values[0];
    if (typeof v === 'bigint' && v >= -MAX_EXACT && v <= MAX_EXACT) return Number(v);
    if (typeof v === 'number' && Number.isInteger(v)) return v;
  }
  return keyText(values);
}

/**
 * Collapses `events` (any order) per table and key.
 *
 * @throws TruncateError for a truncate of a target table with `onTruncate: 'fail'`; UnknownColumnError when an
 *   event has a column the Iceberg schema lacks (evolve the schema, then collapse again).
 */
export function collapseChanges(events: readonly ChangeEvent[], options: CollapseOptions): CollapsedBatch {
  const states = new Map<string, TableState>();
  for (const target of options.tables) {
    const name = qualifiedName(target.source);
    const fieldsByName = new Map(target.schema.fields.map((f) => [f.name, f]));
    const keyFields = target.schema.identifierFieldIds.map((id) => target.schema.fields.find((f) => f.id === id));
    if (keyFields.length === 0 || keyFields.some((f) => f === undefined)) {
      throw new InvalidCdcOptionError(
        'tables',
        `the Iceberg table for "${name}" has no top-level identifier fields; the CDC merge needs the key (set ` +
          'identifier fields, e.g. by onboarding the table again)',
      );
    }
    states.set(name, {
      target,
      name,
      keyFields: keyFields as NestedField[],
      keyIndexOf: target.schema.fields.map((f) => target.schema.identifierFieldIds.indexOf(f.id)),
      fieldsByName,
      keys: new Map(),
      truncated: false,
      watermark: undefined,
      events: 0,
      skipped: 0,
    });
  }
  const quarantined: QuarantineRecord[] = [];
  // Both readers hand events over in source order already; checking is O(n), sorting a copy is not.
  const ordered = isOrdered(events) ? events : [...events].sort(comparePositions);
  // Consecutive events mostly share a transaction (and a table): format its commit LSN once.
  let lastCommitLsn = -1n;
  let lastCommitText: string | undefined;
  for (let order = 0; order < ordered.length; order++) {
    const event = ordered[order]!;
    const source = event.envelope.source;
    const table = `${source.schema}.${source.table}`;
    if (event.position.commitLsn !== lastCommitLsn) {
      lastCommitLsn = event.position.commitLsn;
      lastCommitText = lastCommitLsn > 0n ? formatLsn(lastCommitLsn) : undefined;
    }
    const commitLsn = lastCommitText;
    const state = states.get(table);
    if (!state) {
      quarantined.push(
        quarantineEvent(
          event,
          table,
          commitLsn,
          new ChangeError(
            'unknown-table',
            `change for table "${table}" (${event.origin}), which this merge does not target ` +
              `(${[...states.keys()].join(', ') || 'none'}); add the table to the pipeline or remove it from the source`,
          ),
        ),
      );
      continue;
    }
    const endLsn = event.position.commitEndLsn;
    if (endLsn > 0n && state.target.watermark !== undefined && endLsn <= state.target.watermark) {
      state.skipped += 1;
      continue;
    }
    state.events += 1;
    if (endLsn > 0n && (state.watermark === undefined || endLsn > state.watermark)) state.watermark = endLsn;
    try {
      applyEvent(state, event, order, options.onTruncate ?? 'fail', commitLsn);
    } catch (err) {
      if (err instanceof ChangeError) quarantined.push(quarantineEvent(event, table, commitLsn, err));
      else throw err;
    }
  }

  const tables = new Map<string, TableChanges>();
  for (const [name, state] of states) tables.set(name, tableChanges(name, state));
  return { tables, quarantined };
}

function quarantineEvent(
  event: ChangeEvent,
  table: string,
  commitLsn: string | undefined,
  err: unknown,
): QuarantineRecord {
  return quarantineRecord(err, changeEventToJson(event), event.origin, {
    table,
    ...(commitLsn === undefined ? {} : { commitLsn }),
  });
}

function keyState(
  key: PrimitiveValue[],
  op: ChangeOp,
  values: unknown[],
  unknown: ReadonlySet<number>,
  lookupKey: PrimitiveValue[],
  order: number,
  event: ChangeEvent,
  commitLsn: string | undefined,
): KeyState {
  const state: KeyState = { key, op, values, unknown, lookupKey, order, event };
  if (commitLsn !== undefined) state.commitLsn = commitLsn;
  return state;
}

function applyEvent(
  state: TableState,
  event: ChangeEvent,
  order: number,
  onTruncate: 'fail' | 'apply',
  commitLsn: string | undefined,
): void {
  const { op, before, after } = event.envelope;
  if (op === 't') {
    if (onTruncate === 'fail') throw new TruncateError(state.name, commitLsn ?? event.origin);
    state.keys.clear();
    state.truncated = true;
    return;
  }
  checkColumns(state, event, before, after, commitLsn);
  if (op === 'd') {
    const key = readKey(state, event, before, 'before');
    state.keys.set(keyId(key), keyState(key, 'delete', [], NO_IDS, key, order, event, commitLsn));
    return;
  }
  const row = after as DebeziumRow;
  const key = readKey(state, event, row, 'after');
  const text = keyId(key);
  const unchanged = unchangedFieldIds(state, event, row);
  const fields = state.target.schema.fields;
  const values = new Array<unknown>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (unchanged !== NO_IDS && unchanged.has(field.id)) {
      values[i] = NOT_SET;
      continue;
    }
    const value = convert(event, field, row[field.name] ?? null);
    if (value === null && field.required) {
      throw new ValueConversionError(typeToString(field.type), 'null', 'the column is required', field.name);
    }
    values[i] = value;
  }
  // An update that changed the key removes the old key's row: with REPLICA IDENTITY DEFAULT the old key arrives in
  // `before` only then; with FULL `before` is always the whole old row.
  let previous = state.keys.get(text);
  if (op === 'u' && before && state.keyFields.every((f) => before[f.name] !== undefined)) {
    const oldKey = readKey(state, event, before, 'before');
    const oldText = keyId(oldKey);
    if (oldText !== text) {
      previous = state.keys.get(oldText) ?? keyState(oldKey, 'upsert', [], NO_IDS, oldKey, order, event, commitLsn);
      state.keys.set(oldText, keyState(oldKey, 'delete', [], NO_IDS, oldKey, order, event, commitLsn));
    }
  }
  let unknown: ReadonlySet<number> = NO_IDS;
  if (unchanged !== NO_IDS) {
    const ids = new Set<number>();
    for (let i = 0; i < fields.length; i++) {
      const id = fields[i]!.id;
      if (!unchanged.has(id)) continue;
      // A previous state with no values is a delete, or the placeholder of an old key this batch never saw.
      const earlier = previous && previous.op === 'upsert' && previous.values.length > 0 ? previous.values[i] : NOT_SET;
      if (earlier !== NOT_SET && !previous!.unknown.has(id)) values[i] = earlier;
      else ids.add(id);
    }
    if (ids.size > 0) unknown = ids;
  }
  const lookupKey = previous && previous.op === 'upsert' ? previous.lookupKey : key;
  state.keys.set(text, keyState(key, 'upsert', values, unknown, lookupKey, order, event, commitLsn));
}

function checkColumns(
  state: TableState,
  event: ChangeEvent,
  before: DebeziumRow | null,
  after: DebeziumRow | null,
  commitLsn: string | undefined,
): void {
  let unknown: Set<string> | undefined;
  for (const row of [before, after]) {
    if (!row) continue;
    for (const name in row) {
      if (Object.hasOwn(row, name) && !state.fieldsByName.has(name)) (unknown ??= new Set()).add(name);
    }
  }
  if (unknown !== undefined) {
    throw new UnknownColumnError(state.name, [...unknown], commitLsn ?? event.origin);
  }
}

function convert(event: ChangeEvent, field: NestedField, value: unknown): unknown {
  try {
    if (event.encoding === 'pg-text') {
      if (value !== null && typeof value !== 'string') {
        throw new ValueConversionError(typeToString(field.type), describeSourceValue(value), 'expected text');
      }
      return pgTextToIceberg(field.type, value);
    }
    return debeziumJsonToIceberg(field.type, value, event.fieldSchemas?.get(field.name));
  } catch (err) {
    if (err instanceof ValueConversionError) throw err.inColumn(field.name);
    throw err;
  }
}

function readKey(state: TableState, event: ChangeEvent, row: DebeziumRow | null, image: string): PrimitiveValue[] {
  const fields = state.keyFields;
  const key = new Array<PrimitiveValue>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const value = row?.[field.name];
    const converted = value === undefined || isUnavailable(event, field, value) ? null : convert(event, field, value);
    if (converted === null) {
      throw new ChangeError(
        'null-key',
        `change for table "${state.name}" (${event.origin}) has no value for key column ` +
          `"${field.name}" in its ${image} image; check the table's replica identity (DEFAULT needs a primary key)`,
        field.name,
      );
    }
    key[i] = converted as PrimitiveValue;
  }
  return key;
}

function isUnavailable(event: ChangeEvent, field: NestedField, value: unknown): boolean {
  if (event.unchangedColumns.includes(field.name)) return true;
  if (event.encoding !== 'debezium-json') return false;
  if (value === UNAVAILABLE_VALUE_PLACEHOLDER) return true;
  if (field.type.kind === 'binary' && value === UNAVAILABLE_VALUE_PLACEHOLDER_BASE64) return true;
  // Debezium writes an unavailable array as a one-element array of the placeholder.
  return Array.isArray(value) && value.length === 1 && value[0] === UNAVAILABLE_VALUE_PLACEHOLDER;
}

/** The field ids of `row` whose values were not sent; {@link NO_IDS} (shared) when there are none. */
function unchangedFieldIds(state: TableState, event: ChangeEvent, row: DebeziumRow): ReadonlySet<number> {
  // pgoutput events list them; only Debezium files carry placeholders without a list.
  if (event.encoding === 'pg-text' && event.unchangedColumns.length === 0) return NO_IDS;
  let ids: Set<number> | undefined;
  for (const field of state.target.schema.fields) {
    if (field.name in row && isUnavailable(event, field, row[field.name])) (ids ??= new Set()).add(field.id);
  }
  return ids ?? NO_IDS;
}

function tableChanges(name: string, state: TableState): TableChanges {
  const fields = state.target.schema.fields;
  const columns = new Map<number, unknown[]>(fields.map((f) => [f.id, []]));
  const targets = fields.map((f) => columns.get(f.id)!);
  const ops: ChangeOp[] = [];
  const keys: PrimitiveValue[][] = [];
  const unchanged: UnchangedValues[] = [];
  const rows = [...state.keys.values()].sort((a, b) => a.order - b.order);
  for (let index = 0; index < rows.length; index++) {
    const row = rows[index]!;
    ops.push(row.op);
    keys.push(row.key);
    const isDelete = row.op === 'delete';
    for (let i = 0; i < fields.length; i++) {
      const keyIndex = state.keyIndexOf[i]!;
      let value: unknown;
      if (keyIndex >= 0) value = row.key[keyIndex];
      else if (isDelete) value = null;
      else if (row.unknown !== NO_IDS && row.unknown.has(fields[i]!.id)) value = undefined;
      else {
        value = row.values[i];
        if (value === NOT_SET) value = undefined;
      }
      targets[i]!.push(value);
    }
    if (row.op === 'upsert' && row.unknown.size > 0) {
      unchanged.push({
        row: index,
        fieldIds: [...row.unknown],
        lookupKey: row.lookupKey,
        origin: row.event.origin,
        raw: changeEventToJson(row.event),
        ...(row.commitLsn === undefined ? {} : { commitLsn: row.commitLsn }),
      });
    }
  }
  return {
    table: name,
    columns,
    ops,
    keys,
    unchanged,
    truncated: state.truncated,
    watermark: state.watermark,
    events: state.events,
    skippedBelowWatermark: state.skipped,
  };
}

/**
 * Fills the values of unchanged TOASTed columns from the table's current rows (which the merge reads by key from
 * the Iceberg table). A row whose current row is missing, or lacks a value, cannot be completed: it is removed and
 * quarantined rather than written with a wrong value.
 *
 * @param lookup the current row by key: field id → value, or `undefined` when the key is not in the table.
 */
export function fillUnchangedValues(
  changes: TableChanges,
  lookup: (key: readonly PrimitiveValue[]) => ReadonlyMap<number, unknown> | undefined,
): { changes: TableChanges; quarantined: QuarantineRecord[] } {
  if (changes.unchanged.length === 0) return { changes, quarantined: [] };
  const columns = new Map([...changes.columns].map(([id, values]) => [id, [...values]]));
  const drop = new Set<number>();
  const quarantined: QuarantineRecord[] = [];
  for (const entry of changes.unchanged) {
    const current = lookup(entry.lookupKey);
    const missing = entry.fieldIds.filter((id) => !current || !current.has(id));
    if (missing.length > 0) {
      drop.add(entry.row);
      quarantined.push(
        quarantineRecord(
          new ChangeError(
            'unchanged-value-unavailable',
            `change for table "${changes.table}" (${entry.origin}) kept TOASTed column(s) unchanged, but the ` +
              `Iceberg table has no current row for key ${keyText(entry.lookupKey)} to copy them from; set ` +
              'REPLICA IDENTITY FULL on the source table so that updates carry whole rows',
          ),
          entry.raw,
          entry.origin,
          { table: changes.table, ...(entry.commitLsn === undefined ? {} : { commitLsn: entry.commitLsn }) },
        ),
      );
      continue;
    }
    for (const id of entry.fieldIds) columns.get(id)![entry.row] = current!.get(id);
  }
  const keep = (_: unknown, i: number) => !drop.has(i);
  return {
    changes: {
      ...changes,
      columns: new Map([...columns].map(([id, values]) => [id, values.filter(keep)])),
      ops: changes.ops.filter(keep),
      keys: changes.keys.filter(keep),
      unchanged: [],
    },
    quarantined,
  };
}
