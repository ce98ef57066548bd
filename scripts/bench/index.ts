/**
 * `pnpm bench`: measures the restart protocol with real processes, prints a table, and writes BENCHMARKS.md and
 * BENCHMARKS.json (raw figures) at the repository's root. Every figure is compared with a floor measured in the
 * same run; absolute times from different runs are not comparable (these machines are noisy).
 *
 *   pnpm bench [--quick] [--only handover,hot-restart,state,first-start,storm,real-storm,floors]   (--only: those phases alone, e.g.
 *                                                        while working on one; BENCHMARKS.md then has only their rows)
 *   pnpm bench --only state --merge          (measure those phases again and put their figures into the saved
 *                                            BENCHMARKS.json, keeping the others; BENCHMARKS.md says which were)
 *   pnpm bench --render BENCHMARKS.json     (write BENCHMARKS.md again from saved figures, e.g. after editing analysis.md)
 *   pnpm bench --only real-storm --cpu-hog 2 (N busy processes spinning for the whole run, as a loaded machine:
 *                                            how the storms fare when the cores are not theirs; the report says so)
 *   pnpm bench --only storm --profile DIR   (the storms' Ganymede processes write V8 CPU profiles into DIR, one per
 *                                            process, for Chrome DevTools or `pnpm tsx scripts/bench/profile-top.ts DIR`)
 *
 * PostgreSQL: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test; where nothing answers there, its rows say
 * "skipped: no PostgreSQL". Only loopback addresses are used; every loop is bounded in count and time; every
 * process started is stopped before the end.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { redactUrl, spawnLogged } from '@ganymede/testkit';
import { bareFastify, protocolStatementRate, sqlFloorPglite, sqlFloorPostgres } from './floors.js';
import { type Backend, backendLabel, probePostgres, startBenchGanymede } from './ganymede.js';
import { firstStart } from './first-start.js';
import { handoverTime } from './handover.js';
import { hotRestart } from './hot-restart.js';
import { machine } from './machine.js';
import { killAll, track } from './processes.js';
import { realStorm } from './real-storm.js';
import { type BenchResults, evaluateTargets, historiesOf, renderMarkdown, renderTable, SETTLE_S, type StormRow } from './report.js';
import { sleep } from './stats.js';
import { MIB, stateHandover, stateThroughput } from './state.js';
import { restartStorm } from './storm.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROFILER = fileURLToPath(new URL('./cpu-profile.mjs', import.meta.url));
const PHASES = ['handover', 'hot-restart', 'state', 'first-start', 'storm', 'real-storm', 'floors'] as const;
type Phase = (typeof PHASES)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: ROOT },
    render: { type: 'string' },
    merge: { type: 'boolean', default: false },
    profile: { type: 'string' },
    'cpu-hog': { type: 'string', default: '0' },
  },
});
const only = new Set((values.only?.split(',') ?? PHASES) as Phase[]);
const unknown = [...only].filter((p) => !PHASES.includes(p));
if (unknown.length) {
  console.error(`bench: unknown phase ${unknown.join(', ')}; the phases are ${PHASES.join(', ')}`);
  process.exit(2);
}
const quick = values.quick;

/** The figures each phase writes, for `--merge`. */
const PHASE_KEYS: Record<Phase, (keyof BenchResults)[]> = {
  handover: ['handover'],
  'hot-restart': ['hot_restart'],
  state: ['state_handover', 'state_throughput'],
  'first-start': ['first_start'],
  storm: ['storms', 'sql_floor_pglite', 'sql_floor_postgres', 'protocol_sql_pglite', 'protocol_sql_postgres'],
  'real-storm': ['real_storms'],
  floors: ['http_floor'],
};

