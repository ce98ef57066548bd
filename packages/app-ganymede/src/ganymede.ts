/**
 * A Ganymede server: database, migrations, routes, reaper, metrics, and the API's description with a page to browse it. `start()` and `close()` are safe to call
 * twice or concurrently; `close()` stops taking requests, lets those in flight finish for at most
 * `shutdownTimeoutMs` (then destroys what is left), stops the reaper, then closes the database.
 */
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { ganymedeContract } from '@ganymede/contracts';
import { closeWithin, createServer, type HttpTimeouts, LOG_REDACT } from '@ganymede/http-server';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import pino from 'pino';
import { loadSigningKey, Tokens } from './auth.js';
import type { Database, DataDirOrigin } from './db/database.js';
import { migrate } from './db/migrate.js';
import { DEFAULT_POOL_SIZE, openDatabase, type StorageOptions } from './db/open.js';
import { serveDashboard } from './dashboard/static-files.js';
import { timedDatabase } from './db/timed.js';
import { createMetrics } from './metrics.js';
import { openApiDocument, opsRoutes } from './ops-routes.js';
import { Reaper } from './reaper.js';
import { ganymedeRoutes } from './routes.js';
import { DEFAULT_CLOCK_DRIFT, leaseMargins } from './lease-margins.js';
import { DEFAULT_LIVENESS } from './sql/liveness.js';
import { transitionLog } from './transition-log.js';

/** Storage options (`StorageOptions`: database URL, schema, pool size, data directory) and the server's own. */
export interface GanymedeOptions extends StorageOptions {
  /** An already open database (tests); it is not closed by `close()`. */
  db?: Database;
  signingKey?: string;
  /** Where the signing key is kept when none is configured; defaults to `dataDir` (in memory: a fresh key). */
  keyDir?: string;
  restartGraceSeconds?: number;
  reaperIntervalMs?: number;
  /** A gateway's liveness lease; it renews well within it. */
  leaseSeconds?: number;
  /** How long past a lapsed lease an active allocation is ended (reason lease_expired). */
  leaseGraceSeconds?: number;
  /** A gateway stops serving this long after its last successful renewal (lease-margins.ts); derived if unset. */
  renewDeadlineMs?: number;
  /** The bound on clock-rate drift the margins allow for (a ratio). */
  clockDrift?: number;
  /** Deaths within the window after which a reclaim ends the allocation instead (reason crash_loop). */
  crashLoopLimit?: number;
  crashLoopWindowSeconds?: number;
  notifyTimeoutMs?: number;
  /** The largest body `/gateway/data/push` takes (413 past it), in bytes; every other route keeps BODY_LIMIT_BYTES. */
  maxSnapshotBytes?: number;
  /** Snapshots kept per organization: a push deletes those older than the latest N. */
  snapshotRetention?: number;
  /** How long `close()` lets requests in flight finish before it destroys their connections. */
  shutdownTimeoutMs?: number;
  /** How long a client may take to send a request (see `HttpTimeouts`). */
  httpTimeouts?: Partial<HttpTimeouts>;
  logger?: FastifyBaseLogger | false;
  logLevel?: string;
  /** Serve `/metrics` without a token (`--metrics-open`); by default only an admin token reads it. */
  metricsOpen?: boolean;
}

export const DEFAULTS = {
  poolSize: DEFAULT_POOL_SIZE,
  restartGraceSeconds: 60,
  reaperIntervalMs: 1000,
  notifyTimeoutMs: 5000,
  shutdownTimeoutMs: 5000,
  leaseSeconds: DEFAULT_LIVENESS.leaseSeconds,
  leaseGraceSeconds: 10,
  clockDrift: DEFAULT_CLOCK_DRIFT,
  crashLoopLimit: DEFAULT_LIVENESS.crashLoopLimit,
  crashLoopWindowSeconds: DEFAULT_LIVENESS.crashLoopWindowSeconds,
  maxSnapshotBytes: 16 * 1024 * 1024,
  snapshotRetention: 10,
  metricsOpen: false,
};

/** The log line's words for each way a data directory is opened. */
const DATA_DIR_OPENED: Record<DataDirOrigin, string> = {
  reopened: 'reopened',
  seeded: 'created from the shipped seed (no initdb)',
  initdb: 'created by initdb (no seed found: run pnpm build)',
};

