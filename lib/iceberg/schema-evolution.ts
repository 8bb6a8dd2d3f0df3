import { SchemaEvolutionError } from './errors.js';
import {
  assignFreshIds,
  findFieldByName,
  identifierProblem,
  indexSchema,
  isPrimitive,
  MAX_FIELD_ID,
  typeToJson,
  typeToString,
  validateSchema,
  type IcebergType,
  type NestedField,
  type PrimitiveType,
  type Schema,
  type StructType,
} from './types.js';

/**
 * Schema evolution with the v2 rules (spec "Schema Evolution"): columns are found by their full dotted name
 * (`address.city`, `tags.element`, `attrs.value`), field ids never change, and new columns get ids above the
 * table's `last-column-id`. Changes that could make existing data unreadable or wrong are refused with a
 * {@link SchemaEvolutionError} that names the column and says what to do instead.
 */

/** Adds an optional column. Its type's nested ids are ignored and reassigned. */
export interface AddColumn {
  readonly op: 'add-column';
  /** Full name of the struct to add to (a struct column, or a list/map whose element/value is a struct). @default top level */
  readonly parent?: string;
  readonly name: string;
  readonly type: IcebergType;
  /**
   * Must be absent or false: a required column needs an `initial-default` for existing rows, a v3 feature.
   * @default false
   */
  readonly required?: boolean;
  readonly doc?: string;
}

/** Renames a struct field; its id stays. */
export interface RenameColumn {
  readonly op: 'rename-column';
  readonly column: string;
  readonly newName: string;
}

/** Promotes a primitive: int → long, float → double, decimal(P,S) → decimal(P',S) with P' ≥ P. */
export interface UpdateColumnType {
  readonly op: 'update-column-type';
  readonly column: string;
  readonly type: PrimitiveType;
}

/** Lets a column (or a list element or map value) hold nulls. */
export interface MakeColumnOptional {
  readonly op: 'make-optional';
  readonly column: string;
}

/**
 * Asks to forbid nulls in a column. Refused unless the column is already required, because existing data files
 * may hold nulls; it exists so that a mirrored `SET NOT NULL` gets a clear answer rather than a silent skip.
 */
export interface MakeColumnRequired {
  readonly op: 'make-required';
  readonly column: string;
}

/** Sets or clears a column's doc string. */
export interface UpdateColumnDoc {
  readonly op: 'update-doc';
  readonly column: string;
  /** `undefined` removes the doc. */
  readonly doc: string | undefined;
}

/** Replaces `identifier-field-ids` with the given columns (the row key); an empty list clears it. */
export interface SetIdentifierFields {
  readonly op: 'set-identifier-fields';
  readonly columns: readonly string[];
}

export type SchemaChange =
  | AddColumn
  | RenameColumn
  | UpdateColumnType
  | MakeColumnOptional
  | MakeColumnRequired
  | UpdateColumnDoc
  | SetIdentifierFields;

/** The result of {@link evolveSchema}. */
export interface EvolvedSchema {
  readonly schema: Schema;
  /** The table's new `last-column-id`. */
  readonly lastColumnId: number;
}

/**
 * Applies `changes` in order to `schema` (each change sees the result of the ones before it, so a column can be
 * added and then renamed) and gives the result `newSchemaId`.
 *
 * @param args.lastColumnId the table's `last-column-id`; new ids are assigned above it.
 * @throws SchemaEvolutionError naming the column, for an unknown column, a duplicate name, a narrowing or other
 *   disallowed type change, a required add, or making a column required.
 */
export function evolveSchema(args: {
  readonly schema: Schema;
  readonly lastColumnId: number;
  readonly newSchemaId: number;
  readonly changes: readonly SchemaChange[];
}): EvolvedSchema {
  // Changes see the base schema's id, so that "no such column in schema N" names the schema the caller knows.
  let schema: Schema = args.schema;
  let lastColumnId = args.lastColumnId;
  const nextId = (): number => {
    lastColumnId += 1;
    if (lastColumnId > MAX_FIELD_ID) {
      throw new SchemaEvolutionError('(new column)', `field ids are exhausted (max ${MAX_FIELD_ID})`);
    }
    return lastColumnId;
  };
  for (const change of args.changes) {
    schema = applyChange(schema, change, nextId);
  }
  schema = { ...schema, schemaId: args.newSchemaId };
  validateSchema(schema);
  return { schema, lastColumnId };
}

function applyChange(schema: Schema, change: SchemaChange, nextId: () => number): Schema {
  switch (change.op) {
    case 'add-column':
      return addColumn(schema, change, nextId);
    case 'rename-column':
      return renameColumn(schema, change);
    case 'update-column-type':
      return updateColumnType(schema, change);
    case 'make-optional':
      return makeOptional(schema, change.column);
    case 'make-required':
      return makeRequired(schema, change.column);
    case 'update-doc': {
      const info = resolve(schema, change.column);
      if (!info.field) throw new SchemaEvolutionError(change.column, 'only struct fields have docs');
      return updateSlot(schema, info.id, (slot) => ({ ...slot, doc: change.doc }));
    }
    case 'set-identifier-fields':
      return setIdentifierFields(schema, change.columns);
  }
}

