import { createServer } from 'node:net';
import { ganymedeContract, ganymedeExamples } from '@ganymede/contracts';
import { ResponseValidationError, UnknownStatusError } from '@ts-rest/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GanymedeTimeoutError } from '../src/errors.js';
import { createGanymedeClient, type GanymedeClient } from '../src/ganymede-client.js';
import { type FakeGanymede, type RouteName, startFakeGanymede } from './fake-ganymede.js';

const TOKEN = 'the-token';

/** Ganymede's routes for probes, scrapers and readers of its API: the gateway's client never calls them. */
type NotCalled = 'healthz' | 'readyz' | 'metrics' | 'openapi';
type CalledRoute = Exclude<RouteName, NotCalled>;

/** Each route called the way its example request says. */
const invoke: Record<CalledRoute, (client: GanymedeClient) => Promise<{ status: number; body: unknown }>> = {
  start: (c) => c.start(TOKEN, ganymedeExamples.start.request.body),
  config: (c) => c.config(TOKEN),
  ready: (c) => c.ready(TOKEN, ganymedeExamples.ready.request.body),
  reclaim: (c) => c.reclaim(TOKEN, ganymedeExamples.reclaim.request.body),
  lease: (c) => c.lease(TOKEN, ganymedeExamples.lease.request.body),
  stop: (c) => c.stop(TOKEN, ganymedeExamples.stop.request.body),
  restart: (c) => c.restart(TOKEN, ganymedeExamples.restart.request.body),
  withdrawRestart: (c) => c.withdrawRestart(TOKEN, ganymedeExamples.withdrawRestart.request.body),
  dataPush: (c) => c.dataPush(TOKEN, ganymedeExamples.dataPush.request.body),
  dataPull: (c) => c.dataPull(TOKEN, ganymedeExamples.dataPull.request.body),
  addGateway: (c) => c.addGateway(TOKEN, ganymedeExamples.addGateway.request.body),
  status: (c) => c.status(TOKEN),
  allocation: (c) => c.allocation(TOKEN, ganymedeExamples.allocation.request.params.allocation_id),
  events: (c) => c.events(TOKEN, ganymedeExamples.events.request.query),
};

let fake: FakeGanymede;
let client: GanymedeClient;

beforeAll(async () => {
  fake = await startFakeGanymede();
  client = createGanymedeClient({ baseUrl: fake.url, timeoutMs: 2_000 });
});
afterAll(async () => {
  await client.close();
  await fake.close();
});

describe('every declared status of every route comes back as { status, body }', () => {
  const called = (route: string): route is CalledRoute => route in invoke;
  const cases = Object.entries(ganymedeExamples)
    .filter(([route]) => called(route))
    .flatMap(([route, example]) =>
      Object.entries(example.responses).map(([status, body]) => [route as CalledRoute, Number(status), body] as const),
    );

  it('covers every route the client calls and every status of it in the contract', () => {
    const declared = Object.entries(ganymedeContract)
      .filter(([route]) => called(route))
      .flatMap(([route, r]) => Object.keys(r.responses).map((s) => `${route} ${s}`));
    expect(cases.map(([route, status]) => `${route} ${status}`).sort()).toEqual(declared.sort());
  });

  it.each(cases)('%s answers %i', async (route, status, body) => {
    fake.answers[route] = () => ({ status, body });
    const before = fake.calls.length;
    const answer = await invoke[route](client);
    expect({ status: answer.status, body: answer.body }).toEqual({ status, body });
    const call = fake.calls[before]!;
    expect(call.route).toBe(route);
    expect(call.authorization).toBe(`Bearer ${TOKEN}`);
    const request = ganymedeExamples[route].request;
    if ('body' in request) {
      expect(call.body).toEqual(request.body);
      expect(call.contentType).toBe('application/json');
    }
  });
});

