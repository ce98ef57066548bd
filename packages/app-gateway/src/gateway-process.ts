/**
 * Starting `gateway run` or `gateway supervise` as a child process and following its JSON log lines:
 * for end-to-end tests, a demo, a benchmark. Signals go straight to the node process (no tsx wrapper in
 * between, which would not relay SIGHUP/SIGUSR2).
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type LoggedProcess, type SpawnOptions, spawnLogged } from '@ganymede/process-harness';

/** The CLI's source file; run it with node and the tsx loader (see `gatewayCommand`). */
export const CLI_PATH = fileURLToPath(new URL('./cli.ts', import.meta.url));

export type { LogRecord, ProcessExit } from '@ganymede/process-harness';

export interface GatewayProcess extends LoggedProcess {
  /** The port the (first) gateway process listens on, from its `listening` line. */
  port(options?: { timeoutMs?: number }): Promise<number>;
}

export interface SpawnGatewayOptions extends SpawnOptions {
  /** Extra CLI flags, e.g. ['--port', '0']. */
  args?: readonly string[];
}

/** The command line that runs the gateway CLI: node with the tsx loader. */
export function gatewayCommand(command: 'run' | 'supervise' | 'reload' | 'stop', args: readonly string[] = []): { file: string; args: string[] } {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return { file: process.execPath, args: ['--import', tsx, CLI_PATH, command, ...args] };
}

/** `gateway run` or `gateway supervise` as a child process: node with the tsx loader, so signals reach it directly. */
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
