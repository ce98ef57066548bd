/**
 * The whole system as real processes: a Ganymede server, gateways registered through its CLI, supervised
 * gateway processes, and the calls a frontend makes. Used by the demo, the end-to-end tests and the benchmark.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSigningKey, Tokens } from '@ganymede/app-ganymede';
import { ganymedeContract, gatewayContract } from '@ganymede/contracts';
import { initClient } from '@ts-rest/core';
import { spawnGateway, type GatewayProcess as GatewayChild } from '@ganymede/app-gateway';
import { findFreePort, type LoggedProcess, type LogRecord } from '@ganymede/process-harness';
import { pathTag, schemaPrefix, testDatabaseKind, testDatabaseUrl } from '../packages/app-ganymede/test/schemas.js';
import { GANYMEDE_CLI, GATEWAY_CLI, runCli, spawnCli } from './processes.js';

export interface GanymedeProcess {
  proc: LoggedProcess;
  url: string;
  port: number;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  api: ReturnType<typeof initClient<typeof ganymedeContract, { baseUrl: string; baseHeaders: Record<string, string> }>>;
  cli(...args: string[]): Promise<string>;
}

export const tempDir = (prefix: string) => mkdtemp(join(tmpdir(), `${prefix}-`));

export interface StartGanymedeOptions {
  /** Holds the signing key, and the embedded database when there is no `databaseUrl`. */
  dataDir?: string;
  port?: number;
  grace?: number;
  reaperIntervalMs?: number;
  echo?: boolean;
  /**
   * PostgreSQL, with `schema`. Default: the embedded database, unless the tests run on PostgreSQL
   * (GANYMEDE_TEST_DATABASE=postgres), where each data directory maps to a schema of the test run.
   */
  databaseUrl?: string;
  schema?: string;
  /** The embedded database in `dataDir`, even when the tests run on PostgreSQL. */
  embedded?: boolean;
  /** Anything else for its environment: FAILPOINTS, GANYMEDE_LEASE_SECONDS, … */
  env?: NodeJS.ProcessEnv;
}

/** Where a Ganymede process keeps its data: `databaseUrl`, the test run's schema for `dataDir`, or the embedded database. */
function storageEnv(dataDir: string, options: StartGanymedeOptions): NodeJS.ProcessEnv {
  if (options.embedded) return { DATABASE_URL: '', GANYMEDE_DB_SCHEMA: '' };
  if (options.databaseUrl) return { DATABASE_URL: options.databaseUrl, GANYMEDE_DB_SCHEMA: options.schema ?? '' };
  if (testDatabaseKind() === 'postgres') {
    return { DATABASE_URL: testDatabaseUrl(), GANYMEDE_DB_SCHEMA: `${schemaPrefix()}e2e_${pathTag(dataDir)}` };
  }
  return storageEnv(dataDir, { embedded: true }); // the embedded database, whatever this shell says
}

export async function startGanymede(options: StartGanymedeOptions = {}): Promise<GanymedeProcess> {
  const dataDir = options.dataDir ?? (await tempDir('ganymede'));
  const port = options.port ?? (await findFreePort());
  const env = {
    GANYMEDE_DATA_DIR: dataDir,
    GANYMEDE_PORT: String(port),
    GANYMEDE_RESTART_GRACE_SECONDS: String(options.grace ?? 60),
    GANYMEDE_REAPER_INTERVAL_MS: String(options.reaperIntervalMs ?? 200),
    ...storageEnv(dataDir, options),
    ...options.env,
  };
  const proc = spawnCli(GANYMEDE_CLI, ['serve'], env, options.echo);
  try {
    await proc.waitForLog((l) => String(l.msg).startsWith('Server listening'), { timeoutMs: 30_000 });
  } catch (error) {
    await proc.kill(); // never leave a server behind that nobody will stop
    throw error;
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    url,
    port,
    dataDir,
    env,
    api: initClient(ganymedeContract, { baseUrl: url, baseHeaders: {}, throwOnUnknownStatus: true }),
    cli: (...args) => runCli(GANYMEDE_CLI, args, env),
  };
}

export interface RegisteredGateway {
  gateway_id: string;
  token: string;
  port: number;
  url: string;
}

export async function registerGateway(g: GanymedeProcess): Promise<RegisteredGateway> {
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const { gateway_id, token } = JSON.parse(await g.cli('gateway', 'add', '--url', url, '--json'));
  return { gateway_id, token, port, url };
}

export async function userToken(g: GanymedeProcess, organizationId: string): Promise<string> {
  return JSON.parse(await g.cli('token', 'user', '--organization', organizationId, '--json')).token;
}

export interface GatewayProcess {
  proc: GatewayChild;
  gw: RegisteredGateway;
  runDir: string;
  marker: string;
  env: NodeJS.ProcessEnv;
  cli(...args: string[]): Promise<string>;
}

/** A gateway run under its supervisor (`supervise`) or alone (`run`). */
export async function startGateway(
  g: GanymedeProcess,
  gw: RegisteredGateway,
  mode: 'supervise' | 'run' = 'supervise',
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<GatewayProcess> {
  const runDir = await tempDir('gateway-run');
  const marker = join(runDir, 'reloading');
  const env = {
    GATEWAY_ID: gw.gateway_id,
    GATEWAY_TOKEN: gw.token,
    GANYMEDE_URL: g.url,
    GATEWAY_PORT: String(gw.port),
    GATEWAY_RUN_DIR: runDir,
    GATEWAY_RELOAD_MARKER: marker,
    ...extraEnv,
  };
  const proc = spawnGateway(mode, { env });
  return { proc, gw, runDir, marker, env, cli: (...args) => runCli(GATEWAY_CLI, args, env) };
}

/** Resolves when Ganymede logs that this gateway said ready (optionally: serving at the given epoch). */
export function gatewayReady(g: GanymedeProcess, gatewayId: string, epoch?: number, from?: number): Promise<LogRecord> {
  return g.proc.waitForLog(
    (l) => l.msg === 'gateway ready' && l.gateway_id === gatewayId && (epoch === undefined || l.epoch === epoch),
    { from, timeoutMs: 30_000 },
  );
}

export const gatewayClient = (gw: RegisteredGateway) =>
  initClient(gatewayContract, { baseUrl: gw.url, baseHeaders: {}, throwOnUnknownStatus: true });

/** What a frontend does: a user of a new organization asks Ganymede for its gateway. */
export async function startOrganization(g: GanymedeProcess, organizationId = randomUUID()) {
  const token = await userToken(g, organizationId);
  const res = await g.api.start({ headers: { authorization: `Bearer ${token}` }, body: { organization_id: organizationId } });
  return { organizationId, token, res };
}

export async function adminToken(g: GanymedeProcess): Promise<string> {
  return new Tokens(await loadSigningKey(undefined, g.dataDir)).sign({ typ: 'admin', sub: 'harness' });
}
