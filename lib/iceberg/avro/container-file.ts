import avro from 'avsc';
import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { InvalidValueError } from '../errors.js';
import { CorruptAvroFileError } from './errors.js';
import { avroTypeForSchema, type AvroSchema } from './schema.js';

/**
 * Avro object container files (Avro spec "Object Container Files"), bytes in and bytes out. Manifests and manifest
 * lists are such files.
 *
 * The framing (magic, header map, blocks, sync markers) is done here, synchronously, with avsc types for the
 * pieces; avsc serializes the records. avsc's own container encoder is a stream that serializes the schema from
 * its `Type`, which drops Iceberg's `field-id` attributes, and its codecs are asynchronous. Writing the header
 * ourselves puts the caller's raw schema JSON into `avro.schema` verbatim.
 */

/** Block compression. Java writes `deflate` by default; pyiceberg, Java and Spark read both. */
export type AvroCodec = 'null' | 'deflate';

/** Decompresses one block's data. */
export type AvroDecompressor = (data: Uint8Array) => Uint8Array;

export interface EncodeAvroFileOptions {
  /** The writer schema as JSON, written verbatim into the header (custom attributes such as `field-id` kept). */
  readonly schema: AvroSchema;
  /** Values to write, in the avsc representation of the schema (longs as `bigint`, bytes as `Uint8Array`). */
  readonly records: Iterable<unknown>;
  /** User metadata for the header. Keys starting with `avro.` are reserved by the Avro spec. @default {} */
  readonly metadata?: Readonly<Record<string, string>>;
  /** @default 'deflate' */
  readonly codec?: AvroCodec;
  /**
   * Uncompressed bytes after which a block is closed. Small blocks make files larger; large blocks need more
   * memory to read.
   * @default 65536
   */
  readonly blockSizeBytes?: number;
  /** The 16-byte sync marker. Only tests need to fix it. @default 16 random bytes */
  readonly syncMarker?: Uint8Array;
}

export interface DecodedAvroFile {
  /** The writer schema parsed from `avro.schema`, with every custom attribute. */
  readonly schema: AvroSchema;
  /** The header's user metadata as UTF-8 strings; `avro.schema` and `avro.codec` are left out. */
  readonly metadata: Record<string, string>;
  /** The codec named by `avro.codec` (`null` when absent). */
  readonly codec: string;
  /** The records in file order; longs are `bigint`, bytes and fixed are `Buffer`s (views into a block). */
  readonly records: unknown[];
}

export interface DecodeAvroFileOptions {
  /** Names the file in error messages, e.g. `manifest "s3://…/m0.avro"`. @default 'Avro file' */
  readonly description?: string;
  /**
   * Extra codecs by `avro.codec` name, e.g. `snappy` or `zstandard` (Node 20 has neither built in).
   * @default {} (`null` and `deflate` are always available)
   */
  readonly decompressors?: Readonly<Record<string, AvroDecompressor>>;
}

const MAGIC = Buffer.from('Obj\x01', 'latin1');
const SYNC_SIZE = 16;
const DEFAULT_BLOCK_SIZE_BYTES = 65536;

// Counts and sizes in the framing fit a JS number comfortably, so avsc's plain `long` is fine here.
const HEADER_TYPE = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: SYNC_SIZE } },
  ],
});
const BLOCK_COUNT_TYPE = avro.Type.forSchema('long');
const BLOCK_DATA_TYPE = avro.Type.forSchema('bytes');

const BUILT_IN_DECOMPRESSORS: Readonly<Record<string, AvroDecompressor>> = {
  null: (data) => data,
  deflate: (data) => inflateRawSync(data),
};

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encodes records into an Avro object container file.
 *
 * @returns a `Uint8Array` that owns its whole `ArrayBuffer` (offset 0), so `bytes.length` is the exact file size
 *   to record as `manifest_length`, and `bytes.buffer` can be written as is.
 * @throws InvalidValueError naming the record index and the path of a value that does not fit the schema.
 * @throws Error from avsc when the schema itself is not valid Avro (a programming error).
 */
