import { InvalidSortOrderError, InvalidTransformError } from './errors.js';
import {
  childPath,
  describeJson,
  expectArray,
  expectInt,
  expectObject,
  required,
  type Fail,
  type JsonObject,
} from './json-input.js';
import {
  parseTransform,
  transformOfFieldJson,
  transformProblem,
  transformToString,
  transformsEqual,
  type Transform,
} from './transforms.js';
import { findFieldByName, indexSchema, isPrimitive, type Schema } from './types.js';

/**
 * Sort orders (spec "Sorting", Appendix C "Sort Orders"). Order id 0 is reserved for the unsorted order; a table
 * that declares a sort starts at order id 1.
 */

export type SortDirection = 'asc' | 'desc';
export type NullOrder = 'nulls-first' | 'nulls-last';

export interface SortField {
  readonly sourceId: number;
  readonly transform: Transform;
  readonly direction: SortDirection;
  readonly nullOrder: NullOrder;
}

export interface SortOrder {
  readonly orderId: number;
  readonly fields: readonly SortField[];
}

/** The reserved id of the unsorted order. */
export const UNSORTED_ORDER_ID = 0;

/** The first id given to a real sort order (Java's `INITIAL_SORT_ORDER_ID`). */
export const INITIAL_SORT_ORDER_ID = 1;

/** The unsorted order, which every v2 table lists. */
export const UNSORTED_ORDER: SortOrder = { orderId: UNSORTED_ORDER_ID, fields: [] };

function throwOrderError(jsonPath: string, problem: string): never {
  throw new InvalidSortOrderError(jsonPath, problem);
}

/**
 * Parses a sort order from its JSON (`{"order-id":1,"fields":[{"transform":…,"source-id":…,"direction":…,
 * "null-order":…}]}`) and checks the id rule: 0 if and only if unsorted.
 *
 * @throws InvalidSortOrderError naming the offending field.
 */
export function parseSortOrder(json: unknown, jsonPath = ''): SortOrder {
  return sortOrderFromJson(json, jsonPath, throwOrderError);
}

function expectDirection(value: unknown, path: string, fail: Fail): SortDirection {
  if (value !== 'asc' && value !== 'desc') fail(path, `expected "asc" or "desc", got ${describeJson(value)}`);
  return value;
}

function expectNullOrder(value: unknown, path: string, fail: Fail): NullOrder {
  if (value !== 'nulls-first' && value !== 'nulls-last') {
    fail(path, `expected "nulls-first" or "nulls-last", got ${describeJson(value)}`);
  }
  return value;
}

/** {@link parseSortOrder} with a caller-supplied error factory, for embedding in metadata parsing. */
export function sortOrderFromJson(json: unknown, path: string, fail: Fail): SortOrder {
  const obj = expectObject(json, path, fail);
  const orderId = required(obj, 'order-id', path, fail, expectInt);
  const fieldsPath = childPath(path, 'fields');
  const fields = required(obj, 'fields', path, fail, expectArray).map((item, i): SortField => {
    const fieldPath = childPath(fieldsPath, i);
    const field = expectObject(item, fieldPath, fail);
    const transform = transformOfFieldJson(field, fieldPath, fail);
    return {
      transform,
      sourceId: required(field, 'source-id', fieldPath, fail, expectInt),
      direction: required(field, 'direction', fieldPath, fail, expectDirection),
      nullOrder: required(field, 'null-order', fieldPath, fail, expectNullOrder),
    };
  });
  checkOrderId(orderId, fields.length, childPath(path, 'order-id'), fail);
  return { orderId, fields };
}

function checkOrderId(orderId: number, fieldCount: number, path: string, fail: Fail): void {
  if (fieldCount === 0 && orderId !== UNSORTED_ORDER_ID) fail(path, `an unsorted order must have id 0, got ${orderId}`);
  if (fieldCount > 0 && orderId === UNSORTED_ORDER_ID) fail(path, 'order id 0 is reserved for the unsorted order');
}

