/**
 * Row filters for scans: a small predicate model on column names, binding to a schema, row evaluation, and the
 * two inclusive evaluations that let planning skip work (spec "Scan Planning"):
 *
 * - **metrics**: a data file's value, null and NaN counts and its lower/upper bounds say whether the file *might*
 *   hold a matching row ({@link metricsMightMatch});
 * - **partitions**: a predicate projected through the partition transforms ({@link projectInclusive}) is tested
 *   against a data file's partition tuple ({@link partitionMightMatch}) and against the partition field summaries
 *   of a manifest list entry ({@link manifestMightMatch}), which prunes whole manifests before they are read.
 *
 * Both are inclusive: `false` means no row can match, `true` only that some might. The scan applies the bound
 * filter to every row it reads ({@link evaluateRow}), so results are exact.
 *
 * ## Semantics (Iceberg's, not SQL's)
 *
 * Iceberg expressions use two-valued logic, as the reference implementation does:
 * - `eq`, `lt`, `ltEq`, `gt`, `gtEq` and `in` are false for null and for NaN;
 * - `notEq` and `notIn` are their negations, so they are true for null and NaN (SQL's `<>` would drop nulls; add
 *   `notNull(column)` for that);
 * - `not(p)` is true exactly when `p` is false;
 * - NaN is matched only by `isNaN` (and excluded by `notNaN`); a NaN literal is refused, as in Java;
 * - `-0.0` equals `0.0` (IEEE 754), so that files whose bounds a writer recorded either way are never wrongly
 *   skipped.
 */
import { compareValues as compareIcebergValues, decodeBound, uuidFromBytes } from './bounds.js';
import type { ColumnMetrics } from './data-file.js';
import { IcebergError } from './errors.js';
import type { PartitionFieldSummary } from './manifest-list.js';
import type { PartitionField, PartitionSpec } from './partition-spec.js';
import { bindTransform, transformResultType } from './transforms.js';
import { indexSchema, isPrimitive, typeToString, type FieldInfo, type PrimitiveType, type Schema } from './types.js';
import {
  checkValue,
  dateFromIso,
  isDecimalValue,
  isInt32,
  isInt64,
  parseDecimal,
  timeFromIso,
  timestampFromIso,
  timestamptzFromIso,
  type DecimalValue,
  type PrimitiveValue,
} from './values.js';

// ---- errors -----------------------------------------------------------------------------------------------

/**
 * A filter cannot be bound to the table schema: the column does not exist (or is inside a list or map), or a
 * literal cannot be converted to the column's type. Reported as `InvalidInput`.
 */
export class InvalidExpressionError extends IcebergError {
  readonly kind = 'invalid-expression';
  override readonly name = 'InvalidExpressionError';

  constructor(
    /** The column as the filter names it. */
    readonly column: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`cannot filter on column "${column}": ${problem}`, options);
  }
}

// ---- unbound expressions ----------------------------------------------------------------------------------

/**
 * A literal as callers write it. Binding converts it to the column's type (see `values.ts`): a `number` for a
 * long column becomes a `bigint`; an ISO string becomes days (date), µs from midnight (time) or µs from the epoch
 * (timestamp: `2024-05-01T12:00:00`, timestamptz: `…Z` or `…+02:00`); a `Date` becomes days or µs; a decimal
 * may be a string (`"14.20"`), a number or a {@link DecimalValue}; a uuid may be its 16 bytes.
 */
export type LiteralInput = PrimitiveValue | Date;

/** Predicates on a column without a literal. */
export type UnaryOperation = 'isNull' | 'notNull' | 'isNaN' | 'notNaN';
/** Predicates comparing a column with one literal. */
export type ComparisonOperation = 'eq' | 'notEq' | 'lt' | 'ltEq' | 'gt' | 'gtEq';
/** Predicates on a column and a set of literals. */
export type SetOperation = 'in' | 'notIn';

/** A filter before binding: columns by name (dotted for struct fields, e.g. `address.city`). */
export type Expression =
  | { readonly op: 'alwaysTrue' }
  | { readonly op: 'alwaysFalse' }
  | { readonly op: 'and' | 'or'; readonly left: Expression; readonly right: Expression }
  | { readonly op: 'not'; readonly child: Expression }
  | { readonly op: UnaryOperation; readonly column: string }
  | { readonly op: ComparisonOperation; readonly column: string; readonly value: LiteralInput }
  | { readonly op: SetOperation; readonly column: string; readonly values: readonly LiteralInput[] };

const TRUE = { op: 'alwaysTrue' } as const;
const FALSE = { op: 'alwaysFalse' } as const;

/** Matches every row. */
export function alwaysTrue(): Expression {
  return TRUE;
}

/** Matches no row. */
export function alwaysFalse(): Expression {
  return FALSE;
}

/** All of `expressions` (true when there are none). */
export function and(...expressions: readonly Expression[]): Expression {
  return expressions.reduce<Expression>(
    (left, right) => (left.op === 'alwaysTrue' ? right : { op: 'and', left, right }),
    TRUE,
  );
}

/** Any of `expressions` (false when there are none). */
export function or(...expressions: readonly Expression[]): Expression {
  return expressions.reduce<Expression>(
    (left, right) => (left.op === 'alwaysFalse' ? right : { op: 'or', left, right }),
    FALSE,
  );
}

