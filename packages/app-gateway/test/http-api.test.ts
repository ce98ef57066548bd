/**
 * The gateway's HTTP API against `gatewayContract`: every reachable declared status of every route, over
 * real HTTP, with bodies checked against the contract's schemas and the example error codes.
 * A real in-process Gateway talks to a fake Ganymede; a stub view covers the states a real process only
 * passes through (shutting down) and handler bugs (500).
 */
import WebSocket from 'ws';
import { generateKeyPairSync } from 'node:crypto';
import { gatewayContract, gatewayExamples, type Whoami } from '@ganymede/contracts';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Pool, request } from 'undici';
import { parseMetrics } from '@ganymede/testkit/prometheus';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ZodTypeAny } from 'zod';
import { loadConfig } from '../src/config.js';
import { Gateway } from '../src/gateway.js';
import { createGatewayServer, type GatewayView, type Phase } from '../src/http-api.js';
import {
  ALLOCATION,
  allocationAnswers,
  type FakeGanymede,
  GATEWAY_ID,
  GATEWAY_TOKEN,
  noticeAuth,
  noticeToken,
  ORG,
  ORG_TOKEN,
  startFakeGanymede,
} from './fake-ganymede.js';

type Route = keyof typeof gatewayContract;
const silent = pino({ level: 'silent' });
const OTHER = '11111111-2222-4333-8444-555555555555';

