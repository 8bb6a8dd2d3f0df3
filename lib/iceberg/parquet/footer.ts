import { ParquetReadError } from './errors.js';
import {
  decodeStruct,
  encodeStruct,
  ThriftDecodeError,
  ThriftList,
  ThriftStruct,
  ThriftType,
  type ThriftValue,
} from './thrift.js';

/**
 * Reading, summarizing, patching and joining Parquet footers (`FileMetaData`, parquet-format `parquet.thrift`).
 * Field numbers used here:
 *
 * - FileMetaData: 1 version, 2 schema, 3 num_rows, 4 row_groups, 5 key_value_metadata, 6 created_by
 * - SchemaElement: 1 type, 2 type_length, 3 repetition_type, 4 name, 5 num_children, 6 converted_type, 7 scale,
 *   8 precision, 9 field_id, 10 logicalType
 * - RowGroup: 1 columns, 2 total_byte_size, 3 num_rows, 5 file_offset, 6 total_compressed_size, 7 ordinal
 * - ColumnChunk: 2 file_offset, 3 meta_data, 4 offset_index_offset, 5 offset_index_length, 6 column_index_offset,
 *   7 column_index_length
 * - ColumnMetaData: 1 type, 3 path_in_schema, 5 num_values, 6 total_uncompressed_size, 7 total_compressed_size,
 *   9 data_page_offset, 10 index_page_offset, 11 dictionary_page_offset, 12 statistics, 14 bloom_filter_offset
 * - Statistics: 3 null_count
 * - OffsetIndex: 1 page_locations (PageLocation: 1 offset)
 * - LogicalType (a union): 14 UUID
 */

const MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1"

/** Parquet physical types (`Type` in parquet.thrift), by number. */
export const PHYSICAL_TYPES = [
  'BOOLEAN',
  'INT32',
  'INT64',
  'INT96',
  'FLOAT',
  'DOUBLE',
  'BYTE_ARRAY',
  'FIXED_LEN_BYTE_ARRAY',
] as const;
export type PhysicalType = (typeof PHYSICAL_TYPES)[number];

/** `FieldRepetitionType`, by number. */
export const REPETITIONS = ['REQUIRED', 'OPTIONAL', 'REPEATED'] as const;
export type Repetition = (typeof REPETITIONS)[number];

/** The names of the `LogicalType` union members, by field number. */
const LOGICAL_TYPE_NAMES: Record<number, string> = {
  1: 'STRING',
  2: 'MAP',
  3: 'LIST',
  4: 'ENUM',
  5: 'DECIMAL',
  6: 'DATE',
  7: 'TIME',
  8: 'TIMESTAMP',
  10: 'INTEGER',
  11: 'UNKNOWN',
  12: 'JSON',
  13: 'BSON',
  14: 'UUID',
  15: 'FLOAT16',
};

/** One node of the Parquet schema, as a tree. */
export interface ParquetSchemaNode {
  readonly name: string;
  /** Absent for groups. */
  readonly physicalType?: PhysicalType;
  readonly typeLength?: number;
  /** Absent only for the root. */
  readonly repetition?: Repetition;
  readonly fieldId?: number;
  /** The `LogicalType` union member's name, e.g. `STRING`, `UUID`, `TIMESTAMP`. */
  readonly logicalType?: string;
  readonly convertedType?: number;
  readonly scale?: number;
  readonly precision?: number;
  readonly children: readonly ParquetSchemaNode[];
}

/** One column chunk of a row group, in leaf-column order. */
export interface ParquetColumnChunk {
  /** Names from the root, e.g. `['tags', 'list', 'element']`. */
  readonly path: readonly string[];
  readonly numValues: bigint;
  readonly nullCount?: bigint;
  readonly totalCompressedSize: bigint;
  readonly totalUncompressedSize: bigint;
  /** Where the chunk starts: its dictionary page if it has one, else its first data page. */
  readonly startOffset: bigint;
  /** `Statistics.min_value`/`max_value` (raw plain-encoded bytes), when written. */
  readonly minValue?: Uint8Array;
  readonly maxValue?: Uint8Array;
}

export interface ParquetRowGroup {
  readonly numRows: bigint;
  readonly totalCompressedSize?: bigint;
  readonly columns: readonly ParquetColumnChunk[];
}

/** A readable summary of a Parquet footer. */
export interface ParquetFooter {
  readonly numRows: bigint;
  readonly createdBy?: string;
  readonly schema: ParquetSchemaNode;
  /** Leaves of {@link schema}, depth first: the order of column chunks in each row group. */
  readonly leaves: readonly { readonly path: readonly string[]; readonly node: ParquetSchemaNode }[];
  readonly rowGroups: readonly ParquetRowGroup[];
  readonly keyValueMetadata: ReadonlyMap<string, string>;
}

/** The decoded footer and where it starts in the file. */
export interface RawFooter {
  readonly metadata: ThriftStruct;
  readonly footerStart: number;
}

/**
 * Decodes the footer of a Parquet file.
 *
 * @throws ParquetReadError when the bytes are not a Parquet file or the footer does not decode.
 */
