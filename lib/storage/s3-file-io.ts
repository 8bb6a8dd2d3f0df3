import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import {
  FileNotFoundError,
  InvalidUriError,
  StorageAccessDeniedError,
  StorageError,
  StorageUnavailableError,
} from './errors.js';
import { toBytes, type ByteRange, type FileInfo, type FileIO } from './file-io.js';
import { parseS3Uri, s3Uri, type S3Location } from './uri.js';

/** Static credentials for S3. */
export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** For temporary (STS) credentials. */
  readonly sessionToken?: string;
}

/** Options of {@link S3FileIO}. The library reads no environment variables: the caller passes everything. */
export interface S3FileIOOptions {
  /**
   * The S3 endpoint, e.g. `http://127.0.0.1:9000` for an S3-compatible server.
   * @default AWS's endpoint for `region`
   */
  readonly endpoint?: string;
  /** The region requests are signed for. S3-compatible servers usually accept any value, e.g. `us-east-1`. */
  readonly region: string;
  /**
   * Static credentials.
   * @default the AWS SDK's default provider chain (which does read the environment and instance metadata; pass
   *   credentials explicitly to avoid that)
   */
  readonly credentials?: S3Credentials;
  /**
   * Address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`. S3-compatible servers on
   * loopback need path style; AWS accepts both.
   * @default true
   */
  readonly forcePathStyle?: boolean;
  /**
   * How many times the SDK tries a request (with its own backoff) before an error reaches the caller.
   * @default 3
   */
  readonly maxAttempts?: number;
  /**
   * Size of each part of a multipart upload in {@link S3FileIO.writeStream}; S3 requires at least 5 MiB for all
   * parts but the last. Streams smaller than one part are stored with a single PutObject.
   * @default 8 MiB
   */
  readonly multipartPartSize?: number;
  /** A ready client to use instead of building one from the options above; {@link S3FileIO.close} leaves it open. */
  readonly client?: S3Client;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
// DeleteObjects accepts at most 1000 keys per request.
const DELETE_BATCH = 1000;
// AWS answers 409 ConditionalRequestConflict while another conditional write to the same key is in flight.
const CONDITIONAL_CONFLICT_RETRIES = 3;

/**
 * {@link FileIO} over S3 and S3-compatible servers (`s3://bucket/key`; `s3a://` and `s3n://` name the same
 * objects). PutObject is atomic, so `write` is one request; `writeIfAbsent` sends `If-None-Match: *`, which S3 turns
 * into a 412 when the key exists. Checksums are computed and validated only when an operation requires them, since
 * many S3-compatible servers reject the SDK's default CRC headers.
 */
export class S3FileIO implements FileIO {
  readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly partSize: number;

  constructor(options: S3FileIOOptions) {
    this.partSize = options.multipartPartSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) {
      throw new RangeError(`multipartPartSize must be at least ${MIN_PART_SIZE} bytes (5 MiB), got ${this.partSize}`);
    }
    this.ownsClient = options.client === undefined;
    this.client =
      options.client ??
      new S3Client({
        region: options.region,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
        forcePathStyle: options.forcePathStyle ?? true,
        maxAttempts: options.maxAttempts ?? 3,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
  }

  async read(uri: string): Promise<Uint8Array> {
    const { bucket, key } = parseObjectUri(uri);
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return await bodyBytes(response.Body, uri);
    } catch (err) {
      return rethrow(err, uri, 'reading');
    }
  }

