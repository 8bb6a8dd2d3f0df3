import { InvalidValueError, UnsupportedFormatVersionError } from './errors.js';
import { decodeAvroFile, encodeAvroFile, type AvroCodec, type AvroDecompressor } from './avro/container-file.js';
import { CorruptAvroFileError } from './avro/errors.js';
import {
  copyBytes,
  fieldsById,
  headerInt,
  headerLong,
  nestedRecord,
  optionalInt,
  optionalLong,
  valueById,
  type FieldById,
} from './avro/field-ids.js';
import { isRecordSchema, namedTypes, resolveSchema, type AvroRecordSchema } from './avro/schema.js';
import type { ManifestSummary } from './manifest.js';

/**
 * Manifest lists (spec "Manifest Lists"): one Avro file per snapshot commit attempt, with one `manifest_file`
 * record per manifest the snapshot uses. New manifests are written without sequence numbers; the manifest list
 * gives them the commit's sequence number N, which is why only the manifest list is rewritten on a retry.
 */

/** `manifest_file.content`: a manifest holds data files or delete files, never both. */
export type ManifestContent = 'data' | 'deletes';

/** `content` as stored in manifest lists: 0 data, 1 deletes. */
export const MANIFEST_CONTENT = { data: 0, deletes: 1 } as const;

/** Per partition field: what values the manifest's files hold, for skipping manifests during scan planning. */
export interface PartitionFieldSummary {
  /** Whether some file has a null value for the field. */
  readonly containsNull: boolean;
  /** Whether some file has NaN for the field; null when the writer did not say (older writers). */
  readonly containsNan: boolean | null;
  /** Appendix D binary form of the smallest non-null, non-NaN value; null when there is none. */
  readonly lowerBound: Uint8Array | null;
  /** Appendix D binary form of the largest non-null, non-NaN value; null when there is none. */
  readonly upperBound: Uint8Array | null;
}

/** One `manifest_file` record. */
export interface ManifestFile {
  /** Full URI of the manifest. */
  readonly manifestPath: string;
  /** Exact size of the manifest file in bytes (`bytes.length` of what `writeManifest` returned). */
  readonly manifestLength: bigint;
  readonly partitionSpecId: number;
  readonly content: ManifestContent;
  /**
   * The sequence number of the commit that added the manifest. `null` means unassigned: a manifest written for a
   * commit that has not happened yet. {@link assignManifestSequenceNumbers} fills it in with the commit's N.
   */
  readonly sequenceNumber: bigint | null;
  /**
   * The smallest data sequence number of the live (added or existing) files in the manifest. `null` means
   * unassigned, as above: every live file inherits N, so the minimum is N.
   */
  readonly minSequenceNumber: bigint | null;
  /** The snapshot that added the manifest; also inherited by entries whose `snapshot_id` is null. */
  readonly addedSnapshotId: bigint;
  /** Entries with status ADDED. `null` only in v1 lists, where the spec says "assume non-zero". */
  readonly addedFilesCount: number | null;
  readonly existingFilesCount: number | null;
  readonly deletedFilesCount: number | null;
  /** Rows in ADDED files. `null` only in v1 lists ("assume non-zero"). */
  readonly addedRowsCount: bigint | null;
  readonly existingRowsCount: bigint | null;
  readonly deletedRowsCount: bigint | null;
  /** One summary per partition field of the manifest's spec, in spec order; null when the writer omitted them. */
  readonly partitions: readonly PartitionFieldSummary[] | null;
  readonly keyMetadata: Uint8Array | null;
}

/**
 * The `manifest_file` record schema of a v2 manifest list, as Java's `V2Metadata` writes it: Java's record names
 * (`manifest_file`, `r508`) and a `field-id` on every field, an `element-id` on the partitions array.
 */
