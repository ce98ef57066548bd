/**
 * A new embedded database without initdb at run time. PGlite creates a new data directory by running initdb,
 * which costs 2–3 s and 750+ MB resident; reopening one costs about 0.5 s and 320 MB. So `pnpm build` runs
 * initdb once (`buildSeed`) and keeps the closed data directory in the package's dist/, and a new data directory
 * is a file-by-file copy of it (about 0.1 s, no memory to speak of), which PGlite then opens as it reopens any.
 *
 * The seed is PGlite's initdb output alone, with no schema: Ganymede's migrations run at every start, as they
 * always did, so a seed can never hold a schema older (or newer) than the code. It is rebuilt when the PGlite
 * version changes. Why a directory and not `dumpDataDir`'s tarball loaded with `loadDataDir`: PGlite unpacks that
 * through its virtual file system, about 0.5 s and 70 MB more than a copy.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

/** Beside the bundle (dist/bin/) and two folders above src/db/: the same path from either. */
const SEED_DIR = fileURLToPath(new URL('../../dist/pglite-seed/', import.meta.url));
/** The initialised data directory. */
export const SEED_PGDATA = join(SEED_DIR, 'pgdata');
/** The PGlite version that made it. */
const SEED_VERSION = join(SEED_DIR, 'pglite-version');

async function pgliteVersion(): Promise<string> {
  // The package exports no package.json: it sits one folder above the entry point (dist/index.cjs).
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  return (JSON.parse(await readFile(join(entry, '../../package.json'), 'utf8')) as { version: string }).version;
}

/** Builds the seed unless one made by this PGlite version is there; says whether it built one. */
export async function buildSeed(): Promise<boolean> {
  const version = await pgliteVersion();
  if ((await readFile(SEED_VERSION, 'utf8').catch(() => undefined)) === version && existsSync(SEED_PGDATA)) return false;
  const draft = `${SEED_DIR}draft-${process.pid}`;
  await rm(SEED_DIR, { recursive: true, force: true });
  await mkdir(SEED_DIR, { recursive: true });
  const db = await PGlite.create(draft);
  await db.close();
  await rename(draft, SEED_PGDATA);
  await writeFile(SEED_VERSION, version);
  return true;
}

function copyTree(from: string, to: string): void {
  mkdirSync(to, { mode: 0o700 });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory()) copyTree(join(from, entry.name), join(to, entry.name));
    else copyFileSync(join(from, entry.name), join(to, entry.name));
  }
}

/**
 * Creates `pgdata` as a copy of the seed; false when there is no seed (then PGlite runs initdb). The caller holds
 * the data directory's lock. The copy is made beside `pgdata` and renamed into place, so a start killed halfway
 * leaves no half data directory: the next start discards the draft and copies again. Synchronous on purpose:
 * nothing else runs before the database is open, and about a thousand small files copy faster this way.
 */
export async function seedPgdata(pgdata: string): Promise<boolean> {
  if (!existsSync(SEED_PGDATA)) return false;
  const draft = `${pgdata}.seeding`;
  await rm(draft, { recursive: true, force: true });
  copyTree(SEED_PGDATA, draft);
  await rename(draft, pgdata);
  return true;
}
