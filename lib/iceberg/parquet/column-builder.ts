import { makeData, type Data, type DataType, type Field, type Map_, type Struct } from 'apache-arrow';
import { compareBytes, compareStrings } from '../bounds.js';
import { typeToString, type IcebergType, type NestedField, type PrimitiveType } from '../types.js';
import { isDecimalValue, type DecimalValue, type PrimitiveValue } from '../values.js';
import { arrowField } from './arrow-types.js';
import { ParquetWriteError } from './errors.js';

/**
 * Turns column values in the `values.ts` representation into Arrow data for parquet-wasm, validating every value
 * and collecting, per leaf column, what the Parquet footer cannot give exactly: bounds in Iceberg's order and
 * NaN counts. (Value counts, null counts and sizes come from the footer; see `footer.ts`.)
 */

/**
 * The values of one column, one entry per row, in the `values.ts` representation; `null` or `undefined` is a null.
 * Nested values: a struct is an array in field order or an object keyed by field name; a list is an array; a map
 * is a `Map` or an array of `[key, value]` pairs. Typed arrays are the fast path for columns without nulls:
 * `Int32Array` for int/date, `BigInt64Array` for long/time/timestamp/timestamptz, `Float32Array` for float,
 * `Float64Array` for double.
 */
export type ColumnValues = readonly unknown[] | Int32Array | BigInt64Array | Float32Array | Float64Array;

/** Bounds (in Iceberg order, before truncation) and NaN count of one leaf column, across all row groups. */
export class LeafStats {
  min: PrimitiveValue | undefined = undefined;
  max: PrimitiveValue | undefined = undefined;
  nanCount = 0;

  constructor(
    readonly fieldId: number,
    readonly type: PrimitiveType,
    /** False inside lists and maps: like Java's writer, Iceberg keeps only counts for repeated columns. */
    readonly keepBounds: boolean,
  ) {}
}

/** One column of the write plan: a schema field, list element, or map key/value, with its Arrow type. */
export interface ColumnPlan {
  readonly id: number;
  /** Dotted name for messages (`address.zip`, `tags.element`, `attrs.key`). */
  readonly fullName: string;
  readonly name: string;
  /** Whether a null is an error (outside a null parent). */
  readonly required: boolean;
  readonly type: IcebergType;
  readonly arrowType: DataType;
  /** Struct fields; `[element]` for a list; `[key, value]` for a map. */
  readonly children: readonly ColumnPlan[];
  /** Set for primitive columns. */
  readonly stats?: LeafStats;
}

/** Plans the top-level fields of a schema (and everything nested in them). */
export function planColumns(fields: readonly NestedField[]): { plans: ColumnPlan[]; arrowFields: Field[] } {
  const arrowFields = fields.map(arrowField);
  const plans = fields.map((field, i) =>
    planColumn(field.id, field.name, field.name, field.required, field.type, (arrowFields[i] as Field).type, false),
  );
  return { plans, arrowFields };
}

function planColumn(
  id: number,
  name: string,
  fullName: string,
  required: boolean,
  type: IcebergType,
  arrowType: DataType,
  repeated: boolean,
): ColumnPlan {
  const childTypes = (arrowType.children ?? []) as Field[];
  const childType = (i: number): DataType => (childTypes[i] as Field).type;
  switch (type.kind) {
    case 'struct':
      return {
        id,
        name,
        fullName,
        required,
        type,
        arrowType,
        children: type.fields.map((f, i) =>
          planColumn(f.id, f.name, `${fullName}.${f.name}`, f.required, f.type, childType(i), repeated),
        ),
      };
    case 'list':
      return {
        id,
        name,
        fullName,
        required,
        type,
        arrowType,
        children: [
          planColumn(
            type.elementId,
            'element',
            `${fullName}.element`,
            type.elementRequired,
            type.element,
            childType(0),
            true,
          ),
        ],
      };
    case 'map': {
      const entryTypes = (childType(0).children ?? []) as Field[];
      return {
        id,
        name,
        fullName,
        required,
        type,
        arrowType,
        children: [
          planColumn(type.keyId, 'key', `${fullName}.key`, true, type.key, (entryTypes[0] as Field).type, true),
          planColumn(
            type.valueId,
            'value',
            `${fullName}.value`,
            type.valueRequired,
            type.value,
            (entryTypes[1] as Field).type,
            true,
          ),
        ],
      };
    }
    default:
      return { id, name, fullName, required, type, arrowType, children: [], stats: new LeafStats(id, type, !repeated) };
  }
}

