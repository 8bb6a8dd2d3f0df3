import { randomBytes } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileNotFoundError, StorageAccessDeniedError, StorageError, StorageUnavailableError } from './errors.js';
import { toBytes, type ByteRange, type FileInfo, type FileIO } from './file-io.js';
import { fileUriToPath } from './uri.js';

/** Options of {@link LocalFileIO}. */
export interface LocalFileIOOptions {
  /**
   * The directory that relative paths (`data/x`, `file:data/x`) resolve against. Absolute URIs ignore it.
   * @default process.cwd() at construction
   */
  readonly baseDir?: string;
}

// Temporary files of in-flight atomic writes. `list` hides them, so that no reader (or orphan-file cleanup) picks
// up a half-written file; they sit next to the target because rename(2) is atomic only within one file system.
const TEMP_SUFFIX = '.sluice-tmp';

/**
 * {@link FileIO} over the local file system (`file://` URIs and plain paths). URIs are resolved as described in
 * {@link fileUriToPath}; listed files are returned as canonical `file:///abs/path` URIs.
 *
 * `write` writes a temporary file in the target's directory, fsyncs it and renames it over the target.
 * `writeIfAbsent` writes the temporary file the same way and then hard-links it to the target, which fails when
 * the target exists, so the winner's file appears complete or not at all. On file systems without hard links it
 * falls back to an exclusive create (`O_EXCL`), where a reader may briefly see a partial file.
 */
export class LocalFileIO implements FileIO {
  private readonly baseDir: string;

  constructor(options: LocalFileIOOptions = {}) {
    this.baseDir = path.resolve(options.baseDir ?? process.cwd());
  }

  /** The absolute path a URI names. */
  pathOf(uri: string): string {
    return fileUriToPath(uri, this.baseDir);
  }

  async read(uri: string): Promise<Uint8Array> {
    const file = this.pathOf(uri);
    const handle = await open(file, 'r').catch((err: unknown) => rethrow(err, uri, 'reading'));
    try {
      return new Uint8Array(await handle.readFile());
    } catch (err) {
      return rethrow(err, uri, 'reading');
    } finally {
      await handle.close();
    }
  }

