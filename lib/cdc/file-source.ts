import { gunzipSync } from 'node:zlib';
import type { TableMetadata } from '../iceberg/metadata-json.js';
import {
  assignFreshIds,
  identifierProblem,
  indexSchema,
  parsePrimitiveType,
  Types,
  validateSchema,
  type IcebergType,
  type NestedField,
  type Schema,
} from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import {
  CDC_FILES_WATERMARK_PROPERTY,
  compareChangeFiles,
  parseChangeFileName,
  parseChangeLine,
  parseFilesWatermark,
  type ChangeFileName,
  type ChangeFilesWatermark,
} from './debezium-files.js';
import type { ConnectField } from './envelope.js';
import { InvalidCdcOptionError, SourceTableError } from './errors.js';

/**
 * The Debezium change-file source's table side: the Iceberg schema of a table that is fed only by change files
 * (from the Connect schema block the files carry, or from an explicit column list), and the committed high-water
 * mark as the table's snapshot history holds it. The files themselves are read by `readChangeFiles`.
 */

/** A column of an explicit file-source table spec. */
export interface FileTableColumn {
  readonly name: string;
  /** An Iceberg primitive type as the spec writes it: `long`, `string`, `decimal(12,2)`, `timestamptz`… */
  readonly type: string;
  /** @default false (key columns are always required) */
  readonly required?: boolean;
}

const CONNECT_DECIMAL = 'org.apache.kafka.connect.data.Decimal';

/**
 * The Iceberg type of a Connect field as Debezium's PostgreSQL connector writes it (the logical name decides
 * first, then the Connect type). `io.debezium.data.VariableScaleDecimal` (unconstrained numeric) and other structs
 * are refused: their scale varies per value, so no Iceberg decimal holds them (set `decimal.handling.mode=string`).
 *
 * @throws SourceTableError `unsupported-type` naming the column.
 */
export function icebergTypeForConnect(field: ConnectField, table: string, column = field.field): IcebergType {
  const unsupported = (what: string): never => {
    throw new SourceTableError(
      'unsupported-type',
      table,
      `column "${column}" of "${table}" has Connect type ${what}, which has no Iceberg type; change the ` +
        'connector setting (e.g. decimal.handling.mode=string) or give the table an explicit column list',
      column,
    );
  };
  switch (field.name) {
    case 'io.debezium.time.Date':
    case 'org.apache.kafka.connect.data.Date':
      return Types.date;
    case 'io.debezium.time.Time':
    case 'io.debezium.time.MicroTime':
    case 'io.debezium.time.NanoTime':
    case 'org.apache.kafka.connect.data.Time':
      return Types.time;
    case 'io.debezium.time.Timestamp':
    case 'io.debezium.time.MicroTimestamp':
    case 'io.debezium.time.NanoTimestamp':
    case 'org.apache.kafka.connect.data.Timestamp':
      return Types.timestamp;
    case 'io.debezium.time.ZonedTimestamp':
      return Types.timestamptz;
    case 'io.debezium.data.Uuid':
      return Types.uuid;
    case CONNECT_DECIMAL: {
      const scale = Number(field.parameters?.scale ?? NaN);
      const precision = Number(field.parameters?.['connect.decimal.precision'] ?? 38);
      if (!Number.isInteger(scale) || scale < 0 || !Number.isInteger(precision) || precision < 1 || precision > 38) {
        return unsupported(`Decimal(${field.parameters?.['connect.decimal.precision']}, ${field.parameters?.scale})`);
      }
      return Types.decimal(Math.max(precision, scale), scale);
    }
    case 'io.debezium.data.VariableScaleDecimal':
      return unsupported('VariableScaleDecimal (unconstrained numeric)');
    default:
      break;
  }
  switch (field.type) {
    case 'boolean':
      return Types.boolean;
    case 'int8':
    case 'int16':
    case 'int32':
      return Types.int;
    case 'int64':
      return Types.long;
    case 'float32':
      return Types.float;
    case 'float64':
      return Types.double;
    case 'string':
      return Types.string;
    case 'bytes':
      return Types.binary;
    case 'array': {
      if (!field.items) return unsupported('array without an item schema');
      return {
        kind: 'list',
        elementId: 0,
        elementRequired: false,
        element: icebergTypeForConnect(field.items, table, `${column}.element`),
      };
    }
    default:
      return unsupported(field.name ? `${field.type} (${field.name})` : field.type);
  }
}

/** A built file-source schema: ids assigned, identifier fields = key. */
export interface FileTableSchema {
  readonly schema: Schema;
  readonly key: readonly string[];
}

