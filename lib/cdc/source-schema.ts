import type pg from 'pg';
import type { SchemaChange } from '../iceberg/schema-evolution.js';
import { promotionProblem } from '../iceberg/schema-evolution.js';
import {
  assignFreshIds,
  identifierProblem,
  indexSchema,
  isPrimitive,
  typeToString,
  validateSchema,
  type IcebergType,
  type NestedField,
  type Schema,
} from '../iceberg/types.js';
import { SourceTableError } from './errors.js';
import { icebergTypeForPg, type PgType, type PgTypeMappingOptions } from './pg-types.js';

/**
 * A source table's definition as PostgreSQL's catalog has it (`pg_class`, `pg_attribute`, `pg_index`,
 * `relreplident`), the Iceberg schema built from it, and the comparison of two definitions to decide whether the
 * Iceberg table can follow a source change.
 */

/** A table in the source database. */
export interface TableName {
  readonly schema: string;
  readonly table: string;
}

/** `schema.table`, for messages and map keys. */
export function qualifiedName(name: TableName): string {
  return `${name.schema}.${name.table}`;
}

/** A quoted SQL identifier: `"Order ""Items"""`. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A quoted, schema-qualified table name for SQL. */
export function quoteTable(name: TableName): string {
  return `${quoteIdent(name.schema)}.${quoteIdent(name.table)}`;
}

/** PostgreSQL's replica identity setting: what old-row values updates and deletes carry. */
export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

/** One column of a source table. */
export interface SourceColumn {
  /** `attnum`: stable across renames, never reused after a drop. */
  readonly attnum: number;
  readonly name: string;
  readonly type: PgType;
  readonly notNull: boolean;
}

/** A source table's definition. */
export interface SourceTable extends TableName {
  readonly oid: number;
  /** `r` for a table, `p` for a partitioned table (published through its root). */
  readonly relkind: 'r' | 'p';
  /** Published columns in `attnum` order. Stored generated columns are left out: pgoutput does not send them. */
  readonly columns: readonly SourceColumn[];
  /** The primary key's columns in key order; empty when the table has none. */
  readonly primaryKey: readonly string[];
  readonly replicaIdentity: ReplicaIdentity;
  /** The columns old rows carry for updates and deletes: the key (default), the index's columns, or every column. */
  readonly replicaIdentityColumns: readonly string[];
}

interface ClassRow {
  oid: string;
  relkind: string;
  relreplident: string;
}
interface ColumnRow {
  attnum: number;
  attname: string;
  attnotnull: boolean;
  typid: string;
  atttypmod: number;
  display: string;
}
interface TypeRow {
  oid: string;
  typname: string;
  typtype: string;
  typcategory: string;
  typelem: string;
  typbasetype: string;
  typtypmod: number;
}

const REPLICA_IDENTITIES: Readonly<Record<string, ReplicaIdentity>> = {
  d: 'default',
  n: 'nothing',
  f: 'full',
  i: 'index',
};

/**
 * Reads a table's columns, primary key and replica identity from the catalog.
 *
 * @throws SourceTableError `table-not-found` when there is no such table, `unsupported-relation` for a view,
 *   materialized view, foreign table or other relation that logical replication cannot publish.
 */
