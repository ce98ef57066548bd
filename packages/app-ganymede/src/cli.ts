/**
 * `ganymede serve | gateway add | token user | token admin | status`. Operators' commands talk to a running server
 * over HTTP with an admin token (GANYMEDE_ADMIN_TOKEN, or one minted from the signing key: the embedded database
 * has one owner, the server). They create nothing where they run: the key is only ever read.
 * Exit codes (README, "Configuration and CLIs"): 0 done, 1 failed, 2 usage, 3 Ganymede unreachable, 4 refused.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MAX_HEADER_BYTES } from '@ganymede/http-server';
import { ADMIN_OPTIONS, adminCall, adminCredential, signingKey, target } from './cli/admin-api.js';
import { poolTable, watch } from './cli/pool-table.js';
import { positiveInt, serve, SERVE_OPTIONS } from './cli/serve.js';
import { GanymedeError, type GanymedeErrorCode, UsageError } from './errors.js';

const env = process.env;

/** Exit codes by error code; any other failure exits 1. */
const EXIT_CODES: Partial<Record<GanymedeErrorCode, number>> = {
  GANYMEDE_USAGE: 2,
  GANYMEDE_UNREACHABLE: 3,
  ADMIN_TOKEN_REFUSED: 4,
  SIGNING_KEY_MISSING: 4,
};

interface Command {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | string[] | undefined>): Promise<void>;
}

const ADMIN_HELP = `  --ganymede-url URL   the server (GANYMEDE_URL; default http://127.0.0.1:4000)
  --data-dir DIR       where the server keeps its signing key (GANYMEDE_DATA_DIR; default .ganymede), read only;
                       or GANYMEDE_SIGNING_KEY, or GANYMEDE_ADMIN_TOKEN (then no key is needed)
  --json               machine-readable output`;

function print(json: unknown, text: string, asJson: unknown) {
  process.stdout.write(asJson ? JSON.stringify(json) + '\n' : text + '\n');
}

/** Left in the header limit for the request line and the other headers. */
const HEADER_ROOM_BYTES = 2_048;
/** jose's time spans: a number and a unit. */
const TTL = /^[1-9][0-9]*(s|m|h|d)$/;

const COMMANDS: Record<string, Command> = {
  serve: {
    usage: `ganymede serve [flags]: run the server
  --port 4000 (GANYMEDE_PORT)  --host 127.0.0.1 (GANYMEDE_HOST)
  --data-dir DIR | --memory | --database-url postgres://… [--schema NAME] [--pool-size 10]
  --grace SECONDS  --reaper-interval-ms MS  --notify-timeout-ms MS  --lease-seconds 10  --lease-grace-seconds 10
  --renew-deadline-ms (lease + grace) × 750  --clock-drift 0.05
  --crash-loop-limit 5  --crash-loop-window-seconds 300  --shutdown-timeout-ms 5000
  --headers-timeout-ms 10000  --request-timeout-ms 30000  --max-snapshot-bytes 16777216  --snapshot-retention 10
  --log-level info  --metrics-open (GANYMEDE_METRICS_OPEN=1: /metrics without a token)
each flag's variable is in the README ("Configuration and CLIs"); GANYMEDE_SIGNING_KEY sets the key.
The dashboard is at /ui.`,
    options: SERVE_OPTIONS,
    run: (values) => serve(values as Parameters<typeof serve>[0]),
  },
  'gateway add': {
    usage: `ganymede gateway add --url URL [--json]: register a gateway; prints its id and token\n${ADMIN_HELP}`,
    options: { ...ADMIN_OPTIONS, url: { type: 'string' } },
    async run(values) {
      const url = values.url as string | undefined;
      if (!url) throw new UsageError('gateway add needs --url URL');
      const body = await adminCall(target(values, env), await adminCredential(values, env), (c, args) =>
        c.addGateway({ ...args, body: { url } }),
      );
      print(body, `gateway_id ${body.gateway_id}\ntoken ${body.token}`, values.json);
    },
  },
  'token user': {
    usage: `ganymede token user --organization UUID [--organization UUID…] [--user ID] [--json]: mint a user token
  --data-dir DIR / GANYMEDE_SIGNING_KEY: the server's signing key, read only`,
    options: {
      'data-dir': ADMIN_OPTIONS['data-dir'],
      json: ADMIN_OPTIONS.json,
      organization: { type: 'string', multiple: true },
      user: { type: 'string' },
    },
    async run(values) {
      const organizations = (values.organization as string[] | undefined) ?? [];
      if (!organizations.length) throw new UsageError('token user needs --organization UUID (repeatable)');
      const { tokens } = await signingKey(values, env);
      const token = await tokens.sign({ typ: 'user', sub: (values.user as string | undefined) ?? `local-${randomUUID()}`, organizations });
      // A token past the server's header limit could never be used: say so now, not at the user's first call.
      if (`Authorization: Bearer ${token}`.length > MAX_HEADER_BYTES - HEADER_ROOM_BYTES) {
        throw new GanymedeError(
          'USER_TOKEN_TOO_LARGE',
          `${organizations.length} organizations make a token too large for a request header`,
        );
      }
      print({ token }, token, values.json);
    },
  },
  'token admin': {
    usage: `ganymede token admin [--ttl 1h] [--json]: mint an admin token, for GANYMEDE_ADMIN_TOKEN on another machine
or the dashboard's login
  --ttl SPAN           how long it is good for: a number and s, m, h or d (default 1h)
  --data-dir DIR / GANYMEDE_SIGNING_KEY: the server's signing key, read only`,
    options: { 'data-dir': ADMIN_OPTIONS['data-dir'], json: ADMIN_OPTIONS.json, ttl: { type: 'string', default: '1h' } },
    async run(values) {
      const ttl = values.ttl as string;
      if (!TTL.test(ttl)) throw new UsageError(`--ttl must be a number and s, m, h or d (like 30m), got ${JSON.stringify(ttl)}`);
      const { tokens } = await signingKey(values, env);
      const token = await tokens.sign({ typ: 'admin', sub: 'cli' }, ttl);
      print({ token }, token, values.json);
    },
  },
  status: {
    usage: `ganymede status [--watch [--interval-ms 1000]] [--json]: every gateway with its live allocation
  --watch              redraw it every --interval-ms until Ctrl-C (with --json: one line of JSON each time)
${ADMIN_HELP}`,
    options: { ...ADMIN_OPTIONS, watch: { type: 'boolean', default: false }, 'interval-ms': { type: 'string', default: '1000' } },
    async run(values) {
      const intervalMs = positiveInt('interval-ms', values['interval-ms'] as string, 100);
      const where = target(values, env);
      const credential = await adminCredential(values, env);
      const frame = async () => {
        const body = await adminCall(where, credential, (c, args) => c.status(args));
        return values.json ? JSON.stringify(body.gateways) : poolTable(body.gateways, body.lease_seconds);
      };
      if (!values.watch) {
        process.stdout.write(`${await frame()}\n`);
        return;
      }
      // A server restarting is worth waiting for; a refused token would be refused again.
      const keepGoing = (error: unknown) => error instanceof GanymedeError && error.code === 'GANYMEDE_UNREACHABLE';
      await watch(frame, { intervalMs, out: process.stdout, json: Boolean(values.json), keepGoing });
    },
  },
};