async function call(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
  contentType = 'application/json',
  authorization?: string,
) {
  const res = await request(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': contentType, ...(authorization ? { authorization } : {}) } }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as Record<string, unknown> };
}

/** The answer is declared by the contract for this route, matches its schema, and errors carry the example's code. */
function expectContract(route: Route, answer: { status: number; body: unknown }, status: number) {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  const schema = (gatewayContract[route].responses as Record<number, ZodTypeAny>)[status];
  expect(schema, `${route} declares ${status}`).toBeDefined();
  const parsed = schema!.safeParse(answer.body);
  expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  const example = (gatewayExamples[route].responses as Record<number, unknown>)[status] as Record<string, unknown>;
  expect(Object.keys(answer.body as object).sort()).toEqual(Object.keys(example).sort());
  if ('error' in example) expect((answer.body as { error: string }).error).toBe(example.error);
}

/** GET /metrics with `authorization` (none when undefined): the raw text, for the Prometheus parser. */
async function getMetrics(base: string, authorization?: string) {
  const res = await request(`${base}/metrics`, { headers: authorization ? { authorization } : {} });
  return { status: res.statusCode, text: await res.body.text() };
}

/** A notice: by default with Ganymede's proof (a genuine notice token) for the allocation it names; `null` for none. */
const allocated = (base: string, body: unknown, authorization: string | null = genuineFor(body)) =>
  call(base, 'POST', '/allocated', JSON.stringify(body), 'application/json', authorization ?? undefined);
function genuineFor(body: unknown) {
  const id = (body as { allocation_id?: unknown } | null)?.allocation_id;
  return noticeAuth(typeof id === 'string' ? id : ALLOCATION);
}

function gatewayConfig(ganymedeUrl: string, extra: Record<string, string> = {}) {
  return loadConfig({
    GATEWAY_ID,
    GATEWAY_TOKEN,
    GANYMEDE_URL: ganymedeUrl,
    GATEWAY_PORT: '0',
    GATEWAY_RUN_DIR: '/tmp/gw-api-test',
    ...extra,
  });
}

describe('a real gateway, idle then allocated', () => {
  let fake: FakeGanymede;
  let gateway: Gateway;
  let base: string;
  const scenario = allocationAnswers({ allocated: false });

  beforeAll(async () => {
    fake = await startFakeGanymede(scenario.answers);
    gateway = new Gateway({ config: gatewayConfig(fake.url), logger: silent });
    await gateway.start();
    base = `http://127.0.0.1:${gateway.port()}`;
  });
  afterAll(async () => {
    await gateway.shutdown({ kind: 'stop', reason: 'stop' });
    await fake.close();
  });

  it('came up idle: /gateway/reclaim 404, then /gateway/ready with allocation_id null', () => {
    expect(fake.protocolCalls().map((c) => c.route)).toEqual(['reclaim', 'ready']);
    expect(fake.callsTo('ready')[0]!.body).toEqual({ allocation_id: null, instance_id: gateway.instanceId });
  });

  it('GET /healthz 200 (not serving), GET /whoami 200 with nulls', async () => {
    const health = await call(base, 'GET', '/healthz');
    expectContract('healthz', health, 200);
    expect(health.body).toEqual({ status: 'ok', serving: false });
    const who = await call(base, 'GET', '/whoami');
    expectContract('whoami', who, 200);
    expect(who.body).toMatchObject({ gateway_id: GATEWAY_ID, organization_id: null, allocation_id: null, epoch: null, pid: process.pid });
  });

  it('GET /orgs/:id: 404 for an organization not served, 400 for a bad uuid', async () => {
    expectContract('serve', await call(base, 'GET', `/orgs/${ORG}`), 404);
    expectContract('serve', await call(base, 'GET', '/orgs/not-a-uuid'), 400);
    expectContract('echo', await call(base, 'POST', `/orgs/${ORG}/echo`, '{"data":"x"}', 'application/json'), 404);
    expectContract('echo', await call(base, 'POST', `/orgs/${ORG}/echo`, '{"data":1}', 'application/json'), 400);
  });

  it("the organization's WebSockets refuse the upgrade with the error body: 400 bad uuid, 404 not served here", async () => {
    const upgrade = (path: string) =>
      new Promise<{ status: number | undefined; body: unknown }>((resolve, reject) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}${path}`);
        ws.on('unexpected-response', (_request, response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode, body: JSON.parse(text) as unknown }));
        });
        ws.on('open', () => reject(new Error(`${path} was upgraded`)));
        ws.on('error', () => undefined);
      });
    for (const kind of ['socket', 'doc']) {
      expect(await upgrade(`/orgs/not-a-uuid/${kind}`)).toMatchObject({ status: 400, body: { error: 'bad_request' } });
      expect(await upgrade(`/orgs/${ORG}/${kind}`)).toMatchObject({ status: 404, body: { error: 'not_found' } });
    }
  });

  it('POST /allocated refuses bad input: 400 bad uuid, unknown field, malformed JSON; 415 wrong type; 413 too big', async () => {
    expectContract('allocated', await allocated(base, { allocation_id: 'nope' }), 400);
    expectContract('allocated', await allocated(base, { allocation_id: ALLOCATION, extra: 1 }), 400);
    expectContract('allocated', await allocated(base, {}), 400);
    expectContract('allocated', await call(base, 'POST', '/allocated', '{"allocation_id": '), 400);
    expectContract('allocated', await call(base, 'POST', '/allocated', `allocation_id=${ALLOCATION}`, 'text/plain'), 415);
    expectContract(
      'allocated',
      await call(base, 'POST', '/allocated', `allocation_id=${ALLOCATION}`, 'application/x-www-form-urlencoded'),
      415,
    );
    expectContract(
      'allocated',
      await call(base, 'POST', '/allocated', JSON.stringify({ allocation_id: ALLOCATION, pad: 'x'.repeat(70_000) })),
      413,
    );
    expect(fake.protocolCalls().length).toBe(2); // none of these reached Ganymede
  });

  it("POST /allocated 401 without Ganymede's proof (none, forged, for another allocation), and Ganymede is not asked", async () => {
    const before = fake.protocolCalls().length;
    const forged = noticeToken({}, { key: generateKeyPairSync('ed25519').privateKey });
    for (const authorization of [null, 'Bearer x', `Bearer ${forged}`, noticeAuth(OTHER)]) {
      const answer = await allocated(base, { allocation_id: ALLOCATION }, authorization);
      expectContract('allocated', answer, 401);
    }
    expect(fake.protocolCalls().length).toBe(before);
  });

  it('POST /allocated 409 when Ganymede holds no allocation for this gateway', async () => {
    expectContract('allocated', await allocated(base, { allocation_id: ALLOCATION }), 409);
    expect(fake.calls.at(-1)!.route).toBe('config');
  });

  it('POST /allocated 409 when Ganymede holds another allocation', async () => {
    scenario.state.allocated = true;
    expectContract('allocated', await allocated(base, { allocation_id: OTHER }), 409);
    expect(fake.calls.at(-1)!.route).toBe('config');
  });

  it('POST /allocated 503 when Ganymede cannot confirm (a 500)', async () => {
    const config = fake.answers.config;
    fake.answers.config = () => ({ status: 500, body: { error: 'internal', message: 'internal error' } });
    try {
      expectContract('allocated', await allocated(base, { allocation_id: ALLOCATION }), 503);
    } finally {
      fake.answers.config = config;
    }
  });

  it('POST /allocated 200: asks /gateway/config, claims with /gateway/ready, answers Whoami; then serves', async () => {
    const before = fake.protocolCalls().length;
    const answer = await allocated(base, { allocation_id: ALLOCATION });
    expectContract('allocated', answer, 200);
    expect(answer.body).toMatchObject({ gateway_id: GATEWAY_ID, organization_id: ORG, allocation_id: ALLOCATION, epoch: 3 });
    expect(
      fake
        .protocolCalls()
        .slice(before)
        .map((c) => [c.route, c.authorization]),
    ).toEqual([
      ['config', `Bearer ${GATEWAY_TOKEN}`],
      ['ready', `Bearer ${GATEWAY_TOKEN}`],
    ]);
    expect(fake.protocolCalls().at(-1)!.body).toEqual({ allocation_id: ALLOCATION, instance_id: gateway.instanceId });
    // Its state restored before it answered: one pull with the organization token.
    expect(fake.callsTo('dataPull').map((c) => c.authorization)).toEqual([`Bearer ${ORG_TOKEN}`]);

    const served = await call(base, 'GET', `/orgs/${ORG}`);
    expectContract('serve', served, 200);
    expect(served.body).toEqual(answer.body);
    const echoed = await call(base, 'POST', `/orgs/${ORG}/echo`, '{"data":"hi"}', 'application/json');
    expectContract('echo', echoed, 200);
    expect(echoed.body).toEqual({ ...answer.body, data: 'hi' });
    expectContract('serve', await call(base, 'GET', `/orgs/${OTHER}`), 404);
    expect((await call(base, 'GET', '/healthz')).body).toEqual({ status: 'ok', serving: true });
    expect((await call(base, 'GET', '/whoami')).body).toEqual(answer.body);
  });

  it("GET /readyz 200 (serving); GET /metrics only with the gateway's own token, read with a Prometheus parser", async () => {
    const ready = await call(base, 'GET', '/readyz');
    expectContract('readyz', ready, 200);
    expect(ready.body).toEqual({ status: 'ready', serving: true });
    for (const authorization of [undefined, `Bearer ${ORG_TOKEN}`, noticeAuth(), `Bearer ${GATEWAY_TOKEN}x`]) {
      const refused = await getMetrics(base, authorization);
      expect(refused.status, authorization).toBe(401);
      expectContract('metrics', { status: refused.status, body: JSON.parse(refused.text) }, 401);
    }
    const res = await getMetrics(base, `Bearer ${GATEWAY_TOKEN}`);
    expect(res.status).toBe(200);
    const m = parseMetrics(res.text);
    expect(m.value('gateway_phase', { phase: 'up' })).toBe(1);
    expect(m.value('gateway_phase')).toBe(1); // one phase at a time
    expect(m.value('gateway_epoch')).toBe(3);
    expect(m.type('gateway_handovers_total')).toBe('COUNTER');
    expect(m.value('gateway_handovers_total')).toBe(0);
  });

  it('a repeated notice answers 200 without asking Ganymede again; another allocation is 409', async () => {
    const before = fake.protocolCalls().length;
    expectContract('allocated', await allocated(base, { allocation_id: ALLOCATION }), 200);
    expectContract('allocated', await allocated(base, { allocation_id: OTHER }), 409);
    expect(fake.protocolCalls().length).toBe(before);
  });
});

describe('a real gateway: concurrent notices claim once', () => {
  it('two notices at once: one /gateway/config + /gateway/ready, both answered 200', async () => {
    const scenario = allocationAnswers({ allocated: false });
    const fake = await startFakeGanymede(scenario.answers);
    const gateway = new Gateway({ config: gatewayConfig(fake.url), logger: silent });
    try {
      await gateway.start();
      scenario.state.allocated = true;
      const base = `http://127.0.0.1:${gateway.port()}`;
      const before = fake.protocolCalls().length;
      const answers = await Promise.all([1, 2, 3].map(() => allocated(base, { allocation_id: ALLOCATION })));
      for (const answer of answers) expectContract('allocated', answer, 200);
      expect(
        fake
          .protocolCalls()
          .slice(before)
          .map((c) => c.route),
      ).toEqual(['config', 'ready']);
      expect(new Set(answers.map((a) => a.body.epoch))).toEqual(new Set([3]));
    } finally {
      await gateway.shutdown({ kind: 'stop', reason: 'stop' });
      await fake.close();
    }
  });
});