export function readRawFooter(bytes: Uint8Array): RawFooter {
  const n = bytes.length;
  if (n < 12 || MAGIC.some((b, i) => bytes[i] !== b || bytes[n - 4 + i] !== b)) {
    throw new ParquetReadError(`the file (${n} bytes) is not Parquet: it does not start and end with "PAR1"`);
  }
  const footerLength = new DataView(bytes.buffer, bytes.byteOffset + n - 8, 4).getUint32(0, true);
  const footerStart = n - 8 - footerLength;
  if (footerStart < 4) throw new ParquetReadError(`the footer length ${footerLength} does not fit the file`);
  try {
    const { value, end } = decodeStruct(bytes.subarray(footerStart, n - 8));
    if (end !== footerLength) throw new ThriftDecodeError(`the footer ends at ${end}, not ${footerLength}`);
    return { metadata: value, footerStart };
  } catch (err) {
    if (err instanceof ThriftDecodeError) {
      throw new ParquetReadError(`the footer is damaged (${err.message})`, { cause: err });
    }
    throw err;
  }
}

/** Reads and summarizes the footer of a Parquet file (schema with field ids, row groups, column chunk sizes). */
export function readParquetFooter(bytes: Uint8Array): ParquetFooter {
  return summarizeFooter(readRawFooter(bytes).metadata);
}

function structs(list: ThriftList | undefined): ThriftStruct[] {
  return (list?.items ?? []).filter((item): item is ThriftStruct => item instanceof ThriftStruct);
}

/** Summarizes a decoded `FileMetaData`. */
export function summarizeFooter(metadata: ThriftStruct): ParquetFooter {
  const elements = structs(metadata.list(2));
  if (elements.length === 0) throw new ParquetReadError('the footer has no schema');
  let next = 0;
  const readNode = (): ParquetSchemaNode => {
    const element = elements[next++];
    if (!element) throw new ParquetReadError('the footer schema lists fewer elements than its groups claim');
    const type = element.int(1);
    const repetition = element.int(3);
    const logical = element.struct(10);
    const logicalId = logical ? [...logical.fields.keys()][0] : undefined;
    const childCount = element.int(5) ?? 0;
    const children: ParquetSchemaNode[] = [];
    for (let i = 0; i < childCount; i += 1) children.push(readNode());
    return {
      name: element.string(4) ?? '',
      physicalType: type === undefined ? undefined : PHYSICAL_TYPES[type],
      typeLength: element.int(2),
      repetition: repetition === undefined ? undefined : REPETITIONS[repetition],
      fieldId: element.int(9),
      logicalType: logicalId === undefined ? undefined : (LOGICAL_TYPE_NAMES[logicalId] ?? `#${logicalId}`),
      convertedType: element.int(6),
      scale: element.int(7),
      precision: element.int(8),
      children,
    };
  };
  const root = readNode();
  const leaves: { path: string[]; node: ParquetSchemaNode }[] = [];
  const walk = (node: ParquetSchemaNode, path: string[]): void => {
    if (node.children.length === 0 && node.physicalType !== undefined) leaves.push({ path, node });
    for (const child of node.children) walk(child, [...path, child.name]);
  };
  walk(root, []);
  const rowGroups = structs(metadata.list(4)).map((rg): ParquetRowGroup => {
    const columns = structs(rg.list(1)).map((cc): ParquetColumnChunk => {
      const md = cc.struct(3);
      if (!md) throw new ParquetReadError('a column chunk has no metadata (encrypted files are not supported)');
      const stats = md.struct(12);
      const path = (md.list(3)?.items ?? []).map((p) => new TextDecoder().decode(p as Uint8Array));
      const dictionaryOffset = md.long(11);
      const dataOffset = md.long(9) ?? 0n;
      return {
        path,
        numValues: md.long(5) ?? 0n,
        nullCount: stats?.long(3),
        totalCompressedSize: md.long(7) ?? 0n,
        totalUncompressedSize: md.long(6) ?? 0n,
        startOffset: dictionaryOffset !== undefined && dictionaryOffset < dataOffset ? dictionaryOffset : dataOffset,
        minValue: stats?.get(6) as Uint8Array | undefined,
        maxValue: stats?.get(5) as Uint8Array | undefined,
      };
    });
    return { numRows: rg.long(3) ?? 0n, totalCompressedSize: rg.long(6), columns };
  });
  const keyValueMetadata = new Map<string, string>();
  for (const kv of structs(metadata.list(5))) keyValueMetadata.set(kv.string(1) ?? '', kv.string(2) ?? '');
  return {
    numRows: metadata.long(3) ?? 0n,
    createdBy: metadata.string(6),
    schema: root,
    leaves,
    rowGroups,
    keyValueMetadata,
  };
}

/**
 * Marks schema elements as `UUID` (an empty `UUIDType` in the `LogicalType` union), which arrow-rs cannot
 * write from Arrow: the spec maps Iceberg `uuid` to FIXED_LEN_BYTE_ARRAY(16) with this annotation.
 *
 * @param isUuid decides per leaf, given its path from the root.
 */