/** Command groups, so that `ganymede token --help` lists what is in it. */
const GROUPS = ['gateway', 'token'];

const USAGE = `usage: ganymede <command> [flags]   (ganymede <command> --help for its flags)
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage.split('\n')[0]}`)
  .join('\n')}
exit codes: 0 done, 1 failed, 2 usage, 3 Ganymede unreachable, 4 admin token refused or no signing key`;

function fail(error: unknown): number {
  process.stderr.write(`ganymede: ${error instanceof Error ? error.message : String(error)}\n`);
  return error instanceof GanymedeError ? (EXIT_CODES[error.code] ?? 1) : 1;
}

/** Finds the command among the leading words, parses its flags strictly, and runs it. Answers the exit code. */
async function main(argv: string[]): Promise<number> {
  const words = argv.slice(0, 2).filter((w) => !w.startsWith('-'));
  const name = [words.join(' '), words[0] ?? ''].find((n) => COMMANDS[n]);
  const help = argv.includes('--help') || argv.includes('-h');
  if (!name) {
    const group = GROUPS.includes(words[0] ?? '') ? words[0] : undefined;
    const text = group
      ? `usage: ganymede ${group} <${Object.keys(COMMANDS)
          .filter((n) => n.startsWith(`${group} `))
          .map((n) => n.slice(group.length + 1))
          .join('|')}> [flags]\n${USAGE}`
      : USAGE;
    if (help || words[0] === 'help') {
      process.stdout.write(text + '\n');
      return 0;
    }
    process.stderr.write(`ganymede: ${words.length ? `unknown command ${JSON.stringify(words.join(' '))}` : 'no command'}\n${text}\n`);
    return 2;
  }
  const command = COMMANDS[name]!;
  const rest = argv.slice(name.split(' ').length);
  let values;
  try {
    ({ values } = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`ganymede ${name}: ${(error as Error).message}\nusage: ${command.usage}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`usage: ${command.usage}\n`);
    return 0;
  }
  try {
    await command.run(values);
    return 0;
  } catch (error) {
    const code = fail(error);
    if (code === 2) process.stderr.write(`usage: ${command.usage}\n`);
    return code;
  }
}

// `serve` keeps running after main() resolves; the one-shot commands end when nothing is left to do.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = fail(error);
  },
);
