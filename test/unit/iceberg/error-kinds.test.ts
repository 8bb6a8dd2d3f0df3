import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptAvroFileError } from '../../../lib/iceberg/avro/errors.js';
import type { IcebergError } from '../../../lib/iceberg/errors.js';
import {
  CorruptMetadataError,
  ICEBERG_ERROR_KINDS,
  InvalidPartitionSpecError,
  InvalidSchemaError,
  InvalidSortOrderError,
  InvalidTableConfigError,
  InvalidTransformError,
  InvalidValueError,
  RowLevelConflictError,
  SchemaEvolutionError,
  TableWriteError,
  UnsupportedFormatVersionError,
} from '../../../lib/iceberg/errors.js';
import { InvalidExpressionError } from '../../../lib/iceberg/expressions.js';
import { InvalidOverwriteError } from '../../../lib/iceberg/overwrite.js';
import { ParquetReadError, ParquetWriteError } from '../../../lib/iceberg/parquet/errors.js';
import { IncrementalScanError } from '../../../lib/iceberg/scan.js';
import { InvalidChangesError } from '../../../lib/iceberg/upsert.js';
import { ERROR_TYPES } from '../../../schemas/error-types.js';

const instances: IcebergError[] = [
  new InvalidSchemaError('fields[0]', 'bad'),
  new InvalidPartitionSpecError('fields[0]', 'bad'),
  new InvalidSortOrderError('fields[0]', 'bad'),
  new CorruptMetadataError('m.json', 'x', 'bad'),
  new UnsupportedFormatVersionError('m.json', 3),
  new SchemaEvolutionError('c', 'bad'),
  new InvalidTransformError('bucket[0]', 'bad'),
  new InvalidValueError('int', 'bad'),
  new InvalidTableConfigError('location', 'bad'),
  new TableWriteError('db.t', 'f.parquet', 'c', 'bad'),
  new RowLevelConflictError('db.t', 'raced'),
  new InvalidExpressionError('c', 'bad'),
  new IncrementalScanError('not-an-ancestor', 1n, 2n, 'bad'),
  new InvalidChangesError('db.t', 'bad'),
  new InvalidOverwriteError('db.t', 'bad'),
  new ParquetWriteError('c', 1, 0, 'bad'),
  new ParquetReadError('bad'),
  new CorruptAvroFileError('manifest "m.avro"', 'bad'),
];

/** Every class in lib/iceberg (outside the catalog and maintenance families) that extends the engine's base. */
function declaredErrorClasses(): string[] {
  const root = path.resolve(import.meta.dirname, '../../../lib/iceberg');
  const names: string[] = [];
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/export class (\w+) extends (IcebergError|IcebergJsonError)\b/g)) names.push(m[1]!);
  }
  return names.sort();
}

describe('Iceberg error kinds', () => {
  it('every error class has its own kind, listed in ICEBERG_ERROR_KINDS', () => {
    expect(instances.map((e) => e.constructor.name).sort()).toEqual(declaredErrorClasses());
    const kinds = instances.map((e) => e.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    expect(kinds.sort()).toEqual(Object.keys(ICEBERG_ERROR_KINDS).sort());
  });

  it('maps each kind to a failure type with the right retryability', () => {
    for (const e of instances) {
      expect(e.failureType).toBe(ICEBERG_ERROR_KINDS[e.kind]);
      // Only a lost race is worth retrying; every other engine error is the input's or the file's fault.
      expect(ERROR_TYPES[e.failureType].retryable, e.name).toBe(e instanceof RowLevelConflictError);
    }
    expect(new ParquetReadError('x').failureType).toBe('Corrupt');
    expect(new CorruptAvroFileError('m', 'x').failureType).toBe('Corrupt');
    expect(new UnsupportedFormatVersionError('m', 1).failureType).toBe('Unsupported');
    expect(new InvalidExpressionError('c', 'x').failureType).toBe('InvalidInput');
    expect(new IncrementalScanError('not-an-ancestor', 1n, 2n, 'x').failureType).toBe('InvalidInput');
  });
});
