import { describe, expect, it } from 'vitest';
import {
  buildSortOrder,
  parseSortOrder,
  sortOrdersEquivalent,
  sortOrderToJson,
  UNSORTED_ORDER,
  validateSortOrder,
} from '../../../lib/iceberg/sort-order.js';
import { Transforms } from '../../../lib/iceberg/transforms.js';
import { parseSchema } from '../../../lib/iceberg/types.js';

const schema = parseSchema({
  type: 'struct',
  'schema-id': 0,
  fields: [
    { id: 1, name: 'id', required: true, type: 'long' },
    { id: 2, name: 'name', required: false, type: 'string' },
    {
      id: 3,
      name: 'tags',
      required: false,
      type: { type: 'list', 'element-id': 4, element: 'string', 'element-required': true },
    },
  ],
});

describe('sort order JSON', () => {
  it('round-trips the spec example with Java’s key order', () => {
    const json = {
      'order-id': 1,
      fields: [
        { transform: 'identity', 'source-id': 2, direction: 'asc', 'null-order': 'nulls-first' },
        { transform: 'bucket[4]', 'source-id': 1, direction: 'desc', 'null-order': 'nulls-last' },
      ],
    };
    const order = parseSortOrder(json);
    expect(order.fields[1]).toEqual({
      sourceId: 1,
      transform: Transforms.bucket(4),
      direction: 'desc',
      nullOrder: 'nulls-last',
    });
    expect(JSON.stringify(sortOrderToJson(order))).toBe(JSON.stringify(json));
  });

  it('reserves order id 0 for the unsorted order', () => {
    expect(() =>
      parseSortOrder({
        'order-id': 0,
        fields: [{ transform: 'identity', 'source-id': 1, direction: 'asc', 'null-order': 'nulls-first' }],
      }),
    ).toThrow('invalid Iceberg sort order at order-id: order id 0 is reserved for the unsorted order');
    expect(() => parseSortOrder({ 'order-id': 2, fields: [] })).toThrow(/unsorted order must have id 0/);
    expect(parseSortOrder({ 'order-id': 0, fields: [] })).toEqual(UNSORTED_ORDER);
  });

  it('names a bad direction or null order', () => {
    expect(() =>
      parseSortOrder({
        'order-id': 1,
        fields: [{ transform: 'identity', 'source-id': 1, direction: 'up', 'null-order': 'nulls-first' }],
      }),
    ).toThrow('at fields[0].direction: expected "asc" or "desc", got "up"');
    expect(() =>
      parseSortOrder({
        'order-id': 1,
        fields: [{ transform: 'identity', 'source-id': 1, direction: 'asc', 'null-order': 'first' }],
      }),
    ).toThrow(/fields\[0\]\.null-order/);
  });
});

describe('building and validating sort orders', () => {
  it('uses Java’s defaults: identity, ascending, nulls first (nulls last when descending)', () => {
    const order = buildSortOrder(schema, [{ sourceColumn: 'id' }, { sourceColumn: 'name', direction: 'desc' }]);
    expect(order).toEqual({
      orderId: 1,
      fields: [
        { sourceId: 1, transform: Transforms.identity, direction: 'asc', nullOrder: 'nulls-first' },
        { sourceId: 2, transform: Transforms.identity, direction: 'desc', nullOrder: 'nulls-last' },
      ],
    });
    expect(buildSortOrder(schema, [])).toBe(UNSORTED_ORDER);
  });

  it('refuses unknown columns, list elements and inapplicable transforms', () => {
    expect(() => buildSortOrder(schema, [{ sourceColumn: 'nope' }])).toThrow(/column "nope" is not in the schema/);
    expect(() => buildSortOrder(schema, [{ sourceColumn: 'tags.element' }])).toThrow(/not a primitive outside lists/);
    expect(() => buildSortOrder(schema, [{ sourceColumn: 'name', transform: 'day' }])).toThrow(/day applies to date/);
    const parsed = parseSortOrder({
      'order-id': 1,
      fields: [{ transform: 'identity', 'source-id': 9, direction: 'asc', 'null-order': 'nulls-first' }],
    });
    expect(() => validateSortOrder(parsed, schema)).toThrow(/source field id 9 is not in the schema/);
  });

  it('compares orders ignoring their ids', () => {
    const a = buildSortOrder(schema, [{ sourceColumn: 'id' }], 1);
    const b = buildSortOrder(schema, [{ sourceColumn: 'id' }], 7);
    const c = buildSortOrder(schema, [{ sourceColumn: 'id', nullOrder: 'nulls-last' }], 1);
    expect(sortOrdersEquivalent(a, b)).toBe(true);
    expect(sortOrdersEquivalent(a, c)).toBe(false);
  });
});
