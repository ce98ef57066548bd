/**
 * Ganymede's CLI as a real process (`ganymede serve`) for the demo, the end-to-end and replica tests and the
 * benchmark, with what they ask of it: its typed client, its one-shot commands, tokens, the log line of a
 * gateway saying ready, and the frontend's call for an organization's gateway.
 */
import { randomUUID } from 'node:crypto';
import { loadSigningKey, Tokens } from '@ganymede/app-ganymede';
import { findFreePort } from './free-port.js';
import { ganymedeContract } from '@ganymede/contracts';
import { initClient } from '@ts-rest/core';
import { runCli, spawnCli } from './cli-process.js';
import { GANYMEDE_CLI } from './clis.js';
import type { LoggedProcess, LogRecord } from './logged-process.js';
import { pathTag, schemaPrefix } from './pg-schemas.js';
import { tempDir } from './temp-dir.js';
import { testDatabaseKind, testDatabaseUrl } from './test-database.js';

export interface GanymedeProcess {
  proc: LoggedProcess;
  url: string;
  port: number;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  api: ReturnType<typeof initClient<typeof ganymedeContract, { baseUrl: string; baseHeaders: Record<string, string> }>>;
  cli(...args: string[]): Promise<string>;
}

export interface StartGanymedeProcessOptions {
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
function storageEnv(dataDir: string, options: StartGanymedeProcessOptions): NodeJS.ProcessEnv {
  if (options.embedded) return { DATABASE_URL: '', GANYMEDE_DB_SCHEMA: '' };
  if (options.databaseUrl) return { DATABASE_URL: options.databaseUrl, GANYMEDE_DB_SCHEMA: options.schema ?? '' };
  if (testDatabaseKind() === 'postgres') {
    return { DATABASE_URL: testDatabaseUrl(), GANYMEDE_DB_SCHEMA: `${schemaPrefix()}e2e_${pathTag(dataDir)}` };
  }
  return storageEnv(dataDir, { embedded: true }); // the embedded database, whatever this shell says
}

/** `ganymede serve`, resolved once it listens. */
export async function startGanymedeProcess(options: StartGanymedeProcessOptions = {}): Promise<GanymedeProcess> {
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
  const proc = spawnCli(GANYMEDE_CLI, ['serve'], { env, echo: options.echo });
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

export async function userToken(g: GanymedeProcess, organizationId: string): Promise<string> {
  return (JSON.parse(await g.cli('token', 'user', '--organization', organizationId, '--json')) as { token: string }).token;
}

export async function adminToken(g: GanymedeProcess): Promise<string> {
  return new Tokens(await loadSigningKey(undefined, g.dataDir)).sign({ typ: 'admin', sub: 'testkit' });
}

/** Resolves when Ganymede logs that this gateway said ready (optionally: serving at the given epoch). */
export function gatewayReady(g: GanymedeProcess, gatewayId: string, epoch?: number, from?: number): Promise<LogRecord> {
  return g.proc.waitForLog((l) => l.msg === 'gateway ready' && l.gateway_id === gatewayId && (epoch === undefined || l.epoch === epoch), {
    from,
    timeoutMs: 30_000,
  });
}

/** What a frontend does: a user of a new organization asks Ganymede for its gateway. */
export async function startOrganization(g: GanymedeProcess, organizationId = randomUUID()) {
  const token = await userToken(g, organizationId);
  const res = await g.api.start({ headers: { authorization: `Bearer ${token}` }, body: { organization_id: organizationId } });
  return { organizationId, token, res };
}
