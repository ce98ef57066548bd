/**
 * Hot restart with real processes: Ganymede, `gateway supervise`, a steady load from a separate process, real
 * signals, real HTTP and a real WebSocket. Counts only, no timing assertions.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { ORG_SOCKET_PATH, OrgSocketMessage, WS_CLOSE } from '@ganymede/contracts';
import { type GatewayProcess, type LoadReport, startLoadProcess } from '@ganymede/testkit';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { allocate, ganymede, gateway, handedOver, history } from './support.js';

/** `gateway reload`, resolving with the supervisor's `handover_complete` line. */
async function reload(p: GatewayProcess) {
  const from = p.proc.logs.length;
  await p.cli('reload');
  return handedOver(p, from);
}

function expectNoFailures(report: LoadReport) {
  expect(
    { refused: report.refused, reset: report.reset, non2xx: report.non2xx, timedOut: report.timedOut, other: report.otherErrors },
    JSON.stringify(report.errors),
  ).toEqual({ refused: 0, reset: 0, non2xx: 0, timedOut: 0, other: 0 });
}

describe('hot restart under load', () => {
  for (const keepAlive of [true, false]) {
    it(`10 restarts, ${keepAlive ? 'keep-alive connections' : 'a new connection per request'}: nothing refused, reset or failed; every process served`, async () => {
      const g = await ganymede();
      const p = await gateway(g);
      const { organizationId, allocationId, whoami } = await allocate(g, p);
      const load = await startLoadProcess({
        url: `${p.gw.url}/orgs/${organizationId}`,
        clients: 4,
        intervalMs: 2,
        keepAlive,
        timeoutMs: 10_000,
      });
      try {
        let answered = (await load.waitFor({ ok: 20 })).ok;
        const pids = [whoami.pid];
        for (let i = 0; i < 10; i++) {
          const done = await reload(p);
          expect(done.from_pid).toBe(pids.at(-1));
          pids.push(done.to_pid as number);
          // Each successor serves before the next restart.
          answered = (await load.waitFor({ ok: answered + 20 })).ok;
        }
        const report = await load.stop();
        expectNoFailures(report);
        expect(report.ok).toBe(report.sent);
        for (const pid of pids) expect(report.byPid[String(pid)] ?? 0, `pid ${pid} served`).toBeGreaterThan(0);
        const h = await history(g, allocationId);
        expect(h.state).toBe('active');
        expect(h.epoch).toBe(whoami.epoch! + 10);
        expect(h.events.filter((e) => e.kind === 'reclaimed').map((e) => e.reason)).toEqual(Array(10).fill('restart'));
      } finally {
        await load.stop();
      }
    });
  }

  it('SIGUSR2, and SIGTERM with the reload marker, to the supervisor are hot restarts too (reasons restart, deploy)', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { allocationId } = await allocate(g, p);
    let from = p.proc.logs.length;
    p.proc.signal('SIGUSR2');
    expect(await handedOver(p, from)).toMatchObject({ reason: 'restart' });
    await writeFile(p.marker, 'deploy\n');
    from = p.proc.logs.length;
    p.proc.signal('SIGTERM');
    expect(await handedOver(p, from)).toMatchObject({ reason: 'deploy' });
    expect(existsSync(p.marker)).toBe(false);
    const h = await history(g, allocationId);
    expect(h.events.filter((e) => e.kind === 'restart_requested').map((e) => e.reason)).toEqual(['restart', 'deploy']);
    expect(h.state).toBe('active');
  });

  it('a crash restart refuses nothing either: the socket stays open while no process accepts', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, whoami } = await allocate(g, p);
    const load = await startLoadProcess({
      url: `${p.gw.url}/orgs/${organizationId}`,
      clients: 4,
      intervalMs: 2,
      keepAlive: false,
      timeoutMs: 20_000,
    });
    try {
      await load.waitFor({ ok: 20 });
      const from = p.proc.logs.length;
      process.kill(whoami.pid, 'SIGKILL');
      const next = await p.proc.waitForLog((l) => l.event === 'listening' && l.pid !== whoami.pid, { from, timeoutMs: 30_000 });
      const { ok } = await load.waitFor({ ok: 1 });
      const report = await load.waitFor({ ok: ok + 20 });
      expect(report.byPid[String(next.pid)]).toBeGreaterThan(0);
      // The requests the killed process held were reset; every connection made meanwhile waited and was answered.
      expect(report.refused).toBe(0);
    } finally {
      await load.stop();
    }
  });

  it('a request under way when the restart begins ends with 200 from the old process', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, whoami } = await allocate(g, p);
    const body = JSON.stringify({ data: 'x'.repeat(40) });
    const socket = connect(p.gw.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += String(d)));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    // Headers and the first byte of the body now; the rest a byte at a time, across the whole handover.
    socket.write(
      `POST /orgs/${organizationId}/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body[0]}`,
    );
    const from = p.proc.logs.length;
    await p.cli('reload');
    let sent = 1;
    const trickle = setInterval(() => {
      if (sent < body.length - 1) socket.write(body[sent++]!);
    }, 50);
    const done = await handedOver(p, from);
    await new Promise<void>((resolve) => {
      const waitForLastByte = setInterval(() => {
        if (sent < body.length - 1) return;
        clearInterval(waitForLastByte);
        clearInterval(trickle);
        socket.write(body.slice(sent));
        resolve();
      }, 10);
    });
    await ended;
    const [head, json] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head!.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(json!)).toMatchObject({ pid: whoami.pid, epoch: whoami.epoch, data: 'x'.repeat(40) });
    expect(done.from_pid).toBe(whoami.pid);
  });

  it('WebSocket: closed with 1012 once the successor is ready; reconnecting at once reaches the successor', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, whoami } = await allocate(g, p);
    const url = `ws://127.0.0.1:${p.gw.port}${ORG_SOCKET_PATH.replace(':organization_id', organizationId)}`;
    const open = (target: string) =>
      new Promise<{ ws: WebSocket; hello: OrgSocketMessage }>((resolve, reject) => {
        const ws = new WebSocket(target);
        ws.once('message', (data) => resolve({ ws, hello: OrgSocketMessage.parse(JSON.parse((data as Buffer).toString())) }));
        ws.once('error', reject);
      });
    const first = await open(url);
    expect(first.hello).toMatchObject({ type: 'hello', whoami: { pid: whoami.pid, epoch: whoami.epoch } });
    const echoed = new Promise((resolve) => first.ws.once('message', (data) => resolve(JSON.parse((data as Buffer).toString()))));
    first.ws.send('ping');
    expect(await echoed).toEqual({ type: 'echo', pid: whoami.pid, epoch: whoami.epoch, data: 'ping' });

    const from = p.proc.logs.length;
    const closed = new Promise<number>((resolve) => first.ws.once('close', resolve));
    await p.cli('reload');
    expect(await closed).toBe(WS_CLOSE.serviceRestart);
    // Every process writes its log lines to the supervisor's one stdout, in order: the old process began draining
    // (and closed its sockets) only after the successor had reclaimed and said it serves.
    const draining = await p.proc.waitForLog((l) => l.event === 'draining' && l.pid === whoami.pid, { from });
    expect(draining.websockets).toBe(1);
    const successorServing = p.proc.logs.findIndex((l, i) => i >= from && l.event === 'serving' && l.pid !== whoami.pid);
    expect(successorServing).toBeGreaterThan(-1);
    expect(successorServing).toBeLessThan(p.proc.logs.indexOf(draining));
    const second = await open(url);
    expect(second.hello.type === 'hello' && second.hello.whoami.pid).not.toBe(whoami.pid);
    expect(second.hello).toMatchObject({ whoami: { epoch: whoami.epoch! + 1 } });
    second.ws.close();
  });
});