/** The negation of `child` (true exactly where `child` is false; see the module notes on nulls). */
export function not(child: Expression): Expression {
  return { op: 'not', child };
}

/** `column = value`; false for null and NaN. */
export function eq(column: string, value: LiteralInput): Expression {
  return { op: 'eq', column, value };
}

/** `not(eq(column, value))`: true for null and NaN. */
export function notEq(column: string, value: LiteralInput): Expression {
  return { op: 'notEq', column, value };
}

/** `column < value`; false for null and NaN. */
export function lt(column: string, value: LiteralInput): Expression {
  return { op: 'lt', column, value };
}

/** `column <= value`; false for null and NaN. */
export function ltEq(column: string, value: LiteralInput): Expression {
  return { op: 'ltEq', column, value };
}

/** `column > value`; false for null and NaN. */
export function gt(column: string, value: LiteralInput): Expression {
  return { op: 'gt', column, value };
}

/** `column >= value`; false for null and NaN. */
export function gtEq(column: string, value: LiteralInput): Expression {
  return { op: 'gtEq', column, value };
}

/** `column IN (values)`; false for null and NaN. Also exported as `in`. */
export function isIn(column: string, values: readonly LiteralInput[]): Expression {
  return { op: 'in', column, values };
}

/** `not(in(column, values))`: true for null and NaN. */
export function notIn(column: string, values: readonly LiteralInput[]): Expression {
  return { op: 'notIn', column, values };
}

/** `column IS NULL`. */
export function isNull(column: string): Expression {
  return { op: 'isNull', column };
}

/** `column IS NOT NULL`. */
export function notNull(column: string): Expression {
  return { op: 'notNull', column };
}

/** The value is a float or double NaN (false for null and for columns of other types). */
export function isNaN(column: string): Expression {
  return { op: 'isNaN', column };
}

/** `not(isNaN(column))`: true for null. */
export function notNaN(column: string): Expression {
  return { op: 'notNaN', column };
}

// `in` is a reserved word, so it cannot name a function declaration; it can still be an export name.
export { isIn as in };

// ---- bound expressions ------------------------------------------------------------------------------------

/** A column resolved against a schema (or, after projection, a partition field of a partition tuple). */
export interface BoundReference {
  /** The field id (a partition field id for projected predicates). */
  readonly fieldId: number;
  /** Full dotted name, for messages. */
  readonly name: string;
  readonly type: PrimitiveType;
  /**
   * Where the value sits in a row: the index among the top-level fields, then the index within each enclosing
   * struct. A row is an array in the order of the schema's top-level fields and a struct an array in the order
   * of its fields (the shape `columnsToRows` produces); for a partition tuple it is `[position]`.
   */
  readonly path: readonly number[];
}

/** A filter bound to a schema: literals converted to the column types, trivially true/false parts folded. */
export type BoundExpression =
  | { readonly op: 'alwaysTrue' }
  | { readonly op: 'alwaysFalse' }
  | { readonly op: 'and' | 'or'; readonly left: BoundExpression; readonly right: BoundExpression }
  | { readonly op: 'not'; readonly child: BoundExpression }
  | BoundPredicate;

/** A bound leaf predicate. */
export type BoundPredicate =
  | { readonly op: UnaryOperation; readonly ref: BoundReference }
  | { readonly op: ComparisonOperation; readonly ref: BoundReference; readonly value: PrimitiveValue }
  | { readonly op: SetOperation; readonly ref: BoundReference; readonly values: readonly PrimitiveValue[] };

/** Options of {@link bind}. */
export interface BindOptions {
  /** Match column names exactly; `false` ignores case (an ambiguous name is then an error). @default true */
  readonly caseSensitive?: boolean;
}

function boundAnd(left: BoundExpression, right: BoundExpression): BoundExpression {
  if (left.op === 'alwaysFalse' || right.op === 'alwaysFalse') return FALSE;
  if (left.op === 'alwaysTrue') return right;
  if (right.op === 'alwaysTrue') return left;
  return { op: 'and', left, right };
}

function boundOr(left: BoundExpression, right: BoundExpression): BoundExpression {
  if (left.op === 'alwaysTrue' || right.op === 'alwaysTrue') return TRUE;
  if (left.op === 'alwaysFalse') return right;
  if (right.op === 'alwaysFalse') return left;
  return { op: 'or', left, right };
}

function boundNot(child: BoundExpression): BoundExpression {
  if (child.op === 'alwaysTrue') return FALSE;
  if (child.op === 'alwaysFalse') return TRUE;
  if (child.op === 'not') return child.child;
  return { op: 'not', child };
}

/**
 * Resolves column names against `schema` and converts every literal to its column's type.
 *
 * Folds what the schema decides on its own: `isNull` of a required column (outside optional structs) is false,
 * `isNaN` of a column that is not float/double is false, and so on; `in` of no values is false.
 *
 * @throws InvalidExpressionError naming the column when it does not exist, is not primitive, sits in a list or
 *   map, or when a literal does not fit its type (null and NaN literals included: use `isNull`/`isNaN`).
 */
