import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CompositeFileIO,
  FileNotFoundError,
  InvalidUriError,
  LocalFileIO,
  S3FileIO,
  fileIOFor,
  fileUriToPath,
  isStorageError,
  parseS3Uri,
  schemeOf,
  toFileUri,
  type FileInfo,
} from '../../../lib/storage/index.js';

let dir: string;
let io: LocalFileIO;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-fileio-'));
  io = new LocalFileIO({ baseDir: dir });
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function collect(files: AsyncIterable<FileInfo>): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for await (const f of files) out.push(f);
  return out;
}

async function streamText(stream: AsyncIterable<Buffer | Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts).toString('utf8');
}

describe('file URIs', () => {
  it('resolves the absolute, Hadoop and relative forms to one absolute path', () => {
    expect(fileUriToPath('file:///data/t/x.json', '/base')).toBe('/data/t/x.json');
    expect(fileUriToPath('file:/data/t/x.json', '/base')).toBe('/data/t/x.json');
    expect(fileUriToPath('file://localhost/data/x', '/base')).toBe('/data/x');
    expect(fileUriToPath('rel/x.json', '/base')).toBe('/base/rel/x.json');
    expect(fileUriToPath('./rel/../x.json', '/base')).toBe('/base/x.json');
    expect(fileUriToPath('file:rel/x.json', '/base')).toBe('/base/rel/x.json');
    expect(toFileUri('wh', '/base')).toBe('file:///base/wh');
  });

  it('keeps percent signs and spaces literal, as pyiceberg and Hadoop read them', () => {
    expect(fileUriToPath('file:///tmp/a b/%20', '/')).toBe('/tmp/a b/%20');
  });

  it('refuses a host name, since file://data/x almost always meant a path', () => {
    expect(() => fileUriToPath('file://data/x', '/base')).toThrow(InvalidUriError);
    expect(() => fileUriToPath('file://data/x', '/base')).toThrow(/file:\/\/\/data\/x/);
  });

  it('picks the store by scheme and refuses others', () => {
    expect(schemeOf('file:///x')).toBe('file');
    expect(schemeOf('relative/x')).toBe('file');
    expect(schemeOf('s3://b/k')).toBe('s3');
    expect(schemeOf('s3a://b/k')).toBe('s3');
    expect(() => schemeOf('gs://b/k')).toThrow(/"gs:" is not supported/);
    expect(parseS3Uri('s3://bucket/a/b%2Fc')).toEqual({ scheme: 's3', bucket: 'bucket', key: 'a/b%2Fc' });
    expect(() => parseS3Uri('s3:///key')).toThrow(InvalidUriError);
  });
});

