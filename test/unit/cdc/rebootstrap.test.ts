import { describe, expect, it } from 'vitest';
import { prepareRebootstrap } from '../../../lib/cdc/rebootstrap.js';
import { currentSchema, defaultPartitionSpec, newTableMetadata } from '../../../lib/iceberg/metadata-json.js';
import type { Schema } from '../../../lib/iceberg/types.js';

// The table before: id (key, bucketed), b, tags (a list), code. The source now: key (code), id narrowed to int,
// b unchanged, tags a list of ints now (new ids), a new column.
const before = newTableMetadata({
  location: 'file:///wh/t',
  schema: {
    schemaId: 0,
    identifierFieldIds: [1],
    fields: [
      { id: 1, name: 'id', required: true, type: { kind: 'long' } },
      { id: 2, name: 'b', required: false, type: { kind: 'string' } },
      {
        id: 3,
        name: 'tags',
        required: false,
        type: { kind: 'list', elementId: 5, elementRequired: false, element: { kind: 'string' } },
      },
      { id: 4, name: 'code', required: false, type: { kind: 'string' } },
    ],
  },
  partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }],
  properties: { 'sluice.cdc.accepted-source-types': 'x', keep: 'y' },
});
const source: Schema = {
  schemaId: 0,
  identifierFieldIds: [4],
  fields: [
    { id: 1, name: 'id', required: false, type: { kind: 'int' } },
    { id: 2, name: 'b', required: false, type: { kind: 'string' } },
    {
      id: 3,
      name: 'tags',
      required: false,
      type: { kind: 'list', elementId: 6, elementRequired: false, element: { kind: 'int' } },
    },
    { id: 4, name: 'code', required: true, type: { kind: 'string' } },
    { id: 5, name: 'extra', required: false, type: { kind: 'date' } },
  ],
};

describe('re-bootstrap in place', () => {
  it('keeps unchanged columns ids, gives changed and nested ones new ids, and bucket(new key) as a new spec', () => {
    const { metadata, base } = prepareRebootstrap(
      before,
      source,
      { bucketColumn: 'code', numBuckets: 4 },
      { 'sluice.cdc.accepted-source-types': undefined },
    );
    expect(base).toBe(before);
    const schema = currentSchema(metadata);
    expect(schema.schemaId).toBe(1);
    expect(metadata.schemas).toHaveLength(2); // the old schema stays for old snapshots
    const ids = Object.fromEntries(schema.fields.map((f) => [f.name, f.id]));
    // b and code keep 2 and 4; id and tags changed type, extra is new: ids above last-column-id (5).
    expect(ids).toEqual({ id: 6, b: 2, tags: 7, code: 4, extra: 9 });
    expect(schema.fields.find((f) => f.name === 'tags')!.type).toMatchObject({ elementId: 8 });
    expect(schema.identifierFieldIds).toEqual([4]);
    expect(metadata.lastColumnId).toBe(9);
    const spec = defaultPartitionSpec(metadata);
    expect(spec.specId).toBe(1);
    expect(spec.fields).toEqual([
      expect.objectContaining({ sourceId: 4, fieldId: 1001, transform: { kind: 'bucket', numBuckets: 4 } }),
    ]);
    expect(metadata.partitionSpecs).toHaveLength(2);
    expect(metadata.lastPartitionId).toBe(1001);
    expect(metadata.properties).toMatchObject({ keep: 'y' });
    expect(metadata.properties['sluice.cdc.accepted-source-types']).toBeUndefined();
    expect(metadata.currentSnapshotId).toBe(before.currentSnapshotId);
  });

  it('reuses the schema and spec when the source did not change', () => {
    // As buildIcebergSchema gives it: the same columns, ids from 1 in its own order (the list element's id differs).
    const same: Schema = {
      ...currentSchema(before),
      fields: currentSchema(before).fields.map((f) =>
        f.type.kind === 'list' ? { ...f, type: { ...f.type, elementId: 99 } } : f,
      ),
    };
    const { metadata } = prepareRebootstrap(before, same, { bucketColumn: 'id', numBuckets: 4 }, {});
    expect(metadata.currentSchemaId).toBe(before.currentSchemaId);
    expect(metadata.defaultSpecId).toBe(before.defaultSpecId);
    expect(metadata.partitionSpecs).toHaveLength(1);
  });
});
