/**
 * Parquet data and position-delete files for the Iceberg engine: {@link writeParquetDataFile},
 * {@link writePositionDeleteFile}, {@link readParquetBatches} and footer inspection. See docs/iceberg-engine.md.
 */
export * from './errors.js';
export { type ColumnValues } from './column-builder.js';
export { closeEncodePool, warmEncodePool } from './encode-pool.js';
export {
  readParquetFooter,
  type ParquetFooter,
  type ParquetSchemaNode,
  type ParquetRowGroup,
  type ParquetColumnChunk,
} from './footer.js';
export * from './reader.js';
export * from './writer.js';
