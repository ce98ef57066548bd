/**
 * /gateway/start over real HTTP: the notice to the chosen gateway, the rollback when it does not take it, 503
 * when no gateway can, concurrent starts for one organization; then the allocation's life after /start
 * (restart, reclaim, the reaper) through the HTTP API.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { noticeTarget } from '@ganymede/testkit/notice-target';
import { answeringUrl, bearer, closedUrl, hangingUrl, startTestGanymede, type TestGanymede } from './support.js';

const NOTIFY_TIMEOUT_MS = 300;
const GRACE_SECONDS = 60;

let g: TestGanymede;
beforeAll(async () => {
  g = await startTestGanymede({ notifyTimeoutMs: NOTIFY_TIMEOUT_MS, restartGraceSeconds: GRACE_SECONDS });
});
afterAll(async () => {
  await g?.close();
});
beforeEach(async () => {
  await g.truncate();
});

/** Things to close after each test. */
let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.map((c) => c()));
  closers = [];
});

async function target() {
  const t = await noticeTarget();
  closers.push(t.close);
  return t;
}

async function start(organizationId: string) {
  return g.client.start({ headers: await g.userToken(organizationId), body: { organization_id: organizationId } });
}

async function allocationsOf(organizationId: string) {
  const { rows } = await g.ganymede.db.query<{ id: string; gateway_id: string; state: string; ended_reason: string | null }>(
    'SELECT id, gateway_id, state, ended_reason FROM allocations WHERE organization_id = $1 ORDER BY created_at',
    [organizationId],
  );
  return rows;
}

async function poolEntry(gatewayId: string) {
  const res = await g.client.status({ headers: g.admin });
  if (res.status !== 200) throw new Error(`status answered ${res.status}`);
  return res.body.gateways.find((e) => e.gateway_id === gatewayId);
}

async function history(allocationId: string) {
  const res = await g.client.allocation({ headers: g.admin, params: { allocation_id: allocationId } });
  if (res.status !== 200) throw new Error(`allocation answered ${res.status}`);
  return res.body;
}

/** Gateways that do not take Ganymede's notice, each in its own way. */
const UNREACHABLE: [string, () => Promise<string>][] = [
  ['nothing listens', () => closedUrl()],
  [
    'it never answers (the notice times out)',
    async () => {
      const t = await hangingUrl();
      closers.push(t.close);
      return t.url;
    },
  ],
  [
    'it answers 503',
    async () => {
      const t = await answeringUrl(503);
      closers.push(t.close);
      return t.url;
    },
  ],
  [
    'it answers 200 with a body off the contract',
    async () => {
      const t = await answeringUrl(200, { ok: true });
      closers.push(t.close);
      return t.url;
    },
  ],
];

