/**
 * The gateway's CLI as a child process, following its JSON log lines. `spawnGatewayChild` runs `gateway run` or
 * `gateway supervise` with whatever environment it is given (the gateway's own tests, the benchmark);
 * `startGatewayProcess` runs one for a gateway registered with a Ganymede process, with a run directory and a
 * reload marker of its own (the demo, the end-to-end tests).
 */
import { join } from 'node:path';
import { findFreePort } from './free-port.js';
import { gatewayContract } from '@ganymede/contracts';
import { initClient } from '@ts-rest/core';
import { cliCommand, runCli, spawnCli } from './cli-process.js';
import { GATEWAY_CLI } from './clis.js';
import type { GanymedeProcess } from './ganymede-process.js';
import type { LoggedProcess, SpawnLoggedOptions } from './logged-process.js';
import { tempDir } from './temp-dir.js';

/** `gateway run` or `gateway supervise` as a child process. */
export interface GatewayChild extends LoggedProcess {
  /** The port the (first) gateway process listens on, from its `listening` line. */
  port(options?: { timeoutMs?: number }): Promise<number>;
}

export interface SpawnGatewayChildOptions extends SpawnLoggedOptions {
  /** Extra CLI flags, e.g. ['--port', '0']. */
  args?: readonly string[];
}

/** The command line that runs the gateway CLI: node and the bundle. */
export function gatewayCommand(
  command: 'run' | 'supervise' | 'reload' | 'stop',
  args: readonly string[] = [],
): { file: string; args: string[] } {
  return cliCommand(GATEWAY_CLI, [command, ...args]);
}

export function spawnGatewayChild(command: 'run' | 'supervise', { args = [], ...options }: SpawnGatewayChildOptions = {}): GatewayChild {
  const child = spawnCli(GATEWAY_CLI, [command, ...args], options);
  return {
    ...child,
    port: async (o) => {
      const record = await child.waitForLog((r) => r.event === 'listening' && typeof r.port === 'number', o);
      return record.port as number;
    },
  };
}

/** A gateway added to a Ganymede process (`ganymede gateway add`) at a free local port. */
export interface RegisteredGateway {
  gateway_id: string;
  token: string;
  port: number;
  url: string;
}

export async function registerGateway(g: GanymedeProcess): Promise<RegisteredGateway> {
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;
  const { gateway_id, token } = JSON.parse(await g.cli('gateway', 'add', '--url', url, '--json')) as { gateway_id: string; token: string };
  return { gateway_id, token, port, url };
}

/** A registered gateway's process, with its run directory, its reload marker and its one-shot commands. */
export interface GatewayProcess {
  proc: GatewayChild;
  gw: RegisteredGateway;
  runDir: string;
  marker: string;
  env: NodeJS.ProcessEnv;
  cli(...args: string[]): Promise<string>;
}

/** A gateway run under its supervisor (`supervise`) or alone (`run`). */
export async function startGatewayProcess(
  g: GanymedeProcess,
  gw: RegisteredGateway,
  mode: 'supervise' | 'run' = 'supervise',
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<GatewayProcess> {
  const runDir = await tempDir('gateway-run');
  const marker = join(runDir, 'reloading');
  const env = {
    GATEWAY_ID: gw.gateway_id,
    GATEWAY_TOKEN: gw.token,
    GANYMEDE_URL: g.url,
    GATEWAY_PORT: String(gw.port),
    GATEWAY_RUN_DIR: runDir,
    GATEWAY_RELOAD_MARKER: marker,
    ...extraEnv,
  };
  const proc = spawnGatewayChild(mode, { env });
  return { proc, gw, runDir, marker, env, cli: (...args) => runCli(GATEWAY_CLI, args, env) };
}

/** The typed client of a registered gateway's API (what the organization's traffic reaches). */
export const gatewayClient = (gw: RegisteredGateway) =>
  initClient(gatewayContract, { baseUrl: gw.url, baseHeaders: {}, throwOnUnknownStatus: true });
