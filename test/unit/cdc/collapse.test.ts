import { describe, expect, it } from 'vitest';
import {
  CDC_WATERMARK_PROPERTY,
  collapseChanges,
  fillUnchangedValues,
  readWatermark,
  watermarkProperties,
  type CollapseTable,
} from '../../../lib/cdc/collapse.js';
import {
  UNAVAILABLE_VALUE_PLACEHOLDER,
  buildEnvelope,
  type ChangeEvent,
  type DebeziumOp,
  type DebeziumRow,
} from '../../../lib/cdc/envelope.js';
import { InvalidCdcOptionError, TruncateError, UnknownColumnError } from '../../../lib/cdc/errors.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
    { id: 3, name: 'amount', required: false, type: Types.decimal(10, 2) },
    { id: 4, name: 'doc', required: false, type: Types.string },
  ],
};
const orders: CollapseTable = { source: { schema: 'public', table: 'orders' }, schema };

let sequence = 0;
/** A pgoutput-style event: transaction `txn` commits at 0/txn*100, ends at +10; the change sits at +offset. */
function event(
  txn: number,
  offset: number,
  op: DebeziumOp,
  before: DebeziumRow | null,
  after: DebeziumRow | null,
  extra: { unchanged?: string[]; table?: string } = {},
): ChangeEvent {
  const commitLsn = BigInt(txn * 100);
  const changeLsn = BigInt(txn * 100 - 50 + offset);
  return {
    envelope: buildEnvelope({
      op,
      before,
      after,
      table: { schema: 'public', table: extra.table ?? 'orders' },
      db: 'shop',
      serverName: 'shop',
      txId: txn,
      commitLsn,
      changeLsn,
      commitTimeMicros: 0n,
      nowMs: 0,
    }),
    encoding: 'pg-text',
    position: { commitLsn, commitEndLsn: commitLsn + 10n, changeLsn, sequence: sequence++ },
    unchangedColumns: extra.unchanged ?? [],
    origin: `test txn ${txn}`,
  };
}
const row = (id: number, name: string | null, amount: string | null = null, doc: string | null = null) => ({
  id: String(id),
  name,
  amount,
  doc,
});

function rowsOf(events: ChangeEvent[], table: CollapseTable = orders) {
  const batch = collapseChanges(events, { tables: [table] });
  const changes = batch.tables.get('public.orders')!;
  return {
    batch,
    changes,
    rows: changes.ops.map((op, i) => [op, ...schema.fields.map((f) => changes.columns.get(f.id)![i])]),
  };
}