/** Every leaf's stats, depth first. */
export function collectLeafStats(plans: readonly ColumnPlan[], out: LeafStats[] = []): LeafStats[] {
  for (const plan of plans) {
    if (plan.stats) out.push(plan.stats);
    collectLeafStats(plan.children, out);
  }
  return out;
}

/**
 * Where a slice of values sits in the input, for messages: local index `i` is input row `rows[i]`, or
 * `rowBase + i` without `rows`. `absent[i]` = 1 marks a slot whose parent struct is null: it is written as a
 * placeholder that counts neither as a value nor as a null violation.
 */
interface SliceContext {
  readonly rowBase: number;
  readonly rows?: Int32Array;
  readonly absent?: Uint8Array;
}

function rowOf(ctx: SliceContext, i: number): number {
  return ctx.rows ? (ctx.rows[i] as number) : ctx.rowBase + i;
}

// makeData is overloaded per type; the builders below pass the props each type needs.
const makeAnyData = makeData as unknown as (props: object) => Data;

/** Validity bitmap, allocated on the first null. */
class Validity {
  bitmap: Uint8Array | undefined;
  nullCount = 0;

  constructor(private readonly length: number) {}

  setNull(i: number): void {
    if (!this.bitmap) this.bitmap = new Uint8Array((this.length + 7) >> 3).fill(0xff);
    this.bitmap[i >> 3] = (this.bitmap[i >> 3] as number) & ~(1 << (i & 7));
    this.nullCount += 1;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === 'object') return Object.prototype.toString.call(value);
  return String(value);
}

function wrongValue(plan: ColumnPlan, ctx: SliceContext, i: number, expected: string, value: unknown): never {
  throw new ParquetWriteError(
    plan.fullName,
    plan.id,
    rowOf(ctx, i),
    `expected ${expected} for ${typeToString(plan.type)}, got ${describe(value)}`,
  );
}

function requiredNull(plan: ColumnPlan, ctx: SliceContext, i: number): never {
  throw new ParquetWriteError(
    plan.fullName,
    plan.id,
    rowOf(ctx, i),
    'the field is required but the value is null; give it a value, or make the field optional ' +
      '(readers filter "IS NULL" on a required field to nothing, so a null there would be lost silently)',
  );
}

/**
 * Handles a null or absent slot: a null where the field is required is an error; an optional field gets a null
 * bit; a required field under a null parent keeps a placeholder that readers never see.
 */
function nullSlot(plan: ColumnPlan, ctx: SliceContext, i: number, validity: Validity): void {
  const absent = ctx.absent !== undefined && ctx.absent[i] === 1;
  if (plan.required) {
    if (!absent) requiredNull(plan, ctx, i);
  } else {
    validity.setNull(i);
  }
}

function notAnArray(plan: ColumnPlan, values: unknown): never {
  const typed =
    plan.type.kind === 'int' || plan.type.kind === 'date'
      ? ' or an Int32Array'
      : plan.type.kind === 'long' ||
          plan.type.kind === 'time' ||
          plan.type.kind === 'timestamp' ||
          plan.type.kind === 'timestamptz'
        ? ' or a BigInt64Array'
        : plan.type.kind === 'float'
          ? ' or a Float32Array'
          : plan.type.kind === 'double'
            ? ' or a Float64Array'
            : '';
  throw new ParquetWriteError(
    plan.fullName,
    plan.id,
    undefined,
    `the column's values must be an array${typed}, got ${describe(values)}`,
  );
}

