/**
 * Hot restart under load: what an organization's traffic sees while its gateway is reloaded again and again.
 *
 * One supervised gateway (`gateway supervise`, the real CLI) serves one organization on PGlite. A steady load from a
 * separate process (the test kit's `startLoadProcess`: `clients` clients, each sends `GET /orgs/:id`, waits for
 * the answer, pauses `intervalMs`; nothing is retried; a request not answered within `timeoutMs` times out) runs
 * while the gateway is reloaded `restarts` times with `gateway reload` (the GatewayProcess's `cli('reload')`: the
 * reload marker, then SIGHUP to the supervisor), one after the other. Twice: once with keep-alive connections (one
 * per client), once with a new connection per request (`Connection: close`).
 *
 * Phases of the load: `restart` from just before `gateway reload` is run until the supervisor's
 * `handover_complete`, the old process's exit (`child_exited` of `from_pid`) and then `2 × clients` more
 * successful answers; `steady` otherwise (a warm-up before the first restart and `steadyMs` after each). Each
 * outcome counts in the phase current when it became known. Why the answers: the old process stops accepting
 * before the successor accepts, and can exit before the successor answers the requests that waited for it in the
 * socket's backlog (the slowest of a restart); without them the restart phase would end before its slowest
 * requests are answered, and they would count as steady. Per mode: the failed requests by kind (refused, reset, non-2xx, timed out, other: each must be 0), where
 * they happened (which restart or which steady spell), the longest time between two successful answers (any
 * client), latency p50/p99 in each phase, and how many requests each process served.
 *
 * Floor: the gateway's cold process start (floors.ts, `gatewayColdStart`), `floorSamples` before each mode's
 * load starts (no load then). Targets (report.ts): no failed request; longest gap ≤ 0.1 × floor; p99 during
 * restarts ≤ 2 × steady p99 + 0.1 × floor.
 *
 * Only this phase, for development: `pnpm bench --only hot-restart` (add `--quick` for 5 restarts per mode).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import {
  type GatewayProcess,
  gatewayReady,
  type LoadProcess,
  type LoadReport,
  registerGateway,
  startGatewayProcess,
  startLoadProcess,
} from '@ganymede/testkit';
import { gatewayColdStart } from './floors.js';
import type { BenchGanymede } from './ganymede.js';
import { allocate } from './handover.js';
import { track } from './processes.js';
import { median, sleep, type Summary, summarize } from './stats.js';

export interface HotRestartOptions {
  restarts: number;
  floorSamples: number;
  clients: number;
  intervalMs: number;
  timeoutMs: number;
  /** Steady load before the first restart. */
  warmupMs: number;
  /** Steady load after each restart (from the old process's exit to the next `gateway reload`). */
  steadyMs: number;
  progress?: (line: string) => void;
}

/** Outcomes of one phase (known while it was current); latency of the successful answers, ms. */
export interface PhaseFigures {
  ok: number;
  failed: number;
  p50_ms: number;
  p99_ms: number;
}

/** Failed requests of one window of the run, by code (ECONNRESET, TIMEOUT, HTTP 503, …). */
export interface FailureWindow {
  /** `warm-up`, `restart 7` (its `restart` phase) or `steady after restart 7`. */
  window: string;
  /** Milliseconds since the load started, at the end of the window. */
  at_ms: number;
  failed: number;
  errors: Record<string, number>;
}

export interface HotRestartMode {
  mode: 'keep-alive' | 'new connection per request';
  keep_alive: boolean;
  /** Handovers completed (`handover_complete`), and `handover_failed` lines (the supervisor retried them). */
  restarts: number;
  handovers_failed: number;
  requests: { sent: number; ok: number; failed: number; refused: number; reset: number; non2xx: number; timed_out: number; other: number };
  errors: Record<string, number>;
  failure_windows: FailureWindow[];
  /** The longest time without a successful answer, and the window it ended in. */
  max_gap_ms: number;
  max_gap_window: string;
  /** The same, by the end of the warm-up (no restart yet): what the machine alone does to the load. */
  warmup_max_gap_ms: number;
  latency_max_ms: number;
  restart: PhaseFigures;
  steady: PhaseFigures;
  /** Requests answered by each process (the load's `byPid`), summarized. */
  served_per_process: { processes: number; min: number; median: number; max: number };
  /** `handover_complete`'s handover_ms (the supervisor's handover_started → the successor accepts). */
  handover_ms: Summary;
  /** The `restart` phase: `gateway reload` run → the old process exited and the successor answered. */
  restart_window_ms: Summary;
  /**
   * Round trip of each command to the load process (phase, snapshot), ms. The load process answers each with a
   * report it computes synchronously (sorting every latency so far), during which it records no answer: a lower
   * bound on its own pauses, which count in its longest gap and latencies like the gateway's.
   */
  load_command_ms: Summary;
  /** After the last restart: the same allocation, at the first epoch + restarts. */
  allocation_kept: boolean;
  epochs: [first: number | null, last: number | null];
  duration_s: number;
}

