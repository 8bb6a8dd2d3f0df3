import type { Readable } from 'node:stream';

/** One file found by {@link FileIO.list}. */
export interface FileInfo {
  /** The file's absolute URI, in the canonical form of its scheme (`file:///abs/path`, `s3://bucket/key`). */
  readonly uri: string;
  /** Size in bytes. */
  readonly size: number;
  readonly lastModified: Date;
}

/** A byte range of a file: `length` bytes starting at `offset`. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * Reads and writes whole files by URI, over one or more stores (`file://`, `s3://`). Every implementation
 * throws the typed errors of `./errors.ts`: a missing file is a {@link FileNotFoundError} naming the URI.
 *
 * Writes are atomic: a reader sees either the old contents, nothing, or the whole new file, never a partial one.
 * Iceberg relies on this for metadata files, which readers open as soon as the catalog points at them.
 */
export interface FileIO {
  /** The whole file. @throws FileNotFoundError when it does not exist. */
  read(uri: string): Promise<Uint8Array>;

  /**
   * `range.length` bytes from `range.offset` (fewer when the file ends first). For Parquet footers and row
   * groups, which need a few ranges of a large file.
   * @throws FileNotFoundError when the file does not exist.
   */
  readRange(uri: string, range: ByteRange): Promise<Uint8Array>;

  /**
   * A stream of the file's bytes, optionally only `range`, for files too large to hold in memory.
   * @throws FileNotFoundError when the file does not exist (before any byte is streamed).
   */
  openReadStream(uri: string, range?: ByteRange): Promise<Readable>;

  /** Size and modification time. @throws FileNotFoundError when the file does not exist. */
  stat(uri: string): Promise<FileInfo>;

  /** Whether the file exists. */
  exists(uri: string): Promise<boolean>;

  /** Creates or replaces the file atomically, creating parent directories where the store has them. */
  write(uri: string, bytes: Uint8Array | string): Promise<void>;

  /**
   * Creates the file only if nothing exists at `uri`, atomically: of several concurrent callers exactly one gets
   * `true`, and the others get `false` and leave the winner's contents untouched.
   */
  writeIfAbsent(uri: string, bytes: Uint8Array | string): Promise<boolean>;

  /**
   * Creates or replaces the file from a stream of chunks without holding it all in memory (multipart upload on
   * S3). Atomic like {@link FileIO.write}: nothing is visible until the last chunk is stored.
   * @returns the number of bytes written.
   */
  writeStream(uri: string, chunks: AsyncIterable<Uint8Array>): Promise<number>;

  /** Deletes the file. Deleting a missing file is not an error, as on S3, so that cleanups can be retried. */
  delete(uri: string): Promise<void>;

  /** Deletes many files, in batches where the store allows; missing files are ignored. */
  deleteMany(uris: Iterable<string>): Promise<void>;

  /**
   * Every file whose URI starts with `prefix`, recursively. The match is on the string, as on S3:
   * `…/orders` also matches `…/orders_v2/x`; end the prefix with `/` to list one directory. Order is unspecified.
   */
  list(prefix: string): AsyncIterable<FileInfo>;

  /** Releases connections. The FileIO must not be used afterwards. */
  close(): Promise<void>;
}

/** Text as UTF-8 bytes; bytes unchanged. */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}
