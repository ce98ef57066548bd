/** The benchmark's figures as a table on the terminal, and as BENCHMARKS.md. */
import { readFileSync } from 'node:fs';
import type { FirstStartResult } from './first-start.js';
import type { HttpFloor, SqlFloor } from './floors.js';
import { HANDOVER_STAGES, type HandoverResult, POLL_INTERVAL_MS } from './handover.js';
import type { HotRestartMode, HotRestartResult } from './hot-restart.js';
import { describeHistories, type Histories } from './histories.js';
import type { Machine } from './machine.js';
import type { RealStormResult } from './real-storm.js';
import type { StateHandoverRow, ThroughputRow } from './state.js';
import { fmt } from './stats.js';
import type { StormResult } from './storm.js';

export interface StormRow {
  backend: string;
  kind: 'pglite' | 'postgres';
  replicas: number;
  skipped?: string;
  result?: StormResult;
  real?: RealStormResult;
  rss_first_start_mib?: number;
  rss_idle_mib?: number[];
  rss_after_mib?: number[];
  /** SETTLE_S after the storm, once V8's memory reducer has had its chance (absent in earlier runs). */
  rss_settled_mib?: number[];
}

/** How long after a storm its resident size is read again: V8 returns a burst's freed pages in about 8 to 30 s. */
export const SETTLE_S = 30;
const settled = (row: StormRow) => (row.rss_settled_mib ? `; ${SETTLE_S} s later ${mib(maxOf(row.rss_settled_mib))}` : '');

export interface Target {
  what: string;
  target: string;
  measured: string;
  status: 'met' | 'missed' | 'skipped' | 'failed';
}

export interface BenchResults {
  machine: Machine;
  quick: boolean;
  sizes: Record<string, number>;
  postgres_url: string | null;
  handover?: HandoverResult;
  hot_restart?: HotRestartResult;
  state_handover?: StateHandoverRow[];
  state_throughput?: (ThroughputRow | { backend: string; skipped: string })[];
  first_start?: FirstStartResult;
  storms: StormRow[];
  real_storms: StormRow[];
  sql_floor_pglite?: SqlFloor;
  sql_floor_postgres?: SqlFloor;
  /** The protocol's own statements alone (no HTTP): absent in runs before it was measured. */
  protocol_sql_pglite?: SqlFloor;
  protocol_sql_postgres?: SqlFloor;
  http_floor?: HttpFloor;
  memory: { gateway_process?: number; gateway_supervisor?: number };
  errors: string[];
  duration_s?: number;
  targets?: Target[];
  /** Phases measured again later (`pnpm bench --only … --merge`), their figures replacing the first run's. */
  /** Busy processes spinning through the run (`--cpu-hog`): a loaded machine on purpose. */
  cpu_hogs?: number;
  remeasured?: { phases: string[]; date: string; load_average_at_start: number[]; duration_s: number }[];
}

const ms = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : `${fmt(n)} ms`);
const x = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : `${n.toFixed(2)}×`);
const mib = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : `${fmt(n)} MiB`);
const maxOf = (xs: number[] | undefined) => (xs?.length ? Math.max(...xs) : Number.NaN);
const rate = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : `${Math.round(n).toLocaleString('en-US')}/s`);

const sizeLabel = (bytes: number) => (bytes === 0 ? 'no state' : `${fmt(bytes / (1024 * 1024))} MiB`);
const plus = (n: number) => `${n < 0 ? '−' : '+'}${fmt(Math.abs(n))} ms`;

type Checked = { histories?: Histories; doubled?: number };
/** Double allocations; in a run before histories were recorded, its `doubled` (which lumped every other history in). */
const doubleAllocations = (s: Checked) => s.histories?.double_allocation ?? s.doubled ?? Number.NaN;
/** The audit histories by kind with their counts, every one that is not a clean reclaim listed with its trail. */
export const historiesOf = (s: Checked) =>
  s.histories ? describeHistories(s.histories) : `not recorded by kind in this run: ${s.doubled ?? '–'} "doubled" (any other history)`;

const sqlFloorFor = (r: BenchResults, row: StormRow) => (row.kind === 'pglite' ? r.sql_floor_pglite : r.sql_floor_postgres);
const protocolSqlFor = (r: BenchResults, row: StormRow) => (row.kind === 'pglite' ? r.protocol_sql_pglite : r.protocol_sql_postgres);
/** What the protocol's statements alone reach, against the raw UPDATE: the bound the SQL sets on the ratio. */
const sqlBound = (r: BenchResults, row: StormRow, floor: SqlFloor) => {
  const alone = protocolSqlFor(r, row);
  return alone
    ? `; its statements alone (no HTTP): ${rate(alone.statements_per_second)} = ${x(alone.statements_per_second / floor.statements_per_second)}`
    : '';
};

