import type pg from 'pg';
import type { SqlCatalog } from '../iceberg/catalog/index.js';
import { currentSchema, type TableMetadata } from '../iceberg/metadata-json.js';
import type { SchemaChange } from '../iceberg/schema-evolution.js';
import { promotionProblem } from '../iceberg/schema-evolution.js';
import { updateTableSchema } from '../iceberg/schema-update.js';
import { isPrimitive, typeToString, type IcebergType, type Schema } from '../iceberg/types.js';
import { envelopeToJson, type ChangeEvent } from './envelope.js';
import { IncompatibleSchemaChangeError } from './errors.js';
import { formatLsn } from './lsn.js';
import { icebergTypeForPg, type PgType, type PgTypeMappingOptions } from './pg-types.js';
import type { BatchRelation } from './pgoutput-reader.js';
import { quarantineRecord, type QuarantineRecord } from './quarantine.js';
import { readColumnTypes } from './source-schema.js';

/**
 * Schema drift: the difference between the columns a source table has now (the pgoutput Relation message that
 * precedes a batch's changes of the table) and the Iceberg table the merge writes. Additive changes (a new column,
 * an Iceberg-allowed widening) become `evolveSchema` changes that the merge commits before it writes the rows that
 * need them. Everything else (a dropped or renamed column, a key change, a narrowing or unrelated type change)
 * blocks the table until an operator resolves it: `apply` does what Iceberg can follow (a dropped column becomes
 * optional, a narrowing keeps the wider Iceberg type), `skip` accepts the source as it is without changing Iceberg,
 * and a key change or unmappable type needs a re-bootstrap.
 *
 * What an operator accepted is kept in table properties, so the same drift does not block again.
 */

/** Table property: JSON array of source columns an operator accepted as dropped (the Iceberg column stays). */
export const CDC_DROPPED_COLUMNS_PROPERTY = 'sluice.cdc.dropped-columns';
/** Table property: JSON object column → PostgreSQL type whose drift from the Iceberg type an operator accepted. */
export const CDC_ACCEPTED_TYPES_PROPERTY = 'sluice.cdc.accepted-source-types';
/** Table property: how the table maps unconstrained numerics (`decimal` or `string`), for columns added later. */
export const CDC_WIDE_NUMERIC_PROPERTY = 'sluice.cdc.wide-numeric';

/** A source column as the latest Relation message describes it, with its type resolved from the catalog. */
export interface RelationColumn {
  readonly name: string;
  readonly type: PgType;
  /** pgoutput's key flag: part of the replica identity. */
  readonly isKey?: boolean;
}

/** One difference between the source columns and the Iceberg table. */
export interface SchemaDriftItem {
  readonly kind: 'add-column' | 'widen-type' | 'drop-column' | 'narrow-type' | 'change-type' | 'key-change';
  /** The column (the Iceberg name for a drop). */
  readonly column?: string;
  /** Whether the merge follows it on its own. */
  readonly compatible: boolean;
  /** `column "qty": int4 → int8 (Iceberg int → long)` */
  readonly description: string;
  /** The source type now (`format_type`), for type changes. */
  readonly sourceType?: string;
}

/** The result of {@link detectSchemaDrift}. */
export interface SchemaDrift {
  /** `schema.table` of the source. */
  readonly table: string;
  readonly items: readonly SchemaDriftItem[];
  /** The changes that block the table; empty when the merge can go on. */
  readonly blocking: readonly SchemaDriftItem[];
  /** Iceberg schema changes for the compatible items, to commit before the batch's rows are written. */
  readonly evolve: readonly SchemaChange[];
}

/** What an operator accepted earlier, from the table properties ({@link acceptedDriftOf}). */
export interface AcceptedDrift {
  readonly droppedColumns: readonly string[];
  readonly acceptedTypes: Readonly<Record<string, string>>;
}

