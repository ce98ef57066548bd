/**
 * Notices are authenticated. Anyone who can reach a gateway can `POST /allocated`; each notice used to make the
 * gateway call Ganymede's /gateway/config. Now a notice must carry Ganymede's proof (a notice token, EdDSA, checked
 * with the key /gateway/ready gave): a real gateway, in process, against a fake Ganymede that counts its calls,
 * takes a flood of unproven notices (none, malformed, forged, `alg: none`, HS256 with the public key as secret,
 * tampered, expired, not yet valid, for another gateway, for another allocation, off the claims) and answers each
 * 401 with the contract's error body while making zero calls to Ganymede; then a genuine notice still claims.
 * While the gateway boots a notice answers 503; against a Ganymede too old to send a key, notices are taken
 * unproven, the old way; a key that does not import refuses every notice.
 */
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { ErrorBody } from '@ganymede/contracts';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { Gateway } from '../src/gateway.js';
import {
  ALLOCATION,
  allocationAnswers,
  type FakeGanymede,
  GATEWAY_ID,
  GATEWAY_TOKEN,
  NOTICE_KEY,
  noticeAuth,
  noticeToken,
  type Responder,
  type RouteName,
  startFakeGanymede,
} from './fake-ganymede.js';

const OTHER = '11111111-2222-4333-8444-555555555555';
const FLOOD = 2_400;
const CONCURRENCY = 32;

function gatewayConfig(ganymedeUrl: string) {
  return loadConfig({ GATEWAY_ID, GATEWAY_TOKEN, GANYMEDE_URL: ganymedeUrl, GATEWAY_PORT: '0', GATEWAY_RUN_DIR: '/tmp/gw-notice-auth' });
}

async function notice(base: string, allocationId: string, authorization: string | undefined) {
  const res = await request(`${base}/allocated`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify({ allocation_id: allocationId }),
  });
  return { status: res.statusCode, body: await res.body.json() };
}

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const genuine = () => noticeToken();
const otherKey = generateKeyPairSync('ed25519').privateKey;

/** Unproven notices, each `[what, authorization, allocation_id in the body]`: a fresh set for each round of the flood. */
function unproven(): [string, string | undefined, string][] {
  const [header, payload] = genuine().split('.') as [string, string];
  const hs256 = `${b64({ alg: 'HS256' })}.${payload}`;
  return [
    ['no Authorization header', undefined, ALLOCATION],
    ['a bearer that is not a JWT', 'Bearer garbage', ALLOCATION],
    ['another scheme', `Basic ${Buffer.from(`ganymede:${genuine()}`).toString('base64')}`, ALLOCATION],
    ['signed with another key (forged)', `Bearer ${noticeToken({}, { key: otherKey })}`, ALLOCATION],
    ['right claims, a 2-byte signature', `Bearer ${header}.${payload}.abc`, ALLOCATION],
    ['alg none, no signature', `Bearer ${b64({ alg: 'none' })}.${payload}.`, ALLOCATION],
    ["alg none, with a genuine token's signature", `Bearer ${b64({ alg: 'none' })}.${payload}.${genuine().split('.')[2]}`, ALLOCATION],
    [
      'HS256 keyed with the public notice key',
      `Bearer ${hs256}.${createHmac('sha256', NOTICE_KEY).update(hs256).digest('base64url')}`,
      ALLOCATION,
    ],
    ['a crit header', `Bearer ${noticeToken({}, { header: { alg: 'EdDSA', crit: ['exp'] } })}`, ALLOCATION],
    [
      'tampered: another allocation, signature kept',
      `Bearer ${header}.${b64({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: OTHER })}.${genuine().split('.')[2]}`,
      OTHER,
    ],
    ['expired a minute ago', `Bearer ${noticeToken({ iat: now() - 70, exp: now() - 60 })}`, ALLOCATION],
    ['expiring this second', `Bearer ${noticeToken({ exp: now() })}`, ALLOCATION],
    ['not valid for an hour (iat)', `Bearer ${noticeToken({ iat: now() + 3600, exp: now() + 3700 })}`, ALLOCATION],
    ['not valid for an hour (nbf)', `Bearer ${noticeToken({ nbf: now() + 3600 })}`, ALLOCATION],
    ['for another gateway', `Bearer ${noticeToken({ aud: randomUUID() })}`, ALLOCATION],
    ['for another allocation (the body names ours)', `Bearer ${noticeToken({ sub: OTHER })}`, ALLOCATION],
    ['ours, but the body names another allocation', `Bearer ${noticeToken()}`, OTHER],
    ['no aud', `Bearer ${noticeToken({ aud: undefined })}`, ALLOCATION],
    ['no exp', `Bearer ${noticeToken({ exp: undefined })}`, ALLOCATION],
    ['another typ', `Bearer ${noticeToken({ typ: 'gateway' })}`, ALLOCATION],
    ['another issuer', `Bearer ${noticeToken({ iss: 'mallory' })}`, ALLOCATION],
    ['a 4 KiB bearer', `Bearer ${'a'.repeat(4096)}`, ALLOCATION],
  ];
}

