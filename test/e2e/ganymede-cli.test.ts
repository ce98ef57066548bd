/** `ganymede` as operators run it: bad flags and commands exit 2 with a clear message, before any database is opened. */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GANYMEDE_CLI, runCli } from '@ganymede/testkit';

/** Runs the CLI to its end: exit code and stderr. */
const ganymede = (args: string[]) =>
  runCli(GANYMEDE_CLI, args).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
  );

describe('ganymede CLI usage errors', () => {
  it.each([
    [['serve', '--pool-size', '0', '--database-url', 'postgres://nobody@127.0.0.1:1/none'], '--pool-size must be an integer >= 1, got "0"'],
    [['serve', '--lease-seconds', 'soon', '--memory'], '--lease-seconds must be an integer >= 1, got "soon"'],
    [['serve', '--port=-1', '--memory'], '--port must be an integer >= 0, got "-1"'],
    [['serve', '--bogus'], "Unknown option '--bogus'"],
    [['serve', '--port'], "Option '--port <value>' argument missing"],
    [['gateway', 'add'], 'gateway add needs --url URL'],
    [['launch'], 'usage:'],
  ])('ganymede %j: exit 2, %s', async (args, message) => {
    const { code, stderr } = await ganymede(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });
});

describe('ganymede token user', () => {
  const env = { GANYMEDE_SIGNING_KEY: 'ab'.repeat(32) };
  const organizations = (n: number) => Array.from({ length: n }, () => ['--organization', randomUUID()]).flat();

  it('mints a token for 1,000 organizations', async () => {
    const stdout = await runCli(GANYMEDE_CLI, ['token', 'user', ...organizations(1_000), '--json'], env);
    expect((JSON.parse(stdout) as { token: string }).token.length).toBeGreaterThan(50_000);
  });

  it('refuses a token that would not fit the header limit (1,500 organizations): exit 1, and says why', async () => {
    const failed = await runCli(GANYMEDE_CLI, ['token', 'user', ...organizations(1_500)], env).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('1500 organizations make a token too large for a request header');
  });
});