/** The hot restart's limits, from its floor (the gateway's cold process start) and the mode's steady p99. */
export const hotRestartLimits = (floorMs: number, m: HotRestartMode) => ({
  gapMs: 0.1 * floorMs,
  restartP99Ms: 2 * m.steady.p99_ms + 0.1 * floorMs,
});
const failedKinds = (m: HotRestartMode) => {
  const q = m.requests;
  return `refused ${q.refused}, reset ${q.reset}, non-2xx ${q.non2xx}, timed out ${q.timed_out}, other ${q.other}`;
};

/** Every target of the issue, with where it stands. */
export function evaluateTargets(r: BenchResults): Target[] {
  const targets: Target[] = [];
  const status = (ok: boolean | undefined): Target['status'] => (ok === undefined ? 'failed' : ok ? 'met' : 'missed');
  if (r.handover) {
    const h = r.handover;
    const ratio = h.handover_ms.median / h.floor_ms.median;
    targets.push({
      what: 'Handover time, signal → successor serving (median; the old process serves meanwhile)',
      target: '≤ 1.25 × its floor (the former blackout target)',
      measured: `${ms(h.handover_ms.median)} = ${x(ratio)} the floor (${ms(h.floor_ms.median)})`,
      status: status(ratio <= 1.25),
    });
    targets.push({
      what: 'Restart keeps the allocation',
      target: 'same allocation, epoch + 1, every restart',
      measured: `${h.restarts - h.wrong} of ${h.restarts}`,
      status: status(h.wrong === 0),
    });
  }
  if (r.hot_restart) {
    const floor = r.hot_restart.floor_ms.median;
    for (const m of r.hot_restart.modes) {
      const label = `Hot restart under load, ${m.mode} (${m.restarts} restarts)`;
      const limits = hotRestartLimits(floor, m);
      targets.push({
        what: `${label}: failed requests`,
        target: '0',
        measured: `${m.requests.failed} of ${m.requests.sent} (${failedKinds(m)})`,
        status: status(m.requests.failed === 0),
      });
      targets.push({
        what: `${label}: longest gap between successful answers`,
        target: `≤ 0.1 × floor (${ms(limits.gapMs)})`,
        measured: `${ms(m.max_gap_ms)} = ${x(m.max_gap_ms / floor)} the floor (${ms(floor)})`,
        status: status(m.max_gap_ms <= limits.gapMs),
      });
      targets.push({
        what: `${label}: latency p99 during restarts`,
        target: '≤ 2 × steady p99 + 0.1 × floor',
        measured: `${ms(m.restart.p99_ms)} vs ${ms(limits.restartP99Ms)} (steady p99 ${ms(m.steady.p99_ms)})`,
        status: status(m.restart.p99_ms <= limits.restartP99Ms),
      });
      targets.push({
        what: `${label}: allocation kept`,
        target: `same allocation, epoch + ${m.restarts}`,
        measured: `epoch ${m.epochs[0] ?? '–'} → ${m.epochs[1] ?? '–'}${m.allocation_kept ? ', same allocation' : ''}`,
        status: status(m.allocation_kept),
      });
    }
  }
  for (const row of r.state_handover ?? []) {
    targets.push({
      what: `Hot restart with a document of ${sizeLabel(row.document_bytes)} (${row.restarts} restarts): failed requests; document read back`,
      target: '0; every byte',
      measured: `${row.failed} of ${row.sent}; ${row.intact ? 'every byte' : 'NOT intact'}`,
      status: status(row.failed === 0 && row.intact),
    });
  }
  if (r.first_start) {
    const { first, reopen, origins } = r.first_start;
    const seeded = origins.every((o) => o === 'seeded');
    const timeRatio = first.start_ms / reopen.start_ms;
    const rssRatio = first.rss_mib / reopen.rss_mib;
    targets.push({
      what: `PGlite's first start (${origins.join(', ')}), spawn → listening`,
      target: '≤ 1.5 × a reopen, no initdb',
      measured: `${ms(first.start_ms)} = ${x(timeRatio)} a reopen (${ms(reopen.start_ms)})`,
      status: status(seeded && timeRatio <= 1.5),
    });
    targets.push({
      what: "PGlite's first start, resident a second after listening",
      target: '≤ 1.2 × a reopen',
      measured: `${mib(first.rss_mib)} = ${x(rssRatio)} a reopen (${mib(reopen.rss_mib)})`,
      status: status(rssRatio <= 1.2),
    });
  }
  for (const row of r.storms) {
    const limit = row.kind === 'pglite' ? 2000 : 1000;
    if (row.skipped) {
      targets.push({
        what: `Storm fully reclaimed, ${row.backend}`,
        target: `≤ ${limit / 1000} s`,
        measured: `skipped: ${row.skipped}`,
        status: 'skipped',
      });
      continue;
    }
    const s = row.result;
    targets.push({
      what: `Storm of ${s?.gateways ?? '?'} fully reclaimed, ${row.backend}`,
      target: `≤ ${limit / 1000} s`,
      measured: s ? ms(s.total_ms) : 'failed',
      status: status(s && s.errors.length === 0 ? s.total_ms <= limit : undefined),
    });
    targets.push({
      what: `Storm: lost allocations and double allocations, ${row.backend}`,
      target: '0 and 0',
      measured: s ? `${s.lost} and ${doubleAllocations(s)}${s.errors.length ? ` (${s.errors.length} errors)` : ''}` : 'failed',
      status: status(s ? s.lost === 0 && doubleAllocations(s) === 0 && s.errors.length === 0 : undefined),
    });
    const floor = sqlFloorFor(r, row);
    if (s && floor) {
      const ratio = s.calls_per_second / floor.statements_per_second;
      targets.push({
        what: `Protocol rate vs raw UPDATE … RETURNING, ${row.backend}`,
        target: '≥ 0.5 ×',
        measured: `${rate(s.calls_per_second)} vs ${rate(floor.statements_per_second)} = ${x(ratio)}${sqlBound(r, row, floor)}`,
        status: status(ratio >= 0.5),
      });
    }
  }
  for (const row of r.real_storms) {
    if (row.skipped || !row.real) continue;
    targets.push({
      what: `Real storm (${row.real.gateways} processes): lost allocations and double allocations, ${row.backend}`,
      target: '0 and 0',
      measured:
        `${row.real.lost} and ${doubleAllocations(row.real)}` +
        (row.real.timed_out ? ` (${row.real.timed_out} handovers not complete in time)` : '') +
        (row.real.retried ? ` (${row.real.retried} handovers failed first and were retried: allocation kept, epoch > 2)` : ''),
      status: status(row.real.lost === 0 && doubleAllocations(row.real) === 0 && row.real.timed_out === 0),
    });
  }
  const pgRows = r.storms.filter((row) => row.kind === 'postgres');
  if (pgRows.length && pgRows.every((row) => row.skipped)) {
    targets.push({ what: 'Ganymede on PostgreSQL, resident', target: '< 120 MB', measured: 'skipped: no PostgreSQL', status: 'skipped' });
  } else {
    for (const row of pgRows.filter((row) => row.rss_idle_mib)) {
      const worst = Math.max(maxOf(row.rss_idle_mib), maxOf(row.rss_after_mib));
      targets.push({
        what: `Ganymede on PostgreSQL (${row.replicas === 1 ? 'one replica' : `each of ${row.replicas}`}), resident`,
        target: '< 120 MB (114.4 MiB)',
        measured: `idle ${mib(maxOf(row.rss_idle_mib))}, after the storm ${mib(maxOf(row.rss_after_mib))}${settled(row)}`,
        status: status(Number.isFinite(worst) ? worst * 1.048576 < 120 : undefined),
      });
    }
  }
  return targets;
}