describe('a real gateway handing over (in process)', () => {
  it('counts the handover steps and the requests it answers while draining; /readyz is 503 once draining', async () => {
    const scenario = allocationAnswers({ allocated: true });
    const fake = await startFakeGanymede(scenario.answers);
    const gateway = new Gateway({ config: gatewayConfig(fake.url), logger: silent });
    try {
      await gateway.start();
      // One keep-alive connection, opened before the drain: a draining process still answers on it.
      const conn = new Pool(`http://127.0.0.1:${gateway.port()}`, { connections: 1 });
      const get = async (path: string) => {
        const res = await conn.request({ method: 'GET', path });
        return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
      };
      expect((await get(`/orgs/${ORG}`)).status).toBe(200);
      await gateway.prepareHandover('reload');
      expectContract('readyz', await get('/readyz'), 200); // handing over: still serving
      const { drained } = gateway.drain();
      expectContract('readyz', await get('/readyz'), 503); // answered with Connection: close: the drain ends
      expect(await drained).toBe(75);
      await conn.close();
      const m = parseMetrics((await gateway.metrics(`Bearer ${GATEWAY_TOKEN}`))!);
      expect(m.value('gateway_drained_requests_total')).toBe(1);
      expect(m.value('gateway_handovers_total', { step: 'prepared' })).toBe(1);
      expect(m.value('gateway_handovers_total', { step: 'drained' })).toBe(1);
      expect(m.value('gateway_phase', { phase: 'stopped' })).toBe(1);
    } finally {
      await fake.close();
    }
  });
});

