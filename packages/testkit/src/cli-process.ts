/**
 * A CLI's bundle (GANYMEDE_CLI, GATEWAY_CLI) run by plain node, as in production, so that signals reach the
 * CLI directly: as a child process whose log lines can be awaited, or as a one-shot command.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { nodeFlagsOf, REPO_ROOT } from './clis.js';
import { type LoggedProcess, type SpawnLoggedOptions, spawnLogged } from './logged-process.js';

/** The command line that runs `bundle` with `args`; throws if the bundle is not built. */
export function cliCommand(bundle: string, args: readonly string[] = []): { file: string; args: string[] } {
  if (!existsSync(bundle)) throw new Error(`${bundle} is not built: run \`pnpm build\``);
  return { file: process.execPath, args: [...nodeFlagsOf(bundle), bundle, ...args] };
}

/** A CLI as a child process, in the repository's root unless `options.cwd` says otherwise. */
export function spawnCli(bundle: string, args: readonly string[], options: SpawnLoggedOptions = {}): LoggedProcess {
  const command = cliCommand(bundle, args);
  return spawnLogged(command.file, command.args, { ...options, cwd: options.cwd ?? REPO_ROOT });
}

/**
 * Runs a CLI command to completion (in `cwd`, default the repository's root) and answers its stdout; throws with its
 * stdout, stderr and `code` on a non-zero exit.
 */
export async function runCli(bundle: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): Promise<string> {
  const command = cliCommand(bundle, args);
  const { stdout } = await promisify(execFile)(command.file, command.args, { cwd, env: { ...process.env, ...env } });
  return stdout;
}
