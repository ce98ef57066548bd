/**
 * Attack suite, a second owner, with real processes: two `ganymede serve` on one embedded database directory,
 * a restart after SIGKILL, and the operators' commands run against the wrong directory.
 */
import { access, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GANYMEDE_CLI, registerGateway, runCli, stopProcess } from '@ganymede/testkit';
import { ganymede } from './support.js';

/** Runs the CLI to its end: exit code and stderr. */
const run = (args: string[], env: NodeJS.ProcessEnv) =>
  runCli(GANYMEDE_CLI, args, env).then(
    (stdout) => ({ code: 0, stdout, stderr: '' }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

const statusOf = async (g: Awaited<ReturnType<typeof ganymede>>) => JSON.parse(await g.cli('status', '--json')) as { gateway_id: string }[];

describe('one owner per data directory', () => {
  it("a second server on the same directory exits 1 naming the holder's pid, and the first one keeps every write", async () => {
    const first = await ganymede({ embedded: true });
    const gw = await registerGateway(first);
    const second = await run(['serve', '--port', '0'], { ...first.env, GANYMEDE_PORT: '0' });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`in use by another ganymede (pid ${first.proc.pid})`);
    // The first server is untouched: it still serves, and what it acknowledged is there after a clean restart.
    expect((await statusOf(first)).map((g) => g.gateway_id)).toEqual([gw.gateway_id]);
    expect(await stopProcess(first.proc, 'SIGTERM')).toEqual({ code: 0, signal: null });
    const reopened = await ganymede({ embedded: true, dataDir: first.dataDir });
    expect((await statusOf(reopened)).map((g) => g.gateway_id)).toEqual([gw.gateway_id]);
  });

  it('a server killed with SIGKILL leaves no lock behind: the next one starts on the directory at once', async () => {
    const first = await ganymede({ embedded: true });
    const gw = await registerGateway(first);
    expect(await stopProcess(first.proc, 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    const next = await ganymede({ embedded: true, dataDir: first.dataDir });
    expect((await statusOf(next)).map((g) => g.gateway_id)).toEqual([gw.gateway_id]);
  });

  it("the operators' commands never create a signing key: from another directory they fail and say why", async () => {
    const server = await ganymede();
    const elsewhere = await mkdtemp(join(tmpdir(), 'not-the-data-dir-'));
    const status = await run(['status', '--data-dir', elsewhere, '--ganymede-url', server.url], { GANYMEDE_SIGNING_KEY: '' });
    expect(status.code).toBe(4);
    expect(status.stderr).toContain(`no signing key at ${elsewhere}/signing.key`);
    await expect(access(join(elsewhere, 'signing.key'))).rejects.toThrow();
  });
});
