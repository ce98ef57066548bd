/**
 * The hostile corpus (`hostile-corpus.ts`) against a real Ganymede and a real gateway (an in-process `Gateway`
 * from @ganymede/app-gateway, idle, pointed at this Ganymede): each request answers exactly the 4xx it lists
 * with exactly `{ error, message }` (a code from ERROR_CODES), and every table is as it was.
 *
 * The gateway renews its lease on a timer: the lease here is an hour long and the tests start after its first
 * renewal, so no renewal falls between a request's before and after snapshots.
 */
import { randomUUID } from 'node:crypto';
import { ganymedeContract, gatewayContract } from '@ganymede/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostileContext, hostileCorpus, UNKNOWN } from './hostile-corpus.js';
import { inProcessGateway } from './in-process-gateway.js';
import { bearer, errorBodyProblem, rawRequest, startTestGanymede, type TestGanymede } from './support.js';

let g: TestGanymede;
let real: Awaited<ReturnType<typeof inProcessGateway>>;
let gatewayUrl: string;
let context: HostileContext;

beforeAll(async () => {
  g = await startTestGanymede({ leaseSeconds: 3600, manualReaper: true });

  // Gateway A holds a claimed allocation; the real gateway is ready and free.
  const a = await g.addReadyGateway(g.target.url);
  const organizationA = randomUUID();
  const { allocation, orgAuth, instanceId } = await g.allocateTo(organizationA, a.auth);

  real = await inProcessGateway(g, 'http://127.0.0.1:9');
  const firstRenewal = real.next('lease');
  await real.gateway.start();
  await firstRenewal;
  gatewayUrl = `http://127.0.0.1:${real.gateway.port()}`;
  await g.ganymede.db.query('UPDATE gateways SET url = $1 WHERE id = $2', [gatewayUrl, real.gatewayId]);

  context = {
    auth: {
      admin: g.admin,
      user: await g.userToken(randomUUID()),
      gatewayA: a.auth,
      orgA: orgAuth,
      noticeA: bearer(g.ganymede.tokens.signNotice(real.gatewayId, allocation.allocation_id, 3600)),
      noticeUnknown: bearer(g.ganymede.tokens.signNotice(real.gatewayId, UNKNOWN, 3600)),
    },
    ids: {
      allocationA: allocation.allocation_id,
      instanceA: instanceId,
      organizationA,
      gatewayA: a.gatewayId,
      freeOrganization: randomUUID(),
    },
  };
  context.auth.user = await g.userToken(context.ids.freeOrganization);
});
afterAll(async () => {
  await real?.close();
  await g?.close();
});

/** Every table; control_plane without last_reaped_at (only a reaper pass writes it, and none runs here). */
async function everything() {
  const { rows } = await g.ganymede.db.query('SELECT id, expiry_held_until FROM control_plane');
  return { ...(await g.snapshot()), control_plane: rows };
}

/**
 * The corpus is built from the world `beforeAll` makes, which test collection runs before: the list of cases (their
 * names and statuses) is taken from the corpus over a stand-in world, the requests from the real one.
 */
const STAND_IN: HostileContext = {
  auth: {
    admin: bearer('a'),
    user: bearer('u'),
    gatewayA: bearer('g'),
    orgA: bearer('o'),
    noticeA: bearer('n'),
    noticeUnknown: bearer('n'),
  },
  ids: {
    allocationA: randomUUID(),
    instanceA: randomUUID(),
    organizationA: randomUUID(),
    gatewayA: randomUUID(),
    freeOrganization: randomUUID(),
  },
};
const NAMES = hostileCorpus(STAND_IN).map((c, i) => [`${c.api} ${c.route}: ${c.name} (${c.status})`, i] as const);

describe('a hostile request answers its 4xx with exactly { error, message } and changes nothing', () => {
  it.each(NAMES)('%s', async (_, index) => {
    const c = hostileCorpus(context)[index]!;
    const base = c.api === 'ganymede' ? g.url : gatewayUrl;
    const before = await everything();
    const res = await rawRequest(base, c.method, c.path, c.headers, c.body);
    expect(res.status, res.text.slice(0, 300)).toBe(c.status);
    expect(errorBodyProblem(res.body), res.text.slice(0, 300)).toBeNull();
    if (c.error) expect((res.body as { error: string }).error).toBe(c.error);
    expect(await everything()).toEqual(before);
  });
});

describe('the corpus', () => {
  const corpus = hostileCorpus(STAND_IN);

  it('has at least 60 requests, every one a 4xx, and reaches every route of both APIs', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    for (const c of corpus) expect(c.status, c.name).toBeGreaterThanOrEqual(400);
    for (const c of corpus) expect(c.status, c.name).toBeLessThan(500);
    const reached = (api: string) => new Set(corpus.filter((c) => c.api === api).map((c) => c.route));
    // 'ui': the dashboard's static files, served beside the contract.
    expect([...reached('ganymede')].sort()).toEqual([...Object.keys(ganymedeContract), 'ui'].sort());
    expect([...reached('gateway')].sort()).toEqual(Object.keys(gatewayContract).sort());
  });

  it('covers each kind of hostile input', () => {
    const names = corpus.map((c) => c.name).join('\n');
    for (const kind of [
      'SQL-looking',
      '__proto__',
      'constructor.prototype',
      'invalid UTF-8',
      'past 64 KiB',
      '1e308',
      '-1',
      '2**53',
      '"NaN"',
      '60 000-character',
      'percent-encoding',
      'unknown field',
      'text/plain',
    ]) {
      expect(names, kind).toContain(kind);
    }
  });
});

describe('afterwards', () => {
  it('the world is intact: A still holds its allocation at epoch 1; the real gateway is up, idle and in the pool', async () => {
    const res = await g.client.allocation({ headers: g.admin, params: { allocation_id: context.ids.allocationA } });
    expect(res).toMatchObject({ status: 200, body: { state: 'active', epoch: 1, events: [{ kind: 'allocated' }] } });
    expect(real.gateway.phase()).toBe('up');
    expect(real.gateway.whoami()).toMatchObject({ allocation_id: null, epoch: null });
    const pool = await g.client.status({ headers: g.admin });
    expect(pool.status === 200 && pool.body.gateways.find((e) => e.url === gatewayUrl)).toMatchObject({ ready: true, state: 'idle' });
  });
});