/** The JSON form, with keys in the order Java writes them. */
export function sortOrderToJson(order: SortOrder): JsonObject {
  return {
    'order-id': order.orderId,
    fields: order.fields.map((field) => ({
      transform: transformToString(field.transform),
      'source-id': field.sourceId,
      direction: field.direction,
      'null-order': field.nullOrder,
    })),
  };
}

/**
 * Checks a sort order against a schema: every source exists and is a primitive outside lists and maps, and its
 * transform applies to the source type.
 *
 * @throws InvalidSortOrderError naming the offending sort field.
 */
export function validateSortOrder(order: SortOrder, schema: Schema, jsonPath = ''): void {
  checkOrderId(order.orderId, order.fields.length, childPath(jsonPath, 'order-id'), throwOrderError);
  const index = indexSchema(schema);
  order.fields.forEach((field, i) => {
    const at = childPath(childPath(jsonPath, 'fields'), i);
    const source = index.get(field.sourceId);
    if (!source)
      return throwOrderError(childPath(at, 'source-id'), `source field id ${field.sourceId} is not in the schema`);
    if (!isPrimitive(source.type) || source.inListOrMap) {
      throwOrderError(
        childPath(at, 'source-id'),
        `column "${source.fullName}" is not a primitive outside lists and maps`,
      );
    }
    const problem = transformProblem(field.transform, source.type);
    if (problem !== undefined) throwOrderError(childPath(at, 'transform'), `column "${source.fullName}": ${problem}`);
  });
}

/** One sort field to create, by source column name. */
export interface SortFieldRequest {
  /** Full dotted name of the source column. */
  readonly sourceColumn: string;
  /** @default identity */
  readonly transform?: Transform | string;
  /** @default 'asc' */
  readonly direction?: SortDirection;
  /** @default 'nulls-first' for ascending, 'nulls-last' for descending (Java's defaults) */
  readonly nullOrder?: NullOrder;
}

/**
 * Builds a validated sort order for `schema`. No fields gives the unsorted order (id 0).
 *
 * @param orderId the id for a non-empty order. @default {@link INITIAL_SORT_ORDER_ID}
 * @throws InvalidSortOrderError for an unknown column or a transform that does not apply.
 */
export function buildSortOrder(
  schema: Schema,
  fields: readonly SortFieldRequest[],
  orderId: number = INITIAL_SORT_ORDER_ID,
): SortOrder {
  if (fields.length === 0) return UNSORTED_ORDER;
  const order: SortOrder = {
    orderId,
    fields: fields.map((request, i): SortField => {
      const source = findFieldByName(schema, request.sourceColumn);
      if (!source) return throwOrderError(`fields[${i}]`, `column "${request.sourceColumn}" is not in the schema`);
      let transform: Transform;
      try {
        transform =
          request.transform === undefined
            ? { kind: 'identity' }
            : typeof request.transform === 'string'
              ? parseTransform(request.transform)
              : request.transform;
      } catch (err) {
        if (err instanceof InvalidTransformError) return throwOrderError(`fields[${i}].transform`, err.problem);
        throw err;
      }
      const direction = request.direction ?? 'asc';
      return {
        sourceId: source.id,
        transform,
        direction,
        nullOrder: request.nullOrder ?? (direction === 'asc' ? 'nulls-first' : 'nulls-last'),
      };
    }),
  };
  validateSortOrder(order, schema);
  return order;
}

/** Whether two orders sort the same way (order ids ignored). */
export function sortOrdersEquivalent(a: SortOrder, b: SortOrder): boolean {
  return (
    a.fields.length === b.fields.length &&
    a.fields.every((field, i) => {
      const other = b.fields[i];
      return (
        other !== undefined &&
        field.sourceId === other.sourceId &&
        field.direction === other.direction &&
        field.nullOrder === other.nullOrder &&
        transformsEqual(field.transform, other.transform)
      );
    })
  );
}
