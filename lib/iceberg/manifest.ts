import { stringify as stringifyLosslessJson } from 'lossless-json';
import { decodeAvroFile, encodeAvroFile, type AvroCodec, type AvroDecompressor } from './avro/container-file.js';
import { CorruptAvroFileError } from './avro/errors.js';
import {
  avroFieldName,
  avroSchemaForPrimitive,
  primitiveFromAvro,
  primitiveToAvro,
  primitiveTypeOfAvro,
} from './avro/iceberg-types.js';
import {
  copyBytes,
  fieldsById,
  headerInt,
  nestedRecord,
  optionalInt,
  optionalLong,
  valueById,
  type FieldById,
} from './avro/field-ids.js';
import {
  isRecordSchema,
  namedTypes,
  resolveSchema,
  type AvroField,
  type AvroRecordSchema,
  type AvroSchema,
} from './avro/schema.js';
import {
  ENTRY_STATUS,
  FILE_CONTENT,
  type DataFile,
  type EntryStatus,
  type FileContent,
  type FileFormat,
  type ManifestEntry,
  type PartitionValue,
} from './data-file.js';
import { InvalidValueError, UnsupportedFormatVersionError } from './errors.js';
import type { ManifestContent, ManifestFile, PartitionFieldSummary } from './manifest-list.js';
import { partitionSpecToJson, partitionType as partitionTypeOf, type PartitionSpec } from './partition-spec.js';
import { isPrimitive, schemaToJson, typeToString, type PrimitiveType, type Schema, type StructType } from './types.js';
import {
  checkValue,
  decimalToMinimalBytes,
  utf8Bytes,
  uuidToBytes,
  type DecimalValue,
  type PrimitiveValue,
} from './values.js';

/**
 * Manifests (spec "Manifests", "Manifest Entry Fields", "Data File Fields"): Avro files of `manifest_entry`
 * records, one per data or delete file, for one partition spec. Writing produces the bytes plus the summary the
 * manifest list needs; reading maps any v1/v2 manifest (ours, Java's, pyiceberg's) back to {@link ManifestEntry}s
 * by field id.
 */

// ---- the Avro schema ----------------------------------------------------------------------------------------

function optionalField(name: string, type: AvroSchema, fieldId: number): AvroField {
  return { name, type: ['null', type], default: null, 'field-id': fieldId };
}

/** A `map<int, V>` as Iceberg stores maps with non-string keys: an array of key/value records named `k<id>_v<id>`. */
function intKeyedMap(keyId: number, valueId: number, valueType: AvroSchema): AvroSchema {
  return {
    type: 'array',
    items: {
      type: 'record',
      name: `k${keyId}_v${valueId}`,
      fields: [
        { name: 'key', type: 'int', 'field-id': keyId },
        { name: 'value', type: valueType, 'field-id': valueId },
      ],
    },
    logicalType: 'map',
  };
}

/**
 * The v2 `manifest_entry` Avro schema for a partition type, as Java's `V2Metadata` writes it: record names `r2`
 * (data_file), `r102` (partition), `k117_v118`… (metric maps), a `field-id` on every field and an `element-id` on
 * every list. Partition fields are optional with default null and carry the partition field ids.
 *
 * @param partitionType the spec's partition struct, from `partitionType(spec, schema)`.
 * @throws InvalidValueError when a partition field is not primitive, or two names collide once made Avro-safe.
 */