describe("/gateway/ready's notice_key", () => {
  it('comes back with a 200; a 200 without it (an older Ganymede) is still an answer; a malformed one throws', async () => {
    const example = ganymedeExamples.ready.responses[200];
    fake.answers.ready = () => ({ status: 200, body: example });
    expect(await invoke.ready(client)).toMatchObject({ status: 200, body: { notice_key: example.notice_key } });
    const { notice_key: _, ...older } = example;
    fake.answers.ready = () => ({ status: 200, body: older });
    const answer = await invoke.ready(client);
    expect(answer).toMatchObject({ status: 200, body: { gateway_id: example.gateway_id } });
    expect(answer.body).not.toHaveProperty('notice_key');
    fake.answers.ready = () => ({ status: 200, body: { ...example, notice_key: 'not a key' } });
    await expect(invoke.ready(client)).rejects.toBeInstanceOf(ResponseValidationError);
  });
});

describe('withdrawRestart', () => {
  it('posts { epoch, allocation_id } to /gateway/restart/withdraw; a stale epoch is an answer, not an exception', async () => {
    const body = { epoch: 2, allocation_id: ganymedeExamples.withdrawRestart.responses[200].allocation_id };
    fake.answers.withdrawRestart = () => ({ status: 200, body: ganymedeExamples.withdrawRestart.responses[200] });
    const before = fake.calls.length;
    expect(await client.withdrawRestart(TOKEN, body)).toMatchObject({ status: 200, body: { state: 'active', epoch: 2 } });
    expect(fake.calls[before]).toMatchObject({ method: 'POST', url: '/gateway/restart/withdraw', body });
    fake.answers.withdrawRestart = () => ({ status: 409, body: ganymedeExamples.withdrawRestart.responses[409] });
    expect(await client.withdrawRestart(TOKEN, { epoch: 2 })).toMatchObject({ status: 409, body: { error: 'stale_epoch' } });
    // An answer off the contract (a restarting state) throws like any other.
    fake.answers.withdrawRestart = () => ({
      status: 200,
      body: { ...ganymedeExamples.withdrawRestart.responses[200], state: 'restarting' },
    });
    await expect(client.withdrawRestart(TOKEN, { epoch: 2 })).rejects.toBeInstanceOf(ResponseValidationError);
  });

  it('times out like any call', async () => {
    fake.answers.withdrawRestart = () => 'hang';
    await expect(client.withdrawRestart(TOKEN, { epoch: 2 }, { timeoutMs: 100 })).rejects.toBeInstanceOf(GanymedeTimeoutError);
  });
});

describe('dataPush and dataPull', () => {
  const push = ganymedeExamples.dataPush;
  const pull = ganymedeExamples.dataPull;

  it("post the platform's bodies as given; stale epochs, revision conflicts and an empty organization are answers", async () => {
    // The platform's own push: no epoch, no base_revision.
    const { epoch: _epoch, base_revision: _base, ...platform } = push.request.body;
    fake.answers.dataPush = () => ({ status: 200, body: { ...push.responses[200], epoch: null } });
    const before = fake.calls.length;
    expect(await client.dataPush(TOKEN, platform)).toMatchObject({ status: 200, body: { revision: 3, epoch: null } });
    expect(fake.calls[before]).toMatchObject({ method: 'POST', url: '/gateway/data/push', body: platform });
    fake.answers.dataPush = () => ({ status: 409, body: push.responses[409] });
    expect(await client.dataPush(TOKEN, push.request.body)).toMatchObject({ status: 409, body: { error: 'revision_conflict' } });
    fake.answers.dataPush = () => ({
      status: 409,
      body: { error: 'stale_epoch', message: 'epoch 2 is stale: the allocation is at epoch 3' },
    });
    expect(await client.dataPush(TOKEN, push.request.body)).toMatchObject({ status: 409, body: { error: 'stale_epoch' } });
    fake.answers.dataPull = () => ({ status: 404, body: pull.responses[404] });
    expect(await client.dataPull(TOKEN, { organization_id: pull.request.body.organization_id })).toMatchObject({
      status: 404,
      body: { error: 'not_found' },
    });
    fake.answers.dataPull = () => ({ status: 200, body: pull.responses[200] });
    expect(await client.dataPull(TOKEN, pull.request.body)).toEqual(expect.objectContaining({ status: 200, body: pull.responses[200] }));
  });

  it('a snapshot off the contract (a checksum of another kind) throws', async () => {
    fake.answers.dataPull = () => ({ status: 200, body: { ...pull.responses[200], checksum: 'md5:abc' } });
    await expect(client.dataPull(TOKEN, pull.request.body)).rejects.toBeInstanceOf(ResponseValidationError);
  });

  it('time out like any call', async () => {
    fake.answers.dataPush = () => 'hang';
    await expect(client.dataPush(TOKEN, push.request.body, { timeoutMs: 100 })).rejects.toBeInstanceOf(GanymedeTimeoutError);
  });
});

