import path from 'node:path';
import { InvalidUriError } from './errors.js';

/** The stores a URI can name. */
export type StorageScheme = 'file' | 's3';

const SCHEME_PATTERN = /^([A-Za-z][A-Za-z0-9+.-]*):/;

// Hadoop's S3 connectors name the same objects s3a:// and s3n://; Spark-written metadata may use them.
const S3_SCHEMES: ReadonlySet<string> = new Set(['s3', 's3a', 's3n']);

/**
 * Which store a URI names. A string without a scheme is a local path (see {@link toFileUri}).
 * @throws InvalidUriError for any other scheme.
 */
export function schemeOf(uri: string): StorageScheme {
  const match = SCHEME_PATTERN.exec(uri);
  // A one-letter "scheme" is a Windows drive (C:\data); treat it as a path, like Hadoop does.
  if (match === null || match[1]?.length === 1) return 'file';
  const scheme = (match[1] as string).toLowerCase();
  if (scheme === 'file') return 'file';
  if (S3_SCHEMES.has(scheme)) return 's3';
  throw new InvalidUriError(uri, `the scheme "${scheme}:" is not supported; use file:// or s3://`);
}

/**
 * The absolute local path a `file:` URI or a plain path names.
 *
 * Accepted forms: `file:///abs/path` (canonical), `file:/abs/path` (Hadoop's form), `file://localhost/abs/path`,
 * and relative forms — a plain path (`data/x`, `./x`, `/abs/x`) or `file:data/x` — which resolve against
 * `baseDir`. Percent escapes are **not** decoded: pyiceberg and Hadoop take the characters after `file://` as
 * the path, so `file:///tmp/a b` names `/tmp/a b` for every reader, while `%20` would be read literally by them.
 *
 * @throws InvalidUriError for a `file://host/…` URI naming another host.
 */
export function fileUriToPath(uri: string, baseDir: string): string {
  const match = SCHEME_PATTERN.exec(uri);
  if (match === null || match[1]?.length === 1) return path.resolve(baseDir, uri);
  let rest = uri.slice(match[0].length);
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    const host = rest.slice(2, slash === -1 ? undefined : slash);
    if (host !== '' && host !== 'localhost') {
      throw new InvalidUriError(
        uri,
        `"${host}" is read as a host name; write file:///${rest.slice(2)} for an absolute path, or a path ` +
          'without a scheme for a relative one',
      );
    }
    rest = slash === -1 ? '/' : rest.slice(slash);
  }
  if (rest.includes('\0')) throw new InvalidUriError(uri, 'a path must not contain NUL characters');
  return path.resolve(baseDir, rest);
}

/** The canonical `file:///abs/path` URI of a local path or `file:` URI; relative paths resolve against `baseDir`. */
export function toFileUri(pathOrUri: string, baseDir: string): string {
  return `file://${fileUriToPath(pathOrUri, baseDir)}`;
}

/** An S3 object location. */
export interface S3Location {
  /** The scheme as written (`s3`, `s3a` or `s3n`), so that listed URIs keep the caller's form. */
  readonly scheme: string;
  readonly bucket: string;
  /** The object key (or key prefix); empty for the whole bucket. */
  readonly key: string;
}

/**
 * Splits `s3://bucket/key`. The key is taken verbatim (no percent-decoding), since S3 keys may contain `%`.
 * @throws InvalidUriError when the bucket is missing.
 */
export function parseS3Uri(uri: string): S3Location {
  const match = /^(s3|s3a|s3n):\/\/([^/]*)\/?(.*)$/is.exec(uri);
  if (match === null || match[2] === '') {
    throw new InvalidUriError(uri, 'expected s3://bucket/key');
  }
  return { scheme: (match[1] as string).toLowerCase(), bucket: match[2] as string, key: match[3] as string };
}

/** The URI of an object. */
export function s3Uri(location: S3Location): string {
  return `${location.scheme}://${location.bucket}/${location.key}`;
}
