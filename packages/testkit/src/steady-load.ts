/**
 * A steady load on one URL, counting every failure: the hot-restart test, the benchmark and the demo measure with
 * it that no request fails while gateway processes are swapped. Each client sends one request, waits for its
 * answer, then waits `intervalMs`; nothing is retried. `startLoadProcess` (steady-load-process.ts) runs the same
 * load in a child process, off the caller's event loop.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { percentile } from './stats.js';

export interface SteadyLoadOptions {
  /** The full URL to GET, e.g. `http://127.0.0.1:4100/orgs/<uuid>`. */
  url: string;
  /** How many clients send at once. */
  clients: number;
  /** Each client's pause between an answer (or failure) and its next request. Clients start staggered over it. */
  intervalMs: number;
  /** true: one persistent connection per client; false: a new connection per request (`Connection: close`). */
  keepAlive: boolean;
  /** A request not answered (body included) within this long is destroyed and counts as timed out. */
  timeoutMs: number;
  /** The phase outcomes count in until `phase()` names another (default `steady`). */
  phase?: string;
}

/** What happened to the requests so far; every request sent ends in exactly one of the outcome counts. */
export interface LoadCounts {
  sent: number;
  /** Answered 2xx (body read). */
  ok: number;
  /** Every request that did not end in `ok`: the sum of the five counts below. */
  failed: number;
  /** ECONNREFUSED: nothing listened. */
  refused: number;
  /** ECONNRESET, EPIPE, socket hang up: the connection broke before the answer was complete. */
  reset: number;
  /** Answered, with a status outside 2xx. */
  non2xx: number;
  /** No complete answer within `timeoutMs`. */
  timedOut: number;
  /** Any other error (see `errors`). */
  otherErrors: number;
}

/** Latency of successful answers, in milliseconds; NaN when there were none. */
export interface LatencyStats {
  p50: number;
  p99: number;
  max: number;
}

/** The outcomes known while a phase was current. */
export interface PhaseReport extends LatencyStats {
  ok: number;
  failed: number;
}

export interface LoadReport extends LoadCounts {
  /** Sent and not yet settled (0 in the report `stop()` answers). */
  inFlight: number;
  /** Failures by code: ECONNREFUSED, ECONNRESET, EPIPE, TIMEOUT, `HTTP 503`, … */
  errors: Record<string, number>;
  /** 2xx answers by the `pid` field of their JSON body (`unknown` when there is none). */
  byPid: Record<string, number>;
  /**
   * The longest time without a successful answer: between two consecutive ones (across all clients), from the
   * start to the first one, and from the last one to now (to the end of the run, in the final report).
   */
  maxGapMs: number;
  latency: LatencyStats;
  /**
   * By phase (`phase()`): each outcome counts in the phase current when it became known (answer, error or
   * timeout), so a request slowed by a restart counts in the restart's phase even if it was sent before.
   */
  phases: Record<string, PhaseReport>;
  /** Since the load started; to the end of the run in the final report. */
  durationMs: number;
}

export interface SteadyLoad {
  /** Counts so far. */
  snapshot(): LoadReport;
  /** From now on, outcomes count in phase `name` as well as in the totals. */
  phase(name: string): void;
  /**
   * Resolves with a snapshot once every count named is at least the value given, e.g. `{ ok: 100 }` or
   * `{ refused: 1 }`. Rejects after `timeoutMs` (default 30 s), or if the load stops first.
   */
  waitFor(atLeast: Partial<LoadCounts>, options?: { timeoutMs?: number }): Promise<LoadReport>;
  /** Stops sending, waits for the requests in flight to settle, answers the final report. Safe to call twice. */
  stop(): Promise<LoadReport>;
}

type Outcome = 'ok' | 'refused' | 'reset' | 'non2xx' | 'timedOut' | 'otherErrors';

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** Which count an error goes to, and the code it is listed under in `errors`. */
function classify(error: NodeJS.ErrnoException): { outcome: Outcome; code: string } {
  const code = error.code ?? error.message;
  if (code === 'ECONNREFUSED') return { outcome: 'refused', code };
  if (RESET_CODES.has(code) || error.message === 'socket hang up') return { outcome: 'reset', code };
  return { outcome: 'otherErrors', code };
}

