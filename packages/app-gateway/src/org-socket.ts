/**
 * The organization's WebSocket (contracts' org-socket.ts), on `@fastify/websocket`. A hot restart closes each
 * socket with 1012 only once the successor accepts, so a client reconnecting at once reaches the successor; a stop
 * closes them with 1001.
 */
import websocket from '@fastify/websocket';
import { ORG_SOCKET_MAX_BYTES, ORG_SOCKET_PATH, type OrgSocketMessage, Uuid, WS_CLOSE } from '@ganymede/contracts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RawData } from 'ws';
import { type GatewayView, NOT_READY } from './http-api.js';

export { WS_CLOSE };

/** A message's text: ws hands a Buffer, an ArrayBuffer or fragments, by its binary type. */
const text = (data: RawData): string =>
  (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(new Uint8Array(data))).toString('utf8');

const send = (socket: { send(data: string): void }, message: OrgSocketMessage) => socket.send(JSON.stringify(message));

/** Closes every open organization socket with `code`; answers how many there were. */
export function closeOrgSockets(app: FastifyInstance, code: number): number {
  const clients = app.websocketServer?.clients ?? new Set();
  for (const client of clients) client.close(code, code === WS_CLOSE.serviceRestart ? 'service restart' : 'going away');
  return clients.size;
}

/**
 * An organization's WebSocket upgrade, refused before it happens with the contract's error body: 400 (not a uuid),
 * 503 (no new sessions here now), 404 (this process does not serve that organization).
 */
export function refuseUpgrade(here: { acceptsSessions(): boolean; serves(organizationId: string): boolean }) {
  return async (request: FastifyRequest<{ Params: { organization_id: string } }>, reply: FastifyReply) => {
    const id = request.params.organization_id;
    if (!Uuid.safeParse(id).success) {
      return reply.status(400).send({ error: 'bad_request', message: 'params.organization_id: Invalid uuid' });
    }
    if (!here.acceptsSessions()) return reply.status(503).send(NOT_READY);
    if (!here.serves(id)) return reply.status(404).send({ error: 'not_found', message: 'this gateway does not serve that organization' });
  };
}

export function registerOrgSocket(app: FastifyInstance, view: GatewayView): void {
  void app.register(websocket, {
    options: { maxPayload: ORG_SOCKET_MAX_BYTES },
    // The default closes without a code; a stop is "going away" (a drain closed its sockets with 1012 already).
    preClose: async () => {
      closeOrgSockets(app, WS_CLOSE.goingAway);
    },
  });
  void app.register(async (scope) => {
    scope.get<{ Params: { organization_id: string } }>(
      ORG_SOCKET_PATH,
      {
        websocket: true,
        // Refused before the upgrade, with the contract's error body. A draining process opens no new socket (it
        // would be closed with 1012 at once): the 503 comes on an old connection, and a retry reaches the successor.
        preValidation: refuseUpgrade({
          acceptsSessions: () => view.phase() === 'up' || view.phase() === 'handing_over',
          serves: (id) => view.whoami().organization_id === id,
        }),
      },
      (socket) => {
        send(socket, { type: 'hello', whoami: view.whoami() });
        socket.on('message', (data, isBinary) => {
          const who = view.whoami();
          send(socket, { type: 'echo', pid: who.pid, epoch: who.epoch, data: isBinary ? '' : text(data) });
        });
      },
    );
  });
}
