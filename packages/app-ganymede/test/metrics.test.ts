/**
 * `/metrics` over real HTTP, read with a Prometheus text parser: the counters and histograms move by exactly what
 * real transitions did (allocate, restart and reclaim, crash reclaim, stop, lease renewals and expiry, notices not
 * taken), and the gauges read from the database at scrape time are the database's numbers. Counters belong to the
 * file's one server and keep counting across tests, so every check is a difference between two scrapes; the
 * gauges are absolute (each test starts with empty tables).
 */
import { randomUUID } from 'node:crypto';
import { type Metrics, parseMetrics } from '@ganymede/testkit/prometheus';
import { describe, expect, it } from 'vitest';
import { TEST_DATABASE } from './database.js';
import { answeringUrl, closedUrl, hangingUrl, rawRequest, recordQueries, startTestGanymede, useGanymede } from './support.js';

const NOTIFY_TIMEOUT_MS = 300;
const g = useGanymede({ manualReaper: true, notifyTimeoutMs: NOTIFY_TIMEOUT_MS, leaseGraceSeconds: 10 });

async function scrape(headers: Record<string, string> = g.admin): Promise<Metrics> {
  const res = await rawRequest(g.url, 'GET', '/metrics', headers);
  expect(res.status, res.text.slice(0, 300)).toBe(200);
  return parseMetrics(res.text);
}

const transitions = (m: Metrics, kind: string, reason = '') => m.value('ganymede_transitions_total', { kind, reason });