export function manifestAvroSchema(partitionType: StructType): AvroRecordSchema {
  const defined = new Set<string>();
  const avroNames = new Set<string>();
  const partitionFields = partitionType.fields.map((field): AvroField => {
    if (!isPrimitive(field.type)) {
      throw new InvalidValueError('partition type', `field "${field.name}" is a ${field.type.kind}, not a primitive`);
    }
    const name = avroFieldName(field.name);
    if (avroNames.has(name)) {
      throw new InvalidValueError(
        'partition type',
        `partition fields "${field.name}" and another one both map to the Avro name "${name}"; rename one`,
      );
    }
    avroNames.add(name);
    return {
      name,
      type: ['null', avroSchemaForPrimitive(field.type, defined)],
      default: null,
      // Java records the original name when it had to change it.
      ...(name === field.name ? {} : { 'iceberg-field-name': field.name }),
      'field-id': field.id,
    };
  });
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      optionalField('snapshot_id', 'long', 1),
      optionalField('sequence_number', 'long', 3),
      optionalField('file_sequence_number', 'long', 4),
      {
        name: 'data_file',
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'content', type: 'int', 'field-id': 134 },
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            { name: 'partition', type: { type: 'record', name: 'r102', fields: partitionFields }, 'field-id': 102 },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            optionalField('column_sizes', intKeyedMap(117, 118, 'long'), 108),
            optionalField('value_counts', intKeyedMap(119, 120, 'long'), 109),
            optionalField('null_value_counts', intKeyedMap(121, 122, 'long'), 110),
            optionalField('nan_value_counts', intKeyedMap(138, 139, 'long'), 137),
            optionalField('lower_bounds', intKeyedMap(126, 127, 'bytes'), 125),
            optionalField('upper_bounds', intKeyedMap(129, 130, 'bytes'), 128),
            optionalField('key_metadata', 'bytes', 131),
            optionalField('split_offsets', { type: 'array', items: 'long', 'element-id': 133 }, 132),
            optionalField('equality_ids', { type: 'array', items: 'int', 'element-id': 136 }, 135),
            optionalField('sort_order_id', 'int', 140),
            optionalField('referenced_data_file', 'string', 143),
          ],
        },
        'field-id': 2,
      },
    ],
  };
}

// ---- partition values and bounds -------------------------------------------------------------------------

/**
 * Encodes one value in Appendix D's binary single-value form, for partition summary bounds. `bounds.ts` will hold
 * the full encoder for column bounds; pass it as `encodeBound` to {@link writeManifest} once it exists.
 */
export type BoundEncoder = (type: PrimitiveType, value: PrimitiveValue) => Uint8Array;

/**
 * The built-in {@link BoundEncoder}, covering every primitive type a partition value can have (spec Appendix D):
 * little-endian ints, longs, floats and doubles; UTF-8 strings without a length; 16 big-endian bytes for uuid;
 * minimal two's-complement big-endian bytes for a decimal's unscaled value; raw bytes for fixed and binary.
 *
 * @throws InvalidValueError when the value does not have the representation the type needs.
 */
export function encodePartitionBound(type: PrimitiveType, value: PrimitiveValue): Uint8Array {
  checkValue(type, value);
  const view = (size: number, write: (dv: DataView) => void): Uint8Array => {
    const bytes = new Uint8Array(size);
    write(new DataView(bytes.buffer));
    return bytes;
  };
  switch (type.kind) {
    case 'boolean':
      return Uint8Array.of(value ? 1 : 0);
    case 'int':
    case 'date':
      return view(4, (dv) => dv.setInt32(0, value as number, true));
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return view(8, (dv) => dv.setBigInt64(0, value as bigint, true));
    case 'float':
      return view(4, (dv) => dv.setFloat32(0, value as number, true));
    case 'double':
      return view(8, (dv) => dv.setFloat64(0, value as number, true));
    case 'string':
      return utf8Bytes(value as string);
    case 'uuid':
      return uuidToBytes(value as string);
    case 'decimal':
      return decimalToMinimalBytes((value as DecimalValue).unscaled);
    case 'fixed':
    case 'binary':
      return new Uint8Array(value as Uint8Array);
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Code point order, which is UTF-8 byte order and what Java's `Comparators.charSequences()` implements. */
function compareStrings(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done || cb.done) return ca.done && cb.done ? 0 : ca.done ? -1 : 1;
    const d = (ca.value.codePointAt(0) as number) - (cb.value.codePointAt(0) as number);
    if (d !== 0) return d;
  }
}

