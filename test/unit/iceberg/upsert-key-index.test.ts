import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlCatalog } from '../../../lib/iceberg/catalog/index.js';
import { scanTable } from '../../../lib/iceberg/scan.js';
import { buildPartitionSpec, partitionTupleOf } from '../../../lib/iceberg/partition-spec.js';
import { KeyIndexCache, keyBucketer, upsertRows, type ChangeOp } from '../../../lib/iceberg/upsert.js';
import { Types, type Schema } from '../../../lib/iceberg/types.js';
import type { LocalFileIO } from '../../../lib/storage/index.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

/**
 * The CDC merge's upsert over many batches: each batch adds a data file and a position-delete file per partition,
 * keys are probed only in their own partition, new files' key positions are seeded into the cache instead of read
 * back, and deleted positions are looked up in the delete files' sorted lists. A reference model must match the
 * table after every batch, with a shared cache, with a fresh cache per batch (every index read back from the
 * files), without partitioning, and with a two-column key.
 */

/** A deterministic PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const single: Schema = {
  schemaId: 0,
  identifierFieldIds: [1],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'v', required: false, type: Types.string },
  ],
};
const composite: Schema = {
  schemaId: 0,
  identifierFieldIds: [1, 3],
  fields: [
    { id: 1, name: 'id', required: true, type: Types.long },
    { id: 2, name: 'v', required: false, type: Types.string },
    { id: 3, name: 'k', required: true, type: Types.string },
  ],
};

interface Case {
  name: string;
  schema: Schema;
  partitioned: boolean;
  sharedCache: boolean;
}

const cases: Case[] = [
  { name: 'bucketed, shared cache', schema: single, partitioned: true, sharedCache: true },
  { name: 'bucketed, a fresh cache per batch', schema: single, partitioned: true, sharedCache: false },
  { name: 'unpartitioned, shared cache', schema: single, partitioned: false, sharedCache: true },
  { name: 'bucketed two-column key, shared cache', schema: composite, partitioned: true, sharedCache: true },
];

describe('upsert key index over many batches', () => {
  let temp: TempCatalog;
  let io: LocalFileIO;
  let catalog: SqlCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-upsert-index-');
    ({ io, catalog } = temp);
  });
  afterEach(() => temp.cleanup());

  for (const c of cases) {
    it(`matches a reference model after every batch (${c.name})`, async () => {
      await catalog.createTable('db.t', {
        schema: c.schema,
        ...(c.partitioned ? { partitionSpec: [{ sourceColumn: 'id', transform: 'bucket[4]' }] } : {}),
      });
      const twoColumns = c.schema.identifierFieldIds.length === 2;
      const keyOf = (id: number) => (twoColumns ? `${id}|k${id % 3}` : String(id));
      const model = new Map<string, string>();
      const random = prng(c.name.length);
      const shared = new KeyIndexCache();
      for (let batch = 0; batch < 8; batch++) {
        const ids: number[] = [];
        const ops: ChangeOp[] = [];
        const values: (string | null)[] = [];
        for (let i = 0; i < 40; i++) {
          // Few keys, so that keys come back to files written by earlier batches and to rows deleted before.
          const id = Math.floor(random() * 60);
          const op: ChangeOp = random() < 0.25 ? 'delete' : 'upsert';
          ids.push(id);
          ops.push(op);
          values.push(op === 'upsert' ? `b${batch}-${i}` : null);
        }
        const columns = new Map<number, unknown[]>([
          [1, ids.map((id) => BigInt(id))],
          [2, values],
        ]);
        if (twoColumns)
          columns.set(
            3,
            ids.map((id) => `k${id % 3}`),
          );
        const expected = { inserted: 0, updated: 0, deleted: 0, missingDeletes: 0 };
        const last = new Map<string, number>();
        ids.forEach((id, i) => last.set(keyOf(id), i));
        for (const [key, i] of last) {
          const present = model.has(key);
          if (ops[i] === 'upsert') expected[present ? 'updated' : 'inserted'] += 1;
          else expected[present ? 'deleted' : 'missingDeletes'] += 1;
        }
        const result = await upsertRows(catalog, io, 'db.t', {
          columns,
          ops,
          keyIndex: c.sharedCache ? shared : new KeyIndexCache(),
        });
        for (const [key, i] of last) {
          if (ops[i] === 'upsert') model.set(key, values[i]!);
          else model.delete(key);
        }
        expect({
          inserted: result.inserted,
          updated: result.updated,
          deleted: result.deleted,
          missingDeletes: result.missingDeletes,
        }).toEqual(expected);

        const { metadata } = await catalog.loadTable('db.t');
        const rows = new Map<string, string>();
        for await (const b of scanTable(io, metadata)) {
          for (let r = 0; r < b.rowCount; r++) {
            const id = Number(b.columns.get(1)![r] as bigint);
            const key = keyOf(id);
            expect(rows.has(key), `duplicate live row for key ${key} after batch ${batch}`).toBe(false);
            rows.set(key, b.columns.get(2)![r] as string);
          }
        }
        expect(rows).toEqual(model);
      }
    });
  }

  it('buckets long and int keys exactly as the bucket transform does', () => {
    const random = prng(11);
    for (const type of [Types.long, Types.int]) {
      const schema: Schema = {
        schemaId: 0,
        identifierFieldIds: [1],
        fields: [{ id: 1, name: 'id', required: true, type }],
      };
      for (const buckets of [1, 16, 7, 1000]) {
        const { spec } = buildPartitionSpec({
          schema,
          specId: 0,
          fields: [{ sourceColumn: 'id', transform: `bucket[${buckets}]` }],
        });
        const bucketOf = keyBucketer(spec, schema)!;
        const expected = partitionTupleOf(spec, schema);
        const values: (bigint | number)[] =
          type === Types.long
            ? [0n, 1n, -1n, 34n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]
            : [0, 1, -1, 34, -(2 ** 31), 2 ** 31 - 1];
        for (let i = 0; i < 2000; i++) {
          const x = Math.floor((random() - 0.5) * 2 ** 32);
          values.push(type === Types.long ? BigInt(x) * BigInt(Math.floor(random() * 2 ** 31)) : x);
        }
        for (const value of values) expect(bucketOf(value)).toBe(expected(() => value)[0]);
      }
    }
  });
});
