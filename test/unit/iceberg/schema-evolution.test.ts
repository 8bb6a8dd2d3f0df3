import { describe, expect, it } from 'vitest';
import { SchemaEvolutionError } from '../../../lib/iceberg/errors.js';
import {
  evolveSchema,
  promotionProblem,
  schemasEquivalent,
  type SchemaChange,
} from '../../../lib/iceberg/schema-evolution.js';
import { findFieldByName, parseSchema, parseType, schemaToJson, Types } from '../../../lib/iceberg/types.js';

const base = parseSchema({
  type: 'struct',
  'schema-id': 0,
  'identifier-field-ids': [1],
  fields: [
    { id: 1, name: 'id', required: true, type: 'int' },
    { id: 2, name: 'name', required: true, type: 'string' },
    { id: 3, name: 'ratio', required: false, type: 'float' },
    { id: 4, name: 'amount', required: false, type: 'decimal(9, 2)' },
    {
      id: 5,
      name: 'address',
      required: false,
      type: { type: 'struct', fields: [{ id: 6, name: 'city', required: false, type: 'string' }] },
    },
    {
      id: 7,
      name: 'counts',
      required: false,
      type: { type: 'list', 'element-id': 8, element: 'int', 'element-required': true },
    },
    {
      id: 9,
      name: 'points',
      required: false,
      type: {
        type: 'list',
        'element-id': 10,
        element: { type: 'struct', fields: [{ id: 11, name: 'x', required: true, type: 'double' }] },
        'element-required': true,
      },
    },
    {
      id: 12,
      name: 'attrs',
      required: false,
      type: { type: 'map', 'key-id': 13, key: 'string', 'value-id': 14, value: 'long', 'value-required': true },
    },
  ],
});
const LAST = 14;

function evolve(...changes: SchemaChange[]) {
  return evolveSchema({ schema: base, lastColumnId: LAST, newSchemaId: 1, changes });
}

function errorOf(fn: () => unknown): SchemaEvolutionError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SchemaEvolutionError) return err;
    throw err;
  }
  throw new Error('expected a SchemaEvolutionError');
}

describe('adding columns', () => {
  it('adds an optional column with the next id and bumps last-column-id', () => {
    const { schema, lastColumnId } = evolve({ op: 'add-column', name: 'email', type: Types.string, doc: 'contact' });
    expect(schema.schemaId).toBe(1);
    expect(schema.fields.at(-1)).toEqual({
      id: 15,
      name: 'email',
      required: false,
      type: Types.string,
      doc: 'contact',
    });
    expect(lastColumnId).toBe(15);
  });

  it('assigns fresh ids to a nested type, the new field first', () => {
    const type = parseType({
      type: 'struct',
      fields: [
        { id: 900, name: 'a', required: true, type: 'int' },
        {
          id: 901,
          name: 'b',
          required: false,
          type: { type: 'list', 'element-id': 902, element: 'string', 'element-required': false },
        },
      ],
    });
    const { schema, lastColumnId } = evolve({ op: 'add-column', name: 'meta', type });
    expect(schemaToJson(schema).fields).toContainEqual({
      id: 15,
      name: 'meta',
      required: false,
      type: {
        type: 'struct',
        fields: [
          { id: 16, name: 'a', required: true, type: 'int' },
          {
            id: 17,
            name: 'b',
            required: false,
            type: { type: 'list', 'element-id': 18, element: 'string', 'element-required': false },
          },
        ],
      },
    });
    expect(lastColumnId).toBe(18);
  });

  it('adds to a nested struct and to the struct inside a list', () => {
    const { schema } = evolve(
      { op: 'add-column', parent: 'address', name: 'zip', type: Types.string },
      { op: 'add-column', parent: 'points', name: 'y', type: Types.double },
    );
    expect(findFieldByName(schema, 'address.zip')?.id).toBe(15);
    expect(findFieldByName(schema, 'points.element.y')?.id).toBe(16);
  });

  it('never changes existing ids', () => {
    const { schema } = evolve(
      { op: 'add-column', name: 'z', type: Types.long },
      { op: 'rename-column', column: 'name', newName: 'full_name' },
      { op: 'update-column-type', column: 'id', type: Types.long },
    );
    expect(schema.fields.slice(0, 8).map((f) => f.id)).toEqual(base.fields.map((f) => f.id));
    expect(schema.identifierFieldIds).toEqual([1]);
  });

  it('refuses a required column, a duplicate name, a dotted name and a non-struct parent', () => {
    expect(errorOf(() => evolve({ op: 'add-column', name: 'x', type: Types.int, required: true })).message).toMatch(
      /cannot change column "x": a required column cannot be added.*add it as optional/,
    );
    expect(errorOf(() => evolve({ op: 'add-column', name: 'name', type: Types.int })).column).toBe('name');
    expect(
      errorOf(() => evolve({ op: 'add-column', parent: 'address', name: 'city', type: Types.int })).message,
    ).toMatch(/"address.city": a column with this name already exists/);
    expect(errorOf(() => evolve({ op: 'add-column', name: 'a.b', type: Types.int })).message).toMatch(/contains a dot/);
    expect(errorOf(() => evolve({ op: 'add-column', parent: 'counts', name: 'q', type: Types.int })).message).toMatch(
      /columns can be added only to structs/,
    );
    expect(errorOf(() => evolve({ op: 'add-column', parent: 'nowhere', name: 'q', type: Types.int })).column).toBe(
      'nowhere',
    );
  });
});

