/**
 * How long a reload takes to take effect, with real processes on one Ganymede:
 *
 * - Handover time: a supervised gateway (`gateway supervise`) restarted `restarts` times the way `gateway reload`
 *   does it (the reload marker, then SIGHUP to the supervisor). A restart is a hot handover: the old process
 *   serves on while its successor boots and reclaims the allocation, then stops accepting as the successor
 *   starts. So this is not time the organization goes unserved (hot-restart.ts measures that, under load): each
 *   sample runs from the signal to the first answer of the organization's traffic route (`GET /orgs/:id`) by the
 *   successor, polled every POLL_INTERVAL_MS from the signal on (answers of the old process meanwhile are ignored).
 * - Its floor, measured between the restarts: the gateway's cold process start (floors.ts, `gatewayColdStart`).
 * - Cold path, what users paid before the restart protocol: the gateway stopped (SIGTERM, /gateway/stop: the
 *   allocation ends), started again (it comes up idle), then the organization's /gateway/start (Ganymede tells
 *   the gateway, which claims), until the organization is served: from the signal to its first answer. That
 *   one is unserved time.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findFreePort, type GatewayChild, type LogRecord, logTime, spawnGatewayChild } from '@ganymede/testkit';
import { Pool } from 'undici';
import { gatewayColdStart } from './floors.js';
import type { BenchGanymede } from './ganymede.js';
import { cpuMs, rssMiB } from './machine.js';
import { track } from './processes.js';
import { sleep, type Summary, summarize } from './stats.js';

export interface HandoverResult {
  restarts: number;
  /** Signal → the first answer by the successor (the old process serves meanwhile). */
  handover_ms: Summary;
  floor_ms: Summary;
  /** The successor's CPU time by `handover_complete` (its whole boot, one handover alone on the machine); absent in older runs. */
  successor_cpu_ms?: Summary;
  /** Median of each stage of a handover, from the gateway's and supervisor's own log lines (ms); see HANDOVER_STAGES. */
  stages_ms: Record<string, number>;
  /** Restarts after which the organization was served by another allocation or epoch than expected. */
  wrong: number;
  cold: { cycles: number; cold_ms: Summary };
  /** Resident size of the gateway process (the supervised child) and of its supervisor, MiB. */
  gateway_rss_mib: number;
  supervisor_rss_mib: number;
}

/** The stages of `stages_ms`, in order, with what each is. */
export const HANDOVER_STAGES: [key: string, what: string][] = [
  ['prepare', "signal → successor started (the old process's /gateway/restart, then the spawn)"],
  ['boot', 'started → reclaimed at epoch + 1 (node, the gateway bundle, /gateway/reclaim)'],
  ['drain', 'reclaimed → the old process stops accepting (ready, drain, draining over IPC)'],
  ['accept', 'stops accepting → the successor accepts (handover_complete)'],
  ['answer', "accepts → the organization's next request answered by the successor (poll)"],
  ['retire', 'aside: stops accepting → the old process exited, having finished what was open (overlaps the two above)'],
];

interface Served {
  pid: number;
  allocation_id: string | null;
  epoch: number | null;
}

/**
 * How often the organization's route is polled. Every millisecond would be finer, but on two cores the polling
 * takes CPU from the process that is starting, and slowed its start by a third here (when a restart was a
 * blackout: a refused connection a millisecond); every 5 ms it does not measurably, and the error is under 5 ms.
 */
export const POLL_INTERVAL_MS = 5;

/** The organization's traffic route, polled: answers the whoami of a 200, or null (refused, 404, 503). */
function servePoller(url: string, organizationId: string) {
  const pool = new Pool(url, { connections: 1, keepAliveTimeout: 5_000 });
  const once = async (): Promise<Served | null> => {
    try {
      const res = await pool.request({ path: `/orgs/${organizationId}`, method: 'GET', signal: AbortSignal.timeout(2_000) });
      const text = await res.body.text();
      return res.statusCode === 200 ? (JSON.parse(text) as Served) : null;
    } catch {
      return null;
    }
  };
  /** Polls until `accept` takes an answer; answers the time of that answer, or NaN after `timeoutMs`. */
  const until = async (accept: (s: Served) => boolean, timeoutMs: number): Promise<{ at: number; served: Served | null }> => {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const served = await once();
      if (served && accept(served)) return { at: performance.now(), served };
      await sleep(POLL_INTERVAL_MS);
    }
    return { at: Number.NaN, served: null };
  };
  return { once, until, close: () => pool.destroy() };
}

export async function gatewayEnv(g: BenchGanymede, dir: string, port: number) {
  const added = await g.client(0).addGateway(g.admin, { url: `http://127.0.0.1:${port}` });
  if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
  return {
    gatewayId: added.body.gateway_id,
    env: {
      GATEWAY_ID: added.body.gateway_id,
      GATEWAY_TOKEN: added.body.token,
      GANYMEDE_URL: g.replicas[0]!.url,
      GATEWAY_PORT: String(port),
      GATEWAY_RUN_DIR: dir,
      GATEWAY_RELOAD_MARKER: join(dir, 'reloading'),
      GATEWAY_LOG_LEVEL: 'info',
    },
  };
}

export async function allocate(g: BenchGanymede, organizationId: string) {
  const start = await g.client(0).start(await g.userToken(organizationId), { organization_id: organizationId });
  if (start.status !== 201) throw new Error(`start answered ${start.status} ${JSON.stringify(start.body)}`);
  return start.body;
}