describe('Ganymede /metrics', () => {
  it('exposes every metric with its Prometheus type', async () => {
    const m = await scrape();
    expect({
      allocations: m.type('ganymede_allocations'),
      pool: m.type('ganymede_pool_gateways'),
      transitions: m.type('ganymede_transitions_total'),
      reclaimLatency: m.type('ganymede_reclaim_latency_seconds'),
      restartToReclaim: m.type('ganymede_restart_to_reclaim_seconds'),
      renewals: m.type('ganymede_lease_renewals_total'),
      expiries: m.type('ganymede_lease_expiries_total'),
      notices: m.type('ganymede_notice_failures_total'),
      queries: m.type('ganymede_db_query_duration_seconds'),
    }).toEqual({
      allocations: 'GAUGE',
      pool: 'GAUGE',
      transitions: 'COUNTER',
      reclaimLatency: 'HISTOGRAM',
      restartToReclaim: 'HISTOGRAM',
      renewals: 'COUNTER',
      expiries: 'COUNTER',
      notices: 'COUNTER',
      queries: 'HISTOGRAM',
    });
  });

  it('allocate, restart, reclaim, stop: each transition counted once, restart → reclaim observed from the audit times', async () => {
    const before = await scrape();
    const a = await g.live();
    const allocated = await scrape();
    expect(transitions(allocated, 'allocated') - transitions(before, 'allocated')).toBe(1);
    expect(allocated.value('ganymede_allocations', { state: 'active' })).toBe(1);
    expect(allocated.value('ganymede_pool_gateways', { status: 'busy' })).toBe(1);
    expect(allocated.value('ganymede_pool_gateways', { status: 'free' })).toBe(0);

    expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch: 1 } })).status).toBe(200);
    const restarting = await scrape();
    expect(transitions(restarting, 'restart_requested', 'deploy') - transitions(allocated, 'restart_requested', 'deploy')).toBe(1);
    expect(restarting.value('ganymede_allocations', { state: 'restarting' })).toBe(1);
    expect(restarting.value('ganymede_allocations', { state: 'active' })).toBe(0);

    const reclaim = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    expect(reclaim).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 2 } } });
    const reclaimed = await scrape();
    expect(transitions(reclaimed, 'reclaimed', 'restart') - transitions(restarting, 'reclaimed', 'restart')).toBe(1);
    const latency = (m: Metrics) => m.histogram('ganymede_reclaim_latency_seconds', { reason: 'restart' });
    expect(latency(reclaimed).count - latency(restarting).count).toBe(1);
    const restartToReclaim = (m: Metrics) => m.histogram('ganymede_restart_to_reclaim_seconds');
    expect(restartToReclaim(reclaimed).count - restartToReclaim(restarting).count).toBe(1);
    // The observation is the difference of the audit rows' times, as the database recorded them.
    const { rows } = await g.ganymede.db.query<{ seconds: number }>(
      `SELECT extract(epoch FROM max(at) FILTER (WHERE kind = 'reclaimed') - max(at) FILTER (WHERE kind = 'restart_requested'))::float8 AS seconds
       FROM allocation_events WHERE allocation_id = $1`,
      [a.id],
    );
    expect(restartToReclaim(reclaimed).sum - restartToReclaim(restarting).sum).toBeCloseTo(Number(rows[0]!.seconds), 6);

    expect((await g.client.stop({ headers: a.orgAuth, body: { reason: 'decommission', epoch: 2 } })).status).toBe(200);
    const stopped = await scrape();
    expect(transitions(stopped, 'stopped', 'decommission') - transitions(reclaimed, 'stopped', 'decommission')).toBe(1);
    expect(stopped.value('ganymede_allocations', { state: 'ended' })).toBe(1);
    expect(stopped.value('ganymede_allocations', { state: 'active' })).toBe(0);
    // A stop lets the gateway's process go: neither free nor busy until it says ready again.
    expect(stopped.value('ganymede_pool_gateways', { status: 'unavailable' })).toBe(1);
    expect(stopped.value('ganymede_pool_gateways', { status: 'busy' })).toBe(0);
  });

  it('a crash reclaim is counted with its reason and observes no restart → reclaim time', async () => {
    const a = await g.live();
    const before = await scrape();
    const res = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    expect(res).toMatchObject({ status: 200, body: { reclaimed: true } });
    const after = await scrape();
    expect(transitions(after, 'reclaimed', 'crash') - transitions(before, 'reclaimed', 'crash')).toBe(1);
    expect(after.histogram('ganymede_reclaim_latency_seconds', { reason: 'crash' }).count).toBe(
      before.histogram('ganymede_reclaim_latency_seconds', { reason: 'crash' }).count + 1,
    );
    expect(after.histogram('ganymede_restart_to_reclaim_seconds').count).toBe(
      before.histogram('ganymede_restart_to_reclaim_seconds').count,
    );
  });

  it('lease renewals by outcome, and a lapsed lease ended by the reaper counted as an expiry', async () => {
    const a = await g.live();
    const before = await scrape();
    const renew = (instance_id: string) =>
      g.client.lease({ headers: a.gw.auth, body: { instance_id, allocation_id: a.id, epoch: 1 } }).then((r) => r.status);
    expect(await renew(a.instanceId)).toBe(200);
    expect(await renew(a.instanceId)).toBe(200);
    expect(await renew(randomUUID())).toBe(409);
    await g.ganymede.db.query("UPDATE gateways SET lease_expires_at = now() - interval '1 hour' WHERE id = $1", [a.gw.gatewayId]);
    expect(await g.ganymede.reaper.runOnce()).toBe(1);
    const after = await scrape();
    const renewals = (m: Metrics, outcome: string) => m.value('ganymede_lease_renewals_total', { outcome });
    expect(renewals(after, 'ok') - renewals(before, 'ok')).toBe(2);
    expect(renewals(after, 'superseded') - renewals(before, 'superseded')).toBe(1);
    expect(after.value('ganymede_lease_expiries_total') - before.value('ganymede_lease_expiries_total')).toBe(1);
    expect(transitions(after, 'lease_expired', 'lease_expired') - transitions(before, 'lease_expired', 'lease_expired')).toBe(1);
  });

  it('notices a gateway did not take, by why: unreachable, refused, timeout; each allocation rolled back', async () => {
    const refusing = await answeringUrl(503);
    const hanging = await hangingUrl();
    try {
      for (const url of [await closedUrl(), refusing.url, hanging.url]) await g.addReadyGateway(url);
      const before = await scrape();
      const org = randomUUID();
      const res = await g.client.start({ headers: await g.userToken(org), body: { organization_id: org } });
      expect(res.status).toBe(503);
      const after = await scrape();
      const failures = (m: Metrics, why: string) => m.value('ganymede_notice_failures_total', { why });
      expect({
        unreachable: failures(after, 'unreachable') - failures(before, 'unreachable'),
        refused: failures(after, 'refused') - failures(before, 'refused'),
        timeout: failures(after, 'timeout') - failures(before, 'timeout'),
      }).toEqual({ unreachable: 1, refused: 1, timeout: 1 });
      const rolledBack = (m: Metrics) => transitions(m, 'rolled_back', 'gateway_unreachable');
      expect(rolledBack(after) - rolledBack(before)).toBe(3);
      expect(transitions(after, 'allocated') - transitions(before, 'allocated')).toBe(3);
    } finally {
      await refusing.close();
      await hanging.close();
    }
  });

  it('reads the database gauges with one statement per scrape', async () => {
    const recorder = recordQueries(g.ganymede.db);
    try {
      await scrape();
    } finally {
      recorder.stop();
    }
    expect(recorder.texts).toHaveLength(1);
  });

  it("times the database door's statements, labelled by backend only", async () => {
    const queries = (m: Metrics) => m.histogram('ganymede_db_query_duration_seconds', { backend: TEST_DATABASE });
    const before = await scrape();
    await g.addReadyGateway(g.target.url);
    const after = await scrape();
    // The registration and the ready are a statement each, and the scrape in between reads the gauges with one.
    expect(queries(after).count - queries(before).count).toBeGreaterThanOrEqual(3);
    expect(queries(after).sum).toBeGreaterThan(queries(before).sum);
    expect(after.histogram('ganymede_db_query_duration_seconds').count).toBe(queries(after).count);
  });

  it('only an admin token reads it: none 401, another kind 403, each with the error body', async () => {
    expect(await rawRequest(g.url, 'GET', '/metrics', {})).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    const user = await rawRequest(g.url, 'GET', '/metrics', await g.userToken(randomUUID()));
    expect(user).toMatchObject({ status: 403, body: { error: 'forbidden' } });
  });
});

describe('a second server on the same database, with --metrics-open (a replica)', () => {
  it('serves /metrics without a token; its counters are its own, the database gauges the same on both', async () => {
    const open = await startTestGanymede({ db: g.ganymede.db, metricsOpen: true, manualReaper: true });
    try {
      const before = await scrape();
      await open.live();
      const res = await rawRequest(open.url, 'GET', '/metrics', {});
      expect(res.status).toBe(200);
      const replica = parseMetrics(res.text);
      const first = await scrape();
      // A registry per server: the allocation is counted by the server that made it, only.
      expect(transitions(replica, 'allocated')).toBe(1);
      expect(transitions(first, 'allocated')).toBe(transitions(before, 'allocated'));
      // Read from the database at scrape time: both see the allocation.
      for (const m of [replica, first]) {
        expect(m.value('ganymede_allocations', { state: 'active' })).toBe(1);
        expect(m.value('ganymede_pool_gateways', { status: 'busy' })).toBe(1);
      }
    } finally {
      await open.close();
    }
  });
});