/** `fresh`'s figures of the phases in `only`, put into `saved` (the rest kept); the run is noted in `remeasured`. */
function merged(saved: BenchResults, fresh: BenchResults): BenchResults {
  const out: BenchResults = { ...saved, memory: { ...saved.memory } };
  for (const phase of only) for (const key of PHASE_KEYS[phase]) Object.assign(out, { [key]: fresh[key] });
  if (only.has('handover')) Object.assign(out.memory, fresh.memory);
  out.errors = [...saved.errors, ...fresh.errors];
  out.sizes = { ...saved.sizes, ...fresh.sizes };
  out.remeasured = [
    ...(saved.remeasured ?? []),
    {
      phases: [...only],
      date: fresh.machine.date,
      load_average_at_start: fresh.machine.load_average_at_start,
      duration_s: fresh.duration_s ?? 0,
    },
  ];
  out.targets = evaluateTargets(out);
  return out;
}

/** How much of each. `--quick` is a smoke run of every phase (a minute or two), not a measurement. */
const SIZES = quick
  ? {
      restarts: 5,
      coldCycles: 3,
      hotRestarts: 5,
      stateRestarts: 3,
      firstStarts: 2,
      stormGateways: 200,
      stormConcurrency: 100,
      realGateways: 8,
      autocannonSeconds: 2,
      sqlMs: 1000,
    }
  : {
      restarts: 30,
      coldCycles: 10,
      hotRestarts: 30,
      stateRestarts: 10,
      firstStarts: 5,
      stormGateways: 1000,
      stormConcurrency: 100,
      realGateways: 50,
      autocannonSeconds: 5,
      sqlMs: 3000,
    };

/**
 * The hot restart's load: 4 clients, each a request 2 ms after its previous answer; 5 s and a request times out.
 * Steady: 3 s before the first restart, 1 s after each (a new process is slower for its first few hundred ms).
 */
const HOT_LOAD = { clients: 4, intervalMs: 2, timeoutMs: 5_000, warmupMs: 3_000, steadyMs: 1_000 };

/** Organizations pushing (and pulling) their snapshots at once in the throughput phase. */
const STATE_CALLERS = 4;

const benchStart = performance.now();
const elapsed = () => `${((performance.now() - benchStart) / 1000).toFixed(0).padStart(4)} s`;
const say = (text: string) => console.log(`[${elapsed()}] ${text}`);

