import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendColumns } from '../../../lib/iceberg/append.js';
import { scanToArrowTable } from '../../../lib/iceberg/arrow-scan.js';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import * as x from '../../../lib/iceberg/expressions.js';
import { currentSnapshot } from '../../../lib/iceberg/metadata-json.js';
import { scanReadSchema, scanTable } from '../../../lib/iceberg/scan.js';
import { updateTableSchema } from '../../../lib/iceberg/schema-update.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'qty', required: false, type: Types.int },
  ],
};

describe('time travel reads the snapshot’s own schema', () => {
  let temp: TempCatalog;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-tt-');
    ({ io, catalog } = temp);
    await catalog.createTable('db.t', { schema });
  });
  afterEach(() => temp.cleanup());

  it('by id and by timestamp, after adding, widening and renaming columns', async () => {
    await appendColumns(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, [1n, 2n]],
        [2, [7, 8]],
      ]),
    });
    const old = currentSnapshot((await catalog.loadTable('db.t')).metadata)!;
    await new Promise((r) => setTimeout(r, 5));
    await updateTableSchema(catalog, 'db.t', [
      { op: 'add-column', name: 'note', type: Types.string },
      { op: 'update-column-type', column: 'qty', type: Types.long },
      { op: 'rename-column', column: 'qty', newName: 'quantity' },
    ]);
    await appendColumns(catalog, io, 'db.t', {
      columns: new Map<number, unknown[]>([
        [1, [3n]],
        [2, [9n]],
        [3, ['new']],
      ]),
    });
    const { metadata } = await catalog.loadTable('db.t');
    expect(currentSnapshot(metadata)!.schemaId).toBe(1);
    expect(old.schemaId).toBe(0);

    for (const selector of [{ snapshotId: old.snapshotId }, { asOfTimestampMs: old.timestampMs }]) {
      const readSchema = scanReadSchema(metadata, selector);
      expect(readSchema.schemaId).toBe(0);
      const batches = [];
      // The old column name filters, the old type reads (int, not long), and the later column is absent.
      for await (const b of scanTable(io, metadata, { ...selector, filter: x.gtEq('qty', 8) })) batches.push(b);
      expect(batches).toHaveLength(1);
      expect([...batches[0]!.columns.keys()]).toEqual([1, 2]);
      expect(batches[0]!.columns.get(2)).toEqual([8]);
      const arrow = await scanToArrowTable(io, metadata, { ...selector, columns: ['qty'] });
      expect(arrow.schema.fields.map((f) => f.name)).toEqual(['qty']);
      expect(arrow.getChild('qty')!.toArray()).toEqual(Int32Array.from([7, 8]));
    }

    // The current snapshot, not selected explicitly, reads in the current schema.
    const rows: unknown[][] = [];
    for await (const b of scanTable(io, metadata, { filter: x.gtEq('quantity', 8n) })) {
      for (let i = 0; i < b.rowCount; i++)
        rows.push([b.columns.get(1)![i], b.columns.get(2)![i], b.columns.get(3)![i]]);
    }
    expect(rows.sort((a, b) => Number((a[0] as bigint) - (b[0] as bigint)))).toEqual([
      [2n, 8n, null],
      [3n, 9n, 'new'],
    ]);
    // Naming the current snapshot explicitly reads in the current schema too (a pinned read of today's state).
    expect(scanReadSchema(metadata, { snapshotId: metadata.currentSnapshotId! }).schemaId).toBe(1);
    // The new name does not exist in the old snapshot's schema.
    await expect(
      (async () => {
        for await (const _ of scanTable(io, metadata, { snapshotId: old.snapshotId, filter: x.eq('quantity', 1n) }));
      })(),
    ).rejects.toMatchObject({ kind: 'invalid-expression' });
  });
});