/**
 * Builds the Arrow data for rows `start..end` of one column.
 *
 * @throws ParquetWriteError naming the column and row of the first bad value.
 */
export function buildColumnData(
  plan: ColumnPlan,
  values: ColumnValues,
  start: number,
  end: number,
  ctx: SliceContext = { rowBase: start },
): Data {
  switch (plan.type.kind) {
    case 'boolean':
      return buildBoolean(plan, asArray(plan, values), start, end, ctx);
    case 'int':
    case 'date':
      return buildInt32(plan, values, start, end, ctx);
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return buildInt64(plan, values, start, end, ctx);
    case 'float':
    case 'double':
      return buildFloat(plan, values, start, end, ctx);
    case 'string':
      return buildString(plan, asArray(plan, values), start, end, ctx);
    case 'binary':
      return buildBinary(plan, asArray(plan, values), start, end, ctx);
    case 'uuid':
      return buildUuid(plan, asArray(plan, values), start, end, ctx);
    case 'fixed':
      return buildFixed(plan, plan.type.length, asArray(plan, values), start, end, ctx);
    case 'decimal':
      return buildDecimal(plan, plan.type.precision, plan.type.scale, asArray(plan, values), start, end, ctx);
    case 'struct':
      return buildStruct(plan, asArray(plan, values), start, end, ctx);
    case 'list':
      return buildList(plan, asArray(plan, values), start, end, ctx);
    case 'map':
      return buildMap(plan, asArray(plan, values), start, end, ctx);
  }
}

function asArray(plan: ColumnPlan, values: ColumnValues): readonly unknown[] {
  if (!Array.isArray(values)) notAnArray(plan, values);
  return values as readonly unknown[];
}

// ---- primitives -------------------------------------------------------------------------------------------

function buildBoolean(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const bits = new Uint8Array((n + 7) >> 3);
  const validity = new Validity(n);
  let sawFalse = false;
  let sawTrue = false;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (v === true) {
      bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
      sawTrue = true;
    } else if (v === false) {
      sawFalse = true;
    } else {
      wrongValue(plan, ctx, i, 'a boolean', v);
    }
  }
  const stats = plan.stats as LeafStats;
  if (sawFalse || sawTrue) {
    if (stats.min === undefined || (sawFalse && stats.min === true)) stats.min = !sawFalse;
    if (stats.max === undefined || (sawTrue && stats.max === false)) stats.max = sawTrue;
  }
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: bits,
  });
}

function buildInt32(plan: ColumnPlan, values: ColumnValues, start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  let out: Int32Array;
  let min = Infinity;
  let max = -Infinity;
  if (values instanceof Int32Array) {
    out = values.subarray(start, end);
    for (let i = 0; i < n; i += 1) {
      const v = out[i] as number;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  } else {
    const array = asArray(plan, values);
    out = new Int32Array(n);
    const expected = plan.type.kind === 'date' ? 'days from 1970-01-01 as a 32-bit integer number' : 'a 32-bit integer';
    for (let i = 0; i < n; i += 1) {
      const v = array[start + i];
      if (v === null || v === undefined || ctx.absent?.[i] === 1) {
        nullSlot(plan, ctx, i, validity);
      } else if (typeof v === 'number' && (v | 0) === v) {
        out[i] = v;
        if (v < min) min = v;
        if (v > max) max = v;
      } else {
        wrongValue(plan, ctx, i, expected, v);
      }
    }
  }
  const stats = plan.stats as LeafStats;
  if (min <= max) {
    if (stats.min === undefined || min < (stats.min as number)) stats.min = min;
    if (stats.max === undefined || max > (stats.max as number)) stats.max = max;
  }
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: out,
  });
}

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const TIME_MAX = 86_400_000_000n - 1n;

