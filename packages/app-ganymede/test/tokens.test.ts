/**
 * Bad tokens on every route they could be used on: expired, not yet valid (nbf), a tampered payload, `alg: none`,
 * the wrong kind, another gateway's (or another allocation's), and the organization token of an ended
 * allocation. Each is refused 401 or 403 with the contract's error body, and changes nothing. Each request
 * carries a body that would change state (or a read that would answer 200) if the token were accepted, and a
 * last test shows the same requests pass with the right token.
 *
 * Then secrets and logs: a Ganymede logging into a buffer (configured as its own logger is, with LOG_REDACT),
 * driven through every route, successes, refusals and 500s; no token, no `Bearer`, and not the signing key
 * may appear in any line.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ganymedeContract } from '@ganymede/contracts';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Claims } from '../src/auth.js';
import { bearer, bufferLogger, errorBodyProblem, rawRequest, secretLeaks, startTestGanymede, type TestGanymede } from './support.js';
import { type Kind, KINDS, NEEDS, type Route } from './token-kinds.js';

type Headers = Record<string, string>;

const SIGNING_KEY = randomBytes(32).toString('hex');
const KEY = new Uint8Array(Buffer.from(SIGNING_KEY, 'hex'));
const logs = bufferLogger();

let g: TestGanymede;
let world: Awaited<ReturnType<typeof makeWorld>>;
/** Every token this file mints, receives or sends: none may reach the logs. */
const seen = new Set<string>();
const remember = (token: string) => (seen.add(token), token);

beforeAll(async () => {
  g = await startTestGanymede({ signingKey: SIGNING_KEY, logger: logs.logger, manualReaper: true });
});
afterAll(async () => {
  await g?.close();
});

const now = () => Math.floor(Date.now() / 1000);
const tokenOf = (h: Headers) => h.authorization!.slice('Bearer '.length);

/** A, B hold claimed allocations; E's ended; a ready gateway waits for `freeOrganization`. */
async function makeWorld() {
  const hold = async () => {
    const gw = await g.addReadyGateway(g.target.url);
    const organizationId = randomUUID();
    const { allocation, orgAuth, instanceId } = await g.allocateTo(organizationId, gw.auth);
    remember(gw.token);
    remember(tokenOf(orgAuth));
    return { gw, organizationId, orgAuth, instanceId, id: allocation.allocation_id };
  };
  const a = await hold();
  const b = await hold();
  const e = await hold();
  expect((await g.client.stop({ headers: e.orgAuth, body: { reason: 'stop' } })).status).toBe(200);
  remember((await g.addReadyGateway(g.target.url)).token);
  const freeOrganization = randomUUID();
  const claims: Record<Kind, Record<string, unknown>> = {
    admin: { typ: 'admin', sub: 'test' },
    user: { typ: 'user', sub: 'user-1', organizations: [freeOrganization] },
    gateway: { typ: 'gateway', sub: a.gw.gatewayId },
    organization: { typ: 'organization', sub: a.id, gateway_id: a.gw.gatewayId, organization_id: a.organizationId },
  };
  const valid = {} as Record<Kind, string>;
  for (const kind of Object.keys(claims) as Kind[]) {
    valid[kind] = remember(await g.ganymede.tokens.sign(claims[kind] as unknown as Claims));
  }
  return { a, b, e, freeOrganization, claims, valid };
}
type World = Awaited<ReturnType<typeof makeWorld>>;

/** Signed with the server's key by jose directly, with full control of the claims. */
const signed = (payload: Record<string, unknown>) => new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(KEY).then(remember);

/** The valid token with its payload rewritten (`change`) and its signature kept. */
function tampered(token: string, change: (payload: Record<string, unknown>) => Record<string, unknown>) {
  const [header, payload, signature] = token.split('.');
  const decoded = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  return remember([header, Buffer.from(JSON.stringify(change(decoded))).toString('base64url'), signature].join('.'));
}

/** What a /gateway/data body names: the allocation's organization and gateway. */
const stateOf = (x: World['a']) => ({ organization_id: x.organizationId, gateway_id: x.gw.gatewayId });

/** A request to `route` that changes state (or reads) when its token is accepted. */
function request(route: Route, w: World, authorization: string, body?: Record<string, unknown>) {
  const bodies: Record<Route, Record<string, unknown> | undefined> = {
    start: { organization_id: w.freeOrganization },
    config: {},
    ready: { allocation_id: w.a.id, instance_id: randomUUID() },
    reclaim: { instance_id: randomUUID() },
    lease: { instance_id: w.a.instanceId, allocation_id: w.a.id, epoch: 1 },
    stop: { reason: 'stop', epoch: 1 },
    restart: { reason: 'reload', epoch: 1 },
    withdrawRestart: { epoch: 1 },
    dataPush: { ...stateOf(w.a), timestamp: new Date().toISOString(), data: { accepted: 'would be stored' }, epoch: 1 },
    dataPull: stateOf(w.a),
    addGateway: { url: 'http://127.0.0.1:4199' },
    status: undefined,
    allocation: undefined,
    events: undefined,
    metrics: undefined,
  };
  const r = ganymedeContract[route];
  const payload = body ?? bodies[route];
  return rawRequest(
    g.url,
    r.method,
    r.path.replace(':allocation_id', w.a.id),
    { authorization, ...(payload ? { 'content-type': 'application/json' } : {}) },
    payload ? JSON.stringify(payload) : undefined,
  );
}

