import { describe, expect, it } from 'vitest';
import { InvalidSchemaError } from '../../../lib/iceberg/errors.js';
import {
  assignFreshIds,
  findFieldByName,
  highestFieldId,
  indexSchema,
  parsePrimitiveType,
  parseSchema,
  parseType,
  reassignSchemaIds,
  schemaToJson,
  typeToJson,
  Types,
  type Schema,
} from '../../../lib/iceberg/types.js';

/** A schema with every v2 type and every nesting, as spec JSON. */
const everyTypeSchemaJson = {
  type: 'struct',
  'schema-id': 3,
  'identifier-field-ids': [1, 20],
  fields: [
    { id: 1, name: 'id', required: true, type: 'long', doc: 'primary key' },
    { id: 2, name: 'flag', required: false, type: 'boolean' },
    { id: 3, name: 'i', required: false, type: 'int' },
    { id: 4, name: 'f', required: false, type: 'float' },
    { id: 5, name: 'd', required: false, type: 'double' },
    { id: 6, name: 'amount', required: false, type: 'decimal(10, 2)' },
    { id: 7, name: 'day', required: false, type: 'date' },
    { id: 8, name: 't', required: false, type: 'time' },
    { id: 9, name: 'ts', required: false, type: 'timestamp' },
    { id: 10, name: 'tstz', required: false, type: 'timestamptz' },
    { id: 11, name: 's', required: false, type: 'string' },
    { id: 12, name: 'u', required: false, type: 'uuid' },
    { id: 13, name: 'hash', required: false, type: 'fixed[16]' },
    { id: 14, name: 'blob', required: false, type: 'binary' },
    {
      id: 15,
      name: 'tags',
      required: false,
      type: { type: 'list', 'element-id': 16, element: 'string', 'element-required': true },
    },
    {
      id: 17,
      name: 'attrs',
      required: false,
      type: { type: 'map', 'key-id': 18, key: 'string', 'value-id': 19, value: 'double', 'value-required': false },
    },
    {
      id: 20,
      name: 'tenant',
      required: true,
      type: 'string',
    },
    {
      id: 21,
      name: 'address',
      required: true,
      type: {
        type: 'struct',
        fields: [
          { id: 22, name: 'city', required: true, type: 'string' },
          {
            id: 23,
            name: 'points',
            required: false,
            type: {
              type: 'list',
              'element-id': 24,
              element: { type: 'struct', fields: [{ id: 25, name: 'x', required: true, type: 'double' }] },
              'element-required': false,
            },
          },
        ],
      },
    },
  ],
};

describe('primitive types', () => {
  it('parses every v2 primitive and writes it back in its canonical form', () => {
    for (const text of [
      'boolean',
      'int',
      'long',
      'float',
      'double',
      'date',
      'time',
      'timestamp',
      'timestamptz',
      'string',
      'uuid',
      'binary',
      'fixed[16]',
      'decimal(38, 0)',
    ]) {
      expect(typeToJson(parsePrimitiveType(text))).toBe(text);
    }
  });

  it('accepts whitespace variants and upper case, as the spec and Java do', () => {
    expect(parsePrimitiveType('decimal(10,2)')).toEqual({ kind: 'decimal', precision: 10, scale: 2 });
    expect(parsePrimitiveType('decimal( 10 , 2 )')).toEqual(Types.decimal(10, 2));
    expect(parsePrimitiveType('fixed[ 4 ]')).toEqual(Types.fixed(4));
    expect(parsePrimitiveType('LONG')).toEqual(Types.long);
  });

  it('refuses bad parameters, unknown names and v3-only types with a clear reason', () => {
    expect(() => parsePrimitiveType('decimal(39,0)')).toThrow(/precision must be 1\.\.38/);
    expect(() => parsePrimitiveType('fixed[0]')).toThrow(/positive integer/);
    expect(() => parsePrimitiveType('varchar')).toThrow(InvalidSchemaError);
    expect(() => parsePrimitiveType('timestamp_ns')).toThrow(/format v3/);
    expect(() => parsePrimitiveType('variant')).toThrow(/format v3/);
  });
});

