/**
 * A fake Ganymede for tests: a real Fastify server on port 0 serving every route of `ganymedeContract`,
 * recording each call and answering with whatever the test configured (any status, any body, or never).
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { ganymedeContract, ids } from '@ganymede/contracts';
import Fastify, { type FastifyInstance } from 'fastify';

export type RouteName = keyof typeof ganymedeContract;

export interface Call {
  route: RouteName;
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: Record<string, unknown>;
  /** The client side's port: the same for calls over one kept-alive connection. */
  remotePort: number | undefined;
  at: number;
}

/** An answer: a status with a JSON body (or a raw text body), or 'hang' to never answer. */
export type Answer = { status: number; body?: unknown; raw?: string; contentType?: string } | 'hang';
export type Responder = (call: Call) => Answer | Promise<Answer>;

export interface FakeGanymede {
  url: string;
  port: number;
  calls: Call[];
  answers: Partial<Record<RouteName, Responder>>;
  callsTo(route: RouteName): Call[];
  /** The allocation protocol: every call but lease renewals (on a timer) and state pushes and pulls (each test of those looks at them itself). */
  protocolCalls(): Call[];
  /** The `n`th call (1-based, counting calls already made) to `route`. */
  waitForCall(route: RouteName, n?: number): Promise<Call>;
  close(): Promise<void>;
}

/**
 * The organization's state, for tests that set no answer of their own: nothing was ever pushed (pull 404), and
 * every push is stored at the next revision. (Every process that holds an allocation pulls it first.)
 */
const STATE_ANSWERS: Partial<Record<RouteName, Responder>> = {
  dataPull: () => ({ status: 404, body: { error: 'not_found', message: 'nothing was pushed for this organization' } }),
  dataPush: (call) => ({
    status: 200,
    body: {
      organization_id: call.body.organization_id,
      revision: Number(call.body.base_revision ?? 0) + 1,
      epoch: call.body.epoch ?? null,
      size: String(call.body.data).length,
      checksum: `sha256:${'0'.repeat(64)}`,
      stored_at: '2030-01-01T00:00:00.000Z',
    },
  }),
};

/**
 * Routes newer than some Ganymedes: with no answer set, the fake is such an older Ganymede, answering Fastify's own
 * 404 (the gateway then falls back: README, "Rolling upgrades").
 */
const NEWER_ROUTES: Partial<Record<RouteName, Responder>> = {
  reclaim: (call) => ({ status: 404, body: { message: `Route POST:${call.url} not found`, error: 'Not Found', statusCode: 404 } }),
};

export async function startFakeGanymede(answers: Partial<Record<RouteName, Responder>> = {}): Promise<FakeGanymede> {
  const app: FastifyInstance = Fastify({ logger: false, forceCloseConnections: true });
  const calls: Call[] = [];
  const waiters: { route: RouteName; n: number; resolve: (call: Call) => void }[] = [];
  const fake: FakeGanymede = {
    url: '',
    port: 0,
    calls,
    answers,
    callsTo: (route) => calls.filter((c) => c.route === route),
    protocolCalls: () => calls.filter((c) => c.route !== 'lease' && c.route !== 'dataPull' && c.route !== 'dataPush'),
    waitForCall: (route, n = 1) => {
      const existing = fake.callsTo(route)[n - 1];
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve) => waiters.push({ route, n, resolve }));
    },
    close: () => app.close(),
  };

  for (const [name, route] of Object.entries(ganymedeContract) as [RouteName, (typeof ganymedeContract)[RouteName]][]) {
    app.route({
      method: route.method,
      url: route.path,
      handler: async (request, reply) => {
        const call: Call = {
          route: name,
          method: request.method,
          url: request.url,
          authorization: request.headers.authorization,
          contentType: request.headers['content-type'],
          body: (request.body ?? {}) as Record<string, unknown>,
          remotePort: request.socket.remotePort,
          at: Date.now(),
        };
        calls.push(call);
        const count = fake.callsTo(name).length;
        for (const waiter of waiters.filter((w) => w.route === name && w.n === count)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(call);
        }
        const responder = fake.answers[name] ?? STATE_ANSWERS[name] ?? NEWER_ROUTES[name];
        const answer: Answer = responder
          ? await responder(call)
          : { status: 500, body: { error: 'internal', message: `no answer set for ${name}` } };
        if (answer === 'hang') return new Promise(() => undefined);
        if (answer.raw !== undefined) {
          return reply
            .status(answer.status)
            .type(answer.contentType ?? 'text/plain')
            .send(answer.raw);
        }
        return reply
          .status(answer.status)
          .type(answer.contentType ?? 'application/json')
          .send(JSON.stringify(answer.body ?? {}));
      },
    });
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  fake.port = typeof address === 'object' && address ? address.port : 0;
  fake.url = `http://127.0.0.1:${fake.port}`;
  return fake;
}

