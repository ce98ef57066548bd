/**
 * The load generator against tiny node:http servers: it counts answers by pid in both connection modes, and it
 * really sees each kind of failure (refused, reset, non-2xx, timed out). Progress is awaited with `waitFor`,
 * never with sleeps; no assertion is about time.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { percentile } from '../src/stats.js';
import { startLoadProcess, type LoadProcess } from '../src/steady-load-process.js';
import { formatLoadReport, runSteadyLoad, type SteadyLoadOptions } from '../src/steady-load.js';

const servers: Server[] = [];
const loads: LoadProcess[] = [];

afterEach(async () => {
  await Promise.all(loads.splice(0).map((load) => load.stop().catch(() => undefined)));
  await Promise.all(servers.splice(0).map(closeAbruptly));
});

/** Listens on a free port of 127.0.0.1; answers the URL to load. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/orgs/some-org` };
}

/** Stops listening and drops every connection, idle or not, without answering. */
function closeAbruptly(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const whoami = (_req: IncomingMessage, res: ServerResponse) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ pid: process.pid }));
};

async function load(url: string, options: Partial<SteadyLoadOptions> = {}): Promise<LoadProcess> {
  const started = await startLoadProcess({ url, clients: 4, intervalMs: 5, keepAlive: true, timeoutMs: 2_000, ...options });
  loads.push(started);
  return started;
}

describe.each([{ keepAlive: true }, { keepAlive: false }])('keepAlive: $keepAlive', ({ keepAlive }) => {
  it('counts every answer by pid, then the failures once the server is gone', async () => {
    const { server, url } = await serve(whoami);
    const running = await load(url, { keepAlive });

    const healthy = await running.waitFor({ ok: 40 });
    expect(healthy).toMatchObject({ failed: 0, refused: 0, reset: 0, non2xx: 0, timedOut: 0, otherErrors: 0, errors: {} });
    expect(Object.keys(healthy.byPid)).toEqual([String(process.pid)]);
    expect(healthy.latency.p50).toBeGreaterThan(0);

    await running.phase('outage');
    await closeAbruptly(server);
    await running.waitFor({ refused: 3 });
    const report = await running.stop();

    expect(report.inFlight).toBe(0);
    expect(report.sent).toBe(report.ok + report.failed);
    expect(report.failed).toBe(report.refused + report.reset + report.non2xx + report.timedOut + report.otherErrors);
    expect(report.refused).toBeGreaterThanOrEqual(3);
    expect(report.errors.ECONNREFUSED).toBe(report.refused);
    expect(report.byPid).toEqual({ [process.pid]: report.ok });
    expect(report.phases.steady).toMatchObject({ failed: 0 });
    expect(report.phases.steady!.ok).toBeGreaterThanOrEqual(40);
    expect(report.phases.outage!.failed).toBe(report.failed);
    expect(formatLoadReport(report)).toContain('ECONNREFUSED×');
    expect(await running.exited).toEqual({ code: 0, signal: null });
  });

  it('counts connections dropped without an answer as reset', async () => {
    const { url } = await serve((req) => req.socket.destroy());
    const running = await load(url, { keepAlive });
    await running.waitFor({ reset: 5 });
    const report = await running.stop();
    expect(report).toMatchObject({ ok: 0, refused: 0, non2xx: 0, timedOut: 0, otherErrors: 0 });
    expect(report.failed).toBe(report.reset);
    expect(report.errors.ECONNRESET).toBe(report.reset);
    expect(report.latency.p50).toBeNaN();
  });
});

it('counts a port where nothing listens as refused', async () => {
  const { server, url } = await serve(whoami);
  await closeAbruptly(server);
  const running = await load(url, { keepAlive: false });
  await running.waitFor({ refused: 5 });
  const report = await running.stop();
  expect(report).toMatchObject({ ok: 0, reset: 0, non2xx: 0, timedOut: 0, otherErrors: 0, byPid: {} });
  expect(report.failed).toBe(report.refused);
});

it('counts 503 answers as non2xx', async () => {
  const { url } = await serve((_req, res) => {
    res.statusCode = 503;
    res.end(JSON.stringify({ pid: process.pid }));
  });
  const running = await load(url);
  await running.waitFor({ non2xx: 5 });
  const report = await running.stop();
  expect(report).toMatchObject({ ok: 0, refused: 0, reset: 0, timedOut: 0, otherErrors: 0, byPid: {} });
  expect(report.errors).toEqual({ 'HTTP 503': report.non2xx });
});

it('counts a request left unanswered past timeoutMs as timed out', async () => {
  const { url } = await serve(() => undefined);
  const running = await load(url, { clients: 2, timeoutMs: 100 });
  await running.waitFor({ timedOut: 3 });
  const report = await running.stop();
  expect(report).toMatchObject({ ok: 0, refused: 0, reset: 0, non2xx: 0, otherErrors: 0 });
  expect(report.errors).toEqual({ TIMEOUT: report.timedOut });
});

it('in process: waitFor rejects when the load stops first; stop is safe to call twice', async () => {
  const { server, url } = await serve(whoami);
  await closeAbruptly(server);
  const running = runSteadyLoad({ url, clients: 1, intervalMs: 1, keepAlive: true, timeoutMs: 1_000 });
  const never = running.waitFor({ ok: 1 });
  await running.waitFor({ refused: 2 });
  const [first, second] = await Promise.all([running.stop(), running.stop()]);
  expect(second).toBe(first);
  await expect(never).rejects.toThrow(/stopped before/);
  expect(running.snapshot().sent).toBe(first.sent);
});

it('percentile interpolates between ranks of sorted samples', () => {
  expect(percentile([], 50)).toBeNaN();
  expect(percentile([7], 99)).toBe(7);
  expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
  expect(percentile([1, 2, 3, 4], 100)).toBe(4);
});