export const MANIFEST_LIST_AVRO_SCHEMA: AvroRecordSchema = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    {
      name: 'partitions',
      type: [
        'null',
        {
          type: 'array',
          items: {
            type: 'record',
            name: 'r508',
            fields: [
              { name: 'contains_null', type: 'boolean', 'field-id': 509 },
              { name: 'contains_nan', type: ['null', 'boolean'], default: null, 'field-id': 518 },
              { name: 'lower_bound', type: ['null', 'bytes'], default: null, 'field-id': 510 },
              { name: 'upper_bound', type: ['null', 'bytes'], default: null, 'field-id': 511 },
            ],
          },
          'element-id': 508,
        },
      ],
      default: null,
      'field-id': 507,
    },
    { name: 'key_metadata', type: ['null', 'bytes'], default: null, 'field-id': 519 },
  ],
};

/**
 * The `ManifestFile` for a manifest that {@link writeManifest} just produced and the caller stored at
 * `manifestPath`. Its sequence numbers stay unassigned until the manifest list is written for a commit.
 *
 * @param args.manifestLength the exact byte size: `bytes.length` of the written manifest.
 * @param args.addedSnapshotId the committing snapshot. @default `summary.addedSnapshotId`
 * @throws InvalidValueError when no snapshot id is known.
 */
export function newManifestFile(args: {
  readonly manifestPath: string;
  readonly manifestLength: number | bigint;
  readonly summary: ManifestSummary;
  readonly addedSnapshotId?: bigint;
}): ManifestFile {
  const { summary } = args;
  const addedSnapshotId = args.addedSnapshotId ?? summary.addedSnapshotId;
  if (addedSnapshotId === null) {
    throw new InvalidValueError(
      'manifest_file',
      `manifest "${args.manifestPath}" has no added_snapshot_id; pass snapshotId to writeManifest or ` +
        'addedSnapshotId here',
    );
  }
  return {
    manifestPath: args.manifestPath,
    manifestLength: BigInt(args.manifestLength),
    partitionSpecId: summary.partitionSpecId,
    content: summary.content,
    sequenceNumber: null,
    minSequenceNumber: summary.minSequenceNumber,
    addedSnapshotId,
    addedFilesCount: summary.addedFilesCount,
    existingFilesCount: summary.existingFilesCount,
    deletedFilesCount: summary.deletedFilesCount,
    addedRowsCount: summary.addedRowsCount,
    existingRowsCount: summary.existingRowsCount,
    deletedRowsCount: summary.deletedRowsCount,
    partitions: summary.partitions,
    keyMetadata: null,
  };
}

/**
 * Gives manifests written for this commit the commit's sequence number, as the spec asks when a manifest list is
 * written: an unassigned `sequenceNumber` becomes N, and an unassigned `minSequenceNumber` becomes N too (every
 * live file in such a manifest inherits N). Manifests carried over from earlier snapshots are returned unchanged.
 * Call it again with the new N on every commit retry; the manifests themselves are reused.
 *
 * @throws InvalidValueError when an unassigned manifest belongs to another snapshot: only manifests added by the
 *   committing snapshot may inherit its sequence number.
 */
export function assignManifestSequenceNumbers(
  manifests: readonly ManifestFile[],
  commit: { readonly snapshotId: bigint; readonly sequenceNumber: bigint },
): ManifestFile[] {
  return manifests.map((manifest) => {
    if (manifest.sequenceNumber !== null && manifest.minSequenceNumber !== null) return manifest;
    if (manifest.addedSnapshotId !== commit.snapshotId) {
      throw new InvalidValueError(
        'manifest_file',
        `manifest "${manifest.manifestPath}" has an unassigned sequence number but was added by snapshot ` +
          `${manifest.addedSnapshotId}, not by the committing snapshot ${commit.snapshotId}; only this commit's ` +
          'manifests may inherit its sequence number',
      );
    }
    return {
      ...manifest,
      sequenceNumber: manifest.sequenceNumber ?? commit.sequenceNumber,
      minSequenceNumber: manifest.minSequenceNumber ?? commit.sequenceNumber,
    };
  });
}

