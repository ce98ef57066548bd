/**
 * The built-in workload: one shared document per organization, Yjs over WebSocket as the platform's gateways serve
 * it (the y-websocket protocol: sync messages and awareness, so `WebsocketProvider` clients connect unchanged) at
 * `GET /orgs/:organization_id/doc`. Its snapshot is the document's encoded state (`Y.encodeStateAsUpdate`).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import type { WebSocket } from 'ws';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import type { OrganizationState, StateContext, Workload, WorkloadHost } from '../workload.js';
import { refuseUpgrade, WS_CLOSE } from '../org-socket.js';

export const SHARED_DOCUMENT_PATH = '/orgs/:organization_id/doc';

const MESSAGE_SYNC = 0;
const MESSAGE_AWARENESS = 1;
const MESSAGE_QUERY_AWARENESS = 3;

const OPEN = 1;

/** The organization's document and the sockets editing it. */
export class SharedDocument implements OrganizationState {
  readonly doc = new Y.Doc();
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  private readonly sockets = new Map<WebSocket, Set<number>>();

  constructor(private readonly context: StateContext) {
    this.awareness.setLocalState(null); // the server is no participant
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin !== RESTORE) this.context.changed();
      this.broadcast((e) => {
        encoding.writeVarUint(e, MESSAGE_SYNC);
        syncProtocol.writeUpdate(e, update);
      });
    });
    this.awareness.on('update', ({ added, updated, removed }: Record<string, number[]>, origin: unknown) => {
      const changed = [...added!, ...updated!, ...removed!];
      const socket = origin as WebSocket | null;
      const ids = socket ? this.sockets.get(socket) : undefined;
      if (ids) {
        for (const id of added!) ids.add(id);
        for (const id of removed!) ids.delete(id);
      }
      this.broadcast((e) => {
        encoding.writeVarUint(e, MESSAGE_AWARENESS);
        encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed));
      });
    });
  }

  snapshot(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }

  restore(bytes: Uint8Array): void {
    Y.applyUpdate(this.doc, bytes, RESTORE);
  }

  draining(): void {
    this.closeSockets(WS_CLOSE.serviceRestart, 'service restart');
  }

  paused(): void {
    this.closeSockets(WS_CLOSE.tryAgainLater, 'not serving');
  }

  superseded(): void {
    this.closeSockets(WS_CLOSE.goingAway, 'superseded');
  }

  stopped(): void {
    this.closeSockets(WS_CLOSE.goingAway, 'going away');
  }

  private closeSockets(code: number, reason: string): void {
    for (const socket of this.sockets.keys()) socket.close(code, reason);
  }

  /** A client's socket: sync step 1 and the awareness states go out at once, as y-websocket servers do. */
  attach(socket: WebSocket): void {
    this.sockets.set(socket, new Set());
    socket.binaryType = 'arraybuffer';
    socket.on('message', (data: ArrayBuffer) => this.receive(socket, new Uint8Array(data)));
    socket.on('close', () => {
      const ids = this.sockets.get(socket);
      this.sockets.delete(socket);
      if (ids?.size) awarenessProtocol.removeAwarenessStates(this.awareness, [...ids], null);
    });
    this.send(socket, (e) => {
      encoding.writeVarUint(e, MESSAGE_SYNC);
      syncProtocol.writeSyncStep1(e, this.doc);
    });
    const states = [...this.awareness.getStates().keys()];
    if (states.length > 0) {
      this.send(socket, (e) => {
        encoding.writeVarUint(e, MESSAGE_AWARENESS);
        encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(this.awareness, states));
      });
    }
  }

  private receive(socket: WebSocket, message: Uint8Array): void {
    // A message read after the process lost the right to serve (a pause past its deadline) changes nothing.
    if (!this.context.writable()) return void socket.close(WS_CLOSE.tryAgainLater, 'not serving');
    try {
      const decoder = decoding.createDecoder(message);
      const reply = encoding.createEncoder();
      switch (decoding.readVarUint(decoder)) {
        case MESSAGE_SYNC:
          encoding.writeVarUint(reply, MESSAGE_SYNC);
          syncProtocol.readSyncMessage(decoder, reply, this.doc, socket);
          if (encoding.length(reply) > 1) this.send(socket, (e) => encoding.writeUint8Array(e, encoding.toUint8Array(reply)));
          return;
        case MESSAGE_AWARENESS:
          awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), socket);
          return;
        case MESSAGE_QUERY_AWARENESS:
          this.send(socket, (e) => {
            encoding.writeVarUint(e, MESSAGE_AWARENESS);
            encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()]));
          });
          return;
        default:
          socket.close(1003, 'unknown message type');
      }
    } catch (error) {
      this.context.log.warn({ event: 'doc_message_refused', err: error }, 'a malformed document message: closing its socket');
      socket.close(1007, 'malformed message');
    }
  }

  private send(socket: WebSocket, write: (encoder: encoding.Encoder) => void): void {
    if (socket.readyState !== OPEN) return;
    const encoder = encoding.createEncoder();
    write(encoder);
    socket.send(encoding.toUint8Array(encoder));
  }

  private broadcast(write: (encoder: encoding.Encoder) => void): void {
    for (const socket of this.sockets.keys()) this.send(socket, write);
  }
}

/** The origin of updates applied by `restore`: not a change to push again. */
const RESTORE = Symbol('restore');

export const sharedDocument: Workload = {
  createState: (context) => new SharedDocument(context),
  routes(app, host: WorkloadHost) {
    app.get<{ Params: { organization_id: string } }>(
      SHARED_DOCUMENT_PATH,
      {
        websocket: true,
        preValidation: refuseUpgrade({ acceptsSessions: () => host.acceptsSessions(), serves: (id) => host.state(id) !== null }),
      },
      (socket, request) => {
        const state = host.state(request.params.organization_id);
        if (state instanceof SharedDocument) state.attach(socket);
        else socket.close(WS_CLOSE.goingAway, 'not serving');
      },
    );
  },
};