export const GATEWAY_ID = ids.GATEWAY;
export const GATEWAY_TOKEN = 'gateway-token';
export const ORG_TOKEN = 'organization-token';
export const ORG = ids.ORG;
export const ALLOCATION = ids.ALLOCATION;

/** The fake's notice key pair: the public half goes out in /gateway/ready's answers, the private half signs notices. */
export const NOTICE_KEYS = generateKeyPairSync('ed25519');
export const NOTICE_KEY = NOTICE_KEYS.publicKey.export({ format: 'jwk' }).x!;

/**
 * A notice token as Ganymede signs one (EdDSA, for GATEWAY_ID and ALLOCATION, good for 7 s), with `claims` changed
 * (a claim set to undefined is left out), another `header`, or signed with another `key` (a forgery).
 */
export function noticeToken(claims: Record<string, unknown> = {}, options: { key?: KeyObject; header?: Record<string, unknown> } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${part(options.header ?? { alg: 'EdDSA' })}.${part({ typ: 'notice', iss: 'ganymede', aud: GATEWAY_ID, sub: ALLOCATION, iat: now, exp: now + 7, ...claims })}`;
  return `${input}.${sign(null, Buffer.from(input), options.key ?? NOTICE_KEYS.privateKey).toString('base64url')}`;
}

/** The Authorization header of a genuine notice for `allocationId`. */
export const noticeAuth = (allocationId: string = ALLOCATION) => `Bearer ${noticeToken({ sub: allocationId })}`;

/**
 * Answers that behave like Ganymede for one gateway holding (or not) one allocation: /ready with the allocation (or
 * /reclaim) from a new instance bumps the epoch, a repeated one from the same instance does not;
 * /restart, /restart/withdraw and /stop answer for the epoch they are given.
 */
export function allocationAnswers(options: { allocated: boolean; epoch?: number }) {
  const state = {
    allocated: options.allocated,
    epoch: options.epoch ?? 2,
    instances: new Set<string>(),
    restartDeadline: '2030-01-01T00:00:00.000Z',
  };
  const served = () => ({ allocation_id: ALLOCATION, organization_id: ORG, state: 'active', epoch: state.epoch });
  const lease = { expires_at: null, seconds: 10 };
  const config = () => ({
    gateway_id: GATEWAY_ID,
    organization_id: ORG,
    organization_token: ORG_TOKEN,
    allocation_id: ALLOCATION,
    state: 'active',
    epoch: state.epoch,
    restart_deadline: null,
  });
  const noAllocation = { status: 404, body: { error: 'no_allocation', message: 'this gateway holds no live allocation' } };
  /** A new instance's claim bumps the epoch; the same instance's repeat does not. */
  const claim = (instance: string) => {
    if (state.instances.has(instance)) return;
    state.instances.add(instance);
    state.epoch += 1;
  };
  const answers: Partial<Record<RouteName, Responder>> = {
    config: () => (state.allocated ? { status: 200, body: config() } : noAllocation),
    reclaim: (call) => {
      if (!state.allocated) return noAllocation;
      claim(String(call.body.instance_id));
      return { status: 200, body: { ...config(), reclaimed: true, lease, notice_key: NOTICE_KEY } };
    },
    ready: (call) => {
      const instance = String(call.body.instance_id);
      if (call.body.allocation_id === null) {
        return { status: 200, body: { gateway_id: GATEWAY_ID, allocation: null, reclaimed: false, lease, notice_key: NOTICE_KEY } };
      }
      if (!state.allocated || call.body.allocation_id !== ALLOCATION) {
        return { status: 409, body: { error: 'allocation_ended', message: 'the allocation has ended' } };
      }
      claim(instance);
      return { status: 200, body: { gateway_id: GATEWAY_ID, allocation: served(), reclaimed: true, lease, notice_key: NOTICE_KEY } };
    },
    lease: (call) => ({
      status: 200,
      body: { lease: { ...lease, expires_at: '2030-01-01T00:00:00.000Z' }, allocation: call.body.allocation_id ? served() : null },
    }),
    restart: (call) => ({
      status: 200,
      body: { allocation_id: ALLOCATION, state: 'restarting', epoch: Number(call.body.epoch), restart_deadline: state.restartDeadline },
    }),
    withdrawRestart: (call) => ({
      status: 200,
      body: { allocation_id: ALLOCATION, state: 'active', epoch: Number(call.body.epoch) },
    }),
    stop: (call) => {
      state.allocated = false;
      return {
        status: 200,
        body: {
          allocation_id: ALLOCATION,
          state: 'ended',
          epoch: Number(call.body.epoch),
          ended_at: '2030-01-01T00:00:00.000Z',
          ended_reason: call.body.reason,
        },
      };
    },
  };
  return { state, answers };
}
