import { describe, expect, it } from 'vitest';
import { SourceTableError } from '../../../lib/cdc/errors.js';
import type { PgType } from '../../../lib/cdc/pg-types.js';
import {
  buildIcebergSchema,
  diffSourceTables,
  quoteIdent,
  quoteTable,
  type SourceColumn,
  type SourceTable,
} from '../../../lib/cdc/source-schema.js';
import { typeToString } from '../../../lib/iceberg/types.js';

const t = (name: string, typmod = -1, display = name): PgType => ({ kind: 'base', name, typmod, display });
const col = (attnum: number, name: string, type: PgType, notNull = false): SourceColumn => ({
  attnum,
  name,
  type,
  notNull,
});
const numeric = (p: number, s: number) => t('numeric', ((p << 16) | s) + 4, `numeric(${p},${s})`);

const orders: SourceTable = {
  schema: 'public',
  table: 'orders',
  oid: 1,
  relkind: 'r',
  columns: [
    col(1, 'id', t('int8', -1, 'bigint'), true),
    col(2, 'region', t('text'), true),
    col(3, 'qty', t('int4', -1, 'integer')),
    col(4, 'amount', numeric(10, 2)),
    col(5, 'tags', { kind: 'array', name: '_text', typmod: -1, element: t('text'), display: 'text[]' }),
    col(6, 'price', t('float8', -1, 'double precision')),
  ],
  primaryKey: ['id', 'region'],
  replicaIdentity: 'default',
  replicaIdentityColumns: ['id', 'region'],
};

describe('source table → Iceberg schema', () => {
  it('builds fields in column order with fresh ids, the primary key as identifier fields', () => {
    const { schema, lastColumnId, key } = buildIcebergSchema(orders);
    expect(key).toEqual(['id', 'region']);
    expect(schema.fields.map((f) => [f.id, f.name, typeToString(f.type), f.required])).toEqual([
      [1, 'id', 'long', true],
      [2, 'region', 'string', true],
      [3, 'qty', 'int', false],
      [4, 'amount', 'decimal(10, 2)', false],
      [5, 'tags', 'list<string>', false],
      [6, 'price', 'double', false],
    ]);
    // Java's assignFreshIds order: all top-level fields first, then the list element.
    const tags = schema.fields[4]!.type;
    expect(tags.kind === 'list' && tags.elementId).toBe(7);
    expect(lastColumnId).toBe(7);
    expect(schema.identifierFieldIds).toEqual([1, 2]);
  });

  it('refuses a table without a primary key, unless a key is named (with REPLICA IDENTITY FULL)', () => {
    const noKey: SourceTable = { ...orders, primaryKey: [], replicaIdentityColumns: [] };
    expect(() => buildIcebergSchema(noKey)).toThrow(SourceTableError);
    try {
      buildIcebergSchema(noKey);
    } catch (err) {
      expect((err as SourceTableError).kind).toBe('no-primary-key');
      expect((err as Error).message).toMatch(/table "public\.orders" has no primary key.*--key/);
    }
    // DEFAULT identity without a key sends no old row, so the named key cannot match deletes.
    expect(() => buildIcebergSchema(noKey, { key: ['id'] })).toThrow(/REPLICA IDENTITY FULL/);
    const full: SourceTable = {
      ...noKey,
      replicaIdentity: 'full',
      replicaIdentityColumns: noKey.columns.map((c) => c.name),
    };
    const { schema } = buildIcebergSchema(full, { key: ['id'] });
    expect(schema.identifierFieldIds).toEqual([1]);
    expect(() => buildIcebergSchema(full, { key: ['nope'] })).toThrow(/"nope"/);
  });

  it('refuses a key column that cannot identify rows in Iceberg', () => {
    const full: SourceTable = { ...orders, replicaIdentity: 'full', replicaIdentityColumns: ['id', 'price'] };
    expect(() => buildIcebergSchema(full, { key: ['price'] })).toThrow(/"price".*float and double/);
  });

  it('quotes identifiers for SQL', () => {
    expect(quoteIdent('Order "Items"')).toBe('"Order ""Items"""');
    expect(quoteTable({ schema: 'Sales', table: 'x' })).toBe('"Sales"."x"');
  });
});

describe('source schema changes', () => {
  const changed = (columns: SourceColumn[], extra: Partial<SourceTable> = {}): SourceTable => ({
    ...orders,
    columns,
    ...extra,
  });
  const base = orders.columns;

  it('finds no change in an identical table', () => {
    expect(diffSourceTables(orders, orders)).toEqual({ compatible: true, changes: [], icebergChanges: [] });
  });

  it('accepts added columns and widenings, and says how Iceberg follows', () => {
    const after = changed([
      base[0]!,
      base[1]!,
      col(3, 'qty', t('int8', -1, 'bigint')),
      col(4, 'amount', numeric(12, 2)),
      base[4]!,
      base[5]!,
      col(7, 'note', t('varchar', 24, 'character varying(20)'), true),
    ]);
    const diff = diffSourceTables(orders, after);
    expect(diff.compatible).toBe(true);
    expect(diff.changes.map((c) => c.kind)).toEqual(['widen-type', 'widen-type', 'add-column']);
    expect(diff.changes[0]!.description).toBe('column "qty": integer → bigint (Iceberg int → long)');
    expect(diff.icebergChanges).toEqual([
      { op: 'update-column-type', column: 'qty', type: { kind: 'long' } },
      { op: 'update-column-type', column: 'amount', type: { kind: 'decimal', precision: 12, scale: 2 } },
      { op: 'add-column', name: 'note', type: { kind: 'string' } },
    ]);
  });

  it('accepts a retype that keeps the Iceberg type and a dropped NOT NULL', () => {
    const after = changed([
      base[0]!,
      col(2, 'region', t('varchar', 14, 'character varying(10)'), true),
      col(3, 'qty', t('int2', -1, 'smallint')),
      base[3]!,
      base[4]!,
      base[5]!,
    ]);
    const diff = diffSourceTables(orders, after);
    expect(diff.compatible).toBe(true);
    expect(diff.changes.map((c) => c.kind)).toEqual(['retype', 'retype']);
    const notNull = changed([base[0]!, base[1]!, col(3, 'qty', t('int4', -1, 'integer'), true), ...base.slice(3)]);
    expect(diffSourceTables(notNull, orders).icebergChanges).toEqual([{ op: 'make-optional', column: 'qty' }]);
  });

  it('refuses drops, renames, narrowing, unrelated type changes and key changes, describing each', () => {
    const after = changed(
      [
        base[0]!,
        col(2, 'area', t('text'), true),
        col(3, 'qty', t('int4', -1, 'integer')),
        col(4, 'amount', numeric(8, 2)),
        col(5, 'tags', t('text')),
      ],
      { primaryKey: ['id'], replicaIdentityColumns: ['id'] },
    );
    const diff = diffSourceTables(orders, after);
    expect(diff.compatible).toBe(false);
    expect(diff.changes.map((c) => [c.kind, c.compatible])).toEqual([
      ['rename-column', false],
      ['narrow-type', false],
      ['change-type', false],
      ['drop-column', false],
      ['key-change', false],
    ]);
    expect(diff.changes[0]!.description).toBe('column "region" was renamed to "area"');
    expect(diff.changes[3]!.description).toBe('column "price" was dropped');
  });

  it('refuses a replica identity that stops carrying the key', () => {
    const diff = diffSourceTables(orders, { ...orders, replicaIdentity: 'nothing', replicaIdentityColumns: [] });
    expect(diff.compatible).toBe(false);
    expect(diff.changes[0]!.kind).toBe('replica-identity');
  });
});
