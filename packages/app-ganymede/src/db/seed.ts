/**
 * A new embedded database without initdb at run time. PGlite creates a new data directory by running initdb,
 * which costs 2–3 s and 750+ MB resident; reopening one costs about 0.5 s and 320 MB. So `pnpm build` runs
 * initdb once (`buildSeed`) and keeps the closed data directory in the package's dist/, and a new data directory
 * is a file-by-file copy of it (39 MB in about a thousand files: 0.3 to 1.5 s here, no memory to speak of), which
 * PGlite then opens as it reopens any.
 *
 * The seed holds Ganymede's migrations too: applying the six of them on a first start cost about a second. It is
 * rebuilt when the PGlite version or any migration file changes (its key is both), so it never holds a schema the
 * code does not know; migrations still run at every start, so a seed older than the code (a build skipped) is
 * brought up to date like any data directory. Why a directory and not `dumpDataDir`'s tarball loaded with
 * `loadDataDir`: PGlite unpacks that through its virtual file system, about 0.5 s and 70 MB more than a copy.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { loadMigrations, migrate } from './migrate.js';
import { pgliteDatabase } from './pglite.js';

/** Beside the bundle (dist/bin/) and two folders above src/db/: the same path from either. */
const SEED_DIR = fileURLToPath(new URL('../../dist/pglite-seed/', import.meta.url));
/** The initialised data directory. */
export const SEED_PGDATA = join(SEED_DIR, 'pgdata');
/** What it was made from: the PGlite version and the migrations. */
const SEED_KEY = join(SEED_DIR, 'key');

async function pgliteVersion(): Promise<string> {
  // The package exports no package.json: it sits one folder above the entry point (dist/index.cjs).
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  return (JSON.parse(await readFile(join(entry, '../../package.json'), 'utf8')) as { version: string }).version;
}

/** The seed's key: the PGlite version, and a digest of every migration's name and text. */
async function seedKey(): Promise<string> {
  const digest = createHash('sha256');
  for (const m of await loadMigrations()) digest.update(`${m.name}\0${m.sql}\0`);
  return `pglite ${await pgliteVersion()}; migrations ${digest.digest('hex').slice(0, 16)}`;
}

/** Builds the seed unless one with this key is there; says whether it built one. */
export async function buildSeed(): Promise<boolean> {
  const key = await seedKey();
  if ((await readFile(SEED_KEY, 'utf8').catch(() => undefined)) === key && existsSync(SEED_PGDATA)) return false;
  const draft = `${SEED_DIR}draft-${process.pid}`;
  await rm(SEED_DIR, { recursive: true, force: true });
  await mkdir(SEED_DIR, { recursive: true });
  const db = pgliteDatabase(await PGlite.create(draft));
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  await rename(draft, SEED_PGDATA);
  await writeFile(SEED_KEY, key);
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
