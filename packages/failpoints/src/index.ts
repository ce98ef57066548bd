/**
 * Failpoints: named places where a process can be made to die on purpose, so tests can kill it between
 * any two steps of the protocol (before a statement, after it committed but before the answer left).
 * Armed only by the `FAILPOINTS` environment variable (comma-separated names); unarmed, a failpoint is a
 * set lookup and nothing else.
 */
const armed = new Set(
  (process.env.FAILPOINTS ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean),
);

/** Dies here, at once and without cleanup (SIGKILL), when `name` is armed. */
export function failpoint(name: string): void {
  if (armed.has(name)) process.kill(process.pid, 'SIGKILL');
}