interface BadToken {
  route: Route;
  what: string;
  status: 401 | 403;
  error: string;
  token: (w: World) => Promise<string>;
  body?: (w: World) => Record<string, unknown>;
}

const std = (w: World, kind: Kind) => ({ ...w.claims[kind], iss: 'ganymede', iat: now(), exp: now() + 600 });

const badTokens: BadToken[] = (Object.keys(NEEDS) as Route[]).flatMap((route): BadToken[] => {
  const kind = NEEDS[route];
  return [
    {
      route,
      what: 'expired an hour ago',
      status: 401,
      error: 'unauthorized',
      token: (w) => signed({ ...std(w, kind), iat: now() - 7200, exp: now() - 3600 }),
    },
    {
      route,
      what: 'not valid before an hour from now (nbf)',
      status: 401,
      error: 'unauthorized',
      token: (w) => signed({ ...std(w, kind), nbf: now() + 3600 }),
    },
    {
      route,
      what: 'its payload tampered with (another subject, signature kept)',
      status: 401,
      error: 'unauthorized',
      token: async (w) =>
        tampered(w.valid[kind], (p) => ({
          ...p,
          sub: kind === 'organization' ? w.b.id : kind === 'gateway' ? w.b.gw.gatewayId : 'someone-else',
        })),
    },
    {
      route,
      what: 'its payload tampered with (made an admin, signature kept)',
      status: 401,
      error: 'unauthorized',
      token: async (w) => tampered(w.valid[kind], (p) => ({ ...p, typ: 'admin', exp: now() + 86_400 * 365 })),
    },
    {
      route,
      what: 'unsecured (alg: none)',
      status: 401,
      error: 'unauthorized',
      token: async (w) => remember(new UnsecuredJWT(std(w, kind)).encode()),
    },
    ...KINDS.filter((k) => k !== kind).map((k): BadToken => ({
      route,
      what: `a ${k} token`,
      status: 403,
      error: 'forbidden',
      token: async (w) => w.valid[k],
    })),
    ...(kind === 'organization'
      ? []
      : [
          {
            route,
            what: "an ended allocation's organization token",
            status: 403,
            error: 'forbidden',
            token: async (w: World) => tokenOf(w.e.orgAuth),
          } as BadToken,
        ]),
  ];
});
badTokens.push(
  {
    route: 'stop',
    what: "an ended allocation's organization token",
    status: 403,
    error: 'allocation_ended',
    token: async (w) => tokenOf(w.e.orgAuth),
  },
  {
    route: 'restart',
    what: "an ended allocation's organization token",
    status: 403,
    error: 'allocation_ended',
    token: async (w) => tokenOf(w.e.orgAuth),
  },
  {
    route: 'withdrawRestart',
    what: "an ended allocation's organization token",
    status: 403,
    error: 'allocation_ended',
    token: async (w) => tokenOf(w.e.orgAuth),
  },
  {
    route: 'dataPush',
    what: "an ended allocation's organization token",
    status: 403,
    error: 'allocation_ended',
    token: async (w) => tokenOf(w.e.orgAuth),
    body: (w) => ({ ...stateOf(w.e), timestamp: 1, data: { late: true }, epoch: 1 }),
  },
  {
    route: 'dataPull',
    what: "an ended allocation's organization token",
    status: 403,
    error: 'allocation_ended',
    token: async (w) => tokenOf(w.e.orgAuth),
    body: (w) => stateOf(w.e),
  },
  {
    route: 'dataPush',
    what: "A's organization token naming B's organization",
    status: 403,
    error: 'forbidden',
    token: async (w) => tokenOf(w.a.orgAuth),
    body: (w) => ({ ...stateOf(w.b), timestamp: 1, data: { overwrite: 'B' }, epoch: 1 }),
  },
  {
    route: 'dataPush',
    what: "A's organization token naming B's gateway",
    status: 403,
    error: 'forbidden',
    token: async (w) => tokenOf(w.a.orgAuth),
    body: (w) => ({ ...stateOf(w.a), gateway_id: w.b.gw.gatewayId, timestamp: 1, data: { overwrite: 'B' }, epoch: 1 }),
  },
  {
    route: 'dataPull',
    what: "A's organization token naming B's organization",
    status: 403,
    error: 'forbidden',
    token: async (w) => tokenOf(w.a.orgAuth),
    body: (w) => stateOf(w.b),
  },
  {
    route: 'stop',
    what: "A's organization token naming B's allocation",
    status: 403,
    error: 'forbidden',
    token: async (w) => tokenOf(w.a.orgAuth),
    body: (w) => ({ reason: 'stop', allocation_id: w.b.id }),
  },
  {
    route: 'restart',
    what: "A's organization token naming B's allocation",
    status: 403,
    error: 'forbidden',
    token: async (w) => tokenOf(w.a.orgAuth),
    body: (w) => ({ reason: 'reload', allocation_id: w.b.id }),
  },
  {
    route: 'withdrawRestart',
    what: "A's organization token naming B's allocation",
    status: 403,
    error: 'forbidden',
    token: async (w) => tokenOf(w.a.orgAuth),
    body: (w) => ({ epoch: 1, allocation_id: w.b.id }),
  },
  {
    route: 'ready',
    what: "gateway B's token claiming A's allocation",
    status: 403,
    error: 'forbidden',
    token: async (w) => w.b.gw.token,
  },
  {
    route: 'lease',
    what: "gateway B's token renewing with A's allocation",
    status: 403,
    error: 'forbidden',
    token: async (w) => w.b.gw.token,
    body: (w) => ({ instance_id: w.b.instanceId, allocation_id: w.a.id, epoch: 1 }),
  },
);

