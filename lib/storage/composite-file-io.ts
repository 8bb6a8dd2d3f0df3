import type { Readable } from 'node:stream';
import { InvalidUriError } from './errors.js';
import type { ByteRange, FileInfo, FileIO } from './file-io.js';
import { LocalFileIO, type LocalFileIOOptions } from './local-file-io.js';
import { S3FileIO, type S3FileIOOptions } from './s3-file-io.js';
import { schemeOf, type StorageScheme } from './uri.js';

/** Options of {@link CompositeFileIO} and {@link fileIOFor}: one entry per store the caller wants to reach. */
export interface FileIOOptions {
  /**
   * Local files (`file://` URIs and plain paths).
   * @default enabled, with relative paths resolved against `process.cwd()`
   */
  readonly file?: LocalFileIOOptions | false;
  /**
   * S3 (`s3://`, `s3a://`, `s3n://`). The client is created on first use.
   * @default not configured: S3 URIs are refused with an {@link InvalidUriError}
   */
  readonly s3?: S3FileIOOptions;
}

/**
 * One {@link FileIO} for every configured store: each call goes to the store its URI names. Use it where a table's
 * files may sit on several stores, or where the store is only known from a URI in metadata.
 */
export class CompositeFileIO implements FileIO {
  private local: LocalFileIO | undefined;
  private s3: S3FileIO | undefined;

  constructor(private readonly options: FileIOOptions = {}) {}

  /** The FileIO that handles `uri`. @throws InvalidUriError for an unsupported or unconfigured scheme. */
  ioFor(uri: string): FileIO {
    return this.forScheme(schemeOf(uri), uri);
  }

  read(uri: string): Promise<Uint8Array> {
    return this.ioFor(uri).read(uri);
  }

  readRange(uri: string, range: ByteRange): Promise<Uint8Array> {
    return this.ioFor(uri).readRange(uri, range);
  }

  openReadStream(uri: string, range?: ByteRange): Promise<Readable> {
    return this.ioFor(uri).openReadStream(uri, range);
  }

  stat(uri: string): Promise<FileInfo> {
    return this.ioFor(uri).stat(uri);
  }

  exists(uri: string): Promise<boolean> {
    return this.ioFor(uri).exists(uri);
  }

  write(uri: string, bytes: Uint8Array | string): Promise<void> {
    return this.ioFor(uri).write(uri, bytes);
  }

  writeIfAbsent(uri: string, bytes: Uint8Array | string): Promise<boolean> {
    return this.ioFor(uri).writeIfAbsent(uri, bytes);
  }

  writeStream(uri: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    return this.ioFor(uri).writeStream(uri, chunks);
  }

  delete(uri: string): Promise<void> {
    return this.ioFor(uri).delete(uri);
  }

  async deleteMany(uris: Iterable<string>): Promise<void> {
    // Group first so that S3 still gets its 1000-key batches when local and S3 URIs are mixed.
    const groups = new Map<FileIO, string[]>();
    for (const uri of uris) {
      const io = this.ioFor(uri);
      const group = groups.get(io) ?? [];
      group.push(uri);
      groups.set(io, group);
    }
    for (const [io, group] of groups) await io.deleteMany(group);
  }

  list(prefix: string): AsyncIterable<FileInfo> {
    return this.ioFor(prefix).list(prefix);
  }

  async close(): Promise<void> {
    await Promise.all([this.local?.close(), this.s3?.close()]);
  }

  private forScheme(scheme: StorageScheme, uri: string): FileIO {
    switch (scheme) {
      case 'file':
        if (this.options.file === false) throw new InvalidUriError(uri, 'local files are disabled for this FileIO');
        this.local ??= new LocalFileIO(this.options.file ?? {});
        return this.local;
      case 's3':
        if (this.options.s3 === undefined) {
          throw new InvalidUriError(uri, 'no S3 settings were given; pass s3: { endpoint, region, credentials }');
        }
        this.s3 ??= new S3FileIO(this.options.s3);
        return this.s3;
    }
  }
}

/**
 * A FileIO for the store `uri` names (`file://`, a plain path, or `s3://`), built from `options`. Prefer one
 * {@link CompositeFileIO} per process when URIs of several stores are handled, so that S3 connections are shared.
 * @throws InvalidUriError for an unsupported scheme, or S3 without `options.s3`.
 */
export function fileIOFor(uri: string, options: FileIOOptions = {}): FileIO {
  return new CompositeFileIO(options).ioFor(uri);
}