function pidOf(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object' && 'pid' in parsed) {
      const { pid } = parsed;
      if (typeof pid === 'number' || typeof pid === 'string') return String(pid);
    }
  } catch {
    // Not JSON: counted as ok all the same, under `unknown`.
  }
  return 'unknown';
}

/**
 * Latency samples, kept sorted as they come: a report sorts only the samples since the previous report and merges
 * them in, instead of sorting every sample again. Sorting 100,000 samples each time took 60 to 200 ms on two busy
 * cores, during which the load recorded no answer: each phase switch (each answers a report) showed as a gap.
 */
class Samples {
  private sorted = new Float64Array(0);
  private fresh: number[] = [];

  push(ms: number): void {
    this.fresh.push(ms);
  }

  get count(): number {
    return this.sorted.length + this.fresh.length;
  }

  ascending(): Float64Array {
    if (this.fresh.length === 0) return this.sorted;
    const old = this.sorted;
    const add = Float64Array.from(this.fresh).sort();
    const all = new Float64Array(old.length + add.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < old.length && j < add.length) all[k++] = old[i]! <= add[j]! ? old[i++]! : add[j++]!;
    while (i < old.length) all[k++] = old[i++]!;
    while (j < add.length) all[k++] = add[j++]!;
    this.sorted = all;
    this.fresh = [];
    return all;
  }
}