function resolve(schema: Schema, column: string): NonNullable<ReturnType<typeof findFieldByName>> {
  const info = findFieldByName(schema, column);
  if (!info) {
    throw new SchemaEvolutionError(
      column,
      `no such column in schema ${schema.schemaId}; name nested columns by their full dotted name (e.g. address.city)`,
    );
  }
  return info;
}

function checkNewName(column: string, name: string): void {
  if (name === '') throw new SchemaEvolutionError(column, 'the new name is empty');
  if (name.includes('.')) {
    throw new SchemaEvolutionError(
      column,
      `the name "${name}" contains a dot, which would make dotted column names ambiguous`,
    );
  }
}

function addColumn(schema: Schema, change: AddColumn, nextId: () => number): Schema {
  const fullName = change.parent === undefined ? change.name : `${change.parent}.${change.name}`;
  checkNewName(fullName, change.name);
  if (change.required === true) {
    throw new SchemaEvolutionError(
      fullName,
      'a required column cannot be added: rows already written have no value for it, and filling them needs an ' +
        'initial-default (format v3); add it as optional',
    );
  }
  const id = nextId();
  // Java assigns the new field's id before the ids nested inside its type; doing the same keeps ids identical.
  const field: NestedField = {
    id,
    name: change.name,
    required: false,
    type: assignFreshIds(change.type, nextId),
    ...(change.doc === undefined ? {} : { doc: change.doc }),
  };
  const appendTo = (struct: StructType): StructType => {
    if (struct.fields.some((f) => f.name === change.name)) {
      throw new SchemaEvolutionError(
        fullName,
        'a column with this name already exists; pick another name or rename first',
      );
    }
    return { kind: 'struct', fields: [...struct.fields, field] };
  };
  if (change.parent === undefined)
    return { ...schema, fields: appendTo({ kind: 'struct', fields: schema.fields }).fields };
  const parent = resolve(schema, change.parent);
  // Adding "to a list or map" means adding to the struct of its elements or values, as Java does.
  const target =
    parent.type.kind === 'list'
      ? { id: parent.type.elementId, type: parent.type.element }
      : parent.type.kind === 'map'
        ? { id: parent.type.valueId, type: parent.type.value }
        : { id: parent.id, type: parent.type };
  if (target.type.kind !== 'struct') {
    throw new SchemaEvolutionError(
      change.parent,
      `it is a ${typeToString(target.type)}, and columns can be added only to structs`,
    );
  }
  return updateSlot(schema, target.id, (slot) => ({ ...slot, type: appendTo(slot.type as StructType) }));
}

function renameColumn(schema: Schema, change: RenameColumn): Schema {
  const info = resolve(schema, change.column);
  if (!info.field) {
    throw new SchemaEvolutionError(
      change.column,
      'list elements and map keys/values have fixed names; rename the column that holds them',
    );
  }
  checkNewName(change.column, change.newName);
  const siblings =
    info.parentId === undefined ? schema.fields : structFieldsOf(indexSchema(schema).get(info.parentId)?.type);
  if (siblings.some((f) => f.name === change.newName && f.id !== info.id)) {
    throw new SchemaEvolutionError(change.column, `a column named "${change.newName}" already exists next to it`);
  }
  return updateSlot(schema, info.id, (slot) => ({ ...slot, name: change.newName }));
}

function structFieldsOf(type: IcebergType | undefined): readonly NestedField[] {
  if (type?.kind === 'struct') return type.fields;
  if (type?.kind === 'list' && type.element.kind === 'struct') return type.element.fields;
  if (type?.kind === 'map' && type.value.kind === 'struct') return type.value.fields;
  return [];
}

/** Why promoting `from` to `to` is not allowed in v2, or `undefined` when it is (or when nothing changes). */
export function promotionProblem(from: PrimitiveType, to: PrimitiveType): string | undefined {
  if (typeToString(from) === typeToString(to)) return undefined;
  if (from.kind === 'int' && to.kind === 'long') return undefined;
  if (from.kind === 'float' && to.kind === 'double') return undefined;
  if (from.kind === 'decimal' && to.kind === 'decimal') {
    if (to.scale !== from.scale) {
      return `the scale of a decimal is fixed (${from.scale}); only its precision can grow`;
    }
    if (to.precision < from.precision) {
      return `narrowing ${typeToString(from)} to ${typeToString(to)} could lose values; precision can only grow`;
    }
    return undefined;
  }
  if ((from.kind === 'long' && to.kind === 'int') || (from.kind === 'double' && to.kind === 'float')) {
    return `narrowing ${from.kind} to ${to.kind} could lose values; only widening is allowed`;
  }
  return (
    `${typeToString(from)} cannot become ${typeToString(to)}; format v2 allows only int→long, float→double and ` +
    'decimal precision increases — add a new column instead'
  );
}

