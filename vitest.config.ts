import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Each file gets its own database; files run in parallel on separate processes.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
