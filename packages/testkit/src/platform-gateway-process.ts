import { fileURLToPath } from 'node:url';
import type { GanymedeProcess } from './ganymede-process.js';
import type { RegisteredGateway } from './gateway-process.js';
import { type LoggedProcess, type LogRecord, spawnLogged } from './logged-process.js';
import type { PlatformCall } from './platform-gateway.js';
import { TSX_LOADER } from './tsx-loader.js';

const ENTRY = fileURLToPath(new URL('./platform-gateway-main.ts', import.meta.url));

/** The platform's gateway (platform-gateway-main.ts) as a process, registered at `gw`'s URL. */
export function startPlatformGatewayProcess(g: GanymedeProcess, gw: RegisteredGateway): LoggedProcess {
  return spawnLogged(process.execPath, ['--import', TSX_LOADER, ENTRY], {
    env: { GANYMEDE_URL: g.url, GATEWAY_ID: gw.gateway_id, GATEWAY_TOKEN: gw.token, GATEWAY_PORT: String(gw.port) },
  });
}

/** Resolves with the platform gateway's exchange `call` with Ganymede (its status and body), from log line `from` on. */
export function platformExchange(p: LoggedProcess, call: PlatformCall, from = 0): Promise<LogRecord> {
  return p.waitForLog((l) => l.event === 'exchange' && l.call === call, { from, timeoutMs: 30_000 });
}