/** Iceberg's order for a partition type; NaN never reaches it. */
function compareValues(type: PrimitiveType, a: PrimitiveValue, b: PrimitiveValue): number {
  switch (type.kind) {
    case 'boolean':
      return Number(a) - Number(b);
    case 'int':
    case 'date':
    case 'float':
    case 'double':
      // -0.0 sorts before +0.0 (IEEE 754 totalOrder), so that the spec's rule on signed-zero bounds holds.
      if (a === b) return Object.is(a, -0) === Object.is(b, -0) ? 0 : Object.is(a, -0) ? -1 : 1;
      return (a as number) < (b as number) ? -1 : 1;
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      return a === b ? 0 : (a as bigint) < (b as bigint) ? -1 : 1;
    case 'decimal': {
      const x = (a as DecimalValue).unscaled;
      const y = (b as DecimalValue).unscaled;
      return x === y ? 0 : x < y ? -1 : 1;
    }
    case 'string':
      return compareStrings(a as string, b as string);
    case 'uuid':
      // Unsigned byte order (RFC 4122/9562), which lower-case hex text order equals.
      return compareStrings((a as string).toLowerCase(), (b as string).toLowerCase());
    case 'fixed':
    case 'binary':
      return compareBytes(a as Uint8Array, b as Uint8Array);
  }
}

/**
 * Partition field summaries over every entry's tuple (deleted entries too, as Java does: a summary may be wider
 * than the live files, never narrower). Bounds skip nulls and NaNs; NaN sets `containsNan`.
 */
function summarizePartitions(
  types: readonly PrimitiveType[],
  tuples: readonly (readonly PartitionValue[])[],
  encodeBound: BoundEncoder,
): PartitionFieldSummary[] {
  return types.map((type, i) => {
    let containsNull = false;
    let containsNan = false;
    let min: PrimitiveValue | undefined;
    let max: PrimitiveValue | undefined;
    for (const tuple of tuples) {
      const value = tuple[i] ?? null;
      if (value === null) containsNull = true;
      else if (typeof value === 'number' && Number.isNaN(value)) containsNan = true;
      else {
        if (min === undefined || compareValues(type, value, min) < 0) min = value;
        if (max === undefined || compareValues(type, value, max) > 0) max = value;
      }
    }
    return {
      containsNull,
      containsNan,
      lowerBound: min === undefined ? null : encodeBound(type, min),
      upperBound: max === undefined ? null : encodeBound(type, max),
    };
  });
}

// ---- writing -----------------------------------------------------------------------------------------------

/** What a manifest list needs to know about a manifest, besides its location and length. */
export interface ManifestSummary {
  readonly partitionSpecId: number;
  readonly content: ManifestContent;
  /** The `snapshotId` given to {@link writeManifest}, or null. */
  readonly addedSnapshotId: bigint | null;
  /**
   * The smallest data sequence number among live (added and existing) entries that have one; null when none
   * has one yet, i.e. every live entry inherits the commit's sequence number.
   */
  readonly minSequenceNumber: bigint | null;
  readonly addedFilesCount: number;
  readonly existingFilesCount: number;
  readonly deletedFilesCount: number;
  readonly addedRowsCount: bigint;
  readonly existingRowsCount: bigint;
  readonly deletedRowsCount: bigint;
  /** One per partition field, in spec order (empty for an unpartitioned spec). */
  readonly partitions: PartitionFieldSummary[];
}