function finishSchema(table: string, placeholder: NestedField[], key: readonly string[]): FileTableSchema {
  if (key.length === 0) {
    throw new SourceTableError(
      'no-primary-key',
      table,
      `change files of "${table}" do not say which columns are the key (the key is in the Kafka record key, not the ` +
        'value); name the key columns (key: ["id"])',
    );
  }
  for (const name of key) {
    if (!placeholder.some((f) => f.name === name)) {
      throw new SourceTableError(
        'no-primary-key',
        table,
        `key column "${name}" is not a column of "${table}" (columns: ${placeholder.map((f) => f.name).join(', ')})`,
        name,
      );
    }
  }
  let nextId = 0;
  const struct = assignFreshIds(
    { kind: 'struct', fields: placeholder.map((f) => ({ ...f, required: f.required || key.includes(f.name) })) },
    () => ++nextId,
  );
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
        `key column "${info.fullName}" of "${table}" cannot identify rows in Iceberg: ${problem}`,
        info.fullName,
      );
    }
  }
  validateSchema(schema);
  return { schema, key };
}

/**
 * The Iceberg schema of a table from the Connect schema of its change events' row (`after`/`before`). Only the key
 * columns are required: the value schema's `optional` flags describe the source, and a later source change may
 * relax them.
 */
export function buildSchemaFromConnect(
  table: string,
  fields: readonly ConnectField[],
  key: readonly string[],
): FileTableSchema {
  const placeholder: NestedField[] = fields.map((f) => ({
    id: 0,
    name: f.field,
    required: false,
    type: icebergTypeForConnect(f, table),
  }));
  return finishSchema(table, placeholder, key);
}

/**
 * The Iceberg schema of a table from an explicit column list (primitive Iceberg types).
 *
 * @throws InvalidCdcOptionError for a type that does not parse; SourceTableError for a bad key.
 */
export function buildSchemaFromColumns(
  table: string,
  columns: readonly FileTableColumn[],
  key: readonly string[],
): FileTableSchema {
  const placeholder: NestedField[] = columns.map((c, i) => {
    let type: IcebergType;
    try {
      type = parsePrimitiveType(c.type, `columns[${i}].type`);
    } catch (err) {
      throw new InvalidCdcOptionError('columns', `column "${c.name}": ${(err as Error).message}`);
    }
    return { id: 0, name: c.name, required: c.required ?? false, type };
  });
  return finishSchema(table, placeholder, key);
}

/** Where {@link findConnectSchema} found the row schema. */
export interface FoundConnectSchema {
  readonly fields: readonly ConnectField[];
  /** `file:line` of the event that carried it. */
  readonly origin: string;
}

/**
 * Finds the Connect row schema of `table` (`schema.table`) in the change files under `prefix`: the first event of
 * that table (files in key order, at most `maxFiles` read) that carries `{schema, payload}`. `undefined` when no
 * read file has one (files written with `schemas.enable=false`).
 */
export async function findConnectSchema(
  io: Pick<FileIO, 'list' | 'read'>,
  prefix: string,
  table: string,
  options: { maxFiles?: number } = {},
): Promise<FoundConnectSchema | undefined> {
  const files: ChangeFileName[] = [];
  for await (const info of io.list(prefix)) {
    const name = parseChangeFileName(info.uri);
    if (name) files.push(name);
  }
  files.sort(compareChangeFiles);
  for (const file of files.slice(0, options.maxFiles ?? 20)) {
    let bytes = await io.read(file.uri);
    if (file.gzip || (bytes[0] === 0x1f && bytes[1] === 0x8b)) bytes = gunzipSync(bytes);
    const lines = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!.trim();
      if (text === '' || text === 'null') continue;
      let event;
      try {
        event = parseChangeLine(text, `${file.uri}:${i + 1}`, 0);
      } catch {
        continue; // the merge quarantines it; it cannot describe the table
      }
      const source = event.envelope.source;
      if (`${source.schema}.${source.table}` !== table || !event.fieldSchemas) continue;
      return { fields: [...event.fieldSchemas.values()], origin: event.origin };
    }
  }
  return undefined;
}

/**
 * The committed high-water mark of a file-fed table: {@link CDC_FILES_WATERMARK_PROPERTY} of the newest snapshot of
 * the current branch that carries one (a maintenance snapshot such as a compaction does not carry it, and must
 * not reset it). Empty when none does: nothing was applied yet.
 */
export function readFilesWatermark(metadata: TableMetadata): ChangeFilesWatermark {
  const byId = new Map(metadata.snapshots.map((s) => [s.snapshotId, s]));
  let id = metadata.currentSnapshotId ?? undefined;
  const seen = new Set<bigint>();
  while (id !== undefined && !seen.has(id)) {
    seen.add(id);
    const snapshot = byId.get(id);
    if (!snapshot) break; // expired ancestors: nothing older can be newer than what was found
    const text = snapshot.summary[CDC_FILES_WATERMARK_PROPERTY];
    if (text !== undefined) return parseFilesWatermark(text);
    id = snapshot.parentSnapshotId;
  }
  return {};
}
