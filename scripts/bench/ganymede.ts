/**
 * Ganymede for the benchmark: real `ganymede serve` processes (as users run them, default log level), on the
 * embedded database (a data directory) or on PostgreSQL (a schema of their own, dropped after), one or several
 * replicas sharing a signing key; the gateway's own typed client to each.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Database, openDatabase, Tokens } from '@ganymede/app-ganymede';
import { createGanymedeClient, type GanymedeClient } from '@ganymede/app-gateway';
import { dropSchemas, type GanymedeProcess, startGanymedeProcess, stopProcess, tempDir } from '@ganymede/testkit';
import { rssMiB } from './machine.js';
import { track } from './processes.js';
import { sleep } from './stats.js';

export type Backend = { kind: 'pglite' } | { kind: 'postgres'; url: string; replicas: number };

export const backendLabel = (b: Backend) =>
  b.kind === 'pglite' ? 'PGlite' : `PostgreSQL, ${b.replicas} replica${b.replicas === 1 ? '' : 's'}`;

export interface BenchGanymede {
  backend: Backend;
  replicas: GanymedeProcess[];
  clients: GanymedeClient[];
  /** The client for call number `n`: round robin over the replicas. */
  client(n: number): GanymedeClient;
  tokens: Tokens;
  admin: string;
  userToken(organizationId: string): Promise<string>;
  gatewayToken(gatewayId: string): Promise<string>;
  /** Resident size of each replica, MiB. */
  rss(): number[];
  /** PGlite with `reopen`: the resident size of the first start (which ran initdb), MiB. */
  firstStartRss?: number;
  close(): Promise<void>;
}

let schemas = 0;

/** The server's version, or null when nothing answers at `url`. */
export async function probePostgres(url: string): Promise<string | null> {
  let db: Database | undefined;
  try {
    db = await openDatabase({ databaseUrl: url });
    const { rows } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return rows[0]?.v ?? 'unknown';
  } catch {
    return null;
  } finally {
    await db?.close().catch(() => undefined);
  }
}

export async function startBenchGanymede(
  backend: Backend,
  options: {
    connections?: number;
    reaperIntervalMs?: number;
    env?: NodeJS.ProcessEnv;
    /** PGlite: start once (initdb), stop, and start again on the same data, as a server usually starts. */
    reopen?: boolean;
  } = {},
): Promise<BenchGanymede> {
  const dataDir = await tempDir('ganymede-bench');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  await writeFile(join(dataDir, 'signing.key'), `${key.toString('hex')}\n`, { mode: 0o600 });
  const schema = backend.kind === 'postgres' ? `bench_${Date.now().toString(36)}_${process.pid}_${++schemas}` : undefined;
  const count = backend.kind === 'postgres' ? backend.replicas : 1;
  const common = { dataDir, reaperIntervalMs: options.reaperIntervalMs ?? 1000, env: { GANYMEDE_LOG_LEVEL: 'info', ...options.env } };
  const start = () =>
    backend.kind === 'postgres'
      ? startGanymedeProcess({ ...common, databaseUrl: backend.url, schema })
      : startGanymedeProcess({ ...common, env: { ...common.env, DATABASE_URL: '', GANYMEDE_DB_SCHEMA: '' } });
  let firstStartRss: number | undefined;
  if (backend.kind === 'pglite' && options.reopen) {
    const first = track((await start()).proc);
    await sleep(1_000);
    firstStartRss = rssMiB(first.pid);
    await stopProcess(first, 'SIGTERM');
  }
  const started = await Promise.allSettled(Array.from({ length: count }, start));
  const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  for (const r of replicas) track(r.proc);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(replicas.map((r) => stopProcess(r.proc, 'SIGKILL')));
    if (schema && backend.kind === 'postgres') await dropSchemas(backend.url, [schema]);
    await rm(dataDir, { recursive: true, force: true });
    throw failed.reason;
  }
  const clients = replicas.map((r) => createGanymedeClient({ baseUrl: r.url, connections: options.connections ?? 32, timeoutMs: 60_000 }));
  const tokens = new Tokens(new Uint8Array(key));
  const admin = await tokens.sign({ typ: 'admin', sub: 'bench' }, '2h');
  return {
    backend,
    replicas,
    clients,
    client: (n) => clients[n % clients.length]!,
    tokens,
    admin,
    userToken: (organizationId) => tokens.sign({ typ: 'user', sub: `bench-${organizationId}`, organizations: [organizationId] }),
    gatewayToken: (gatewayId) => tokens.sign({ typ: 'gateway', sub: gatewayId }),
    rss: () => replicas.map((r) => rssMiB(r.proc.pid)),
    firstStartRss,
    async close() {
      await Promise.all(clients.map((c) => c.destroy()));
      await Promise.all(replicas.map((r) => stopProcess(r.proc, 'SIGTERM')));
      if (backend.kind === 'postgres' && schema) await dropSchemas(backend.url, [schema]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
