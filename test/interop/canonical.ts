import type { FileIO } from '../../lib/storage/file-io.js';
import type { TableMetadata } from '../../lib/iceberg/metadata-json.js';
import { scanReadSchema, scanTable, selectSnapshot, type SnapshotSelector } from '../../lib/iceberg/scan.js';
import { typeToString, type IcebergType, type NestedField, type Schema } from '../../lib/iceberg/types.js';
import {
  civilFromDays,
  decimalToPlainString,
  floorDiv,
  isDecimalValue,
  type DecimalValue,
} from '../../lib/iceberg/values.js';
import type { CanonicalColumn, CanonicalRow, CanonicalType, CanonicalValue } from './engines.js';

/**
 * Our engine's value representation (lib/iceberg/values.ts) in the interop harness's canonical JSON encoding
 * (docs/interop.md, scripts/interop/canonical_json.py), so that rows built in TypeScript, rows read by our own scan,
 * and rows printed by pyiceberg, DuckDB and Spark all compare with `toEqual`.
 */

const MICROS_PER_DAY = 86_400_000_000n;
const MICROS_PER_SECOND = 1_000_000n;

function pad(n: number | bigint, width: number): string {
  return String(n).padStart(width, '0');
}

/** `YYYY-MM-DD` as Python's `date.isoformat()` (years 1..9999, the range every engine here supports). */
export function canonicalDate(days: number): string {
  const { year, month, day } = civilFromDays(days);
  if (year < 1 || year > 9999) throw new Error(`date ${days} (year ${year}) has no canonical form (years 1..9999)`);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** `HH:MM:SS.ffffff` (always six fraction digits). */
export function canonicalTime(micros: bigint): string {
  const seconds = micros / MICROS_PER_SECOND;
  const fraction = micros % MICROS_PER_SECOND;
  return `${pad(seconds / 3600n, 2)}:${pad((seconds / 60n) % 60n, 2)}:${pad(seconds % 60n, 2)}.${pad(fraction, 6)}`;
}

/** `YYYY-MM-DDTHH:MM:SS.ffffff`, no zone (µs from the epoch; pre-1970 values floor). */
export function canonicalTimestamp(micros: bigint): string {
  const days = floorDiv(micros, MICROS_PER_DAY);
  return `${canonicalDate(Number(days))}T${canonicalTime(micros - days * MICROS_PER_DAY)}`;
}

/** The shortest decimal that reads back as the same float32, like canonical_json.py's `_float32_shortest`. */
function float32Shortest(value: number): number {
  const target = Math.fround(value);
  for (let digits = 1; digits < 10; digits += 1) {
    const candidate = Number(target.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return target;
}

function specialFloat(value: number): string | undefined {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (Object.is(value, -0)) return '-0.0';
  return undefined;
}

function bytesOf(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new Error(`expected a Uint8Array for ${what}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Map) return `Map(${value.size})`;
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

function rescale(value: DecimalValue, scale: number): DecimalValue {
  if (value.scale === scale) return value;
  if (value.scale < scale) return { unscaled: value.unscaled * 10n ** BigInt(scale - value.scale), scale };
  const factor = 10n ** BigInt(value.scale - scale);
  if (value.unscaled % factor !== 0n) throw new Error(`decimal ${describe(value)} does not fit scale ${scale}`);
  return { unscaled: value.unscaled / factor, scale };
}

/**
 * Python's `json.dumps(value, sort_keys=True)` (ASCII-escaped, `", "` and `": "` separators): canonical_json.py
 * sorts map entries by this string of the encoded key, so non-ASCII keys sort by their `\uXXXX` escapes.
 */
export function pythonJsonDumps(value: CanonicalValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (Number.isInteger(value) && Math.abs(value) < 1e16) return String(value);
    throw new Error(`pythonJsonDumps: a non-integer number (${value}) as a map key is not supported here`);
  }
  if (typeof value === 'string') {
    let out = '"';
    for (let i = 0; i < value.length; i += 1) {
      const code = value.charCodeAt(i);
      const ch = value[i] as string;
      if (ch === '"') out += '\\"';
      else if (ch === '\\') out += '\\\\';
      else if (ch === '\n') out += '\\n';
      else if (ch === '\r') out += '\\r';
      else if (ch === '\t') out += '\\t';
      else if (ch === '\b') out += '\\b';
      else if (ch === '\f') out += '\\f';
      else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else out += ch;
    }
    return `${out}"`;
  }
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${pythonJsonDumps(k)}: ${pythonJsonDumps(value[k] as CanonicalValue)}`).join(', ')}}`;
}

/** The canonical JSON type of an Iceberg type, as pyiceberg's read script reports it. */
export function canonicalType(type: IcebergType): CanonicalType {
  switch (type.kind) {
    case 'struct':
      return { type: 'struct', fields: type.fields.map(canonicalColumn) };
    case 'list':
      return { type: 'list', element: canonicalType(type.element), 'element-required': type.elementRequired };
    case 'map':
      return {
        type: 'map',
        key: canonicalType(type.key),
        value: canonicalType(type.value),
        'value-required': type.valueRequired,
      };
    default:
      return typeToString(type);
  }
}

export function canonicalColumn(field: NestedField): CanonicalColumn {
  return { name: field.name, type: canonicalType(field.type), required: field.required };
}

/** The canonical columns of a schema. */
export function canonicalSchema(schema: Pick<Schema, 'fields'>): CanonicalColumn[] {
  return schema.fields.map(canonicalColumn);
}

/**
 * One value in the `values.ts` representation (or the nested forms the Parquet writer accepts and the reader
 * returns: struct as array in field order or object by name, list as array, map as `Map` or `[key, value][]`)
 * in the canonical encoding of `type`.
 */
export function toCanonical(value: unknown, type: IcebergType): CanonicalValue {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'boolean':
      if (typeof value !== 'boolean') break;
      return value;
    case 'int':
    case 'date':
      if (typeof value !== 'number') break;
      return type.kind === 'int' ? value : canonicalDate(value);
    case 'long':
      if (typeof value !== 'bigint' && typeof value !== 'number') break;
      return String(value);
    case 'time':
      if (typeof value !== 'bigint') break;
      return canonicalTime(value);
    case 'timestamp':
      if (typeof value !== 'bigint') break;
      return canonicalTimestamp(value);
    case 'timestamptz':
      if (typeof value !== 'bigint') break;
      return `${canonicalTimestamp(value)}+00:00`;
    case 'float':
    case 'double': {
      if (typeof value !== 'number') break;
      const special = specialFloat(value);
      if (special !== undefined) return special;
      return type.kind === 'float' ? float32Shortest(value) : value;
    }
    case 'decimal':
      if (!isDecimalValue(value)) break;
      return decimalToPlainString(rescale(value, type.scale));
    case 'string':
      if (typeof value !== 'string') break;
      return value;
    case 'uuid':
      if (typeof value !== 'string') break;
      return value.toLowerCase();
    case 'fixed':
    case 'binary':
      return Buffer.from(bytesOf(value, typeToString(type))).toString('base64');
    case 'struct': {
      if (typeof value !== 'object') break;
      const out: Record<string, CanonicalValue> = {};
      type.fields.forEach((field, i) => {
        const child = Array.isArray(value) ? value[i] : (value as Record<string, unknown>)[field.name];
        out[field.name] = toCanonical(child, field.type);
      });
      return out;
    }
    case 'list':
      if (!Array.isArray(value)) break;
      return value.map((item) => toCanonical(item, type.element));
    case 'map': {
      const pairs: [unknown, unknown][] =
        value instanceof Map ? [...(value as Map<unknown, unknown>)] : Array.isArray(value) ? value : [];
      if (!(value instanceof Map) && !Array.isArray(value)) break;
      return pairs
        .map(([k, v]) => ({ key: toCanonical(k, type.key), value: toCanonical(v, type.value) }))
        .map((entry) => ({ entry, sortKey: pythonJsonDumps(entry.key) }))
        .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
        .map(({ entry }) => entry);
    }
  }
  throw new Error(`cannot encode ${describe(value)} as ${typeToString(type)}`);
}

/** A row (array in field order, or object by column name) in the canonical encoding, keyed by column name. */
export function rowToCanonical(fields: readonly NestedField[], row: readonly unknown[] | Record<string, unknown>) {
  const out: CanonicalRow = {};
  fields.forEach((field, i) => {
    out[field.name] = toCanonical(
      Array.isArray(row) ? row[i] : (row as Record<string, unknown>)[field.name],
      field.type,
    );
  });
  return out;
}

/** Orders canonical values as the scripts' `--order-by` does on raw values: nulls first, longs and decimals numerically. */
function compareCanonical(a: CanonicalValue | undefined, b: CanonicalValue | undefined): number {
  if (a === null || a === undefined) return b === null || b === undefined ? 0 : -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') {
    if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
      const x = BigInt(a);
      const y = BigInt(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Sorts canonical rows by the given columns (nulls first, long strings as numbers), like `--order-by`. */
export function sortRows(rows: readonly CanonicalRow[], orderBy: readonly string[]): CanonicalRow[] {
  return [...rows].sort((r, s) => {
    for (const key of orderBy) {
      const c = compareCanonical(r[key], s[key]);
      if (c !== 0) return c;
    }
    return 0;
  });
}

/** What {@link readWithOurEngine} returns, shaped like the harness's `EngineReadResult`. */
export interface OurReadResult {
  schema: CanonicalColumn[];
  rows: CanonicalRow[];
  snapshotId: string | null;
}

/**
 * Reads a snapshot with OUR engine (`scanTable`) and returns canonical rows, like the harness's readers. The rows
 * come in the schema that `scanTable` reads with (the table's current schema).
 */
export async function readWithOurEngine(
  io: FileIO,
  metadata: TableMetadata,
  options: SnapshotSelector & { orderBy?: readonly string[] } = {},
): Promise<OurReadResult> {
  // Time travel reads in the selected snapshot's schema, as pyiceberg, DuckDB and Spark do.
  const schema = scanReadSchema(metadata, options);
  const snapshot = selectSnapshot(metadata, options);
  const rows: CanonicalRow[] = [];
  for await (const batch of scanTable(io, metadata, options)) {
    const columns = schema.fields.map((f) => batch.columns.get(f.id));
    for (let r = 0; r < batch.rowCount; r += 1) {
      rows.push(
        rowToCanonical(
          schema.fields,
          columns.map((c) => c?.[r] ?? null),
        ),
      );
    }
  }
  return {
    schema: canonicalSchema(schema),
    rows: options.orderBy ? sortRows(rows, options.orderBy) : rows,
    snapshotId: snapshot ? String(snapshot.snapshotId) : null,
  };
}
