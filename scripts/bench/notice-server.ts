/**
 * Where the simulated gateways are registered: one local HTTP server that takes Ganymede's allocation notice
 * (`POST /allocated`) for all of them and answers 200 with a whoami body, as an idle gateway does once it
 * claimed. The benchmark then claims for the gateway itself, with the typed client.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startNoticeServer(): Promise<{ url: string; notices: () => number; close(): Promise<void> }> {
  let notices = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      notices++;
      let allocationId: string | null = null;
      try {
        allocationId = (JSON.parse(body) as { allocation_id?: string }).allocation_id ?? null;
      } catch {
        // answered below like any other notice
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          gateway_id: randomUUID(),
          organization_id: randomUUID(),
          allocation_id: allocationId,
          epoch: 1,
          pid: process.pid,
          started_at: new Date().toISOString(),
        }),
      );
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    notices: () => notices,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