describe('a bad token is refused on every route it could be used on, and changes nothing', () => {
  beforeAll(async () => {
    await g.truncate();
    world = await makeWorld();
  });

  it.each(badTokens.map((t) => [`${t.route}: ${t.what}`, t] as const))('%s', async (_, t) => {
    const token = await t.token(world);
    const before = await g.snapshot();
    const res = await request(t.route, world, `Bearer ${token}`, t.body?.(world));
    expect(res.status, res.text).toBe(t.status);
    expect(errorBodyProblem(res.body), res.text).toBeNull();
    expect(res.body).toMatchObject({ error: t.error });
    expect(await g.snapshot()).toEqual(before);
  });

  it('covers every route with each kind of bad token', () => {
    for (const route of Object.keys(NEEDS) as Route[]) {
      const whats = badTokens.filter((t) => t.route === route).map((t) => t.what);
      for (const w of [
        'expired an hour ago',
        'not valid before an hour from now (nbf)',
        'unsecured (alg: none)',
        "an ended allocation's organization token",
      ]) {
        expect(whats, route).toContain(w);
      }
      expect(
        whats.filter((w) => w.startsWith('its payload tampered')),
        route,
      ).toHaveLength(2);
      expect(
        whats.filter((w) => /^a \w+ token$/.test(w)),
        route,
      ).toHaveLength(3);
    }
  });
});

describe('the right token', () => {
  it("passes the same requests (the refusals above are the tokens')", async () => {
    await g.truncate();
    const w = await makeWorld();
    for (const route of [
      'config',
      'status',
      'allocation',
      'lease',
      'ready',
      'addGateway',
      'start',
      'dataPush',
      'dataPull',
      'restart',
      'withdrawRestart',
      'stop',
    ] as Route[]) {
      const body = route === 'ready' ? { allocation_id: w.a.id, instance_id: w.a.instanceId } : undefined;
      const res = await request(route, w, `Bearer ${w.valid[NEEDS[route]]}`, body);
      expect(res.status, `${route}: ${res.text}`).toBeLessThan(300);
      for (const t of [(res.body as { token?: string })?.token, (res.body as { organization_token?: string })?.organization_token])
        if (t) remember(t);
    }
  });
});