describe('type promotion', () => {
  it('widens int→long, float→double and decimal precision, including inside lists and maps', () => {
    const { schema } = evolve(
      { op: 'update-column-type', column: 'id', type: Types.long },
      { op: 'update-column-type', column: 'ratio', type: Types.double },
      { op: 'update-column-type', column: 'amount', type: Types.decimal(18, 2) },
      { op: 'update-column-type', column: 'counts.element', type: Types.long },
    );
    expect(findFieldByName(schema, 'id')?.type).toEqual(Types.long);
    expect(findFieldByName(schema, 'ratio')?.type).toEqual(Types.double);
    expect(findFieldByName(schema, 'amount')?.type).toEqual(Types.decimal(18, 2));
    expect(findFieldByName(schema, 'counts.element')?.type).toEqual(Types.long);
    expect(findFieldByName(schema, 'counts.element')?.id).toBe(8);
  });

  it('refuses narrowing and other changes, naming the column', () => {
    const widened = evolve({ op: 'update-column-type', column: 'id', type: Types.long }).schema;
    const narrow = errorOf(() =>
      evolveSchema({
        schema: widened,
        lastColumnId: LAST,
        newSchemaId: 2,
        changes: [{ op: 'update-column-type', column: 'id', type: Types.int }],
      }),
    );
    expect(narrow.column).toBe('id');
    expect(narrow.message).toMatch(/narrowing long to int could lose values/);
    expect(
      errorOf(() => evolve({ op: 'update-column-type', column: 'amount', type: Types.decimal(8, 2) })).message,
    ).toMatch(/precision can only grow/);
    expect(
      errorOf(() => evolve({ op: 'update-column-type', column: 'amount', type: Types.decimal(12, 3) })).message,
    ).toMatch(/scale of a decimal is fixed/);
    expect(errorOf(() => evolve({ op: 'update-column-type', column: 'name', type: Types.binary })).message).toMatch(
      /string cannot become binary/,
    );
    expect(errorOf(() => evolve({ op: 'update-column-type', column: 'address', type: Types.string })).message).toMatch(
      /only primitive types can be promoted/,
    );
  });

  it('knows the v2 promotion table', () => {
    expect(promotionProblem(Types.int, Types.long)).toBeUndefined();
    expect(promotionProblem(Types.date, Types.timestamp)).toMatch(/cannot become/); // v3 only
    expect(promotionProblem(Types.int, Types.string)).toMatch(/cannot become/);
    expect(promotionProblem(Types.decimal(9, 2), Types.decimal(9, 2))).toBeUndefined();
  });
});

