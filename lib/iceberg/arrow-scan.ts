/**
 * Scans as Apache Arrow record batches, for callers that hand data to Arrow-native tools (DuckDB, Polars, IPC
 * streams). The Arrow types are the ones the Parquet writer uses (`parquet/arrow-types.ts`), so a table read back
 * has the schema it was written with:
 *
 * | Iceberg | Arrow |
 * |---|---|
 * | boolean, int, long | Bool, Int32, Int64 |
 * | float, double | Float32, Float64 |
 * | decimal(P,S) | Decimal128(P,S) |
 * | date | DateDay |
 * | time | Time64(µs) |
 * | timestamp, timestamptz | Timestamp(µs), Timestamp(µs, "UTC") |
 * | string | Utf8 |
 * | uuid | FixedSizeBinary(16), the UUID's big-endian bytes (Arrow has no UUID type; Iceberg stores it this way) |
 * | fixed[L], binary | FixedSizeBinary(L), Binary |
 * | struct, list, map | Struct, List, Map (entries named `key_value`) |
 *
 * Every field carries its Iceberg field id in the `PARQUET:field_id` metadata, and is nullable exactly when the
 * Iceberg field is optional.
 */
import { makeData, RecordBatch, Schema as ArrowSchema, Struct, Table, type Data } from 'apache-arrow';
import type { FileIO } from '../storage/file-io.js';
import type { TableMetadata } from './metadata-json.js';
import { buildColumnData, planColumns, type ColumnValues } from './parquet/column-builder.js';
import { projectSchema, scanReadSchema, scanTable, type TableScanOptions } from './scan.js';
import type { Schema } from './types.js';

/** Options of {@link scanToArrow}: the snapshot, filter and columns, as for `scanTable`. */
export type ArrowScanOptions = TableScanOptions;

/** The Arrow schema a scan with these options produces. */
export function arrowScanSchema(
  metadata: TableMetadata,
  options: Pick<ArrowScanOptions, 'columns' | 'caseSensitive' | 'snapshotId' | 'asOfTimestampMs'> = {},
): ArrowSchema {
  return new ArrowSchema(planColumns(scanSchema(metadata, options).fields).arrowFields);
}

function scanSchema(
  metadata: TableMetadata,
  options: Pick<ArrowScanOptions, 'columns' | 'caseSensitive' | 'snapshotId' | 'asOfTimestampMs'>,
): Schema {
  // Time travel reads in the snapshot's own schema, as scanTable does.
  const schema = scanReadSchema(metadata, options);
  return options.columns === undefined ? schema : projectSchema(schema, options.columns, options.caseSensitive);
}

/**
 * Scans a snapshot as Arrow record batches: one batch per Parquet row group that has rows left after deletes and
 * the filter. Batches are produced as they are consumed, so memory holds two data files' bytes (one read ahead) and one row group
 * (decoded values and their Arrow copy) at a time, whatever the table's size.
 *
 * @throws InvalidExpressionError when the filter does not fit the current schema.
 * @throws InvalidTableConfigError for an unknown snapshot or column.
 */
export async function* scanToArrow(
  io: FileIO,
  metadata: TableMetadata,
  options: ArrowScanOptions = {},
): AsyncGenerator<RecordBatch> {
  const schema = scanSchema(metadata, options);
  const { plans, arrowFields } = planColumns(schema.fields);
  const arrowSchema = new ArrowSchema(arrowFields);
  const batchType = new Struct(arrowFields);
  for await (const batch of scanTable(io, metadata, options)) {
    // The Parquet writer's column builder turns values.ts values into Arrow data; sharing it keeps the types a
    // scan returns identical to the ones a write takes.
    const children = plans.map((plan) =>
      buildColumnData(plan, (batch.columns.get(plan.id) ?? []) as ColumnValues, 0, batch.rowCount),
    );
    yield new RecordBatch(
      arrowSchema,
      makeData({ type: batchType, length: batch.rowCount, nullCount: 0, children: children as Data[] }),
    );
  }
}

/**
 * Scans a snapshot into one Arrow table. It holds every matching row in memory: use it for small reads, and
 * {@link scanToArrow} otherwise.
 */
export async function scanToArrowTable(
  io: FileIO,
  metadata: TableMetadata,
  options: ArrowScanOptions = {},
): Promise<Table> {
  const batches: RecordBatch[] = [];
  for await (const batch of scanToArrow(io, metadata, options)) batches.push(batch);
  return new Table(arrowScanSchema(metadata, options), batches);
}