export function bind(
  expression: Expression,
  schema: Pick<Schema, 'fields'>,
  options: BindOptions = {},
): BoundExpression {
  const resolve = columnResolver(schema, options.caseSensitive ?? true);
  const visit = (expr: Expression): BoundExpression => {
    switch (expr.op) {
      case 'alwaysTrue':
      case 'alwaysFalse':
        return expr.op === 'alwaysTrue' ? TRUE : FALSE;
      case 'and':
        return boundAnd(visit(expr.left), visit(expr.right));
      case 'or':
        return boundOr(visit(expr.left), visit(expr.right));
      case 'not':
        return boundNot(visit(expr.child));
      case 'isNull':
      case 'notNull':
      case 'isNaN':
      case 'notNaN': {
        const { ref, info } = resolve(expr.column);
        const canBeNull = !info.required || info.underOptionalStruct;
        const canBeNaN = ref.type.kind === 'float' || ref.type.kind === 'double';
        if (expr.op === 'isNull') return canBeNull ? { op: expr.op, ref } : FALSE;
        if (expr.op === 'notNull') return canBeNull ? { op: expr.op, ref } : TRUE;
        if (expr.op === 'isNaN') return canBeNaN ? { op: expr.op, ref } : FALSE;
        return canBeNaN ? { op: expr.op, ref } : TRUE;
      }
      case 'eq':
      case 'notEq':
      case 'lt':
      case 'ltEq':
      case 'gt':
      case 'gtEq': {
        const { ref } = resolve(expr.column);
        return { op: expr.op, ref, value: convertLiteral(expr.column, ref.type, expr.value) };
      }
      case 'in':
      case 'notIn': {
        const { ref } = resolve(expr.column);
        const seen = new Set<unknown>();
        const values: PrimitiveValue[] = [];
        for (const input of expr.values) {
          const value = convertLiteral(expr.column, ref.type, input);
          const key = literalKey(ref.type, value);
          if (seen.has(key)) continue;
          seen.add(key);
          values.push(value);
        }
        if (values.length === 0) return expr.op === 'in' ? FALSE : TRUE;
        // One value is a comparison, which metrics and partition summaries handle more simply.
        if (values.length === 1)
          return { op: expr.op === 'in' ? 'eq' : 'notEq', ref, value: values[0] as PrimitiveValue };
        return { op: expr.op, ref, values };
      }
    }
  };
  return visit(expression);
}

function columnResolver(
  schema: Pick<Schema, 'fields'>,
  caseSensitive: boolean,
): (column: string) => { ref: BoundReference; info: FieldInfo } {
  const index = indexSchema(schema);
  const byName = new Map<string, FieldInfo[]>();
  for (const info of index.values()) {
    const key = caseSensitive ? info.fullName : info.fullName.toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), info]);
  }
  return (column) => {
    const found = byName.get(caseSensitive ? column : column.toLowerCase()) ?? [];
    if (found.length > 1) {
      const names = found.map((f) => `"${f.fullName}"`).join(', ');
      throw new InvalidExpressionError(column, `the name matches ${names} when case is ignored; spell it exactly`);
    }
    const info = found[0];
    if (!info) {
      throw new InvalidExpressionError(
        column,
        `the schema has no such column${caseSensitive ? ' (names are case-sensitive)' : ''}; ` +
          'use the full dotted name for struct fields, e.g. "address.city"',
      );
    }
    if (info.inListOrMap) {
      throw new InvalidExpressionError(column, 'the column is inside a list or map, which filters cannot address');
    }
    if (!isPrimitive(info.type)) {
      throw new InvalidExpressionError(column, `the column is a ${info.type.kind}; filter on one of its fields`);
    }
    return { ref: { fieldId: info.id, name: info.fullName, type: info.type, path: pathOf(index, info) }, info };
  };
}

/**
 * Where field `fieldId` sits in a row of `schema` (see {@link BoundReference.path}), or `undefined` when the
 * field is not reachable through structs alone (absent, or inside a list or map).
 */
export function fieldPath(schema: Pick<Schema, 'fields'>, fieldId: number): number[] | undefined {
  const index = indexSchema(schema);
  const info = index.get(fieldId);
  if (!info || info.inListOrMap) return undefined;
  return pathOf(index, info);
}

/** The positions leading to a field: its index among its parent's fields, for every enclosing struct. */
function pathOf(index: Map<number, FieldInfo>, info: FieldInfo): number[] {
  const path: number[] = [];
  let current: FieldInfo | undefined = info;
  while (current) {
    const parent: FieldInfo | undefined = current.parentId === undefined ? undefined : index.get(current.parentId);
    const siblings = parent ? (parent.type.kind === 'struct' ? parent.type.fields : []) : undefined;
    const id = current.id;
    const position = siblings ? siblings.findIndex((f) => f.id === id) : topLevelPosition(index, id);
    path.unshift(position);
    current = parent;
  }
  return path;
}

function topLevelPosition(index: Map<number, FieldInfo>, id: number): number {
  let position = 0;
  for (const info of index.values()) {
    if (info.parentId !== undefined) continue;
    if (info.id === id) return position;
    position += 1;
  }
  return -1;
}

// ---- literal conversion -----------------------------------------------------------------------------------

const INTEGER_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?Infinity$/;
const MS_PER_DAY = 86_400_000;

/**
 * Converts a literal to the `values.ts` representation of `type`.
 *
 * @throws InvalidExpressionError naming the column when the literal does not fit.
 */
