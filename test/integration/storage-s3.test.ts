import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CompositeFileIO,
  FileNotFoundError,
  S3FileIO,
  StorageAccessDeniedError,
  StorageUnavailableError,
  type FileInfo,
} from '../../lib/storage/index.js';

// Against the real s3proxy started by globalSetup; a missing server fails the run (inject throws), never skips.
const s3 = inject('s3');
const bucket = `sluice-fileio-${randomUUID().slice(0, 8)}`;
const base = `s3://${bucket}/t-${Date.now()}`;
let io: S3FileIO;

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function collect(files: AsyncIterable<FileInfo>): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for await (const f of files) out.push(f);
  return out;
}

beforeAll(async () => {
  io = new S3FileIO({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  await io.client.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  await io?.close();
});

describe('S3FileIO against s3proxy', () => {
  it('writes, overwrites and reads objects', async () => {
    const uri = `${base}/db/orders/metadata/00000-a.metadata.json`;
    await io.write(uri, '{"v":1}');
    expect(text(await io.read(uri))).toBe('{"v":1}');
    await io.write(uri, '{"v":2}');
    expect(text(await io.read(uri))).toBe('{"v":2}');
    expect(await io.exists(uri)).toBe(true);
    const info = await io.stat(uri);
    expect(info.size).toBe(7);
    expect(info.lastModified.getTime()).toBeGreaterThan(Date.now() - 600_000);
  });

  it('throws a typed not-found error naming the URI for missing objects and buckets', async () => {
    const uri = `${base}/missing.json`;
    const err = await io.read(uri).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect((err as FileNotFoundError).failureType).toBe('NotFound');
    expect((err as Error).message).toContain(uri);
    await expect(io.stat(uri)).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(io.readRange(uri, { offset: 0, length: 4 })).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(io.openReadStream(uri)).rejects.toBeInstanceOf(FileNotFoundError);
    expect(await io.exists(uri)).toBe(false);
    const noBucket = `s3://no-such-bucket-${randomUUID().slice(0, 8)}/x.json`;
    await expect(io.read(noBucket)).rejects.toThrow(/bucket no-such-bucket-.* does not exist/);
  });

  it('writeIfAbsent: the first writer wins, a racing or later one gets false and changes nothing', async () => {
    const uri = `${base}/race/v1.metadata.json`;
    expect(await io.writeIfAbsent(uri, 'first')).toBe(true);
    expect(await io.writeIfAbsent(uri, 'second')).toBe(false);
    expect(text(await io.read(uri))).toBe('first');

    const raced = `${base}/race/v2.metadata.json`;
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => io.writeIfAbsent(raced, `writer-${i}`)));
    expect(results.filter((won) => won)).toHaveLength(1);
    expect(text(await io.read(raced))).toBe(`writer-${results.indexOf(true)}`);
  });

  it('reads byte ranges and streams', async () => {
    const uri = `${base}/ranges/data.bin`;
    await io.write(uri, '0123456789');
    expect(text(await io.readRange(uri, { offset: 2, length: 3 }))).toBe('234');
    expect(text(await io.readRange(uri, { offset: 8, length: 10 }))).toBe('89');
    expect(text(await io.readRange(uri, { offset: 20, length: 5 }))).toBe('');
    expect(text(await io.readRange(uri, { offset: 3, length: 0 }))).toBe('');
    const parts: Buffer[] = [];
    for await (const chunk of await io.openReadStream(uri, { offset: 5, length: 3 })) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).toString()).toBe('567');
  });

  it('uploads a multi-part stream and reads it back intact', async () => {
    const uri = `${base}/big/part.bin`;
    const chunkSize = 1024 * 1024;
    async function* chunks() {
      // 11 MiB in 1 MiB chunks: two 5 MiB parts and a 1 MiB tail.
      for (let i = 0; i < 11; i++) yield new Uint8Array(chunkSize).fill(i);
    }
    const small = new S3FileIO({
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      multipartPartSize: 5 * chunkSize,
    });
    try {
      expect(await small.writeStream(uri, chunks())).toBe(11 * chunkSize);
    } finally {
      await small.close();
    }
    expect((await io.stat(uri)).size).toBe(11 * chunkSize);
    const tail = await io.readRange(uri, { offset: 10 * chunkSize - 1, length: 2 });
    expect([...tail]).toEqual([9, 10]);
    expect(await io.writeStream(`${base}/big/small.bin`, chunks())).toBe(11 * chunkSize);
  });

  it('lists recursively by prefix, across pages', async () => {
    const prefix = `${base}/list`;
    const names = ['db/orders/metadata/v1.json', 'db/orders/data/a.parquet', 'db/orders_v2/x', 'db/z'];
    for (const name of names) await io.write(`${prefix}/${name}`, 'xy');
    const uris = async (p: string) => (await collect(io.list(p))).map((f) => f.uri).sort();
    expect(await uris(`${prefix}/db/orders/`)).toEqual([
      `${prefix}/db/orders/data/a.parquet`,
      `${prefix}/db/orders/metadata/v1.json`,
    ]);
    expect(await uris(`${prefix}/db/orders`)).toHaveLength(3);
    expect(await uris(`${prefix}/none/`)).toEqual([]);
    const [info] = await collect(io.list(`${prefix}/db/z`));
    expect(info?.size).toBe(2);

    // More than one ListObjectsV2 page (1000 keys).
    const many = Array.from({ length: 1005 }, (_, i) => `${prefix}/many/${String(i).padStart(4, '0')}`);
    await Promise.all(many.slice(0, 500).map((u) => io.write(u, '')));
    await Promise.all(many.slice(500).map((u) => io.write(u, '')));
    expect(await uris(`${prefix}/many/`)).toEqual(many);

    // deleteMany batches, and ignores keys that do not exist.
    await io.deleteMany([...many, `${prefix}/many/never-existed`]);
    expect(await uris(`${prefix}/many/`)).toEqual([]);
  });

  it('deletes idempotently', async () => {
    const uri = `${base}/del/x.json`;
    await io.write(uri, 'x');
    await io.delete(uri);
    expect(await io.exists(uri)).toBe(false);
    await io.delete(uri);
  });

  it('routes s3:// URIs through CompositeFileIO', async () => {
    const composite = new CompositeFileIO({
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
    });
    try {
      await composite.write(`${base}/composite.txt`, 'via composite');
      expect(text(await io.read(`${base}/composite.txt`))).toBe('via composite');
    } finally {
      await composite.close();
    }
  });

  it('maps bad credentials and an unreachable endpoint to typed errors', async () => {
    const wrongKey = new S3FileIO({
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'wrong-secret' },
    });
    const nowhere = new S3FileIO({
      endpoint: 'http://127.0.0.1:1',
      region: s3.region,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
      maxAttempts: 1,
    });
    try {
      await expect(wrongKey.read(`${base}/db/orders/metadata/00000-a.metadata.json`)).rejects.toBeInstanceOf(
        StorageAccessDeniedError,
      );
      const err = await nowhere.read(`${base}/x`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect((err as StorageUnavailableError).failureType).toBe('ServiceUnavailable');
    } finally {
      await wrongKey.close();
      await nowhere.close();
    }
  });
});