  async readRange(uri: string, range: ByteRange): Promise<Uint8Array> {
    checkRange(uri, range);
    const { bucket, key } = parseObjectUri(uri);
    if (range.length === 0) {
      // An empty range cannot be expressed as an HTTP Range; still fail for a missing file, like a real read.
      await this.stat(uri);
      return new Uint8Array(0);
    }
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, Range: httpRange(range) }),
      );
      return await bodyBytes(response.Body, uri);
    } catch (err) {
      // 416: the range starts at or after the end of the file; a local read returns no bytes there too.
      if (httpStatus(err) === 416) return new Uint8Array(0);
      return rethrow(err, uri, 'reading');
    }
  }

  async openReadStream(uri: string, range?: ByteRange): Promise<Readable> {
    if (range !== undefined) checkRange(uri, range);
    const { bucket, key } = parseObjectUri(uri);
    if (range !== undefined && range.length === 0) {
      await this.stat(uri);
      return Readable.from([]);
    }
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: httpRange(range) }),
        }),
      );
      if (!(response.Body instanceof Readable)) {
        throw new StorageUnavailableError(uri, 'reading', 'the S3 response has no body stream');
      }
      return response.Body;
    } catch (err) {
      if (range !== undefined && httpStatus(err) === 416) return Readable.from([]);
      return rethrow(err, uri, 'reading');
    }
  }

  async stat(uri: string): Promise<FileInfo> {
    const { bucket, key } = parseObjectUri(uri);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { uri, size: head.ContentLength ?? 0, lastModified: head.LastModified ?? new Date(0) };
    } catch (err) {
      return rethrow(err, uri, 'reading');
    }
  }

  async exists(uri: string): Promise<boolean> {
    try {
      await this.stat(uri);
      return true;
    } catch (err) {
      // HEAD answers carry no error body, so a missing bucket also reads as "no such file" here.
      if (err instanceof FileNotFoundError) return false;
      throw err;
    }
  }

  async write(uri: string, data: Uint8Array | string): Promise<void> {
    const { bucket, key } = parseObjectUri(uri);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: toBytes(data) }));
    } catch (err) {
      rethrow(err, uri, 'writing');
    }
  }

  async writeIfAbsent(uri: string, data: Uint8Array | string): Promise<boolean> {
    const { bucket, key } = parseObjectUri(uri);
    const body = toBytes(data);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' }));
        return true;
      } catch (err) {
        const status = httpStatus(err);
        if (status === 412) return false;
        if (status === 409 && attempt < CONDITIONAL_CONFLICT_RETRIES) {
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
          continue;
        }
        return rethrow(err, uri, 'writing');
      }
    }
  }

  async writeStream(uri: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const { bucket, key } = parseObjectUri(uri);
    const parts = partsOf(chunks, this.partSize);
    const first = await parts.next();
    if (first.done === true) {
      await this.write(uri, new Uint8Array(0));
      return 0;
    }
    const second = await parts.next();
    if (second.done === true) {
      await this.write(uri, first.value);
      return first.value.byteLength;
    }
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new StorageUnavailableError(uri, 'writing', 'S3 returned no upload id');
      const completed: CompletedPart[] = [];
      let size = 0;
      const uploadPart = async (bytes: Uint8Array): Promise<void> => {
        const partNumber = completed.length + 1;
        const uploaded = await this.client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: bytes }),
        );
        completed.push({ PartNumber: partNumber, ETag: uploaded.ETag });
        size += bytes.byteLength;
      };
      await uploadPart(first.value);
      await uploadPart(second.value);
      for (let part = await parts.next(); part.done !== true; part = await parts.next()) await uploadPart(part.value);
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: completed },
        }),
      );
      return size;
    } catch (err) {
      if (uploadId !== undefined) {
        // Best effort: an unfinished upload's parts cost storage until aborted (or a lifecycle rule removes them).
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      }
      return rethrow(err, uri, 'writing');
    }
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = parseObjectUri(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      rethrow(err, uri, 'deleting');
    }
  }

  async deleteMany(uris: Iterable<string>): Promise<void> {
    const byBucket = new Map<string, { uri: string; key: string }[]>();
    for (const uri of uris) {
      const { bucket, key } = parseObjectUri(uri);
      const list = byBucket.get(bucket) ?? [];
      list.push({ uri, key });
      byBucket.set(bucket, list);
    }
    for (const [bucket, objects] of byBucket) {
      for (let i = 0; i < objects.length; i += DELETE_BATCH) {
        const batch = objects.slice(i, i + DELETE_BATCH);
        const first = batch[0]?.uri ?? `s3://${bucket}/`;
        let errors;
        try {
          const response = await this.client.send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: batch.map((o) => ({ Key: o.key })), Quiet: true },
            }),
          );
          errors = response.Errors ?? [];
        } catch (err) {
          return rethrow(err, first, 'deleting');
        }
        const failed = errors.filter((e) => e.Code !== 'NoSuchKey');
        if (failed.length > 0) {
          const sample = failed
            .slice(0, 3)
            .map((e) => `${e.Key ?? '?'}: ${e.Code ?? '?'} ${e.Message ?? ''}`.trim())
            .join('; ');
          const uri = `s3://${bucket}/${failed[0]?.Key ?? ''}`;
          const detail = `${failed.length} of ${batch.length} objects were not deleted: ${sample}`;
          throw failed.some((e) => e.Code === 'AccessDenied')
            ? new StorageAccessDeniedError(uri, 'deleting', detail)
            : new StorageUnavailableError(uri, 'deleting', detail);
        }
      }
    }
  }

  async *list(prefix: string): AsyncIterable<FileInfo> {
    const location = parseS3Uri(prefix);
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: location.bucket,
            Prefix: location.key === '' ? undefined : location.key,
            ContinuationToken: continuationToken,
          }),
        );
      } catch (err) {
        return rethrow(err, prefix, 'listing');
      }
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield {
          uri: s3Uri({ ...location, key: object.Key }),
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        };
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }
}