export async function handoverTime(g: BenchGanymede, options: { restarts: number; coldCycles: number }): Promise<HandoverResult> {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-bench-'));
  const port = await findFreePort();
  const { env } = await gatewayEnv(g, dir, port);
  const supervised: GatewayChild = track(spawnGatewayChild('supervise', { env }));
  try {
    await supervised.waitForLog((l) => l.event === 'idle', { timeoutMs: 60_000 });
    const organizationId = randomUUID();
    const allocation = await allocate(g, organizationId);
    const route = servePoller(`http://127.0.0.1:${port}`, organizationId);
    const handovers: number[] = [];
    const floors: number[] = [];
    const successorCpu: number[] = [];
    const stages: Record<string, number[]> = Object.fromEntries(HANDOVER_STAGES.map(([key]) => [key, []]));
    let wrong = 0;
    let gatewayRss = Number.NaN;
    try {
      let current = await route.until((s) => s.allocation_id === allocation.allocation_id, 10_000);
      if (!current.served) throw new Error('the organization is not served after /gateway/start');
      for (let i = 0; i < options.restarts; i++) {
        const old = current.served!;
        const from = supervised.logs.length;
        await writeFile(env.GATEWAY_RELOAD_MARKER, 'reload\n');
        const wallAtSignal = Date.now();
        const t0 = performance.now();
        supervised.signal('SIGHUP');
        const next = await route.until((s) => s.pid !== old.pid, 30_000);
        if (!next.served) throw new Error(`restart ${i + 1}: the successor did not serve the organization within 30 s`);
        handovers.push(next.at - t0);
        const wallServed = wallAtSignal + (next.at - t0);
        if (next.served.allocation_id !== allocation.allocation_id || next.served.epoch !== old.epoch! + 1) wrong++;
        // Where the time went, from the processes' own log lines (wall clock, ms resolution).
        const to = next.served.pid;
        const line = (match: (l: LogRecord) => boolean) => supervised.waitForLog(match, { from, timeoutMs: 10_000 }).catch(() => undefined);
        const started = logTime(await line((l) => l.event === 'child_started' && l.child_pid === to));
        const reclaimed = logTime(await line((l) => l.event === 'reclaimed' && l.pid === to));
        const draining = logTime(await line((l) => l.event === 'draining' && l.pid === old.pid));
        const complete = logTime(await line((l) => l.event === 'handover_complete' && l.to_pid === to));
        successorCpu.push(cpuMs(to));
        const exited = logTime(await line((l) => l.event === 'child_exited' && l.child_pid === old.pid));
        stages.prepare!.push(started - wallAtSignal);
        stages.boot!.push(reclaimed - started);
        stages.drain!.push(draining - reclaimed);
        stages.accept!.push(complete - draining);
        stages.answer!.push(wallServed - complete);
        stages.retire!.push(exited - draining);
        current = next;
        if (i === 0) gatewayRss = rssMiB(to);
        floors.push(await gatewayColdStart(dir));
        await sleep(200);
      }
      const supervisorRss = rssMiB(supervised.pid);

      // Cold path: a second gateway, run (not supervised): the benchmark restarts it, as a container runtime would.
      const coldDir = await mkdtemp(join(tmpdir(), 'gateway-bench-cold-'));
      const coldPort = await findFreePort();
      const cold = await gatewayEnv(g, coldDir, coldPort);
      const colds: number[] = [];
      let proc = track(spawnGatewayChild('run', { env: cold.env }));
      try {
        await proc.waitForLog((l) => l.event === 'idle', { timeoutMs: 60_000 });
        const coldOrganization = randomUUID();
        await allocate(g, coldOrganization);
        const coldRoute = servePoller(`http://127.0.0.1:${coldPort}`, coldOrganization);
        try {
          for (let i = 0; i < options.coldCycles; i++) {
            if (!(await coldRoute.until(() => true, 10_000)).served) throw new Error('cold path: not served before the stop');
            const t0 = performance.now();
            proc.signal('SIGTERM'); // no reload marker: a stop, /gateway/stop ends the allocation
            await proc.exited;
            proc = track(spawnGatewayChild('run', { env: cold.env }));
            await proc.waitForLog((l) => l.event === 'idle', { timeoutMs: 60_000 });
            await allocate(g, coldOrganization); // the user comes back: the frontend's /gateway/start
            const served = await coldRoute.until(() => true, 10_000);
            if (!served.served) throw new Error('cold path: not served after /gateway/start');
            colds.push(served.at - t0);
            await sleep(200);
          }
        } finally {
          await coldRoute.close();
        }
      } finally {
        proc.signal('SIGINT');
        await Promise.race([proc.exited, sleep(5_000)]);
        await proc.kill();
        await rm(coldDir, { recursive: true, force: true });
      }

      const med = (xs: number[]) => summarize(xs.filter((x) => Number.isFinite(x))).median;
      return {
        restarts: handovers.length,
        handover_ms: summarize(handovers),
        floor_ms: summarize(floors),
        successor_cpu_ms: summarize(successorCpu.filter((c) => Number.isFinite(c))),
        stages_ms: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, med(v)])),
        wrong,
        cold: { cycles: colds.length, cold_ms: summarize(colds) },
        gateway_rss_mib: gatewayRss,
        supervisor_rss_mib: supervisorRss,
      };
    } finally {
      await route.close();
    }
  } finally {
    supervised.signal('SIGTERM');
    await Promise.race([supervised.exited, sleep(8_000)]);
    await supervised.kill();
    await rm(dir, { recursive: true, force: true });
  }
}