/** Reads the accepted drift from table properties; malformed values count as nothing accepted. */
export function acceptedDriftOf(properties: Readonly<Record<string, string>>): AcceptedDrift {
  const parse = <T>(text: string | undefined, ok: (v: unknown) => v is T, fallback: T): T => {
    if (text === undefined) return fallback;
    try {
      const value: unknown = JSON.parse(text);
      return ok(value) ? value : fallback;
    } catch {
      return fallback;
    }
  };
  return {
    droppedColumns: parse(
      properties[CDC_DROPPED_COLUMNS_PROPERTY],
      (v): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string'),
      [],
    ),
    acceptedTypes: parse(
      properties[CDC_ACCEPTED_TYPES_PROPERTY],
      (v): v is Record<string, string> =>
        typeof v === 'object' &&
        v !== null &&
        !Array.isArray(v) &&
        Object.values(v).every((x) => typeof x === 'string'),
      {},
    ),
  };
}

/** The accepted drift as table property values. */
export function acceptedDriftProperties(accepted: AcceptedDrift): Record<string, string> {
  return {
    [CDC_DROPPED_COLUMNS_PROPERTY]: JSON.stringify([...new Set(accepted.droppedColumns)].sort()),
    [CDC_ACCEPTED_TYPES_PROPERTY]: JSON.stringify(accepted.acceptedTypes),
  };
}

/**
 * Compares the source's current columns with the Iceberg schema. Columns match by name, so a rename reads as a
 * drop plus an add (blocking, because of the drop).
 *
 * @param args.replicaIdentity the Relation message's; the key flags are compared with the identifier fields only
 *   under `default`, where they mark exactly the primary key.
 */
export function detectSchemaDrift(args: {
  readonly table: string;
  readonly columns: readonly RelationColumn[];
  readonly replicaIdentity: string;
  readonly schema: Schema;
  readonly mapping?: PgTypeMappingOptions;
  readonly accepted?: AcceptedDrift;
}): SchemaDrift {
  const { table, schema } = args;
  const accepted = args.accepted ?? { droppedColumns: [], acceptedTypes: {} };
  const items: SchemaDriftItem[] = [];
  const evolve: SchemaChange[] = [];
  const fields = new Map(schema.fields.map((f) => [f.name, f]));
  const keyNames = schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)?.name ?? `#${id}`);
  const mapped = (c: RelationColumn): IcebergType | undefined => {
    try {
      return icebergTypeForPg(c.type, args.mapping ?? {}, { table, name: c.name });
    } catch {
      return undefined;
    }
  };

  for (const column of args.columns) {
    const to = mapped(column);
    const field = fields.get(column.name);
    const display = column.type.display;
    if (!field) {
      if (to) {
        items.push({
          kind: 'add-column',
          column: column.name,
          compatible: true,
          description: `column "${column.name}" ${display} was added`,
        });
        // Existing rows have no value for it, so it is optional even when the source says NOT NULL.
        evolve.push({ op: 'add-column', name: column.name, type: to });
      } else {
        items.push({
          kind: 'change-type',
          column: column.name,
          compatible: false,
          sourceType: display,
          description: `column "${column.name}" ${display} was added, but Sluice cannot map its type to Iceberg`,
        });
      }
      continue;
    }
    if (to && typeToString(to) === typeToString(field.type)) continue;
    if (accepted.acceptedTypes[column.name] === display) continue;
    const arrow = `${typeToString(field.type)} → ${to ? typeToString(to) : display}`;
    if (to && isPrimitive(field.type) && isPrimitive(to) && promotionProblem(field.type, to) === undefined) {
      items.push({
        kind: 'widen-type',
        column: column.name,
        compatible: true,
        sourceType: display,
        description: `column "${column.name}" became ${display} (Iceberg ${arrow})`,
      });
      evolve.push({ op: 'update-column-type', column: column.name, type: to });
    } else if (to && isPrimitive(field.type) && isPrimitive(to) && promotionProblem(to, field.type) === undefined) {
      items.push({
        kind: 'narrow-type',
        column: column.name,
        compatible: false,
        sourceType: display,
        description: `column "${column.name}" was narrowed to ${display} (Iceberg ${arrow}); the wider Iceberg type still holds its values`,
      });
    } else {
      items.push({
        kind: 'change-type',
        column: column.name,
        compatible: false,
        sourceType: display,
        description: `column "${column.name}" changed type to ${display} (Iceberg ${arrow}), which Iceberg cannot follow`,
      });
    }
  }

  const present = new Set(args.columns.map((c) => c.name));
  const dropped = new Set(accepted.droppedColumns);
  for (const field of schema.fields) {
    if (present.has(field.name) || dropped.has(field.name)) continue;
    const isKey = keyNames.includes(field.name);
    items.push({
      kind: isKey ? 'key-change' : 'drop-column',
      column: field.name,
      compatible: false,
      description: isKey
        ? `key column "${field.name}" was dropped or renamed`
        : `column "${field.name}" was dropped or renamed`,
    });
  }

  if (args.replicaIdentity === 'default' && args.columns.some((c) => c.isKey !== undefined)) {
    const flagged = args.columns.filter((c) => c.isKey).map((c) => c.name);
    const sameKey = flagged.length === keyNames.length && keyNames.every((k) => flagged.includes(k));
    if (!sameKey && keyNames.every((k) => present.has(k))) {
      items.push({
        kind: 'key-change',
        compatible: false,
        description: `the key changed from (${keyNames.join(', ')}) to (${flagged.join(', ') || 'none'})`,
      });
    }
  }
  return { table, items, blocking: items.filter((i) => !i.compatible), evolve };
}