function buildInt64(plan: ColumnPlan, values: ColumnValues, start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const isTime = plan.type.kind === 'time';
  const lo = isTime ? 0n : LONG_MIN;
  const hi = isTime ? TIME_MAX : LONG_MAX;
  const expected = isTime
    ? 'microseconds from midnight as a bigint in 0..86399999999'
    : plan.type.kind === 'long'
      ? 'a bigint in the 64-bit range'
      : 'microseconds from 1970-01-01T00:00Z as a bigint';
  let out: BigInt64Array;
  let min: bigint | undefined;
  let max: bigint | undefined;
  if (values instanceof BigInt64Array) {
    out = values.subarray(start, end);
    for (let i = 0; i < n; i += 1) {
      const v = out[i] as bigint;
      if (isTime && (v < lo || v > hi)) wrongValue(plan, ctx, i, expected, v);
      if (min === undefined || v < min) min = v;
      if (max === undefined || v > max) max = v;
    }
  } else {
    const array = asArray(plan, values);
    out = new BigInt64Array(n);
    for (let i = 0; i < n; i += 1) {
      const v = array[start + i];
      if (v === null || v === undefined || ctx.absent?.[i] === 1) {
        nullSlot(plan, ctx, i, validity);
      } else if (typeof v === 'bigint' && v >= lo && v <= hi) {
        out[i] = v;
        if (min === undefined || v < min) min = v;
        if (max === undefined || v > max) max = v;
      } else {
        wrongValue(plan, ctx, i, expected, v);
      }
    }
  }
  const stats = plan.stats as LeafStats;
  if (min !== undefined && max !== undefined) {
    if (stats.min === undefined || min < (stats.min as bigint)) stats.min = min;
    if (stats.max === undefined || max > (stats.max as bigint)) stats.max = max;
  }
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: out,
  });
}

function buildFloat(plan: ColumnPlan, values: ColumnValues, start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const single = plan.type.kind === 'float';
  let out: Float32Array | Float64Array;
  if (single ? values instanceof Float32Array : values instanceof Float64Array) {
    out = (values as Float32Array | Float64Array).subarray(start, end);
  } else {
    const array = asArray(plan, values);
    out = single ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i += 1) {
      const v = array[start + i];
      if (v === null || v === undefined || ctx.absent?.[i] === 1) {
        nullSlot(plan, ctx, i, validity);
      } else if (typeof v === 'number') {
        out[i] = v;
      } else {
        wrongValue(plan, ctx, i, 'a number', v);
      }
    }
  }
  // Bounds follow Java's Float.compare: NaN is left out (and counted), -0 sorts before +0.
  let min = Infinity;
  let max = -Infinity;
  let nan = 0;
  let any = false;
  const bitmap = validity.bitmap;
  const absent = ctx.absent;
  for (let i = 0; i < n; i += 1) {
    if ((bitmap && ((bitmap[i >> 3] as number) & (1 << (i & 7))) === 0) || absent?.[i] === 1) continue;
    const v = out[i] as number;
    if (v !== v) {
      nan += 1;
      continue;
    }
    any = true;
    if (v < min || (v === 0 && min === 0 && Object.is(v, -0))) min = v;
    if (v > max || (v === 0 && max === 0 && Object.is(max, -0))) max = v;
  }
  const stats = plan.stats as LeafStats;
  stats.nanCount += nan;
  if (any) {
    const sMin = stats.min as number | undefined;
    const sMax = stats.max as number | undefined;
    if (sMin === undefined || min < sMin || (min === 0 && sMin === 0 && Object.is(min, -0))) stats.min = min;
    if (sMax === undefined || max > sMax || (max === 0 && sMax === 0 && Object.is(sMax, -0))) stats.max = max;
  }
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: out,
  });
}

/**
 * A growable byte buffer for variable-width values. A Buffer, because `Buffer.write(text, offset)` encodes UTF-8
 * in place, where `TextEncoder.encodeInto` needs a new subarray view per value (about twice the cost).
 */
class ByteSink {
  bytes: Buffer;
  length = 0;

  constructor(initial: number) {
    this.bytes = Buffer.allocUnsafeSlow(Math.max(64, initial));
  }

  reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.bytes.length * 2, this.length + extra));
    this.bytes.copy(next, 0, 0, this.length);
    this.bytes = next;
  }
}

// Arrow's Utf8/Binary offsets are 32-bit; a row group stays far below this.
const MAX_VARIABLE_BYTES = 2 ** 31 - 1;

function offsetOverflow(plan: ColumnPlan): never {
  throw new ParquetWriteError(
    plan.fullName,
    plan.id,
    undefined,
    'the values of one row group exceed 2 GiB; write smaller row groups (targetRowGroupBytes, maxRowGroupRows)',
  );
}

// `String.prototype.isWellFormed` is in Node 20 but not in the ES2023 lib this project compiles against.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function buildString(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const offsets = new Int32Array(n + 1);
  const sink = new ByteSink(n * 16);
  let min: string | undefined;
  let max: string | undefined;
  let exact = false;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (typeof v === 'string') {
      // TextEncoder would silently turn a lone surrogate into U+FFFD; refuse it instead, like checkValue.
      if (!isWellFormed(v)) wrongValue(plan, ctx, i, 'a well-formed Unicode string (it has a lone surrogate)', v);
      sink.reserve(v.length * 3);
      // Room for 3 bytes per UTF-16 unit is always enough, so write() never truncates.
      const written = sink.bytes.write(v, sink.length, 'utf8');
      sink.length += written;
      if (sink.length > MAX_VARIABLE_BYTES) offsetOverflow(plan);
      // JavaScript's `<` orders ASCII strings by code point already and is ~8× faster than compareStrings;
      // from the first non-ASCII string on, every comparison is exact.
      if (written !== v.length) exact = true;
      if (min === undefined) {
        min = v;
        max = v;
      } else if (exact ? compareStrings(v, min) < 0 : v < min) {
        min = v;
      } else if (exact ? compareStrings(v, max as string) > 0 : v > (max as string)) {
        max = v;
      }
    } else {
      wrongValue(plan, ctx, i, 'a string', v);
    }
    offsets[i + 1] = sink.length;
  }
  mergeBounds(plan.stats as LeafStats, min, max, compareStrings);
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    valueOffsets: offsets,
    data: sink.bytes.subarray(0, sink.length),
  });
}

function buildBinary(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const offsets = new Int32Array(n + 1);
  const sink = new ByteSink(n * 16);
  let min: Uint8Array | undefined;
  let max: Uint8Array | undefined;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (v instanceof Uint8Array) {
      sink.reserve(v.length);
      sink.bytes.set(v, sink.length);
      sink.length += v.length;
      if (sink.length > MAX_VARIABLE_BYTES) offsetOverflow(plan);
      if (min === undefined) {
        min = v;
        max = v;
      } else if (compareBytes(v, min) < 0) {
        min = v;
      } else if (compareBytes(v, max as Uint8Array) > 0) {
        max = v;
      }
    } else {
      wrongValue(plan, ctx, i, 'a Uint8Array', v);
    }
    offsets[i + 1] = sink.length;
  }
  // Copies, so that later changes to the caller's arrays cannot change the bounds.
  mergeBounds(plan.stats as LeafStats, min?.slice(), max?.slice(), compareBytes);
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    valueOffsets: offsets,
    data: sink.bytes.subarray(0, sink.length),
  });
}

function buildFixed(
  plan: ColumnPlan,
  width: number,
  values: readonly unknown[],
  start: number,
  end: number,
  ctx: SliceContext,
) {
  const n = end - start;
  const validity = new Validity(n);
  const out = new Uint8Array(n * width);
  let min: Uint8Array | undefined;
  let max: Uint8Array | undefined;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (v instanceof Uint8Array && v.length === width) {
      out.set(v, i * width);
      if (min === undefined) {
        min = v;
        max = v;
      } else if (compareBytes(v, min) < 0) {
        min = v;
      } else if (compareBytes(v, max as Uint8Array) > 0) {
        max = v;
      }
    } else {
      wrongValue(plan, ctx, i, `a Uint8Array of ${width} bytes`, v);
    }
  }
  mergeBounds(plan.stats as LeafStats, min?.slice(), max?.slice(), compareBytes);
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: out,
  });
}

