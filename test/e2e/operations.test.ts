/**
 * Health and metrics of real processes: a Ganymede started with GANYMEDE_METRICS_OPEN=1 and a supervised gateway,
 * through an allocation and a hot restart. The metrics are read with a Prometheus text parser.
 */
import { scrapeMetrics } from '@ganymede/testkit/prometheus';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { allocate, ganymede, gateway, gatewayEvent, retired } from './support.js';

const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await request(url, { headers });
  return { status: res.statusCode, body: await res.body.json() };
};

describe('operating real processes', () => {
  it('health, readiness and metrics of Ganymede (opened by its variable) and of a supervised gateway through a hot restart', async () => {
    const g = await ganymede({ env: { GANYMEDE_METRICS_OPEN: '1' } });
    expect(await get(`${g.url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await get(`${g.url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready' } });

    const p = await gateway(g);
    await gatewayEvent(p, 'listening'); // the supervisor's socket accepts once its first child listens on it
    const own = { authorization: `Bearer ${p.gw.token}` };
    expect(await get(`${p.gw.url}/healthz`)).toEqual({ status: 200, body: { status: 'ok', serving: false } });
    expect(await get(`${p.gw.url}/readyz`)).toEqual({ status: 200, body: { status: 'ready', serving: false } });
    // The gateway's port serves organizations' traffic: its metrics need its own token.
    expect(await get(`${p.gw.url}/metrics`)).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
    const idle = await scrapeMetrics(p.gw.url, own);
    expect(idle.value('gateway_phase', { phase: 'up' })).toBe(1);
    expect(idle.value('gateway_epoch')).toBe(0);

    await allocate(g, p);
    expect((await scrapeMetrics(p.gw.url, own)).value('gateway_epoch')).toBe(1);
    expect(await get(`${p.gw.url}/readyz`)).toEqual({ status: 200, body: { status: 'ready', serving: true } });

    const before = await scrapeMetrics(g.url);
    const from = p.proc.logs.length;
    const adopted = p.proc.waitForLog((l) => l.event === 'state_pushed' && l.why === 'adopted', { from, timeoutMs: 30_000 });
    await p.cli('reload');
    await retired(p, from);
    await adopted;

    // The successor: epoch 2, it took over, and stored its predecessor's state (a push of its own).
    const successor = await scrapeMetrics(p.gw.url, own);
    expect(successor.value('gateway_epoch')).toBe(2);
    expect(successor.value('gateway_phase', { phase: 'up' })).toBe(1);
    expect(successor.value('gateway_handovers_total', { step: 'taken_over' })).toBe(1);
    expect(successor.value('gateway_snapshot_pushes_total', { outcome: 'stored' })).toBe(1);

    // Ganymede, unauthenticated (opened): one restart asked for and one reclaim, restart → reclaim observed once.
    const after = await scrapeMetrics(g.url);
    const moved = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    expect(moved('ganymede_transitions_total', { kind: 'restart_requested', reason: 'reload' })).toBe(1);
    expect(moved('ganymede_transitions_total', { kind: 'reclaimed', reason: 'restart' })).toBe(1);
    const restartToReclaim = after.histogram('ganymede_restart_to_reclaim_seconds');
    expect(restartToReclaim.count - before.histogram('ganymede_restart_to_reclaim_seconds').count).toBe(1);
    expect(after.value('ganymede_allocations', { state: 'active' })).toBe(1);
    expect(after.value('ganymede_pool_gateways', { status: 'busy' })).toBe(1);
  });
});