export interface HotRestartResult {
  clients: number;
  interval_ms: number;
  timeout_ms: number;
  warmup_ms: number;
  steady_ms: number;
  /** The machine's 1-minute load average when the phase started and when it ended (other work shows here). */
  load_average: [start: number, end: number];
  floor_ms: Summary;
  modes: HotRestartMode[];
}

interface Whoami {
  pid: number;
  allocation_id: string | null;
  epoch: number | null;
}

async function whoami(url: string): Promise<Whoami | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.status === 200 ? ((await res.json()) as Whoami) : null;
  } catch {
    return null;
  }
}

const phaseFigures = (p: LoadReport['phases'][string] | undefined): PhaseFigures => ({
  ok: p?.ok ?? 0,
  failed: p?.failed ?? 0,
  p50_ms: p?.p50 ?? Number.NaN,
  p99_ms: p?.p99 ?? Number.NaN,
});

const errorDelta = (now: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.entries(now).flatMap(([code, n]) => (n > (before[code] ?? 0) ? [[code, n - (before[code] ?? 0)]] : [])));

/** Restarts the gateway `options.restarts` times under one load; answers the mode's figures. */
export async function runMode(
  gp: GatewayProcess,
  url: string,
  keepAlive: boolean,
  options: Omit<HotRestartOptions, 'floorSamples'>,
): Promise<HotRestartMode> {
  const mode = keepAlive ? 'keep-alive' : 'new connection per request';
  const say = options.progress ?? (() => undefined);
  const first = await whoami(url);
  const t0 = performance.now();
  const load: LoadProcess = await startLoadProcess({
    url,
    clients: options.clients,
    intervalMs: options.intervalMs,
    keepAlive,
    timeoutMs: options.timeoutMs,
    phase: 'steady',
  });
  const handovers: number[] = [];
  const windows: number[] = [];
  const failureWindows: FailureWindow[] = [];
  let handoversFailed = 0;
  let maxGapWindow = 'warm-up';
  let before: LoadReport | undefined;
  let warmupGap: number | undefined;
  const commandMs: number[] = [];
  /** A command to the load process, timed. */
  const timed = async <T>(command: () => Promise<T>): Promise<T> => {
    const c0 = performance.now();
    try {
      return await command();
    } finally {
      commandMs.push(performance.now() - c0);
    }
  };
  /** Attributes what changed since `before` (the previous window's end) to the window `label` ending now. */
  const account = (now: LoadReport, label: string) => {
    const was = before!;
    const failed = now.failed - was.failed;
    if (failed > 0) failureWindows.push({ window: label, at_ms: now.durationMs, failed, errors: errorDelta(now.errors, was.errors) });
    if (now.maxGapMs > was.maxGapMs) maxGapWindow = label;
    before = now;
  };
  let final: LoadReport;
  try {
    await load.waitFor({ ok: 1 }, { timeoutMs: 30_000 });
    await sleep(options.warmupMs);
    before = await load.snapshot();
    warmupGap = before.maxGapMs;
    if (before.failed > 0)
      failureWindows.push({ window: 'warm-up', at_ms: before.durationMs, failed: before.failed, errors: before.errors });
    for (let i = 1; i <= options.restarts; i++) {
      if (i > 1) account(await timed(() => load.snapshot()), `steady after restart ${i - 1}`);
      const from = gp.proc.logs.length;
      await timed(() => load.phase('restart'));
      const started = performance.now();
      await gp.cli('reload');
      const complete = await gp.proc.waitForLog((l) => l.event === 'handover_complete' || l.event === 'handover_gave_up', {
        from,
        timeoutMs: 120_000,
      });
      const failedTries = gp.proc.logs.slice(from, gp.proc.logs.indexOf(complete)).filter((l) => l.event === 'handover_failed');
      for (const line of failedTries) say(`   ${mode}: restart ${i}: handover_failed (${String(line.why)}); the supervisor tried again`);
      handoversFailed += failedTries.length;
      if (complete.event === 'handover_gave_up') throw new Error(`restart ${i}: the supervisor gave the handover up`);
      await gp.proc.waitForLog((l) => l.event === 'child_exited' && l.child_pid === complete.from_pid, { from, timeoutMs: 60_000 });
      // The requests that waited in the backlog for the successor, answered: see the module's comment.
      const exited = await timed(() => load.snapshot());
      await load.waitFor({ ok: exited.ok + 2 * options.clients }, { timeoutMs: 30_000 });
      windows.push(performance.now() - started);
      handovers.push(Number(complete.handover_ms));
      await timed(() => load.phase('steady'));
      account(await timed(() => load.snapshot()), `restart ${i}`);
      if (i % 10 === 0 || i === options.restarts) {
        say(
          `   ${mode}: ${i}/${options.restarts} restarts, last handover ${Number(complete.handover_ms).toFixed(0)} ms; ` +
            `ok ${before.ok}, failed ${before.failed}, longest gap ${before.maxGapMs.toFixed(1)} ms`,
        );
      }
      await sleep(options.steadyMs);
    }
  } finally {
    final = await load.stop();
  }
  if (before) account(final, `steady after restart ${handovers.length}`);
  const last = await whoami(url);
  const served = Object.values(final.byPid);
  const expectedEpoch = first?.epoch === null || first?.epoch === undefined ? null : first.epoch + handovers.length;
  const result: HotRestartMode = {
    mode,
    keep_alive: keepAlive,
    restarts: handovers.length,
    handovers_failed: handoversFailed,
    requests: {
      sent: final.sent,
      ok: final.ok,
      failed: final.failed,
      refused: final.refused,
      reset: final.reset,
      non2xx: final.non2xx,
      timed_out: final.timedOut,
      other: final.otherErrors,
    },
    errors: final.errors,
    failure_windows: failureWindows,
    max_gap_ms: final.maxGapMs,
    max_gap_window: maxGapWindow,
    warmup_max_gap_ms: warmupGap ?? Number.NaN,
    latency_max_ms: final.latency.max,
    restart: phaseFigures(final.phases.restart),
    steady: phaseFigures(final.phases.steady),
    served_per_process: {
      processes: served.length,
      min: Math.min(...served),
      median: median(served),
      max: Math.max(...served),
    },
    handover_ms: summarize(handovers),
    load_command_ms: summarize(commandMs),
    restart_window_ms: summarize(windows),
    allocation_kept: first !== null && last !== null && last.allocation_id === first.allocation_id && last.epoch === expectedEpoch,
    epochs: [first?.epoch ?? null, last?.epoch ?? null],
    duration_s: (performance.now() - t0) / 1000,
  };
  return result;
}

