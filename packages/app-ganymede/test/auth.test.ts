/**
 * Bearer tokens: which kind each route takes, expiry and the other claims jose checks (tokens signed in the
 * past with the same key: no sleeping), the signing key file (mode 0600, reused across restarts of a server on
 * the same data directory), and organization tokens bound to one allocation.
 *
 * The server runs on a data directory under os.tmpdir() so that the restart test can reopen it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ganymedeContract } from '@ganymede/contracts';
import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Claims, loadSigningKey, TOKEN_TTL, Tokens } from '../src/auth.js';
import { bearer, errorBodyProblem, rawRequest, startTestGanymede, type TestGanymede } from './support.js';
import { type Kind, KINDS, NEEDS, type Route } from './token-kinds.js';

let root: string;
let dataDir: string;
let g: TestGanymede;
/** The signing key as the server keeps it in its data directory. */
let key: Uint8Array;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ganymede-auth-'));
  dataDir = join(root, 'data'); // does not exist yet: the server creates it
  g = await startTestGanymede({ dataDir });
  key = new Uint8Array(Buffer.from((await readFile(join(dataDir, 'signing.key'), 'utf8')).trim(), 'hex'));
});
// Each test builds the pool it needs: a free gateway left by one must not be picked in another.
beforeEach(async () => {
  await g.truncate();
});
afterAll(async () => {
  await g?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);

/** A token signed with the server's key by jose directly, with full control of the claims. */
function rawToken(payload: Record<string, unknown>, { alg = 'HS256', signingKey = key }: { alg?: string; signingKey?: Uint8Array } = {}) {
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(signingKey);
}

const adminClaims = (over: Record<string, unknown> = {}) => ({
  typ: 'admin',
  sub: 'test',
  iss: 'ganymede',
  iat: now(),
  exp: now() + 300,
  ...over,
});

/** GET /admin/status with `token`: the cheapest authenticated call. */
const status = (token: string) => rawRequest(g.url, 'GET', '/admin/status', bearer(token));

const live = () => g.live();

describe('the signing key file', () => {
  it('is generated into the data directory with mode 0600 (the directory 0700)', async () => {
    const file = await stat(join(dataDir, 'signing.key'));
    expect(file.mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await readFile(join(dataDir, 'signing.key'), 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is the key tokens are signed with', async () => {
    const res = await status(await rawToken(adminClaims()));
    expect(res.status).toBe(200);
    expect(await new Tokens(key).verify(await g.ganymede.tokens.sign({ typ: 'admin', sub: 'x' }), 'admin')).toMatchObject({ typ: 'admin' });
  });

  it('is reused when the server restarts on the same data directory: tokens minted before still work', async () => {
    const { gw, id, orgAuth } = await live();
    const adminBefore = g.admin;
    const keyFile = await readFile(join(dataDir, 'signing.key'), 'utf8');
    await g.close();
    g = await startTestGanymede({ dataDir });
    expect(await readFile(join(dataDir, 'signing.key'), 'utf8')).toBe(keyFile);
    expect((await stat(join(dataDir, 'signing.key'))).mode & 0o777).toBe(0o600);

    const config = await g.client.config({ headers: gw.auth, body: {} });
    expect(config).toMatchObject({ status: 200, body: { allocation_id: id, gateway_id: gw.gatewayId } });
    const restarted = await g.client.restart({ headers: orgAuth, body: { reason: 'deploy', epoch: 1 } });
    expect(restarted).toMatchObject({ status: 200, body: { allocation_id: id, state: 'restarting' } });
    const ready = await g.client.ready({ headers: gw.auth, body: { allocation_id: id, instance_id: randomUUID() } });
    expect(ready).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 2 } } });
    expect((await g.client.status({ headers: adminBefore })).status).toBe(200);
  });

  it('is refused when shorter than 32 bytes; a configured key is used as given and not written', async () => {
    await expect(loadSigningKey('ab'.repeat(31), undefined)).rejects.toThrow(/at least 32 bytes/);
    await expect(loadSigningKey(Buffer.alloc(16).toString('base64'), undefined)).rejects.toThrow(/at least 32 bytes/);
    const hex = randomBytes(32).toString('hex');
    const dir = join(root, 'configured');
    expect(Buffer.from(await loadSigningKey(hex, dir)).toString('hex')).toBe(hex);
    const b64 = randomBytes(48).toString('base64');
    expect(Buffer.from(await loadSigningKey(b64, dir)).toString('base64')).toBe(b64);
    await expect(stat(join(dir, 'signing.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is the same for two processes that create it at once', async () => {
    const dir = join(root, `race-${randomUUID()}`);
    const keys = await Promise.all(Array.from({ length: 5 }, () => loadSigningKey(undefined, dir)));
    const hex = new Set(keys.map((k) => Buffer.from(k).toString('hex')));
    expect(hex.size).toBe(1);
    expect((await stat(join(dir, 'signing.key'))).mode & 0o777).toBe(0o600);
  });

  it('tokens of a server with another key are refused (401)', async () => {
    const other = new Tokens(randomBytes(32));
    const res = await status(await other.sign({ typ: 'admin', sub: 'test' }));
    expect(res).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
  });
});

describe('token kinds', () => {
  /** A request to `route` that would get past authorization with the right token. */
  async function requestFor(route: Route, tokens: Record<Kind, string>, world: Awaited<ReturnType<typeof live>>) {
    const r = ganymedeContract[route];
    const ofWorld = { organization_id: world.organizationId, gateway_id: world.gw.gatewayId };
    const body: Record<Route, unknown> = {
      start: { organization_id: world.organizationId },
      config: {},
      ready: { allocation_id: world.id, instance_id: randomUUID() },
      reclaim: { instance_id: randomUUID() },
      lease: { instance_id: world.instanceId, allocation_id: world.id, epoch: 1 },
      stop: { reason: 'stop' },
      restart: { reason: 'reload' },
      withdrawRestart: { epoch: 1 },
      dataPush: { ...ofWorld, timestamp: 1764000000000, data: { pushed: 'by the test' }, epoch: 1 },
      dataPull: ofWorld,
      addGateway: { url: 'http://127.0.0.1:4199' },
      status: undefined,
      allocation: undefined,
      events: undefined,
      metrics: undefined,
    };
    return (kind: Kind) =>
      rawRequest(
        g.url,
        r.method,
        r.path.replace(':allocation_id', world.id),
        { ...bearer(tokens[kind]), ...(r.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        r.method === 'POST' ? JSON.stringify(body[route]) : undefined,
      );
  }

  it.each(Object.keys(NEEDS) as Route[])('%s takes only its kind: the others answer 403 and change nothing', async (route) => {
    const world = await live();
    const tokens: Record<Kind, string> = {
      admin: await g.ganymede.tokens.sign({ typ: 'admin', sub: 'test' }),
      user: await g.ganymede.tokens.sign({ typ: 'user', sub: 'u', organizations: [world.organizationId] }),
      gateway: world.gw.auth.authorization.slice('Bearer '.length),
      organization: world.orgAuth.authorization.slice('Bearer '.length),
    };
    const send = await requestFor(route, tokens, world);
    // Something to pull, so that the right kind's pull answers 200 (the push changes nothing the refusals see).
    if (route === 'dataPull') expect((await (await requestFor('dataPush', tokens, world))('organization')).status).toBe(200);
    for (const kind of KINDS.filter((k) => k !== NEEDS[route])) {
      const before = await g.snapshot();
      const res = await send(kind);
      expect(res.status, `${kind}: ${res.text}`).toBe(403);
      expect(res.body).toMatchObject({ error: 'forbidden' });
      expect(errorBodyProblem(res.body)).toBeNull();
      expect(await g.snapshot()).toEqual(before);
    }
    const res = await send(NEEDS[route]);
    expect(res.status, res.text).toBeLessThan(300);
  });

  it('a well-signed token of an unknown kind is refused (401: its claims are off the schema; see attack-claims.test.ts)', async () => {
    const res = await status(await rawToken(adminClaims({ typ: 'superuser' })));
    expect(res).toMatchObject({ status: 401, body: { error: 'unauthorized', message: expect.stringMatching(/typ/) } });
  });

  it('each kind lives as long as TOKEN_TTL says', async () => {
    const ttl = { admin: 300, user: 12 * 3600, gateway: 365 * 86400, organization: 30 * 86400 };
    expect(TOKEN_TTL).toEqual({ admin: '5m', user: '12h', gateway: '365d', organization: '30d' });
    const claims: Claims[] = [
      { typ: 'admin', sub: 'a' },
      { typ: 'user', sub: 'u', organizations: [] },
      { typ: 'gateway', sub: randomUUID() },
      { typ: 'organization', sub: randomUUID(), gateway_id: randomUUID(), organization_id: randomUUID() },
    ];
    for (const c of claims) {
      const { exp, iat, iss, sub } = decodeJwt(await g.ganymede.tokens.sign(c));
      expect(exp! - iat!, c.typ).toBe(ttl[c.typ]);
      expect({ iss, sub }).toEqual({ iss: 'ganymede', sub: c.sub });
    }
  });
});

describe('claims jose checks', () => {
  it.each([
    ['expired an hour ago', () => rawToken(adminClaims({ iat: now() - 7200, exp: now() - 3600 })), 'ERR_JWT_EXPIRED'],
    ['expired a second ago', () => rawToken(adminClaims({ iat: now() - 60, exp: now() - 1 })), 'ERR_JWT_EXPIRED'],
    ['signed by Tokens with a ttl in the past', () => g.ganymede.tokens.sign({ typ: 'admin', sub: 'test' }, '-1m'), 'ERR_JWT_EXPIRED'],
    ['not valid before an hour from now', () => rawToken(adminClaims({ nbf: now() + 3600 })), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['with no exp', () => rawToken(adminClaims({ exp: undefined })), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['with no sub', () => rawToken(adminClaims({ sub: undefined })), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['from another issuer', () => rawToken(adminClaims({ iss: 'someone-else' })), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['with no issuer', () => rawToken(adminClaims({ iss: undefined })), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    [
      'signed HS512 with the same key',
      () => rawToken(adminClaims(), { alg: 'HS512', signingKey: new Uint8Array([...key, ...key]) }),
      'ERR_JOSE_ALG_NOT_ALLOWED',
    ],
    ['unsecured (alg none)', async () => new UnsecuredJWT(adminClaims()).encode(), 'ERR_JOSE_ALG_NOT_ALLOWED'],
  ] as const)('a token %s answers 401', async (_, make, code) => {
    const res = await status(await make());
    expect(res.status, res.text).toBe(401);
    expect(errorBodyProblem(res.body)).toBeNull();
    expect(res.body).toMatchObject({ error: 'unauthorized', message: `invalid token: ${code}` });
  });

  it('the same token with a future exp is accepted (the raw signing above is right)', async () => {
    expect((await status(await rawToken(adminClaims()))).status).toBe(200);
    expect((await status(await g.ganymede.tokens.sign({ typ: 'admin', sub: 'test' }, '10s'))).status).toBe(200);
  });

  it('an expired gateway token cannot claim, and changes nothing', async () => {
    const { gw, id } = await live();
    const expired = await rawToken({ typ: 'gateway', sub: gw.gatewayId, iss: 'ganymede', iat: now() - 7200, exp: now() - 3600 });
    const before = await g.snapshot();
    const res = await g.client.ready({ headers: bearer(expired), body: { allocation_id: id, instance_id: randomUUID() } });
    expect(res.status).toBe(401);
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('organization tokens', () => {
  it("are bound to one allocation: after it ends, they cannot touch the organization's next one", async () => {
    const first = await live();
    expect((await g.client.stop({ headers: first.orgAuth, body: { reason: 'stop' } })).status).toBe(200);
    const gw = await g.addReadyGateway(g.target.url);
    const { allocation } = await g.allocateTo(first.organizationId, gw.auth);
    const before = await g.snapshot();
    // Its authority ended with its allocation: refused like a token gone stale (403), not a conflict.
    const stop = await g.client.stop({ headers: first.orgAuth, body: { reason: 'stop' } });
    expect(stop).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    const restart = await g.client.restart({ headers: first.orgAuth, body: { reason: 'reload' } });
    expect(restart).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    const named = await g.client.restart({ headers: first.orgAuth, body: { reason: 'reload', allocation_id: allocation.allocation_id } });
    expect(named).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    // The organization's state is the next allocation's now.
    const ofFirst = { organization_id: first.organizationId, gateway_id: first.gw.gatewayId };
    const push = await g.client.dataPush({ headers: first.orgAuth, body: { ...ofFirst, timestamp: 'late', data: 'stale state' } });
    expect(push).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    const pull = await g.client.dataPull({ headers: first.orgAuth, body: ofFirst });
    expect(pull).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    expect(await g.snapshot()).toEqual(before);
  });

  it('naming their own allocation in the body is accepted', async () => {
    const a = await live();
    const res = await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', allocation_id: a.id } });
    expect(res).toMatchObject({ status: 200, body: { allocation_id: a.id } });
  });
});

describe('user tokens', () => {
  it('start only the organizations they list', async () => {
    await g.addReadyGateway(g.target.url);
    const mine = randomUUID();
    const token = await g.userToken(mine, randomUUID());
    const before = await g.snapshot();
    const other = await g.client.start({ headers: token, body: { organization_id: randomUUID() } });
    expect(other).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    expect(await g.snapshot()).toEqual(before);
    const ok = await g.client.start({ headers: token, body: { organization_id: mine } });
    expect(ok).toMatchObject({ status: 201, body: { organization_id: mine } });
  });
});
