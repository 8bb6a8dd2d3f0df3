/**
 * The Iceberg v2 table engine. No Temporal imports: activities call these functions with plain inputs and map
 * the typed errors (see {@link ICEBERG_ERROR_KINDS}) to failures. See docs/iceberg-engine.md for the plan.
 */
export * from './errors.js';
export * from './types.js';
export * from './values.js';
export * from './transforms.js';
export * from './partition-spec.js';
export * from './sort-order.js';
export * from './schema-evolution.js';
export * from './metadata-json.js';
export * from './data-file.js';
export * from './table-update.js';
export * from './bounds.js';
export * from './manifest.js';
export * from './manifest-list.js';
export * from './append.js';
export * from './scan.js';
export * from './upsert.js';
export * from './overwrite.js';
export * from './schema-update.js';
export * from './maintenance/index.js';
export * from './arrow-scan.js';
export * as expressions from './expressions.js';