export function convertLiteral(column: string, type: PrimitiveType, input: LiteralInput): PrimitiveValue {
  const fail = (problem: string, cause?: unknown): never => {
    throw new InvalidExpressionError(
      column,
      `literal ${describeLiteral(input)} cannot be a ${typeToString(type)} value: ${problem}`,
      cause === undefined ? undefined : { cause },
    );
  };
  // Null and NaN never satisfy a comparison; Java refuses them too, which points callers at isNull/isNaN.
  if (input === null || input === undefined) return fail('use isNull/notNull to test for null');
  if (typeof input === 'number' && Number.isNaN(input)) return fail('use isNaN/notNaN to test for NaN');
  const attempt = (convert: () => PrimitiveValue): PrimitiveValue => {
    let value: PrimitiveValue;
    try {
      value = convert();
    } catch (err) {
      if (err instanceof InvalidExpressionError) throw err;
      return fail(err instanceof Error ? err.message : String(err), err);
    }
    try {
      checkValue(type, value);
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err), err);
    }
    return value;
  };
  return attempt(() => {
    switch (type.kind) {
      case 'boolean':
        if (typeof input === 'boolean') return input;
        if (typeof input === 'string' && /^(true|false)$/i.test(input)) return input.toLowerCase() === 'true';
        return fail('expected a boolean');
      case 'int': {
        const n = toBigInt(input);
        if (n === undefined) return fail('expected an integer number, bigint or integer string');
        if (n < -2147483648n || n > 2147483647n) return fail('it is outside the 32-bit int range');
        return Number(n);
      }
      case 'long': {
        if (typeof input === 'number' && !Number.isSafeInteger(input)) {
          return fail('a number above 2^53 has lost precision; pass a bigint');
        }
        const n = toBigInt(input);
        if (n === undefined) return fail('expected an integer number, bigint or integer string');
        if (!isInt64(n)) return fail('it is outside the 64-bit long range');
        return n;
      }
      case 'float':
      case 'double': {
        let n: number;
        if (typeof input === 'number') n = input;
        else if (typeof input === 'bigint') n = Number(input);
        else if (typeof input === 'string' && FLOAT_TEXT.test(input.trim())) n = Number(input.trim());
        else return fail('expected a number');
        // A float column holds float32 values: 0.1 must compare as 0.1f, or eq(col, 0.1) would never match.
        return type.kind === 'float' ? Math.fround(n) : n;
      }
      case 'decimal':
        return toDecimal(input, type.scale, fail);
      case 'date':
        if (typeof input === 'number') {
          return isInt32(input) ? input : fail('expected days from 1970-01-01 as a 32-bit integer');
        }
        if (typeof input === 'string') return dateFromIso(input.trim());
        if (input instanceof Date) return Math.floor(dateMs(input, fail) / MS_PER_DAY);
        return fail('expected an ISO date like 2024-05-01, days from 1970-01-01 or a Date');
      case 'time':
        if (typeof input === 'bigint') return input;
        if (typeof input === 'string') return timeFromIso(input.trim());
        return fail('expected an ISO time like 12:30:00 or microseconds from midnight as a bigint');
      case 'timestamp':
      case 'timestamptz':
        if (typeof input === 'bigint') return input;
        if (input instanceof Date) return BigInt(dateMs(input, fail)) * 1000n;
        if (typeof input === 'string') {
          return type.kind === 'timestamp' ? timestampFromIso(input.trim()) : timestamptzFromIso(input.trim());
        }
        // A bare number is ambiguous (ms or µs?), so it is refused rather than guessed.
        return fail(
          type.kind === 'timestamp'
            ? 'expected an ISO timestamp without zone like 2024-05-01T12:00:00, a Date or µs since the epoch as a bigint'
            : 'expected an ISO timestamp with zone like 2024-05-01T12:00:00Z, a Date or µs since the epoch as a bigint',
        );
      case 'string':
        return typeof input === 'string' ? input : fail('expected a string');
      case 'uuid':
        if (input instanceof Uint8Array) return input.length === 16 ? uuidFromBytes(input) : fail('expected 16 bytes');
        return typeof input === 'string' ? input.toLowerCase() : fail('expected a UUID string');
      case 'fixed':
      case 'binary':
        return input instanceof Uint8Array ? Uint8Array.from(input) : fail('expected a Uint8Array');
    }
  });
}

function describeLiteral(input: unknown): string {
  if (typeof input === 'bigint') return `${input}n`;
  if (typeof input === 'string') return JSON.stringify(input);
  if (input instanceof Uint8Array) return `${input.length} bytes`;
  if (input instanceof Date) return `Date(${Number.isNaN(input.getTime()) ? 'invalid' : input.toISOString()})`;
  if (isDecimalValue(input)) return `{ unscaled: ${input.unscaled}n, scale: ${input.scale} }`;
  return String(input);
}

function dateMs(date: Date, fail: (problem: string) => never): number {
  const ms = date.getTime();
  return Number.isNaN(ms) ? fail('the Date is invalid') : ms;
}

function toBigInt(input: LiteralInput): bigint | undefined {
  if (typeof input === 'bigint') return input;
  if (typeof input === 'number') return Number.isInteger(input) ? BigInt(input) : undefined;
  if (typeof input === 'string' && INTEGER_TEXT.test(input.trim())) return BigInt(input.trim());
  return undefined;
}