export function encodeAvroFile(options: EncodeAvroFileOptions): Uint8Array {
  const codec = options.codec ?? 'deflate';
  const metadata = options.metadata ?? {};
  const reserved = Object.keys(metadata).find((key) => key.startsWith('avro.'));
  if (reserved !== undefined) {
    throw new InvalidValueError('Avro file metadata', `key "${reserved}" is reserved by the Avro spec; rename it`);
  }
  const sync = asBuffer(options.syncMarker ?? randomBytes(SYNC_SIZE));
  if (sync.length !== SYNC_SIZE) {
    throw new InvalidValueError('Avro sync marker', `expected ${SYNC_SIZE} bytes, got ${sync.length}`);
  }
  const blockSizeBytes = options.blockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES;
  const type = avroTypeForSchema(options.schema);

  const meta: Record<string, Buffer> = {
    'avro.schema': Buffer.from(JSON.stringify(options.schema), 'utf8'),
    'avro.codec': Buffer.from(codec, 'utf8'),
  };
  for (const [key, value] of Object.entries(metadata)) meta[key] = Buffer.from(value, 'utf8');
  const chunks: Buffer[] = [HEADER_TYPE.toBuffer({ magic: MAGIC, meta, sync })];

  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    if (pending.length === 0) return;
    const raw = Buffer.concat(pending, pendingBytes);
    const data = codec === 'deflate' ? deflateRawSync(raw) : raw;
    chunks.push(BLOCK_COUNT_TYPE.toBuffer(pending.length), BLOCK_DATA_TYPE.toBuffer(data), sync);
    pending = [];
    pendingBytes = 0;
  };
  let index = 0;
  for (const record of options.records) {
    const encoded = encodeRecord(type, record, index);
    pending.push(encoded);
    pendingBytes += encoded.length;
    if (pendingBytes >= blockSizeBytes) flush();
    index += 1;
  }
  flush();

  // Copy into a fresh buffer: Buffer.concat may hand out a slice of Node's shared 8 KiB pool.
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function encodeRecord(type: avro.Type, record: unknown, index: number): Buffer {
  try {
    return type.toBuffer(toAvroValue(record));
  } catch (err) {
    // avsc's own message prints the value with JSON.stringify, which fails on bigints; find the path instead.
    const problems: string[] = [];
    type.isValid(toAvroValue(record), {
      errorHook: (path: string[], value: unknown, fieldType: avro.Type) => {
        problems.push(`${path.join('.') || '(record)'} is ${describe(value)}, expected ${fieldType.typeName}`);
      },
    });
    throw new InvalidValueError(
      'Avro record',
      `record ${index} does not match the schema: ${problems.join('; ') || (err as Error).message}`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Buffer.isBuffer(value)) return `${value.length} bytes`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  return typeof value === 'object' ? Object.prototype.toString.call(value) : String(value);
}

/**
 * avsc recognises only `Buffer` for bytes and fixed; accept any `Uint8Array` (as zero-copy views). Objects and
 * arrays are copied only when something inside them changes, to keep large files cheap to write.
 */
function toAvroValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return asBuffer(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const converted = toAvroValue(item);
      if (converted !== item) (out ??= [...value])[i] = converted;
    });
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  for (const [key, field] of Object.entries(value)) {
    const converted = toAvroValue(field);
    if (converted !== field) (out ??= { ...value })[key] = converted;
  }
  return out ?? value;
}

/**
 * Decodes an Avro object container file with its own (writer) schema.
 *
 * @throws CorruptAvroFileError when the bytes are not a complete, well-formed container file, or the codec is
 *   unknown.
 */
export function decodeAvroFile(bytes: Uint8Array, options: DecodeAvroFileOptions = {}): DecodedAvroFile {
  const description = options.description ?? 'Avro file';
  const corrupt = (problem: string, cause?: unknown): never => {
    throw new CorruptAvroFileError(description, problem, cause === undefined ? undefined : { cause });
  };
  const buf = asBuffer(bytes);
  if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    corrupt('it does not start with the Avro magic bytes "Obj\\x01"');
  }
  const header = decodeAt(HEADER_TYPE, buf, 0, 'the header', corrupt);
  const { meta, sync } = header.value as { meta: Record<string, Buffer>; sync: Buffer };

  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const metadata: Record<string, string> = {};
  let schemaText: string | undefined;
  let codec = 'null';
  for (const [key, value] of Object.entries(meta)) {
    let text = '';
    try {
      text = utf8.decode(value);
    } catch (err) {
      corrupt(`header key "${key}" is not UTF-8`, err);
    }
    if (key === 'avro.schema') schemaText = text;
    else if (key === 'avro.codec') codec = text;
    else if (!key.startsWith('avro.')) metadata[key] = text;
  }
  if (schemaText === undefined) return corrupt('the header has no avro.schema');
  let schema: AvroSchema;
  let type: avro.Type;
  try {
    schema = JSON.parse(schemaText) as AvroSchema;
    type = avroTypeForSchema(schema);
  } catch (err) {
    return corrupt(`avro.schema is not a valid Avro schema (${(err as Error).message})`, err);
  }
  const decompress = options.decompressors?.[codec] ?? BUILT_IN_DECOMPRESSORS[codec];
  if (decompress === undefined) {
    corrupt(`codec "${codec}" is not supported; pass a decompressor for it in options.decompressors`);
  }

  const records: unknown[] = [];
  let pos = header.offset;
  while (pos < buf.length) {
    const count = decodeAt(BLOCK_COUNT_TYPE, buf, pos, `block at byte ${pos}`, corrupt);
    const data = decodeAt(BLOCK_DATA_TYPE, buf, count.offset, `block at byte ${pos}`, corrupt);
    const blockSync = buf.subarray(data.offset, data.offset + SYNC_SIZE);
    if (blockSync.length !== SYNC_SIZE || !blockSync.equals(sync)) {
      corrupt(`block at byte ${pos} does not end with the file's sync marker`);
    }
    let raw: Buffer = Buffer.alloc(0);
    try {
      raw = asBuffer((decompress as AvroDecompressor)(data.value as Buffer));
    } catch (err) {
      corrupt(`block at byte ${pos} does not decompress with codec "${codec}"`, err);
    }
    let recordPos = 0;
    for (let i = 0; i < (count.value as number); i += 1) {
      const record = decodeAt(type, raw, recordPos, `record ${records.length}`, corrupt);
      records.push(record.value);
      recordPos = record.offset;
    }
    if (recordPos !== raw.length) {
      corrupt(`block at byte ${pos} has ${raw.length - recordPos} bytes after its ${String(count.value)} records`);
    }
    pos = data.offset + SYNC_SIZE;
  }
  return { schema, metadata, codec, records };
}

function decodeAt(
  type: avro.Type,
  buf: Buffer,
  pos: number,
  what: string,
  corrupt: (problem: string, cause?: unknown) => never,
): { value: unknown; offset: number } {
  let result: { value: unknown; offset: number };
  try {
    result = type.decode(buf, pos);
  } catch (err) {
    return corrupt(`${what} cannot be decoded (${(err as Error).message})`, err);
  }
  if (result.offset < 0) corrupt(`${what} is truncated`);
  return result;
}
