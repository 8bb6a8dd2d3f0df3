import { describe, expect, it } from 'vitest';
import { encodeBound, truncateLowerBound, truncateUpperBound } from '../../../lib/iceberg/bounds.js';
import {
  and,
  bind,
  eq,
  evaluateRow,
  gt,
  gtEq,
  isIn,
  isNaN,
  isNull,
  lt,
  ltEq,
  manifestMightMatch,
  metricsMightMatch,
  not,
  notEq,
  notIn,
  notNaN,
  notNull,
  or,
  partitionMightMatch,
  projectInclusive,
  rewriteNot,
  alwaysFalse,
  alwaysTrue,
  InvalidExpressionError,
  type BoundExpression,
  type Expression,
  type FileMetrics,
} from '../../../lib/iceberg/expressions.js';
import * as Expressions from '../../../lib/iceberg/expressions.js';
import { encodePartitionBound } from '../../../lib/iceberg/manifest.js';
import type { PartitionFieldSummary } from '../../../lib/iceberg/manifest-list.js';
import type { PartitionSpec } from '../../../lib/iceberg/partition-spec.js';
import { applyTransform, parseTransform } from '../../../lib/iceberg/transforms.js';
import { Types, type PrimitiveType, type Schema } from '../../../lib/iceberg/types.js';
import { dateFromIso, timestampFromIso, type PrimitiveValue } from '../../../lib/iceberg/values.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'name', required: false, type: Types.string },
    { id: 3, name: 'score', required: false, type: Types.double },
    { id: 4, name: 'ts', required: false, type: Types.timestamp },
    { id: 5, name: 'tstz', required: false, type: Types.timestamptz },
    { id: 6, name: 'day', required: false, type: Types.date },
    { id: 7, name: 'price', required: false, type: Types.decimal(10, 2) },
    { id: 8, name: 'small', required: false, type: Types.int },
    { id: 9, name: 'ratio', required: false, type: Types.float },
    { id: 10, name: 'uid', required: false, type: Types.uuid },
    {
      id: 11,
      name: 'address',
      required: false,
      type: {
        kind: 'struct',
        fields: [
          { id: 13, name: 'city', required: true, type: Types.string },
          { id: 14, name: 'zip', required: false, type: Types.int },
        ],
      },
    },
    {
      id: 12,
      name: 'tags',
      required: false,
      type: { kind: 'list', elementId: 15, elementRequired: true, element: Types.string },
    },
  ],
};

/** A row in schema order; unspecified columns are null. */
function row(values: Partial<Record<string, unknown>>): unknown[] {
  return schema.fields.map((f) => values[f.name] ?? null);
}

const b = (expr: Expression): BoundExpression => bind(expr, schema);
const matches = (expr: Expression, values: Partial<Record<string, unknown>>): boolean =>
  evaluateRow(b(expr), row(values));

function leaf(expr: BoundExpression): Extract<BoundExpression, { ref: unknown }> {
  if (!('ref' in expr)) throw new Error(`expected a predicate, got ${expr.op}`);
  return expr;
}