function toDecimal(input: LiteralInput, scale: number, fail: (problem: string) => never): DecimalValue {
  let value: DecimalValue;
  if (isDecimalValue(input)) value = input;
  else if (typeof input === 'bigint') value = { unscaled: input, scale: 0 };
  else if (typeof input === 'number') {
    if (!Number.isFinite(input)) return fail('expected a finite number');
    // String(n) is the shortest text that reads back as n, which is the decimal the caller wrote.
    const text = String(input);
    if (/e/i.test(text)) return fail('write numbers this small or large as a decimal string');
    value = parseDecimal(text);
  } else if (typeof input === 'string') value = parseDecimal(input);
  else return fail('expected a decimal string like "14.20", a number or { unscaled, scale }');
  if (value.scale === scale) return value;
  if (value.scale < scale) return { unscaled: value.unscaled * 10n ** BigInt(scale - value.scale), scale };
  const divisor = 10n ** BigInt(value.scale - scale);
  // Dropping non-zero digits would change which rows match; only trailing zeros may go.
  if (value.unscaled % divisor !== 0n) return fail(`it has more than ${scale} fraction digits`);
  return { unscaled: value.unscaled / divisor, scale };
}

/** A key equal for equal values of one type (bytes and decimals compare by content). */
function literalKey(type: PrimitiveType, value: PrimitiveValue): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (isDecimalValue(value)) return value.unscaled;
  if (type.kind === 'uuid') return (value as string).toLowerCase();
  // -0 and 0 are one key in a Set (SameValueZero), which is the IEEE equality the semantics use.
  return value;
}

// ---- ordering ---------------------------------------------------------------------------------------------

/** Compares two non-null, non-NaN values of one type; floats by IEEE 754 order, so -0 equals 0. */
function compare(type: PrimitiveType, a: PrimitiveValue, b: PrimitiveValue): number {
  if (type.kind === 'float' || type.kind === 'double') {
    return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  }
  return compareIcebergValues(type, a, b);
}

function isNaNValue(value: unknown): boolean {
  return typeof value === 'number' && Number.isNaN(value);
}

// ---- row evaluation ---------------------------------------------------------------------------------------

function valueAt(row: readonly unknown[], path: readonly number[], from = 0): unknown {
  let value: unknown = row;
  for (let i = from; i < path.length; i += 1) {
    if (!Array.isArray(value)) return null;
    value = (value as readonly unknown[])[path[i] as number];
  }
  return value ?? null;
}

// Set lookups for `in`, built once per predicate: rows can be many and IN lists long.
const inKeys = new WeakMap<object, Set<unknown>>();

function isMember(
  predicate: { readonly ref: BoundReference; readonly values: readonly PrimitiveValue[] },
  v: PrimitiveValue,
): boolean {
  let keys = inKeys.get(predicate);
  if (keys === undefined) {
    keys = new Set(predicate.values.map((value) => literalKey(predicate.ref.type, value)));
    inKeys.set(predicate, keys);
  }
  return keys.has(literalKey(predicate.ref.type, v));
}

function testPredicate(predicate: BoundPredicate, value: unknown): boolean {
  switch (predicate.op) {
    case 'isNull':
      return value === null;
    case 'notNull':
      return value !== null;
    case 'isNaN':
      return isNaNValue(value);
    case 'notNaN':
      return !isNaNValue(value);
    default:
      break;
  }
  // Comparisons are false for null and NaN; notEq and notIn are their negations, so true for them.
  const ordinary = value !== null && !isNaNValue(value);
  const type = predicate.ref.type;
  const v = value as PrimitiveValue;
  switch (predicate.op) {
    case 'eq':
      return ordinary && compare(type, v, predicate.value) === 0;
    case 'notEq':
      return !(ordinary && compare(type, v, predicate.value) === 0);
    case 'lt':
      return ordinary && compare(type, v, predicate.value) < 0;
    case 'ltEq':
      return ordinary && compare(type, v, predicate.value) <= 0;
    case 'gt':
      return ordinary && compare(type, v, predicate.value) > 0;
    case 'gtEq':
      return ordinary && compare(type, v, predicate.value) >= 0;
    case 'in':
      return ordinary && isMember(predicate, v);
    case 'notIn':
      return !(ordinary && isMember(predicate, v));
  }
}

/**
 * Whether a row matches. `row` holds the values in the order of the top-level fields of the schema the
 * expression was bound to, structs as arrays in field order (what `columnsToRows` returns); a partition tuple is
 * a row for an expression from {@link projectInclusive}.
 */
export function evaluateRow(expression: BoundExpression, row: readonly unknown[]): boolean {
  return evaluateWith(expression, (predicate) => testPredicate(predicate, valueAt(row, predicate.ref.path)));
}

function evaluateWith(expression: BoundExpression, leaf: (predicate: BoundPredicate) => boolean): boolean {
  switch (expression.op) {
    case 'alwaysTrue':
      return true;
    case 'alwaysFalse':
      return false;
    case 'and':
      return evaluateWith(expression.left, leaf) && evaluateWith(expression.right, leaf);
    case 'or':
      return evaluateWith(expression.left, leaf) || evaluateWith(expression.right, leaf);
    case 'not':
      return !evaluateWith(expression.child, leaf);
    default:
      return leaf(expression);
  }
}

