import { defineConfig } from 'vitest/config';

// Interop tests: pyiceberg, DuckDB and Spark read (and write) Iceberg tables through scripts/interop/. They share
// the integration fixtures (PostgreSQL for the catalog, s3proxy for the s3:// warehouse) started once by globalSetup.
// Files run one at a time: each Spark call starts a JVM, and the machine has two cores.
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/fixtures/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