export function runSteadyLoad(options: SteadyLoadOptions): SteadyLoad {
  const { url, clients, intervalMs, keepAlive, timeoutMs } = options;
  if (!Number.isInteger(clients) || clients < 1) throw new RangeError(`clients must be a positive integer, not ${clients}`);
  if (!(intervalMs >= 0) || !(timeoutMs > 0)) throw new RangeError(`intervalMs must be ≥ 0 and timeoutMs > 0`);
  const target = new URL(url);

  const startedAt = performance.now();
  let endedAt: number | undefined;
  const counts: LoadCounts = { sent: 0, ok: 0, failed: 0, refused: 0, reset: 0, non2xx: 0, timedOut: 0, otherErrors: 0 };
  const errors: Record<string, number> = {};
  const byPid: Record<string, number> = {};
  const latencies = new Samples();
  const phases = new Map<string, { latencies: Samples; failed: number }>();
  let current = { latencies: new Samples(), failed: 0 };
  const phase = (name: string) => {
    const existing = phases.get(name) ?? { latencies: new Samples(), failed: 0 };
    phases.set(name, existing);
    current = existing;
  };
  phase(options.phase ?? 'steady');
  let lastOkAt = startedAt;
  let maxGapMs = 0;

  const waiters = new Set<() => void>();
  const record = (outcome: Outcome, detail: { latencyMs: number; pid: string } | { code: string }) => {
    counts[outcome]++;
    if ('code' in detail) {
      counts.failed++;
      current.failed++;
      errors[detail.code] = (errors[detail.code] ?? 0) + 1;
    } else {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - lastOkAt);
      lastOkAt = now;
      latencies.push(detail.latencyMs);
      current.latencies.push(detail.latencyMs);
      byPid[detail.pid] = (byPid[detail.pid] ?? 0) + 1;
    }
    for (const waiter of [...waiters]) waiter();
  };

  /** One GET; resolves once its outcome is recorded (never rejects). */
  const send = (agent: Agent | false) =>
    new Promise<void>((resolve) => {
      const sentAt = performance.now();
      counts.sent++;
      let settled = false;
      const settle = (outcome: Outcome, detail: Parameters<typeof record>[1]) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        record(outcome, detail);
        resolve();
      };
      // Settled first, so that the errors destroying the request raises are not counted again.
      const timer = setTimeout(() => {
        settle('timedOut', { code: 'TIMEOUT' });
        req.destroy();
      }, timeoutMs);
      const fail = (error: NodeJS.ErrnoException) => {
        const { outcome, code } = classify(error);
        settle(outcome, { code });
      };
      const req = request(target, { agent, headers: keepAlive ? {} : { connection: 'close' } }, (res) => {
        const status = res.statusCode ?? 0;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('error', fail);
        res.on('end', () => {
          if (status >= 200 && status < 300) settle('ok', { latencyMs: performance.now() - sentAt, pid: pidOf(body) });
          else settle('non2xx', { code: `HTTP ${status}` });
        });
      });
      req.on('error', fail);
      req.end();
    });

  const stopping = new AbortController();
  const pause = async (ms: number) => {
    if (ms > 0) await delay(ms, undefined, { signal: stopping.signal }).catch(() => undefined);
  };
  const client = async (index: number) => {
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    try {
      // Staggered: the clients' requests spread over the interval rather than leaving together.
      await pause((index * intervalMs) / clients);
      while (!stopping.signal.aborted) {
        await send(agent);
        await pause(intervalMs);
      }
    } finally {
      if (agent) agent.destroy();
    }
  };
  const running = Promise.all(Array.from({ length: clients }, (_, index) => client(index)));

  const stats = (samples: Samples): LatencyStats => {
    const sorted = samples.ascending();
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN };
  };
  const snapshot = (): LoadReport => {
    const now = endedAt ?? performance.now();
    return {
      ...counts,
      inFlight: counts.sent - counts.ok - counts.failed,
      errors: { ...errors },
      byPid: { ...byPid },
      maxGapMs: Math.max(maxGapMs, now - lastOkAt),
      latency: stats(latencies),
      phases: Object.fromEntries(
        [...phases].map(([name, p]) => [name, { ok: p.latencies.count, failed: p.failed, ...stats(p.latencies) }]),
      ),
      durationMs: now - startedAt,
    };
  };

  const reached = (atLeast: Partial<LoadCounts>) =>
    Object.entries(atLeast).every(([key, value]) => counts[key as keyof LoadCounts] >= (value ?? 0));

  let stopped: Promise<LoadReport> | undefined;
  return {
    snapshot,
    phase,
    waitFor: (atLeast, { timeoutMs: waitMs = 30_000 } = {}) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (reached(atLeast)) {
            done();
            resolve(snapshot());
          } else if (endedAt !== undefined) {
            done();
            reject(new Error(`the load stopped before ${JSON.stringify(atLeast)}: ${formatLoadReport(snapshot())}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`not ${JSON.stringify(atLeast)} within ${waitMs} ms: ${formatLoadReport(snapshot())}`));
        }, waitMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    stop: () =>
      (stopped ??= (async () => {
        stopping.abort();
        await running;
        endedAt = performance.now();
        for (const waiter of [...waiters]) waiter();
        return snapshot();
      })()),
  };
}

const ms = (n: number) => (Number.isNaN(n) ? '–' : n < 10 ? n.toFixed(1) : n.toFixed(0));
const tally = (record: Record<string, number>) =>
  Object.entries(record)
    .map(([key, n]) => `${key}×${n}`)
    .join(' ');

/**
 * One line: `sent 1200 ok 1198 failed 2 (refused 0 reset 2 non2xx 0 timedOut 0 other 0) ECONNRESET×2 ·
 * pids 4121×700 4188×498 · p50 1.2 p99 8.0 max 31 ms · max gap 35 ms · restart: ok 300 failed 2 p50 2.1 p99 20 ms`.
 */
export function formatLoadReport(r: LoadReport): string {
  const parts = [
    `sent ${r.sent} ok ${r.ok} failed ${r.failed}` +
      (r.failed
        ? ` (refused ${r.refused} reset ${r.reset} non2xx ${r.non2xx} timedOut ${r.timedOut} other ${r.otherErrors}) ${tally(r.errors)}`
        : '') +
      (r.inFlight ? ` in flight ${r.inFlight}` : ''),
    `pids ${tally(r.byPid) || '–'}`,
    `p50 ${ms(r.latency.p50)} p99 ${ms(r.latency.p99)} max ${ms(r.latency.max)} ms`,
    `max gap ${ms(r.maxGapMs)} ms`,
  ];
  const phases = Object.entries(r.phases);
  if (phases.length > 1) {
    for (const [name, p] of phases) parts.push(`${name}: ok ${p.ok} failed ${p.failed} p50 ${ms(p.p50)} p99 ${ms(p.p99)} ms`);
  }
  return parts.join(' · ');
}
