import { defineConfig } from 'vitest/config';

// One Temporal dev server, one PostgreSQL cluster and one S3 server for the whole run (globalSetup), shared by
// forked test processes. Files run one at a time: the machine has two cores and the tests kill and restart
// processes, which must not race each other.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    globalSetup: ['test/fixtures/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
