import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['contracts/test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // GANYMEDE_TEST_DATABASE=postgres: check the server, name the run's schemas, drop them after.
    globalSetup: ['packages/app-ganymede/test/global-setup.ts'],
    // Generous: tests await events, so a limit only matters when something is broken (or the machine is busy).
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
