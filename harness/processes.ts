/** Ganymede's CLI as a real process, and one-shot CLI commands, for the demo, end-to-end tests and benchmark. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type LoggedProcess, spawnLogged } from '@ganymede/process-harness';
import { CLIS } from '../scripts/build.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The CLIs' bundles (built by `pnpm build`, and by the tests', demo's and benchmark's set-up). */
export const GANYMEDE_CLI = `${ROOT}${CLIS.ganymede.bundle}`;
export const GATEWAY_CLI = `${ROOT}${CLIS.gateway.bundle}`;

/** A CLI as a real process: plain node running its bundle, so signals reach it directly. */
export function spawnCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}, echo = false): LoggedProcess {
  return spawnLogged(process.execPath, [script, ...args], { cwd: ROOT, env, echo });
}

/** Runs a CLI command to completion and answers its stdout; throws with its stderr (and `code`) on a non-zero exit. */
export async function runCli(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  return stdout;
}

/** Sends `signal` unless the process already exited, and waits for the exit. */
export async function stopProcess(p: LoggedProcess, signal: NodeJS.Signals = 'SIGTERM') {
  p.signal(signal);
  return p.exited;
}
