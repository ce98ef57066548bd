/** Graceful Ganymede shutdown: on SIGTERM it stops taking requests, finishes those in flight, closes the database. */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rawHttp, registerGateway, startOrganization } from '@ganymede/testkit';
import { gateway, ganymede, history } from './support.js';

/** A gateway endpoint that takes Ganymede's notice only when `release()` is called. */
async function slowNoticeTarget(port: number) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const noticed = new Promise<void>((resolve) => {
    const server = createServer((req, res) => {
      resolve();
      void released.then(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            gateway_id: randomUUID(),
            organization_id: randomUUID(),
            allocation_id: randomUUID(),
            epoch: 1,
            pid: process.pid,
            started_at: new Date().toISOString(),
          }),
        );
        server.close();
      });
      req.resume();
    });
    server.listen(port, '127.0.0.1');
  });
  return { noticed, release };
}

describe('Ganymede on SIGTERM', () => {
  it('finishes the request in flight, refuses new ones, exits 0, and the database reopens consistent', async () => {
    const g = await ganymede();
    const gw = await registerGateway(g);
    // Say ready on the gateway's behalf: the pool needs it, and the notice goes to our slow endpoint.
    const ready = await g.api.ready({
      headers: { authorization: `Bearer ${gw.token}` },
      body: { allocation_id: null, instance_id: randomUUID() },
    });
    expect(ready.status).toBe(200);
    const target = await slowNoticeTarget(gw.port);

    const inFlight = startOrganization(g);
    await target.noticed; // /gateway/start is now waiting on the gateway, mid-request
    g.proc.signal('SIGTERM');
    await g.proc.waitForLog((l) => l.signal === 'SIGTERM');
    // Stopped taking requests: a new connection is refused while the old request is still open.
    await expect(fetch(`${g.url}/admin/status`)).rejects.toThrow();
    target.release();
    const { res } = await inFlight;
    expect(res.status).toBe(201);
    expect(await g.proc.exited).toEqual({ code: 0, signal: null });

    const g2 = await ganymede({ dataDir: g.dataDir, port: g.port });
    if (res.status !== 201) throw new Error('not allocated');
    expect(await history(g2, res.body.allocation_id)).toMatchObject({ state: 'active', epoch: 1, events: [{ kind: 'allocated' }] });
  });
});

/** Attack suite, slow clients, against the real processes: one trickling client holds nothing open. */
describe('a client trickling its request a byte every 200 ms', () => {
  const TRICKLE = 'POST /gateway/start HTTP/1.1\r\nHost: t\r\nX-Slow: ';

  it('is answered 408 on the contract and cut off while Ganymede runs', async () => {
    const g = await ganymede({ env: { GANYMEDE_HEADERS_TIMEOUT_MS: '600' } });
    const answer = await rawHttp(g.url, TRICKLE, { trickle: { everyMs: 200 }, timeoutMs: 20_000 });
    expect(answer).toMatchObject({ status: 408, body: { error: 'request_timeout' } });
  });

  it('does not hold a SIGTERM shutdown open: Ganymede exits 0 at its shutdown deadline', async () => {
    // Request timeouts far away: only the shutdown deadline can end this client.
    const g = await ganymede({
      env: { GANYMEDE_HEADERS_TIMEOUT_MS: '60000', GANYMEDE_REQUEST_TIMEOUT_MS: '60000', GANYMEDE_SHUTDOWN_TIMEOUT_MS: '500' },
    });
    let onSent!: () => void;
    const sent = new Promise<void>((resolve) => (onSent = resolve));
    const trickler = rawHttp(g.url, TRICKLE, { trickle: { everyMs: 200 }, timeoutMs: 30_000, onSent });
    await sent;
    // Connections are accepted in order: once a later one is answered, the trickler's has been accepted too.
    await fetch(`${g.url}/admin/status`);
    g.proc.signal('SIGTERM');
    await g.proc.waitForLog((l) => l.msg === 'shutdown deadline: closed the connections still open', { timeoutMs: 20_000 });
    expect(await g.proc.exited).toEqual({ code: 0, signal: null });
    expect((await trickler).status).toBeNull();
  });

  it("does not hold a gateway's SIGTERM shutdown open either", async () => {
    const g = await ganymede();
    const p = await gateway(g, 'run', { GATEWAY_SHUTDOWN_TIMEOUT_MS: '1000' });
    let onSent!: () => void;
    const sent = new Promise<void>((resolve) => (onSent = resolve));
    const trickler = rawHttp(p.gw.url, 'GET /whoami HTTP/1.1\r\nHost: t\r\nX-Slow: ', {
      trickle: { everyMs: 200 },
      timeoutMs: 30_000,
      onSent,
    });
    await sent;
    await fetch(`${p.gw.url}/healthz`);
    p.proc.signal('SIGTERM');
    expect(await p.proc.exited).toEqual({ code: 0, signal: null });
    await trickler;
  });
});
