/**
 * A new data directory is a copy of the seed `pnpm build` ships (no initdb at run time); an existing one is
 * reopened. Observable in two ways: the cluster's system identifier (the first 8 bytes of global/pg_control, drawn
 * at random by initdb) is the seed's, and Ganymede's log line says which way it opened the directory.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type GanymedeProcess, startGanymedeProcess, stopProcess, tempDir } from '@ganymede/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { KEY_FILE } from '../src/auth.js';
import { loadMigrations, schemaVersion } from '../src/db/migrate.js';
import { openPglite } from '../src/db/pglite.js';
import { SEED_PGDATA } from '../src/db/seed.js';

const systemIdentifier = async (pgdata: string) => (await readFile(join(pgdata, 'global/pg_control'))).subarray(0, 8).toString('hex');

describe('a new embedded data directory', () => {
  it('is copied from the seed, then reopened', async () => {
    const dataDir = await tempDir('ganymede-seed');
    const seeded = await openPglite(dataDir);
    expect(seeded.origin).toBe('seeded');
    await seeded.close();
    expect(await systemIdentifier(join(dataDir, 'pgdata'))).toBe(await systemIdentifier(SEED_PGDATA));

    const reopened = await openPglite(dataDir);
    expect(reopened.origin).toBe('reopened');
    await reopened.close();
  });

  it('discards a copy left halfway by a start that died, and copies again', async () => {
    const dataDir = await tempDir('ganymede-seed');
    await mkdir(join(dataDir, 'pgdata.seeding/base'), { recursive: true });
    await writeFile(join(dataDir, 'pgdata.seeding/base/torn'), 'half a file');
    const db = await openPglite(dataDir);
    expect(db.origin).toBe('seeded');
    await db.close();
    await expect(stat(join(dataDir, 'pgdata.seeding'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(dataDir, 'pgdata/base/torn'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('ganymede serve on a new data directory', () => {
  let g: GanymedeProcess | undefined;
  afterEach(async () => {
    if (g) await stopProcess(g.proc);
    g = undefined;
  });

  it('says it created it from the seed, migrates it, keeps its signing key; a restart reopens it', async () => {
    g = await startGanymedeProcess({ embedded: true });
    const { dataDir } = g;
    expect(await g.proc.waitForLog((l) => l.msg === 'data directory created from the shipped seed (no initdb)')).toMatchObject({
      origin: 'seeded',
    });
    // The seed holds the schema: a first start applies no migration.
    await g.proc.waitForLog((l) => String(l.msg).startsWith('Server listening'));
    expect(g.proc.logs.some((l) => l.msg === 'migrations applied')).toBe(false);
    const key = await readFile(join(dataDir, KEY_FILE), 'utf8');
    expect(await stopProcess(g.proc)).toMatchObject({ code: 0 });

    g = await startGanymedeProcess({ embedded: true, dataDir });
    expect(await g.proc.waitForLog((l) => l.msg === 'data directory reopened')).toMatchObject({ origin: 'reopened' });
    expect(g.proc.logs.some((l) => l.msg === 'migrations applied')).toBe(false);
    expect(await readFile(join(dataDir, KEY_FILE), 'utf8')).toBe(key);
    await stopProcess(g.proc);
    g = undefined;

    const db = await openPglite(dataDir);
    expect(await schemaVersion(db)).toBe((await loadMigrations()).at(-1)!.version);
    await db.close();
  });
});