describe('a gateway that does not take the notice', () => {
  it.each(UNREACHABLE)('(%s) is rolled back and the next gateway gets the allocation (201)', async (_, makeUrl) => {
    const bad = await g.addReadyGateway(await makeUrl()); // ready first: picked first
    const good = await target();
    const goodGw = await g.addReadyGateway(good.url);
    const org = randomUUID();

    const res = await start(org);
    expect(res).toMatchObject({
      status: 201,
      body: { gateway_id: goodGw.gatewayId, gateway_url: good.url, organization_id: org, state: 'active', epoch: 1 },
    });
    if (res.status !== 201) return;
    expect(good.received).toEqual([res.body.allocation_id]);

    const rows = await allocationsOf(org);
    expect(rows.map((r) => [r.gateway_id, r.state, r.ended_reason])).toEqual([
      [bad.gatewayId, 'ended', 'gateway_unreachable'],
      [goodGw.gatewayId, 'active', null],
    ]);
    const rolledBack = await history(rows[0]!.id);
    expect(rolledBack.events.map(({ kind, reason, epoch }) => ({ kind, reason, epoch }))).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'rolled_back', reason: 'gateway_unreachable', epoch: 1 },
    ]);
    expect(await poolEntry(bad.gatewayId)).toMatchObject({ ready: false, ready_at: null, state: 'idle', allocation_id: null });
    expect(await poolEntry(goodGw.gatewayId)).toMatchObject({ ready: true, state: 'active', allocation_id: res.body.allocation_id });
  });

  it('is out of the pool until its process says ready again', async () => {
    const bad = await g.addReadyGateway(await closedUrl());
    expect((await start(randomUUID())).status).toBe(503);
    const good = await target();
    const goodGw = await g.addReadyGateway(good.url);
    expect(await start(randomUUID())).toMatchObject({ status: 201, body: { gateway_id: goodGw.gatewayId } });
    // Its process comes back: it is in the pool again.
    const t = await target();
    await g.ganymede.db.query('UPDATE gateways SET url = $1 WHERE id = $2', [t.url, bad.gatewayId]);
    expect((await g.client.ready({ headers: bad.auth, body: { allocation_id: null, instance_id: randomUUID() } })).status).toBe(200);
    expect(await start(randomUUID())).toMatchObject({ status: 201, body: { gateway_id: bad.gatewayId } });
  });

  it('keeps the allocation when the gateway claimed it but its answer was lost', async () => {
    let token = '';
    const server = createHttpServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (raw += c));
      req.on('end', () => {
        const { allocation_id } = JSON.parse(raw) as { allocation_id: string };
        g.client.ready({ headers: bearer(token), body: { allocation_id, instance_id: randomUUID() } }).then(
          () => res.writeHead(503).end(), // the claim went through; the answer says otherwise
          (error: Error) => res.destroy(error),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const gw = await g.addReadyGateway(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    token = gw.auth.authorization.slice('Bearer '.length);
    const org = randomUUID();

    const res = await start(org);
    expect(res).toMatchObject({ status: 201, body: { gateway_id: gw.gatewayId, state: 'active', epoch: 1 } });
    expect((await allocationsOf(org)).map((r) => r.state)).toEqual(['active']);
    expect(await poolEntry(gw.gatewayId)).toMatchObject({ ready: true, state: 'active' });
  });
});

describe('503 no_gateway_available', () => {
  it('when every gateway is unreachable: each is rolled back and out of the pool', async () => {
    const gateways = [];
    for (let i = 0; i < 3; i++) gateways.push(await g.addReadyGateway(await closedUrl()));
    const org = randomUUID();
    const res = await start(org);
    expect(res).toMatchObject({ status: 503, body: { error: 'no_gateway_available' } });
    const rows = await allocationsOf(org);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.state === 'ended' && r.ended_reason === 'gateway_unreachable')).toBe(true);
    expect(new Set(rows.map((r) => r.gateway_id))).toEqual(new Set(gateways.map((gw) => gw.gatewayId)));
    for (const gw of gateways) expect(await poolEntry(gw.gatewayId)).toMatchObject({ ready: false, state: 'idle' });
    // Nothing is tried again until a gateway says ready.
    const before = await g.snapshot();
    expect((await start(org)).status).toBe(503);
    expect(await g.snapshot()).toEqual(before);
  });

  it('when there is no gateway, or none is ready, or all are taken; nothing changes', async () => {
    let before = await g.snapshot();
    expect(await start(randomUUID())).toMatchObject({ status: 503, body: { error: 'no_gateway_available' } });
    expect(await g.snapshot()).toEqual(before);

    await g.client.addGateway({ headers: g.admin, body: { url: (await target()).url } }); // registered, never ready
    before = await g.snapshot();
    expect((await start(randomUUID())).status).toBe(503);
    expect(await g.snapshot()).toEqual(before);

    await g.addReadyGateway((await target()).url);
    expect((await start(randomUUID())).status).toBe(201);
    before = await g.snapshot();
    expect((await start(randomUUID())).status).toBe(503);
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('an organization that already has an allocation', () => {
  it('gets it again (200), active, with no second notice', async () => {
    const t = await target();
    await g.addReadyGateway(t.url);
    await g.addReadyGateway((await target()).url);
    const org = randomUUID();
    const first = await start(org);
    expect(first.status).toBe(201);
    const again = await start(org);
    expect(again).toMatchObject({ status: 200, body: { ...first.body, state: 'active' } });
    expect(t.received).toHaveLength(1);
    expect(await allocationsOf(org)).toHaveLength(1);
  });

  it('while restarting gets it with state restarting and the same gateway (no second allocation)', async () => {
    const t = await target();
    const gw = await g.addReadyGateway(t.url);
    await g.addReadyGateway((await target()).url); // free, and must not be used
    const org = randomUUID();
    const { allocation, orgAuth } = await g.allocateTo(org, gw.auth);
    expect((await g.client.restart({ headers: orgAuth, body: { reason: 'deploy', epoch: 1 } })).status).toBe(200);
    const res = await start(org);
    expect(res).toMatchObject({
      status: 200,
      body: { allocation_id: allocation.allocation_id, gateway_id: gw.gatewayId, gateway_url: t.url, state: 'restarting', epoch: 1 },
    });
    expect(await allocationsOf(org)).toHaveLength(1);
    expect(t.received).toHaveLength(1);
  });

  it('after a stop gets a new one (201)', async () => {
    const gw = await g.addReadyGateway((await target()).url);
    const other = await g.addReadyGateway((await target()).url);
    const org = randomUUID();
    const { allocation, orgAuth } = await g.allocateTo(org, gw.auth);
    expect((await g.client.stop({ headers: orgAuth, body: { reason: 'idle' } })).status).toBe(200);
    const res = await start(org);
    expect(res).toMatchObject({ status: 201, body: { gateway_id: other.gatewayId, epoch: 1 } });
    expect(res.body).not.toMatchObject({ allocation_id: allocation.allocation_id });
  });
});

describe('concurrent /start over HTTP', () => {
  it('20 for one organization: one allocation_id in all answers, exactly one 201, one notice', async () => {
    const targets = [await target(), await target(), await target()];
    for (const t of targets) await g.addReadyGateway(t.url);
    const org = randomUUID();
    const headers = await g.userToken(org);
    const answers = await Promise.all(Array.from({ length: 20 }, () => g.client.start({ headers, body: { organization_id: org } })));
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(19).fill(200), 201]);
    const ids = new Set(answers.map((a) => (a.status === 200 || a.status === 201 ? a.body.allocation_id : null)));
    expect(ids.size).toBe(1);
    expect(ids.has(null)).toBe(false);
    expect(targets.flatMap((t) => t.received)).toEqual([...ids]);
    expect(await allocationsOf(org)).toHaveLength(1);
  });

  it('10 organizations over 5 gateways: five 201 on five gateways, five 503', async () => {
    const gateways = [];
    for (let i = 0; i < 5; i++) gateways.push((await g.addReadyGateway((await target()).url)).gatewayId);
    const answers = await Promise.all(Array.from({ length: 10 }, () => start(randomUUID())));
    const created = answers.flatMap((a) => (a.status === 201 ? [a.body] : []));
    expect(created).toHaveLength(5);
    expect(answers.filter((a) => a.status === 503)).toHaveLength(5);
    expect(new Set(created.map((c) => c.gateway_id))).toEqual(new Set(gateways));
  });
});

describe('the allocation after /start, through the HTTP API', () => {
  async function live() {
    const gw = await g.addReadyGateway((await target()).url);
    const organizationId = randomUUID();
    const { allocation, orgAuth, instanceId } = await g.allocateTo(organizationId, gw.auth);
    return { gw, organizationId, orgAuth, instanceId, id: allocation.allocation_id };
  }

  /** Seconds between the deadline and the statement that set it (database clock). */
  async function graceOf(id: string) {
    const { rows } = await g.ganymede.db.query<{ secs: number }>(
      'SELECT extract(epoch FROM restart_deadline - updated_at)::float8 AS secs FROM allocations WHERE id = $1',
      [id],
    );
    return rows[0]!.secs;
  }

  it("grace_seconds can only shorten Ganymede's grace, never below what the renew deadline needs", async () => {
    // Leases of 10 s and a grace of 10 s: a renew deadline of 15 s; 15 × 1.05 / 0.95 = 16.6, so at least 17 s.
    const shortest = 17;
    for (const [asked, granted] of [
      [1, shortest],
      [shortest, shortest],
      [20, 20],
      [GRACE_SECONDS, GRACE_SECONDS],
      [3600, GRACE_SECONDS],
      [undefined, GRACE_SECONDS],
    ] as const) {
      const a = await live();
      const body = asked === undefined ? { reason: 'reload' as const } : { reason: 'reload' as const, grace_seconds: asked };
      const res = await g.client.restart({ headers: a.orgAuth, body });
      expect(res, `asked ${asked}`).toMatchObject({ status: 200, body: { state: 'restarting', epoch: 1 } });
      expect(await graceOf(a.id), `asked ${asked}`).toBe(granted);
    }
  });

  it('a repeated /restart keeps the first deadline', async () => {
    const a = await live();
    const first = await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch: 1, grace_seconds: 10 } });
    const second = await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch: 1, grace_seconds: 30 } });
    expect(first.status).toBe(200);
    expect(second).toMatchObject({ status: 200, body: { restart_deadline: first.status === 200 ? first.body.restart_deadline : '' } });
    expect((await history(a.id)).events.filter((e) => e.kind === 'restart_requested')).toHaveLength(1);
  });

  it('/config shows the restart; a repeated /ready from the same instance changes nothing; a new one reclaims', async () => {
    const a = await live();
    await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch: 1 } });
    const config = await g.client.config({ headers: a.gw.auth, body: {} });
    expect(config).toMatchObject({ status: 200, body: { allocation_id: a.id, state: 'restarting', epoch: 1 } });
    expect(config.status === 200 && config.body.restart_deadline).toBeTruthy();
    const instanceId = randomUUID();
    const first = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: instanceId } });
    expect(first).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { state: 'active', epoch: 2 } } });
    const repeat = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: instanceId } });
    expect(repeat).toMatchObject({ status: 200, body: { reclaimed: false, allocation: { state: 'active', epoch: 2 } } });
    const older = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id } });
    expect(older).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 3 } } });
    expect((await history(a.id)).events.map((e) => [e.kind, e.epoch])).toEqual([
      ['allocated', 1],
      ['restart_requested', 1],
      ['reclaimed', 2],
      ['reclaimed', 3],
    ]);
  });

  it('the reaper ends a restart whose deadline passed; the late process is refused; the org starts anew', async () => {
    const a = await live();
    const pending = await live();
    await g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch: 1 } });
    await g.client.restart({ headers: pending.orgAuth, body: { reason: 'deploy', epoch: 1 } });
    await g.ganymede.db.query(`UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE id = $1`, [a.id]);
    expect(await g.ganymede.reaper.runOnce()).toBe(1);
    expect(await g.ganymede.reaper.runOnce()).toBe(0);

    const h = await history(a.id);
    expect(h).toMatchObject({ state: 'ended', ended_reason: 'restart_timeout', epoch: 1 });
    expect(h.events.at(-1)).toMatchObject({ kind: 'restart_timed_out', reason: 'restart_timeout', epoch: 1 });
    expect(await poolEntry(a.gw.gatewayId)).toMatchObject({ ready: false, state: 'idle' });
    expect(await history(pending.id)).toMatchObject({ state: 'restarting' });

    const late = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    expect(late).toMatchObject({ status: 409, body: { error: 'allocation_ended' } });
    expect(await g.client.config({ headers: a.gw.auth, body: {} })).toMatchObject({ status: 404, body: { error: 'no_allocation' } });
    expect(await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop' } })).toMatchObject({
      status: 403,
      body: { error: 'allocation_ended' },
    });

    const fresh = await g.addReadyGateway((await target()).url);
    expect(await start(a.organizationId)).toMatchObject({ status: 201, body: { gateway_id: fresh.gatewayId, epoch: 1 } });
  });
});

describe('a user of many organizations', () => {
  it('1,000 organizations: its token fits the header limit, and /gateway/start serves the last of them', async () => {
    const t = await target();
    await g.addReadyGateway(t.url);
    const organizations = Array.from({ length: 1_000 }, () => randomUUID());
    const headers = await g.userToken(...organizations);
    expect(headers.authorization.length).toBeGreaterThan(16 * 1024); // past Node's default limit
    const last = organizations.at(-1)!;
    const res = await g.client.start({ headers, body: { organization_id: last } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ organization_id: last });
  });
});
