/**
 * The platform's gateway as a process (platform-gateway-process.ts starts it): boots the way it does (config,
 * then ready), takes Ganymede's /collab notices, and on SIGTERM makes its permanent stop (`/gateway/stop {}`) and
 * exits 0. Logs one JSON line per exchange with Ganymede and per call received, for tests to await.
 */
import { servePlatformGateway } from './platform-gateway.js';

const env = (name: string) => process.env[name] ?? (process.stderr.write(`${name} is required\n`), process.exit(2));
const log = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);

const gateway = await servePlatformGateway({
  ganymedeUrl: env('GANYMEDE_URL'),
  gatewayId: env('GATEWAY_ID'),
  gatewayToken: env('GATEWAY_TOKEN'),
  port: Number(env('GATEWAY_PORT')),
  onExchange: (call, { status, body }) => log('exchange', { call, status, body }),
  onCall: (call) => log('called', { ...call }),
});
log('listening');
process.once('SIGTERM', () => {
  void gateway
    .stop()
    .catch((err: unknown) => log('stop_failed', { message: String(err) }))
    .finally(() => process.exit(0));
});
await gateway.boot();
log('booted');
