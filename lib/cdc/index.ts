/**
 * The CDC engine: PostgreSQL logical replication (pgoutput) and Debezium change files into per-key upserts for the
 * Iceberg engine. No Temporal imports: activities call these functions with plain inputs and map the typed errors
 * (see {@link CDC_ERROR_KINDS}) to failures. See docs/cdc-engine.md.
 */
export * from './errors.js';
export * from './lsn.js';
export * from './pg-types.js';
export * from './source-schema.js';
export * from './envelope.js';
export * from './quarantine.js';
export * from './slot.js';
export * from './pgoutput-reader.js';
export * from './debezium-values.js';
export * from './debezium-files.js';
export * from './collapse.js';
export * from './file-source.js';
export * from './crash-points.js';
export * from './schema-drift.js';
export * from './quarantine-store.js';
