/**
 * One owner per data directory. PGlite has no lock of its own: two servers on one directory each work on their
 * own copy in memory and overwrite each other's files, so acknowledged writes are lost and one gateway can be
 * allocated twice.
 *
 * Why a socket and not a pid file: Node has no flock, and taking over a pid file left by a dead holder is a
 * read-check-replace race (two starters both find the holder dead, both take over), with pid reuse on top.
 * Binding a name in Linux's abstract socket namespace is atomic and exclusive, and the kernel undoes it when the
 * process dies, however it dies (SIGKILL included), so nothing stale is ever left behind. The name comes from the
 * directory's device and inode, so every path to it (relative, through a symlink) names the same lock. The holder
 * answers a connection with its pid, so a refusal can name it.
 *
 * Limits, by choice: the abstract namespace belongs to one network namespace (two containers sharing a volume do
 * not see each other's lock: give each its own directory). Elsewhere than Linux the lock is a socket file in the
 * directory; a dead holder's file is replaced after a refused connection, which two starters could race.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { DataDirLockedError } from '../errors.js';

const LOCK_SECRET_FILE = '.lock-secret';

export interface DirLock {
  release(): Promise<void>;
}

/**
 * The lock's name. Abstract sockets have no permissions, so the name mixes in a secret kept in the directory (0600,
 * in a 0700 directory): another local user could otherwise bind the name first and block every start.
 */
async function lockAddress(dir: string): Promise<string> {
  if (process.platform !== 'linux') return join(dir, '.ganymede.lock');
  const secretFile = join(dir, LOCK_SECRET_FILE);
  // Written whole to a file of its own, then linked into place (atomic, and refused if it exists): two starters
  // racing both read the winner's secret, never a half-written one.
  const draft = `${secretFile}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(draft, randomBytes(16).toString('hex'), { mode: 0o600 });
  try {
    await link(draft, secretFile).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  } finally {
    await unlink(draft);
  }
  const { dev, ino } = await stat(dir, { bigint: true });
  const secret = await readFile(secretFile, 'utf8');
  const id = createHash('sha256').update(`${dev}:${ino}:${secret}`).digest('hex').slice(0, 32);
  return `\0ganymede-data-dir-${id}`;
}

/** The pid the holder at `address` answers with; `undefined` when nothing answers there (a dead holder's file). */
function askHolder(address: string): Promise<number | null | undefined> {
  return new Promise((resolveHolder) => {
    const socket = connect(address);
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => resolveHolder(undefined));
    socket.on('close', (hadError) => {
      if (hadError) return;
      const pid = Number(text.trim());
      resolveHolder(Number.isInteger(pid) && pid > 0 ? pid : null);
    });
  });
}

function bind(address: string): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const server = createServer((socket) => socket.end(`${process.pid}\n`));
    server.once('error', reject);
    server.listen(address, () => {
      server.off('error', reject);
      // The lock must not keep the process alive: closing the database releases it, and so does dying.
      server.unref();
      resolveServer(server);
    });
  });
}

/** Takes the data directory's lock (creating the directory), or throws `DataDirLockedError` naming the holder. */
export async function lockDataDir(dataDir: string): Promise<DirLock> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const address = await lockAddress(dir);
  let server: Server;
  try {
    server = await bind(address);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    const holder = await askHolder(address);
    if (holder !== undefined || address.startsWith('\0')) throw new DataDirLockedError(dir, holder ?? null);
    await unlink(address).catch(() => undefined);
    server = await bind(address);
  }
  return {
    release: () => new Promise<void>((done) => server.close(() => done())),
  };
}