describe('schema JSON', () => {
  it('round-trips every type, nesting, doc and identifier field exactly', () => {
    const schema = parseSchema(everyTypeSchemaJson);
    expect(schema.schemaId).toBe(3);
    expect(schema.identifierFieldIds).toEqual([1, 20]);
    expect(JSON.stringify(schemaToJson(schema))).toBe(JSON.stringify(everyTypeSchemaJson));
  });

  it('writes keys in the order Java writes them', () => {
    const schema = parseSchema(everyTypeSchemaJson);
    const json = schemaToJson(schema) as { fields: Record<string, unknown>[] };
    expect(Object.keys(json)).toEqual(['type', 'schema-id', 'identifier-field-ids', 'fields']);
    expect(Object.keys(json.fields[0]!)).toEqual(['id', 'name', 'required', 'type', 'doc']);
    expect(Object.keys(json.fields[14]!.type as object)).toEqual(['type', 'element-id', 'element', 'element-required']);
    expect(Object.keys(json.fields[15]!.type as object)).toEqual([
      'type',
      'key-id',
      'key',
      'value-id',
      'value',
      'value-required',
    ]);
  });

  it('omits identifier-field-ids when there are none', () => {
    const schema = parseSchema({
      type: 'struct',
      'schema-id': 0,
      fields: [{ id: 1, name: 'a', required: false, type: 'int' }],
    });
    expect(schemaToJson(schema)).not.toHaveProperty('identifier-field-ids');
  });

  it('keeps v3 default values as raw JSON so that others’ metadata round-trips', () => {
    const json = {
      type: 'struct',
      'schema-id': 0,
      fields: [{ id: 1, name: 'n', required: false, type: 'int', 'initial-default': 5, 'write-default': 7 }],
    };
    expect(JSON.stringify(schemaToJson(parseSchema(json)))).toBe(JSON.stringify(json));
  });
});