/** The one table: each figure with its floor from the same run and the ratio. */
function rows(r: BenchResults): string[][] {
  const out: string[][] = [];
  const b = r.handover;
  if (b) {
    out.push([
      '1. Handover time: signal → successor serving, the old process serving meanwhile (median / p95)',
      `${ms(b.handover_ms.median)} / ${ms(b.handover_ms.p95)}`,
      `gateway process start → listening: ${ms(b.floor_ms.median)} / ${ms(b.floor_ms.p95)}`,
      `${x(b.handover_ms.median / b.floor_ms.median)} / ${x(b.handover_ms.p95 / b.floor_ms.p95)}`,
    ]);
  }
  const hot = r.hot_restart;
  if (hot) {
    const floor = hot.floor_ms.median;
    for (const m of hot.modes) {
      const label = `1b. Hot restart under load, ${m.mode}, ${m.restarts} restarts`;
      const limits = hotRestartLimits(floor, m);
      const q = m.requests;
      out.push([
        `${label}: failed of sent (refused, reset, non-2xx, timed out, other)`,
        `${q.failed} of ${q.sent} (${q.refused}, ${q.reset}, ${q.non2xx}, ${q.timed_out}, ${q.other})`,
        '',
        '',
      ]);
      out.push([
        `${label}: longest gap between successful answers`,
        ms(m.max_gap_ms),
        `gateway process start → listening: ${ms(floor)}`,
        x(m.max_gap_ms / floor),
      ]);
      out.push([
        `${label}: latency p50 / p99 during restarts; steady`,
        `${ms(m.restart.p50_ms)} / ${ms(m.restart.p99_ms)}; ${ms(m.steady.p50_ms)} / ${ms(m.steady.p99_ms)}`,
        `2 × steady p99 + 0.1 × floor: ${ms(limits.restartP99Ms)}`,
        x(m.restart.p99_ms / limits.restartP99Ms),
      ]);
      const p = m.served_per_process;
      out.push([
        `${label}: requests served per process (${p.processes} processes): min / median / max`,
        `${p.min} / ${fmt(p.median)} / ${p.max}`,
        '',
        '',
      ]);
    }
  }
  const none = r.state_handover?.find((row) => row.document_bytes === 0);
  for (const row of r.state_handover ?? []) {
    const label = `1c. Hot restart with state, document of ${sizeLabel(row.document_bytes)}, ${row.restarts} restarts`;
    const against = row === none || !none;
    out.push([
      `${label}: handover median / p95`,
      `${ms(row.handover_ms.median)} / ${ms(row.handover_ms.p95)}`,
      against ? '' : `no state: ${ms(none.handover_ms.median)} / ${ms(none.handover_ms.p95)}`,
      against ? '' : `${plus(row.handover_ms.median - none.handover_ms.median)} = ${x(row.handover_ms.median / none.handover_ms.median)}`,
    ]);
    out.push([
      `${label}: longest gap between answers; latency p99 during restarts; failed`,
      `${ms(row.max_gap_ms)}; ${ms(row.restart_p99_ms)}; ${row.failed} of ${row.sent}`,
      against ? '' : `no state: ${ms(none.max_gap_ms)}; ${ms(none.restart_p99_ms)}`,
      against ? '' : `gap ${plus(row.max_gap_ms - none.max_gap_ms)}`,
    ]);
  }
  for (const row of r.state_throughput ?? []) {
    const label = `1d. Snapshots, ${row.backend}`;
    if ('skipped' in row) {
      out.push([label, `skipped: ${row.skipped}`, '', '']);
      continue;
    }
    const raw = `raw bytea INSERT of as many bytes: ${fmt(row.raw_bytea.mib_per_second)} MiB/s (${rate(row.raw_bytea.per_second)})`;
    for (const [what, figure] of [
      ['push', row.push],
      ['pull', row.pull],
    ] as const) {
      out.push([
        `${label}: ${what} of ${sizeLabel(row.snapshot_bytes)}, ${row.callers} organizations at once`,
        `${fmt(figure.mib_per_second)} MiB/s (${rate(figure.per_second)})`,
        raw,
        x(figure.mib_per_second / row.raw_bytea.mib_per_second),
      ]);
    }
  }
  if (b) {
    out.push([
      '2. Before the protocol: stop, restart idle, /gateway/start, served again (median; unserved all along)',
      ms(b.cold.cold_ms.median),
      `handover time: ${ms(b.handover_ms.median)}`,
      x(b.cold.cold_ms.median / b.handover_ms.median),
    ]);
  }
  const f = r.first_start;
  if (f) {
    out.push([
      `2b. PGlite's first start, new data directory from the seed (median of ${f.samples}): spawn → listening; resident`,
      `${ms(f.first.start_ms)}; ${mib(f.first.rss_mib)}`,
      `reopening it: ${ms(f.reopen.start_ms)}; ${mib(f.reopen.rss_mib)}`,
      `${x(f.first.start_ms / f.reopen.start_ms)}; ${x(f.first.rss_mib / f.reopen.rss_mib)}`,
    ]);
  }
  for (const row of r.storms) {
    const label = `3. Storm, ${r.sizes.stormGateways} simulated gateways, ${row.backend}`;
    if (row.skipped) {
      out.push([label, `skipped: ${row.skipped}`, '', '']);
      continue;
    }
    const s = row.result;
    if (!s) {
      out.push([label, 'failed', '', '']);
      continue;
    }
    const floor = sqlFloorFor(r, row);
    out.push([
      `${label}: all reclaimed; per gateway p50 / p99`,
      `${ms(s.total_ms)}; ${ms(s.reclaimed_after_ms.median)} / ${ms(s.reclaimed_after_ms.p99)}`,
      floor ? `${s.calls} calls at the raw UPDATE rate: ${ms((s.calls / floor.statements_per_second) * 1000)}` : '',
      floor ? x(s.total_ms / ((s.calls / floor.statements_per_second) * 1000)) : '',
    ]);
    out.push([
      `${label}: protocol calls/s; lost, double allocations`,
      `${rate(s.calls_per_second)}; ${s.lost}, ${doubleAllocations(s)}`,
      floor ? `raw UPDATE … RETURNING: ${rate(floor.statements_per_second)}` : '',
      floor ? x(s.calls_per_second / floor.statements_per_second) : '',
    ]);
    const alone = protocolSqlFor(r, row);
    if (floor && alone) {
      out.push([
        `${label}: the protocol's statements alone, restart and reclaim with no HTTP`,
        rate(alone.statements_per_second),
        `raw UPDATE … RETURNING: ${rate(floor.statements_per_second)}`,
        x(alone.statements_per_second / floor.statements_per_second),
      ]);
    }
    out.push([`${label}: audit histories by kind`, historiesOf(s), '', '']);
  }
  if (r.http_floor) {
    for (const row of r.storms.filter((row) => row.result)) {
      out.push([
        `4. Protocol calls/s vs a bare Fastify JSON route, ${row.backend}`,
        rate(row.result!.calls_per_second),
        `bare Fastify (autocannon, ${r.http_floor.connections} connections): ${rate(r.http_floor.requests_per_second)}`,
        x(row.result!.calls_per_second / r.http_floor.requests_per_second),
      ]);
    }
  }
  for (const row of r.real_storms) {
    const label = `3b. Storm, ${r.sizes.realGateways} real supervised gateways, ${row.backend}`;
    if (row.skipped) {
      out.push([label, `skipped: ${row.skipped}`, '', '']);
      continue;
    }
    const s = row.real;
    if (!s) {
      out.push([label, 'failed', '', '']);
      continue;
    }
    const startMs = b?.floor_ms.median ?? hot?.floor_ms.median;
    const cpuFloor = startMs === undefined ? Number.NaN : (s.gateways * startMs) / r.machine.cores;
    out.push([
      `${label}: all handed over; per gateway p50 / p99; lost, double allocations; retried`,
      `${ms(s.total_ms)}; ${ms(s.complete_after_ms.median)} / ${ms(s.complete_after_ms.p99)}; ${s.lost}, ${doubleAllocations(s)}; ${s.retried ?? '–'}`,
      startMs === undefined ? '' : `${s.gateways} process starts on ${r.machine.cores} cores: ${ms(cpuFloor)}`,
      startMs === undefined ? '' : x(s.total_ms / cpuFloor),
    ]);
    out.push([`${label}: audit histories by kind`, historiesOf(s), '', '']);
    if (s.cpu) {
      const c = s.cpu;
      out.push([
        `${label}: CPU until all handed over: a successor p50 / p99; all successors, supervisors, Ganymede; the machine`,
        `${ms(c.successor_ms.median)} / ${ms(c.successor_ms.p99)}; ${c.successors_s.toFixed(1)} s, ${c.supervisors_s.toFixed(1)} s, ${c.ganymede_s.toFixed(1)} s; ${c.machine_busy_s.toFixed(1)} s`,
        b?.successor_cpu_ms === undefined ? '' : `a successor's CPU in one handover: ${ms(b.successor_cpu_ms.median)}`,
        b?.successor_cpu_ms === undefined ? '' : x(c.successor_ms.median / b.successor_cpu_ms.median),
      ]);
    }
  }
  for (const row of r.storms.filter((row) => row.rss_idle_mib)) {
    const first = row.rss_first_start_mib === undefined ? '' : `first start (from the seed) ${mib(row.rss_first_start_mib)}, `;
    out.push([
      `5. Ganymede resident, ${row.backend}${row.replicas > 1 ? ' (largest)' : ''}: idle; after the storm${row.rss_settled_mib ? `; ${SETTLE_S} s later` : ''}`,
      `${first}${mib(maxOf(row.rss_idle_mib))}; ${mib(maxOf(row.rss_after_mib))}${row.rss_settled_mib ? `; ${mib(maxOf(row.rss_settled_mib))}` : ''}`,
      '',
      '',
    ]);
  }
  if (r.memory.gateway_process !== undefined) {
    out.push(['5. One gateway process (its supervisor)', `${mib(r.memory.gateway_process)} (${mib(r.memory.gateway_supervisor)})`, '', '']);
  }
  return out;
}

