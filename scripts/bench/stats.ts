/** Order statistics of samples (milliseconds, counts). Percentiles by linear interpolation between ranks. */
import { percentile } from '@ganymede/testkit/stats';

const ascending = (samples: readonly number[]) => [...samples].sort((a, b) => a - b);

export const median = (samples: readonly number[]) => percentile(ascending(samples), 50);

export interface Summary {
  n: number;
  min: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = ascending(samples);
  return {
    n: samples.length,
    min: Math.min(...samples),
    median: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: Math.max(...samples),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

/** Runs `task` over `items` with at most `limit` in flight; answers the results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `n` rounded for a table: 1 decimal under 10, none above. */
export const fmt = (n: number | undefined | null, digits?: number) =>
  n === undefined || n === null || Number.isNaN(n) ? '–' : n.toFixed(digits ?? (Math.abs(n) < 10 ? 1 : 0));

/** Calls per second, and the bytes they carried (each `bytes`) in MiB/s. */
export interface Rate {
  count: number;
  per_second: number;
  mib_per_second: number;
}

/**
 * Runs `call` from `callers` concurrent callers, each call after the previous one's answer, for `durationMs`,
 * after a warm-up (a quarter of it, at most 500 ms: connections open, statements prepared). `call` gets its
 * caller's number and how many calls that caller made before it.
 */
export async function callRate(
  options: { callers: number; durationMs: number; bytes?: number },
  call: (caller: number, index: number) => Promise<unknown>,
): Promise<Rate> {
  const run = async (ms: number) => {
    let count = 0;
    const deadline = performance.now() + ms;
    await Promise.all(
      Array.from({ length: options.callers }, async (_, c) => {
        for (let i = 0; performance.now() < deadline; i++) {
          await call(c, i);
          count++;
        }
      }),
    );
    return count;
  };
  await run(Math.min(500, options.durationMs / 4));
  const t0 = performance.now();
  const count = await run(options.durationMs);
  const seconds = (performance.now() - t0) / 1000;
  return { count, per_second: count / seconds, mib_per_second: (count * (options.bytes ?? 0)) / (1024 * 1024) / seconds };
}
