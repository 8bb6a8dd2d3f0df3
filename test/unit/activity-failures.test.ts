import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { toActivityFailure } from '../../activities/failures.js';
import { CommitConflictError, NoSuchTableError } from '../../lib/iceberg/catalog/errors.js';
import { RowLevelConflictError, TableWriteError } from '../../lib/iceberg/errors.js';
import { FileNotFoundError } from '../../lib/storage/errors.js';

describe('engine errors become typed activity failures', () => {
  it('keeps the shared type and retryability of each family', () => {
    const write = toActivityFailure(
      new TableWriteError('db.t', 'file:///x.parquet', 'id', 'null in a required column'),
    );
    expect(write).toBeInstanceOf(ApplicationFailure);
    expect((write as ApplicationFailure).type).toBe('InvalidInput');
    expect((write as ApplicationFailure).nonRetryable).toBe(true);
    expect((write as ApplicationFailure).message).toContain('column "id"');
    expect((write as ApplicationFailure).details).toEqual([{ kind: 'invalid-write' }]);

    const conflict = toActivityFailure(new RowLevelConflictError('db.t', 'file removed')) as ApplicationFailure;
    expect(conflict.type).toBe('CommitConflict');
    expect(conflict.nonRetryable).toBe(false);

    const cas = toActivityFailure(new CommitConflictError('cat', 'db.t', 'a', 'b')) as ApplicationFailure;
    expect(cas.type).toBe('CommitConflict');
    expect(cas.nonRetryable).toBe(false);

    const missing = toActivityFailure(new NoSuchTableError('cat', 'db.t')) as ApplicationFailure;
    expect(missing.type).toBe('NotFound');
    expect(missing.nonRetryable).toBe(true);

    const file = toActivityFailure(new FileNotFoundError('s3://b/k')) as ApplicationFailure;
    expect(file.type).toBe('NotFound');
  });

  it('leaves other errors alone, so the retry policy treats them as transient', () => {
    const plain = new Error('socket hang up');
    expect(toActivityFailure(plain)).toBe(plain);
  });
});