export function renderTable(r: BenchResults): string {
  const header = ['measure', 'figure', 'floor, same run', 'ratio'];
  const body = rows(r);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const targets = (r.targets ?? []).map((t) => `  ${t.status.toUpperCase().padEnd(7)} ${t.what}: ${t.measured} (target ${t.target})`);
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), '', 'targets:', ...targets].join('\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');
const mdTable = (header: string[], body: string[][]) =>
  [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...body.map((r) => `| ${r.map(cell).join(' | ')} |`)].join(
    '\n',
  );

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const analysis = readFileSync(new URL('./analysis.md', import.meta.url), 'utf8').trim();
  const stormDetails = r.storms
    .filter((row) => row.result)
    .map((row) => {
      const s = row.result!;
      return [
        row.backend,
        ms(s.total_ms),
        `${ms(s.reclaimed_after_ms.median)} / ${ms(s.reclaimed_after_ms.p99)}`,
        `${ms(s.sequence_ms.median)} / ${ms(s.sequence_ms.p99)}`,
        rate(s.calls_per_second),
        `${fmt(s.cpu_ms.ganymede)} / ${fmt(s.cpu_ms.clients)} / ${fmt(s.cpu_ms.postgres)} of ${fmt(s.cpu_ms.available)}`,
        `${s.lost} / ${doubleAllocations(s)}`,
      ];
    });
  const b = r.handover;
  const stages = b
    ? `**Where a handover's time goes** (from the gateway's and the supervisor's own log lines; the old process serves
throughout; the organization's route polled every ${POLL_INTERVAL_MS} ms):

${mdTable(
  ['stage (median of the restarts)', 'ms'],
  HANDOVER_STAGES.map(([key, what]) => [what, fmt(b.stages_ms[key])]),
)}
`
    : '';
  const hot = r.hot_restart;
  const hotDetails = hot ? hotRestartDetails(hot, m.cores) : '';
  const retriedRows = r.real_storms.flatMap((row) => [
    ...(row.real?.retried_lines ?? []).map((t) => [row.backend, String(t.gateways), t.lines]),
    ...(row.real?.lost_trails ?? []).map((trail) => [row.backend, '1 (lost)', `audit trail: ${trail}`]),
  ]);
  const retriedDetails = retriedRows.length
    ? `
**Real storms: the gateways whose handover failed first or did not complete** (each gateway's handover lines since
the signal, supervisor and processes, with epochs; how many gateways told each story):

${mdTable(['backend', 'gateways', 'lines'], retriedRows)}
`
    : '';
  return `# Benchmarks

Written by \`pnpm bench\` (scripts/bench/) on ${m.date.slice(0, 10)}${r.quick ? ' with `--quick` (a smoke run: small sizes, not a measurement)' : ''}; it took ${fmt(r.duration_s)} s.
Raw figures: [BENCHMARKS.json](BENCHMARKS.json). Every figure is compared with a floor measured in the same run:
these machines are noisy, so compare the ratios, not absolute times across runs.

## Machine

| | |
| --- | --- |
| CPU | ${m.cpu} |
| cores | ${m.cores} |
| memory | ${m.memory_gib} GiB |
| OS | ${m.os} |
| Node | ${m.node} |
| PostgreSQL | ${m.postgres ?? 'none reachable: its rows are skipped'} |
| load average at the start (1, 5, 15 min) | ${m.load_average_at_start.join(', ')} |
${r.cpu_hogs ? `| loaded on purpose | ${r.cpu_hogs} busy process(es) spinning through the run (\`--cpu-hog\`) |\n` : ''}| date | ${m.date} |
${(r.remeasured ?? []).map((again) => `| measured again: ${again.phases.join(', ')} | ${again.date}, load average ${again.load_average_at_start.join(', ')}, ${fmt(again.duration_s)} s |\n`).join('')}
## Results