describe('an idle gateway under a flood of unproven notices', () => {
  let fake: FakeGanymede;
  let gateway: Gateway;
  let base: string;
  const scenario = allocationAnswers({ allocated: true });

  beforeAll(async () => {
    // An hour-long lease: no renewal falls inside the test, so every call Ganymede sees is one a notice caused.
    const ready: Responder = (c) => {
      const answer = scenario.answers.ready!(c) as { status: number; body: Record<string, unknown> };
      return answer.status === 200 ? { ...answer, body: { ...answer.body, lease: { expires_at: null, seconds: 3600 } } } : answer;
    };
    const lease: Responder = (c) => {
      const answer = scenario.answers.lease!(c) as { status: number; body: Record<string, unknown> };
      return { ...answer, body: { ...answer.body, lease: { expires_at: '2030-01-01T00:00:00.000Z', seconds: 3600 } } };
    };
    scenario.state.allocated = false;
    fake = await startFakeGanymede({ ...scenario.answers, ready, lease });
    gateway = new Gateway({ config: gatewayConfig(fake.url), logger: pino({ level: 'silent' }) });
    await gateway.start();
    await fake.waitForCall('lease'); // the first renewal comes at once; the next in about 20 minutes
    base = `http://127.0.0.1:${gateway.port()}`;
    scenario.state.allocated = true; // Ganymede now holds ALLOCATION for this gateway
  });
  afterAll(async () => {
    await gateway.shutdown({ kind: 'stop', reason: 'stop' });
    await fake.close();
  });

  it.each(unproven().map(([what], i) => [what, i] as const))('%s: 401 unauthorized, Ganymede not asked', async (_, i) => {
    const [, authorization, allocationId] = unproven()[i]!;
    const calls = fake.calls.length;
    const answer = await notice(base, allocationId, authorization);
    expect(answer.status, JSON.stringify(answer.body)).toBe(401);
    expect(ErrorBody.strict().parse(answer.body).error).toBe('unauthorized');
    expect(fake.calls.length).toBe(calls);
    expect(gateway.serving()).toBe(false);
  });

  /** Sends `count` requests made by `make`, `CONCURRENCY` at a time; answers the statuses counted and the rate. */
  async function flood(count: number, make: (i: number) => Promise<{ status: number; body: unknown }>) {
    const statuses = new Map<number, number>();
    let next = 0;
    const startedAt = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < count) {
          const { status, body } = await make(next++);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 401) ErrorBody.strict().parse(body);
        }
      }),
    );
    return { statuses: Object.fromEntries(statuses), perSecond: Math.round(count / ((performance.now() - startedAt) / 1000)) };
  }

  it(`${FLOOD} unproven notices, ${CONCURRENCY} at a time: every one 401, zero calls to Ganymede`, async () => {
    const calls = fake.calls.length;
    const kinds = unproven();
    const unprovenNotice = (i: number) => {
      const [, authorization, allocationId] = kinds[i % kinds.length]!;
      return notice(base, allocationId, authorization);
    };
    // Floors, measured on the same gateway: the same notices refused by the contract's validation before the
    // handler (a 400: what a notice costs without the token check), and a route that does nothing (GET /healthz).
    const invalidNotice = (i: number) => notice(base, 'not-a-uuid', kinds[i % kinds.length]![1]);
    const healthz = async () => {
      const res = await request(`${base}/healthz`);
      return { status: res.statusCode, body: await res.body.json() };
    };
    for (const warmUp of [unprovenNotice, invalidNotice, healthz]) await flood(FLOOD / 4, warmUp); // JIT, connections
    const refused = await flood(FLOOD, unprovenNotice);
    const invalid = await flood(FLOOD, invalidNotice);
    const floor = await flood(FLOOD, healthz);
    console.log(
      `notice flood: ${FLOOD} unproven notices refused at ${refused.perSecond}/s; the same with a bad body (400, ` +
        `no token check) ${invalid.perSecond}/s; GET /healthz ${floor.perSecond}/s; ${fake.calls.length - calls} calls to Ganymede`,
    );
    expect(invalid.statuses).toEqual({ 400: FLOOD });
    expect(refused.statuses).toEqual({ 401: FLOOD });
    expect(fake.calls.length - calls).toBe(0);
    expect(gateway.serving()).toBe(false);
  });

  it('then a genuine notice claims: one /gateway/config, one /gateway/ready, one state pull, 200 and serving; replayed, it asks nothing', async () => {
    const calls = fake.calls.length;
    const token = genuine();
    const answer = await notice(base, ALLOCATION, `Bearer ${token}`);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toMatchObject({ gateway_id: GATEWAY_ID, allocation_id: ALLOCATION });
    expect(fake.calls.slice(calls).map((c) => c.route)).toEqual(['config', 'ready', 'dataPull']);
    expect(gateway.serving()).toBe(true);
    expect((await notice(base, ALLOCATION, `Bearer ${token}`)).status).toBe(200);
    expect(fake.calls.length).toBe(calls + 3);
  });
});