/** What resolving a blocked table does to the Iceberg table. */
export interface DriftResolution {
  /** Schema changes to commit (together with the compatible ones of the drift). */
  readonly evolve: readonly SchemaChange[];
  /** The accepted drift to store in the table properties afterwards. */
  readonly accepted: AcceptedDrift;
}

/**
 * The Iceberg changes that resolve `drift` by `action`.
 *
 * - `apply`: a dropped column becomes optional (new rows hold null) and is remembered as dropped; a narrowing keeps
 *   the wider Iceberg type. A key change or an unrelated type change cannot be applied.
 * - `skip`: everything is accepted as it is, without touching the Iceberg schema (values that then do not convert
 *   are quarantined row by row). A key change cannot be skipped.
 *
 * @throws IncompatibleSchemaChangeError naming what needs a re-bootstrap.
 */
export function resolveSchemaDrift(
  drift: SchemaDrift,
  action: 'apply' | 'skip',
  schema: Schema,
  accepted: AcceptedDrift,
): DriftResolution {
  const evolve: SchemaChange[] = [...drift.evolve];
  const droppedColumns = [...accepted.droppedColumns];
  const acceptedTypes: Record<string, string> = { ...accepted.acceptedTypes };
  const refused: string[] = [];
  for (const item of drift.blocking) {
    switch (item.kind) {
      case 'drop-column': {
        const field = schema.fields.find((f) => f.name === item.column);
        if (action === 'apply' && field?.required) evolve.push({ op: 'make-optional', column: field.name });
        droppedColumns.push(item.column!);
        break;
      }
      case 'narrow-type':
        acceptedTypes[item.column!] = item.sourceType!;
        break;
      case 'change-type':
        if (action === 'apply') refused.push(item.description);
        else acceptedTypes[item.column!] = item.sourceType!;
        break;
      case 'key-change':
        refused.push(item.description);
        break;
      case 'add-column':
      case 'widen-type':
        break;
    }
  }
  if (refused.length > 0) {
    throw new IncompatibleSchemaChangeError(
      drift.table,
      refused.map((r) => `${r} (cannot ${action}: re-bootstrap the table)`),
    );
  }
  return { evolve, accepted: { droppedColumns, acceptedTypes } };
}

// ---- per batch ------------------------------------------------------------------------------------------------

/** A target table of {@link followSourceSchemas}. */
export interface SchemaFollowTarget {
  /** `schema.table` of the source. */
  readonly source: string;
  readonly icebergTable: string;
  readonly metadata: TableMetadata;
}

/** The result of {@link followSourceSchemas}. */
export interface SchemaFollowResult {
  /** Source tables whose changes must be held: blocked before, and blocked by this batch. */
  readonly blocked: ReadonlySet<string>;
  readonly newlyBlocked: readonly { table: string; icebergTable: string; changes: string[] }[];
  /** Tables whose schema was evolved, with their metadata after the commit. */
  readonly evolved: ReadonlyMap<string, { metadata: TableMetadata; changes: string[] }>;
}

/** Relation shapes known to match a table's schema (process-wide; a miss only costs a catalog query). */
const MATCHING_RELATIONS = new Set<string>();

/**
 * Makes each target follow the source columns of the batch's Relation messages (pgoutput sends one before a
 * table's first change in every decoding session, so every batch with changes for a table carries it): compatible
 * drift is committed to the Iceberg schema now, before the batch's rows are written; incompatible drift blocks the
 * table.
 */
