/**
 * Three Ganymede processes (replicas) on one PostgreSQL schema, with the calls spread across them: they start
 * at once and migrate once; 50 organizations asking at once for 20 gateways make 20 allocations and 30 clean
 * 503s with no double; a restart sent to one replica is reclaimed through another; with reapers running on
 * all three, each expired restart is ended exactly once.
 *
 * PostgreSQL only (GANYMEDE_TEST_DATABASE=postgres): PGlite is embedded, one process owns its database, so
 * there is nothing to replicate; vitest.config.ts leaves this folder out of PGlite runs.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { Gateway } from '@ganymede/app-gateway';
import { gatewayContract } from '@ganymede/contracts';
import { initClient } from '@ts-rest/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { noticeTarget, testDatabaseUrl } from '@ganymede/testkit';
import { type Cluster, gatewayFor, register, startCluster, transitions } from './cluster.js';

const REPLICAS = 3;

describe(`${REPLICAS} Ganymede replicas on one PostgreSQL`, () => {
  let cluster: Cluster;
  /** Real gateways started by a test, shut down after it. */
  const gateways: Gateway[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ count: REPLICAS, databaseUrl: testDatabaseUrl(), reaperIntervalMs: 25 });
  });
  afterAll(async () => {
    await cluster?.close();
  });
  beforeEach(async () => {
    await cluster.truncate();
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.shutdown({ kind: 'stop', reason: 'stop' })));
  });

  async function startGateway(n: number) {
    const gw = await register(cluster, n);
    const gateway = gatewayFor(gw, cluster.replicas[n % REPLICAS]!.url);
    gateways.push(gateway);
    await gateway.start();
    return { gw, gateway };
  }

  it('they started at once on an empty schema and migrated it once', async () => {
    const files = (await readdir(new URL('../../packages/app-ganymede/migrations/', import.meta.url))).filter((f) =>
      /^\d+_.+\.sql$/.test(f),
    );
    const { rows } = await cluster.db.query<{ version: number; n: number }>(
      'SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version',
    );
    expect(rows).toEqual(files.sort().map((f) => ({ version: Number.parseInt(f, 10), n: 1 })));
    // Each migration runs in its own transaction under the advisory lock: the replicas may share the work, but
    // between them every file was applied exactly once.
    const applied = cluster.replicas.flatMap((r) =>
      r.proc.logs.filter((l) => l.msg === 'migrations applied').flatMap((l) => l.applied as string[]),
    );
    expect(applied.sort()).toEqual(files.sort());
  });

  it('50 organizations asking at once for 20 gateways: 20 allocations, 30 clean 503s, no double', async () => {
    const started = await Promise.all(Array.from({ length: 20 }, (_, i) => startGateway(i)));
    const organizations = Array.from({ length: 50 }, () => randomUUID());
    const tokens = await Promise.all(organizations.map((o) => cluster.userToken(o)));

    const answers = await Promise.all(organizations.map((o, i) => cluster.client(i).start(tokens[i]!, { organization_id: o })));

    const created = answers.flatMap((a, i) => (a.status === 201 ? [{ organizationId: organizations[i]!, body: a.body }] : []));
    const refused = answers.filter((a) => a.status === 503);
    expect(answers.map((a) => a.status).sort()).toEqual([...Array(20).fill(201), ...Array(30).fill(503)]);
    for (const a of refused) expect(a.body).toEqual({ error: 'no_gateway_available', message: expect.any(String) });

    // No double: 20 allocations in all (none ended, none rolled back), one per gateway and one per organization.
    const { rows } = await cluster.db.query<{ id: string; gateway_id: string; organization_id: string; state: string }>(
      'SELECT id, gateway_id, organization_id, state FROM allocations',
    );
    expect(rows).toHaveLength(20);
    expect(rows.every((r) => r.state === 'active')).toBe(true);
    expect(new Set(rows.map((r) => r.gateway_id)).size).toBe(20);
    expect(new Set(rows.map((r) => r.organization_id)).size).toBe(20);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(created.map((c) => c.body.allocation_id)));
    const events = await cluster.db.query<{ kind: string; n: number }>(
      'SELECT kind, count(*)::int AS n FROM allocation_events GROUP BY kind',
    );
    expect(events.rows).toEqual([{ kind: 'allocated', n: 20 }]);

    // Each organization that got a gateway is served by it, and by no other.
    const byId = new Map(started.map((s) => [s.gw.gatewayId, s]));
    for (const { organizationId, body } of created) {
      const { gateway } = byId.get(body.gateway_id)!;
      expect(gateway.allocation()).toMatchObject({ allocationId: body.allocation_id, organizationId, epoch: 1 });
      const served = await initClient(gatewayContract, { baseUrl: body.gateway_url, baseHeaders: {} }).serve({
        params: { organization_id: organizationId },
      });
      expect(served).toMatchObject({ status: 200, body: { allocation_id: body.allocation_id, organization_id: organizationId } });
    }
    // The calls went to every replica.
    for (const r of cluster.replicas) expect(r.proc.logs.some((l) => l.transition === 'allocated' || l.msg === 'gateway ready')).toBe(true);
  });

  it('a restart sent to one replica is reclaimed through another', async () => {
    // The gateway talks to replica 0; the organization's /gateway/start goes to replica 1.
    const { gw, gateway } = await startGateway(0);
    const organizationId = randomUUID();
    const start = await cluster.client(1).start(await cluster.userToken(organizationId), { organization_id: organizationId });
    if (start.status !== 201) throw new Error(`start answered ${start.status}`);
    const allocationId = start.body.allocation_id;
    expect(gateway.allocation()).toMatchObject({ allocationId, epoch: 1 });

    // Restart through replica 0 (the process's shutdown calls /gateway/restart) ...
    const logsBefore = cluster.replicas.map((r) => r.proc.logs.length);
    gateways.splice(gateways.indexOf(gateway), 1);
    expect(await gateway.shutdown({ kind: 'restart', reason: 'deploy' })).toBe(75);
    const restarting = await cluster.db.query<{ state: string; epoch: number }>('SELECT state, epoch FROM allocations WHERE id = $1', [
      allocationId,
    ]);
    expect(restarting.rows).toEqual([{ state: 'restarting', epoch: 1 }]);

    // ... and the next process, on the same port, reclaims through replica 2.
    const next = gatewayFor(gw, cluster.replicas[2]!.url);
    gateways.push(next);
    await next.start();
    expect(next.allocation()).toMatchObject({ allocationId, organizationId, epoch: 2, state: 'active' });

    // Each transition was logged by the replica that made it (log lines cross a pipe: wait for them).
    const logged = (i: number, transition: string) =>
      cluster.replicas[i]!.proc.waitForLog((l) => l.transition === transition && l.allocation_id === allocationId, {
        from: logsBefore[i],
        timeoutMs: 5_000,
      });
    await expect(logged(0, 'restart_requested')).resolves.toMatchObject({ reason: 'deploy', epoch: 1 });
    await expect(logged(2, 'reclaimed')).resolves.toMatchObject({ epoch: 2 });
    const history = await cluster.client(1).allocation(cluster.admin, allocationId);
    if (history.status !== 200) throw new Error(`allocation answered ${history.status}`);
    expect(history.body).toMatchObject({ state: 'active', epoch: 2 });
    expect(history.body.events.map((e) => [e.kind, e.reason, e.epoch])).toEqual([
      ['allocated', null, 1],
      ['restart_requested', 'deploy', 1],
      ['reclaimed', 'restart', 2],
    ]);
  });

  it('with reapers on all three, each expired restart is ended exactly once (one audit row)', async () => {
    const target = await noticeTarget();
    try {
      const WAVES = 6;
      const PER_WAVE = 10;
      const COUNT = WAVES * PER_WAVE;
      // As many ready gateways as organizations, each call through the replicas in turn ...
      await Promise.all(
        Array.from({ length: COUNT }, async (_, i) => {
          const added = await cluster.client(i).addGateway(cluster.admin, { url: target.url });
          if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
          const idle = await cluster.client(i + 1).ready(added.body.token, { allocation_id: null, instance_id: randomUUID() });
          if (idle.status !== 200) throw new Error(`ready answered ${idle.status}`);
        }),
      );
      // ... each organization allocated (all at once: every one must find a gateway) ...
      const ids = await Promise.all(
        Array.from({ length: COUNT }, async (_, i) => {
          const organizationId = randomUUID();
          const start = await cluster.client(i).start(await cluster.userToken(organizationId), { organization_id: organizationId });
          if (start.status !== 201) throw new Error(`start answered ${start.status} ${JSON.stringify(start.body)}`);
          return start.body.allocation_id;
        }),
      );
      // ... claimed by its gateway and restarted, as a gateway process would.
      const { rows } = await cluster.db.query<{ id: string; gateway_id: string }>('SELECT id, gateway_id FROM allocations');
      await Promise.all(
        rows.map(async ({ id, gateway_id }, i) => {
          const gatewayToken = await cluster.tokens.sign({ typ: 'gateway', sub: gateway_id });
          const config = await cluster.client(i).config(gatewayToken);
          if (config.status !== 200) throw new Error(`config answered ${config.status}`);
          const claimed = await cluster.client(i + 1).ready(gatewayToken, { allocation_id: id, instance_id: randomUUID() });
          if (claimed.status !== 200) throw new Error(`ready answered ${claimed.status}`);
          const restarted = await cluster.client(i + 2).restart(config.body.organization_token, { reason: 'reload', epoch: 1 });
          if (restarted.status !== 200) throw new Error(`restart answered ${restarted.status}`);
        }),
      );
      expect(new Set(ids)).toEqual(new Set(rows.map((r) => r.id)));

      // Expire them in waves: the deadline moved into the past in SQL; the three reapers (every 25 ms) race for them.
      for (let wave = 0; wave < WAVES; wave++) {
        await cluster.db.query(
          `UPDATE allocations SET restart_deadline = now() - interval '1 second'
           WHERE id IN (SELECT id FROM allocations WHERE state = 'restarting' AND restart_deadline > now() ORDER BY id LIMIT $1)`,
          [PER_WAVE],
        );
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      const deadline = Date.now() + 10_000;
      let left = Number.POSITIVE_INFINITY;
      while (Date.now() < deadline) {
        left = (await cluster.db.query<{ n: number }>("SELECT count(*)::int AS n FROM allocations WHERE state <> 'ended'")).rows[0]!.n;
        if (left === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(left).toBe(0);

      const ended = await cluster.db.query<{ ended_reason: string; n: number }>(
        'SELECT ended_reason, count(*)::int AS n FROM allocations GROUP BY ended_reason',
      );
      expect(ended.rows).toEqual([{ ended_reason: 'restart_timeout', n: COUNT }]);
      const audit = await cluster.db.query<{ allocation_id: string; n: number }>(
        `SELECT a.id AS allocation_id, count(e.id)::int AS n FROM allocations a
         LEFT JOIN allocation_events e ON e.allocation_id = a.id AND e.kind = 'restart_timed_out' GROUP BY a.id`,
      );
      expect(audit.rows).toHaveLength(COUNT);
      expect(audit.rows.filter((r) => r.n !== 1)).toEqual([]);
      // Logged once, by whichever replica ended it (log lines cross a pipe: give the last ones a moment).
      let logged = transitions(cluster, 'restart_timed_out');
      for (let i = 0; i < 40 && logged.length < COUNT; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        logged = transitions(cluster, 'restart_timed_out');
      }
      expect(logged).toHaveLength(COUNT);
      expect(new Set(logged.map(([, id]) => id)).size).toBe(COUNT);
    } finally {
      await target.close();
    }
  });
});
