/**
 * Starting `gateway run` or `gateway supervise` as a child process and following its JSON log lines:
 * for end-to-end tests, a demo, a benchmark. The child is plain node running the CLI's bundle, as in
 * production: signals go straight to it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type LoggedProcess, type SpawnOptions, spawnLogged } from '@ganymede/process-harness';
import { ConfigError } from './errors.js';

/** The CLI's bundle, where `pnpm build` (scripts/build.ts) writes it. */
export const CLI_PATH = fileURLToPath(new URL('../dist/bin/gateway.mjs', import.meta.url));

export type { LogRecord, ProcessExit } from '@ganymede/process-harness';

export interface GatewayProcess extends LoggedProcess {
  /** The port the (first) gateway process listens on, from its `listening` line. */
  port(options?: { timeoutMs?: number }): Promise<number>;
}

export interface SpawnGatewayOptions extends SpawnOptions {
  /** Extra CLI flags, e.g. ['--port', '0']. */
  args?: readonly string[];
}

/** The command line that runs the gateway CLI: node and the bundle. */
export function gatewayCommand(command: 'run' | 'supervise' | 'reload' | 'stop', args: readonly string[] = []): { file: string; args: string[] } {
  if (!existsSync(CLI_PATH)) throw new ConfigError(`${CLI_PATH} is not built: run \`pnpm build\``);
  return { file: process.execPath, args: [CLI_PATH, command, ...args] };
}

/** `gateway run` or `gateway supervise` as a child process. */
export function spawnGateway(command: 'run' | 'supervise', options: SpawnGatewayOptions = {}): GatewayProcess {
  const { file, args } = gatewayCommand(command, options.args);
  const child = spawnLogged(file, args, options);
  return {
    ...child,
    port: async (o) => {
      const record = await child.waitForLog((r) => r.event === 'listening' && typeof r.port === 'number', o);
      return record.port as number;
    },
  };
}