describe('failures throw', () => {
  it('an undeclared status throws UnknownStatusError', async () => {
    fake.answers.config = () => ({ status: 503, body: { error: 'internal', message: 'overloaded' } });
    await expect(client.config(TOKEN)).rejects.toBeInstanceOf(UnknownStatusError);
    fake.answers.restart = () => ({ status: 502, raw: '<html>bad gateway</html>', contentType: 'text/html' });
    await expect(invoke.restart(client)).rejects.toBeInstanceOf(UnknownStatusError);
  });

  it('a declared status with a body off the contract throws ResponseValidationError', async () => {
    fake.answers.config = () => ({ status: 200, body: { gateway_id: 'not-a-uuid' } });
    await expect(client.config(TOKEN)).rejects.toBeInstanceOf(ResponseValidationError);
    fake.answers.ready = () => ({ status: 409, body: { error: 'no_such_code', message: 'x' } });
    await expect(invoke.ready(client)).rejects.toBeInstanceOf(ResponseValidationError);
    // A plain 404 as Fastify answers it by default (not the contract's error body).
    fake.answers.restart = () => ({
      status: 404,
      body: { statusCode: 404, error: 'Not Found', message: 'Route POST:/gateway/restart not found' },
    });
    await expect(invoke.restart(client)).rejects.toMatchObject({ name: 'InvalidAnswerError', status: 404 });
    await expect(invoke.restart(client)).rejects.toBeInstanceOf(ResponseValidationError);
  });

  it('a JSON body that does not parse throws', async () => {
    fake.answers.config = () => ({ status: 200, raw: '{"gateway_id":', contentType: 'application/json' });
    await expect(client.config(TOKEN)).rejects.toMatchObject({ code: 'GANYMEDE_INVALID_JSON' });
  });

  it('a server that is down: the error has code ECONNREFUSED', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const down = createGanymedeClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 2_000 });
    try {
      await expect(down.config(TOKEN)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await down.destroy();
    }
  });

  it('a server that never answers: times out within the configured time', async () => {
    fake.answers.stop = () => 'hang';
    const quick = createGanymedeClient({ baseUrl: fake.url, timeoutMs: 300 });
    try {
      const startedAt = Date.now();
      const failure = quick.stop(TOKEN, { reason: 'stop', epoch: 2 });
      await expect(failure).rejects.toBeInstanceOf(GanymedeTimeoutError);
      await expect(failure).rejects.toMatchObject({ code: 'GANYMEDE_TIMEOUT' });
      const elapsed = Date.now() - startedAt;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1_500);
      // A per-call timeout overrides the client's.
      const t = Date.now();
      await expect(client.stop(TOKEN, { reason: 'stop' }, { timeoutMs: 100 })).rejects.toBeInstanceOf(GanymedeTimeoutError);
      expect(Date.now() - t).toBeLessThan(1_000);
    } finally {
      await quick.destroy();
    }
  });

  it("a caller's abort signal ends the call with the signal's reason", async () => {
    fake.answers.stop = () => 'hang';
    const controller = new AbortController();
    const reason = new Error('deadline');
    const failure = client.stop(TOKEN, { reason: 'stop' }, { signal: controller.signal });
    await fake.waitForCall('stop', fake.callsTo('stop').length + 1);
    controller.abort(reason);
    await expect(failure).rejects.toBe(reason);
  });
});

describe('connections', () => {
  it('reuses kept-alive connections', async () => {
    fake.answers.config = () => ({ status: 404, body: ganymedeExamples.config.responses[404] });
    const local = createGanymedeClient({ baseUrl: fake.url, connections: 2 });
    const before = fake.calls.length;
    try {
      for (let i = 0; i < 10; i++) await local.config(TOKEN);
      await Promise.all(Array.from({ length: 10 }, () => local.config(TOKEN)));
    } finally {
      await local.close();
    }
    const ports = new Set(fake.calls.slice(before).map((c) => c.remotePort));
    expect(ports.size).toBeLessThanOrEqual(2);
  });
});
