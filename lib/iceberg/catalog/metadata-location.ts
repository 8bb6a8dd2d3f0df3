import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { CorruptMetadataError } from '../errors.js';
import type { TableMetadata } from '../metadata-json.js';

/** Table property that moves metadata files out of `<location>/metadata` (Java and pyiceberg honour it too). */
export const METADATA_PATH_PROPERTY = 'write.metadata.path';

/** The directory that holds a table's metadata files, without a trailing slash. */
export function metadataDirectory(metadata: Pick<TableMetadata, 'location' | 'properties'>): string {
  const custom = metadata.properties[METADATA_PATH_PROPERTY];
  return stripTrailingSlashes(custom !== undefined && custom !== '' ? custom : `${metadata.location}/metadata`);
}

/**
 * The version number in a metadata file name (`00012-<uuid>.metadata.json` → 12), or -1 when the name does not
 * follow the `<version>-<uuid>` convention (e.g. a Hadoop table's `v3.metadata.json`). Java's and pyiceberg's
 * catalogs parse it the same way to number the next file.
 */
export function metadataFileVersion(metadataLocation: string): number {
  const fileName = metadataLocation.slice(metadataLocation.lastIndexOf('/') + 1);
  const match = /^(\d+)-/.exec(fileName);
  if (match === null) return -1;
  const version = Number(match[1]);
  return Number.isSafeInteger(version) ? version : -1;
}

/**
 * A new metadata file location: `<metadata dir>/<version, 5 digits or more>-<random uuid>.metadata.json`. The
 * random part keeps two writers racing for the same version from overwriting each other's file.
 */
export function newMetadataFileLocation(
  metadata: Pick<TableMetadata, 'location' | 'properties'>,
  version: number,
): string {
  return `${metadataDirectory(metadata)}/${String(version).padStart(5, '0')}-${randomUUID()}.metadata.json`;
}

/**
 * The text of a metadata file. gzip-compressed files (`*.gz.metadata.json`, written by Java when
 * `write.metadata.compression-codec=gzip`) are recognised by their magic bytes and decompressed.
 * @throws CorruptMetadataError for bad gzip data or invalid UTF-8.
 */
export function decodeMetadataFile(bytes: Uint8Array, file: string): string {
  let data = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      data = gunzipSync(bytes);
    } catch (err) {
      throw new CorruptMetadataError(file, '', `not valid gzip data (${(err as Error).message})`, { cause: err });
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch (err) {
    throw new CorruptMetadataError(file, '', 'not valid UTF-8 text', { cause: err });
  }
}

function stripTrailingSlashes(uri: string): string {
  return uri.replace(/\/+$/, '');
}