function parseObjectUri(uri: string): S3Location {
  const location = parseS3Uri(uri);
  if (location.key === '' || location.key.endsWith('/')) {
    throw new InvalidUriError(uri, 'expected an object key after the bucket, e.g. s3://bucket/path/file.json');
  }
  return location;
}

function checkRange(uri: string, range: ByteRange): void {
  const valid =
    Number.isSafeInteger(range.offset) && range.offset >= 0 && Number.isSafeInteger(range.length) && range.length >= 0;
  if (!valid) throw new RangeError(`invalid byte range ${JSON.stringify(range)} for "${uri}"`);
}

function httpRange(range: ByteRange): string {
  return `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

async function bodyBytes(body: unknown, uri: string): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  const withMixin = body as { transformToByteArray?: () => Promise<Uint8Array> };
  if (typeof withMixin.transformToByteArray !== 'function') {
    throw new StorageUnavailableError(uri, 'reading', 'the S3 response body cannot be read');
  }
  return withMixin.transformToByteArray();
}

/** Regroups a stream of arbitrary chunks into parts of exactly `partSize` bytes (the last may be smaller). */
async function* partsOf(chunks: AsyncIterable<Uint8Array>, partSize: number): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(partSize);
  let filled = 0;
  for await (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const take = Math.min(partSize - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === partSize) {
        yield buffer;
        buffer = new Uint8Array(partSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function httpStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as SdkError).$metadata?.httpStatusCode : undefined;
}

function errorName(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const e = err as SdkError;
  return e.Code ?? e.name ?? e.code ?? '';
}

const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'TimeoutError',
  'RequestTimeout',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
]);

/** Maps an AWS SDK error to the typed storage errors. */
function rethrow(err: unknown, uri: string, operation: string): never {
  if (err instanceof StorageError) throw err;
  const status = httpStatus(err);
  const name = errorName(err);
  const code = typeof err === 'object' && err !== null ? ((err as SdkError).code ?? '') : '';
  const detail = `${name || 'error'}${status === undefined ? '' : ` (HTTP ${status})`}: ${
    err instanceof Error ? err.message : String(err)
  }`;
  if (name === 'NoSuchBucket') {
    throw new FileNotFoundError(uri, `the bucket ${parseS3Uri(uri).bucket} does not exist`, { cause: err });
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    throw new FileNotFoundError(uri, 'no such object', { cause: err });
  }
  if (name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || status === 403) {
    throw new StorageAccessDeniedError(uri, operation, detail, { cause: err });
  }
  if ((status !== undefined && status >= 500) || NETWORK_CODES.has(name) || NETWORK_CODES.has(code)) {
    throw new StorageUnavailableError(uri, operation, detail, { cause: err });
  }
  throw err;
}
