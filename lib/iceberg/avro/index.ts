/**
 * Avro object container files for Iceberg manifests and manifest lists: exact 64-bit longs and headers that keep
 * Iceberg's `field-id` attributes. Pure: bytes in, bytes out.
 */
export * from './container-file.js';
export * from './errors.js';
export * from './iceberg-types.js';
export * from './schema.js';
