/**
 * The operators' commands as a user runs them, against a real server: what each error says, the exit codes,
 * read-only commands that create nothing, GANYMEDE_ADMIN_TOKEN from another directory, `--help` everywhere, and
 * `status --watch` showing a restart as it happens.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findFreePort,
  GANYMEDE_CLI,
  type GanymedeProcess,
  runCli,
  type ScriptedGateway,
  scriptedGateway,
  spawnCli,
  startGanymedeProcess,
  tempDir,
} from '@ganymede/testkit';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `ganymede args…` in `cwd` with only `env` of Ganymede's variables (the test runner's shell may have others). */
const ganymede = (args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Run> =>
  runCli(
    GANYMEDE_CLI,
    args,
    { GANYMEDE_URL: '', GANYMEDE_DATA_DIR: '', GANYMEDE_SIGNING_KEY: '', GANYMEDE_ADMIN_TOKEN: '', ...env },
    cwd,
  ).then(
    (stdout) => ({ code: 0, stdout, stderr: '' }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

let g: GanymedeProcess;
let gw: ScriptedGateway;
/** Where the operators' commands point at the server, and its key. */
let server: NodeJS.ProcessEnv;

beforeAll(async () => {
  g = await startGanymedeProcess();
  gw = await scriptedGateway(g);
  server = { GANYMEDE_URL: g.url, GANYMEDE_DATA_DIR: g.dataDir };
});
afterAll(async () => {
  await gw?.close();
  await g?.proc.kill();
});

const OTHER_KEY = 'cd'.repeat(32);

describe('exit codes', () => {
  it.each([
    ['success', ['status'], () => server, 0, ''],
    ['a usage error', ['status', '--bogus'], () => server, 2, "Unknown option '--bogus'"],
    [
      'Ganymede unreachable',
      ['status'],
      async () => ({ ...server, GANYMEDE_URL: `http://127.0.0.1:${await findFreePort()}` }),
      3,
      'cannot reach',
    ],
    ['a refused admin token', ['status'], () => ({ ...server, GANYMEDE_SIGNING_KEY: OTHER_KEY }), 4, 'refused'],
  ] as const)('%s: exit %i', async (_name, args, env, code, says) => {
    const run = await ganymede([...args], await env());
    expect(run.code, run.stderr).toBe(code);
    expect(run.stderr).toContain(says);
  });
});

describe('errors say what to do', () => {
  it('unreachable: names the URL it tried and the flag and variable that set it', async () => {
    const url = `http://127.0.0.1:${await findFreePort()}`;
    const byFlag = await ganymede(['status', '--ganymede-url', url], server);
    expect(byFlag.code).toBe(3);
    expect(byFlag.stderr).toContain(`cannot reach Ganymede at ${url} (ECONNREFUSED); the URL came from --ganymede-url`);
    expect(byFlag.stderr).toContain('--ganymede-url URL or GANYMEDE_URL');
    const byDefault = await ganymede(['status', '--data-dir', g.dataDir], { GANYMEDE_PORT: String(await findFreePort()) });
    expect(byDefault.stderr).toContain("the URL came from the server's GANYMEDE_HOST and GANYMEDE_PORT");
  });

  it("a key that is not the server's: says where it looked and how to point elsewhere", async () => {
    const otherDir = await tempDir('other-data');
    await writeFile(join(otherDir, 'signing.key'), `${OTHER_KEY}\n`);
    const run = await ganymede(['status', '--data-dir', otherDir], { GANYMEDE_URL: g.url });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`refused a token signed with the key in ${join(otherDir, 'signing.key')}`);
    expect(run.stderr).toContain('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(run.stderr).toContain('--data-dir or GANYMEDE_DATA_DIR');
    expect(run.stderr).toContain('GANYMEDE_ADMIN_TOKEN');
    const byVariable = await ganymede(['status'], { GANYMEDE_URL: g.url, GANYMEDE_SIGNING_KEY: OTHER_KEY });
    expect(byVariable.stderr).toContain('refused a token signed with the key in GANYMEDE_SIGNING_KEY');
  });
});

describe('read-only commands create nothing', () => {
  it.each([
    ['status', ['status']],
    ['status --json', ['status', '--json']],
    ['token admin', ['token', 'admin']],
    ['token user', ['token', 'user', '--organization', '3c1e5b7a-9d2f-4a6c-8e0b-1f2a3b4c5d6e']],
  ])('%s in an empty directory: exit 4, says where it looked for the key, and the directory stays empty', async (_name, args) => {
    const empty = await tempDir('empty-cwd');
    const run = await ganymede(args, { GANYMEDE_URL: g.url }, empty);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`no signing key at ${join(empty, '.ganymede', 'signing.key')}`);
    expect(await readdir(empty)).toEqual([]);
  });
});

describe('GANYMEDE_ADMIN_TOKEN', () => {
  it('`token admin` mints one from the key; another directory, without the key, runs status with it', async () => {
    const { token } = JSON.parse((await ganymede(['token', 'admin', '--ttl', '10m', '--json'], server)).stdout) as { token: string };
    const elsewhere = await tempDir('another-machine');
    const run = await ganymede(['status', '--json'], { GANYMEDE_URL: g.url, GANYMEDE_ADMIN_TOKEN: token }, elsewhere);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { gateway_id: string }[]).map((x) => x.gateway_id)).toContain(gw.gatewayId);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('a bad one is refused (exit 4) with what to do', async () => {
    const run = await ganymede(['status'], { GANYMEDE_URL: g.url, GANYMEDE_ADMIN_TOKEN: 'not-a-token' });
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('refused the token in GANYMEDE_ADMIN_TOKEN (401 unauthorized');
    expect(run.stderr).toContain('mint a new one with `ganymede token admin`');
  });

  it('`token admin --ttl` refuses a span jose would not read (exit 2)', async () => {
    const run = await ganymede(['token', 'admin', '--ttl', 'forever'], server);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--ttl must be a number and s, m, h or d');
  });
});

describe('--help on every command', () => {
  it.each([
    [[], 'usage: ganymede <command>'],
    [['help'], 'usage: ganymede <command>'],
    [['serve'], 'usage: ganymede serve'],
    [['gateway'], 'usage: ganymede gateway <add>'],
    [['gateway', 'add'], 'usage: ganymede gateway add'],
    [['token'], 'usage: ganymede token <user|admin>'],
    [['token', 'user'], 'usage: ganymede token user'],
    [['token', 'admin'], 'usage: ganymede token admin'],
    [['status'], 'usage: ganymede status'],
  ])('ganymede %j --help: exit 0 with its usage', async (words, usage) => {
    const run = await ganymede([...words, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(usage);
  });

  it.each([
    [['status', '--url', 'http://x']],
    [['token', 'admin', '--organization', 'x']],
    [['gateway', 'add', '--watch']],
    [['token', 'user', '--ttl', '1h']],
  ])('a flag of another command, ganymede %j: exit 2, names it', async (args) => {
    const run = await ganymede(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`Unknown option '${args.find((a) => a.startsWith('--'))}'`);
  });
});

describe('status --watch', () => {
  it('redraws the pool until Ctrl-C: a restart shows as restarting, then active again at epoch 2', async () => {
    const watcher = spawnCli(GANYMEDE_CLI, ['status', '--watch', '--interval-ms', '200'], { env: { ...server, GANYMEDE_ADMIN_TOKEN: '' } });
    const row = (state: string, epoch: string) => (l: { msg?: unknown }) =>
      new RegExp(`^${gw.gatewayId}\\s+${state}\\s+\\S+\\s+${epoch}\\s`).test(String(l.msg));
    try {
      await watcher.waitForLog(row('idle', '-'));
      await gw.allocate();
      await watcher.waitForLog(row('active', '1'));
      await gw.restart();
      const restarting = await watcher.waitForLog(row('restarting', '1'));
      await gw.reclaim();
      await watcher.waitForLog(row('active', '2'), { from: watcher.logs.indexOf(restarting) });
      watcher.signal('SIGINT');
      expect(await watcher.exited).toEqual({ code: 0, signal: null });
    } finally {
      await watcher.kill();
    }
  });
});
