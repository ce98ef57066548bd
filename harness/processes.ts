/** Ganymede's CLI as a real process, and one-shot CLI commands, for the demo, end-to-end tests and benchmark. */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type LoggedProcess, spawnLogged } from '@ganymede/process-harness';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const GANYMEDE_CLI = `${ROOT}packages/app-ganymede/src/cli.ts`;
export const GATEWAY_CLI = `${ROOT}packages/app-gateway/src/cli.ts`;

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A TypeScript CLI under node with the tsx loader: signals reach the node process itself. */
export function spawnTs(script: string, args: string[], env: NodeJS.ProcessEnv = {}, echo = false): LoggedProcess {
  return spawnLogged(process.execPath, ['--import', TSX, script, ...args], { cwd: ROOT, env, echo });
}

/** Runs a CLI command to completion and answers its stdout; throws with its stderr on a non-zero exit. */
export async function runTs(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', TSX, script, ...args], {
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
