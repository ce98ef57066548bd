/** Attack suite, a second owner: the embedded database's directory has one owner at a time (in process; the
 * two-process case, and a restart after SIGKILL, are in test/e2e/attack-second-owner.test.ts). */
import { mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockDataDir } from '../src/db/dir-lock.js';
import { DataDirLockedError } from '../src/errors.js';
import { openDatabase } from '../src/db/open.js';

const freshDir = () => mkdtemp(join(tmpdir(), 'ganymede-lock-'));

describe('the data directory lock', () => {
  it("refuses a second holder, naming the first one's pid, until it is released", async () => {
    const dir = await freshDir();
    const first = await lockDataDir(dir);
    const refused = await lockDataDir(dir).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DataDirLockedError);
    expect(refused).toMatchObject({ code: 'DATA_DIR_LOCKED', holderPid: process.pid });
    expect(String((refused as Error).message)).toContain(`pid ${process.pid}`);
    await first.release();
    const second = await lockDataDir(dir);
    await second.release();
  });

  it('every path to the directory names one lock (relative, through a symlink)', async () => {
    const dir = await freshDir();
    const link = `${dir}-link`;
    await symlink(dir, link);
    const held = await lockDataDir(dir);
    await expect(lockDataDir(link)).rejects.toBeInstanceOf(DataDirLockedError);
    await expect(lockDataDir(join(dir, '..', dir.split('/').pop()!))).rejects.toBeInstanceOf(DataDirLockedError);
    await held.release();
  });

  it('opening the embedded database takes it, closing gives it back', async () => {
    const dataDir = await freshDir();
    const db = await openDatabase({ dataDir });
    await expect(openDatabase({ dataDir })).rejects.toBeInstanceOf(DataDirLockedError);
    await db.close();
    const again = await openDatabase({ dataDir });
    await again.close();
  });
});
