/** `ganymede status`: the pool as a table, once or redrawn on an interval (`--watch`) until Ctrl-C. */
import type { PoolEntry } from '@ganymede/contracts';

const HEADER = ['gateway', 'state', 'organization', 'epoch', 'lease age', 'since'];

export function poolTable(gateways: PoolEntry[], leaseSeconds: number): string {
  const rows = gateways.map((g) => [
    g.gateway_id,
    g.ready ? g.state : `${g.state} (not ready)`,
    g.organization_id ?? '-',
    String(g.epoch ?? '-'),
    g.lease_age_seconds === null ? '-' : `${g.lease_age_seconds.toFixed(1)}s / ${leaseSeconds}s`,
    g.since,
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [HEADER, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Clears a terminal and moves to its top left. */
const CLEAR = '\x1b[2J\x1b[H';

/**
 * Draws `frame()` now and every `intervalMs` after the previous one finished, until SIGINT or SIGTERM (then resolves).
 * On a terminal each frame replaces the last; piped, frames follow each other under a time line. A frame that
 * fails with an error `keepGoing` accepts (Ganymede unreachable for a while) is shown in place of the table. With
 * `json`, one line of JSON per frame and nothing else.
 */
export async function watch(
  frame: () => Promise<string>,
  options: { intervalMs: number; out: NodeJS.WriteStream; json: boolean; keepGoing: (error: unknown) => boolean },
): Promise<void> {
  let stopped = false;
  let wake: () => void = () => undefined;
  const stop = () => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (!stopped) {
      let text: string;
      try {
        text = await frame();
      } catch (error) {
        if (!options.keepGoing(error)) throw error;
        const { code, message } = error as { code?: string; message: string };
        text = options.json ? JSON.stringify({ error: code, message }) : `${message}\n(retrying every ${options.intervalMs} ms)`;
      }
      if (options.json) options.out.write(`${text}\n`);
      else {
        const heading = `${new Date().toISOString()}  every ${options.intervalMs} ms, Ctrl-C to stop`;
        options.out.write(`${options.out.isTTY ? CLEAR : '\n'}${heading}\n${text}\n`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
