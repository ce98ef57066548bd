/**
 * The two CLIs: each one's source and the bundle `pnpm build` (scripts/build.ts) writes, defined once for the
 * build, the tests, the demo and the benchmark. A bundle sits two folders below its package, as src/db/ does:
 * paths the code resolves from its own location (Ganymede's `migrations/`) are the same from the sources and
 * the bundle. No imports beyond Node's: the build script loads this module alone.
 */
import { fileURLToPath } from 'node:url';

/** The repository's root, with a trailing slash. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Each CLI's source (`entry`) and bundle, relative to the repository's root, and the flags node runs it with: the
 * build writes them into the bundle's first line (`#!/usr/bin/env -S node …`), and the tests run it with them.
 * Ganymede's young generation is capped at 2 MiB a semi-space (V8's default grows it to 16 MiB under load and keeps
 * it): a storm then leaves it about 30 MiB smaller, at no cost in calls per second (BENCHMARKS.md). The gateway's
 * WebAssembly (undici's HTTP parser, for its few calls to Ganymede) is compiled lazily by V8's baseline compiler
 * alone: the optimising compile ran on a background thread after every start, about 200 ms of CPU, half again a
 * boot's own, which a restart storm pays 50 times over (BENCHMARKS.md).
 *
 * `selfContained`: third-party packages are bundled in too. A gateway's start is what every hot restart pays, and
 * resolving and loading some 400 modules from node_modules was 40% of its CPU (670 → about 400 ms, BENCHMARKS.md).
 * Ganymede keeps them as imports: PGlite loads its WebAssembly and data files from its own package's folder.
 */
export const CLIS = {
  ganymede: {
    entry: 'packages/app-ganymede/src/cli.ts',
    bundle: 'packages/app-ganymede/dist/bin/ganymede.mjs',
    nodeFlags: ['--max-semi-space-size=2'],
    selfContained: false,
  },
  gateway: {
    entry: 'packages/app-gateway/src/cli.ts',
    bundle: 'packages/app-gateway/dist/bin/gateway.mjs',
    nodeFlags: ['--liftoff-only', '--wasm-lazy-compilation'],
    selfContained: true,
  },
} as const;

/** The node flags a bundle runs with (`CLIS`), by its absolute path. */
export const nodeFlagsOf = (bundle: string): readonly string[] =>
  Object.values(CLIS).find((cli) => `${REPO_ROOT}${cli.bundle}` === bundle)?.nodeFlags ?? [];

/** The bundles' absolute paths: what `node` runs. */
export const GANYMEDE_CLI = `${REPO_ROOT}${CLIS.ganymede.bundle}`;
export const GATEWAY_CLI = `${REPO_ROOT}${CLIS.gateway.bundle}`;