describe('bind', () => {
  it('names the column when it does not exist, and honours case sensitivity', () => {
    const error = (() => {
      try {
        b(eq('Name', 'x'));
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidExpressionError);
    expect((error as InvalidExpressionError).column).toBe('Name');
    expect((error as InvalidExpressionError).failureType).toBe('InvalidInput');
    expect(String(error)).toMatch(/"Name".*no such column/);
    expect(leaf(bind(eq('Name', 'x'), schema, { caseSensitive: false })).ref.fieldId).toBe(2);
  });

  it('resolves dotted struct fields to their row path and refuses list elements and structs', () => {
    const ref = leaf(b(eq('address.zip', 94110))).ref;
    expect(ref).toMatchObject({ fieldId: 14, name: 'address.zip', path: [10, 1] });
    expect(() => b(eq('tags.element', 'a'))).toThrow(/inside a list or map/);
    expect(() => b(isNull('address'))).toThrow(/struct/);
  });

  it('converts literals to the column type', () => {
    const value = (expr: Expression): unknown => (leaf(b(expr)) as { value: unknown }).value;
    expect(value(eq('id', 42))).toBe(42n);
    expect(value(eq('id', '-7'))).toBe(-7n);
    expect(value(eq('small', 5n))).toBe(5);
    expect(value(eq('ts', '2024-05-01T12:00:00'))).toBe(BigInt(Date.UTC(2024, 4, 1, 12)) * 1000n);
    expect(value(eq('tstz', '2024-05-01T14:00:00+02:00'))).toBe(BigInt(Date.UTC(2024, 4, 1, 12)) * 1000n);
    expect(value(eq('tstz', new Date(Date.UTC(2024, 4, 1, 12))))).toBe(BigInt(Date.UTC(2024, 4, 1, 12)) * 1000n);
    expect(value(eq('day', '2024-05-01'))).toBe(dateFromIso('2024-05-01'));
    expect(value(eq('price', '14.2'))).toEqual({ unscaled: 1420n, scale: 2 });
    expect(value(eq('price', 3))).toEqual({ unscaled: 300n, scale: 2 });
    expect(value(eq('price', '1.500'))).toEqual({ unscaled: 150n, scale: 2 });
    // A float column compares float32 values: 0.1 must become 0.1f or eq would never match a stored 0.1f.
    expect(value(eq('ratio', 0.1))).toBe(Math.fround(0.1));
    expect(value(eq('uid', 'F79C3E09-677C-4D6E-9C6B-0A5F9E3B1C2D'))).toBe('f79c3e09-677c-4d6e-9c6b-0a5f9e3b1c2d');
  });

  it('refuses literals that do not fit, naming the column', () => {
    expect(() => b(eq('id', 2 ** 60))).toThrow(/"id".*bigint/);
    expect(() => b(eq('id', 1.5))).toThrow(/"id"/);
    expect(() => b(eq('small', 2 ** 31))).toThrow(/"small".*32-bit/);
    expect(() => b(eq('price', '1.005'))).toThrow(/"price".*more than 2 fraction digits/);
    expect(() => b(eq('ts', '2024-05-01T12:00:00Z'))).toThrow(/"ts"/);
    expect(() => b(eq('ts', 1714564800000))).toThrow(/"ts".*ambiguous|"ts".*bigint/);
    expect(() => b(eq('tstz', '2024-05-01T12:00:00'))).toThrow(/"tstz".*zone/);
    expect(() => b(eq('name', 5))).toThrow(/"name".*string/);
    expect(() => b(eq('score', NaN))).toThrow(/isNaN/);
    expect(() => b(eq('name', null as unknown as string))).toThrow(/isNull/);
    expect(() => b(isIn('uid', ['not-a-uuid']))).toThrow(InvalidExpressionError);
  });

  it('folds what the schema decides and simplifies sets', () => {
    expect(b(isNull('id'))).toEqual(alwaysFalse());
    expect(b(notNull('id'))).toEqual(alwaysTrue());
    // city is required but inside an optional struct, so it can still be null.
    expect(b(isNull('address.city')).op).toBe('isNull');
    expect(b(isNaN('id'))).toEqual(alwaysFalse());
    expect(b(notNaN('name'))).toEqual(alwaysTrue());
    expect(b(isIn('id', []))).toEqual(alwaysFalse());
    expect(b(notIn('id', []))).toEqual(alwaysTrue());
    expect(b(isIn('id', [1, 1n, '1']))).toMatchObject({ op: 'eq', value: 1n });
    expect(b(and(isNull('id'), eq('name', 'a')))).toEqual(alwaysFalse());
    expect(b(or(notNull('id'), eq('name', 'a')))).toEqual(alwaysTrue());
    expect(b(not(not(eq('name', 'a'))))).toMatchObject({ op: 'eq' });
    // `in` is a reserved word but still an export name.
    expect(Expressions.in('id', [1, 2])).toEqual(isIn('id', [1, 2]));
  });
});

describe('evaluateRow', () => {
  it('evaluates each comparison, with nulls and NaN false and their negations true', () => {
    const cases: [Expression, Partial<Record<string, unknown>>, boolean][] = [
      [eq('id', 5), { id: 5n }, true],
      [eq('id', 5), { id: 6n }, false],
      [notEq('id', 5), { id: 6n }, true],
      [notEq('name', 'a'), { name: null }, true],
      [eq('name', 'a'), { name: null }, false],
      [lt('id', 5), { id: 4n }, true],
      [lt('id', 5), { id: 5n }, false],
      [ltEq('id', 5), { id: 5n }, true],
      [gt('id', 5), { id: 5n }, false],
      [gt('id', 5), { id: 6n }, true],
      [gtEq('id', 5), { id: 5n }, true],
      [gt('score', 1), { score: NaN }, false],
      [lt('score', 1), { score: NaN }, false],
      [notEq('score', 1), { score: NaN }, true],
      [eq('score', 0), { score: -0 }, true],
      [lt('score', 0), { score: -0 }, false],
      [isIn('name', ['a', 'b']), { name: 'b' }, true],
      [isIn('name', ['a', 'b']), { name: null }, false],
      [notIn('name', ['a', 'b']), { name: 'c' }, true],
      [notIn('name', ['a', 'b']), { name: null }, true],
      [notIn('name', ['a', 'b']), { name: 'a' }, false],
      [isNull('name'), { name: null }, true],
      [notNull('name'), { name: 'x' }, true],
      [isNaN('score'), { score: NaN }, true],
      [isNaN('score'), { score: null }, false],
      [notNaN('score'), { score: null }, true],
      [lt('name', '\u{10000}'), { name: '\uE000' }, true], // code point order, not UTF-16 order
      [eq('price', '14.20'), { price: { unscaled: 1420n, scale: 2 } }, true],
      [gt('ts', '2024-05-01T00:00:00'), { ts: timestampFromIso('2024-05-01T00:00:00.000001') }, true],
      [eq('address.zip', 94110), { address: ['SF', 94110] }, true],
      [eq('address.zip', 94110), { address: null }, false],
      [isNull('address.city'), { address: null }, true],
      [not(eq('id', 5)), { id: 5n }, false],
      [and(gt('id', 1), lt('id', 3)), { id: 2n }, true],
      [or(lt('id', 1), gt('id', 3)), { id: 2n }, false],
    ];
    for (const [expr, values, expected] of cases) {
      expect([
        JSON.stringify(expr, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
        matches(expr, values),
      ]).toEqual([JSON.stringify(expr, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)), expected]);
    }
  });

  it('rewriteNot keeps the meaning of every negation, nulls and NaN included', () => {
    const predicates: Expression[] = [
      lt('score', 1),
      ltEq('score', 1),
      gt('score', 1),
      gtEq('score', 1),
      eq('score', 1),
      isIn('score', [1, 2]),
      isNaN('score'),
      isNull('score'),
      lt('name', 'm'),
      and(gt('id', 2), lt('name', 'm')),
      or(eq('id', 1), notNull('name')),
    ];
    const rows = [
      row({ id: 1n, name: 'a', score: 1 }),
      row({ id: 3n, name: 'z', score: 2 }),
      row({ id: 2n, name: null, score: null }),
      row({ id: 4n, name: 'm', score: NaN }),
      row({ id: 5n, name: 'b', score: 0.5 }),
    ];
    for (const predicate of predicates) {
      const negated = b(not(predicate));
      const rewritten = rewriteNot(negated);
      expect(JSON.stringify(rewritten, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(
        '"op":"not"',
      );
      for (const r of rows) expect(evaluateRow(rewritten, r)).toBe(evaluateRow(negated, r));
    }
  });
});

describe('metricsMightMatch', () => {
  const long = (n: bigint) => encodeBound(Types.long, n);
  const file = (overrides: Partial<FileMetrics> = {}): FileMetrics => ({
    recordCount: 10n,
    valueCounts: new Map([
      [1, 10n],
      [2, 10n],
      [3, 10n],
    ]),
    nullValueCounts: new Map([
      [1, 0n],
      [2, 2n],
      [3, 0n],
    ]),
    nanValueCounts: new Map([[3, 0n]]),
    lowerBounds: new Map([
      [1, long(10n)],
      [2, encodeBound(Types.string, 'b')],
      [3, encodeBound(Types.double, -1)],
    ]),
    upperBounds: new Map([
      [1, long(20n)],
      [2, encodeBound(Types.string, 'm')],
      [3, encodeBound(Types.double, 1)],
    ]),
    ...overrides,
  });
  const might = (expr: Expression, f: FileMetrics = file()) => metricsMightMatch(b(expr), f);

  it('prunes on lower and upper bounds, inclusively at the edges', () => {
    expect(might(eq('id', 9))).toBe(false);
    expect(might(eq('id', 10))).toBe(true);
    expect(might(eq('id', 20))).toBe(true);
    expect(might(eq('id', 21))).toBe(false);
    expect(might(lt('id', 10))).toBe(false);
    expect(might(lt('id', 11))).toBe(true);
    expect(might(ltEq('id', 10))).toBe(true);
    expect(might(gt('id', 20))).toBe(false);
    expect(might(gtEq('id', 20))).toBe(true);
    expect(might(isIn('id', [1, 2, 30]))).toBe(false);
    expect(might(isIn('id', [1, 15, 30]))).toBe(true);
    // Bounds need not be values in the file, so negations never prune.
    expect(might(notEq('id', 15))).toBe(true);
    expect(might(notIn('id', [10, 20]))).toBe(true);
    expect(might(and(gt('id', 12), lt('name', 'b')))).toBe(false);
    expect(might(or(gt('id', 25), lt('name', 'c')))).toBe(true);
  });

  it('uses null and NaN counts', () => {
    expect(might(isNull('id'))).toBe(false);
    expect(might(isNull('name'))).toBe(true);
    expect(might(isNaN('score'))).toBe(false);
    const nullsOnly = file({ nullValueCounts: new Map([[2, 10n]]), lowerBounds: new Map(), upperBounds: new Map() });
    expect(might(notNull('name'), nullsOnly)).toBe(false);
    expect(might(eq('name', 'x'), nullsOnly)).toBe(false);
    expect(might(isNull('name'), nullsOnly)).toBe(true);
    expect(might(notEq('name', 'x'), nullsOnly)).toBe(true);
    const nansOnly = file({ nanValueCounts: new Map([[3, 10n]]), lowerBounds: new Map(), upperBounds: new Map() });
    expect(might(gt('score', 0), nansOnly)).toBe(false);
    expect(might(notNaN('score'), nansOnly)).toBe(false);
    expect(might(isNaN('score'), nansOnly)).toBe(true);
    expect(might(eq('id', 5), file({ recordCount: 0n }))).toBe(false);
  });

  it('never prunes on missing metrics or a NaN bound', () => {
    const bare: FileMetrics = { recordCount: 5n };
    for (const expr of [eq('id', 5), isNull('name'), notNull('name'), isNaN('score'), lt('score', 0)]) {
      expect(might(expr, bare)).toBe(true);
    }
    const nanLower = file({ lowerBounds: new Map([[3, encodeBound(Types.double, NaN)]]) });
    expect(might(lt('score', -5), nanLower)).toBe(true);
  });

  it('treats negation exactly: not(lt) keeps a file whose nulls match it', () => {
    const values = file({
      nullValueCounts: new Map([[2, 3n]]),
      lowerBounds: new Map([[2, encodeBound(Types.string, 'a')]]),
      upperBounds: new Map([[2, encodeBound(Types.string, 'c')]]),
    });
    // Every non-null name is < 'x', but not(lt) is true for the nulls.
    expect(might(not(lt('name', 'x')), values)).toBe(true);
    const noNulls = file({
      nullValueCounts: new Map([[2, 0n]]),
      lowerBounds: new Map([[2, encodeBound(Types.string, 'a')]]),
      upperBounds: new Map([[2, encodeBound(Types.string, 'c')]]),
    });
    expect(might(not(lt('name', 'x')), noNulls)).toBe(false);
  });

  it('reads 4-byte bounds of a column promoted from int to long', () => {
    const promoted = file({
      lowerBounds: new Map([[1, encodeBound(Types.int, 10)]]),
      upperBounds: new Map([[1, encodeBound(Types.int, 20)]]),
    });
    expect(might(eq('id', 21), promoted)).toBe(false);
    expect(might(eq('id', 15), promoted)).toBe(true);
  });

  it('never wrongly prunes with truncated string bounds', () => {
    const stored = ['abcdefghijklmnopqrstuvwxyz', 'abcdefghijklmnopzzzzzz', 'abcdefghijklmnop\u{10FFFF}x', 'b'];
    const sorted = [...stored].sort((x, y) => (x < y ? -1 : 1));
    const lower = truncateLowerBound(stored[0] as string, 16);
    const upper = truncateUpperBound(sorted.at(-2) as string, 16) as string;
    expect(lower).toBe('abcdefghijklmnop');
    const truncated = file({
      nullValueCounts: new Map([[2, 0n]]),
      lowerBounds: new Map([[2, encodeBound(Types.string, lower)]]),
      // The upper bound of the first three values: truncated, then incremented.
      upperBounds: new Map([[2, encodeBound(Types.string, upper)]]),
    });
    const values = stored.slice(0, 3);
    const literals = [
      ...values,
      'abcdefghijklmnop',
      'abcdefghijklmnoq',
      'abcdefghijklmno',
      'abcdefghijklmnopzzzzzzz',
      'a',
      'c',
    ];
    for (const literal of literals) {
      for (const expr of [
        eq('name', literal),
        lt('name', literal),
        ltEq('name', literal),
        gt('name', literal),
        gtEq('name', literal),
      ]) {
        const bound = b(expr);
        const someRowMatches = values.some((v) => evaluateRow(bound, row({ name: v })));
        if (someRowMatches) expect(metricsMightMatch(bound, truncated)).toBe(true);
      }
    }
    // And it does prune where the truncated bounds are enough to know.
    expect(might(eq('name', 'a'), truncated)).toBe(false);
    expect(might(lt('name', 'abcdefghijklmnop'), truncated)).toBe(false);
    expect(might(gt('name', 'c'), truncated)).toBe(false);
  });
});

describe('projectInclusive', () => {
  const spec = (fields: [string, string][]): PartitionSpec => ({
    specId: 1,
    fields: fields.map(([column, transform], i) => ({
      sourceId: schema.fields.find((f) => f.name === column)!.id,
      fieldId: 1000 + i,
      name: `${column}_${i}`,
      transform: parseTransform(transform),
    })),
  });
  const typeOf = (column: string) => schema.fields.find((f) => f.name === column)!.type as PrimitiveType;
  const tupleOf = (column: string, transform: string, value: PrimitiveValue | null) => [
    applyTransform(parseTransform(transform), typeOf(column), value),
  ];

  /**
   * For every value, if the row matches the predicate, its partition tuple must match the projection (otherwise
   * planning would skip a matching file).
   */
  function expectInclusive(column: string, transform: string, predicates: Expression[], values: PrimitiveValue[]) {
    const s = spec([[column, transform]]);
    let pruned = 0;
    for (const predicate of predicates) {
      const bound = b(predicate);
      const projected = projectInclusive(bound, s, schema);
      for (const value of [...values, null]) {
        const tuple = tupleOf(column, transform, value);
        const rowMatches = evaluateRow(bound, row({ [column]: value }));
        const partitionMatches = partitionMightMatch(projected, tuple);
        if (rowMatches) expect({ predicate, value, partitionMatches }).toMatchObject({ partitionMatches: true });
        if (!partitionMatches) pruned += 1;
      }
    }
    // The projection is useful, not just always true.
    expect(pruned).toBeGreaterThan(0);
  }

  const ints = Array.from({ length: 41 }, (_, i) => i * 7 - 140);
  const comparisons = (column: string, literals: unknown[], other: unknown = 3): Expression[] =>
    literals.flatMap((v) => [
      eq(column, v as PrimitiveValue),
      lt(column, v as PrimitiveValue),
      ltEq(column, v as PrimitiveValue),
      gt(column, v as PrimitiveValue),
      gtEq(column, v as PrimitiveValue),
      notEq(column, v as PrimitiveValue),
      isIn(column, [v as PrimitiveValue, other as PrimitiveValue]),
      notIn(column, [v as PrimitiveValue, other as PrimitiveValue]),
      not(lt(column, v as PrimitiveValue)),
      isNull(column),
      notNull(column),
    ]);

  it('is inclusive through truncate[10] of int and identity', () => {
    expectInclusive('small', 'truncate[10]', comparisons('small', [-21, -20, -1, 0, 9, 10, 11, 35]), ints);
    expectInclusive('small', 'identity', comparisons('small', [-21, 0, 35]), ints);
  });

  it('is inclusive through bucket[8] and prunes eq and in to the literal buckets', () => {
    const longs = Array.from({ length: 60 }, (_, i) => BigInt(i * 13 - 200));
    expectInclusive('id', 'bucket[8]', comparisons('id', [-200, 0, 5, 12]), longs);
    const s = spec([['id', 'bucket[8]']]);
    const projected = projectInclusive(b(isIn('id', [5, 12])), s, schema);
    const buckets = new Set([5n, 12n].map((v) => applyTransform(parseTransform('bucket[8]'), Types.long, v)));
    for (let bucket = 0; bucket < 8; bucket += 1)
      expect(partitionMightMatch(projected, [bucket])).toBe(buckets.has(bucket));
    // Ranges say nothing about buckets.
    expect(projectInclusive(b(lt('id', 5)), s, schema)).toEqual(alwaysTrue());
  });

  it('is inclusive through truncate[3] of strings', () => {
    const strings = ['', 'a', 'ab', 'abc', 'abcd', 'abd', 'abz', 'b', 'zz', '\u{10000}', '\uE000x'];
    expectInclusive('name', 'truncate[3]', comparisons('name', ['abc', 'abcd', 'ab', 'abd', 'b'], 'zz'), strings);
    const projected = projectInclusive(b(eq('name', 'abcdef')), spec([['name', 'truncate[3]']]), schema);
    expect(projected).toMatchObject({ op: 'eq', value: 'abc', ref: { path: [0], type: Types.string } });
  });

  it('is inclusive through day, hour, month and year of timestamps, at the boundaries', () => {
    const base = timestampFromIso('2024-02-28T23:00:00');
    const hour = 3_600_000_000n;
    const values = Array.from({ length: 60 }, (_, i) => base + BigInt(i - 30) * hour + (i % 3 === 0 ? -1n : 0n));
    const literals = [
      '2024-02-29T00:00:00',
      '2024-03-01T00:00:00',
      '2024-02-28T23:59:59.999999',
      '2024-01-01T00:00:00',
    ];
    for (const transform of ['day', 'hour', 'month', 'year']) {
      expectInclusive('ts', transform, comparisons('ts', literals, '2024-02-29T12:00:00'), values);
    }
    // lt(midnight) must not include that day's partition.
    const day = spec([['ts', 'day']]);
    const beforeMidnight = projectInclusive(b(lt('ts', '2024-03-01T00:00:00')), day, schema);
    expect(partitionMightMatch(beforeMidnight, [dateFromIso('2024-03-01')])).toBe(false);
    expect(partitionMightMatch(beforeMidnight, [dateFromIso('2024-02-29')])).toBe(true);
  });

  it('is inclusive through month of dates, before 1970 too', () => {
    const days = Array.from({ length: 80 }, (_, i) => i * 11 - 400);
    expectInclusive(
      'day',
      'month',
      comparisons('day', ['1969-12-31', '1970-01-01', '1969-03-01', '1970-06-15'], '1969-07-04'),
      days,
    );
  });

  it('ands the projections of several partition fields of one column', () => {
    const s = spec([
      ['small', 'bucket[4]'],
      ['small', 'truncate[10]'],
    ]);
    const projected = projectInclusive(b(eq('small', 23)), s, schema);
    const bucket = applyTransform(parseTransform('bucket[4]'), Types.int, 23);
    expect(partitionMightMatch(projected, [bucket, 20])).toBe(true);
    expect(partitionMightMatch(projected, [bucket, 30])).toBe(false);
    expect(partitionMightMatch(projected, [((bucket as number) + 1) % 4, 20])).toBe(false);
  });
});

describe('manifestMightMatch', () => {
  const summary = (
    type: PrimitiveType,
    lower: PrimitiveValue | null,
    upper: PrimitiveValue | null,
    more: Partial<PartitionFieldSummary> = {},
  ): PartitionFieldSummary => ({
    containsNull: false,
    containsNan: false,
    lowerBound: lower === null ? null : encodePartitionBound(type, lower),
    upperBound: upper === null ? null : encodePartitionBound(type, upper),
    ...more,
  });
  const identity: PartitionSpec = {
    specId: 0,
    fields: [
      { sourceId: 8, fieldId: 1000, name: 'small', transform: parseTransform('identity') },
      { sourceId: 3, fieldId: 1001, name: 'score', transform: parseTransform('identity') },
    ],
  };
  const might = (expr: Expression, partitions: PartitionFieldSummary[] | null) =>
    manifestMightMatch(projectInclusive(b(expr), identity, schema), partitions);

  it('prunes on partition bounds and null/NaN flags', () => {
    const ranges = [summary(Types.int, 10, 20), summary(Types.double, 0, 1)];
    expect(might(eq('small', 9), ranges)).toBe(false);
    expect(might(eq('small', 10), ranges)).toBe(true);
    expect(might(isIn('small', [1, 21]), ranges)).toBe(false);
    expect(might(gt('small', 20), ranges)).toBe(false);
    expect(might(lt('small', 11), ranges)).toBe(true);
    expect(might(isNull('small'), ranges)).toBe(false);
    expect(might(isNaN('score'), ranges)).toBe(false);
    expect(might(and(eq('small', 15), gt('score', 2)), ranges)).toBe(false);
    expect(might(notEq('small', 15), ranges)).toBe(true);
    expect(might(eq('small', 1), null)).toBe(true);
  });

  it('knows a field that is all null or all NaN', () => {
    const allNull = [
      summary(Types.int, null, null, { containsNull: true }),
      summary(Types.double, null, null, { containsNan: true }),
    ];
    expect(might(notNull('small'), allNull)).toBe(false);
    expect(might(isNull('small'), allNull)).toBe(true);
    expect(might(eq('small', 1), allNull)).toBe(false);
    expect(might(notNaN('score'), allNull)).toBe(false);
    expect(might(isNaN('score'), allNull)).toBe(true);
    // All NaN is not all null: notNull must keep it.
    expect(might(notNull('score'), allNull)).toBe(true);
  });
});

describe('partitionMightMatch', () => {
  it('evaluates a projected predicate on a data file tuple, nulls included', () => {
    const s: PartitionSpec = {
      specId: 0,
      fields: [{ sourceId: 2, fieldId: 1000, name: 'name', transform: parseTransform('identity') }],
    };
    const projected = projectInclusive(b(or(eq('name', 'a'), isNull('name'))), s, schema);
    expect(partitionMightMatch(projected, ['a'])).toBe(true);
    expect(partitionMightMatch(projected, [null])).toBe(true);
    expect(partitionMightMatch(projected, ['b'])).toBe(false);
    expect(leaf(projectInclusive(b(eq('name', 'a')), s, schema)).ref).toMatchObject({ fieldId: 1000, path: [0] });
  });
});