export interface WriteManifestListOptions {
  /** The snapshot this list belongs to. */
  readonly snapshotId: bigint;
  /** Its parent; `null` for the first snapshot (written as the string `"null"`, as Java and pyiceberg do). */
  readonly parentSnapshotId: bigint | null;
  /** The commit's sequence number N, given to this commit's new manifests. */
  readonly sequenceNumber: bigint;
  /** Every manifest of the snapshot: the new ones (unassigned sequence numbers allowed) and the carried-over ones. */
  readonly manifests: readonly ManifestFile[];
  /** @default 2 (the only version this engine writes) */
  readonly formatVersion?: 2;
  /** @default 'deflate' (what Java writes) */
  readonly codec?: AvroCodec;
  /** Fixed sync marker, for reproducible test output. @default random */
  readonly syncMarker?: Uint8Array;
}

/**
 * Writes a v2 manifest list with Java's header keys (`snapshot-id`, `parent-snapshot-id`, `sequence-number`,
 * `format-version`). Unassigned sequence numbers are filled in first with {@link assignManifestSequenceNumbers}.
 *
 * @returns the file bytes (their `length` is the file size) and the manifests as written.
 * @throws InvalidValueError for an unassigned manifest of another snapshot, or a v1-only null count.
 */
export function writeManifestList(options: WriteManifestListOptions): { bytes: Uint8Array; manifests: ManifestFile[] } {
  const manifests = assignManifestSequenceNumbers(options.manifests, options);
  const records = manifests.map((manifest) => {
    const count = <T>(value: T | null, field: string): T => {
      if (value === null) {
        throw new InvalidValueError(
          'manifest_file',
          `manifest "${manifest.manifestPath}" has a null ${field}; v2 manifest lists require every count ` +
            '(re-count the manifest by reading it)',
        );
      }
      return value;
    };
    return {
      manifest_path: manifest.manifestPath,
      manifest_length: manifest.manifestLength,
      partition_spec_id: manifest.partitionSpecId,
      content: MANIFEST_CONTENT[manifest.content],
      sequence_number: manifest.sequenceNumber,
      min_sequence_number: manifest.minSequenceNumber,
      added_snapshot_id: manifest.addedSnapshotId,
      added_files_count: count(manifest.addedFilesCount, 'added_files_count'),
      existing_files_count: count(manifest.existingFilesCount, 'existing_files_count'),
      deleted_files_count: count(manifest.deletedFilesCount, 'deleted_files_count'),
      added_rows_count: count(manifest.addedRowsCount, 'added_rows_count'),
      existing_rows_count: count(manifest.existingRowsCount, 'existing_rows_count'),
      deleted_rows_count: count(manifest.deletedRowsCount, 'deleted_rows_count'),
      partitions:
        manifest.partitions?.map((summary) => ({
          contains_null: summary.containsNull,
          contains_nan: summary.containsNan,
          lower_bound: summary.lowerBound,
          upper_bound: summary.upperBound,
        })) ?? null,
      key_metadata: manifest.keyMetadata,
    };
  });
  const bytes = encodeAvroFile({
    schema: MANIFEST_LIST_AVRO_SCHEMA,
    records,
    metadata: {
      'snapshot-id': options.snapshotId.toString(),
      'parent-snapshot-id': options.parentSnapshotId === null ? 'null' : options.parentSnapshotId.toString(),
      'sequence-number': options.sequenceNumber.toString(),
      'format-version': String(options.formatVersion ?? 2),
    },
    codec: options.codec ?? 'deflate',
    ...(options.syncMarker === undefined ? {} : { syncMarker: options.syncMarker }),
  });
  return { bytes, manifests };
}

export interface ReadManifestListOptions {
  /** Names the file in errors, e.g. its location. @default 'manifest list' */
  readonly file?: string;
  /** Extra block codecs (`snappy`, `zstandard`) by Avro codec name. @default {} */
  readonly decompressors?: Readonly<Record<string, AvroDecompressor>>;
}

export interface ManifestListContents {
  /** The header's key-values (`snapshot-id`, `format-version`…), `avro.*` keys left out. */
  readonly metadata: Record<string, string>;
  /** From the header; 1 when absent (v1 writers could omit it). */
  readonly formatVersion: number;
  /** From the header; `undefined` when absent or `"null"`. */
  readonly snapshotId: bigint | undefined;
  readonly parentSnapshotId: bigint | undefined;
  /** From the header; `undefined` in v1 lists. */
  readonly sequenceNumber: bigint | undefined;
  readonly manifests: ManifestFile[];
}

