/**
 * Storage: one {@link FileIO} interface over `file://` and `s3://`, with atomic writes. No Temporal imports and
 * no environment reading: callers pass every setting. See lib/storage/README.md.
 */
export * from './errors.js';
export * from './file-io.js';
export * from './uri.js';
export * from './local-file-io.js';
export * from './s3-file-io.js';
export * from './composite-file-io.js';