/**
 * A row test for column batches (values by top-level field id, one entry per row): `test(columns, r)` is
 * {@link evaluateRow} of row `r`. The expression's paths must be those of the schema whose top-level fields are
 * `fieldIds`, in order.
 */
export function rowPredicate(
  expression: BoundExpression,
  fieldIds: readonly number[],
): (columns: ReadonlyMap<number, readonly unknown[]>, r: number) => boolean {
  return (columns, r) =>
    evaluateWith(expression, (predicate) => {
      const path = predicate.ref.path;
      const column = columns.get(fieldIds[path[0] ?? -1] ?? -1);
      const top = column === undefined ? null : (column[r] ?? null);
      return testPredicate(predicate, path.length === 1 ? top : valueAt(top as unknown[], path, 1));
    });
}

/** The field ids an expression reads. */
export function referencedFieldIds(expression: BoundExpression, out = new Set<number>()): Set<number> {
  switch (expression.op) {
    case 'alwaysTrue':
    case 'alwaysFalse':
      return out;
    case 'and':
    case 'or':
      referencedFieldIds(expression.left, out);
      return referencedFieldIds(expression.right, out);
    case 'not':
      return referencedFieldIds(expression.child, out);
    default:
      out.add(expression.ref.fieldId);
      return out;
  }
}

// ---- pushing NOT down -------------------------------------------------------------------------------------

/**
 * An equivalent expression without `not`, which inclusive evaluation needs: "might match" of `not(p)` is not
 * "not might match" of `p`. The rewrite is exact under the two-valued semantics above: `not(lt(x, v))` holds for
 * null and NaN too, so it becomes `gtEq(x, v) or isNull(x)` (`or isNaN(x)` for floats), not just `gtEq(x, v)`.
 */
export function rewriteNot(expression: BoundExpression): BoundExpression {
  switch (expression.op) {
    case 'and':
      return boundAnd(rewriteNot(expression.left), rewriteNot(expression.right));
    case 'or':
      return boundOr(rewriteNot(expression.left), rewriteNot(expression.right));
    case 'not':
      return negate(expression.child);
    default:
      return expression;
  }
}

function negate(expression: BoundExpression): BoundExpression {
  switch (expression.op) {
    case 'alwaysTrue':
      return FALSE;
    case 'alwaysFalse':
      return TRUE;
    case 'and':
      return boundOr(negate(expression.left), negate(expression.right));
    case 'or':
      return boundAnd(negate(expression.left), negate(expression.right));
    case 'not':
      return rewriteNot(expression.child);
    case 'isNull':
      return { op: 'notNull', ref: expression.ref };
    case 'notNull':
      return { op: 'isNull', ref: expression.ref };
    case 'isNaN':
      return { op: 'notNaN', ref: expression.ref };
    case 'notNaN':
      return { op: 'isNaN', ref: expression.ref };
    case 'eq':
      return { op: 'notEq', ref: expression.ref, value: expression.value };
    case 'notEq':
      return { op: 'eq', ref: expression.ref, value: expression.value };
    case 'in':
      return { op: 'notIn', ref: expression.ref, values: expression.values };
    case 'notIn':
      return { op: 'in', ref: expression.ref, values: expression.values };
    case 'lt':
    case 'ltEq':
    case 'gt':
    case 'gtEq': {
      const flipped = { lt: 'gtEq', ltEq: 'gt', gt: 'ltEq', gtEq: 'lt' } as const;
      const { ref } = expression;
      let out: BoundExpression = boundOr(
        { op: flipped[expression.op], ref, value: expression.value },
        { op: 'isNull', ref },
      );
      if (ref.type.kind === 'float' || ref.type.kind === 'double') out = boundOr(out, { op: 'isNaN', ref });
      return out;
    }
  }
}

// ---- inclusive metrics evaluation -------------------------------------------------------------------------

/** What {@link metricsMightMatch} reads from a data file. */
export type FileMetrics = ColumnMetrics & { readonly recordCount: bigint };

/**
 * Whether a data file might hold a row matching `expression`, judged from its metrics alone. Missing metrics
 * never prune. Bounds are inclusive: string and binary bounds truncated by the writer (lower to a prefix, upper
 * to an incremented prefix) still enclose every value, so comparing with them can only keep too much. A NaN bound
 * (written by some ORC writers) is ignored. `notEq` and `notIn` never prune: bounds need not be values in the file.
 */
export function metricsMightMatch(expression: BoundExpression, file: FileMetrics): boolean {
  if (file.recordCount === 0n) return false;
  // Some importers record -1 when they did not count rows; the metrics are then not trustworthy either.
  if (file.recordCount < 0n) return true;
  return evaluateWith(rewriteNot(expression), (predicate) => predicateMightMatchMetrics(predicate, file));
}

function decodeSafely(type: PrimitiveType, bytes: Uint8Array | undefined): PrimitiveValue | undefined {
  if (bytes === undefined) return undefined;
  try {
    const value = decodeBound(type, bytes);
    return isNaNValue(value) ? undefined : value;
  } catch {
    // A bound we cannot decode says nothing; treating it as absent keeps the file.
    return undefined;
  }
}

