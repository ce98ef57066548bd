#!/usr/bin/env node
/**
 * `ganymede serve | gateway add | token user | status`. Operators' commands talk to a running server
 * over HTTP with an admin token minted from the signing key (the embedded database has one owner: the server).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ganymedeContract } from '@ganymede/contracts';
import { initClient } from '@ts-rest/core';
import { DEFAULT_HTTP_TIMEOUTS, MAX_HEADER_BYTES } from '@ganymede/http-server';
import { readSigningKey, Tokens } from './auth.js';
import { GanymedeError, UsageError } from './errors.js';
import { createGanymede, DEFAULTS } from './ganymede.js';

const USAGE = `usage:
  ganymede serve [--port 4000] [--host 127.0.0.1] [--data-dir DIR | --memory | --database-url postgres://…]
                 [--schema NAME] [--pool-size 10] [--grace SECONDS] [--lease-seconds 10] [--lease-grace-seconds 10]
                 [--crash-loop-limit 5] [--crash-loop-window-seconds 300] [--shutdown-timeout-ms 5000]
                 [--headers-timeout-ms 10000] [--request-timeout-ms 30000]
                 [--max-snapshot-bytes 16777216] [--snapshot-retention 10] [--metrics-open]
  ganymede gateway add --url URL [--json]
  ganymede token user --organization UUID [--user ID] [--json]
  ganymede status [--json]

common: --data-dir DIR (default .ganymede; holds the database and signing key), --ganymede-url URL
environment: DATABASE_URL, GANYMEDE_DB_SCHEMA, GANYMEDE_DB_POOL_SIZE, GANYMEDE_PORT, GANYMEDE_HOST, GANYMEDE_DATA_DIR, GANYMEDE_URL, GANYMEDE_SIGNING_KEY,
  GANYMEDE_RESTART_GRACE_SECONDS, GANYMEDE_REAPER_INTERVAL_MS, GANYMEDE_NOTIFY_TIMEOUT_MS, GANYMEDE_LOG_LEVEL,
  GANYMEDE_LEASE_SECONDS, GANYMEDE_LEASE_GRACE_SECONDS, GANYMEDE_CRASH_LOOP_LIMIT, GANYMEDE_CRASH_LOOP_WINDOW_SECONDS,
  GANYMEDE_SHUTDOWN_TIMEOUT_MS, GANYMEDE_HEADERS_TIMEOUT_MS, GANYMEDE_REQUEST_TIMEOUT_MS, GANYMEDE_MAX_SNAPSHOT_BYTES,
  GANYMEDE_SNAPSHOT_RETENTION, GANYMEDE_METRICS_OPEN`;

const env = process.env;
const OPTIONS = {
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
  'ganymede-url': { type: 'string', default: env.GANYMEDE_URL },
  url: { type: 'string' },
  organization: { type: 'string', multiple: true },
  user: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The command line, or exit 2 with the parser's reason (an unknown flag, a missing value) and the usage. */
function parseCommandLine() {
  try {
    return parseArgs({ allowPositionals: true, options: OPTIONS });
  } catch (error) {
    process.stderr.write(`ganymede: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}
const { positionals, values } = parseCommandLine();

function positiveInt(name: string, text: string | undefined, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return n;
}

/** The operators' commands only read the key: a command run from the wrong directory must not mint a new secret. */
const tokens = async () => new Tokens(await readSigningKey(env.GANYMEDE_SIGNING_KEY, values['data-dir']));
const serverUrl = () => values['ganymede-url'] ?? `http://${values.host}:${values.port}`;

async function adminClient() {
  const token = await (await tokens()).sign({ typ: 'admin', sub: 'cli' });
  return { client: initClient(ganymedeContract, { baseUrl: serverUrl(), throwOnUnknownStatus: true }), authorization: `Bearer ${token}` };
}

function print(value: unknown, text: string) {
  process.stdout.write(values.json ? JSON.stringify(value) + '\n' : text + '\n');
}

function httpTimeouts() {
  const headersMs = positiveInt('headers-timeout-ms', values['headers-timeout-ms']);
  const requestMs = positiveInt('request-timeout-ms', values['request-timeout-ms']);
  if (requestMs < headersMs) throw new UsageError('--request-timeout-ms must be at least --headers-timeout-ms');
  return { headersMs, requestMs };
}

/** After the shutdown timeout, how long closing the reaper and the database may take before the process exits. */
const SHUTDOWN_EXIT_MARGIN_MS = 2_000;

async function serve() {
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
    crashLoopLimit: positiveInt('crash-loop-limit', values['crash-loop-limit']),
    crashLoopWindowSeconds: positiveInt('crash-loop-window-seconds', values['crash-loop-window-seconds']),
    shutdownTimeoutMs,
    httpTimeouts: httpTimeouts(),
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
  await ganymede.listen(port, values.host);
}

async function addGateway() {
  if (!values.url) throw new UsageError('gateway add needs --url URL');
  const { client, authorization } = await adminClient();
  const res = await client.addGateway({ headers: { authorization }, body: { url: values.url } });
  if (res.status !== 201) throw new GanymedeError('GANYMEDE_ANSWER', `${res.status} ${JSON.stringify(res.body)}`);
  print(res.body, `gateway_id ${res.body.gateway_id}\ntoken ${res.body.token}`);
}

/** Left in the header limit for the request line and the other headers. */
const HEADER_ROOM_BYTES = 2_048;

async function userToken() {
  const organizations = values.organization ?? [];
  if (!organizations.length) throw new UsageError('token user needs --organization UUID (repeatable)');
  const token = await (await tokens()).sign({ typ: 'user', sub: values.user ?? `local-${randomUUID()}`, organizations });
  // A token past the server's header limit could never be used: say so now, not at the user's first call.
  if (`Authorization: Bearer ${token}`.length > MAX_HEADER_BYTES - HEADER_ROOM_BYTES) {
    throw new GanymedeError('USER_TOKEN_TOO_LARGE', `${organizations.length} organizations make a token too large for a request header`);
  }
  print({ token }, token);
}

async function status() {
  const { client, authorization } = await adminClient();
  const res = await client.status({ headers: { authorization } });
  if (res.status !== 200) throw new GanymedeError('GANYMEDE_ANSWER', `${res.status} ${JSON.stringify(res.body)}`);
  const header = ['gateway', 'state', 'organization', 'epoch', 'since'];
  const rows = res.body.gateways.map((g) => [
    g.gateway_id,
    g.ready ? g.state : `${g.state} (not ready)`,
    g.organization_id ?? '-',
    String(g.epoch ?? '-'),
    g.since,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const table = [header, ...rows].map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  print(res.body.gateways, table.join('\n'));
}

const commands: Record<string, () => Promise<void>> = {
  serve,
  'gateway add': addGateway,
  'token user': userToken,
  status,
};

const command = commands[positionals.join(' ')];
if (values.help || !command) {
  process.stderr.write(USAGE + '\n');
  process.exitCode = values.help ? 0 : 2;
} else {
  command().catch((error: unknown) => {
    process.stderr.write(`ganymede: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  });
}
