/**
 * A real Yjs client of a gateway's shared document (y-websocket's `WebsocketProvider`, as the platform's frontends
 * connect), with what tests await: the first sync, and the text reaching a value.
 */
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';

export interface DocClient {
  doc: Y.Doc;
  /** The document's text `content`. */
  text: Y.Text;
  provider: WebsocketProvider;
  /** Resolves once the text satisfies `match` (checked now and on every change). */
  until(match: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): void;
}

/** Connects to `/orgs/<organizationId>/doc` on the gateway at `baseUrl` and resolves once synced. */
export async function openDoc(baseUrl: string, organizationId: string, timeoutMs = 30_000): Promise<DocClient> {
  const doc = new Y.Doc();
  const text = doc.getText('content');
  const provider = new WebsocketProvider(`${baseUrl.replace(/^http/, 'ws')}/orgs/${organizationId}`, 'doc', doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  });
  const client: DocClient = {
    doc,
    text,
    provider,
    until: (match, ms = timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const value = text.toJSON();
          if (!match(value)) return;
          text.unobserve(check);
          clearTimeout(timer);
          resolve(value);
        };
        const timer = setTimeout(() => {
          text.unobserve(check);
          reject(new Error(`the document's text never matched; it is ${JSON.stringify(text.toJSON())}`));
        }, ms);
        text.observe(check);
        check();
      }),
    close: () => {
      provider.destroy();
      doc.destroy();
    },
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no sync with ${baseUrl} within ${timeoutMs} ms`)), timeoutMs);
    provider.once('sync', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return client;
}