function predicateMightMatchMetrics(predicate: BoundPredicate, file: FileMetrics): boolean {
  const id = predicate.ref.fieldId;
  const valueCount = file.valueCounts?.get(id);
  const nullCount = file.nullValueCounts?.get(id);
  const nanCount = file.nanValueCounts?.get(id);
  const nullsOnly = valueCount !== undefined && nullCount !== undefined && nullCount === valueCount;
  const nansOnly = valueCount !== undefined && nanCount !== undefined && nanCount === valueCount;
  switch (predicate.op) {
    case 'isNull':
      return nullCount === undefined || nullCount > 0n;
    case 'notNull':
      return !nullsOnly;
    case 'isNaN':
      return !nullsOnly && (nanCount === undefined || nanCount > 0n);
    case 'notNaN':
      return !nansOnly;
    case 'notEq':
    case 'notIn':
      return true;
    default:
      break;
  }
  if (nullsOnly || nansOnly) return false;
  const type = predicate.ref.type;
  const lower = decodeSafely(type, file.lowerBounds?.get(id));
  const upper = decodeSafely(type, file.upperBounds?.get(id));
  // Every other operation returned above.
  return rangeMightMatch(predicate as RangePredicate, type, lower, upper);
}

/** The predicates that bounds can rule out. */
type RangePredicate =
  | { readonly op: 'eq' | 'lt' | 'ltEq' | 'gt' | 'gtEq'; readonly ref: BoundReference; readonly value: PrimitiveValue }
  | { readonly op: 'in'; readonly ref: BoundReference; readonly values: readonly PrimitiveValue[] };

/** Whether a comparison can hold for some value in [lower, upper] (either end may be unknown). */
function rangeMightMatch(
  predicate: RangePredicate,
  type: PrimitiveType,
  lower: PrimitiveValue | undefined,
  upper: PrimitiveValue | undefined,
): boolean {
  const aboveLower = (v: PrimitiveValue): boolean => lower === undefined || compare(type, lower, v) <= 0;
  const belowUpper = (v: PrimitiveValue): boolean => upper === undefined || compare(type, upper, v) >= 0;
  switch (predicate.op) {
    case 'lt':
      return lower === undefined || compare(type, lower, predicate.value) < 0;
    case 'ltEq':
      return aboveLower(predicate.value);
    case 'gt':
      return upper === undefined || compare(type, upper, predicate.value) > 0;
    case 'gtEq':
      return belowUpper(predicate.value);
    case 'eq':
      return aboveLower(predicate.value) && belowUpper(predicate.value);
    case 'in':
      return predicate.values.some((v) => aboveLower(v) && belowUpper(v));
  }
}

// ---- partition projection ---------------------------------------------------------------------------------

/**
 * Projects a row filter onto the partition tuples of `spec` (an "inclusive projection"): the result is true for
 * every partition that might hold a matching row. Each predicate becomes, for each partition field of its column:
 *
 * - identity: the same predicate on the partition value;
 * - bucket[N]: `eq`/`in` on the bucket of the literal(s); other comparisons say nothing;
 * - truncate[W], year, month, day, hour (monotonic): `eq`/`in` on the transformed literal(s); `lt v` becomes
 *   `ltEq f(v - 1)` and `gt v` becomes `gtEq f(v + 1)` for integer-like sources (`ltEq f(v)`/`gtEq f(v)` for
 *   strings and binary), `ltEq`/`gtEq` keep their direction; `notEq`/`notIn` say nothing;
 * - `isNull`/`notNull` carry over (every transform but void keeps nulls null); `isNaN`/`notNaN` only through
 *   identity.
 *
 * Several partition fields of one column are all applied (and). Columns without partition fields say nothing.
 * References in the result point into the partition tuple (`path` = `[position]`) with the transform's result
 * type, so {@link evaluateRow} tests a tuple and {@link manifestMightMatch} a manifest's summaries.
 *
 * @param schema the schema the expression was bound to, for the partition sources' types.
 */
export function projectInclusive(
  expression: BoundExpression,
  spec: PartitionSpec,
  schema: Pick<Schema, 'fields'>,
): BoundExpression {
  if (spec.fields.length === 0) return TRUE;
  const index = indexSchema(schema);
  const visit = (expr: BoundExpression): BoundExpression => {
    switch (expr.op) {
      case 'alwaysTrue':
      case 'alwaysFalse':
        return expr;
      case 'and':
        return boundAnd(visit(expr.left), visit(expr.right));
      case 'or':
        return boundOr(visit(expr.left), visit(expr.right));
      case 'not':
        // rewriteNot has removed every `not`; kept for completeness, and safe: it says nothing.
        return TRUE;
      default: {
        let out: BoundExpression = TRUE;
        spec.fields.forEach((field, position) => {
          if (field.sourceId !== expr.ref.fieldId) return;
          const source = index.get(field.sourceId);
          if (!source || !isPrimitive(source.type)) return;
          out = boundAnd(out, projectPredicate(expr, field, position, source.type));
        });
        return out;
      }
    }
  };
  return visit(rewriteNot(expression));
}

