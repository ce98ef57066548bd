/**
 * The platform's gateway (protocol v1), for the rolling-upgrade tests: its requests to Ganymede byte for byte, as
 * its code sends them (the fixtures), and an HTTP listener that plays it (`servePlatformGateway`).
 *
 * Where each request comes from in the platform's app-gateway, and how it is sent:
 * - ready: `signalGatewayReady`, with Node's global fetch (undici), which adds its own headers (`accept`,
 *   `accept-language`, `sec-fetch-mode`, `user-agent: node`, `accept-encoding`) and a Content-Length;
 * - config and stop: `GanymedeClient.request` over its `myfetch`, a bare `http.request`: the headers it was given
 *   in their order (`authorization`, `Host` set to Ganymede's FQDN, `Content-Type` added last unless given), Node's
 *   `Connection: keep-alive`, no user agent, and the JSON body written without a length (chunked);
 * - config from `POST /collab/start` passes `Content-Type` first and a body whose only key is undefined: `{}`.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type RawAnswer, rawExchange } from './raw-http.js';

/** The Host the platform's gateway names (its GANYMEDE_FQDN), whatever address it connects to. */
export const PLATFORM_GANYMEDE_FQDN = 'ganymede.domain.local';

const CRLF = '\r\n';
const request = (line: string, headers: [string, string][], body: string) =>
  [line, ...headers.map(([name, value]) => `${name}: ${value}`), '', body].join(CRLF);
/** `http.request` writing a body it was given no length for: one chunk, then the last. */
const chunked = (body: string) => `${Buffer.byteLength(body).toString(16)}${CRLF}${body}${CRLF}0${CRLF}${CRLF}`;
const myfetchTail: [string, string][] = [
  ['Connection', 'keep-alive'],
  ['Transfer-Encoding', 'chunked'],
];

export const platformRequests = {
  /** `POST /gateway/ready` `{gateway_id}` with the gateway token (fetch). */
  ready(gatewayToken: string, gatewayId: string): string {
    const body = JSON.stringify({ gateway_id: gatewayId });
    return request(
      'POST /gateway/ready HTTP/1.1',
      [
        ['host', PLATFORM_GANYMEDE_FQDN],
        ['connection', 'keep-alive'],
        ['content-type', 'application/json'],
        ['authorization', `Bearer ${gatewayToken}`],
        ['accept', '*/*'],
        ['accept-language', '*'],
        ['sec-fetch-mode', 'cors'],
        ['user-agent', 'node'],
        ['accept-encoding', 'gzip, deflate'],
        ['content-length', String(Buffer.byteLength(body))],
      ],
      body,
    );
  },
  /** `POST /gateway/config` `{}` at boot, with the gateway token (myfetch). */
  configAtBoot(gatewayToken: string): string {
    return request(
      'POST /gateway/config HTTP/1.1',
      [['authorization', `Bearer ${gatewayToken}`], ['Host', PLATFORM_GANYMEDE_FQDN], ['Content-Type', 'application/json'], ...myfetchTail],
      chunked('{}'),
    );
  },
  /** `POST /gateway/config` from its `/collab/start` handler (myfetch, `Content-Type` given first). */
  configOnStart(gatewayToken: string): string {
    return request(
      'POST /gateway/config HTTP/1.1',
      [['Content-Type', 'application/json'], ['authorization', `Bearer ${gatewayToken}`], ['Host', PLATFORM_GANYMEDE_FQDN], ...myfetchTail],
      chunked('{}'),
    );
  },
  /** `POST /gateway/stop` `{}` with the organization token /gateway/config gave (myfetch): its permanent stop. */
  stop(organizationToken: string): string {
    return request(
      'POST /gateway/stop HTTP/1.1',
      [
        ['authorization', `Bearer ${organizationToken}`],
        ['Host', PLATFORM_GANYMEDE_FQDN],
        ['Content-Type', 'application/json'],
        ...myfetchTail,
      ],
      chunked('{}'),
    );
  },
};

export type PlatformCall = 'ready' | 'configAtBoot' | 'configOnStart' | 'stop';

/** What the platform gateway's listener was sent (Ganymede's notices). */
export interface ReceivedCall {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface PlatformGatewayOptions {
  ganymedeUrl: string;
  gatewayId: string;
  gatewayToken: string;
  port: number;
  /** Each exchange with Ganymede, and each call received, as it happens. */
  onExchange?: (call: PlatformCall, answer: RawAnswer) => void;
  onCall?: (call: ReceivedCall) => void;
}

export interface PlatformGateway {
  server: Server;
  /** Boots as the platform's gateway does: config (404 when idle), then ready. */
  boot(): Promise<void>;
  /** Its permanent stop: `/gateway/stop {}` with the organization token config gave; null when it holds none. */
  stop(): Promise<RawAnswer | null>;
  close(): Promise<void>;
}

/**
 * Listens on `port` as the platform's gateway: `GET /collab/ping` answers `{}`; `POST /collab/start` reads
 * /gateway/config, then answers `{}` (both as Express's `res.json` does); anything else is 404.
 */
export async function servePlatformGateway(options: PlatformGatewayOptions): Promise<PlatformGateway> {
  const { ganymedeUrl, gatewayId, gatewayToken } = options;
  let organizationToken: string | null = null;

  async function exchange(call: PlatformCall, bytes: string): Promise<RawAnswer> {
    const answer = await rawExchange(ganymedeUrl, bytes);
    options.onExchange?.(call, answer);
    const token = (answer.body as { organization_token?: unknown } | undefined)?.organization_token;
    if (answer.status === 200 && typeof token === 'string') organizationToken = token;
    return answer;
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      options.onCall?.({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
      if (req.method === 'GET' && req.url === '/collab/ping') return json(200, {});
      if (req.method === 'POST' && req.url === '/collab/start') {
        return void exchange('configOnStart', platformRequests.configOnStart(gatewayToken)).then(
          () => json(200, {}),
          () => json(500, { error: 'Failed to fetch config' }),
        );
      }
      json(404, { error: 'Not found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));

  return {
    server,
    async boot() {
      await exchange('configAtBoot', platformRequests.configAtBoot(gatewayToken));
      await exchange('ready', platformRequests.ready(gatewayToken, gatewayId));
    },
    stop: async () => (organizationToken ? exchange('stop', platformRequests.stop(organizationToken)) : null),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
