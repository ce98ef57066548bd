/**
 * Part of the attack suite: forged claims signed with the real key. Another service that shares Ganymede's
 * signing key (or a bug in one) can mint a token whose signature is valid but whose claims are off the shape
 * Ganymede issues: a user with no `organizations`, or with it as an object, a string ("X,Y" once made membership
 * a substring test), or an array holding a non-string; a gateway or organization token whose `sub` is not a
 * UUID (once a 500, with PostgreSQL logging "invalid input syntax for type uuid"); an organization token without
 * `gateway_id` or `organization_id`; a `typ` nobody issues.
 *
 * Each is refused 401 with the contract's error body and a message naming the claim (never the token), changes
 * no table, is logged as a warning without the token, and is refused again when presented again (only tokens
 * whose claims parsed are cached). Extra claims other issuers add (jti, aud, nbf, their own) are tolerated.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ganymedeContract } from '@ganymede/contracts';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferLogger, errorBodyProblem, rawRequest, secretLeaks, startTestGanymede, type TestGanymede } from './support.js';
import type { Route } from './token-kinds.js';

const SIGNING_KEY = randomBytes(32).toString('hex');
const KEY = new Uint8Array(Buffer.from(SIGNING_KEY, 'hex'));
const logs = bufferLogger();

/** Every token this file mints or receives: none may reach the logs. */
const seen = new Set<string>();
const remember = (token: string) => (seen.add(token), token);
const now = () => Math.floor(Date.now() / 1000);

/** Signed with the server's real key, as another service sharing it would: iss, iat and exp right, the rest as given. */
const forged = (claims: Record<string, unknown>) =>
  new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('ganymede')
    .setIssuedAt()
    .setExpirationTime(now() + 600)
    .sign(KEY)
    .then(remember);

let g: TestGanymede;
/** A holds a claimed allocation (what /stop and /restart would end); a ready gateway waits for `Y` (what /start would take). */
let world: Awaited<ReturnType<typeof makeWorld>>;

async function makeWorld() {
  const a = await g.live();
  remember(a.gw.token);
  remember(a.orgAuth.authorization.slice('Bearer '.length));
  const free = await g.addReadyGateway(g.target.url);
  remember(free.token);
  return { a, free, X: randomUUID(), Y: randomUUID() };
}
type World = typeof world;

beforeAll(async () => {
  g = await startTestGanymede({ signingKey: SIGNING_KEY, logger: logs.logger, manualReaper: true });
  world = await makeWorld();
});
afterAll(async () => {
  await g?.close();
});