  async readRange(uri: string, range: ByteRange): Promise<Uint8Array> {
    checkRange(uri, range);
    const handle = await open(this.pathOf(uri), 'r').catch((err: unknown) => rethrow(err, uri, 'reading'));
    try {
      const buffer = new Uint8Array(range.length);
      let filled = 0;
      while (filled < range.length) {
        const { bytesRead } = await handle.read(buffer, filled, range.length - filled, range.offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    } catch (err) {
      return rethrow(err, uri, 'reading');
    } finally {
      await handle.close();
    }
  }

  async openReadStream(uri: string, range?: ByteRange): Promise<Readable> {
    if (range !== undefined) checkRange(uri, range);
    // Opening first turns a missing file into a typed error here rather than an 'error' event mid-stream.
    const handle = await open(this.pathOf(uri), 'r').catch((err: unknown) => rethrow(err, uri, 'reading'));
    if (range !== undefined && range.length === 0) {
      await handle.close();
      return Readable.from([]);
    }
    return createReadStream('', {
      fd: handle,
      start: range?.offset,
      end: range === undefined ? undefined : range.offset + range.length - 1,
    });
  }

  async stat(uri: string): Promise<FileInfo> {
    const file = this.pathOf(uri);
    const info = await stat(file).catch((err: unknown) => rethrow(err, uri, 'reading'));
    if (!info.isFile()) throw new FileNotFoundError(uri, 'it is a directory, not a file');
    return { uri: `file://${file}`, size: info.size, lastModified: info.mtime };
  }

  async exists(uri: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(uri))).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      return rethrow(err, uri, 'checking');
    }
  }

  async write(uri: string, data: Uint8Array | string): Promise<void> {
    const target = this.pathOf(uri);
    const temp = await this.writeTemp(uri, target, [toBytes(data)]);
    await rename(temp, target).catch(async (err: unknown) => {
      await rm(temp, { force: true });
      return rethrow(err, uri, 'writing');
    });
  }

  async writeStream(uri: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const target = this.pathOf(uri);
    let size = 0;
    const temp = await this.writeTemp(uri, target, chunks, (n) => (size += n));
    await rename(temp, target).catch(async (err: unknown) => {
      await rm(temp, { force: true });
      return rethrow(err, uri, 'writing');
    });
    return size;
  }

  async writeIfAbsent(uri: string, data: Uint8Array | string): Promise<boolean> {
    const target = this.pathOf(uri);
    const bytes = toBytes(data);
    const temp = await this.writeTemp(uri, target, [bytes]);
    try {
      await link(temp, target);
      return true;
    } catch (err) {
      if (errorCode(err) === 'EEXIST') return false;
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV'].includes(errorCode(err) ?? '')) {
        return rethrow(err, uri, 'writing');
      }
    } finally {
      await rm(temp, { force: true });
    }
    return this.createExclusive(uri, target, bytes);
  }

  async delete(uri: string): Promise<void> {
    const file = this.pathOf(uri);
    try {
      await unlink(file);
    } catch (err) {
      if (isNotFound(err)) return;
      rethrow(err, uri, 'deleting');
    }
  }

  async deleteMany(uris: Iterable<string>): Promise<void> {
    // Local unlinks are cheap; a small pool keeps a purge of thousands of files from opening them all at once.
    const queue = [...uris];
    const workers = Array.from({ length: Math.min(16, queue.length) }, async () => {
      for (let uri = queue.shift(); uri !== undefined; uri = queue.shift()) await this.delete(uri);
    });
    await Promise.all(workers);
  }

  async *list(prefix: string): AsyncIterable<FileInfo> {
    const prefixPath = this.pathOf(prefix);
    // path.resolve drops a trailing slash; keep it, since "dir/" must not match "dir2/x".
    const wantsDirectory = /[/\\]$/.test(prefix) && !prefixPath.endsWith(path.sep);
    const match = wantsDirectory ? prefixPath + path.sep : prefixPath;
    const start = match.endsWith(path.sep) ? match.slice(0, -1) || path.sep : path.dirname(match);
    yield* this.walk(prefix, start, match);
  }

  async close(): Promise<void> {}

  private async *walk(prefix: string, dir: string, match: string): AsyncIterable<FileInfo> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      // A prefix whose directory does not exist simply has no files, as on S3.
      if (isNotFound(err) || errorCode(err) === 'ENOTDIR') return;
      return rethrow(err, prefix, 'listing');
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        // Descend only where files under this directory can still match the prefix.
        if (full.startsWith(match) || match.startsWith(full + path.sep)) yield* this.walk(prefix, full, match);
      } else if (entry.isFile() && full.startsWith(match) && !entry.name.endsWith(TEMP_SUFFIX)) {
        const info = await lstat(full).catch(() => undefined);
        // The file may have been deleted between readdir and lstat; it is then simply not listed.
        if (info !== undefined) yield { uri: `file://${full}`, size: info.size, lastModified: info.mtime };
      }
    }
  }

  /** Writes `chunks` to a fsynced temporary file next to `target` and returns its path. */
  private async writeTemp(
    uri: string,
    target: string,
    chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    onChunk?: (bytes: number) => void,
  ): Promise<string> {
    const dir = path.dirname(target);
    await mkdir(dir, { recursive: true }).catch((err: unknown) => rethrow(err, uri, 'writing'));
    const temp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    const handle = await open(temp, 'wx').catch((err: unknown) => rethrow(err, uri, 'writing'));
    try {
      for await (const chunk of chunks) {
        await handle.write(chunk);
        onChunk?.(chunk.byteLength);
      }
      // Without fsync a crash after the rename can leave an empty file under the final name.
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(temp, { force: true });
      return rethrow(err, uri, 'writing');
    }
    await handle.close();
    return temp;
  }

  private async createExclusive(uri: string, target: string, bytes: Uint8Array): Promise<boolean> {
    let handle;
    try {
      handle = await open(target, 'wx');
    } catch (err) {
      if (errorCode(err) === 'EEXIST') return false;
      return rethrow(err, uri, 'writing');
    }
    try {
      await handle.write(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return true;
  }
}

function checkRange(uri: string, range: ByteRange): void {
  if (!Number.isSafeInteger(range.offset) || range.offset < 0 || !Number.isSafeInteger(range.length)) {
    throw new RangeError(`invalid byte range ${JSON.stringify(range)} for "${uri}"`);
  }
  if (range.length < 0) throw new RangeError(`invalid byte range ${JSON.stringify(range)} for "${uri}"`);
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function isNotFound(err: unknown): boolean {
  return errorCode(err) === 'ENOENT';
}

/** Maps a Node file-system error to the typed storage errors. */
function rethrow(err: unknown, uri: string, operation: string): never {
  if (err instanceof StorageError) throw err;
  const code = errorCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      throw new FileNotFoundError(uri, 'no such file or directory', { cause: err });
    case 'EISDIR':
      throw new FileNotFoundError(uri, 'it is a directory, not a file', { cause: err });
    case 'EACCES':
    case 'EPERM':
      throw new StorageAccessDeniedError(uri, operation, detail, { cause: err });
    case 'EIO':
    case 'EAGAIN':
    case 'EMFILE':
    case 'ENFILE':
    case 'ENOSPC':
    case 'ESTALE':
      throw new StorageUnavailableError(uri, operation, detail, { cause: err });
    default:
      throw err;
  }
}