describe('a real gateway while booting', () => {
  it('503 not_ready on /orgs and /allocated until Ganymede answered; /healthz and /whoami answer', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const scenario = allocationAnswers({ allocated: true });
    const fake = await startFakeGanymede({ ...scenario.answers, reclaim: async (c) => (await released, scenario.answers.reclaim!(c)) });
    const gateway = new Gateway({ config: gatewayConfig(fake.url), logger: silent });
    try {
      const starting = gateway.start();
      await fake.waitForCall('reclaim'); // listening already: it listens before asking Ganymede
      const base = `http://127.0.0.1:${gateway.port()}`;
      expectContract('serve', await call(base, 'GET', `/orgs/${ORG}`), 503);
      expectContract('allocated', await allocated(base, { allocation_id: ALLOCATION }), 503);
      expect((await call(base, 'GET', '/healthz')).body).toEqual({ status: 'ok', serving: false });
      expectContract('whoami', await call(base, 'GET', '/whoami'), 200);
      expectContract('readyz', await call(base, 'GET', '/readyz'), 503);
      release();
      await starting;
      expectContract('serve', await call(base, 'GET', `/orgs/${ORG}`), 200);
      expectContract('readyz', await call(base, 'GET', '/readyz'), 200);
    } finally {
      release();
      await gateway.shutdown({ kind: 'restart', reason: 'reload' });
      await fake.close();
    }
  });
});