export async function readSourceTable(client: pg.ClientBase, name: TableName): Promise<SourceTable> {
  const table = qualifiedName(name);
  const cls = await client.query<ClassRow>(
    `SELECT c.oid::int8::text AS oid, c.relkind::text AS relkind, c.relreplident::text AS relreplident
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [name.schema, name.table],
  );
  const row = cls.rows[0];
  if (!row) {
    throw new SourceTableError(
      'table-not-found',
      table,
      `table "${table}" does not exist in the source database; check the schema and table name (case matters)`,
    );
  }
  if (row.relkind !== 'r' && row.relkind !== 'p') {
    throw new SourceTableError(
      'unsupported-relation',
      table,
      `"${table}" is not a table (relkind ${row.relkind}); logical replication publishes only tables`,
    );
  }
  const oid = Number(row.oid);
  const columns = await client.query<ColumnRow>(
    `SELECT a.attnum::int AS attnum, a.attname, a.attnotnull, a.atttypid::int8::text AS typid, a.atttypmod,
            format_type(a.atttypid, a.atttypmod) AS display
       FROM pg_attribute a
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attnum`,
    [oid],
  );
  const types = await readTypes(
    client,
    columns.rows.map((c) => c.typid),
  );
  const keyOf = async (condition: string) =>
    (
      await client.query<{ attname: string }>(
        `SELECT a.attname
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1 AND ${condition}
          ORDER BY k.ord`,
        [oid],
      )
    ).rows.map((r) => r.attname);
  const primaryKey = await keyOf('i.indisprimary');
  const replicaIdentity = REPLICA_IDENTITIES[row.relreplident] ?? 'default';
  const sourceColumns = columns.rows.map((c) => ({
    attnum: c.attnum,
    name: c.attname,
    notNull: c.attnotnull,
    type: resolveType(types, c.typid, c.atttypmod, c.display),
  }));
  const replicaIdentityColumns =
    replicaIdentity === 'full'
      ? sourceColumns.map((c) => c.name)
      : replicaIdentity === 'index'
        ? await keyOf('i.indisreplident')
        : replicaIdentity === 'default'
          ? primaryKey
          : [];
  return {
    schema: name.schema,
    table: name.table,
    oid,
    relkind: row.relkind,
    columns: sourceColumns,
    primaryKey,
    replicaIdentity,
    replicaIdentityColumns,
  };
}

/**
 * The types of columns given by type oid and typmod, as a pgoutput Relation message lists them, resolved like
 * {@link readSourceTable} resolves a table's columns (domains to their base types, arrays with their elements).
 */
export async function readColumnTypes(
  client: pg.ClientBase,
  columns: readonly { readonly typeOid: number; readonly typeMod: number }[],
): Promise<PgType[]> {
  if (columns.length === 0) return [];
  const oids = columns.map((c) => String(c.typeOid));
  const types = await readTypes(client, oids);
  const displays = await client.query<{ display: string }>(
    'SELECT format_type(o, m) AS display FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS t(o, m, n) ORDER BY n',
    [oids, columns.map((c) => c.typeMod)],
  );
  return columns.map((c, i) => resolveType(types, String(c.typeOid), c.typeMod, displays.rows[i]?.display ?? '?'));
}

/** Reads the types and, recursively, their array elements and domain base types. */
async function readTypes(client: pg.ClientBase, oids: readonly string[]): Promise<Map<string, TypeRow>> {
  const result = await client.query<TypeRow>(
    `WITH RECURSIVE t AS (
       SELECT oid, typname, typtype, typcategory, typelem, typbasetype, typtypmod FROM pg_type WHERE oid = ANY($1::oid[])
       UNION
       SELECT p.oid, p.typname, p.typtype, p.typcategory, p.typelem, p.typbasetype, p.typtypmod
         FROM pg_type p JOIN t ON p.oid = t.typelem OR p.oid = t.typbasetype
     )
     SELECT oid::int8::text AS oid, typname::text AS typname, typtype::text AS typtype,
            typcategory::text AS typcategory, typelem::int8::text AS typelem,
            typbasetype::int8::text AS typbasetype, typtypmod FROM t`,
    [[...new Set(oids)]],
  );
  return new Map(result.rows.map((r) => [r.oid, r]));
}

function resolveType(types: Map<string, TypeRow>, oid: string, typmod: number, display: string): PgType {
  const row = types.get(oid);
  if (!row) return { kind: 'other', name: `oid ${oid}`, typmod, display };
  // A domain is its base type (with the domain's typmod when the column has none).
  if (row.typtype === 'd') return resolveType(types, row.typbasetype, typmod >= 0 ? typmod : row.typtypmod, display);
  if (row.typcategory === 'A' && row.typelem !== '0') {
    const element = resolveType(types, row.typelem, typmod, display.replace(/\[\]$/, ''));
    return { kind: 'array', name: row.typname, typmod, element, display };
  }
  const kind = row.typtype === 'e' ? 'enum' : row.typtype === 'b' ? 'base' : 'other';
  return { kind, name: row.typname, typmod, display };
}

/** Options for building an Iceberg schema from a source table. */
export interface CdcSchemaOptions extends PgTypeMappingOptions {
  /**
   * The columns that identify a row, for a table without a primary key (or to override it). The replica identity
   * must carry them: with a named key that is not the primary key, set `REPLICA IDENTITY FULL` on the source.
   * @default the primary key
   */
  key?: readonly string[];
}

/** The Iceberg schema for a source table. */
export interface SourceIcebergSchema {
  /** Fields in source column order with fresh ids from 1; identifier fields are the key. */
  readonly schema: Schema;
  /** The highest field id (the new table's `last-column-id`). */
  readonly lastColumnId: number;
  /** The key columns, in key order. */
  readonly key: readonly string[];
}

/**
 * Builds the Iceberg schema of a source table: one field per column, with the key columns as identifier fields
 * (required), the others optional unless `NOT NULL`.
 *
 * @throws SourceTableError `no-primary-key` when the table has no primary key and no key is named, or a named key
 *   column does not exist; `replica-identity` when the replica identity does not carry the key (see
 *   {@link checkReplicaIdentity}); `unsupported-type` for an unmapped column type or a key column that cannot
 *   identify rows (float, array).
 */
export function buildIcebergSchema(source: SourceTable, options: CdcSchemaOptions = {}): SourceIcebergSchema {
  const table = qualifiedName(source);
  const key = resolveKey(source, options.key);
  checkReplicaIdentity(source, key);
  let nextId = 0;
  const placeholder: NestedField[] = source.columns.map((column) => ({
    id: 0,
    name: column.name,
    required: column.notNull || key.includes(column.name),
    type: icebergTypeForPg(column.type, options, { table, name: column.name }),
  }));
  const struct = assignFreshIds({ kind: 'struct', fields: placeholder }, () => ++nextId);
  const identifierFieldIds = key.map((name) => struct.fields.find((f) => f.name === name)!.id);
  const schema: Schema = { schemaId: 0, identifierFieldIds, fields: struct.fields };
  const index = indexSchema(schema);
  for (const id of identifierFieldIds) {
    const info = index.get(id)!;
    const problem = identifierProblem(info);
    if (problem !== undefined) {
      throw new SourceTableError(
        'unsupported-type',
        table,
        `key column "${info.fullName}" of table "${table}" cannot identify rows in Iceberg: ${problem}; name ` +
          'other key columns',
        info.fullName,
      );
    }
  }
  validateSchema(schema);
  return { schema, lastColumnId: nextId, key };
}

function resolveKey(source: SourceTable, named: readonly string[] | undefined): readonly string[] {
  const table = qualifiedName(source);
  if (named === undefined || named.length === 0) {
    if (source.primaryKey.length === 0) {
      throw new SourceTableError(
        'no-primary-key',
        table,
        `table "${table}" has no primary key, so changes cannot be merged by key; add a primary key to the ` +
          'source table, or name the key columns (--key col1,col2) and set REPLICA IDENTITY FULL on the table',
      );
    }
    return source.primaryKey;
  }
  const names = new Set(source.columns.map((c) => c.name));
  const missing = named.filter((n) => !names.has(n));
  if (missing.length > 0) {
    throw new SourceTableError(
      'no-primary-key',
      table,
      `key column(s) ${missing.map((m) => `"${m}"`).join(', ')} are not columns of table "${table}"; its ` +
        `columns are ${[...names].map((n) => `"${n}"`).join(', ')}`,
      missing[0],
    );
  }
  if (new Set(named).size !== named.length) {
    throw new SourceTableError('no-primary-key', table, `the key of table "${table}" names a column twice`);
  }
  return named;
}

/**
 * Checks that updates and deletes will carry the key: the replica identity's old-row columns must include every key
 * column, or a delete could not say which row it removes.
 *
 * @throws SourceTableError `replica-identity` naming what to set.
 */
export function checkReplicaIdentity(source: SourceTable, key: readonly string[]): void {
  const table = qualifiedName(source);
  const carried = new Set(source.replicaIdentityColumns);
  const missing = key.filter((k) => !carried.has(k));
  if (missing.length === 0) return;
  const what =
    source.replicaIdentity === 'nothing'
      ? 'REPLICA IDENTITY NOTHING sends no old values'
      : source.replicaIdentity === 'default' && source.primaryKey.length === 0
        ? 'REPLICA IDENTITY DEFAULT without a primary key sends no old values'
        : `its replica identity (${source.replicaIdentity}) does not include ${missing.map((m) => `"${m}"`).join(', ')}`;
  throw new SourceTableError(
    'replica-identity',
    table,
    `deletes and key changes on table "${table}" cannot be matched to the key (${key.join(', ')}): ${what}; run ` +
      `ALTER TABLE ${quoteTable(source)} REPLICA IDENTITY FULL`,
  );
}

// ---- schema changes -------------------------------------------------------------------------------------------

/** One difference between two definitions of a source table. */
export interface SourceSchemaChange {
  readonly kind:
    | 'add-column'
    | 'drop-column'
    | 'rename-column'
    | 'widen-type'
    | 'retype'
    | 'narrow-type'
    | 'change-type'
    | 'drop-not-null'
    | 'set-not-null'
    | 'key-change'
    | 'replica-identity';
  /** The column, by its name in the newer definition (the older one for a drop). */
  readonly column?: string;
  /** Whether the Iceberg table can follow it without losing or misreading data. */
  readonly compatible: boolean;
  /** What changed, for logs and error messages: `column "qty": int4 → int8 (Iceberg int → long)`. */
  readonly description: string;
}

/** The result of {@link diffSourceTables}. */
export interface SourceSchemaDiff {
  /** Whether every change is compatible (also `true` when nothing changed). */
  readonly compatible: boolean;
  readonly changes: readonly SourceSchemaChange[];
  /**
   * The Iceberg schema changes that make the table follow the compatible changes, in order, for
   * `evolveSchema`: new optional columns, type promotions, columns made optional.
   */
  readonly icebergChanges: readonly SchemaChange[];
}

/**
 * Compares two definitions of the same source table. Added columns, Iceberg-allowed widenings (int → long,
 * float → double, decimal precision growth), type changes that keep the Iceberg type (varchar(10) → text) and
 * dropped `NOT NULL`s are compatible. Dropped or renamed columns, narrowing or unrelated type changes, key changes
 * and a replica identity that no longer carries the key are not.
 *
 * @param options the mapping options the Iceberg table was built with, and its key.
 */
export function diffSourceTables(
  before: SourceTable,
  after: SourceTable,
  options: CdcSchemaOptions = {},
): SourceSchemaDiff {
  const table = qualifiedName(after);
  const changes: SourceSchemaChange[] = [];
  const icebergChanges: SchemaChange[] = [];
  const afterByAttnum = new Map(after.columns.map((c) => [c.attnum, c]));
  const beforeByAttnum = new Map(before.columns.map((c) => [c.attnum, c]));
  const icebergType = (c: SourceColumn): IcebergType | undefined => {
    try {
      return icebergTypeForPg(c.type, options, { table, name: c.name });
    } catch {
      return undefined;
    }
  };
  const beforeKey = options.key && options.key.length > 0 ? options.key : before.primaryKey;
  const afterKey = options.key && options.key.length > 0 ? options.key : after.primaryKey;

  for (const old of before.columns) {
    const now = afterByAttnum.get(old.attnum);
    if (!now) {
      changes.push({
        kind: 'drop-column',
        column: old.name,
        compatible: false,
        description: `column "${old.name}" was dropped`,
      });
      continue;
    }
    if (now.name !== old.name) {
      changes.push({
        kind: 'rename-column',
        column: now.name,
        compatible: false,
        description: `column "${old.name}" was renamed to "${now.name}"`,
      });
    }
    if (now.type.display !== old.type.display) {
      const from = icebergType(old);
      const to = icebergType(now);
      const arrow = `${old.type.display} → ${now.type.display}`;
      if (!from || !to) {
        changes.push({
          kind: 'change-type',
          column: now.name,
          compatible: false,
          description: `column "${now.name}": ${arrow}, which Sluice cannot map to Iceberg`,
        });
      } else if (typeToString(from) === typeToString(to)) {
        changes.push({
          kind: 'retype',
          column: now.name,
          compatible: true,
          description: `column "${now.name}": ${arrow}, both Iceberg ${typeToString(to)}`,
        });
      } else if (isPrimitive(from) && isPrimitive(to) && promotionProblem(from, to) === undefined) {
        changes.push({
          kind: 'widen-type',
          column: now.name,
          compatible: true,
          description: `column "${now.name}": ${arrow} (Iceberg ${typeToString(from)} → ${typeToString(to)})`,
        });
        icebergChanges.push({ op: 'update-column-type', column: old.name, type: to });
      } else {
        const narrowing = isPrimitive(from) && isPrimitive(to) && promotionProblem(to, from) === undefined;
        changes.push({
          kind: narrowing ? 'narrow-type' : 'change-type',
          column: now.name,
          compatible: false,
          description: `column "${now.name}": ${arrow} (Iceberg ${typeToString(from)} → ${typeToString(to)})`,
        });
      }
    }
    if (old.notNull && !now.notNull) {
      const isKey = afterKey.includes(now.name);
      changes.push({
        kind: 'drop-not-null',
        column: now.name,
        compatible: !isKey,
        description: `column "${now.name}" may now be null${isKey ? ', but it is a key column' : ''}`,
      });
      if (!isKey) icebergChanges.push({ op: 'make-optional', column: old.name });
    } else if (!old.notNull && now.notNull) {
      changes.push({
        kind: 'set-not-null',
        column: now.name,
        compatible: true,
        description: `column "${now.name}" is now NOT NULL (the Iceberg column stays optional)`,
      });
    }
  }
  for (const now of after.columns) {
    if (beforeByAttnum.has(now.attnum)) continue;
    const type = icebergType(now);
    changes.push({
      kind: 'add-column',
      column: now.name,
      compatible: type !== undefined,
      description: `column "${now.name}" ${now.type.display} was added${type ? '' : ', but Sluice cannot map its type'}`,
    });
    // Existing Iceberg rows have no value for it, so the column is optional even when the source says NOT NULL.
    if (type) icebergChanges.push({ op: 'add-column', name: now.name, type });
  }
  if (beforeKey.join('\u0000') !== afterKey.join('\u0000')) {
    changes.push({
      kind: 'key-change',
      compatible: false,
      description: `the key changed from (${beforeKey.join(', ')}) to (${afterKey.join(', ')})`,
    });
  }
  const carried = new Set(after.replicaIdentityColumns);
  if (afterKey.some((k) => !carried.has(k))) {
    changes.push({
      kind: 'replica-identity',
      compatible: false,
      description: `replica identity ${after.replicaIdentity} no longer carries the key (${afterKey.join(', ')})`,
    });
  }
  return { compatible: changes.every((c) => c.compatible), changes, icebergChanges };
}
