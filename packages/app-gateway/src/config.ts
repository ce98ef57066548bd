/**
 * Configuration from the environment (upstream's names), each overridable by a command-line flag.
 * Invalid configuration is a ConfigError; the CLI exits 2 on it.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';

export interface GatewayConfig {
  gatewayId: string;
  gatewayToken: string;
  ganymedeUrl: string;
  /** 0 = any free port. */
  port: number;
  host: string;
  reloadMarker: string;
  shutdownTimeoutMs: number;
  /** Passed to /gateway/restart as `grace_seconds` when set. */
  restartGraceSeconds: number | undefined;
  runDir: string;
  logLevel: LogLevel;
  /** How long boot calls to Ganymede are retried before the process gives up (exit 1). */
  bootTimeoutMs: number;
  /** Timeout of each call to Ganymede (shutdown calls also get at most what is left of the shutdown budget). */
  requestTimeoutMs: number;
  /**
   * Accept on this inherited, already bound socket instead of binding `port` (the supervisor's socket, or one
   * from systemd socket activation).
   */
  listenFd: number | undefined;
  /** After a hot restart's takeover, the old process finishes its requests within this long. */
  drainTimeoutMs: number;
  /** A hot restart's successor must have reclaimed (or come up idle) within this long, or the restart is withdrawn. */
  handoverTimeoutMs: number;
  /** The organization's state is pushed this often when it changed (a crash loses at most this much). */
  autosaveMs: number;
}

/** What `gateway reload` and `gateway stop` need: where the supervisor's pid file and the marker files are. */
export interface ControlConfig {
  runDir: string;
  reloadMarker: string;
  shutdownTimeoutMs: number;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Each setting: its environment variable and its flag. */
export const SETTINGS = {
  gatewayId: { env: 'GATEWAY_ID', flag: 'id' },
  gatewayToken: { env: 'GATEWAY_TOKEN', flag: 'token' },
  ganymedeUrl: { env: 'GANYMEDE_URL', flag: 'ganymede-url' },
  port: { env: 'GATEWAY_PORT', flag: 'port' },
  host: { env: 'GATEWAY_HOST', flag: 'host' },
  reloadMarker: { env: 'GATEWAY_RELOAD_MARKER', flag: 'reload-marker' },
  shutdownTimeoutMs: { env: 'GATEWAY_SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms' },
  restartGraceSeconds: { env: 'GATEWAY_RESTART_GRACE_SECONDS', flag: 'restart-grace-seconds' },
  runDir: { env: 'GATEWAY_RUN_DIR', flag: 'run-dir' },
  logLevel: { env: 'GATEWAY_LOG_LEVEL', flag: 'log-level' },
  bootTimeoutMs: { env: 'GATEWAY_BOOT_TIMEOUT_MS', flag: 'boot-timeout-ms' },
  requestTimeoutMs: { env: 'GATEWAY_REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms' },
  listenFd: { env: 'GATEWAY_LISTEN_FD', flag: 'listen-fd' },
  drainTimeoutMs: { env: 'GATEWAY_DRAIN_TIMEOUT_MS', flag: 'drain-timeout-ms' },
  handoverTimeoutMs: { env: 'GATEWAY_HANDOVER_TIMEOUT_MS', flag: 'handover-timeout-ms' },
  autosaveMs: { env: 'GATEWAY_AUTOSAVE_MS', flag: 'autosave-ms' },
} as const satisfies Record<keyof GatewayConfig, { env: string; flag: string }>;

export type SettingFlag = (typeof SETTINGS)[keyof typeof SETTINGS]['flag'];
export type Flags = Partial<Record<SettingFlag, string | undefined>>;

const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, 'expected a whole number').transform(Number).pipe(z.number().int().min(min).max(max));

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

const schemas = {
  gatewayId: z.string().uuid(),
  gatewayToken: z.string().min(1),
  ganymedeUrl: httpUrl.default('http://127.0.0.1:4000'),
  port: int(0, 65_535).default('4100'),
  host: z.string().min(1).default('127.0.0.1'),
  reloadMarker: z.string().min(1).default('/tmp/gateway-reloading'),
  shutdownTimeoutMs: int(100, 600_000).default('3000'),
  restartGraceSeconds: int(1, 86_400).optional(),
  runDir: z.string().min(1).optional(),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  bootTimeoutMs: int(0, 3_600_000).default('60000'),
  requestTimeoutMs: int(50, 600_000).default('5000'),
  listenFd: int(3, 65_535).optional(),
  drainTimeoutMs: int(100, 3_600_000).default('30000'),
  handoverTimeoutMs: int(100, 3_600_000).default('30000'),
  autosaveMs: int(100, 3_600_000).default('5000'),
} satisfies Record<keyof GatewayConfig, z.ZodTypeAny>;

type Key = keyof typeof schemas;

function read(env: NodeJS.ProcessEnv, flags: Flags, keys: readonly Key[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const key of keys) {
    const { env: name, flag } = SETTINGS[key];
    const raw = flags[flag] ?? (env[name] === '' ? undefined : env[name]);
    const parsed = schemas[key].safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else {
      const got = raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`;
      problems.push(`${name} (--${flag}): ${parsed.error.issues.map((i) => i.message).join(', ')}${got}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return out;
}

const defaultRunDir = (gatewayId: string) => `/tmp/gateway-${gatewayId}`;

/** The full configuration `gateway run` and `gateway supervise` need. */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Flags = {}): GatewayConfig {
  const c = read(env, flags, Object.keys(schemas) as Key[]) as Omit<GatewayConfig, 'runDir'> & { runDir?: string };
  return { ...c, runDir: c.runDir ?? defaultRunDir(c.gatewayId) };
}

/** What `gateway reload`/`gateway stop` need: no token, and the gateway id only to derive the default run dir. */
export function loadControlConfig(env: NodeJS.ProcessEnv, flags: Flags = {}): ControlConfig {
  const c = read(env, flags, ['reloadMarker', 'shutdownTimeoutMs', 'runDir']) as Pick<
    GatewayConfig,
    'reloadMarker' | 'shutdownTimeoutMs'
  > & {
    runDir?: string;
  };
  if (c.runDir) return { ...c, runDir: c.runDir };
  const { gatewayId } = read(env, flags, ['gatewayId']) as { gatewayId: string };
  return { ...c, runDir: defaultRunDir(gatewayId) };
}

/** The configuration as environment variables: how the supervisor hands flags it was given to its child. */
export function configToEnv(config: GatewayConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, { env: name }] of Object.entries(SETTINGS)) {
    const value = config[key as keyof GatewayConfig];
    if (value !== undefined) env[name] = String(value);
  }
  return env;
}
