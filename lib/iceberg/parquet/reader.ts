import {
  TimeUnit,
  Type,
  tableFromIPC,
  type Data,
  type DataType,
  type Decimal,
  type Field,
  type FixedSizeBinary,
  type Int,
  type Time,
  type Timestamp,
} from 'apache-arrow';
import { readParquet } from 'parquet-wasm';
import { uuidFromBytes } from '../bounds.js';
import { typeToString, type IcebergType, type Schema } from '../types.js';
import { floorDiv } from '../values.js';
import { PARQUET_FIELD_ID_KEY } from './arrow-types.js';
import { ParquetReadError } from './errors.js';
import { readParquetFooter } from './footer.js';

/**
 * Reads Parquet data files into values in the `values.ts` representation, matching columns to the table schema
 * by field id, as the spec requires ("Column Projection"): a renamed column is still found, a column added after
 * the file was written reads as null, and a column dropped from the schema is skipped.
 *
 * Memory: the file's bytes stay in memory; decoded values are produced one row group at a time by
 * {@link readParquetBatches}.
 */

/** What to read. */
export interface ReadParquetOptions {
  /** The schema to read the file as (usually the table's current schema); its field ids pick the columns. */
  schema: Pick<Schema, 'fields'>;
  /** Only these row groups (0-based), in this order. Default: all. */
  rowGroups?: readonly number[];
}

/**
 * The values of some rows, by top-level field id, one entry per row; `null` for nulls. Nested values: a struct
 * is an array in the order of the schema's fields, a list an array, a map a `Map`.
 */
export interface ParquetColumnBatch {
  rowCount: number;
  columns: Map<number, unknown[]>;
}

/**
 * Reads a file one row group at a time.
 *
 * @throws ParquetReadError when the bytes are not Parquet, a required field has no column in the file, or a
 *   column's type cannot be read as its field's type (after the spec's promotions: int → long, float → double,
 *   wider decimal).
 */
export function* readParquetBatches(bytes: Uint8Array, options: ReadParquetOptions): Generator<ParquetColumnBatch> {
  const footer = readParquetFooter(bytes);
  const groups = options.rowGroups ?? footer.rowGroups.map((_, i) => i);
  for (const index of groups) {
    const group = footer.rowGroups[index];
    if (!group) {
      throw new ParquetReadError(`row group ${index} does not exist; the file has ${footer.rowGroups.length}`);
    }
    const rowCount = Number(group.numRows);
    let ipc: Uint8Array;
    try {
      // One batch per row group: parquet-wasm's default of 1024 rows would split it into many small ones.
      ipc = readParquet(bytes, { rowGroups: [index], batchSize: Math.max(1, rowCount) }).intoIPCStream();
    } catch (err) {
      throw new ParquetReadError(`row group ${index} cannot be decoded (${describeError(err)})`, { cause: err });
    }
    const table = tableFromIPC(ipc);
    const byId = new Map<number, { field: Field; chunks: readonly Data[] }>();
    table.schema.fields.forEach((field, i) => {
      const id = fieldIdOf(field);
      if (id !== undefined) byId.set(id, { field, chunks: table.getChildAt(i)?.data ?? [] });
    });
    const columns = new Map<number, unknown[]>();
    for (const target of options.schema.fields) {
      const found = byId.get(target.id);
      if (!found) {
        if (target.required) throw missingRequired(target.name, target.id);
        columns.set(target.id, new Array<unknown>(rowCount).fill(null));
        continue;
      }
      const values: unknown[] = [];
      for (const chunk of found.chunks) readInto(values, target.type, target.name, chunk);
      columns.set(target.id, values);
    }
    yield { rowCount, columns };
  }
}

/** Reads a whole file (or some row groups) into columns by top-level field id. See {@link readParquetBatches}. */
export function readParquetFile(bytes: Uint8Array, options: ReadParquetOptions): ParquetColumnBatch {
  const columns = new Map<number, unknown[]>(options.schema.fields.map((f) => [f.id, []]));
  let rowCount = 0;
  for (const batch of readParquetBatches(bytes, options)) {
    rowCount += batch.rowCount;
    for (const [id, values] of batch.columns) {
      const all = columns.get(id) as unknown[];
      for (const v of values) all.push(v);
    }
  }
  return { rowCount, columns };
}

/** Reads a whole file as rows: arrays in the order of the schema's top-level fields. */
export function readParquetRows(bytes: Uint8Array, options: ReadParquetOptions): unknown[][] {
  const rows: unknown[][] = [];
  for (const batch of readParquetBatches(bytes, options)) {
    for (const row of columnsToRows(options.schema, batch)) rows.push(row);
  }
  return rows;
}