export function annotateUuidColumns(metadata: ThriftStruct, isUuid: (path: readonly string[]) => boolean): void {
  const elements = structs(metadata.list(2));
  let next = 0;
  const visit = (path: string[]): void => {
    const element = elements[next++] as ThriftStruct;
    const childCount = element.int(5) ?? 0;
    if (childCount === 0 && element.int(1) === PHYSICAL_TYPES.indexOf('FIXED_LEN_BYTE_ARRAY') && isUuid(path)) {
      element.set(10, ThriftType.STRUCT, new ThriftStruct().set(14, ThriftType.STRUCT, new ThriftStruct()));
    }
    for (let i = 0; i < childCount; i += 1) {
      const child = elements[next];
      visit([...path, child?.string(4) ?? '']);
    }
  };
  visit([]);
}

function shiftLong(struct: ThriftStruct | undefined, id: number, by: bigint): void {
  const v = struct?.long(id);
  if (struct && v !== undefined) struct.set(id, ThriftType.I64, v + by);
}

/**
 * Joins Parquet files with the same schema, written from consecutive slices of the same rows, into one file whose
 * row groups are theirs in order. Data pages are copied as they are; every absolute offset in the footers and in
 * the offset indexes is moved to the pages' new place; column indexes (which hold no offsets) are copied. The
 * first part's key-value metadata and `created_by` are kept.
 *
 * @param patch changes the joined `FileMetaData` before it is encoded (e.g. {@link annotateUuidColumns}).
 */
export function joinParquetParts(parts: readonly Uint8Array[], patch?: (metadata: ThriftStruct) => void): Uint8Array {
  const footers = parts.map(readRawFooter);
  const first = footers[0];
  if (!first) throw new Error('joinParquetParts needs at least one part');
  const pieces: Uint8Array[] = [Uint8Array.from(MAGIC)];
  let position = 4;
  const rowGroups: ThriftStruct[] = [];
  // Page indexes go after all row groups, like parquet-rs and parquet-java write them.
  const columnIndexes: { chunk: ThriftStruct; bytes: Uint8Array }[] = [];
  const offsetIndexes: { chunk: ThriftStruct; bytes: Uint8Array }[] = [];
  let numRows = 0n;
  parts.forEach((bytes, p) => {
    const footer = footers[p] as RawFooter;
    const groups = structs(footer.metadata.list(4));
    let dataEnd = footer.footerStart;
    for (const rg of groups) {
      for (const cc of structs(rg.list(1))) {
        for (const id of [4, 6]) {
          const at = cc.long(id);
          if (at !== undefined && at < BigInt(dataEnd)) dataEnd = Number(at);
        }
        if (cc.struct(3)?.long(14) !== undefined) {
          throw new Error('joinParquetParts cannot move bloom filters; write the parts without them');
        }
      }
    }
    const shift = BigInt(position - 4);
    pieces.push(bytes.subarray(4, dataEnd));
    position += dataEnd - 4;
    for (const rg of groups) {
      shiftLong(rg, 5, shift);
      for (const cc of structs(rg.list(1))) {
        shiftLong(cc, 2, shift);
        const md = cc.struct(3);
        for (const id of [9, 10, 11]) shiftLong(md, id, shift);
        const ciAt = cc.long(6);
        const ciLength = cc.int(7);
        if (ciAt !== undefined && ciLength !== undefined) {
          columnIndexes.push({ chunk: cc, bytes: bytes.subarray(Number(ciAt), Number(ciAt) + ciLength) });
        }
        const oiAt = cc.long(4);
        const oiLength = cc.int(5);
        if (oiAt !== undefined && oiLength !== undefined) {
          const { value: offsetIndex } = decodeStruct(bytes.subarray(Number(oiAt), Number(oiAt) + oiLength));
          for (const page of structs(offsetIndex.list(1))) shiftLong(page, 1, shift);
          offsetIndexes.push({ chunk: cc, bytes: encodeStruct(offsetIndex) });
        }
      }
      rg.set(7, ThriftType.I16, rowGroups.length);
      rowGroups.push(rg);
    }
    numRows += footer.metadata.long(3) ?? 0n;
  });
  for (const { chunk, bytes } of columnIndexes) {
    chunk.set(6, ThriftType.I64, BigInt(position));
    chunk.set(7, ThriftType.I32, bytes.length);
    pieces.push(bytes);
    position += bytes.length;
  }
  for (const { chunk, bytes } of offsetIndexes) {
    chunk.set(4, ThriftType.I64, BigInt(position));
    chunk.set(5, ThriftType.I32, bytes.length);
    pieces.push(bytes);
    position += bytes.length;
  }
  const metadata = first.metadata;
  metadata.set(3, ThriftType.I64, numRows);
  metadata.set(4, ThriftType.LIST, new ThriftList(ThriftType.STRUCT, rowGroups as ThriftValue[]));
  patch?.(metadata);
  const footer = encodeStruct(metadata);
  const tail = new Uint8Array(8);
  new DataView(tail.buffer).setUint32(0, footer.length, true);
  tail.set(MAGIC, 4);
  pieces.push(footer, tail);
  const out = new Uint8Array(position + footer.length + 8);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