describe('LocalFileIO', () => {
  it('writes, reads and overwrites, creating parent directories', async () => {
    const uri = `file://${dir}/a/b/c.json`;
    await io.write(uri, '{"v":1}');
    expect(text(await io.read(uri))).toBe('{"v":1}');
    await io.write(uri, new Uint8Array([1, 2, 3]));
    expect([...(await io.read(uri))]).toEqual([1, 2, 3]);
    expect(await io.exists(uri)).toBe(true);
    expect((await io.stat(uri)).size).toBe(3);
    // The atomic write left no temporary file behind.
    expect(readdirSync(path.join(dir, 'a/b'))).toEqual(['c.json']);
  });

  it('resolves relative paths against baseDir', async () => {
    await io.write('rel/x.txt', 'hello');
    expect(readFileSync(path.join(dir, 'rel/x.txt'), 'utf8')).toBe('hello');
    expect(text(await io.read(`file:rel/x.txt`))).toBe('hello');
  });

  it('throws a typed not-found error naming the URI', async () => {
    const uri = `file://${dir}/missing/metadata.json`;
    const err = await io.read(uri).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(isStorageError(err) && err.failureType).toBe('NotFound');
    expect((err as Error).message).toContain(uri);
    await expect(io.readRange(uri, { offset: 0, length: 1 })).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(io.openReadStream(uri)).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(io.stat(uri)).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(io.read(`file://${dir}`)).rejects.toBeInstanceOf(FileNotFoundError);
    expect(await io.exists(uri)).toBe(false);
  });

  it('writeIfAbsent lets exactly one of several racing writers win and keeps its bytes', async () => {
    const uri = `file://${dir}/t/metadata/00001.metadata.json`;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => io.writeIfAbsent(uri, `writer-${i}`)));
    expect(results.filter((won) => won)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect(text(await io.read(uri))).toBe(`writer-${winner}`);
    expect(await io.writeIfAbsent(uri, 'late')).toBe(false);
    expect(text(await io.read(uri))).toBe(`writer-${winner}`);
    expect(readdirSync(path.join(dir, 't/metadata'))).toEqual(['00001.metadata.json']);
  });

  it('reads byte ranges and streams, clamped at the end of the file', async () => {
    const uri = `file://${dir}/data.bin`;
    await io.write(uri, '0123456789');
    expect(text(await io.readRange(uri, { offset: 2, length: 3 }))).toBe('234');
    expect(text(await io.readRange(uri, { offset: 8, length: 10 }))).toBe('89');
    expect(text(await io.readRange(uri, { offset: 20, length: 5 }))).toBe('');
    expect(await streamText(await io.openReadStream(uri))).toBe('0123456789');
    expect(await streamText(await io.openReadStream(uri, { offset: 4, length: 2 }))).toBe('45');
    expect(await streamText(await io.openReadStream(uri, { offset: 4, length: 0 }))).toBe('');
    await expect(io.readRange(uri, { offset: -1, length: 1 })).rejects.toThrow(RangeError);
  });

  it('writes a stream of chunks atomically and reports its size', async () => {
    const uri = `file://${dir}/big/file.bin`;
    async function* chunks() {
      for (let i = 0; i < 100; i++) yield new Uint8Array(1000).fill(i);
    }
    expect(await io.writeStream(uri, chunks())).toBe(100_000);
    const bytes = await io.read(uri);
    expect(bytes.byteLength).toBe(100_000);
    expect(bytes[99_999]).toBe(99);
    async function* failing() {
      yield new Uint8Array(10);
      throw new Error('source broke');
    }
    await expect(io.writeStream(uri, failing())).rejects.toThrow('source broke');
    // The failed write neither replaced the file nor left a temporary file.
    expect((await io.read(uri)).byteLength).toBe(100_000);
    expect(readdirSync(path.join(dir, 'big'))).toEqual(['file.bin']);
  });

  it('lists recursively with string-prefix semantics and canonical URIs', async () => {
    for (const name of [
      'wh/db/orders/metadata/v1.json',
      'wh/db/orders/data/a.parquet',
      'wh/db/orders_v2/x',
      'wh/db/z',
    ]) {
      await io.write(`file://${dir}/${name}`, 'x');
    }
    const uris = async (prefix: string) => (await collect(io.list(prefix))).map((f) => f.uri).sort();
    expect(await uris(`file://${dir}/wh/db/orders/`)).toEqual([
      `file://${dir}/wh/db/orders/data/a.parquet`,
      `file://${dir}/wh/db/orders/metadata/v1.json`,
    ]);
    expect(await uris(`file://${dir}/wh/db/orders`)).toEqual([
      `file://${dir}/wh/db/orders/data/a.parquet`,
      `file://${dir}/wh/db/orders/metadata/v1.json`,
      `file://${dir}/wh/db/orders_v2/x`,
    ]);
    // The relative form lists the same files, returned as absolute URIs.
    expect(await uris('wh/db/orders/metadata/')).toEqual([`file://${dir}/wh/db/orders/metadata/v1.json`]);
    expect(await uris(`file://${dir}/nothing-here/`)).toEqual([]);
    const [info] = await collect(io.list(`file://${dir}/wh/db/z`));
    expect(info?.size).toBe(1);
    expect(info?.lastModified).toBeInstanceOf(Date);
  });

  it('does not list temporary files of in-flight writes or follow symlinks', async () => {
    await io.write(`file://${dir}/t/real`, 'x');
    writeFileSync(path.join(dir, 't', '.real.abc.sluice-tmp'), 'partial');
    symlinkSync(path.join(dir, 't'), path.join(dir, 'loop'));
    expect((await collect(io.list(`file://${dir}/`))).map((f) => f.uri)).toEqual([`file://${dir}/t/real`]);
  });

  it('deletes idempotently, one or many', async () => {
    const uris = Array.from({ length: 40 }, (_, i) => `file://${dir}/d/${i}.txt`);
    for (const uri of uris) await io.write(uri, 'x');
    await io.delete(uris[0] as string);
    expect(await io.exists(uris[0] as string)).toBe(false);
    await io.delete(uris[0] as string);
    await io.deleteMany([...uris, `file://${dir}/d/never-existed`]);
    expect(await collect(io.list(`file://${dir}/d/`))).toEqual([]);
  });
});

describe('CompositeFileIO', () => {
  it('routes by scheme and refuses S3 without settings', async () => {
    const composite = new CompositeFileIO({ file: { baseDir: dir } });
    await composite.write('x.txt', 'local');
    expect(text(await composite.read(`file://${dir}/x.txt`))).toBe('local');
    expect(() => composite.ioFor('s3://bucket/key')).toThrow(/no S3 settings/);
    expect(() => new CompositeFileIO({ file: false }).ioFor('/tmp/x')).toThrow(InvalidUriError);
    expect(fileIOFor('file:///x')).toBeInstanceOf(LocalFileIO);
    const s3 = fileIOFor('s3://b/k', { s3: { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' } });
    expect(s3).toBeInstanceOf(S3FileIO);
    await s3.close();
    await composite.close();
  });

  it('rejects an S3 URI without a key before sending anything', async () => {
    const s3 = new S3FileIO({ region: 'us-east-1', endpoint: 'http://127.0.0.1:1' });
    await expect(s3.read('s3://bucket/')).rejects.toBeInstanceOf(InvalidUriError);
    await s3.close();
  });
});
