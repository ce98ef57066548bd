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