const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i += 1) HEX[48 + i] = i;
for (let i = 0; i < 6; i += 1) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

/** Parses `8-4-4-4-12` hex into 16 bytes at `out[at..]`; false when the text is not a UUID. */
function parseUuidInto(text: string, out: Uint8Array, at: number): boolean {
  if (text.length !== 36) return false;
  let j = at;
  for (let i = 0; i < 36;) {
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (text.charCodeAt(i) !== 45) return false;
      i += 1;
      continue;
    }
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const hi = a < 128 ? (HEX[a] as number) : -1;
    const lo = b < 128 ? (HEX[b] as number) : -1;
    if (hi < 0 || lo < 0) return false;
    out[j++] = (hi << 4) | lo;
    i += 2;
  }
  return true;
}

function buildUuid(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const out = new Uint8Array(n * 16);
  let minAt = -1;
  let maxAt = -1;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (typeof v === 'string' && parseUuidInto(v, out, i * 16)) {
      const bytes = out.subarray(i * 16, i * 16 + 16);
      if (minAt < 0) {
        minAt = i;
        maxAt = i;
      } else if (compareBytes(bytes, out.subarray(minAt * 16, minAt * 16 + 16)) < 0) {
        minAt = i;
      } else if (compareBytes(bytes, out.subarray(maxAt * 16, maxAt * 16 + 16)) > 0) {
        maxAt = i;
      }
    } else {
      wrongValue(plan, ctx, i, 'a UUID string like f79c3e09-677c-4bbd-a479-3f349cb785e7', v);
    }
  }
  if (minAt >= 0) {
    const asText = (at: number) => uuidText(out.subarray(at * 16, at * 16 + 16));
    mergeBounds(plan.stats as LeafStats, asText(minAt), asText(maxAt), (a, b) => (a === b ? 0 : a < b ? -1 : 1));
  }
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: out,
  });
}

function uuidText(bytes: Uint8Array): string {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function buildDecimal(
  plan: ColumnPlan,
  precision: number,
  scale: number,
  values: readonly unknown[],
  start: number,
  end: number,
  ctx: SliceContext,
) {
  const n = end - start;
  const validity = new Validity(n);
  // Decimal128 as four little-endian 32-bit words per value.
  const out = new Uint32Array(n * 4);
  const limit = 10n ** BigInt(precision);
  let min: bigint | undefined;
  let max: bigint | undefined;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
      continue;
    }
    if (!isDecimalValue(v)) wrongValue(plan, ctx, i, '{ unscaled: bigint, scale: number }', v);
    const d = v as DecimalValue;
    if (d.scale !== scale)
      wrongValue(plan, ctx, i, `scale ${scale}`, `{ unscaled: ${d.unscaled}n, scale: ${d.scale} }`);
    if (d.unscaled >= limit || d.unscaled <= -limit) {
      wrongValue(plan, ctx, i, `at most ${precision} digits`, `{ unscaled: ${d.unscaled}n, scale: ${d.scale} }`);
    }
    let u = BigInt.asUintN(128, d.unscaled);
    for (let w = 0; w < 4; w += 1) {
      out[i * 4 + w] = Number(u & 0xffffffffn);
      u >>= 32n;
    }
    if (min === undefined || d.unscaled < min) min = d.unscaled;
    if (max === undefined || d.unscaled > max) max = d.unscaled;
  }
  if (min !== undefined && max !== undefined) {
    const stats = plan.stats as LeafStats;
    const sMin = stats.min as DecimalValue | undefined;
    const sMax = stats.max as DecimalValue | undefined;
    if (sMin === undefined || min < sMin.unscaled) stats.min = { unscaled: min, scale };
    if (sMax === undefined || max > sMax.unscaled) stats.max = { unscaled: max, scale };
  }
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: out,
  });
}

