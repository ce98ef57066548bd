/**
 * The two CLIs: each one's source and the bundle `pnpm build` (scripts/build.ts) writes, defined once for the
 * build, the tests, the demo and the benchmark. A bundle sits two folders below its package, as src/db/ does:
 * paths the code resolves from its own location (Ganymede's `migrations/`) are the same from the sources and
 * the bundle. No imports beyond Node's: the build script loads this module alone.
 */
import { fileURLToPath } from 'node:url';

/** The repository's root, with a trailing slash. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Each CLI's source (`entry`) and bundle, relative to the repository's root. */
export const CLIS = {
  ganymede: { entry: 'packages/app-ganymede/src/cli.ts', bundle: 'packages/app-ganymede/dist/bin/ganymede.mjs' },
  gateway: { entry: 'packages/app-gateway/src/cli.ts', bundle: 'packages/app-gateway/dist/bin/gateway.mjs' },
} as const;

/** The bundles' absolute paths: what `node` runs. */
export const GANYMEDE_CLI = `${REPO_ROOT}${CLIS.ganymede.bundle}`;
export const GATEWAY_CLI = `${REPO_ROOT}${CLIS.gateway.bundle}`;
