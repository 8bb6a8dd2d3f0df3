/**
 * The in-memory form of a manifest entry's `data_file` (spec "Data File Fields") and of a manifest entry. The
 * Parquet writer produces `DataFile`s with their metrics; the manifest writer serializes them; scans read them back.
 * Maps are keyed by field id. Bounds are Appendix D single-value binary encodings (see `bounds.ts`).
 */
import type { PrimitiveValue } from './values.js';

/** One value of a partition tuple; null for a null partition value. */
export type PartitionValue = PrimitiveValue | null;

/** `data_file.content`: 0 data, 1 position deletes, 2 equality deletes. */
export const FILE_CONTENT = { data: 0, 'position-deletes': 1, 'equality-deletes': 2 } as const;
export type FileContent = keyof typeof FILE_CONTENT;

/** `manifest_entry.status`: 0 existing, 1 added, 2 deleted. */
export const ENTRY_STATUS = { existing: 0, added: 1, deleted: 2 } as const;
export type EntryStatus = keyof typeof ENTRY_STATUS;

export type FileFormat = 'PARQUET' | 'AVRO' | 'ORC';

/** Column-level metrics, keyed by field id. All optional: a writer may omit any of them. */
export interface ColumnMetrics {
  columnSizes?: Map<number, bigint>;
  valueCounts?: Map<number, bigint>;
  nullValueCounts?: Map<number, bigint>;
  nanValueCounts?: Map<number, bigint>;
  lowerBounds?: Map<number, Uint8Array>;
  upperBounds?: Map<number, Uint8Array>;
}

/** One data or delete file as recorded in a manifest. */
export interface DataFile extends ColumnMetrics {
  content: FileContent;
  /** Full URI, e.g. `s3://bucket/wh/db/t/data/…parquet` or `file:///…`. */
  filePath: string;
  fileFormat: FileFormat;
  /** The partition tuple, in the order of the spec's fields (values as in `values.ts`; null for a null value). */
  partition: PartitionValue[];
  /** The partition spec the tuple belongs to. */
  specId: number;
  recordCount: bigint;
  fileSizeInBytes: bigint;
  keyMetadata?: Uint8Array;
  splitOffsets?: bigint[];
  /** Equality delete files only: the field ids of the equality columns. */
  equalityIds?: number[];
  sortOrderId?: number;
  /** Position delete files only: set when every row targets one data file. */
  referencedDataFile?: string;
}

/** A manifest entry: a file plus its status and the snapshot and sequence numbers that track it. */
export interface ManifestEntry {
  status: EntryStatus;
  /** Null in a new manifest for ADDED entries until inherited from the manifest list (spec: inheritance). */
  snapshotId: bigint | null;
  /** Data sequence number; null means "inherit the manifest's sequence number" (only for ADDED entries). */
  sequenceNumber: bigint | null;
  /** File sequence number; null means inherit, as above. */
  fileSequenceNumber: bigint | null;
  dataFile: DataFile;
}
