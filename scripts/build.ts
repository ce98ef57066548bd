/**
 * Bundles the two CLIs into plain JavaScript, as they are meant to run: `node <bundle>`, no TypeScript loader
 * (tsx) in the process. That halves a process's start-up (what a restart's blackout mostly is) and saves tens of
 * MiB of resident memory. Workspace packages are bundled in; third-party packages too where the CLI is
 * `selfContained` (the gateway), else they stay imports, resolved from the package's own node_modules. `pnpm build`
 * runs it; the demo, the benchmark, `pnpm ganymede`, `pnpm gateway` and the tests build first, so a bundle is never
 * older than its sources. It also makes the embedded database's seed, a data directory initialised and migrated
 * once so that a new one needs no initdb at run time (app-ganymede's src/db/seed.ts), once per PGlite version and
 * set of migrations.
 */
import { chmod } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
// The CLIs' sources and bundles are defined once, in the test kit; its `clis` module alone, which imports nothing.
import { CLIS, REPO_ROOT } from '@ganymede/testkit/clis';
import { buildSeed } from '@ganymede/app-ganymede/seed';
import { build, type Plugin } from 'esbuild';

/** Bare imports other than the workspace's own (@ganymede/…) stay imports. */
const thirdPartyExternal: Plugin = {
  name: 'third-party-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@ganymede/') ? undefined : { path: args.path, external: true }));
  },
};

export async function buildClis(): Promise<void> {
  await Promise.all([
    buildSeed().then(
      (built) =>
        built && console.log('built the embedded database seed (initdb and the migrations, once per PGlite version and set of migrations)'),
    ),
    ...Object.values(CLIS).map(({ entry, bundle, nodeFlags, selfContained }) =>
      build({
        entryPoints: [`${REPO_ROOT}${entry}`],
        // Run as a program, node gets the CLI's flags from this line (`env -S` splits them). Bundled CommonJS
        // packages call `require` for Node's own modules, which an ES module must make for them.
        banner: {
          js: [
            nodeFlags.length ? `#!/usr/bin/env -S node ${nodeFlags.join(' ')}` : '#!/usr/bin/env node',
            ...(selfContained ? ["import { createRequire } from 'node:module';", 'const require = createRequire(import.meta.url);'] : []),
          ].join('\n'),
        },
        outfile: `${REPO_ROOT}${bundle}`,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        sourcemap: 'linked',
        plugins: selfContained ? [] : [thirdPartyExternal],
        logLevel: 'warning',
      }).then(() => chmod(`${REPO_ROOT}${bundle}`, 0o755)),
    ),
  ]);
}

/** As vitest's global setup: the end-to-end tests run the bundles. */
export const setup = buildClis;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await buildClis();
