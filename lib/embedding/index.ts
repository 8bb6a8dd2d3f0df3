/**
 * The embedding backfill engine: shard plans, resumable shard runs, the vectors table, usearch indexes in the object
 * store, and the `<index>@current` alias. No Temporal here; activities/embedding-activities.ts wraps it. See
 * docs/embedding-backfill.md.
 */
export * from './errors.js';
export * from './shard-plan.js';
export * from './output-writer.js';
export * from './index-store.js';
export * from './alias-store.js';
export * from './backfill.js';
export { poolEmbedder } from './pool-embedder.js';
export * from './search.js';