export interface WriteManifestOptions {
  /** The table schema the manifest is written with; stored in the header. */
  readonly schema: Schema;
  /** The partition spec of every entry; its partition type shapes the `r102` record. */
  readonly spec: PartitionSpec;
  /** Only v2 manifests are written. */
  readonly formatVersion: 2;
  /** Data manifests hold data files only; delete manifests hold position and equality delete files only. */
  readonly content: ManifestContent;
  readonly entries: readonly ManifestEntry[];
  /**
   * The snapshot that writes the manifest. Written into ADDED and DELETED entries whose `snapshotId` is null, as
   * Java does; without it such entries inherit the manifest list's `added_snapshot_id` at read time.
   * @default undefined
   */
  readonly snapshotId?: bigint;
  /**
   * Encodes partition summary bounds (Appendix D). Inject `bounds.ts`'s encoder to share one implementation.
   * @default {@link encodePartitionBound}
   */
  readonly encodeBound?: BoundEncoder;
  /** @default 'deflate' (what Java writes) */
  readonly codec?: AvroCodec;
  /** Fixed sync marker, for reproducible test output. @default random */
  readonly syncMarker?: Uint8Array;
}

const CONTENT_FOR_MANIFEST: Readonly<Record<ManifestContent, readonly FileContent[]>> = {
  data: ['data'],
  deletes: ['position-deletes', 'equality-deletes'],
};

/**
 * Writes a v2 manifest with the header keys of the spec (`schema`, `schema-id`, `partition-spec`,
 * `partition-spec-id`, `format-version`, `content`).
 *
 * ADDED entries may leave `sequenceNumber` and `fileSequenceNumber` null: they inherit the commit's sequence
 * number from the manifest list, so the same bytes can be reused when a commit is retried with another N.
 * EXISTING and DELETED entries must carry the sequence numbers they were given when added.
 *
 * @returns the bytes (`bytes.length` is the `manifest_length` to record) and the summary for the manifest list
 *   (turn it into a `ManifestFile` with `newManifestFile`).
 * @throws InvalidValueError naming the entry, for an entry that breaks the rules above, belongs to another spec,
 *   has content that does not fit the manifest, or has a partition tuple that does not fit the spec.
 */