describe('a gateway without a notice key', () => {
  async function setup(answers: Partial<Record<RouteName, Responder>>) {
    const fake = await startFakeGanymede(answers);
    const gateway = new Gateway({ config: gatewayConfig(fake.url), logger: pino({ level: 'silent' }) });
    return { fake, gateway, close: async () => (await gateway.shutdown({ kind: 'stop', reason: 'stop' }), await fake.close()) };
  }

  it('while booting (it has not said ready): a genuine notice answers 503 not_ready, Ganymede not asked for it', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const scenario = allocationAnswers({ allocated: false });
    const { fake, gateway, close } = await setup({
      ...scenario.answers,
      reclaim: async (c) => (await released, scenario.answers.reclaim!(c)),
    });
    try {
      const starting = gateway.start();
      await fake.waitForCall('reclaim');
      const base = `http://127.0.0.1:${gateway.port()}`;
      const answer = await notice(base, ALLOCATION, noticeAuth());
      expect(answer).toMatchObject({ status: 503, body: { error: 'not_ready' } });
      expect(fake.calls.length).toBe(1);
      release();
      await starting;
    } finally {
      release();
      await close();
    }
  });

  it('against a Ganymede that sends no notice_key (older): it boots, and takes its unproven notice the old way', async () => {
    const scenario = allocationAnswers({ allocated: false });
    const { fake, gateway, close } = await setup({
      ...scenario.answers,
      ready: (c) => {
        const answer = scenario.answers.ready!(c) as { status: number; body: Record<string, unknown> };
        return { ...answer, body: { ...answer.body, notice_key: undefined } };
      },
    });
    try {
      await gateway.start();
      expect(gateway.phase()).toBe('up');
      scenario.state.allocated = true;
      const calls = fake.protocolCalls().length;
      const answer = await notice(`http://127.0.0.1:${gateway.port()}`, ALLOCATION, undefined);
      expect(answer).toMatchObject({ status: 200, body: { allocation_id: ALLOCATION } });
      expect(
        fake
          .protocolCalls()
          .slice(calls)
          .map((c) => c.route),
      ).toEqual(['config', 'ready']);
    } finally {
      await close();
    }
  });
});
