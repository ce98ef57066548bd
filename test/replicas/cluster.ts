/**
 * Several `ganymede serve` processes on one PostgreSQL schema (replicas), with what the replica tests drive
 * them with: the gateway's own typed client to each replica, tokens from the shared signing key, direct SQL
 * to inspect the rows, and real gateways (the `Gateway` class, in this process) pointed at any replica.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Database, openDatabase, PG_ERRORS, Tokens } from '@ganymede/app-ganymede';
import { createGanymedeClient, type GanymedeClient, Gateway, loadConfig } from '@ganymede/app-gateway';
import {
  dropSchemas,
  findFreePort,
  type GanymedeProcess,
  schemaPrefix,
  startGanymedeProcess,
  stopProcess,
  tempDir,
} from '@ganymede/testkit';
import pino from 'pino';

export interface Cluster {
  replicas: GanymedeProcess[];
  /** One typed client per replica, same index. */
  clients: GanymedeClient[];
  /** Direct SQL on the replicas' schema. */
  db: Database;
  schema: string;
  tokens: Tokens;
  admin: string;
  userToken(organizationId: string): Promise<string>;
  /** The replica for call number `n`: round robin. */
  client(n: number): GanymedeClient;
  /** Every table emptied (between tests that each need a pool of their own). */
  truncate(): Promise<void>;
  close(): Promise<void>;
}

let clusters = 0;

/**
 * Starts `count` replicas at once on a fresh schema (so they also race to create it and to migrate it),
 * sharing one signing key, each with its reaper running every `reaperIntervalMs`.
 */
export async function startCluster(options: {
  count: number;
  databaseUrl: string;
  reaperIntervalMs?: number;
  grace?: number;
  /** Replica `n` reaches PostgreSQL at this URL (a proxy the test controls, say); default `databaseUrl`. */
  databaseUrlOf?: (n: number) => string;
  /** More of each replica's environment (lease settings, …). */
  env?: NodeJS.ProcessEnv;
}): Promise<Cluster> {
  const schema = `${schemaPrefix()}replicas_${process.pid}_${++clusters}`;
  const dataDir = await tempDir('ganymede-replicas');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  await writeFile(join(dataDir, 'signing.key'), key.toString('hex') + '\n', { mode: 0o600 });
  const started = await Promise.allSettled(
    Array.from({ length: options.count }, (_, n) =>
      startGanymedeProcess({
        dataDir,
        databaseUrl: options.databaseUrlOf?.(n) ?? options.databaseUrl,
        schema,
        reaperIntervalMs: options.reaperIntervalMs ?? 50,
        grace: options.grace ?? 60,
        env: options.env,
      }),
    ),
  );
  const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(replicas.map((r) => stopProcess(r.proc, 'SIGKILL')));
    await dropSchemas(options.databaseUrl, [schema]);
    throw failed.reason;
  }
  const clients = replicas.map((r) => createGanymedeClient({ baseUrl: r.url, connections: 16, timeoutMs: 20_000 }));
  const db = await openDatabase({ databaseUrl: options.databaseUrl, schema });
  const tokens = new Tokens(new Uint8Array(key));
  const admin = await tokens.sign({ typ: 'admin', sub: 'replica-tests' });
  return {
    replicas,
    clients,
    db,
    schema,
    tokens,
    admin,
    userToken: (organizationId) => tokens.sign({ typ: 'user', sub: `user-${organizationId}`, organizations: [organizationId] }),
    client: (n) => clients[n % clients.length]!,
    async truncate() {
      // The replicas' reapers keep running: a TRUNCATE (which locks table after table) can deadlock with one of
      // their statements. PostgreSQL then cancels one of the two; if it was ours, do it again.
      for (let attempt = 1; ; attempt++) {
        try {
          return await db.exec('TRUNCATE allocation_events, allocations, gateways CASCADE');
        } catch (error) {
          if ((error as { code?: string }).code !== PG_ERRORS.deadlockDetected || attempt >= 5) throw error;
        }
      }
    },
    async close() {
      await Promise.all(clients.map((c) => c.destroy()));
      await Promise.all(replicas.map((r) => stopProcess(r.proc, 'SIGTERM')));
      await db.close();
      await dropSchemas(options.databaseUrl, [schema]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ClusterGateway {
  gatewayId: string;
  token: string;
  port: number;
  url: string;
}

/** Registers a gateway (admin API, through replica `n`) at a free local port. */
export async function register(cluster: Cluster, n: number): Promise<ClusterGateway> {
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const res = await cluster.client(n).addGateway(cluster.admin, { url });
  if (res.status !== 201) throw new Error(`addGateway answered ${res.status}`);
  return { gatewayId: res.body.gateway_id, token: res.body.token, port, url };
}

/** A real gateway (the `Gateway` class with its typed client) for `gw`, talking to `ganymedeUrl`. */
export function gatewayFor(gw: ClusterGateway, ganymedeUrl: string): Gateway {
  const config = loadConfig({
    GATEWAY_ID: gw.gatewayId,
    GATEWAY_TOKEN: gw.token,
    GANYMEDE_URL: ganymedeUrl,
    GATEWAY_PORT: String(gw.port),
    GATEWAY_RUN_DIR: `/tmp/gateway-replicas-${gw.gatewayId}`,
    GATEWAY_RELOAD_MARKER: `/tmp/gateway-replicas-${gw.gatewayId}.reloading`,
    GATEWAY_LOG_LEVEL: 'silent',
    GATEWAY_BOOT_TIMEOUT_MS: '20000',
  });
  return new Gateway({ config, logger: pino({ level: 'silent' }) });
}

/** Ganymede's log lines for a transition, across replicas: `[replica index, allocation id]` pairs. */
export function transitions(cluster: Cluster, name: string): [number, string][] {
  return cluster.replicas.flatMap((r, i) =>
    r.proc.logs.filter((l) => l.transition === name).map((l): [number, string] => [i, String(l.allocation_id)]),
  );
}