export async function followSourceSchemas(
  catalog: SqlCatalog,
  client: pg.ClientBase,
  args: {
    readonly targets: readonly SchemaFollowTarget[];
    readonly relations: ReadonlyMap<string, BatchRelation>;
    readonly blocked: readonly string[];
  },
): Promise<SchemaFollowResult> {
  const blocked = new Set(args.blocked);
  const newlyBlocked: { table: string; icebergTable: string; changes: string[] }[] = [];
  const evolved = new Map<string, { metadata: TableMetadata; changes: string[] }>();
  for (const target of args.targets) {
    if (blocked.has(target.source)) continue;
    const relation = args.relations.get(target.source);
    if (!relation) continue;
    // Nearly every batch carries the same Relation as the one before: skip the catalog lookup for a shape already
    // found to match this schema and these accepted changes.
    const memoKey = JSON.stringify([
      target.icebergTable,
      target.metadata.currentSchemaId,
      target.metadata.properties[CDC_DROPPED_COLUMNS_PROPERTY] ?? '',
      target.metadata.properties[CDC_ACCEPTED_TYPES_PROPERTY] ?? '',
      relation.replicaIdentity,
      relation.columns,
    ]);
    if (MATCHING_RELATIONS.has(memoKey)) continue;
    const types = await readColumnTypes(client, relation.columns);
    const drift = detectSchemaDrift({
      table: target.source,
      columns: relation.columns.map((c, i) => ({
        name: c.name,
        type: types[i]!,
        ...(c.isKey === undefined ? {} : { isKey: c.isKey }),
      })),
      replicaIdentity: relation.replicaIdentity,
      schema: currentSchema(target.metadata),
      mapping: {
        wideNumeric: target.metadata.properties[CDC_WIDE_NUMERIC_PROPERTY] === 'string' ? 'string' : 'decimal',
      },
      accepted: acceptedDriftOf(target.metadata.properties),
    });
    if (drift.blocking.length > 0) {
      blocked.add(target.source);
      newlyBlocked.push({
        table: target.source,
        icebergTable: target.icebergTable,
        changes: drift.blocking.map((i) => i.description),
      });
      continue;
    }
    if (drift.evolve.length === 0) {
      if (MATCHING_RELATIONS.size >= 1000) MATCHING_RELATIONS.clear();
      MATCHING_RELATIONS.add(memoKey);
      continue;
    }
    const loaded = await updateTableSchema(catalog, target.icebergTable, drift.evolve);
    evolved.set(target.icebergTable, { metadata: loaded.metadata, changes: drift.items.map((i) => i.description) });
  }
  return { blocked, newlyBlocked, evolved };
}

/**
 * Splits a batch's events: those of blocked tables become quarantine records (error kind
 * `incompatible-schema-change`) unless the table's watermark already covers them; the rest go on to the collapse.
 */
export function holdBlockedChanges(
  events: readonly ChangeEvent[],
  blocked: ReadonlySet<string>,
  watermarks: ReadonlyMap<string, bigint>,
): { events: ChangeEvent[]; held: QuarantineRecord[] } {
  if (blocked.size === 0) return { events: [...events], held: [] };
  const kept: ChangeEvent[] = [];
  const held: QuarantineRecord[] = [];
  for (const event of events) {
    const table = `${event.envelope.source.schema}.${event.envelope.source.table}`;
    if (!blocked.has(table)) {
      kept.push(event);
      continue;
    }
    const watermark = watermarks.get(table);
    const end = event.position.commitEndLsn;
    if (watermark !== undefined && end > 0n && end <= watermark) continue;
    const commitLsn = event.position.commitLsn > 0n ? formatLsn(event.position.commitLsn) : undefined;
    held.push(
      quarantineRecord(
        new IncompatibleSchemaChangeError(table, [
          "the table is blocked by an incompatible source schema change; resolve it with the merge's " +
            'resolveSchemaChange update (apply, skip or re-bootstrap)',
        ]),
        envelopeToJson(event.envelope),
        event.origin,
        { table, ...(commitLsn === undefined ? {} : { commitLsn }) },
      ),
    );
  }
  return { events: kept, held };
}