/**
 * Reads a manifest list written by us, Java/Spark or pyiceberg. Fields are found by `field-id`, so names and order
 * may differ. A v1 list gets the spec's defaults: content `data`, sequence numbers 0. Fields of later versions
 * (`first_row_id`) are ignored.
 *
 * @throws CorruptAvroFileError when the bytes are not a manifest list.
 * @throws UnsupportedFormatVersionError for format versions above 2.
 */
export function readManifestList(bytes: Uint8Array, options: ReadManifestListOptions = {}): ManifestListContents {
  const description = `manifest list "${options.file ?? '(unnamed)'}"`;
  const decoded = decodeAvroFile(bytes, {
    description,
    ...(options.decompressors === undefined ? {} : { decompressors: options.decompressors }),
  });
  const corrupt = (problem: string): never => {
    throw new CorruptAvroFileError(description, problem);
  };
  const { metadata } = decoded;
  const formatVersion = headerInt(metadata, 'format-version', corrupt) ?? 1;
  if (formatVersion > 2) throw new UnsupportedFormatVersionError(options.file ?? description, formatVersion);

  const names = namedTypes(decoded.schema);
  const root = resolveSchema(decoded.schema, names);
  if (!isRecordSchema(root)) return corrupt('the schema is not a record');
  const fields = fieldsById(root, names);
  const summaryRecord = nestedRecord(fields.get(507), names);
  const summaryFields = summaryRecord === undefined ? new Map<number, FieldById>() : fieldsById(summaryRecord, names);

  const manifests = decoded.records.map((record, index): ManifestFile => {
    const at = (id: number): unknown => valueById(record, fields, id);
    const missing = (id: number, name: string): never =>
      corrupt(`record ${index} has no ${name} (field id ${id}), which every manifest list must have`);
    const manifestPath = at(500);
    if (typeof manifestPath !== 'string') return missing(500, 'manifest_path');
    const content = optionalInt(at(517)) ?? 0;
    if (content !== 0 && content !== 1) corrupt(`record ${index} has content ${content}; expected 0 or 1`);
    const partitions = at(507);
    return {
      manifestPath,
      manifestLength: optionalLong(at(501)) ?? missing(501, 'manifest_length'),
      partitionSpecId: optionalInt(at(502)) ?? missing(502, 'partition_spec_id'),
      content: content === 1 ? 'deletes' : 'data',
      // The spec: "use 0 when reading v1 manifest lists".
      sequenceNumber: optionalLong(at(515)) ?? 0n,
      minSequenceNumber: optionalLong(at(516)) ?? 0n,
      addedSnapshotId: optionalLong(at(503)) ?? missing(503, 'added_snapshot_id'),
      addedFilesCount: optionalInt(at(504)),
      existingFilesCount: optionalInt(at(505)),
      deletedFilesCount: optionalInt(at(506)),
      addedRowsCount: optionalLong(at(512)),
      existingRowsCount: optionalLong(at(513)),
      deletedRowsCount: optionalLong(at(514)),
      partitions: Array.isArray(partitions) ? partitions.map((item) => readSummary(item, summaryFields)) : null,
      keyMetadata: copyBytes(at(519)),
    };
  });
  return {
    metadata,
    formatVersion,
    snapshotId: headerLong(metadata, 'snapshot-id', corrupt),
    parentSnapshotId: headerLong(metadata, 'parent-snapshot-id', corrupt),
    sequenceNumber: headerLong(metadata, 'sequence-number', corrupt),
    manifests,
  };
}

function readSummary(item: unknown, fields: ReadonlyMap<number, FieldById>): PartitionFieldSummary {
  const containsNan = valueById(item, fields, 518);
  return {
    containsNull: valueById(item, fields, 509) === true,
    containsNan: typeof containsNan === 'boolean' ? containsNan : null,
    lowerBound: copyBytes(valueById(item, fields, 510)),
    upperBound: copyBytes(valueById(item, fields, 511)),
  };
}