${mdTable(['measure', 'figure', 'floor, same run', 'ratio'], rows(r))}
${r.errors.length ? `\n**Phases that failed:** ${r.errors.map((e) => `\`${e}\``).join('; ')}\n` : ''}
## Targets

${mdTable(
  ['target', 'goal', 'measured', 'status'],
  (r.targets ?? []).map((t) => [t.what, t.target, t.measured, t.status === 'met' ? '**met**' : t.status]),
)}

## Details

${stages}${hotDetails}${
    stormDetails.length
      ? `
**The simulated storms** (p50 / p99; CPU used during the storm by Ganymede / the benchmark's clients / PostgreSQL's
processes, of the machine's cores × the storm's wall time):

${mdTable(['backend', 'all reclaimed', 'reclaimed after (per gateway)', "one gateway's 2 calls", 'calls/s', 'CPU ms', 'lost / double allocations'], stormDetails)}
`
      : ''
  }${retriedDetails}
${analysis}

## Method

- **Processes.** Ganymede is the real \`ganymede serve\` (plain node running its bundle, log level info, stdout read by
  the benchmark), one per replica; PGlite in a data directory that was created by a first start (a copy of the
  seed \`pnpm build\` ships) and then reopened (as a server usually starts); PostgreSQL in a schema of its own, dropped after. Gateways are the real
  \`gateway supervise\` / \`gateway run\` CLIs.
- **1. Handover time.** One supervised gateway serving one organization, restarted ${r.sizes.restarts} times as
  \`gateway reload\` does it (reload marker, SIGHUP to the supervisor). A restart is a hot handover: the old process
  serves until its successor has reclaimed the allocation and accepts on the same socket, so this is not unserved
  time (1b measures that). Each sample: from the signal until the organization's traffic route (\`GET /orgs/:id\`,
  polled every ${POLL_INTERVAL_MS} ms) is answered 200 by the successor.
  **Floor**, one sample after each restart: the same CLI (\`gateway run\`, as the supervisor starts it) from spawn to
  its \`listening\` log line, with no Ganymede in reach (the gateway listens before it calls Ganymede).
- **1b. Hot restart under load.** One supervised gateway serving one organization under a steady load from a
  separate process (the test kit's \`startLoadProcess\`: ${hot?.clients ?? 4} clients, each sends \`GET /orgs/:id\`, waits for the
  answer, then ${hot?.interval_ms ?? 2} ms; nothing retried; ${fmt((hot?.timeout_ms ?? 5000) / 1000)} s and a request times out), reloaded ${r.sizes.hotRestarts ?? 30} times one
  after the other with \`gateway reload\` (the CLI command), once with a keep-alive connection per client and once
  with a new connection per request. Phase \`restart\`: from just before \`gateway reload\` runs until the
  supervisor's \`handover_complete\`, the old process's exit and then ${2 * (hot?.clients ?? 4)} more successful answers (the requests
  that waited in the socket's backlog for the successor: the old process can exit before they are answered);
  \`steady\` otherwise (${fmt((hot?.warmup_ms ?? 3000) / 1000)} s before the first restart, ${fmt((hot?.steady_ms ?? 1000) / 1000)} s after each). An outcome counts in the
  phase current when it became known. Failed: any request not
  answered 2xx (refused, reset, non-2xx, timed out, other). Longest gap: the longest time between two successful
  answers of any client. **Floor**: the gateway's cold process start as in 1, ${r.sizes.coldCycles} samples before each mode's load
  (no load running). Targets: no failed request; longest gap ≤ 0.1 × floor; p99 during restarts ≤ 2 × steady p99 +
  0.1 × floor.
- **1c. Hot restart with state.** As 1b (keep-alive only), ${r.sizes.stateRestarts ?? 10} restarts for each size of the organization's
  shared document (the built-in workload, Yjs): none, 1 MiB and 10 MiB of text, written by a real Yjs client
  before the restarts and autosaved. Each restart carries the state: the old process pushes it if it changed, the
  successor pulls the latest snapshot while it boots, the final snapshot goes from the old process to the successor
  over the supervisor at the drain and is restored before the successor accepts, which then pushes it as its own.
  **Floor**: the same figures with no state, same run. After each size's restarts a new client reads the document
  back: every byte must be there.
- **1d. Snapshot throughput.** 4 organizations, each claimed by a gateway of its own, push a 1 MiB snapshot (its
  JSON text as the gateway sends it, base64 in \`data\`) one push after another with compare-and-set, for
  ${fmt((r.sizes.sqlMs ?? 3000) / 1000)} s after a warm-up, through the gateway's typed client; then pull it as long. **Floor**: the database's raw
  \`bytea\` write rate: single-row INSERTs of as many bytes from as many callers through the database door Ganymede
  uses (PGlite: its one connection in a data directory; PostgreSQL: a pool of 10).
- **2. Before the protocol** (${r.sizes.coldCycles} cycles): the gateway stopped (SIGTERM: /gateway/stop, the allocation ends),
  started again (it comes up idle), then the organization's \`/gateway/start\` (Ganymede tells the gateway, which
  claims), until served. Machine time only: the user's page reload that triggered the last step is not counted.
- **2b. First start.** ${r.first_start?.samples ?? r.sizes.firstStarts ?? 5} new PGlite data directories, each started with \`ganymede serve\` (the
  directory is copied from the seed \`pnpm build\` made: no initdb), stopped, and started again (a reopen). Each
  start: from just before the spawn to its \`Server listening\` line; resident a second later. Medians. **Floor**:
  the reopens, same run. Targets: first start ≤ 1.5 × a reopen's time and ≤ 1.2 × its resident size.
- **3. Storm, simulated.** ${r.sizes.stormGateways} gateways registered through the admin API, each ready, allocated and claimed
  (epoch 1), outside the timing. Then all restart at once: each does, with the real typed client
  (\`createGanymedeClient\`), what a restarted gateway does: \`/gateway/restart\` (the old process) then
  \`/gateway/reclaim\` (the new one: config and ready in one call), at most ${r.sizes.stormConcurrency} gateways in flight, from this process.
  With several replicas, each call of a gateway goes to the next replica. (Simulated gateways do not renew their
  liveness leases: Ganymede runs with one-hour leases here.) Timed until every allocation is back at
  epoch 2. Then every allocation and its audit trail are checked through the admin API: **lost** = not active at
  epoch 2 on its gateway and organization; then the **audit histories by kind** (below).
- **3b. Storm, real.** ${r.sizes.realGateways} \`gateway supervise\` processes (each with its child), each serving an organization,
  all reloaded at once (hot handovers: each old process serves until its successor accepts); timed until every
  supervisor logged \`handover_complete\`. **Lost** = its allocation no longer active for its organization on its
  gateway; the **audit histories by kind** (below); **retried** = handovers whose successor failed first (not ready
  within the handover timeout, the gateway's default 30 s): the old process withdrew the restart and served on,
  the supervisor tried again, the allocation ends above epoch 2 (its history is an "other" one, listed). Its floor:
  that many process starts (the handover floor's median) spread over the cores.
- **Audit histories by kind** (3 and 3b; scripts/bench/histories.ts), each allocation's events after the storm:
  **clean reclaim** = allocated → restart_requested → reclaimed; **crash reclaim** = allocated → reclaimed with no
  restart_requested (the successor reclaimed a crashed process's allocation: the old process ran out of its
  shutdown budget, or died, before it asked for the restart); **other** = anything else, each trail listed with its
  count. **Double allocation** = an organization with two live allocations (from the pool's status): must be 0.
- **4. Floors.** HTTP: a bare Fastify JSON POST route (no contract, validation, logging or database), loaded by
  autocannon from another process (${r.http_floor?.connections ?? 10} connections, ${r.sizes.autocannonSeconds} s). SQL: a single-row
  \`UPDATE … RETURNING\` through the same database door Ganymede uses: PGlite's one connection in a data directory;
  PostgreSQL with a pool of Ganymede's default size (10) and as many concurrent callers, after a warm-up.
- **5. Memory.** Resident set size (\`VmRSS\`) of each Ganymede process idle (a second after it listens) and after
  its storm's check; of a gateway process (the supervised child, serving) and of its supervisor.
`;
}

