import { describe, expect, it } from 'vitest';
import { filterExpression, shardId, splitIntoShards } from '../../../lib/embedding/index.js';
import { EmbeddingBackfillInput } from '../../../schemas/embedding.js';

describe('shard planning', () => {
  it('splits files into ranges of at most shardSize, with ids that depend only on file and range', () => {
    const shards = splitIntoShards(
      [
        { path: 's3://b/t/data/a.parquet', rows: 10 },
        { path: 's3://b/t/data/b.parquet', rows: 0 },
        { path: 's3://b/t/data/c.parquet', rows: 4 },
      ],
      4,
    );
    expect(shards.map((s) => [s.file, s.start, s.end])).toEqual([
      [0, 0, 4],
      [0, 4, 8],
      [0, 8, 10],
      [2, 0, 4],
    ]);
    expect(shards[0]!.id).toBe(shardId('s3://b/t/data/a.parquet', 0, 4));
    expect(new Set(shards.map((s) => s.id)).size).toBe(4);
    expect(shardId('s3://b/t/data/a.parquet', 0, 4)).not.toBe(shardId('s3://b/t/data/c.parquet', 0, 4));
  });

  it('turns filter conditions into one Iceberg expression and rejects a list for eq', () => {
    expect(filterExpression([])).toBeUndefined();
    expect(filterExpression([{ column: 'tier', op: 'eq', value: 'gold' }])).toEqual({
      op: 'eq',
      column: 'tier',
      value: 'gold',
    });
    expect(() => filterExpression([{ column: 'tier', op: 'eq', value: ['a'] }])).toThrow(/single value/);
  });

  it('validates the input: exactly one value column, incremental only for Iceberg', () => {
    const base = {
      source: { kind: 'iceberg', table: 'db.items' },
      idColumn: 'id',
      model: { path: '/m', version: 'v1' },
      output: { table: 'db.vectors', index: 'items' },
    };
    expect(EmbeddingBackfillInput.safeParse({ ...base, textColumn: 't' }).success).toBe(true);
    expect(EmbeddingBackfillInput.safeParse(base).success).toBe(false);
    expect(EmbeddingBackfillInput.safeParse({ ...base, textColumn: 't', imageUriColumn: 'u' }).success).toBe(false);
    const parquet = { ...base, source: { kind: 'parquet', prefix: 'file:///x/' }, textColumn: 't' };
    expect(EmbeddingBackfillInput.safeParse(parquet).success).toBe(true);
    expect(EmbeddingBackfillInput.safeParse({ ...parquet, incremental: { fromSnapshotId: '1' } }).success).toBe(false);
  });
});
