/**
 * Floors, measured in the same run:
 * - a gateway's cold process start: `gateway run` (node and the CLI's bundle, as the supervisor starts it) from
 *   spawn to its `listening` log line, with no Ganymede in reach (the gateway listens before it calls Ganymede),
 *   so a process start with no Ganymede call in it: the floor of the handover time and of a hot restart under load;
 * - HTTP: a bare Fastify JSON route's requests per second, loaded by autocannon from a separate process
 *   (10 connections, as STACK.md's figure);
 * - SQL: the raw rate of a single-row `UPDATE … RETURNING` on the same kind of database, through the same
 *   database door Ganymede uses (PGlite: its one connection, in a data directory as Ganymede keeps it;
 *   PostgreSQL: a pool of Ganymede's default size, as many callers as connections).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Database, openDatabase } from '@ganymede/app-ganymede';
import { dropSchemas, findFreePort, spawnGatewayChild, spawnLogged } from '@ganymede/testkit';
import { track } from './processes.js';

const require = createRequire(import.meta.url);
const AUTOCANNON = join(require.resolve('autocannon/package.json'), '..', 'autocannon.js');
const BARE_FASTIFY = fileURLToPath(new URL('./bare-fastify.mjs', import.meta.url));

/** One cold start of the gateway: `gateway run` with no Ganymede in reach, from spawn to its `listening` line (ms). */
export async function gatewayColdStart(dir: string): Promise<number> {
  const closed = await findFreePort();
  const t0 = performance.now();
  const p = track(
    spawnGatewayChild('run', {
      env: {
        GATEWAY_ID: randomUUID(),
        GATEWAY_TOKEN: 'bench-floor',
        GANYMEDE_URL: `http://127.0.0.1:${closed}`,
        GATEWAY_PORT: '0',
        GATEWAY_RUN_DIR: dir,
        GATEWAY_RELOAD_MARKER: join(dir, 'floor-reloading'),
        GATEWAY_LOG_LEVEL: 'info',
      },
    }),
  );
  try {
    await p.waitForLog((l) => l.event === 'listening', { timeoutMs: 30_000 });
    return performance.now() - t0;
  } finally {
    await p.kill();
  }
}

export interface HttpFloor {
  requests_per_second: number;
  connections: number;
  duration_s: number;
  latency_p50_ms: number;
  errors: number;
}

export async function bareFastify(options: { connections: number; durationSeconds: number }): Promise<HttpFloor> {
  const server = track(spawnLogged(process.execPath, [BARE_FASTIFY]));
  try {
    const { url } = (await server.waitForLog((l) => l.event === 'listening', { timeoutMs: 30_000 })) as { url: string };
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        AUTOCANNON,
        '--json',
        '-c',
        String(options.connections),
        '-d',
        String(options.durationSeconds),
        '-m',
        'POST',
        '-H',
        'content-type=application/json',
        '-b',
        JSON.stringify({ organization_id: '3c1e5b7a-9d2f-4a6c-8e0b-1f2a3b4c5d6e' }),
        `${url}/echo`,
      ],
      { maxBuffer: 16 * 1024 * 1024, timeout: (options.durationSeconds + 30) * 1000 },
    );
    const result = JSON.parse(stdout) as { requests: { average: number }; latency: { p50: number }; errors: number; non2xx: number };
    return {
      requests_per_second: result.requests.average,
      connections: options.connections,
      duration_s: options.durationSeconds,
      latency_p50_ms: result.latency.p50,
      errors: result.errors + result.non2xx,
    };
  } finally {
    await server.kill();
  }
}

export interface SqlFloor {
  statements_per_second: number;
  callers: number;
  statements: number;
}

const ROWS = 1000;

/** Single-row `UPDATE … RETURNING` on `db`, from `callers` concurrent callers, for `durationMs`. */
async function updateRate(db: Database, callers: number, durationMs: number): Promise<SqlFloor> {
  await db.exec(`CREATE TABLE bench_rows (id int PRIMARY KEY, n int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO bench_rows (id, n) SELECT g, 0 FROM generate_series(1, ${ROWS}) g;`);
  const run = async (ms: number) => {
    let statements = 0;
    const deadline = performance.now() + ms;
    await Promise.all(
      Array.from({ length: callers }, async (_, c) => {
        for (let i = c; performance.now() < deadline; i += callers) {
          await db.query('UPDATE bench_rows SET n = n + 1, updated_at = now() WHERE id = $1 RETURNING *', [(i % ROWS) + 1]);
          statements++;
        }
      }),
    );
    return statements;
  };
  await run(Math.min(500, durationMs / 4)); // warm up: connections open, statements prepared
  const t0 = performance.now();
  const statements = await run(durationMs);
  return { statements_per_second: (statements / (performance.now() - t0)) * 1000, callers, statements };
}

export async function sqlFloorPglite(durationMs: number): Promise<SqlFloor> {
  const dir = await mkdtemp(join(tmpdir(), 'pglite-floor-'));
  const db = await openDatabase({ dataDir: dir });
  try {
    return await updateRate(db, 1, durationMs);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function sqlFloorPostgres(url: string, durationMs: number, poolSize = 10): Promise<SqlFloor> {
  const schema = `bench_floor_${Date.now().toString(36)}_${process.pid}`;
  const db = await openDatabase({ databaseUrl: url, schema, poolSize });
  try {
    return await updateRate(db, poolSize, durationMs);
  } finally {
    await db.close();
    await dropSchemas(url, [schema]);
  }
}
