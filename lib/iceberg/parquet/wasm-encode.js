// Plain JavaScript, not TypeScript: worker threads load this file directly, without the tsx loader that the main
// thread registers, so the encoder must run as it is. Types are in wasm-encode.d.ts.
import { Compression, Encoding, Table, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';

/**
 * Encodes an Arrow IPC stream into a Parquet file with parquet-wasm (arrow-rs compiled to WebAssembly).
 *
 * @param {Uint8Array} ipc the Arrow IPC stream: one schema (with `PARQUET:field_id` field metadata) and its batches.
 * @param {import('./wasm-encode.js').ParquetEncodeOptions} options
 * @returns {Uint8Array} the Parquet file.
 */
export function encodeParquet(ipc, options) {
  let builder = new WriterPropertiesBuilder()
    .setCompression(Compression.ZSTD)
    .setMaxRowGroupSize(options.maxRowGroupRows)
    .setCreatedBy(options.createdBy);
  for (const column of options.plainColumns) builder = builder.setColumnDictionaryEnabled(column, false);
  for (const column of options.deltaColumns) {
    builder = builder.setColumnDictionaryEnabled(column, false).setColumnEncoding(column, Encoding.DELTA_BINARY_PACKED);
  }
  // writeParquet takes ownership of the table (and of the properties) and frees them.
  return writeParquet(Table.fromIPCStream(ipc), builder.build());
}
