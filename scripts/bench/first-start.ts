/**
 * PGlite's first start against a reopen, in the same run: `ganymede serve` on a new data directory (copied from
 * the seed `pnpm build` ships, no initdb), stopped, then started again on it. Each sample: from just before the
 * spawn to the `Server listening` log line, and the resident size a second later (as the storms' idle figure).
 */
import { rm } from 'node:fs/promises';
import { findFreePort, startGanymedeProcess, stopProcess, tempDir } from '@ganymede/testkit';
import { rssMiB } from './machine.js';
import { track } from './processes.js';
import { median, sleep } from './stats.js';

export interface StartFigures {
  /** Spawn → listening, ms (median). */
  start_ms: number;
  /** Resident a second after listening, MiB (median). */
  rss_mib: number;
}

export interface FirstStartResult {
  samples: number;
  /** How Ganymede said it opened each new directory (`seeded` unless the seed is missing). */
  origins: string[];
  first: StartFigures;
  reopen: StartFigures;
}

interface Sample {
  ms: number;
  rss: number;
  origin: unknown;
}

/** One start on `dataDir`, measured, then stopped. */
async function timedStart(dataDir: string): Promise<Sample> {
  const port = await findFreePort();
  const begin = performance.now();
  const g = await startGanymedeProcess({ dataDir, port, embedded: true, env: { GANYMEDE_LOG_LEVEL: 'info' } });
  const ms = performance.now() - begin;
  const proc = track(g.proc);
  await sleep(1_000);
  const rss = rssMiB(proc.pid);
  await stopProcess(proc, 'SIGTERM');
  return { ms, rss, origin: proc.logs.find((l) => typeof l.origin === 'string')?.origin };
}

const figures = (xs: Sample[]): StartFigures => ({ start_ms: median(xs.map((s) => s.ms)), rss_mib: median(xs.map((s) => s.rss)) });

/** `samples` new data directories, each started (first start) then started again (reopen). */
export async function firstStart(samples: number): Promise<FirstStartResult> {
  const first: Sample[] = [];
  const reopen: Sample[] = [];
  for (let i = 0; i < samples; i++) {
    const dataDir = await tempDir('ganymede-first-start');
    try {
      first.push(await timedStart(dataDir));
      reopen.push(await timedStart(dataDir));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  return { samples, origins: first.map((s) => String(s.origin)), first: figures(first), reopen: figures(reopen) };
}
