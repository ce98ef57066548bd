/**
 * Restart storm, real processes: `count` gateways each under its own supervisor (`gateway supervise`, two node
 * processes each), each serving an organization; then all are reloaded at once, the way `gateway reload` does
 * it (the reload marker, SIGHUP to the supervisor). Timed from the first signal until every new process logged
 * `reclaimed` at epoch 2; then every allocation is checked through the admin API.
 *
 * These are heavy on two cores: each restart is a node process start (most of a core for a few hundred ms).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findFreePort } from '@ganymede/app-gateway';
import { type GatewayChild, spawnGatewayChild } from '@ganymede/testkit';
import type { BenchGanymede } from './ganymede.js';
import { rssMiB } from './machine.js';
import { track } from './processes.js';
import { mapLimit, sleep, type Summary, summarize } from './stats.js';

export interface RealStormResult {
  gateways: number;
  total_ms: number;
  reclaimed_after_ms: Summary;
  lost: number;
  doubled: number;
  /** Gateways whose new process did not log `reclaimed` at epoch 2 within the time limit. */
  timed_out: number;
  setup_ms: number;
  /** Resident size of one gateway process and one supervisor, MiB (after the storm). */
  gateway_rss_mib: number;
  supervisor_rss_mib: number;
}

interface Member {
  proc: GatewayChild;
  gatewayId: string;
  marker: string;
  allocationId?: string;
  organizationId?: string;
}

export async function realStorm(g: BenchGanymede, options: { count: number; timeoutMs: number }): Promise<RealStormResult> {
  const root = await mkdtemp(join(tmpdir(), 'gateway-storm-'));
  const members: Member[] = [];
  const setupStart = performance.now();
  try {
    // Start them a few at a time: fifty node processes starting at once on two cores only thrash.
    await mapLimit(Array.from({ length: options.count }), 4, async (_, i) => {
      const port = await findFreePort();
      const added = await g.client(i).addGateway(g.admin, { url: `http://127.0.0.1:${port}` });
      if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
      const dir = join(root, String(i));
      const marker = join(root, `${i}.reloading`);
      const proc = track(
        spawnGatewayChild('supervise', {
          env: {
            GATEWAY_ID: added.body.gateway_id,
            GATEWAY_TOKEN: added.body.token,
            GANYMEDE_URL: g.replicas[i % g.replicas.length]!.url,
            GATEWAY_PORT: String(port),
            GATEWAY_RUN_DIR: dir,
            GATEWAY_RELOAD_MARKER: marker,
            GATEWAY_LOG_LEVEL: 'info',
            GATEWAY_BOOT_TIMEOUT_MS: String(options.timeoutMs),
          },
        }),
      );
      members.push({ proc, gatewayId: added.body.gateway_id, marker });
      await proc.waitForLog((l) => l.event === 'idle', { timeoutMs: 120_000 });
    });
    // One organization each (Ganymede picks the gateway: map the answer back to its process).
    const byGateway = new Map(members.map((m) => [m.gatewayId, m]));
    await mapLimit(members, 8, async (_, i) => {
      const organizationId = randomUUID();
      const start = await g.client(i).start(await g.userToken(organizationId), { organization_id: organizationId });
      if (start.status !== 201) throw new Error(`start answered ${start.status} ${JSON.stringify(start.body)}`);
      const m = byGateway.get(start.body.gateway_id)!;
      m.allocationId = start.body.allocation_id;
      m.organizationId = organizationId;
    });
    const setup_ms = performance.now() - setupStart;
    await sleep(500);

    // The storm: every supervisor signalled at once.
    const from = members.map((m) => m.proc.logs.length);
    await Promise.all(members.map((m) => writeFile(m.marker, 'reload\n')));
    const t0 = performance.now();
    for (const m of members) m.proc.signal('SIGHUP');
    const reclaimed = await Promise.all(
      members.map((m, i) =>
        m.proc
          .waitForLog((l) => l.event === 'reclaimed' && l.allocation_id === m.allocationId && l.epoch === 2, {
            from: from[i],
            timeoutMs: options.timeoutMs,
          })
          .then(
            () => performance.now() - t0,
            () => Number.NaN,
          ),
      ),
    );
    const done = reclaimed.filter((t) => Number.isFinite(t));

    // Check: every allocation active at epoch 2, reclaimed once; one live allocation per organization.
    const status = await g.client(0).status(g.admin);
    if (status.status !== 200) throw new Error(`status answered ${status.status}`);
    const live = new Map(status.body.gateways.filter((e) => e.allocation_id).map((e) => [e.allocation_id!, e]));
    let lost = 0;
    let doubled = Math.max(0, live.size - members.length);
    await mapLimit(members, 8, async (m, i) => {
      const e = live.get(m.allocationId!);
      if (!e || e.state !== 'active' || e.epoch !== 2 || e.organization_id !== m.organizationId) {
        lost++;
        return;
      }
      const history = await g.client(i).allocation(g.admin, m.allocationId!);
      const kinds = history.status === 200 ? history.body.events.map((ev) => ev.kind).join(',') : '';
      if (kinds !== 'allocated,restart_requested,reclaimed') doubled++;
    });

    const last = members[0]!;
    const childPid = Number(last.proc.logs.findLast((l) => l.event === 'child_started')?.child_pid);
    return {
      gateways: members.length,
      total_ms: done.length === members.length ? Math.max(...done) : Number.NaN,
      reclaimed_after_ms: summarize(done),
      lost,
      doubled,
      timed_out: members.length - done.length,
      setup_ms,
      gateway_rss_mib: rssMiB(childPid),
      supervisor_rss_mib: rssMiB(last.proc.pid),
    };
  } finally {
    // Stop them for good (SIGTERM to each supervisor), a few seconds at most, then kill what is left.
    for (const m of members) m.proc.signal('SIGTERM');
    await Promise.race([Promise.all(members.map((m) => m.proc.exited)), sleep(20_000)]);
    await Promise.all(members.map((m) => m.proc.kill()));
    await rm(root, { recursive: true, force: true });
  }
}