export function writeManifest(options: WriteManifestOptions): { bytes: Uint8Array; summary: ManifestSummary } {
  const { spec, content } = options;
  const partitionStruct = partitionTypeOf(spec, options.schema);
  const partitionTypes = partitionStruct.fields.map((field) => field.type as PrimitiveType);
  const avroSchema = manifestAvroSchema(partitionStruct);
  const partitionNames = partitionStruct.fields.map((field) => avroFieldName(field.name));
  const snapshotId = options.snapshotId ?? null;

  let addedFilesCount = 0;
  let existingFilesCount = 0;
  let deletedFilesCount = 0;
  let addedRowsCount = 0n;
  let existingRowsCount = 0n;
  let deletedRowsCount = 0n;
  let minSequenceNumber: bigint | null = null;

  const records = options.entries.map((entry, index) => {
    const file = entry.dataFile;
    const bad = (problem: string): never => {
      throw new InvalidValueError('manifest entry', `entry ${index} ("${file.filePath}") ${problem}`);
    };
    if (file.specId !== spec.specId)
      bad(`has partition spec ${file.specId}, but the manifest is for spec ${spec.specId}`);
    if (!CONTENT_FOR_MANIFEST[content].includes(file.content)) {
      bad(`holds ${file.content} but this is a ${content} manifest; write data and delete files to separate manifests`);
    }
    if (file.content === 'equality-deletes' && (file.equalityIds ?? []).length === 0) {
      bad('is an equality delete file without equalityIds');
    }
    if (file.partition.length !== partitionTypes.length) {
      bad(`has ${file.partition.length} partition values but spec ${spec.specId} has ${partitionTypes.length} fields`);
    }
    if (entry.status !== 'added' && (entry.sequenceNumber === null || entry.fileSequenceNumber === null)) {
      bad(
        `has status ${entry.status} but a null sequence number; existing and deleted entries must keep the data and ` +
          'file sequence numbers they got when added (only added entries inherit)',
      );
    }
    if (entry.status === 'existing' && entry.snapshotId === null) {
      bad('has status existing but no snapshotId; keep the id of the snapshot that added the file');
    }

    switch (entry.status) {
      case 'added':
        addedFilesCount += 1;
        addedRowsCount += file.recordCount;
        break;
      case 'existing':
        existingFilesCount += 1;
        existingRowsCount += file.recordCount;
        break;
      case 'deleted':
        deletedFilesCount += 1;
        deletedRowsCount += file.recordCount;
        break;
    }
    if (entry.status !== 'deleted' && entry.sequenceNumber !== null) {
      if (minSequenceNumber === null || entry.sequenceNumber < minSequenceNumber) {
        minSequenceNumber = entry.sequenceNumber;
      }
    }

    const partition: Record<string, unknown> = {};
    partitionTypes.forEach((type, i) => {
      try {
        partition[partitionNames[i] as string] = primitiveToAvro(type, file.partition[i] ?? null);
      } catch (err) {
        if (err instanceof InvalidValueError)
          bad(`partition field "${partitionStruct.fields[i]?.name}": ${err.message}`);
        throw err;
      }
    });
    return {
      status: ENTRY_STATUS[entry.status],
      snapshot_id: entry.snapshotId ?? (entry.status === 'existing' ? null : snapshotId),
      sequence_number: entry.sequenceNumber,
      file_sequence_number: entry.fileSequenceNumber,
      data_file: {
        content: FILE_CONTENT[file.content],
        file_path: file.filePath,
        file_format: file.fileFormat,
        partition,
        record_count: file.recordCount,
        file_size_in_bytes: file.fileSizeInBytes,
        column_sizes: mapToAvro(file.columnSizes),
        value_counts: mapToAvro(file.valueCounts),
        null_value_counts: mapToAvro(file.nullValueCounts),
        nan_value_counts: mapToAvro(file.nanValueCounts),
        lower_bounds: mapToAvro(file.lowerBounds),
        upper_bounds: mapToAvro(file.upperBounds),
        key_metadata: file.keyMetadata ?? null,
        split_offsets: file.splitOffsets ?? null,
        equality_ids: file.equalityIds ?? null,
        sort_order_id: file.sortOrderId ?? null,
        referenced_data_file: file.referencedDataFile ?? null,
      },
    };
  });

  const bytes = encodeAvroFile({
    schema: avroSchema,
    records,
    metadata: {
      schema: stringifyLosslessJson(schemaToJson(options.schema)) as string,
      'schema-id': String(options.schema.schemaId),
      'partition-spec': stringifyLosslessJson(partitionSpecToJson(spec).fields) as string,
      'partition-spec-id': String(spec.specId),
      'format-version': String(options.formatVersion),
      content,
    },
    codec: options.codec ?? 'deflate',
    ...(options.syncMarker === undefined ? {} : { syncMarker: options.syncMarker }),
  });
  const summary: ManifestSummary = {
    partitionSpecId: spec.specId,
    content,
    addedSnapshotId: snapshotId,
    minSequenceNumber,
    addedFilesCount,
    existingFilesCount,
    deletedFilesCount,
    addedRowsCount,
    existingRowsCount,
    deletedRowsCount,
    partitions: summarizePartitions(
      partitionTypes,
      options.entries.map((entry) => entry.dataFile.partition),
      options.encodeBound ?? encodePartitionBound,
    ),
  };
  return { bytes, summary };
}

/** Keys sorted, so that the same file always produces the same bytes. */
function mapToAvro<V>(map: ReadonlyMap<number, V> | undefined): { key: number; value: V }[] | null {
  if (map === undefined) return null;
  return [...map.entries()].sort(([a], [b]) => a - b).map(([key, value]) => ({ key, value }));
}

// ---- reading -----------------------------------------------------------------------------------------------

