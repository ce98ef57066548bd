/**
 * Failpoints: named places where a process can be made to die on purpose, so tests can kill it between
 * any two steps of the protocol (before a statement, after it committed but before the answer left).
 * Armed only by the `FAILPOINTS` environment variable (comma-separated names); unarmed, a failpoint is a
 * map lookup and nothing else.
 *
 * `name` dies there (SIGKILL, no cleanup). `name=stop` pauses there instead, once (SIGSTOP to itself): the process
 * resumes where it was when a test sends SIGCONT, which is how a test makes a process stale at an exact step.
 */
const armed = new Map(
  (process.env.FAILPOINTS ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name, action] = entry.split('=');
      return [name!, action === 'stop' ? 'stop' : 'kill'] as const;
    }),
);

/** Dies (or pauses, once) here when `name` is armed. */
export function failpoint(name: string): void {
  const action = armed.get(name);
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'stop') {
    armed.delete(name);
    process.kill(process.pid, 'SIGSTOP');
  }
}