/** The hot restart's figures in full, one column per mode, and where any request failed. */
function hotRestartDetails(hot: HotRestartResult, cores: number): string {
  const cols = hot.modes;
  const row = (what: string, f: (m: HotRestartMode) => string) => [what, ...cols.map(f)];
  const table = mdTable(
    ['hot restart under load', ...cols.map((m) => m.mode)],
    [
      row('restarts (handover_failed, retried by the supervisor)', (m) => `${m.restarts} (${m.handovers_failed})`),
      row('requests sent; ok', (m) => `${m.requests.sent}; ${m.requests.ok}`),
      row('failed: refused, reset, non-2xx, timed out, other', (m) => {
        const q = m.requests;
        return `${q.refused}, ${q.reset}, ${q.non2xx}, ${q.timed_out}, ${q.other}`;
      }),
      row('longest gap between successful answers (where)', (m) => `${ms(m.max_gap_ms)} (${m.max_gap_window})`),
      row('longest gap in the warm-up, before any restart', (m) => ms(m.warmup_max_gap_ms)),
      row('during restarts: answers; p50 / p99', (m) => `${m.restart.ok}; ${ms(m.restart.p50_ms)} / ${ms(m.restart.p99_ms)}`),
      row('steady: answers; p50 / p99', (m) => `${m.steady.ok}; ${ms(m.steady.p50_ms)} / ${ms(m.steady.p99_ms)}`),
      row('slowest answer', (m) => ms(m.latency_max_ms)),
      row(
        'handover_ms (supervisor: handover started → successor accepts), median / p95',
        (m) => `${ms(m.handover_ms.median)} / ${ms(m.handover_ms.p95)}`,
      ),
      row(
        'restart phase (reload command → old process exited and successor answering), median / p95',
        (m) => `${ms(m.restart_window_ms.median)} / ${ms(m.restart_window_ms.p95)}`,
      ),
      row('processes that served; requests each, min / median / max', (m) => {
        const p = m.served_per_process;
        return `${p.processes}; ${p.min} / ${fmt(p.median)} / ${p.max}`;
      }),
      row("load process: a command's round trip (phase, snapshot), median / max", (m) =>
        m.load_command_ms ? `${ms(m.load_command_ms.median)} / ${ms(m.load_command_ms.max)}` : '–',
      ),
      row(
        'allocation: epoch first → last',
        (m) => `${m.epochs[0] ?? '–'} → ${m.epochs[1] ?? '–'}${m.allocation_kept ? ', same allocation' : ', NOT kept'}`,
      ),
    ],
  );
  const failures = cols.flatMap((m) =>
    m.failure_windows.map((w) => [
      m.mode,
      w.window,
      `${fmt(w.at_ms / 1000, 1)} s`,
      String(w.failed),
      Object.entries(w.errors)
        .map(([code, n]) => `${code} × ${n}`)
        .join(', '),
    ]),
  );
  return `
**Hot restart under load** (floor: the gateway's cold process start, median ${ms(hot.floor_ms.median)}, p95 ${ms(hot.floor_ms.p95)}, ${hot.floor_ms.n} samples;
the machine's load average ${hot.load_average ? hot.load_average.map((l) => l.toFixed(1)).join(' → ') : '–'} over the phase, on ${cores} cores):

${table}
${
  failures.length
    ? `
**Where requests failed** (per window of the run; codes of the whole window):

${mdTable(['mode', 'window', 'load time at its end', 'failed', 'codes'], failures)}
`
    : ''
}`;
}