export interface ReadManifestOptions {
  /**
   * The partition type of the manifest's spec (`partitionType(spec, schema)` with the table's current schema).
   * Values are converted to it, which also applies type promotions (an `int` partition read as `long`); fields
   * the file lacks read as null. Without it the types are derived from the file's Avro schema.
   * @default derived from the file
   */
  readonly partitionType?: StructType;
  /** Names the file in errors, e.g. its location. @default '(unnamed)' */
  readonly file?: string;
  /** Extra block codecs (`snappy`, `zstandard`) by Avro codec name. @default {} */
  readonly decompressors?: Readonly<Record<string, AvroDecompressor>>;
}

export interface ManifestContents {
  /** The header's key-values (`schema`, `partition-spec`, …), `avro.*` keys left out. */
  readonly metadata: Record<string, string>;
  /** From the header; 1 when absent (v1 writers could omit it). */
  readonly formatVersion: number;
  /** From the header; `data` when absent (v1). */
  readonly content: ManifestContent;
  /** From the header; `undefined` when absent (v1 writers could omit it). */
  readonly partitionSpecId: number | undefined;
  /**
   * Entries in file order, as stored: null snapshot ids and sequence numbers are still null. Apply
   * {@link inheritManifestMetadata} with the manifest's list entry before using them.
   */
  readonly entries: ManifestEntry[];
}

const STATUS_BY_CODE: readonly EntryStatus[] = ['existing', 'added', 'deleted'];
const CONTENT_BY_CODE: readonly FileContent[] = ['data', 'position-deletes', 'equality-deletes'];
const FILE_FORMATS: ReadonlySet<string> = new Set<FileFormat>(['PARQUET', 'AVRO', 'ORC']);

interface PartitionColumn {
  readonly name: string;
  readonly type: PrimitiveType;
  /** The file's field for it; undefined when the file does not have it (read as null). */
  readonly field: FieldById | undefined;
}

/**
 * Reads a manifest written by us, Java/Spark or pyiceberg. Fields are matched by `field-id`; unknown fields (v3's
 * `first_row_id`, `content_offset`…) are ignored. v1 manifests get the spec's defaults: content `data`, and null
 * sequence numbers, which {@link inheritManifestMetadata} turns into 0 from a v1 manifest list.
 *
 * Entries' `dataFile.specId` is the header's `partition-spec-id` (0 when absent) until inheritance sets the
 * manifest list's value. Bytes are copied out of the decoded blocks.
 *
 * @throws CorruptAvroFileError when the file is not a readable manifest or a value does not fit its type.
 * @throws UnsupportedFormatVersionError for format versions above 2.
 */