describe('schema validation names the field', () => {
  const withFields = (fields: unknown[], extra: Record<string, unknown> = {}) => ({
    type: 'struct',
    'schema-id': 0,
    ...extra,
    fields,
  });

  it('reports a missing or mistyped field with its path', () => {
    expect(() => parseSchema(withFields([{ id: 1, name: 'a', type: 'int' }]), 'schemas[0]')).toThrow(
      'invalid Iceberg schema at schemas[0].fields[0].required: required field is missing',
    );
    expect(() => parseSchema(withFields([{ id: '1', name: 'a', required: true, type: 'int' }]))).toThrow(
      'at fields[0].id: expected a 32-bit integer, got "1"',
    );
    const err = (() => {
      try {
        parseSchema(
          withFields([
            {
              id: 1,
              name: 'm',
              required: true,
              type: { type: 'map', 'key-id': 2, key: 'string', 'value-id': 3, value: 'int' },
            },
          ]),
        );
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidSchemaError);
    expect((err as InvalidSchemaError).jsonPath).toBe('fields[0].type.value-required');
    expect((err as InvalidSchemaError).kind).toBe('invalid-schema');
  });

  it('refuses duplicate ids anywhere in the schema', () => {
    expect(() =>
      parseSchema(
        withFields([
          { id: 1, name: 'a', required: true, type: 'int' },
          {
            id: 2,
            name: 'l',
            required: false,
            type: { type: 'list', 'element-id': 1, element: 'int', 'element-required': true },
          },
        ]),
      ),
    ).toThrow(/field id 1 of "l.element" is already used by "a"/);
  });

  it('refuses duplicate names in one struct but allows them in different structs', () => {
    expect(() =>
      parseSchema(
        withFields([
          { id: 1, name: 'a', required: true, type: 'int' },
          { id: 2, name: 'a', required: true, type: 'int' },
        ]),
      ),
    ).toThrow(/"a" appears twice/);
    expect(() =>
      parseSchema(
        withFields([
          { id: 1, name: 'a', required: true, type: 'int' },
          {
            id: 2,
            name: 's',
            required: true,
            type: { type: 'struct', fields: [{ id: 3, name: 'a', required: true, type: 'int' }] },
          },
        ]),
      ),
    ).not.toThrow();
  });

  it('refuses reserved field ids', () => {
    expect(() =>
      parseSchema(withFields([{ id: 2147483546, name: 'file_path', required: true, type: 'string' }])),
    ).toThrow(/must be in 0\.\.2147483447/);
  });

  it('enforces the identifier field rules', () => {
    const base = [
      { id: 1, name: 'id', required: true, type: 'long' },
      { id: 2, name: 'opt', required: false, type: 'long' },
      { id: 3, name: 'score', required: true, type: 'double' },
      {
        id: 4,
        name: 'l',
        required: true,
        type: { type: 'list', 'element-id': 5, element: 'int', 'element-required': true },
      },
      {
        id: 6,
        name: 'os',
        required: false,
        type: { type: 'struct', fields: [{ id: 7, name: 'k', required: true, type: 'int' }] },
      },
      {
        id: 8,
        name: 'rs',
        required: true,
        type: { type: 'struct', fields: [{ id: 9, name: 'k', required: true, type: 'int' }] },
      },
    ];
    const ids = (list: number[]) => () => parseSchema(withFields(base, { 'identifier-field-ids': list }));
    expect(ids([1, 9])).not.toThrow();
    expect(ids([2])).toThrow(/"opt" \(id 2\) cannot be an identifier field: it is optional/);
    expect(ids([3])).toThrow(/float and double/);
    expect(ids([5])).toThrow(/nested in a list or map/);
    expect(ids([7])).toThrow(/optional struct/);
    expect(ids([8])).toThrow(/must be primitive/);
    expect(ids([42])).toThrow(/42 is not a field of the schema/);
    expect(ids([1, 1])).toThrow(/listed twice/);
  });

  it('refuses a non-struct schema type', () => {
    expect(() => parseType({ type: 'union' }, 'x')).toThrow(
      'at x.type: expected "struct", "list" or "map", got "union"',
    );
  });
});

describe('indexing and ids', () => {
  const schema = parseSchema(everyTypeSchemaJson);

  it('names nested fields with Java’s dotted convention', () => {
    const index = indexSchema(schema);
    expect(index.get(16)?.fullName).toBe('tags.element');
    expect(index.get(18)?.fullName).toBe('attrs.key');
    expect(index.get(19)?.fullName).toBe('attrs.value');
    expect(index.get(25)?.fullName).toBe('address.points.element.x');
    expect(index.get(25)?.inListOrMap).toBe(true);
    expect(findFieldByName(schema, 'address.city')?.id).toBe(22);
    expect(findFieldByName(schema, 'nope')).toBeUndefined();
    expect(highestFieldId(schema)).toBe(25);
  });

  it('assigns fresh ids in Java’s order: a struct’s fields first, then their children', () => {
    const nested = parseType({
      type: 'struct',
      fields: [
        {
          id: 100,
          name: 'a',
          required: true,
          type: { type: 'struct', fields: [{ id: 101, name: 'x', required: true, type: 'int' }] },
        },
        {
          id: 102,
          name: 'b',
          required: true,
          type: {
            type: 'map',
            'key-id': 103,
            key: 'string',
            'value-id': 104,
            value: { type: 'list', 'element-id': 105, element: 'int', 'element-required': true },
            'value-required': true,
          },
        },
        { id: 106, name: 'c', required: true, type: 'int' },
      ],
    });
    let next = 0;
    const fresh = assignFreshIds(nested, () => ++next);
    // a=1, b=2, c=3, then a.x=4, then b's key=5, value=6, then the value list's element=7.
    expect(typeToJson(fresh)).toEqual({
      type: 'struct',
      fields: [
        {
          id: 1,
          name: 'a',
          required: true,
          type: { type: 'struct', fields: [{ id: 4, name: 'x', required: true, type: 'int' }] },
        },
        {
          id: 2,
          name: 'b',
          required: true,
          type: {
            type: 'map',
            'key-id': 5,
            key: 'string',
            'value-id': 6,
            value: { type: 'list', 'element-id': 7, element: 'int', 'element-required': true },
            'value-required': true,
          },
        },
        { id: 3, name: 'c', required: true, type: 'int' },
      ],
    });
  });

  it('reassigns schema ids from 1 and remaps identifier fields by name', () => {
    const input: Schema = {
      schemaId: 9,
      identifierFieldIds: [50],
      fields: [
        { id: 70, name: 'name', required: false, type: Types.string },
        { id: 50, name: 'id', required: true, type: Types.long },
      ],
    };
    const { schema: fresh, lastColumnId } = reassignSchemaIds(input);
    expect(fresh.schemaId).toBe(0);
    expect(fresh.fields.map((f) => [f.name, f.id])).toEqual([
      ['name', 1],
      ['id', 2],
    ]);
    expect(fresh.identifierFieldIds).toEqual([2]);
    expect(lastColumnId).toBe(2);
  });
});