async function main(): Promise<number> {
  if (values.render) {
    const saved = JSON.parse(await readFile(values.render, 'utf8')) as BenchResults;
    await writeFile(`${values.out.endsWith('/') ? values.out : `${values.out}/`}BENCHMARKS.md`, renderMarkdown(saved));
    say(`rendered BENCHMARKS.md from ${values.render}`);
    return 0;
  }
  const pgUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
  const pgVersion = await probePostgres(pgUrl);
  const results: BenchResults = {
    machine: machine(pgVersion),
    quick,
    sizes: SIZES,
    postgres_url: pgVersion ? redactUrl(pgUrl) : null,
    storms: [],
    real_storms: [],
    errors: [],
    memory: {},
  };
  say(`machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memory_gib} GiB, Node ${results.machine.node}`);
  const hogs = Number(values['cpu-hog']);
  if (hogs > 0) {
    results.cpu_hogs = hogs;
    for (let i = 0; i < hogs; i++) track(spawnLogged(process.execPath, ['-e', 'for (;;) {}']));
    say(`${hogs} busy process(es) spinning for the whole run`);
  }
  say(pgVersion ? `PostgreSQL ${pgVersion} at ${redactUrl(pgUrl)}` : `no PostgreSQL at ${redactUrl(pgUrl)}: its rows are skipped`);
  const backends: Backend[] = [
    { kind: 'pglite' },
    { kind: 'postgres', url: pgUrl, replicas: 1 },
    { kind: 'postgres', url: pgUrl, replicas: 3 },
  ];
  const available = (b: Backend) => b.kind === 'pglite' || pgVersion !== null;

  /** Runs one phase; a failure is recorded (and reported) and the next phase still runs. */
  async function phase(name: string, run: () => Promise<void>) {
    say(`${name} …`);
    try {
      await run();
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      results.errors.push(`${name}: ${message}`);
      say(`${name} FAILED: ${message}`);
      await killAll();
    }
  }

  if (only.has('handover')) {
    await phase(`1-2. handover time (${SIZES.restarts} restarts) and cold path (${SIZES.coldCycles} cycles), PGlite`, async () => {
      const g = await startBenchGanymede({ kind: 'pglite' }, { reopen: true });
      try {
        results.handover = await handoverTime(g, { restarts: SIZES.restarts, coldCycles: SIZES.coldCycles });
        results.memory.gateway_process = results.handover.gateway_rss_mib;
        results.memory.gateway_supervisor = results.handover.supervisor_rss_mib;
        say(
          `   handover median ${results.handover.handover_ms.median.toFixed(0)} ms, floor ${results.handover.floor_ms.median.toFixed(0)} ms; cold path ${results.handover.cold.cold_ms.median.toFixed(0)} ms`,
        );
      } finally {
        await g.close();
      }
    });
  }

  if (only.has('hot-restart')) {
    const { clients, intervalMs } = HOT_LOAD;
    await phase(
      `1b. hot restart under load (${clients} clients every ${intervalMs} ms; ${SIZES.hotRestarts} restarts with keep-alive, ${SIZES.hotRestarts} with a connection per request), PGlite`,
      async () => {
        const g = await startBenchGanymede({ kind: 'pglite' }, { reopen: true });
        try {
          results.hot_restart = await hotRestart(g, {
            ...HOT_LOAD,
            restarts: SIZES.hotRestarts,
            floorSamples: SIZES.coldCycles,
            progress: say,
          });
        } finally {
          await g.close();
        }
      },
    );
  }

  if (only.has('state')) {
    const sizes = [0, MIB, 10 * MIB];
    await phase(
      `1c. hot restart with the organization's state (documents of 0, 1 and 10 MiB; ${SIZES.stateRestarts} restarts each), PGlite`,
      async () => {
        const g = await startBenchGanymede({ kind: 'pglite' }, { reopen: true });
        try {
          results.state_handover = await stateHandover(g, { ...HOT_LOAD, restarts: SIZES.stateRestarts, sizes, progress: say });
        } finally {
          await g.close();
        }
      },
    );
    results.state_throughput = [];
    for (const backend of backends.slice(0, 2)) {
      const label = backendLabel(backend);
      if (!available(backend)) {
        results.state_throughput.push({ backend: label, skipped: 'no PostgreSQL' });
        continue;
      }
      await phase(
        `1d. snapshot push and pull throughput (1 MiB, ${STATE_CALLERS} organizations) vs raw bytea writes, ${label}`,
        async () => {
          const g = await startBenchGanymede(backend, { reopen: true });
          try {
            const floor = backend.kind === 'pglite' ? { kind: 'pglite' as const } : { kind: 'postgres' as const, url: backend.url };
            const row = await stateThroughput(g, floor, { callers: STATE_CALLERS, snapshotBytes: MIB, durationMs: SIZES.sqlMs });
            results.state_throughput!.push({ backend: label, ...row });
            say(
              `   push ${row.push.mib_per_second.toFixed(0)} MiB/s, pull ${row.pull.mib_per_second.toFixed(0)} MiB/s; raw bytea ${row.raw_bytea.mib_per_second.toFixed(0)} MiB/s`,
            );
          } finally {
            await g.close();
          }
        },
      );
    }
  }

  if (only.has('first-start')) {
    await phase(`2b. PGlite's first start (from the seed) vs reopening, ${SIZES.firstStarts} new data directories`, async () => {
      const f = (results.first_start = await firstStart(SIZES.firstStarts));
      say(
        `   first start ${f.first.start_ms.toFixed(0)} ms, ${f.first.rss_mib.toFixed(0)} MiB; reopen ${f.reopen.start_ms.toFixed(0)} ms, ${f.reopen.rss_mib.toFixed(0)} MiB (${f.origins.join(', ')})`,
      );
    });
  }

  if (only.has('storm')) {
    for (const backend of backends) {
      const label = backendLabel(backend);
      const row: StormRow = { backend: label, kind: backend.kind, replicas: backend.kind === 'postgres' ? backend.replicas : 1 };
      results.storms.push(row);
      if (!available(backend)) {
        row.skipped = 'no PostgreSQL';
        continue;
      }
      await phase(`3. restart storm, ${SIZES.stormGateways} simulated gateways, ${label}`, async () => {
        // The simulated gateways do not renew their liveness leases (the storm is about the restart protocol):
        // leases long enough not to lapse while 1,000 of them are set up.
        const profile = values.profile ? { NODE_OPTIONS: `--import=${PROFILER}`, BENCH_PROFILE_DIR: resolve(values.profile) } : {};
        const g = await startBenchGanymede(backend, {
          reopen: true,
          connections: 32,
          env: { GANYMEDE_LEASE_SECONDS: '3600', ...profile },
        });
        try {
          await sleep(1_000);
          row.rss_first_start_mib = g.firstStartRss;
          row.rss_idle_mib = g.rss();
          row.result = await restartStorm(g, { count: SIZES.stormGateways, concurrency: SIZES.stormConcurrency });
          row.rss_after_mib = g.rss();
          await sleep(SETTLE_S * 1000);
          row.rss_settled_mib = g.rss();
          say(
            `   all reclaimed in ${row.result.total_ms.toFixed(0)} ms, ${row.result.calls_per_second.toFixed(0)} calls/s, lost ${row.result.lost}; ${historiesOf(row.result)}`,
          );
        } finally {
          await g.close();
        }
      });
    }
    await phase("4. SQL floor: single-row UPDATE … RETURNING, and the protocol's statements alone", async () => {
      results.sql_floor_pglite = await sqlFloorPglite(SIZES.sqlMs);
      results.protocol_sql_pglite = await protocolStatementRate({ kind: 'pglite' }, SIZES.sqlMs);
      if (pgVersion) {
        results.sql_floor_postgres = await sqlFloorPostgres(pgUrl, SIZES.sqlMs);
        results.protocol_sql_postgres = await protocolStatementRate({ kind: 'postgres', url: pgUrl }, SIZES.sqlMs);
      }
    });
  }

  if (only.has('real-storm')) {
    for (const backend of [backends[0]!, backends[2]!]) {
      const label = backendLabel(backend);
      const row: StormRow = { backend: label, kind: backend.kind, replicas: backend.kind === 'postgres' ? backend.replicas : 1 };
      results.real_storms.push(row);
      if (!available(backend)) {
        row.skipped = 'no PostgreSQL';
        continue;
      }
      await phase(`3b. restart storm, ${SIZES.realGateways} real supervised gateways, ${label}`, async () => {
        const g = await startBenchGanymede(backend, { reopen: true });
        try {
          row.real = await realStorm(g, { count: SIZES.realGateways, timeoutMs: 180_000 });
          row.rss_after_mib = g.rss();
          say(`   all reclaimed in ${row.real.total_ms.toFixed(0)} ms, lost ${row.real.lost}; ${historiesOf(row.real)}`);
        } finally {
          await g.close();
        }
      });
    }
  }

  if (only.has('floors')) {
    await phase('4. HTTP floor: bare Fastify JSON route (autocannon)', async () => {
      results.http_floor = await bareFastify({ connections: 10, durationSeconds: SIZES.autocannonSeconds });
    });
  }

  results.duration_s = (performance.now() - benchStart) / 1000;
  results.targets = evaluateTargets(results);
  console.log(`\n${renderTable(results)}\n`);
  const outDir = values.out.endsWith('/') ? values.out : `${values.out}/`;
  const written = values.merge ? merged(JSON.parse(await readFile(`${outDir}BENCHMARKS.json`, 'utf8')) as BenchResults, results) : results;
  await writeFile(`${outDir}BENCHMARKS.json`, `${JSON.stringify(written, null, 2)}\n`);
  await writeFile(`${outDir}BENCHMARKS.md`, renderMarkdown(written));
  say(`wrote ${outDir}BENCHMARKS.md and ${outDir}BENCHMARKS.json`);
  if (results.errors.length) say(`${results.errors.length} phase(s) failed:\n  ${results.errors.join('\n  ')}`);
  return results.errors.length ? 1 : 0;
}

main().then(
  async (code) => {
    await killAll();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error(error);
    await killAll();
    process.exit(1);
  },
);