export function readManifest(bytes: Uint8Array, options: ReadManifestOptions = {}): ManifestContents {
  const description = `manifest "${options.file ?? '(unnamed)'}"`;
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
  const contentText = metadata.content ?? 'data';
  const content: ManifestContent =
    contentText === 'data' || contentText === 'deletes'
      ? contentText
      : corrupt(`header "content" is ${JSON.stringify(contentText)}; expected "data" or "deletes"`);
  const partitionSpecId = headerInt(metadata, 'partition-spec-id', corrupt);

  const names = namedTypes(decoded.schema);
  const root = resolveSchema(decoded.schema, names);
  if (!isRecordSchema(root)) return corrupt('the schema is not a record');
  const entryFields = fieldsById(root, names);
  const dataFileRecord = nestedRecord(entryFields.get(2), names);
  if (dataFileRecord === undefined) return corrupt('the schema has no data_file record (field id 2)');
  const fileFields = fieldsById(dataFileRecord, names);
  const partitionRecord = nestedRecord(fileFields.get(102), names);
  if (partitionRecord === undefined) return corrupt('the schema has no partition record (field id 102)');
  const partitionFields = fieldsById(partitionRecord, names);
  const columns = partitionColumns(partitionRecord, partitionFields, options.partitionType, corrupt);
  const mapFields = new Map(
    [108, 109, 110, 137, 125, 128].map((id) => [id, mapEntryNames(nestedRecord(fileFields.get(id), names))]),
  );

  const entries = decoded.records.map((record, index): ManifestEntry => {
    const at = (id: number): unknown => valueById(record, entryFields, id);
    const bad = (problem: string): never => corrupt(`entry ${index} ${problem}`);
    const status = STATUS_BY_CODE[optionalInt(at(0)) ?? -1] ?? bad(`has status ${String(at(0))}; expected 0, 1 or 2`);
    const file = at(2);
    const fileAt = (id: number): unknown => valueById(file, fileFields, id);
    const contentCode = optionalInt(fileAt(134)) ?? 0;
    const fileContent = CONTENT_BY_CODE[contentCode] ?? bad(`has data_file.content ${contentCode}; expected 0, 1 or 2`);
    const filePath = fileAt(100);
    if (typeof filePath !== 'string') bad('has no data_file.file_path (field id 100)');
    const format = fileAt(101);
    const fileFormat = typeof format === 'string' ? format.toUpperCase() : '';
    if (!FILE_FORMATS.has(fileFormat)) {
      bad(`has file_format ${JSON.stringify(format)}; a v2 reader understands PARQUET, AVRO and ORC`);
    }
    const partitionValue = fileAt(102);
    const partition = columns.map((column) =>
      column.field === undefined
        ? null
        : primitiveFromAvro(column.type, (partitionValue as Record<string, unknown>)[column.field.name], (found) =>
            bad(`has ${found} in partition field "${column.name}", which is not a ${typeToString(column.type)}`),
          ),
    );
    const dataFile: DataFile = {
      content: fileContent,
      filePath: filePath as string,
      fileFormat: fileFormat as FileFormat,
      partition,
      specId: partitionSpecId ?? 0,
      recordCount: optionalLong(fileAt(103)) ?? bad('has no data_file.record_count (field id 103)'),
      fileSizeInBytes: optionalLong(fileAt(104)) ?? bad('has no data_file.file_size_in_bytes (field id 104)'),
    };
    const longMap = (id: number): Map<number, bigint> | undefined =>
      mapFromAvro(fileAt(id), mapFields.get(id), (v) => optionalLong(v), bad);
    const bytesMap = (id: number): Map<number, Uint8Array> | undefined =>
      mapFromAvro(fileAt(id), mapFields.get(id), (v) => copyBytes(v), bad);
    setIfDefined(dataFile, 'columnSizes', longMap(108));
    setIfDefined(dataFile, 'valueCounts', longMap(109));
    setIfDefined(dataFile, 'nullValueCounts', longMap(110));
    setIfDefined(dataFile, 'nanValueCounts', longMap(137));
    setIfDefined(dataFile, 'lowerBounds', bytesMap(125));
    setIfDefined(dataFile, 'upperBounds', bytesMap(128));
    setIfDefined(dataFile, 'keyMetadata', copyBytes(fileAt(131)) ?? undefined);
    const splitOffsets = fileAt(132);
    if (Array.isArray(splitOffsets)) {
      dataFile.splitOffsets = splitOffsets.map((v) => optionalLong(v) ?? bad('has a null split offset'));
    }
    const equalityIds = fileAt(135);
    if (Array.isArray(equalityIds)) {
      dataFile.equalityIds = equalityIds.map((v) => optionalInt(v) ?? bad('has a null equality id'));
    }
    setIfDefined(dataFile, 'sortOrderId', optionalInt(fileAt(140)) ?? undefined);
    const referenced = fileAt(143);
    if (typeof referenced === 'string') dataFile.referencedDataFile = referenced;
    return {
      status,
      snapshotId: optionalLong(at(1)),
      sequenceNumber: optionalLong(at(3)),
      fileSequenceNumber: optionalLong(at(4)),
      dataFile,
    };
  });
  return { metadata, formatVersion, content, partitionSpecId, entries };
}