describe('renames and optionality', () => {
  it('renames top-level and nested fields, keeping ids', () => {
    const { schema } = evolve(
      { op: 'rename-column', column: 'name', newName: 'full_name' },
      { op: 'rename-column', column: 'address.city', newName: 'town' },
    );
    expect(findFieldByName(schema, 'full_name')?.id).toBe(2);
    expect(findFieldByName(schema, 'address.town')?.id).toBe(6);
    expect(findFieldByName(schema, 'name')).toBeUndefined();
  });

  it('refuses renaming to a sibling’s name, renaming list elements and unknown columns', () => {
    expect(errorOf(() => evolve({ op: 'rename-column', column: 'name', newName: 'ratio' })).message).toMatch(
      /"ratio" already exists/,
    );
    expect(errorOf(() => evolve({ op: 'rename-column', column: 'counts.element', newName: 'n' })).message).toMatch(
      /fixed names/,
    );
    expect(errorOf(() => evolve({ op: 'rename-column', column: 'ghost', newName: 'n' })).message).toBe(
      'cannot change column "ghost": no such column in schema 0; name nested columns by their full dotted name (e.g. address.city)',
    );
  });

  it('makes columns, list elements and map values optional', () => {
    const { schema } = evolve(
      { op: 'make-optional', column: 'name' },
      { op: 'make-optional', column: 'counts.element' },
      { op: 'make-optional', column: 'attrs.value' },
    );
    expect(findFieldByName(schema, 'name')?.required).toBe(false);
    expect(findFieldByName(schema, 'counts.element')?.required).toBe(false);
    expect(findFieldByName(schema, 'attrs.value')?.required).toBe(false);
  });

  it('refuses making identifier fields or map keys optional', () => {
    expect(errorOf(() => evolve({ op: 'make-optional', column: 'id' })).message).toMatch(/identifier field/);
    expect(errorOf(() => evolve({ op: 'make-optional', column: 'attrs.key' })).message).toMatch(
      /map keys are always required/,
    );
  });

  it('refuses making an optional column required, but accepts a no-op', () => {
    const err = errorOf(() => evolve({ op: 'make-required', column: 'ratio' }));
    expect(err.kind).toBe('schema-evolution');
    expect(err.message).toMatch(/existing data files may hold nulls/);
    expect(evolve({ op: 'make-required', column: 'name' }).schema.fields[1]?.required).toBe(true);
  });
});

describe('docs and identifier fields', () => {
  it('sets and clears docs', () => {
    const withDoc = evolve({ op: 'update-doc', column: 'name', doc: 'display name' }).schema;
    expect(withDoc.fields[1]?.doc).toBe('display name');
    const cleared = evolveSchema({
      schema: withDoc,
      lastColumnId: LAST,
      newSchemaId: 2,
      changes: [{ op: 'update-doc', column: 'name', doc: undefined }],
    }).schema;
    expect(cleared.fields[1]).not.toHaveProperty('doc');
  });

  it('sets identifier fields with the spec’s rules', () => {
    expect(evolve({ op: 'set-identifier-fields', columns: ['id', 'name'] }).schema.identifierFieldIds).toEqual([1, 2]);
    expect(evolve({ op: 'set-identifier-fields', columns: [] }).schema.identifierFieldIds).toEqual([]);
    expect(errorOf(() => evolve({ op: 'set-identifier-fields', columns: ['ratio'] })).message).toMatch(
      /float and double/,
    );
    expect(errorOf(() => evolve({ op: 'set-identifier-fields', columns: ['address.city'] })).message).toMatch(
      /optional/,
    );
  });

  it('lets a column be added and then renamed in one evolution', () => {
    const { schema } = evolve(
      { op: 'add-column', name: 'tmp', type: Types.int },
      { op: 'rename-column', column: 'tmp', newName: 'qty' },
    );
    expect(findFieldByName(schema, 'qty')?.id).toBe(15);
  });

  it('recognizes an evolution that changed nothing', () => {
    expect(schemasEquivalent(evolve().schema, base)).toBe(true);
    expect(schemasEquivalent(evolve({ op: 'make-optional', column: 'name' }).schema, base)).toBe(false);
  });
});
