/**
 * Every process the benchmark starts is tracked, so that none outlives it: whatever happens (a phase that
 * throws, Ctrl-C), they are killed before it exits.
 */
import type { LoggedProcess } from '@ganymede/testkit';

const live = new Set<LoggedProcess>();

export function track<T extends LoggedProcess>(p: T): T {
  live.add(p);
  void p.exited.then(() => live.delete(p));
  return p;
}

export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

process.once('exit', () => {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\nbench: ${signal}: stopping every process it started`);
    void killAll().finally(() => process.exit(130));
  });
}