describe('stub views: shutting down, and handler bugs', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const whoami: Whoami = { ...gatewayExamples.whoami.responses[200] };
  async function serve(view: GatewayView) {
    app = createGatewayServer(view, { logger: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  }

  it('503 not_ready on /orgs and /allocated while shutting down', async () => {
    // A real gateway closes its listener as it starts shutting down; its allocated() answers 503 from then on
    // (see the next test). The stub shows what the router makes of that phase over HTTP.
    const base = await serve({
      phase: (): Phase => 'shutting_down',
      lapsed: () => false,
      whoami: () => whoami,
      allocated: async () => ({ status: 503, body: { error: 'not_ready', message: 'the gateway is starting or shutting down' } }),
      metrics: async () => null,
    });
    expectContract('serve', await call(base, 'GET', `/orgs/${ORG}`), 503);
    expectContract('allocated', await allocated(base, { allocation_id: ALLOCATION }), 503);
    expectContract('healthz', await call(base, 'GET', '/healthz'), 200);
    expectContract('readyz', await call(base, 'GET', '/readyz'), 503);
  });

  it('503 not_serving on /readyz past the renew deadline, while /healthz answers', async () => {
    const base = await serve({
      phase: (): Phase => 'up',
      lapsed: () => true,
      whoami: () => whoami,
      allocated: async () => ({ status: 200, body: whoami }),
      metrics: async () => null,
    });
    expect(await call(base, 'GET', '/readyz')).toMatchObject({ status: 503, body: { error: 'not_serving' } });
    expectContract('healthz', await call(base, 'GET', '/healthz'), 200);
  });

  it('a real gateway answers a notice 503 once shutting down', async () => {
    const scenario = allocationAnswers({ allocated: false });
    const fake = await startFakeGanymede(scenario.answers);
    const gateway = new Gateway({ config: gatewayConfig(fake.url), logger: silent });
    try {
      await gateway.start();
      const stopping = gateway.shutdown({ kind: 'stop', reason: 'stop' });
      expect(gateway.phase()).toBe('shutting_down');
      expect(await gateway.allocated(ALLOCATION, noticeAuth())).toMatchObject({ status: 503, body: { error: 'not_ready' } });
      expect(await stopping).toBe(0);
    } finally {
      await fake.close();
    }
  });

  it('500 internal (no details leaked) on every route when a handler fails', async () => {
    const base = await serve({
      phase: () => 'up',
      lapsed: () => false,
      whoami: () => {
        throw new Error('secret detail');
      },
      allocated: async () => {
        throw new Error('secret detail');
      },
      metrics: async () => {
        throw new Error('secret detail');
      },
    });
    for (const [route, method, path, body] of [
      ['healthz', 'GET', '/healthz', undefined],
      ['readyz', 'GET', '/readyz', undefined],
      ['whoami', 'GET', '/whoami', undefined],
      ['serve', 'GET', `/orgs/${ORG}`, undefined],
      ['echo', 'POST', `/orgs/${ORG}/echo`, JSON.stringify({ data: 'x' })],
      ['allocated', 'POST', '/allocated', JSON.stringify({ allocation_id: ALLOCATION })],
    ] as const) {
      const answer = await call(base, method, path, body, 'application/json', noticeAuth());
      expectContract(route, answer, 500);
      expect(JSON.stringify(answer.body)).not.toContain('secret');
    }
  });
});
