import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns } from '../../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';
import { SchemaEvolutionError } from '../../../lib/iceberg/errors.js';
import { currentSchema } from '../../../lib/iceberg/metadata-json.js';
import { scanTable } from '../../../lib/iceberg/scan.js';
import { updateTableSchema } from '../../../lib/iceberg/schema-update.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'qty', required: false, type: Types.int },
  ],
};

describe('schema updates on a table with data', () => {
  let temp: TempCatalog;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-schema-');
    ({ io, catalog } = temp);
    await catalog.createTable('db.t', { schema });
  });
  afterEach(() => temp.cleanup());

  it('adds, widens and renames columns; old files read through the new schema by field id', async () => {
    await appendColumns(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, [1n]],
        [2, [7]],
      ]),
    });
    await updateTableSchema(catalog, 'db.t', [
      { op: 'add-column', name: 'note', type: Types.string },
      { op: 'update-column-type', column: 'qty', type: Types.long },
      { op: 'rename-column', column: 'qty', newName: 'quantity' },
    ]);
    const { metadata } = await catalog.loadTable('db.t');
    const s = currentSchema(metadata);
    expect(s.schemaId).toBe(1);
    expect(s.fields.map((f) => [f.id, f.name, f.type.kind])).toEqual([
      [1, 'id', 'long'],
      [2, 'quantity', 'long'],
      [3, 'note', 'string'],
    ]);
    expect(metadata.lastColumnId).toBe(3);
    await appendColumns(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, [2n]],
        [2, [8n]],
        [3, ['new']],
      ]),
    });
    const rows: unknown[][] = [];
    for await (const b of scanTable(io, (await catalog.loadTable('db.t')).metadata)) {
      for (let i = 0; i < b.rowCount; i++)
        rows.push([b.columns.get(1)![i], b.columns.get(2)![i], b.columns.get(3)![i]]);
    }
    rows.sort((a, b) => Number((a[0] as bigint) - (b[0] as bigint)));
    // The old file's int column reads as long; the column it never had reads as null.
    expect(rows).toEqual([
      [1n, 7n, null],
      [2n, 8n, 'new'],
    ]);
  });

  it('refuses a narrowing and leaves the table unchanged', async () => {
    const before = (await catalog.loadTable('db.t')).metadataLocation;
    await expect(
      updateTableSchema(catalog, 'db.t', [{ op: 'update-column-type', column: 'id', type: Types.int }]),
    ).rejects.toThrow(SchemaEvolutionError);
    expect((await catalog.loadTable('db.t')).metadataLocation).toBe(before);
  });
});