/** Where the page that browses the OpenAPI document is served (its assets come from the package: no CDN). */
export const DOCS_PATH = '/docs';

const definedOnly = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export interface Ganymede {
  app: FastifyInstance;
  db: Database;
  tokens: Tokens;
  reaper: Reaper;
  log: FastifyBaseLogger;
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export async function createGanymede(options: GanymedeOptions = {}): Promise<Ganymede> {
  const log: FastifyBaseLogger =
    options.logger === undefined
      ? pino({ level: options.logLevel ?? 'info', redact: LOG_REDACT })
      : options.logger || pino({ level: 'silent' });
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const margins = leaseMargins(settings);
  if (settings.restartGraceSeconds < margins.minRestartGraceSeconds) {
    log.warn(
      { restart_grace_seconds: settings.restartGraceSeconds, min_restart_grace_seconds: margins.minRestartGraceSeconds },
      `restarts get ${margins.minRestartGraceSeconds} s, not --grace ${settings.restartGraceSeconds} s: no shorter with this renew deadline`,
    );
  }
  const persistentDir = options.dataDir && options.dataDir !== ':memory:' ? options.dataDir : undefined;
  const key = await loadSigningKey(options.signingKey, options.keyDir ?? persistentDir);
  const ownsDb = !options.db;
  const metrics = createMetrics();
  const db = timedDatabase(options.db ?? (await openDatabase(options)), metrics.queryDuration);
  if (db.origin) log.info({ data_dir: persistentDir, origin: db.origin }, `data directory ${DATA_DIR_OPENED[db.origin]}`);
  let codeSchemaVersion: number;
  try {
    const { applied, version } = await migrate(db);
    codeSchemaVersion = version;
    if (applied.length) log.info({ applied }, 'migrations applied');
  } catch (error) {
    if (ownsDb) await db.close();
    throw error;
  }
  const tokens = new Tokens(key);
  const transitions = transitionLog(log, metrics);
  const liveness = {
    leaseSeconds: settings.leaseSeconds,
    crashLoopLimit: settings.crashLoopLimit,
    crashLoopWindowSeconds: settings.crashLoopWindowSeconds,
  };
  const app = createServer(
    ganymedeContract,
    {
      ...ganymedeRoutes({
        db,
        tokens,
        log,
        restartGraceSeconds: settings.restartGraceSeconds,
        notifyTimeoutMs: settings.notifyTimeoutMs,
        liveness,
        margins,
        snapshots: { maxBytes: settings.maxSnapshotBytes, retention: settings.snapshotRetention },
        metrics,
        transitions,
      }),
      ...opsRoutes({ db, tokens, log, metrics, codeSchemaVersion, metricsOpen: settings.metricsOpen }),
    },
    {
      logger: log,
      timeouts: options.httpTimeouts,
      bodyLimits: new Map([[ganymedeContract.dataPush, settings.maxSnapshotBytes]]),
    },
  );
  serveDashboard(app);
  // The page is Swagger UI, served from the package. It reads the document from @fastify/swagger (static mode: the
  // generated document as it is), at /docs/json; /openapi.json is the contract's own route.
  void app.register(fastifySwagger, { mode: 'static', specification: { document: openApiDocument() as never } });
  void app.register(fastifySwaggerUi, { routePrefix: DOCS_PATH, uiConfig: { validatorUrl: null } });
  const reaper = new Reaper(
    db,
    log,
    { intervalMs: settings.reaperIntervalMs, leaseSeconds: settings.leaseSeconds, leaseGraceSeconds: settings.leaseGraceSeconds },
    transitions,
    metrics,
  );

  let closing: Promise<void> | undefined;
  return {
    app,
    db,
    tokens,
    reaper,
    log,
    async listen(port, host = '127.0.0.1') {
      const address = await app.listen({ port, host });
      reaper.start();
      return address;
    },
    close() {
      closing ??= (async () => {
        if (await closeWithin(app, settings.shutdownTimeoutMs)) {
          log.warn({ shutdown_timeout_ms: settings.shutdownTimeoutMs }, 'shutdown deadline: closed the connections still open');
        }
        await reaper.stop();
        if (ownsDb) await db.close();
      })();
      return closing;
    },
  };
}
