/**
 * Bundles the two CLIs into plain JavaScript, as they are meant to run: `node <bundle>`, no TypeScript loader
 * (tsx) in the process. That halves a process's start-up (what a restart's blackout mostly is) and saves tens of
 * MiB of resident memory. Workspace packages are bundled in; third-party packages stay imports, resolved from the
 * package's own node_modules. `pnpm build` runs it; the demo, the benchmark, `pnpm ganymede`, `pnpm gateway` and
 * the tests build first, so a bundle is never older than its sources.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Each CLI's source and its bundle. A bundle sits two folders below its package, as src/db/ does: paths the
 * code resolves from its own location (Ganymede's `migrations/`) are the same from the sources and the bundle. */
export const CLIS = {
  ganymede: { entry: 'packages/app-ganymede/src/cli.ts', bundle: 'packages/app-ganymede/dist/bin/ganymede.mjs' },
  gateway: { entry: 'packages/app-gateway/src/cli.ts', bundle: 'packages/app-gateway/dist/bin/gateway.mjs' },
} as const;

/** Bare imports other than the workspace's own (@ganymede/…) stay imports. */
const thirdPartyExternal: Plugin = {
  name: 'third-party-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@ganymede/') ? undefined : { path: args.path, external: true }));
  },
};

export async function buildClis(): Promise<void> {
  await Promise.all(
    Object.values(CLIS).map(({ entry, bundle }) =>
      build({
        entryPoints: [`${ROOT}${entry}`],
        outfile: `${ROOT}${bundle}`,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        sourcemap: 'linked',
        plugins: [thirdPartyExternal],
        logLevel: 'warning',
      }),
    ),
  );
}

/** As vitest's global setup: the end-to-end tests run the bundles. */
export const setup = buildClis;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await buildClis();