/** Turns a column batch into rows: arrays in the order of the schema's top-level fields. */
export function columnsToRows(schema: Pick<Schema, 'fields'>, batch: ParquetColumnBatch): unknown[][] {
  const columns = schema.fields.map((f) => batch.columns.get(f.id));
  const rows: unknown[][] = new Array<unknown[]>(batch.rowCount);
  for (let r = 0; r < batch.rowCount; r += 1) rows[r] = columns.map((c) => (c === undefined ? null : (c[r] ?? null)));
  return rows;
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function fieldIdOf(field: Field): number | undefined {
  const raw = field.metadata.get(PARQUET_FIELD_ID_KEY);
  if (raw === undefined) return undefined;
  const id = Number(raw);
  return Number.isInteger(id) ? id : undefined;
}

function missingRequired(name: string, id: number): ParquetReadError {
  return new ParquetReadError(
    `required field "${name}" (field id ${id}) has no column in the file; the file does not belong to this ` +
      'schema, or the field was made required after the file was written',
  );
}

function mismatch(column: string, type: IcebergType, arrowType: DataType): ParquetReadError {
  return new ParquetReadError(
    `column "${column}" holds ${String(arrowType)}, which cannot be read as ${typeToString(type)}`,
  );
}

/** Whether slot `i` of `data` is valid (IPC-read data is never sliced, so its offset is 0). */
function validity(data: Data): (i: number) => boolean {
  const bitmap = data.nullBitmap as Uint8Array | undefined;
  if (!bitmap || bitmap.length === 0 || data.nullCount === 0) return () => true;
  const offset = data.offset;
  return (i) => ((bitmap[(offset + i) >> 3] as number) & (1 << ((offset + i) & 7))) !== 0;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Appends the values of one Arrow chunk, converted to `type`, to `out`. */
function readInto(out: unknown[], type: IcebergType, column: string, data: Data): void {
  const n = data.length;
  const valid = validity(data);
  const arrowType = data.type as DataType;
  const push = (read: (i: number) => unknown): void => {
    for (let i = 0; i < n; i += 1) out.push(valid(i) ? read(i) : null);
  };
  const values = data.values as ArrayLike<number | bigint>;
  switch (type.kind) {
    case 'boolean': {
      if (data.typeId !== Type.Bool) throw mismatch(column, type, arrowType);
      const bits = data.values as Uint8Array;
      const offset = data.offset;
      push((i) => ((bits[(offset + i) >> 3] as number) & (1 << ((offset + i) & 7))) !== 0);
      return;
    }
    case 'int':
      if (data.typeId !== Type.Int || (arrowType as Int).bitWidth > 32) throw mismatch(column, type, arrowType);
      push((i) => Number(values[i]));
      return;
    case 'long':
      if (data.typeId !== Type.Int) throw mismatch(column, type, arrowType);
      push((i) => BigInt(values[i] as number | bigint));
      return;
    case 'float':
      if (data.typeId !== Type.Float || !(data.values instanceof Float32Array)) throw mismatch(column, type, arrowType);
      push((i) => values[i]);
      return;
    case 'double':
      if (data.typeId !== Type.Float || data.values instanceof Uint16Array) throw mismatch(column, type, arrowType);
      push((i) => values[i]);
      return;
    case 'date':
      if (data.typeId !== Type.Date || !(data.values instanceof Int32Array)) throw mismatch(column, type, arrowType);
      push((i) => values[i]);
      return;
    case 'time': {
      if (data.typeId !== Type.Time) throw mismatch(column, type, arrowType);
      const toMicros = unitToMicros((arrowType as Time).unit);
      push((i) => toMicros(BigInt(values[i] as number | bigint)));
      return;
    }
    case 'timestamp':
    case 'timestamptz': {
      if (data.typeId !== Type.Timestamp) throw mismatch(column, type, arrowType);
      const toMicros = unitToMicros((arrowType as Timestamp).unit);
      push((i) => toMicros(values[i] as bigint));
      return;
    }
    case 'string': {
      const bytes = variableWidth(data);
      if (!bytes) throw mismatch(column, type, arrowType);
      push((i) => {
        try {
          return utf8.decode(bytes.value(i));
        } catch (err) {
          throw new ParquetReadError(`column "${column}" holds a string that is not valid UTF-8`, { cause: err });
        }
      });
      return;
    }
    case 'binary': {
      const bytes = variableWidth(data);
      if (!bytes) throw mismatch(column, type, arrowType);
      push((i) => bytes.value(i).slice());
      return;
    }
    case 'uuid':
    case 'fixed': {
      const width = type.kind === 'fixed' ? type.length : 16;
      if (data.typeId !== Type.FixedSizeBinary || (arrowType as FixedSizeBinary).byteWidth !== width) {
        throw mismatch(column, type, arrowType);
      }
      const raw = data.values as Uint8Array;
      push((i) => {
        const value = raw.subarray(i * width, (i + 1) * width);
        return type.kind === 'uuid' ? uuidFromBytes(value) : value.slice();
      });
      return;
    }
    case 'decimal': {
      const decimal = arrowType as Decimal;
      if (data.typeId !== Type.Decimal || decimal.scale !== type.scale || decimal.precision > type.precision) {
        throw mismatch(column, type, arrowType);
      }
      const words = data.values as Uint32Array;
      const perValue = decimal.bitWidth / 32;
      const scale = type.scale;
      push((i) => {
        let unscaled = 0n;
        for (let w = perValue - 1; w >= 0; w -= 1)
          unscaled = (unscaled << 32n) | BigInt(words[i * perValue + w] as number);
        return { unscaled: BigInt.asIntN(decimal.bitWidth, unscaled), scale };
      });
      return;
    }
    case 'struct': {
      if (data.typeId !== Type.Struct) throw mismatch(column, type, arrowType);
      const childFields = (arrowType.children ?? []) as Field[];
      const childValues = type.fields.map((target) => {
        const at = childFields.findIndex((f) => fieldIdOf(f) === target.id);
        const child = data.children[at];
        if (at < 0 || !child) {
          if (target.required) throw missingRequired(`${column}.${target.name}`, target.id);
          return undefined;
        }
        const values: unknown[] = [];
        readInto(values, target.type, `${column}.${target.name}`, child);
        return values;
      });
      push((i) => childValues.map((values) => (values === undefined ? null : values[i])));
      return;
    }
    case 'list': {
      if (data.typeId !== Type.List && data.typeId !== Type.LargeList) throw mismatch(column, type, arrowType);
      const child = data.children[0];
      if (!child) throw mismatch(column, type, arrowType);
      const elements: unknown[] = [];
      readInto(elements, type.element, `${column}.element`, child);
      const offsets = data.valueOffsets as ArrayLike<number | bigint>;
      push((i) => elements.slice(Number(offsets[i]), Number(offsets[i + 1])));
      return;
    }
    case 'map': {
      const entries = data.children[0];
      if (data.typeId !== Type.Map || !entries) throw mismatch(column, type, arrowType);
      const [keyData, valueData] = entries.children;
      if (!keyData || !valueData) throw mismatch(column, type, arrowType);
      const keys: unknown[] = [];
      const vals: unknown[] = [];
      readInto(keys, type.key, `${column}.key`, keyData);
      readInto(vals, type.value, `${column}.value`, valueData);
      const offsets = data.valueOffsets as ArrayLike<number>;
      push((i) => {
        const map = new Map<unknown, unknown>();
        for (let e = offsets[i] as number; e < (offsets[i + 1] as number); e += 1) map.set(keys[e], vals[e]);
        return map;
      });
      return;
    }
  }
}

function unitToMicros(unit: TimeUnit): (v: bigint) => bigint {
  switch (unit) {
    case TimeUnit.SECOND:
      return (v) => v * 1_000_000n;
    case TimeUnit.MILLISECOND:
      return (v) => v * 1000n;
    case TimeUnit.MICROSECOND:
      return (v) => v;
    case TimeUnit.NANOSECOND:
      // Floor, so that instants before 1970 land in the right microsecond.
      return (v) => floorDiv(v, 1000n);
  }
}

/** Byte access to Utf8/Binary (32- or 64-bit offsets), or `undefined` for other types. */
function variableWidth(data: Data): { value: (i: number) => Uint8Array } | undefined {
  switch (data.typeId) {
    case Type.Utf8:
    case Type.Binary:
    case Type.LargeUtf8:
    case Type.LargeBinary: {
      const offsets = data.valueOffsets as ArrayLike<number | bigint>;
      const bytes = data.values as Uint8Array;
      return { value: (i) => bytes.subarray(Number(offsets[i]), Number(offsets[i + 1])) };
    }
    default:
      return undefined;
  }
}

const POSITION_DELETE_PATH_ID = 2147483546;
const POSITION_DELETE_POS_ID = 2147483545;
const TWO_POW_32 = 4294967296;

/**
 * Reads a position-delete file into the deleted positions (as numbers) by data file path. Faster than
 * {@link readParquetFile} for the same result: a path is decoded once per run of equal paths (the spec sorts delete
 * files by path, so a file holds a few long runs), and positions are read from the Int64 column's words without a
 * `BigInt` each. Falls back to the general reader for files it does not expect (nulls, sliced data).
 *
 * @throws ParquetReadError when the bytes are not Parquet or lack the `file_path` / `pos` columns.
 */
export function readPositionDeletePositions(bytes: Uint8Array): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const footer = readParquetFooter(bytes);
  const decoder = new TextDecoder();
  for (let index = 0; index < footer.rowGroups.length; index++) {
    const rowCount = Number(footer.rowGroups[index]!.numRows);
    let ipc: Uint8Array;
    try {
      ipc = readParquet(bytes, { rowGroups: [index], batchSize: Math.max(1, rowCount) }).intoIPCStream();
    } catch (err) {
      throw new ParquetReadError(`row group ${index} cannot be decoded (${describeError(err)})`, { cause: err });
    }
    const table = tableFromIPC(ipc);
    const pathAt = table.schema.fields.findIndex((f) => fieldIdOf(f) === POSITION_DELETE_PATH_ID);
    const posAt = table.schema.fields.findIndex((f) => fieldIdOf(f) === POSITION_DELETE_POS_ID);
    if (pathAt < 0) throw missingRequired('file_path', POSITION_DELETE_PATH_ID);
    if (posAt < 0) throw missingRequired('pos', POSITION_DELETE_POS_ID);
    for (const batch of table.batches) {
      const paths = batch.getChildAt(pathAt)?.data[0];
      const positions = batch.getChildAt(posAt)?.data[0];
      if (
        paths === undefined ||
        positions === undefined ||
        paths.offset !== 0 ||
        positions.offset !== 0 ||
        paths.nullCount > 0 ||
        positions.nullCount > 0 ||
        paths.typeId !== Type.Utf8 ||
        positions.typeId !== Type.Int ||
        (positions.type as Int).bitWidth !== 64
      ) {
        return slowPositionDeletes(bytes);
      }
      const offsets = paths.valueOffsets as Int32Array;
      const chars = paths.values as Uint8Array;
      const words = new Uint32Array(
        (positions.values as BigInt64Array).buffer,
        (positions.values as BigInt64Array).byteOffset,
        positions.length * 2,
      );
      let runStart = -1;
      let runEnd = -1;
      let list: number[] | undefined;
      for (let i = 0; i < paths.length; i++) {
        const start = offsets[i]!;
        const end = offsets[i + 1]!;
        if (list === undefined || !sameBytes(chars, start, end, runStart, runEnd)) {
          const path = decoder.decode(chars.subarray(start, end));
          list = out.get(path);
          if (list === undefined) out.set(path, (list = []));
          runStart = start;
          runEnd = end;
        }
        // Little-endian words of a non-negative position below 2^53.
        list.push(words[2 * i]! + words[2 * i + 1]! * TWO_POW_32);
      }
    }
  }
  return out;
}

function sameBytes(chars: Uint8Array, start: number, end: number, otherStart: number, otherEnd: number): boolean {
  if (end - start !== otherEnd - otherStart) return false;
  for (let k = end - start - 1; k >= 0; k--) if (chars[start + k] !== chars[otherStart + k]) return false;
  return true;
}

function slowPositionDeletes(bytes: Uint8Array): Map<string, number[]> {
  const batch = readParquetFile(bytes, {
    schema: {
      fields: [
        { id: POSITION_DELETE_PATH_ID, name: 'file_path', required: true, type: { kind: 'string' } },
        { id: POSITION_DELETE_POS_ID, name: 'pos', required: true, type: { kind: 'long' } },
      ],
    },
  });
  const paths = batch.columns.get(POSITION_DELETE_PATH_ID) as string[];
  const positions = batch.columns.get(POSITION_DELETE_POS_ID) as bigint[];
  const out = new Map<string, number[]>();
  for (let i = 0; i < batch.rowCount; i++) {
    const list = out.get(paths[i]!);
    if (list) list.push(Number(positions[i]));
    else out.set(paths[i]!, [Number(positions[i])]);
  }
  return out;
}
