import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['contracts/test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // The replica tests need a shared PostgreSQL (PGlite is one process's own database): left out on PGlite
    // rather than reported as skipped.
    exclude: process.env.GANYMEDE_TEST_DATABASE === 'postgres' ? [] : ['test/replicas/**'],
    // The CLIs' bundles, which the end-to-end tests run; and with GANYMEDE_TEST_DATABASE=postgres: check the
    // server, name the run's schemas, drop them after.
    globalSetup: ['scripts/build.ts', 'packages/app-ganymede/test/global-setup.ts'],
    // Generous: tests await events, so a limit only matters when something is broken (or the machine is busy).
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