describe('collapsing a batch per key', () => {
  it('keeps the last change per key, in (commit LSN, change LSN) order whatever the input order', () => {
    const events = [
      event(3, 1, 'u', null, row(1, 'third', '3.00')),
      event(1, 1, 'c', null, row(1, 'first', '1.00')),
      event(2, 2, 'u', null, row(1, 'second', '2.00')),
      event(1, 2, 'c', null, row(2, 'two')),
      event(2, 1, 'd', { id: '2' }, null),
    ];
    const { rows, changes } = rowsOf(events);
    expect(rows).toEqual([
      ['delete', 2n, null, null, null],
      ['upsert', 1n, 'third', { unscaled: 300n, scale: 2 }, null],
    ]);
    expect(changes.keys).toEqual([[2n], [1n]]);
    expect(changes.watermark).toBe(310n);
    expect(changes.events).toBe(5);
  });

  it('orders changes that share an LSN (a multi-row insert) by their sequence', () => {
    const a = event(1, 1, 'c', null, row(1, 'a'));
    const b = { ...event(1, 1, 'u', null, row(1, 'b')) };
    expect(a.position.changeLsn).toBe(b.position.changeLsn);
    expect(rowsOf([b, a]).rows).toEqual([['upsert', 1n, 'b', null, null]]);
  });

  it('turns a key change into a delete of the old key and an upsert of the new one', () => {
    const { rows } = rowsOf([event(1, 1, 'c', null, row(1, 'x')), event(2, 1, 'u', { id: '1' }, row(5, 'x'))]);
    expect(rows).toEqual([
      ['delete', 1n, null, null, null],
      ['upsert', 5n, 'x', null, null],
    ]);
  });

  it('skips transactions at or below the watermark (exactly once on retry)', () => {
    const events = [
      event(1, 1, 'c', null, row(1, 'old')),
      event(2, 1, 'c', null, row(2, 'at watermark')),
      event(3, 1, 'c', null, row(3, 'new')),
    ];
    const { rows, changes } = rowsOf(events, { ...orders, watermark: 210n });
    expect(rows.map((r) => r[1])).toEqual([3n]);
    expect(changes.skippedBelowWatermark).toBe(2);
    expect(changes.watermark).toBe(310n);
    const { changes: none } = rowsOf(events, { ...orders, watermark: 310n });
    expect(none.ops).toEqual([]);
    expect(none.watermark).toBeUndefined();
  });

  it('stores and reads the watermark as an LSN in the snapshot summary', () => {
    expect(watermarkProperties(0x1528d10n)).toEqual({ [CDC_WATERMARK_PROPERTY]: '0/1528D10' });
    expect(readWatermark({ [CDC_WATERMARK_PROPERTY]: '00000000/01528D10' })).toBe(0x1528d10n);
    expect(readWatermark({})).toBeUndefined();
  });

  it('quarantines type mismatches, null keys and unknown tables with the raw event, applying the rest', () => {
    const events = [
      event(1, 1, 'c', null, row(1, 'ok')),
      event(1, 2, 'c', null, { ...row(2, 'bad'), amount: 'twelve' }),
      event(1, 3, 'c', null, { ...row(3, 'null key'), id: null }),
      event(1, 4, 'c', null, row(4, 'elsewhere'), { table: 'customers' }),
      event(1, 5, 'c', null, { ...row(5, 'too precise'), amount: '1.234' }),
    ];
    const { rows, batch } = rowsOf(events);
    expect(rows.map((r) => r[1])).toEqual([1n]);
    expect(batch.quarantined.map((q) => [q.errorKind, q.failureType])).toEqual([
      ['value-conversion', 'InvalidInput'],
      ['null-key', 'InvalidInput'],
      ['unknown-table', 'InvalidInput'],
      ['value-conversion', 'InvalidInput'],
    ]);
    const mismatch = batch.quarantined[0]!;
    expect(mismatch.message).toMatch(/column "amount": cannot convert "twelve" to decimal\(10, 2\)/);
    expect(JSON.parse(mismatch.raw).after.amount).toBe('twelve');
    expect(mismatch.table).toBe('public.orders');
    expect(mismatch.commitLsn).toBe('0/64');
    expect(batch.quarantined[2]!.message).toMatch(/"public\.customers".*does not target/);
  });

  it('refuses a target table without identifier fields', () => {
    expect(() =>
      collapseChanges([], { tables: [{ ...orders, schema: { ...schema, identifierFieldIds: [] } }] }),
    ).toThrow(InvalidCdcOptionError);
  });

  it('refuses columns the Iceberg schema does not have yet', () => {
    expect(() => rowsOf([event(1, 1, 'c', null, { ...row(1, 'x'), added: '1' })])).toThrow(UnknownColumnError);
  });

  it('fails on a truncate by default, and with apply drops earlier changes and flags the table', () => {
    const events = [
      event(1, 1, 'c', null, row(1, 'gone')),
      event(2, 1, 't', null, null),
      event(3, 1, 'c', null, row(2, 'kept')),
    ];
    expect(() => collapseChanges(events, { tables: [orders] })).toThrow(TruncateError);
    const changes = collapseChanges(events, { tables: [orders], onTruncate: 'apply' }).tables.get('public.orders')!;
    expect(changes.truncated).toBe(true);
    expect(changes.keys).toEqual([[2n]]);
  });

  it('keeps unchanged TOASTed values: from an earlier image in the batch, else from the current row', () => {
    const events = [
      event(1, 1, 'c', null, row(1, 'a', null, 'big document')),
      event(2, 1, 'u', null, { ...row(1, 'b'), doc: UNAVAILABLE_VALUE_PLACEHOLDER }, { unchanged: ['doc'] }),
      event(2, 2, 'u', null, { ...row(2, 'c'), doc: UNAVAILABLE_VALUE_PLACEHOLDER }, { unchanged: ['doc'] }),
      event(2, 3, 'u', null, { ...row(3, 'd'), doc: UNAVAILABLE_VALUE_PLACEHOLDER }, { unchanged: ['doc'] }),
    ];
    const { changes } = rowsOf(events);
    // Key 1 took the document from its insert earlier in the batch; keys 2 and 3 need the table's current value.
    expect(changes.columns.get(4)).toEqual(['big document', undefined, undefined]);
    expect(changes.unchanged.map((u) => [u.row, u.fieldIds, u.lookupKey])).toEqual([
      [1, [4], [2n]],
      [2, [4], [3n]],
    ]);
    const current = new Map([['2', new Map<number, unknown>([[4, 'current doc of 2']])]]);
    const filled = fillUnchangedValues(changes, (key) => current.get(String(key[0])));
    expect(filled.changes.columns.get(4)).toEqual(['big document', 'current doc of 2']);
    expect(filled.changes.keys).toEqual([[1n], [2n]]);
    expect(filled.changes.unchanged).toEqual([]);
    expect(filled.quarantined.map((q) => q.errorKind)).toEqual(['unchanged-value-unavailable']);
    expect(filled.quarantined[0]!.message).toMatch(/REPLICA IDENTITY FULL/);
  });

  it('looks unchanged values up by the old key when the update changed the key', () => {
    const events = [
      event(1, 1, 'u', { id: '1' }, { ...row(9, 'moved'), doc: UNAVAILABLE_VALUE_PLACEHOLDER }, { unchanged: ['doc'] }),
    ];
    const { changes } = rowsOf(events);
    expect(changes.ops).toEqual(['delete', 'upsert']);
    expect(changes.unchanged).toMatchObject([{ row: 1, fieldIds: [4], lookupKey: [1n] }]);
  });
});

describe('collapsing Debezium JSON events', () => {
  it('treats the placeholder as unchanged and orders by read sequence', () => {
    const make = (op: DebeziumOp, after: DebeziumRow, seq: number): ChangeEvent => ({
      envelope: { ...event(1, 1, op, null, after).envelope },
      encoding: 'debezium-json',
      position: { commitLsn: 0n, commitEndLsn: 0n, changeLsn: 0n, sequence: seq },
      unchangedColumns: [],
      origin: `line ${seq}`,
    });
    const batch = collapseChanges(
      [
        make('u', { id: 1, name: 'second', amount: '2.50', doc: UNAVAILABLE_VALUE_PLACEHOLDER }, 1),
        make('c', { id: 1, name: 'first', amount: 1.5, doc: 'kept' }, 0),
      ],
      { tables: [{ ...orders, watermark: 999n }] },
    );
    const changes = batch.tables.get('public.orders')!;
    expect(changes.ops).toEqual(['upsert']);
    expect(changes.columns.get(2)).toEqual(['second']);
    expect(changes.columns.get(3)).toEqual([{ unscaled: 250n, scale: 2 }]);
    expect(changes.columns.get(4)).toEqual(['kept']);
    // Files carry no LSNs: their high-water mark, not the LSN watermark, makes them exactly-once.
    expect(changes.skippedBelowWatermark).toBe(0);
  });
});
