/**
 * Restart storm, real processes: `count` gateways each under its own supervisor (`gateway supervise`, two node
 * processes each), each serving an organization; then all are reloaded at once, the way `gateway reload` does
 * it (the reload marker, SIGHUP to the supervisor). A reload is a hot handover: the old process serves on while
 * its successor boots and reclaims. Timed from the first signal until every supervisor logged `handover_complete`
 * (its successor serves); then every allocation is checked through the admin API.
 *
 * A successor not ready within the gateway's handover timeout (GATEWAY_HANDOVER_TIMEOUT_MS, its default here) is
 * killed, the old process withdraws the restart and serves on, and the supervisor tries again: such a gateway
 * ends at an epoch above 2. It is counted as `retried`, not lost: its allocation is still the organization's.
 *
 * These are heavy on two cores: each restart is a node process start (most of a core for a few hundred ms).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findFreePort, type GatewayChild, spawnGatewayChild } from '@ganymede/testkit';
import type { BenchGanymede } from './ganymede.js';
import { countDoubleAllocations, countHistory, type Histories, noHistories, trailOf } from './histories.js';
import { cpuMs, machineBusyMs, rssMiB } from './machine.js';
import { track } from './processes.js';
import { mapLimit, sleep, type Summary, summarize } from './stats.js';

export interface RealStormResult {
  gateways: number;
  total_ms: number;
  /** Signal → each supervisor's `handover_complete` (its successor serves). */
  complete_after_ms: Summary;
  lost: number;
  /** Each allocation's audit history by kind, and double allocations (absent in runs before it was recorded). */
  histories?: Histories;
  /** Runs before `histories`: any history other than a clean reclaim, or a second live allocation. */
  doubled?: number;
  /** Gateways whose supervisor did not log `handover_complete` within the time limit. */
  timed_out: number;
  /** Gateways whose handover failed at least once (`handover_failed`) before it completed: they end above epoch 2. */
  retried: number;
  /** `handover_failed` lines of all gateways, by reason. */
  handover_failures: Record<string, number>;
  /**
   * The handover lines (supervisor and processes, since the signal) of each gateway that timed out or was retried,
   * deduplicated, with how many gateways showed them: what happened to them.
   */
  retried_lines?: { gateways: number; lines: string }[];
  /** The audit trail of each lost allocation (kind, epoch, reason), and how it ended. */
  lost_trails?: string[];
  setup_ms: number;
  /**
   * Where the storm's CPU went, from the signal until every handover completed (absent in runs before it was
   * recorded): each successor's CPU by then (its whole boot), all successors', the supervisors', Ganymede's, and
   * the machine's (all cores; what the old processes, PostgreSQL and the benchmark itself used is the rest).
   */
  cpu?: { successor_ms: Summary; successors_s: number; supervisors_s: number; ganymede_s: number; machine_busy_s: number };
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

/** A child's exit in a story: its code or signal (a successor that exits on its own says why here). */
const exitOf = (l: Record<string, unknown>) =>
  l.event === 'child_exited' ? ` (${typeof l.signal === 'string' ? l.signal : `code ${JSON.stringify(l.code)}`})` : '';

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
    const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
    const supervisors = members.map((m) => m.proc.pid);
    const ganymedes = g.replicas.map((r) => r.proc.pid);
    const before = { busy: machineBusyMs(), supervisors: cpuOf(supervisors), ganymede: cpuOf(ganymedes) };
    const t0 = performance.now();
    for (const m of members) m.proc.signal('SIGHUP');
    const completed = await Promise.all(
      members.map((m, i) =>
        m.proc
          .waitForLog((l) => l.event === 'handover_complete' || l.event === 'handover_gave_up', {
            from: from[i],
            timeoutMs: options.timeoutMs,
          })
          .then(
            (l) => (l.event === 'handover_complete' ? performance.now() - t0 : Number.NaN),
            () => Number.NaN,
          ),
      ),
    );
    const successorCpu = members.flatMap((m, i) => {
      const pid = Number(m.proc.logs.slice(from[i]).findLast((l) => l.event === 'handover_complete')?.to_pid);
      const used = cpuMs(pid);
      return Number.isFinite(used) ? [used] : [];
    });
    const cpu = {
      successor_ms: summarize(successorCpu),
      successors_s: successorCpu.reduce((a, b) => a + b, 0) / 1000,
      supervisors_s: (cpuOf(supervisors) - before.supervisors) / 1000,
      ganymede_s: (cpuOf(ganymedes) - before.ganymede) / 1000,
      machine_busy_s: (machineBusyMs() - before.busy) / 1000,
    };
    const done = completed.filter((t) => Number.isFinite(t));
    const failures: Record<string, number> = {};
    const EVENTS = new Set([
      'handover_started',
      'handover_failed',
      'handover_retry',
      'handover_gave_up',
      'handover_complete',
      'restart_withdrawn',
      'withdraw_refused',
      'boot_retry',
      'boot_failed',
      'reclaimed',
      'child_exited',
    ]);
    const troubled = new Map<string, number>();
    let retried = 0;
    members.forEach((m, i) => {
      const lines = m.proc.logs.slice(from[i]);
      const failed = lines.filter((l) => l.event === 'handover_failed');
      for (const l of failed) failures[JSON.stringify(l.why)] = (failures[JSON.stringify(l.why)] ?? 0) + 1;
      if (failed.length) retried++;
      if (failed.length || !Number.isFinite(completed[i])) {
        const story = lines
          .filter((l) => EVENTS.has(String(l.event)))
          .map((l) => `${String(l.event)}${l.epoch !== undefined ? ` ${JSON.stringify(l.epoch)}` : ''}${exitOf(l)}`)
          .join(' → ');
        troubled.set(story, (troubled.get(story) ?? 0) + 1);
      }
    });

    // Check: every allocation still its organization's and active, on its gateway; the histories by kind (a
    // retried handover's history is an "other" one, listed with its trail).
    const status = await g.client(0).status(g.admin);
    if (status.status !== 200) throw new Error(`status answered ${status.status}`);
    const histories = noHistories();
    countDoubleAllocations(histories, status.body.gateways);
    const live = new Map(status.body.gateways.filter((e) => e.allocation_id).map((e) => [e.allocation_id!, e]));
    let lost = 0;
    const lostTrails: string[] = [];
    await mapLimit(members, 8, async (m, i) => {
      const history = await g.client(i).allocation(g.admin, m.allocationId!);
      if (history.status !== 200) throw new Error(`allocation ${m.allocationId} answered ${history.status}`);
      countHistory(histories, history.body.events);
      const e = live.get(m.allocationId!);
      if (!e || e.state !== 'active' || e.organization_id !== m.organizationId || e.gateway_id !== m.gatewayId) {
        lost++;
        lostTrails.push(
          `${trailOf(history.body.events)}; ${history.body.state}${history.body.ended_reason ? ` (${history.body.ended_reason})` : ''}`,
        );
      }
    });

    const last = members[0]!;
    const childPid = Number(last.proc.logs.findLast((l) => l.event === 'child_started')?.child_pid);
    return {
      gateways: members.length,
      total_ms: done.length === members.length ? Math.max(...done) : Number.NaN,
      complete_after_ms: summarize(done),
      lost,
      histories,
      timed_out: members.length - done.length,
      retried,
      handover_failures: failures,
      ...(lostTrails.length ? { lost_trails: lostTrails } : {}),
      ...(troubled.size ? { retried_lines: [...troubled].map(([lines, gateways]) => ({ gateways, lines })) } : {}),
      setup_ms,
      cpu,
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
