import { isLosslessNumber } from 'lossless-json';

/**
 * Readers for the spec's JSON documents. They accept both plain `JSON.parse` output and `lossless-json` output
 * (numbers as `LosslessNumber`), check each field's JSON type, and report problems through `fail` with the
 * field's path, so that every caller can raise its own typed error naming the exact field.
 */

/** Raises a typed error for a problem at `jsonPath`. */
export type Fail = (jsonPath: string, problem: string) => never;

/** A JSON object as parsed: own enumerable keys only. */
export type JsonObject = Record<string, unknown>;

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const INTEGER_TEXT = /^-?(0|[1-9][0-9]*)$/;

/** `base.key` or `base[index]`, the way error messages name a field. */
export function childPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** A short rendering of a JSON value for error messages. */
export function describeJson(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (isLosslessNumber(value)) return value.toString();
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !isLosslessNumber(value);
}

/** Own property lookup, so that keys such as `constructor` never resolve to inherited members. */
export function getOwn(obj: JsonObject, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** Sets an own enumerable property even for keys such as `__proto__`, which plain assignment would swallow. */
export function setOwn(obj: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function expectObject(value: unknown, path: string, fail: Fail): JsonObject {
  if (!isJsonObject(value)) fail(path, `expected a JSON object, got ${describeJson(value)}`);
  return value;
}

export function expectArray(value: unknown, path: string, fail: Fail): unknown[] {
  if (!Array.isArray(value)) fail(path, `expected a JSON array, got ${describeJson(value)}`);
  return value;
}

function integerText(value: unknown): string | undefined {
  if (isLosslessNumber(value)) return INTEGER_TEXT.test(value.value) ? value.value : undefined;
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  return undefined;
}

/** A JSON int (32-bit signed). */
export function expectInt(value: unknown, path: string, fail: Fail): number {
  const text = integerText(value);
  const n = text === undefined ? Number.NaN : Number(text);
  if (!Number.isInteger(n) || n < INT_MIN || n > INT_MAX) {
    fail(path, `expected a 32-bit integer, got ${describeJson(value)}`);
  }
  return n;
}

/**
 * A JSON long (64-bit signed) as a bigint. A plain JS number above 2^53 has already lost digits, so it is refused
 * rather than silently trusted.
 */
export function expectLong(value: unknown, path: string, fail: Fail): bigint {
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    fail(path, `the 64-bit integer ${value} lost precision in JSON.parse; parse the document with lossless-json`);
  }
  if (typeof value === 'bigint') {
    if (value < LONG_MIN || value > LONG_MAX) fail(path, `expected a 64-bit integer, got ${value}`);
    return value;
  }
  const text = integerText(value);
  if (text === undefined) fail(path, `expected a 64-bit integer, got ${describeJson(value)}`);
  const n = BigInt(text);
  if (n < LONG_MIN || n > LONG_MAX) fail(path, `expected a 64-bit integer, got ${text}`);
  return n;
}

export function expectString(value: unknown, path: string, fail: Fail): string {
  if (typeof value !== 'string') fail(path, `expected a JSON string, got ${describeJson(value)}`);
  return value;
}

export function expectBoolean(value: unknown, path: string, fail: Fail): boolean {
  if (typeof value !== 'boolean') fail(path, `expected true or false, got ${describeJson(value)}`);
  return value;
}

/** A JSON object whose values are all strings (table properties, snapshot summaries). */
export function expectStringMap(value: unknown, path: string, fail: Fail): Record<string, string> {
  const obj = expectObject(value, path, fail);
  const out: Record<string, string> = {};
  for (const key of Object.keys(obj)) {
    setOwn(out, key, expectString(obj[key], childPath(path, key), fail));
  }
  return out;
}

/** Reads a required field. */
export function required<T>(
  obj: JsonObject,
  key: string,
  path: string,
  fail: Fail,
  read: (value: unknown, path: string, fail: Fail) => T,
): T {
  const value = getOwn(obj, key);
  const fieldPath = childPath(path, key);
  if (value === undefined) fail(fieldPath, 'required field is missing');
  return read(value, fieldPath, fail);
}

/** Reads an optional field; absent and `null` both give `undefined`. */
export function optional<T>(
  obj: JsonObject,
  key: string,
  path: string,
  fail: Fail,
  read: (value: unknown, path: string, fail: Fail) => T,
): T | undefined {
  const value = getOwn(obj, key);
  if (value === undefined || value === null) return undefined;
  return read(value, childPath(path, key), fail);
}

/** The keys of `obj` that are not in `known`, with their raw (lossless) values, in document order. */
export function unknownKeys(obj: JsonObject, known: ReadonlySet<string>): JsonObject {
  const extra: JsonObject = {};
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) setOwn(extra, key, obj[key]);
  }
  return extra;
}
