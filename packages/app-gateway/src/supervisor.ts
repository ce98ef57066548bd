/**
 * `gateway supervise`: keeps one gateway process running (upstream's start-app-gateway.sh).
 *
 * Child exit 75 → restart at once. Exit 0 → stopped for good: the supervisor exits 0. Exit 2 (bad
 * configuration) → restarting cannot help: the supervisor exits 2. Any other exit or death by signal
 * (crash, SIGKILL) → restart after a backoff (100 ms doubling to 5 s; reset once a child ran 10 s).
 *
 * Signals: SIGHUP and SIGUSR2 are forwarded as they are (restart). SIGTERM/SIGINT stop for good: the child
 * gets SIGINT (always a stop, whatever marker exists), the supervisor waits for it (SIGKILL after a
 * deadline) and exits 0. Repeated stop signals are ignored.
 *
 * The child runs in its own process group (a terminal's Ctrl-C reaches the supervisor only, which
 * forwards it once) with an IPC channel: if the supervisor dies, the child notices and shuts down.
 * Every child start and exit is a log line: `child_started` {child_pid}, `child_exited` {child_pid, code, signal}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { EXIT_CODES, SupervisorAlreadyRunningError } from './errors.js';
import { CHILD_PID_FILE, ensureRunDir, isAlive, readPid, removeFile, SUPERVISOR_PID_FILE, writePid } from './pid-file.js';
import { STOP_REASON_FILE } from './shutdown-reason.js';

export interface SupervisorBackoff {
  baseMs: number;
  capMs: number;
  /** A child that ran this long before crashing resets the backoff. */
  stableMs: number;
}

export interface SupervisorOptions {
  /** The child's executable and arguments, e.g. process.execPath and [...process.execArgv, cliPath, 'run']. */
  command: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  runDir: string;
  logger: Logger;
  backoff?: Partial<SupervisorBackoff>;
  /** After forwarding a stop, SIGKILL the child if it still runs after this long. */
  killAfterMs: number;
}

export const DEFAULT_SUPERVISOR_BACKOFF: SupervisorBackoff = { baseMs: 100, capMs: 5_000, stableMs: 10_000 };

interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The delay before restart number `failures` (1 = first crash). */
export function crashBackoff(failures: number, { baseMs, capMs }: SupervisorBackoff): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly backoff: SupervisorBackoff;
  private readonly log: Logger;
  private child: ChildProcess | null = null;
  private stopping = false;
  private killTimer: NodeJS.Timeout | undefined;
  /** Ends a backoff wait early (a stop, or a restart signal while no child runs). */
  private wake: (() => void) | null = null;
  private runPromise: Promise<number> | undefined;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.backoff = { ...DEFAULT_SUPERVISOR_BACKOFF, ...options.backoff };
    this.log = options.logger;
  }

  /** Supervises until stopped; resolves with the supervisor's exit code. Safe to call twice. */
  run(): Promise<number> {
    this.runPromise ??= this.loop();
    return this.runPromise;
  }

  /** What the process's signal handlers call. */
  signal(signal: NodeJS.Signals): void {
    const child = this.child;
    if (signal === 'SIGTERM' || signal === 'SIGINT') {
      if (this.stopping) {
        this.log.info({ event: 'signal_ignored', signal }, 'already stopping');
        return;
      }
      this.stopping = true;
      this.log.info({ event: 'supervisor_stopping', signal, child_pid: child?.pid ?? null }, 'stopping for good');
      if (child) {
        child.kill('SIGINT');
        this.killTimer = setTimeout(() => {
          this.log.error(
            { event: 'child_kill', child_pid: child.pid },
            `child still running after ${this.options.killAfterMs} ms: SIGKILL`,
          );
          child.kill('SIGKILL');
        }, this.options.killAfterMs);
      }
      this.wake?.();
      return;
    }
    if (this.stopping) return;
    if (child) {
      this.log.info({ event: 'signal_forwarded', signal, child_pid: child.pid }, `forwarding ${signal}`);
      child.kill(signal);
    } else {
      this.log.info({ event: 'restart_now', signal }, 'no child running: starting one now');
      this.wake?.();
    }
  }

  private async loop(): Promise<number> {
    const { runDir } = this.options;
    ensureRunDir(runDir);
    const other = readPid(runDir, SUPERVISOR_PID_FILE);
    if (other !== null && other !== process.pid && isAlive(other)) throw new SupervisorAlreadyRunningError(other, runDir);
    writePid(runDir, SUPERVISOR_PID_FILE, process.pid);
    removeFile(runDir, STOP_REASON_FILE); // left by a stop that found no child to read it
    this.log.info({ event: 'supervisor_started', run_dir: runDir }, 'supervising the gateway');

    let failures = 0;
    let exitCode: number = EXIT_CODES.stopped;
    try {
      while (!this.stopping) {
        const startedAt = Date.now();
        const exit = await this.runChild();
        const ranMs = Date.now() - startedAt;
        if (this.stopping) break;
        if (exit.code === EXIT_CODES.restart) {
          failures = 0;
          this.log.info({ event: 'child_restarting', delay_ms: 0 }, 'child exited for a restart: restarting now');
          continue;
        }
        if (exit.code === EXIT_CODES.stopped) {
          this.log.info({ event: 'child_stopped' }, 'child stopped for good');
          break;
        }
        if (exit.code === EXIT_CODES.config) {
          this.log.error({ event: 'child_config_error' }, 'child refused its configuration: giving up');
          exitCode = EXIT_CODES.config;
          break;
        }
        failures = ranMs >= this.backoff.stableMs ? 1 : failures + 1;
        const delayMs = crashBackoff(failures, this.backoff);
        this.log.warn(
          { event: 'child_crashed', code: exit.code, signal: exit.signal, ran_ms: ranMs, failures, delay_ms: delayMs },
          `child crashed: restarting in ${delayMs} ms`,
        );
        await this.pause(delayMs);
      }
    } finally {
      clearTimeout(this.killTimer);
      removeFile(runDir, CHILD_PID_FILE);
      removeFile(runDir, STOP_REASON_FILE);
      if (readPid(runDir, SUPERVISOR_PID_FILE) === process.pid) removeFile(runDir, SUPERVISOR_PID_FILE);
    }
    this.log.info({ event: 'supervisor_exit', exit_code: exitCode }, 'supervisor exiting');
    return exitCode;
  }

  private runChild(): Promise<ChildExit> {
    const { command, args, env, runDir } = this.options;
    const child = spawn(command, args, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    this.child = child;
    return new Promise<ChildExit>((resolve) => {
      let done = false;
      const finish = (exit: ChildExit) => {
        if (done) return;
        done = true;
        this.child = null;
        clearTimeout(this.killTimer);
        removeFile(runDir, CHILD_PID_FILE);
        this.log.info({ event: 'child_exited', child_pid: child.pid ?? null, code: exit.code, signal: exit.signal }, 'child exited');
        resolve(exit);
      };
      child.once('spawn', () => {
        if (child.pid !== undefined) writePid(runDir, CHILD_PID_FILE, child.pid);
        this.log.info({ event: 'child_started', child_pid: child.pid }, 'child started');
      });
      child.once('error', (error) => {
        // Could not spawn at all (no 'exit' follows): count it as a crash.
        this.log.error({ event: 'child_spawn_failed', err: error }, 'could not start the child');
        finish({ code: null, signal: null });
      });
      child.once('exit', (code, signal) => finish({ code, signal }));
    });
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