function updateColumnType(schema: Schema, change: UpdateColumnType): Schema {
  const info = resolve(schema, change.column);
  if (!isPrimitive(info.type)) {
    throw new SchemaEvolutionError(change.column, `it is a ${info.type.kind}; only primitive types can be promoted`);
  }
  if (!isPrimitive(change.type)) {
    throw new SchemaEvolutionError(change.column, 'a primitive column cannot become a struct, list or map');
  }
  const problem = promotionProblem(info.type, change.type);
  if (problem !== undefined) throw new SchemaEvolutionError(change.column, problem);
  return updateSlot(schema, info.id, (slot) => ({ ...slot, type: change.type }));
}

function makeOptional(schema: Schema, column: string): Schema {
  const info = resolve(schema, column);
  const parent = info.parentId === undefined ? undefined : indexSchema(schema).get(info.parentId);
  if (parent?.type.kind === 'map' && parent.type.keyId === info.id) {
    throw new SchemaEvolutionError(column, 'map keys are always required');
  }
  if (schema.identifierFieldIds.includes(info.id)) {
    throw new SchemaEvolutionError(
      column,
      'it is an identifier field, and identifier fields must be required; change the identifier fields first',
    );
  }
  return updateSlot(schema, info.id, (slot) => ({ ...slot, required: false }));
}

function makeRequired(schema: Schema, column: string): Schema {
  const info = resolve(schema, column);
  if (info.required) return schema;
  throw new SchemaEvolutionError(
    column,
    'an optional column cannot be made required: existing data files may hold nulls for it; keep it optional ' +
      '(writers can still enforce non-null values)',
  );
}

function setIdentifierFields(schema: Schema, columns: readonly string[]): Schema {
  const ids = columns.map((column) => {
    const info = resolve(schema, column);
    const problem = identifierProblem(info);
    if (problem !== undefined) throw new SchemaEvolutionError(column, `it cannot be an identifier field: ${problem}`);
    return info.id;
  });
  if (new Set(ids).size !== ids.length) {
    throw new SchemaEvolutionError(columns.join(', '), 'an identifier column is listed twice');
  }
  return { ...schema, identifierFieldIds: ids };
}

/** A struct field, list element or map key/value, seen uniformly so that one rewrite handles all of them. */
interface Slot {
  readonly name: string;
  readonly required: boolean;
  readonly type: IcebergType;
  readonly doc?: string;
}

/** Rebuilds the schema with the slot of field `id` replaced by `update(slot)`. */
function updateSlot(schema: Schema, id: number, update: (slot: Slot) => Slot): Schema {
  const rewrite = (type: IcebergType): IcebergType => {
    switch (type.kind) {
      case 'struct':
        return {
          kind: 'struct',
          fields: type.fields.map((field) => {
            if (field.id !== id) return { ...field, type: rewrite(field.type) };
            const slot = update({ name: field.name, required: field.required, type: field.type, doc: field.doc });
            const { doc: _oldDoc, ...rest } = field;
            return { ...rest, name: slot.name, required: slot.required, type: slot.type, ...docOf(slot) };
          }),
        };
      case 'list': {
        if (type.elementId !== id) return { ...type, element: rewrite(type.element) };
        const slot = update({ name: 'element', required: type.elementRequired, type: type.element });
        return { ...type, elementRequired: slot.required, element: slot.type };
      }
      case 'map': {
        const key =
          type.keyId === id ? update({ name: 'key', required: true, type: type.key }).type : rewrite(type.key);
        if (type.valueId !== id) return { ...type, key, value: rewrite(type.value) };
        const slot = update({ name: 'value', required: type.valueRequired, type: type.value });
        return { ...type, key, valueRequired: slot.required, value: slot.type };
      }
      default:
        return type;
    }
  };
  const struct = rewrite({ kind: 'struct', fields: schema.fields }) as StructType;
  return { ...schema, fields: struct.fields };
}

function docOf(slot: Slot): { doc?: string } {
  return slot.doc === undefined ? {} : { doc: slot.doc };
}

/** Whether two schemas are the same apart from their schema id (Java reuses an existing schema in that case). */
export function schemasEquivalent(a: Schema, b: Schema): boolean {
  return (
    JSON.stringify(a.identifierFieldIds) === JSON.stringify(b.identifierFieldIds) &&
    JSON.stringify(typeToJson({ kind: 'struct', fields: a.fields })) ===
      JSON.stringify(typeToJson({ kind: 'struct', fields: b.fields }))
  );
}
