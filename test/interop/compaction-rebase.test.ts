/**
 * A compaction that committed beside a merge (its `replace` snapshot carries the merge's concurrent deletes over to
 * its new files as position deletes) reads the same in pyiceberg and DuckDB as in our reader and the reference
 * model: no row lost, none resurrected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactTable, type MaintenanceCatalog } from '../../lib/iceberg/maintenance/index.js';
import { scanTable } from '../../lib/iceberg/scan.js';
import { Types, type Schema } from '../../lib/iceberg/types.js';
import { KeyIndexCache, upsertRows, type ChangeOp } from '../../lib/iceberg/upsert.js';
import type { FileIO } from '../../lib/storage/file-io.js';
import { createTempCatalog, type TempCatalog } from '../fixtures/temp-catalog.js';
import { readWithDuckdb, readWithPyiceberg, type CatalogRef } from './engines.js';

const schema: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'v', required: false, type: Types.string },
  ],
};

let temp: TempCatalog;
beforeAll(async () => {
  temp = await createTempCatalog('sluice-interop-rebase-');
});
afterAll(() => temp?.cleanup());

describe('compaction beside a merge, read by other engines', () => {
  it('pyiceberg and DuckDB read the rebased table as the model says', async () => {
    const { catalog, io, dir } = temp;
    const model = new Map<number, string>();
    const keyIndex = new KeyIndexCache();
    const merge = async (changes: [ChangeOp, number, string?][]) => {
      await upsertRows(catalog, io, 'db.t', {
        columns: new Map<number, unknown[]>([
          [1, changes.map(([, id]) => BigInt(id))],
          [2, changes.map(([, , v]) => v ?? null)],
        ]),
        ops: changes.map(([op]) => op),
        keyIndex,
      });
      for (const [op, id, v] of changes) {
        if (op === 'delete') model.delete(id);
        else model.set(id, v!);
      }
    };
    await catalog.createTable('db.t', { schema, partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }] });
    for (let i = 0; i < 5; i++) {
      await merge(Array.from({ length: 30 }, (_, k): [ChangeOp, number, string] => ['upsert', i * 20 + k, `r${i}`]));
    }
    await merge([['delete', 5]]);

    // Merges while the compaction writes its first file, and between its first attempt and compare-and-swap.
    let fired = false;
    const hooked: FileIO = new Proxy(io, {
      get: (target, property) => {
        if (property === 'write') {
          return async (uri: string, data: Uint8Array) => {
            if (!fired && uri.endsWith('.parquet')) {
              fired = true;
              await merge([
                ['delete', 1],
                ['upsert', 2, 'during'],
                ['upsert', 500, 'new'],
              ]);
              await merge([
                ['delete', 2],
                ['upsert', 1, 'back'],
                ['delete', 30],
              ]);
            }
            return target.write(uri, data);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    let raced = false;
    const racing: MaintenanceCatalog = {
      loadTable: (table) => catalog.loadTable(table),
      commitWithRetry: (table, update, options) =>
        catalog.commitWithRetry(
          table,
          async (current, attempt) => {
            const next = await update(current, attempt);
            if (!raced) {
              raced = true;
              await merge([
                ['delete', 40],
                ['upsert', 41, 'late'],
              ]);
            }
            return next;
          },
          { ...options, minWaitMs: 1, maxWaitMs: 5 },
        ),
    };
    const result = await compactTable(racing, hooked, 'db.t', { minInputFiles: 2 });
    expect(result.snapshotId).toBeDefined();
    expect(result.rebasedDeletes).toBeGreaterThan(0n);

    const expected = [...model].sort((a, b) => a[0] - b[0]).map(([id, v]) => ({ id, v }));
    const ours: { id: number; v: string | null }[] = [];
    const { metadata, metadataLocation } = await catalog.loadTable('db.t');
    for await (const batch of scanTable(io, metadata)) {
      for (let r = 0; r < batch.rowCount; r++) {
        ours.push({ id: Number(batch.columns.get(1)![r] as bigint), v: batch.columns.get(2)![r] as string | null });
      }
    }
    expect(ours.sort((a, b) => a.id - b.id)).toEqual(expected);
    const ref: CatalogRef = { uri: `sqlite:///${dir}/catalog.db`, name: 'test', warehouse: `file://${dir}/wh` };
    const normalize = (rows: Record<string, unknown>[]) => rows.map((r) => ({ id: Number(r.id), v: r.v }));
    expect(normalize((await readWithPyiceberg(ref, { table: 'db.t', orderBy: ['id'] })).rows)).toEqual(expected);
    expect(normalize((await readWithDuckdb({ metadataLocation }, { orderBy: ['id'] })).rows)).toEqual(expected);
  });
});