function setIfDefined<K extends keyof DataFile>(file: DataFile, key: K, value: DataFile[K] | undefined): void {
  if (value !== undefined) file[key] = value;
}

function mapEntryNames(record: AvroRecordSchema | undefined): { key: string; value: string } | undefined {
  const [key, value] = record?.fields ?? [];
  return key === undefined || value === undefined ? undefined : { key: key.name, value: value.name };
}

/** An Iceberg `map<int, V>` stored as an array of key/value records; undefined when the file has none. */
function mapFromAvro<V>(
  value: unknown,
  names: { key: string; value: string } | undefined,
  convert: (v: unknown) => V | null,
  bad: (problem: string) => never,
): Map<number, V> | undefined {
  if (!Array.isArray(value) || names === undefined) return undefined;
  return new Map(
    value.map((item: Record<string, unknown>) => {
      const key = optionalInt(item[names.key]) ?? bad(`has a metrics map entry without a key`);
      return [key, convert(item[names.value]) ?? bad(`has a null metrics value for field ${key}`)];
    }),
  );
}

function partitionColumns(
  record: AvroRecordSchema,
  fields: ReadonlyMap<number, FieldById>,
  partitionType: StructType | undefined,
  corrupt: (problem: string) => never,
): PartitionColumn[] {
  if (partitionType !== undefined) {
    return partitionType.fields.map((field) => {
      if (!isPrimitive(field.type)) {
        throw new InvalidValueError('partition type', `field "${field.name}" is a ${field.type.kind}, not a primitive`);
      }
      return { name: field.name, type: field.type, field: fields.get(field.id) };
    });
  }
  return record.fields.flatMap((avroField) => {
    const id = avroField['field-id'];
    const field = typeof id === 'number' ? fields.get(id) : undefined;
    if (field === undefined) return [];
    const type = primitiveTypeOfAvro(field.schema);
    if (type === undefined) {
      return corrupt(`partition field "${avroField.name}" has an Avro type that is not an Iceberg v2 partition type`);
    }
    const original = avroField['iceberg-field-name'];
    return [{ name: typeof original === 'string' ? original : avroField.name, type, field }];
  });
}

// ---- inheritance -------------------------------------------------------------------------------------------

/**
 * Applies the spec's inheritance ("Sequence Number Inheritance") from the manifest's entry in the manifest list:
 * a null `snapshotId` becomes `added_snapshot_id`; null sequence numbers become the manifest's `sequence_number`
 * for ADDED entries, and for every entry when that is 0 (a v1 manifest, whose files all have sequence number 0);
 * `dataFile.specId` becomes `partition_spec_id`. Returns new entries; the input is not changed.
 *
 * @throws InvalidValueError when the manifest's sequence number is unassigned: only a committed manifest list
 *   entry can be inherited from.
 */
export function inheritManifestMetadata(
  entries: readonly ManifestEntry[],
  manifest: Pick<ManifestFile, 'manifestPath' | 'sequenceNumber' | 'addedSnapshotId' | 'partitionSpecId'>,
): ManifestEntry[] {
  const sequenceNumber = manifest.sequenceNumber;
  if (sequenceNumber === null) {
    throw new InvalidValueError(
      'manifest_file',
      `manifest "${manifest.manifestPath}" has no sequence number yet; inherit from the manifest list entry ` +
        'read back from a committed snapshot',
    );
  }
  return entries.map((entry) => {
    const inherits = entry.status === 'added' || sequenceNumber === 0n;
    return {
      ...entry,
      snapshotId: entry.snapshotId ?? manifest.addedSnapshotId,
      sequenceNumber: entry.sequenceNumber ?? (inherits ? sequenceNumber : null),
      fileSequenceNumber: entry.fileSequenceNumber ?? (inherits ? sequenceNumber : null),
      dataFile: { ...entry.dataFile, specId: manifest.partitionSpecId },
    };
  });
}