describe('secrets never reach the logs', () => {
  /** Runs `fn` while a table is renamed away: every route that touches the database answers 500. */
  async function withBrokenDatabase<T>(fn: () => Promise<T>): Promise<T> {
    await g.ganymede.db.exec('ALTER TABLE allocations RENAME TO allocations_away');
    try {
      return await fn();
    } finally {
      await g.ganymede.db.exec('ALTER TABLE allocations_away RENAME TO allocations');
    }
  }

  it('no token, no "Bearer", and not the signing key in any log line, after every route, refusal and 500', async () => {
    await g.truncate();
    // Successes, each route (tokens in answers too: /admin/gateways, /gateway/config).
    const gw = await g.client.addGateway({ headers: g.admin, body: { url: g.target.url } });
    if (gw.status !== 201) throw new Error(`addGateway answered ${gw.status}`);
    remember(gw.body.token);
    const auth = bearer(gw.body.token);
    const instance = randomUUID();
    expect((await g.client.ready({ headers: auth, body: { allocation_id: null, instance_id: instance } })).status).toBe(200);
    expect((await g.client.lease({ headers: auth, body: { instance_id: instance, allocation_id: null } })).status).toBe(200);
    const org = randomUUID();
    const user = bearer(remember(await g.ganymede.tokens.sign({ typ: 'user', sub: 'u', organizations: [org] })));
    const started = await g.client.start({ headers: user, body: { organization_id: org } });
    expect(started.status).toBe(201);
    const config = await g.client.config({ headers: auth, body: {} });
    if (config.status !== 200) throw new Error(`config answered ${config.status}`);
    remember(config.body.organization_token);
    const orgAuth = bearer(config.body.organization_token);
    const id = config.body.allocation_id;
    expect((await g.client.ready({ headers: auth, body: { allocation_id: id, instance_id: instance } })).status).toBe(200);
    expect((await g.client.lease({ headers: auth, body: { instance_id: instance, allocation_id: id, epoch: 1 } })).status).toBe(200);
    const state = { organization_id: org, gateway_id: gw.body.gateway_id };
    const pushed = await g.client.dataPush({ headers: orgAuth, body: { ...state, timestamp: 1, data: { n: 1 }, epoch: 1 } });
    expect(pushed.status).toBe(200);
    expect((await g.client.dataPull({ headers: orgAuth, body: state })).status).toBe(200);
    expect((await g.client.restart({ headers: orgAuth, body: { reason: 'deploy', epoch: 1 } })).status).toBe(200);
    expect((await g.client.ready({ headers: auth, body: { allocation_id: id, instance_id: randomUUID() } })).status).toBe(200);
    expect((await g.client.status({ headers: g.admin })).status).toBe(200);
    expect((await g.client.allocation({ headers: g.admin, params: { allocation_id: id } })).status).toBe(200);
    // Refusals: stale epoch, superseded, wrong kinds, bad tokens on every route, a token echoed in a bad field.
    expect((await g.client.stop({ headers: orgAuth, body: { reason: 'stop', epoch: 1 } })).status).toBe(409);
    expect((await g.client.lease({ headers: auth, body: { instance_id: instance, allocation_id: id, epoch: 1 } })).status).toBe(409);
    const w = await makeWorld();
    for (const t of badTokens.filter((_, i) => i % 3 === 0)) {
      await request(t.route, w, `Bearer ${await t.token(w)}`, t.body?.(w));
    }
    const echoed = await rawRequest(
      g.url,
      'POST',
      '/gateway/stop',
      { ...orgAuth, 'content-type': 'application/json' },
      JSON.stringify({ reason: tokenOf(orgAuth) }),
    );
    expect(echoed.status).toBe(400);
    await rawRequest(g.url, 'GET', '/admin/status', { authorization: `Basic ${Buffer.from(`admin:${SIGNING_KEY}`).toString('base64')}` });
    // The 500 path of every route that reaches the database.
    const another = randomUUID();
    const anotherUser = bearer(remember(await g.ganymede.tokens.sign({ typ: 'user', sub: 'u', organizations: [another] })));
    await withBrokenDatabase(async () => {
      const answers = [
        await g.client.start({ headers: anotherUser, body: { organization_id: another } }),
        await g.client.config({ headers: auth, body: {} }),
        await g.client.ready({ headers: auth, body: { allocation_id: id, instance_id: instance } }),
        await g.client.lease({ headers: auth, body: { instance_id: instance, allocation_id: id, epoch: 2 } }),
        await g.client.restart({ headers: orgAuth, body: { reason: 'reload', epoch: 2 } }),
        await g.client.withdrawRestart({ headers: orgAuth, body: { epoch: 2 } }),
        await g.client.stop({ headers: orgAuth, body: { reason: 'stop', epoch: 2 } }),
        await g.client.dataPush({ headers: orgAuth, body: { ...state, timestamp: 2, data: { n: 2 }, epoch: 2 } }),
        await g.client.dataPull({ headers: orgAuth, body: state }),
        await g.client.status({ headers: g.admin }),
        await g.client.allocation({ headers: g.admin, params: { allocation_id: id } }),
      ];
      for (const a of answers) expect(a.status).toBe(500);
    });
    remember(tokenOf(g.admin));
    await g.ganymede.reaper.runOnce();

    const lines = logs.lines;
    // The check means something: requests, transitions and 500s were all logged.
    expect(lines.some((l) => l.includes('incoming request'))).toBe(true);
    expect(lines.some((l) => l.includes('"transition":"restart_requested"'))).toBe(true);
    expect(lines.filter((l) => l.includes('request failed')).length).toBeGreaterThanOrEqual(11);
    expect(lines.some((l) => l.includes('snapshot stored'))).toBe(true);
    expect(seen.size).toBeGreaterThan(20);

    expect(secretLeaks(lines, seen, SIGNING_KEY)).toEqual([]);
  });
});
