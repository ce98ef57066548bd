/**
 * Every way a hot restart can go wrong has a defined outcome, with real processes: the successor crashes or hangs,
 * the old child dies, the supervisor is SIGKILLed, a second restart or a stop arrives mid-handover.
 */
import { readFileSync } from 'node:fs';
import { gatewayClient, type GatewayProcess, startLoadProcess } from '@ganymede/testkit';
import { describe, expect, it } from 'vitest';
import { allocate, ganymede, gateway, gatewayProcess, handedOver, history } from './support.js';

/** Running (a zombie is not: an orphan's exit is reaped by whoever adopted it, maybe never in a container). */
const isAlive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The pid of the successor the supervisor starts next (from log index `from`). */
const successorPid = async (p: GatewayProcess, from: number) =>
  (await p.proc.waitForLog((l) => l.event === 'child_started' && l.successor === true, { from, timeoutMs: 30_000 })).child_pid as number;

const supervisorEvent = (p: GatewayProcess, event: string, from: number) =>
  p.proc.waitForLog((l) => l.role === 'supervisor' && l.event === event, { from, timeoutMs: 30_000 });

describe('hot restart failures', () => {
  it('the successor crashes before reclaiming: the old child serves on, its restart withdrawn (active at its epoch); retried after a backoff', async () => {
    const g = await ganymede();
    const p = await gateway(g, 'supervise', { FAILPOINTS: 'gateway:before:reclaim@successor' });
    const { organizationId, allocationId, whoami } = await allocate(g, p);
    const load = await startLoadProcess({
      url: `${p.gw.url}/orgs/${organizationId}`,
      clients: 2,
      intervalMs: 5,
      keepAlive: true,
      timeoutMs: 10_000,
    });
    try {
      await load.waitFor({ ok: 10 });
      const from = p.proc.logs.length;
      await p.cli('reload');
      const failed = await supervisorEvent(p, 'handover_failed', from);
      expect(failed.why).toMatch(/the successor exited \(code null, signal SIGKILL\)/);
      const withdrawn = await supervisorEvent(p, 'restart_withdrawn', from);
      expect(withdrawn).toMatchObject({ child_pid: whoami.pid, epoch: whoami.epoch });
      const retry = await supervisorEvent(p, 'handover_retry', from);
      expect(retry.delay_ms).toBeGreaterThan(0);
      const { ok } = await load.waitFor({ ok: 10 });
      await load.waitFor({ ok: ok + 10 });
      const report = await load.stop();
      expect(report.failed, JSON.stringify(report.errors)).toBe(0);
      expect(Object.keys(report.byPid)).toEqual([String(whoami.pid)]);
      const h = await history(g, allocationId);
      expect(h.events.slice(0, 3).map((e) => [e.kind, e.epoch])).toEqual([
        ['allocated', 1],
        ['restart_requested', 1],
        ['restart_withdrawn', 1],
      ]);
    } finally {
      await load.stop();
    }
  });

  it('the successor crashes after reclaiming: the old child claims the allocation back and serves on', async () => {
    const g = await ganymede();
    const p = await gateway(g, 'supervise', { FAILPOINTS: 'gateway:after:reclaim@successor' });
    const { organizationId, allocationId, whoami } = await allocate(g, p);
    const from = p.proc.logs.length;
    await p.cli('reload');
    const withdrawn = await supervisorEvent(p, 'restart_withdrawn', from);
    // The dead successor had reclaimed at epoch 2; the old child, its previous holder, takes it back at 3 (not a crash).
    expect(withdrawn).toMatchObject({ child_pid: whoami.pid, epoch: whoami.epoch! + 2 });
    // Served by the old child (later tries of the restart may have moved the epoch on since).
    const served = await gatewayClient(p.gw).serve({ params: { organization_id: organizationId } });
    expect(served).toMatchObject({ status: 200, body: { pid: whoami.pid } });
    const h = await history(g, allocationId);
    expect(h.events.slice(0, 4).map((e) => [e.kind, e.reason, e.epoch])).toEqual([
      ['allocated', null, 1],
      ['restart_requested', 'reload', 1],
      ['reclaimed', 'restart', 2],
      ['reclaimed', 'takeback', 3],
    ]);
  });

  it('the successor hangs: past the handover timeout it is killed and the restart withdrawn', async () => {
    const g = await ganymede();
    const p = await gateway(g, 'supervise', { GATEWAY_HANDOVER_TIMEOUT_MS: '1500' });
    const { allocationId, whoami } = await allocate(g, p);
    const from = p.proc.logs.length;
    await p.cli('reload');
    const pid = await successorPid(p, from);
    process.kill(pid, 'SIGSTOP');
    const failed = await supervisorEvent(p, 'handover_failed', from);
    expect(failed.why).toBe('the successor was not ready within 1500 ms');
    await supervisorEvent(p, 'restart_withdrawn', from);
    expect(isAlive(pid)).toBe(false);
    const h = await history(g, allocationId);
    expect(h).toMatchObject({ state: 'active', epoch: whoami.epoch });
    expect(h.events.map((e) => e.kind)).toEqual(['allocated', 'restart_requested', 'restart_withdrawn']);
  });

  it('the old child dies during the handover: the successor takes over at once, and nothing is refused meanwhile', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, whoami } = await allocate(g, p);
    const load = await startLoadProcess({
      url: `${p.gw.url}/orgs/${organizationId}`,
      clients: 2,
      intervalMs: 5,
      keepAlive: false,
      timeoutMs: 20_000,
    });
    try {
      await load.waitFor({ ok: 10 });
      const from = p.proc.logs.length;
      await p.cli('reload');
      const pid = await successorPid(p, from);
      process.kill(whoami.pid, 'SIGKILL');
      const done = await handedOver(p, from);
      expect(done.to_pid).toBe(pid);
      await p.proc.waitForLog((l) => l.event === 'current_died_during_handover', { from });
      const { ok } = await load.waitFor({ ok: 1 });
      const report = await load.waitFor({ ok: ok + 10 });
      expect(report.byPid[String(pid)]).toBeGreaterThan(0);
      // Requests the killed process held were reset; none was refused: the socket never closed.
      expect(report.refused).toBe(0);
    } finally {
      await load.stop();
    }
  });

  it('the supervisor is SIGKILLed mid-handover: both children exit, the allocation is kept, the next supervisor reclaims it', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, allocationId, whoami } = await allocate(g, p);
    const from = p.proc.logs.length;
    await p.cli('reload');
    const pid = await successorPid(p, from);
    p.proc.signal('SIGKILL');
    await p.proc.exited;
    await Promise.all(
      [whoami.pid, pid].map((child) => p.proc.waitForLog((l) => l.pid === child && l.event === 'shutdown_complete', { from })),
    );
    await expect.poll(() => [whoami.pid, pid].filter(isAlive)).toEqual([]);
    const h = await history(g, allocationId);
    expect(h.state).not.toBe('ended');
    const next = await gatewayProcess(g, p.gw, 'supervise');
    const served = await next.proc.waitForLog((l) => l.event === 'serving' && l.allocation_id === allocationId, { timeoutMs: 30_000 });
    expect(served.epoch).toBeGreaterThan(whoami.epoch!);
    await next.proc.waitForLog((l) => l.event === 'listening', { timeoutMs: 30_000 });
    const answer = await gatewayClient(p.gw).serve({ params: { organization_id: organizationId } });
    expect(answer).toMatchObject({ status: 200, body: { allocation_id: allocationId } });
  });

  it('a second restart during a handover is queued, never overlapped', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { allocationId, whoami } = await allocate(g, p);
    const from = p.proc.logs.length;
    await p.cli('reload');
    // The successor is held until the second reload is queued: that reload must land during this handover, however
    // long the CLI takes to start on a busy machine.
    const pid = await successorPid(p, from);
    process.kill(pid, 'SIGSTOP');
    await p.cli('reload');
    await supervisorEvent(p, 'restart_queued', from);
    process.kill(pid, 'SIGCONT');
    const first = await handedOver(p, from);
    const second = await handedOver(p, p.proc.logs.indexOf(first) + 1);
    expect(second.from_pid).toBe(first.to_pid);
    const events = p.proc.logs.slice(from).filter((l) => l.event === 'handover_started' || l.event === 'handover_complete');
    expect(events.map((l) => l.event)).toEqual(['handover_started', 'handover_complete', 'handover_started', 'handover_complete']);
    expect((await history(g, allocationId)).epoch).toBe(whoami.epoch! + 2);
  });

  it('SIGTERM without the marker during a handover: the stop wins, the allocation ends, no process is left', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { allocationId, whoami } = await allocate(g, p);
    const from = p.proc.logs.length;
    await p.cli('reload');
    const pid = await successorPid(p, from);
    p.proc.signal('SIGTERM');
    expect((await p.proc.exited).code).toBe(0);
    expect([whoami.pid, pid].filter(isAlive)).toEqual([]);
    const h = await history(g, allocationId);
    expect(h).toMatchObject({ state: 'ended', ended_reason: 'stop' });
  });
});