/** A supervised gateway (`gateway supervise`, the real CLI) serving one new organization, and how to stop it. */
export interface ServedGateway {
  gp: GatewayProcess;
  /** The gateway's base URL. */
  base: string;
  organizationId: string;
  /** The organization's traffic route, `GET /orgs/:id`. */
  url: string;
  close(): Promise<void>;
}

export async function servedGateway(g: BenchGanymede, env: NodeJS.ProcessEnv = {}): Promise<ServedGateway> {
  const ganymede = g.replicas[0]!;
  const gw = await registerGateway(ganymede);
  const ready = gatewayReady(ganymede, gw.gateway_id);
  const gp = await startGatewayProcess(ganymede, gw, 'supervise', { GATEWAY_LOG_LEVEL: 'info', ...env });
  track(gp.proc);
  const close = async () => {
    await gp.cli('stop').catch(() => gp.proc.signal('SIGINT'));
    await Promise.race([gp.proc.exited, sleep(10_000)]);
    await gp.proc.kill();
    await rm(gp.runDir, { recursive: true, force: true });
  };
  try {
    await ready;
    const organizationId = randomUUID();
    const allocation = await allocate(g, organizationId);
    const url = `${gw.url}/orgs/${organizationId}`;
    const deadline = performance.now() + 10_000;
    while ((await whoami(url))?.allocation_id !== allocation.allocation_id) {
      if (performance.now() > deadline) throw new Error('the organization is not served after /gateway/start');
      await sleep(20);
    }
    return { gp, base: gw.url, organizationId, url, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export async function hotRestart(g: BenchGanymede, options: HotRestartOptions): Promise<HotRestartResult> {
  const say = options.progress ?? (() => undefined);
  const loadAtStart = loadavg()[0]!;
  const served = await servedGateway(g);
  const dir = await mkdtemp(join(tmpdir(), 'gateway-bench-hot-'));
  try {
    const floors: number[] = [];
    const modes: HotRestartMode[] = [];
    for (const keepAlive of [true, false]) {
      for (let i = 0; i < options.floorSamples; i++) floors.push(await gatewayColdStart(dir));
      say(`   ${keepAlive ? 'keep-alive' : 'new connection per request'}: ${options.restarts} restarts under load`);
      const mode = await runMode(served.gp, served.url, keepAlive, options);
      modes.push(mode);
      const r = mode.requests;
      say(
        `   ${mode.mode}: ${r.ok} ok, ${r.failed} failed (refused ${r.refused}, reset ${r.reset}, non-2xx ${r.non2xx}, timed out ${r.timed_out}); ` +
          `longest gap ${mode.max_gap_ms.toFixed(1)} ms; p99 restart ${mode.restart.p99_ms.toFixed(1)} ms, steady ${mode.steady.p99_ms.toFixed(1)} ms`,
      );
    }
    return {
      clients: options.clients,
      interval_ms: options.intervalMs,
      timeout_ms: options.timeoutMs,
      warmup_ms: options.warmupMs,
      steady_ms: options.steadyMs,
      load_average: [loadAtStart, loadavg()[0]!],
      floor_ms: summarize(floors),
      modes,
    };
  } finally {
    await served.close();
    await rm(dir, { recursive: true, force: true });
  }
}