function mergeBounds<T extends PrimitiveValue>(
  stats: LeafStats,
  min: T | undefined,
  max: T | undefined,
  compare: (a: T, b: T) => number,
): void {
  if (min === undefined || max === undefined) return;
  if (stats.min === undefined || compare(min, stats.min as T) < 0) stats.min = min;
  if (stats.max === undefined || compare(max, stats.max as T) > 0) stats.max = max;
}

// ---- nested -----------------------------------------------------------------------------------------------

function buildStruct(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const children = plan.children;
  const childValues = children.map(() => new Array<unknown>(n));
  let childAbsent: Uint8Array | undefined;
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
      childAbsent ??= new Uint8Array(n);
      childAbsent[i] = 1;
    } else if (Array.isArray(v)) {
      for (let c = 0; c < children.length; c += 1) (childValues[c] as unknown[])[i] = v[c];
    } else if (typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Map)) {
      const record = v as Record<string, unknown>;
      for (let c = 0; c < children.length; c += 1) {
        (childValues[c] as unknown[])[i] = record[(children[c] as ColumnPlan).name];
      }
    } else {
      wrongValue(plan, ctx, i, 'an array in field order or an object keyed by field name', v);
    }
  }
  const childCtx: SliceContext = { rowBase: ctx.rowBase, rows: ctx.rows, absent: childAbsent };
  const childData = children.map((child, c) => buildColumnData(child, childValues[c] as unknown[], 0, n, childCtx));
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    children: childData,
  });
}

function buildList(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const offsets = new Int32Array(n + 1);
  const elements: unknown[] = [];
  const elementRows: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (Array.isArray(v)) {
      const row = rowOf(ctx, i);
      for (const e of v as unknown[]) {
        elements.push(e);
        elementRows.push(row);
      }
    } else {
      wrongValue(plan, ctx, i, 'an array', v);
    }
    offsets[i + 1] = elements.length;
  }
  const element = plan.children[0] as ColumnPlan;
  const child = buildColumnData(element, elements, 0, elements.length, {
    rowBase: 0,
    rows: Int32Array.from(elementRows),
  });
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    valueOffsets: offsets,
    child,
  });
}

function buildMap(plan: ColumnPlan, values: readonly unknown[], start: number, end: number, ctx: SliceContext) {
  const n = end - start;
  const validity = new Validity(n);
  const offsets = new Int32Array(n + 1);
  const keys: unknown[] = [];
  const vals: unknown[] = [];
  const entryRows: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const v = values[start + i];
    if (v === null || v === undefined || ctx.absent?.[i] === 1) {
      nullSlot(plan, ctx, i, validity);
    } else if (v instanceof Map || Array.isArray(v)) {
      const row = rowOf(ctx, i);
      for (const entry of v as Iterable<unknown>) {
        if (!Array.isArray(entry) || entry.length !== 2) {
          wrongValue(plan, ctx, i, 'a Map or an array of [key, value] pairs', entry);
        }
        keys.push(entry[0]);
        vals.push(entry[1]);
        entryRows.push(row);
      }
    } else {
      wrongValue(plan, ctx, i, 'a Map or an array of [key, value] pairs', v);
    }
    offsets[i + 1] = keys.length;
  }
  const [keyPlan, valuePlan] = plan.children as [ColumnPlan, ColumnPlan];
  const entryCtx: SliceContext = { rowBase: 0, rows: Int32Array.from(entryRows) };
  const keyData = buildColumnData(keyPlan, keys, 0, keys.length, entryCtx);
  const valueData = buildColumnData(valuePlan, vals, 0, vals.length, entryCtx);
  const entriesType = ((plan.arrowType as Map_).children[0] as Field<Struct>).type;
  const entries = makeAnyData({ type: entriesType, length: keys.length, nullCount: 0, children: [keyData, valueData] });
  return makeAnyData({
    type: plan.arrowType,
    length: n,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    valueOffsets: offsets,
    child: entries,
  });
}
