/**
 * A child process whose JSON log lines are collected as they come, so that tests, the demo and the
 * benchmark can await the line that says what they wait for instead of sleeping.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One log line: pino's fields (level, time, msg, pid, …) and whatever else the process logs. */
export interface LogRecord {
  level?: string | number;
  time?: string | number;
  pid?: number;
  msg?: string;
  event?: string;
  [field: string]: unknown;
}

/** When a line was logged, in epoch ms: Ganymede logs a number, the gateway an ISO time; NaN without one. */
export const logTime = (r: LogRecord | undefined) => (r?.time === undefined ? Number.NaN : new Date(r.time).getTime());

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LoggedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every log line so far, in order. Lines that are not JSON appear as `{ msg: line }`. */
  readonly logs: LogRecord[];
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /**
   * The first log line matching, at index `from` or later (default 0: lines already seen count).
   * Rejects after `timeoutMs` (default 15 s) or when the process exits without such a line.
   */
  waitForLog(match: (record: LogRecord) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<LogRecord>;
  /** Resolves when the process exited. */
  readonly exited: Promise<ProcessExit>;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL if still running, then wait for the exit. */
  kill(): Promise<ProcessExit>;
}

export interface SpawnLoggedOptions {
  /** Environment added to (and overriding) this process's. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also copy the child's output to this process's stdout/stderr (debugging). */
  echo?: boolean;
}

export function spawnLogged(file: string, args: readonly string[], options: SpawnLoggedOptions = {}): LoggedProcess {
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${file} ${args.join(' ')}`);
  const logs: LogRecord[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };

  createInterface({ input: child.stdout }).on('line', (line) => {
    if (options.echo) process.stdout.write(`${line}\n`);
    let record: LogRecord;
    try {
      const parsed: unknown = JSON.parse(line);
      record = parsed !== null && typeof parsed === 'object' ? (parsed as LogRecord) : { msg: line };
    } catch {
      record = { msg: line };
    }
    logs.push(record);
    notify();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (options.echo) process.stderr.write(chunk);
    stderr += chunk;
  });

  let exitedWith: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    // 'close': the output pipes are drained too, so every log line has been seen.
    child.once('close', (code, signal) => {
      exitedWith = { code, signal };
      resolve(exitedWith);
      notify();
    });
  });

  const describe = () =>
    `pid ${child.pid}; last log lines:\n${logs
      .slice(-15)
      .map((r) => JSON.stringify(r))
      .join('\n')}\nstderr: ${stderr.slice(-2000)}`;

  const waitForLog: LoggedProcess['waitForLog'] = (match, { from = 0, timeoutMs = 15_000 } = {}) =>
    new Promise((resolve, reject) => {
      let index = from;
      const check = () => {
        for (; index < logs.length; index++) {
          if (match(logs[index]!)) {
            done();
            resolve(logs[index]!);
            return;
          }
        }
        if (exitedWith) {
          done();
          reject(new Error(`process exited (${JSON.stringify(exitedWith)}) before the awaited log line; ${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching log line within ${timeoutMs} ms; ${describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return {
    child,
    pid: child.pid,
    logs,
    stderr: () => stderr,
    waitForLog,
    exited,
    signal: (signal) => {
      if (!exitedWith) child.kill(signal);
    },
    kill: () => {
      if (!exitedWith) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Sends `signal` unless the process already exited, and waits for the exit. */
export async function stopProcess(p: LoggedProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<ProcessExit> {
  p.signal(signal);
  return p.exited;
}
