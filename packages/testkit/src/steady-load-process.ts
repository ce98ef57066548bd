/**
 * The steady load (steady-load.ts) in a child process of its own, so that it shares no event loop with the test
 * runner or the benchmark it measures. The parent commands it over the IPC channel; the child stops and exits
 * when the channel closes (the parent stopped it, exited or died), so none outlives its parent.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ProcessExit } from './logged-process.js';
import type { LoadCounts, LoadReport, SteadyLoadOptions } from './steady-load.js';
import { TSX_LOADER } from './tsx-loader.js';

/** Parent → child. Each command is answered by a `report` or an `error` reply with its `id`. */
export type LoadCommand =
  | { type: 'snapshot'; id: number }
  | { type: 'phase'; id: number; name: string }
  | { type: 'waitFor'; id: number; atLeast: Partial<LoadCounts>; timeoutMs?: number }
  | { type: 'stop'; id: number };

/** Child → parent. `ready` once the load runs. */
export type LoadReply =
  { type: 'ready' } | { type: 'report'; id: number; report: LoadReport } | { type: 'error'; id: number; message: string };

export interface LoadProcess {
  readonly pid: number;
  /** Counts so far. */
  snapshot(): Promise<LoadReport>;
  /** Resolves once the child counts outcomes in phase `name`: await it before starting what the phase measures. */
  phase(name: string): Promise<void>;
  /** As `SteadyLoad.waitFor`: a snapshot once every count named is at least the value given. */
  waitFor(atLeast: Partial<LoadCounts>, options?: { timeoutMs?: number }): Promise<LoadReport>;
  /** Stops the load, waits for the requests in flight and for the child's exit; answers the final report. Safe to call twice. */
  stop(): Promise<LoadReport>;
  /** Resolves when the child exited. */
  readonly exited: Promise<ProcessExit>;
}

const ENTRY = fileURLToPath(new URL('./steady-load-main.ts', import.meta.url));

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

/** `Promise.withResolvers`, which Node 20 lacks. */
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Forks the load's child process and resolves once its load is running. */
export async function startLoadProcess(options: SteadyLoadOptions): Promise<LoadProcess> {
  const child = fork(ENTRY, [JSON.stringify(options)], {
    execArgv: ['--import', TSX_LOADER],
    // Structured clone, not JSON: a report's NaN (no latency yet) stays NaN.
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });

  const ready = deferred<void>();
  const replies = new Map<number, Deferred<LoadReport>>();
  child.on('message', (message: LoadReply) => {
    if (message.type === 'ready') return ready.resolve();
    const pending = replies.get(message.id);
    replies.delete(message.id);
    if (message.type === 'report') pending?.resolve(message.report);
    else pending?.reject(new Error(message.message));
  });

  let exitedWith: ProcessExit | undefined;
  const gone = () => new Error(`the load process exited (${JSON.stringify(exitedWith)}); stderr: ${stderr}`);
  const exited = new Promise<ProcessExit>((resolve) => {
    // 'close': stderr is drained too, for the error messages.
    child.once('close', (code, signal) => {
      exitedWith = { code, signal };
      resolve(exitedWith);
      ready.reject(gone());
      for (const pending of replies.values()) pending.reject(gone());
      replies.clear();
    });
  });
  child.once('error', (error) => ready.reject(new Error('could not start the load process', { cause: error })));

  let nextId = 0;
  const ask = (command: WithoutId<LoadCommand>): Promise<LoadReport> => {
    if (exitedWith || !child.connected) return Promise.reject(gone());
    const id = ++nextId;
    const pending = deferred<LoadReport>();
    replies.set(id, pending);
    child.send({ ...command, id });
    return pending.promise;
  };

  await ready.promise;

  let stopped: Promise<LoadReport> | undefined;
  return {
    pid: child.pid!,
    snapshot: () => ask({ type: 'snapshot' }),
    phase: async (name) => {
      await ask({ type: 'phase', name });
    },
    waitFor: (atLeast, { timeoutMs } = {}) => ask({ type: 'waitFor', atLeast, timeoutMs }),
    stop: () =>
      (stopped ??= (async () => {
        const report = await ask({ type: 'stop' });
        await exited;
        return report;
      })()),
    exited,
  };
}