/** A request to `route` that would change state (or read) if its token were accepted. */
function send(route: Route, w: World, token: string) {
  const bodies: Partial<Record<Route, Record<string, unknown>>> = {
    start: { organization_id: w.Y },
    config: {},
    ready: { allocation_id: null, instance_id: randomUUID() },
    lease: { instance_id: w.a.instanceId, allocation_id: w.a.id, epoch: 1 },
    stop: { reason: 'stop', epoch: 1 },
    restart: { reason: 'reload', epoch: 1 },
    withdrawRestart: { epoch: 1 },
    dataPush: { organization_id: w.a.organizationId, gateway_id: w.a.gw.gatewayId, timestamp: 1, data: { n: 1 }, epoch: 1 },
    dataPull: { organization_id: w.a.organizationId, gateway_id: w.a.gw.gatewayId },
    addGateway: { url: 'http://127.0.0.1:4199' },
  };
  const r = ganymedeContract[route];
  const body = bodies[route];
  return rawRequest(
    g.url,
    r.method,
    r.path.replace(':allocation_id', w.a.id),
    { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body ? JSON.stringify(body) : undefined,
  );
}

interface ForgedCase {
  routes: Route[];
  what: string;
  claims: (w: World) => Record<string, unknown>;
  /** What the 401's message must name. */
  names: RegExp;
}

const user = (w: World, organizations: unknown) => ({ typ: 'user', sub: 'user-1', organizations });
const organization = (w: World, over: Record<string, unknown> = {}) => ({
  typ: 'organization',
  sub: w.a.id,
  gateway_id: w.a.gw.gatewayId,
  organization_id: w.a.organizationId,
  ...over,
});
/** A key set to undefined is left out of the token. */
const without = (o: Record<string, unknown>, key: string) => ({ ...o, [key]: undefined });

const GATEWAY_ROUTES: Route[] = ['config', 'ready', 'lease'];
const ORGANIZATION_ROUTES: Route[] = ['stop', 'restart', 'withdrawRestart', 'dataPush', 'dataPull'];

const CASES: ForgedCase[] = [
  {
    routes: ['start'],
    what: 'a user token without organizations',
    claims: (w) => without(user(w, null), 'organizations'),
    names: /organizations: Required/,
  },
  {
    routes: ['start'],
    what: 'organizations as an object',
    claims: (w) => user(w, { [w.Y]: true }),
    names: /organizations: Expected array, received object/,
  },
  {
    routes: ['start'],
    what: 'organizations as a string "X,Y" (for organization Y)',
    claims: (w) => user(w, `${w.X},${w.Y}`),
    names: /organizations: Expected array, received string/,
  },
  {
    routes: ['start'],
    what: 'organizations as an array with a non-string',
    claims: (w) => user(w, [w.Y, 42]),
    names: /organizations\.1: Expected string, received number/,
  },
  {
    routes: ['start'],
    what: 'organizations as an array with a non-UUID string',
    claims: (w) => user(w, [w.Y, 'acme']),
    names: /organizations\.1: Invalid uuid/,
  },
  {
    routes: GATEWAY_ROUTES,
    what: 'a gateway token whose sub is not a UUID',
    claims: () => ({ typ: 'gateway', sub: 'gateway-1' }),
    names: /sub: Invalid uuid/,
  },
  {
    routes: GATEWAY_ROUTES,
    what: 'a gateway token whose sub is SQL',
    claims: () => ({ typ: 'gateway', sub: "'; DROP TABLE gateways; --" }),
    names: /sub: Invalid uuid/,
  },
  {
    routes: ORGANIZATION_ROUTES,
    what: 'an organization token whose sub is not a UUID',
    claims: (w) => organization(w, { sub: 'allocation-1' }),
    names: /sub: Invalid uuid/,
  },
  {
    routes: ORGANIZATION_ROUTES,
    what: 'an organization token without gateway_id',
    claims: (w) => without(organization(w), 'gateway_id'),
    names: /gateway_id: Required/,
  },
  {
    routes: ORGANIZATION_ROUTES,
    what: 'an organization token without organization_id',
    claims: (w) => without(organization(w), 'organization_id'),
    names: /organization_id: Required/,
  },
  {
    routes: ORGANIZATION_ROUTES,
    what: 'an organization token whose gateway_id is a number',
    claims: (w) => organization(w, { gateway_id: 7 }),
    names: /gateway_id: Expected string/,
  },
  {
    routes: ['start', 'config', 'stop', 'status'],
    what: 'an unknown typ',
    claims: (w) => ({ ...organization(w), typ: 'superuser' }),
    names: /typ: Invalid discriminator value/,
  },
  {
    routes: ['start', 'config', 'stop', 'status'],
    what: 'no typ',
    claims: (w) => without(organization(w), 'typ'),
    names: /typ: Invalid discriminator value/,
  },
];

const EXPANDED = CASES.flatMap((c) => c.routes.map((route) => [`${route}: ${c.what}`, route, c] as const));

describe('a token signed with the real key but with claims off the schema', () => {
  it.each(EXPANDED)('%s: 401, named, nothing changed, a warning without the token', async (_, route, c) => {
    const token = await forged(c.claims(world));
    const warningsBefore = logs.lines.filter((l) => l.includes('claims off the schema')).length;
    const before = await g.snapshot();
    const res = await send(route, world, token);
    expect(res.status, res.text).toBe(401);
    expect(errorBodyProblem(res.body), res.text).toBeNull();
    const { error, message } = res.body as { error: string; message: string };
    expect(error).toBe('unauthorized');
    expect(message).toMatch(c.names);
    expect(message).not.toContain(token.split('.')[2]);
    expect(await g.snapshot()).toEqual(before);
    const warnings = logs.lines.filter((l) => l.includes('claims off the schema'));
    expect(warnings.length).toBe(warningsBefore + 1);
    const warning = JSON.parse(warnings.at(-1)!) as { level: number; reason: string; route: string };
    expect(warning).toMatchObject({ level: 40, route: ganymedeContract[route].path });
    expect(warning.reason).toMatch(c.names);
  });

  it('is refused again when presented again: a token whose claims did not parse is not cached', async () => {
    const token = await forged(user(world, `${world.X},${world.Y}`));
    for (let i = 0; i < 3; i++) expect((await send('start', world, token)).status).toBe(401);
    const gatewayToken = await forged({ typ: 'gateway', sub: 'not-a-uuid' });
    for (let i = 0; i < 3; i++) expect((await send('config', world, gatewayToken)).status).toBe(401);
  });
});

describe('the claims are strict on what Ganymede uses, tolerant of the rest', () => {
  it('extra claims other issuers add (jti, aud, nbf, their own) pass; the same shapes with ours right are accepted', async () => {
    const extra = { jti: randomUUID(), aud: 'some-service', nbf: now() - 10, email: 'u@example.com', roles: ['admin'] };
    // /gateway/config with a gateway token carrying extras.
    const gatewayToken = await forged({ typ: 'gateway', sub: world.a.gw.gatewayId, ...extra });
    const config = await send('config', world, gatewayToken);
    expect(config.status, config.text).toBe(200);
    remember((config.body as { organization_token: string }).organization_token);
    // /gateway/start with "X,Y" done right: an array.
    const userToken = await forged({ ...user(world, [world.X, world.Y]), ...extra });
    const started = await send('start', world, userToken);
    expect(started.status, started.text).toBe(201);
    // /gateway/restart with an organization token carrying extras.
    const orgToken = await forged({ ...organization(world), ...extra });
    const restarted = await send('restart', world, orgToken);
    expect(restarted.status, restarted.text).toBe(200);
    // The admin kind, with extras, on a read.
    expect((await send('status', world, await forged({ typ: 'admin', sub: 'ops', ...extra }))).status).toBe(200);
  });
});

describe('the log', () => {
  it('holds the warnings but no token, no "Bearer", no JWT, not the signing key, and no 500', () => {
    const lines = logs.lines;
    expect(lines.filter((l) => l.includes('claims off the schema')).length).toBeGreaterThanOrEqual(EXPANDED.length);
    expect(seen.size).toBeGreaterThan(CASES.length); // the same claims in the same second make the same token
    expect(secretLeaks(lines, seen, SIGNING_KEY)).toEqual([]);
    expect(lines.filter((l) => l.includes('request failed') || l.includes('invalid input syntax'))).toEqual([]);
  });
});
