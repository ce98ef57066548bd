/**
 * Floors, measured in the same run:
 * - a gateway's cold process start: `gateway run` (node and the CLI's bundle, as the supervisor starts it) from
 *   spawn to its `listening` log line, with no Ganymede in reach (the gateway listens before it calls Ganymede),
 *   so a process start with no Ganymede call in it: the floor of the handover time and of a hot restart under load;
 * - HTTP: a bare Fastify JSON route's requests per second, loaded by autocannon from a separate process
 *   (10 connections, as STACK.md's figure);
 * - SQL: the raw rate of a single-row `UPDATE … RETURNING` on the same kind of database, through the same
 *   database door Ganymede uses (PGlite: its one connection, in a data directory as Ganymede keeps it;
 *   PostgreSQL: a pool of Ganymede's default size, as many callers as connections);
 * - the protocol's own statements alone: a storm's restart and reclaim statements run straight on the database, the
 *   same door and callers, with no HTTP, token or log in the way: the bound the SQL sets on the protocol rate.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Database, migrate, openDatabase } from '@ganymede/app-ganymede';
import { addGateway } from '@ganymede/app-ganymede/gateways';
import { allocate, ready, reclaim, requestRestart } from '@ganymede/app-ganymede/transitions';
import { dropSchemas, findFreePort, spawnGatewayChild, spawnLogged } from '@ganymede/testkit';
import { track } from './processes.js';
import { callRate, type Rate } from './stats.js';

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
  const rate = await callRate({ callers, durationMs }, (c, i) =>
    db.query('UPDATE bench_rows SET n = n + 1, updated_at = now() WHERE id = $1 RETURNING *', [((c + i * callers) % ROWS) + 1]),
  );
  return { statements_per_second: rate.per_second, callers, statements: rate.count };
}

/** The database a floor is measured on: as Ganymede opens it (PGlite in a data directory; PostgreSQL with a pool). */
export type FloorDatabase = { kind: 'pglite' } | { kind: 'postgres'; url: string };

/** PostgreSQL: a pool of Ganymede's default size, and as many callers. PGlite: its one connection, one caller. */
const POSTGRES_POOL = 10;

/** Opens a fresh database of `target`'s kind for `run`, then removes it. */
async function onFloorDatabase<T>(target: FloorDatabase, run: (db: Database) => Promise<T>): Promise<T> {
  if (target.kind === 'pglite') {
    const dir = await mkdtemp(join(tmpdir(), 'pglite-floor-'));
    const db = await openDatabase({ dataDir: dir });
    try {
      return await run(db);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const schema = `bench_floor_${Date.now().toString(36)}_${process.pid}_${++floorSchemas}`;
  const db = await openDatabase({ databaseUrl: target.url, schema, poolSize: POSTGRES_POOL });
  try {
    return await run(db);
  } finally {
    await db.close();
    await dropSchemas(target.url, [schema]);
  }
}
let floorSchemas = 0;

export const sqlFloorPglite = (durationMs: number) => onFloorDatabase({ kind: 'pglite' }, (db) => updateRate(db, 1, durationMs));

export const sqlFloorPostgres = (url: string, durationMs: number) =>
  onFloorDatabase({ kind: 'postgres', url }, (db) => updateRate(db, POSTGRES_POOL, durationMs));

/** Allocations the statements-alone rate cycles through: as many as callers, several times over. */
const PROTOCOL_ALLOCATIONS = 200;

/**
 * The protocol's statements alone: each caller restarts an allocation (`requestRestart`) and reclaims it
 * (`reclaim`, at epoch + 1), over and over, on allocations of its own; statements per second.
 */
export function protocolStatementRate(target: FloorDatabase, durationMs: number): Promise<SqlFloor> {
  const callers = target.kind === 'pglite' ? 1 : POSTGRES_POOL;
  return onFloorDatabase(target, async (db) => {
    await migrate(db);
    const held: { gatewayId: string; allocationId: string; epoch: number }[] = [];
    for (let i = 0; i < PROTOCOL_ALLOCATIONS; i++) {
      const gatewayId = await addGateway(db, 'http://127.0.0.1:9');
      await ready(db, gatewayId, null, randomUUID());
      const allocated = await allocate(db, randomUUID());
      if (allocated.kind === 'none') throw new Error('protocol floor: no gateway free');
      await ready(db, gatewayId, allocated.allocation.allocation_id, randomUUID());
      held.push({ gatewayId, allocationId: allocated.allocation.allocation_id, epoch: 1 });
    }
    const rate = await callRate({ callers, durationMs }, async (c, i) => {
      const h = held[(c + i * callers) % PROTOCOL_ALLOCATIONS]!;
      const restarted = await requestRestart(db, h.allocationId, h.epoch, 'reload', 60);
      const claimed = await reclaim(db, h.gatewayId, randomUUID());
      if (restarted.kind !== 'ok' || claimed.kind !== 'ok' || !claimed.reclaimed)
        throw new Error('protocol floor: a restart was not reclaimed');
      h.epoch = claimed.allocation!.epoch;
    });
    return { statements_per_second: rate.per_second * 2, callers, statements: rate.count * 2 };
  });
}

/**
 * The raw `bytea` write rate: single-row INSERTs of `bytes` random bytes (one value, reused) from `callers`
 * concurrent callers for `durationMs`, after a warm-up. Rows are not deleted (a snapshot's retention is part of
 * what a push costs, not of the floor). PGlite gets the bytes as hex text, cast in SQL: its own serializer of a
 * Uint8Array parameter formats each byte in JavaScript, about 15 times slower here (3 against 48 writes of 1 MiB a
 * second), which would make the floor a measure of that serializer. PostgreSQL gets a Buffer, as `pg` sends it.
 */
export function byteaWriteRate(target: FloorDatabase, options: { callers: number; bytes: number; durationMs: number }): Promise<Rate> {
  return onFloorDatabase(target, async (db) => {
    await db.exec('CREATE TABLE bench_bytes (id bigserial PRIMARY KEY, data bytea NOT NULL)');
    const value = randomBytes(options.bytes);
    const [sql, param] =
      target.kind === 'pglite'
        ? ['INSERT INTO bench_bytes (data) VALUES ($1::text::bytea)', `\\x${value.toString('hex')}`]
        : ['INSERT INTO bench_bytes (data) VALUES ($1)', value];
    return callRate(options, () => db.query(sql, [param]));
  });
}