function projectPredicate(
  predicate: BoundPredicate,
  field: PartitionField,
  position: number,
  sourceType: PrimitiveType,
): BoundExpression {
  const transform = field.transform;
  if (transform.kind === 'void' || transform.kind === 'unknown') return TRUE;
  let apply: (value: PrimitiveValue) => PrimitiveValue | null;
  let ref: BoundReference;
  try {
    const bound = bindTransform(transform, sourceType);
    apply = (value) => bound(value);
    ref = {
      fieldId: field.fieldId,
      name: field.name,
      type: transformResultType(transform, sourceType),
      path: [position],
    };
  } catch {
    return TRUE;
  }
  // A literal the transform cannot take (out of range after ±1, say) only costs pruning, never correctness.
  const guarded = (build: () => BoundExpression): BoundExpression => {
    try {
      return build();
    } catch {
      return TRUE;
    }
  };
  const mapped = (value: PrimitiveValue): PrimitiveValue => {
    const result = apply(value);
    if (result === null) throw new Error('transform returned null');
    return result;
  };
  switch (predicate.op) {
    case 'isNull':
    case 'notNull':
      return { op: predicate.op, ref };
    case 'isNaN':
    case 'notNaN':
      return transform.kind === 'identity' ? { op: predicate.op, ref } : TRUE;
    default:
      break;
  }
  if (transform.kind === 'identity') return { ...predicate, ref } as BoundPredicate;
  switch (predicate.op) {
    case 'eq':
      return guarded(() => ({ op: 'eq', ref, value: mapped(predicate.value) }));
    case 'in':
      return guarded(() => {
        const keys = new Set<unknown>();
        const values: PrimitiveValue[] = [];
        for (const v of predicate.values) {
          const t = mapped(v);
          const key = literalKey(ref.type, t);
          if (!keys.has(key)) {
            keys.add(key);
            values.push(t);
          }
        }
        return values.length === 1 ? { op: 'eq', ref, value: values[0] as PrimitiveValue } : { op: 'in', ref, values };
      });
    case 'notEq':
    case 'notIn':
      return TRUE;
    default:
      break;
  }
  // Bucket hashes do not keep order, so ranges say nothing about buckets.
  if (transform.kind === 'bucket') return TRUE;
  const { value } = predicate;
  switch (predicate.op) {
    case 'lt':
      return guarded(() => ({ op: 'ltEq', ref, value: mapped(step(sourceType, value, -1)) }));
    case 'ltEq':
      return guarded(() => ({ op: 'ltEq', ref, value: mapped(value) }));
    case 'gt':
      return guarded(() => ({ op: 'gtEq', ref, value: mapped(step(sourceType, value, 1)) }));
    case 'gtEq':
      return guarded(() => ({ op: 'gtEq', ref, value: mapped(value) }));
  }
}

/**
 * The next value up or down for integer-like types, so that a strict bound becomes an inclusive one before the
 * transform (f is monotonic, so `x < v` means `f(x) <= f(v - 1)`). Strings and binary have no "previous value";
 * for them the value itself is the inclusive bound.
 */
function step(type: PrimitiveType, value: PrimitiveValue, by: 1 | -1): PrimitiveValue {
  switch (type.kind) {
    case 'int':
    case 'date':
      return (value as number) + by;
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return (value as bigint) + BigInt(by);
    case 'decimal':
      return { unscaled: (value as DecimalValue).unscaled + BigInt(by), scale: (value as DecimalValue).scale };
    default:
      return value;
  }
}

/** Whether a data file's partition tuple might hold matching rows (`projected` from {@link projectInclusive}). */
export function partitionMightMatch(projected: BoundExpression, partition: readonly unknown[]): boolean {
  return evaluateRow(projected, partition);
}

/**
 * Whether a manifest might hold matching data files, from its manifest-list partition field summaries
 * (`projected` from {@link projectInclusive} with the manifest's spec). A manifest without summaries always might.
 */
export function manifestMightMatch(
  projected: BoundExpression,
  partitions: readonly PartitionFieldSummary[] | null,
): boolean {
  if (partitions === null) return true;
  return evaluateWith(projected, (predicate) => {
    const summary = partitions[predicate.ref.path[0] ?? -1];
    return summary === undefined ? true : summaryMightMatch(predicate, summary);
  });
}

function summaryMightMatch(predicate: BoundPredicate, summary: PartitionFieldSummary): boolean {
  const type = predicate.ref.type;
  const isFloat = type.kind === 'float' || type.kind === 'double';
  const lower = decodeSafely(type, summary.lowerBound ?? undefined);
  const upper = decodeSafely(type, summary.upperBound ?? undefined);
  // Bounds skip nulls and NaNs: without a lower bound, every value is null or NaN.
  const noOrdinaryValue = summary.lowerBound === null;
  switch (predicate.op) {
    case 'isNull':
      return summary.containsNull;
    case 'notNull':
      // All null only when there is no bound and (for floats) no NaN either.
      return !(summary.containsNull && noOrdinaryValue && (!isFloat || summary.containsNan === false));
    case 'isNaN':
      return summary.containsNan !== false;
    case 'notNaN':
      return !(summary.containsNan === true && !summary.containsNull && noOrdinaryValue);
    case 'notEq':
    case 'notIn':
      return true;
    default:
      if (noOrdinaryValue) return false;
      return rangeMightMatch(predicate as RangePredicate, type, lower, upper);
  }
}
