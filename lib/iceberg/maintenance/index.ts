/**
 * Table maintenance for the Iceberg engine: compaction, snapshot expiry, orphan-file removal and manifest
 * rewrites. Each takes `(catalog, io, table, options)` and returns a plain summary; commits go through the
 * catalog's compare-and-swap retry loop and re-validate against the fresh metadata on every attempt. No Temporal
 * imports: activities map the typed errors ({@link MAINTENANCE_ERROR_KINDS}) to failures.
 */
export * from './errors.js';
export { type MaintenanceCatalog, GC_ENABLED_PROPERTY } from './table-files.js';
export * from './compact.js';
export * from './expire-snapshots.js';
export * from './remove-orphan-files.js';
export * from './rewrite-manifests.js';
