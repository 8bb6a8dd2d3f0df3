/** Writer settings passed to {@link encodeParquet}; plain data, so that they can cross to a worker thread. */
export interface ParquetEncodeOptions {
  /** Row groups are cut after this many rows (callers pass one batch per row group and a larger limit). */
  maxRowGroupRows: number;
  /** Top-level leaf columns to write without dictionary encoding (unique values gain nothing from it). */
  plainColumns: string[];
  /** Top-level INT32/INT64 leaf columns to write with DELTA_BINARY_PACKED (and no dictionary). */
  deltaColumns: string[];
  /** The footer's `created_by`. */
  createdBy: string;
}

/** Encodes an Arrow IPC stream into a zstd-compressed Parquet file (see wasm-encode.js). */
export function encodeParquet(ipc: Uint8Array, options: ParquetEncodeOptions): Uint8Array;
