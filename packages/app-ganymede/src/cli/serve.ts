/** `ganymede serve`: its options (each with its environment variable) and the server's life until a signal. */
import { DEFAULT_HTTP_TIMEOUTS } from '@ganymede/http-server';
import { UsageError } from '../errors.js';
import { createGanymede, DEFAULTS } from '../ganymede.js';

const env = process.env;

export const SERVE_OPTIONS = {
  port: { type: 'string', default: env.GANYMEDE_PORT ?? '4000' },
  host: { type: 'string', default: env.GANYMEDE_HOST ?? '127.0.0.1' },
  'data-dir': { type: 'string', default: env.GANYMEDE_DATA_DIR ?? '.ganymede' },
  memory: { type: 'boolean', default: false },
  'database-url': { type: 'string', default: env.DATABASE_URL },
  schema: { type: 'string', default: env.GANYMEDE_DB_SCHEMA },
  'pool-size': { type: 'string', default: env.GANYMEDE_DB_POOL_SIZE ?? String(DEFAULTS.poolSize) },
  grace: { type: 'string', default: env.GANYMEDE_RESTART_GRACE_SECONDS ?? String(DEFAULTS.restartGraceSeconds) },
  'reaper-interval-ms': { type: 'string', default: env.GANYMEDE_REAPER_INTERVAL_MS ?? String(DEFAULTS.reaperIntervalMs) },
  'notify-timeout-ms': { type: 'string', default: env.GANYMEDE_NOTIFY_TIMEOUT_MS ?? String(DEFAULTS.notifyTimeoutMs) },
  'lease-seconds': { type: 'string', default: env.GANYMEDE_LEASE_SECONDS ?? String(DEFAULTS.leaseSeconds) },
  'lease-grace-seconds': { type: 'string', default: env.GANYMEDE_LEASE_GRACE_SECONDS ?? String(DEFAULTS.leaseGraceSeconds) },
  'renew-deadline-ms': { type: 'string', default: env.GANYMEDE_RENEW_DEADLINE_MS },
  'clock-drift': { type: 'string', default: env.GANYMEDE_CLOCK_DRIFT ?? String(DEFAULTS.clockDrift) },
  'crash-loop-limit': { type: 'string', default: env.GANYMEDE_CRASH_LOOP_LIMIT ?? String(DEFAULTS.crashLoopLimit) },
  'crash-loop-window-seconds': {
    type: 'string',
    default: env.GANYMEDE_CRASH_LOOP_WINDOW_SECONDS ?? String(DEFAULTS.crashLoopWindowSeconds),
  },
  'shutdown-timeout-ms': { type: 'string', default: env.GANYMEDE_SHUTDOWN_TIMEOUT_MS ?? String(DEFAULTS.shutdownTimeoutMs) },
  'headers-timeout-ms': { type: 'string', default: env.GANYMEDE_HEADERS_TIMEOUT_MS ?? String(DEFAULT_HTTP_TIMEOUTS.headersMs) },
  'request-timeout-ms': { type: 'string', default: env.GANYMEDE_REQUEST_TIMEOUT_MS ?? String(DEFAULT_HTTP_TIMEOUTS.requestMs) },
  'max-snapshot-bytes': { type: 'string', default: env.GANYMEDE_MAX_SNAPSHOT_BYTES ?? String(DEFAULTS.maxSnapshotBytes) },
  'snapshot-retention': { type: 'string', default: env.GANYMEDE_SNAPSHOT_RETENTION ?? String(DEFAULTS.snapshotRetention) },
  'log-level': { type: 'string', default: env.GANYMEDE_LOG_LEVEL ?? 'info' },
  'metrics-open': { type: 'boolean', default: env.GANYMEDE_METRICS_OPEN === '1' },
} as const;

type ServeValues = {
  [K in keyof typeof SERVE_OPTIONS]: (typeof SERVE_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string | undefined;
};

export function positiveInt(name: string, text: string | undefined, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return n;
}

function fraction(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!(text?.trim() && Number.isFinite(n) && n >= 0 && n < 1)) {
    throw new UsageError(`--${name} must be a number >= 0 and < 1, got ${JSON.stringify(text)}`);
  }
  return n;
}

function httpTimeouts(values: ServeValues) {
  const headersMs = positiveInt('headers-timeout-ms', values['headers-timeout-ms']);
  const requestMs = positiveInt('request-timeout-ms', values['request-timeout-ms']);
  if (requestMs < headersMs) throw new UsageError('--request-timeout-ms must be at least --headers-timeout-ms');
  return { headersMs, requestMs };
}

/** After the shutdown timeout, how long closing the reaper and the database may take before the process exits. */
const SHUTDOWN_EXIT_MARGIN_MS = 2_000;

export async function serve(values: ServeValues): Promise<void> {
  const port = positiveInt('port', values.port, 0);
  const shutdownTimeoutMs = positiveInt('shutdown-timeout-ms', values['shutdown-timeout-ms']);
  const ganymede = await createGanymede({
    databaseUrl: values['database-url'],
    schema: values.schema,
    poolSize: positiveInt('pool-size', values['pool-size']),
    dataDir: values.memory ? ':memory:' : values['data-dir'],
    signingKey: env.GANYMEDE_SIGNING_KEY,
    keyDir: values['data-dir'],
    restartGraceSeconds: positiveInt('grace', values.grace),
    reaperIntervalMs: positiveInt('reaper-interval-ms', values['reaper-interval-ms']),
    notifyTimeoutMs: positiveInt('notify-timeout-ms', values['notify-timeout-ms']),
    leaseSeconds: positiveInt('lease-seconds', values['lease-seconds']),
    leaseGraceSeconds: positiveInt('lease-grace-seconds', values['lease-grace-seconds'], 0),
    renewDeadlineMs: values['renew-deadline-ms'] === undefined ? undefined : positiveInt('renew-deadline-ms', values['renew-deadline-ms']),
    clockDrift: fraction('clock-drift', values['clock-drift']),
    crashLoopLimit: positiveInt('crash-loop-limit', values['crash-loop-limit']),
    crashLoopWindowSeconds: positiveInt('crash-loop-window-seconds', values['crash-loop-window-seconds']),
    shutdownTimeoutMs,
    httpTimeouts: httpTimeouts(values),
    maxSnapshotBytes: positiveInt('max-snapshot-bytes', values['max-snapshot-bytes']),
    snapshotRetention: positiveInt('snapshot-retention', values['snapshot-retention']),
    logLevel: values['log-level'],
    metricsOpen: values['metrics-open'],
  });
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      ganymede.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    ganymede.log.info({ signal }, 'shutting down: finishing requests in flight');
    // The HTTP side is bounded by the shutdown timeout; this bounds the rest (a reaper pass or a database close
    // stuck on an unreachable PostgreSQL), so no lingering process ever holds the data directory.
    setTimeout(() => {
      ganymede.log.error({ shutdown_timeout_ms: shutdownTimeoutMs }, 'shutdown still running past its deadline: exiting');
      process.exit(1);
    }, shutdownTimeoutMs + SHUTDOWN_EXIT_MARGIN_MS).unref();
    ganymede.close().then(
      () => ganymede.log.info('stopped'),
      (err: unknown) => {
        ganymede.log.error({ err }, 'shutdown failed');
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  const address = await ganymede.listen(port, values.host);
  ganymede.log.info({ dashboard: `${address}/ui` }, 'the dashboard: open it, and log in with a token from `ganymede token admin`');
}
