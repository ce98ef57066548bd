/**
 * `gateway supervise`: owns the gateway's listening socket and keeps one gateway process serving on it
 * (upstream's start-app-gateway.sh, made hot).
 *
 * The socket outlives every child (listen-socket.ts): each child accepts on it, none binds its own, and while no
 * child accepts a connection waits in the kernel's backlog instead of being refused.
 *
 * A restart (SIGHUP, SIGUSR2, SIGTERM while the reload marker exists) is a hot handover, one at a time
 * (handover-protocol.ts): the current child calls /gateway/restart and keeps serving; a successor boots and
 * reclaims the allocation at epoch + 1; only then does the current child stop accepting, after which the successor
 * starts. The current child finishes what is open and exits. If the successor fails (exits, or is not ready within
 * the handover timeout), it is killed, the current child withdraws its restart and keeps serving, and the handover
 * is tried again after a backoff (at most HANDOVER_ATTEMPTS times). A restart signal during a handover is queued.
 *
 * A child that exits on its own: 75 → started again at once; 0 → stopped for good (the supervisor exits 0);
 * 2 (bad configuration) → restarting cannot help (the supervisor exits 2); anything else, or death by signal →
 * started again after a backoff (100 ms doubling to 5 s; reset once a child ran 10 s).
 *
 * SIGINT, and SIGTERM without the marker, stop for good, even during a handover: every child gets SIGINT (always a
 * stop), the supervisor waits for all of them (SIGKILL after a deadline) and exits 0. Repeated stops are ignored.
 *
 * Children run in their own process group (a terminal's Ctrl-C reaches the supervisor only) with an IPC channel: if
 * the supervisor dies, they notice and shut down, keeping the allocation. Log lines: `child_started`,
 * `child_exited`, `handover_started`, `handover_complete`, `handover_failed`, `restart_queued`.
 */
import { spawn } from 'node:child_process';
import type { RestartReason } from '@ganymede/contracts';
import type { Logger } from 'pino';
import { SETTINGS } from './config.js';
import { EXIT_CODES, SupervisorAlreadyRunningError } from './errors.js';
import { IPC_SERIALIZATION, SUCCESSOR_ENV } from './handover-protocol.js';
import { bindListenSocket, CHILD_LISTEN_FD, type ListenSocket } from './listen-socket.js';
import { CHILD_PID_FILE, ensureRunDir, isAlive, readPid, removeFile, SUPERVISOR_PID_FILE, writePid } from './pid-file.js';
import { type ChildExit, SupervisedChild } from './supervised-child.js';
import { consumeMarkers, decideShutdown, readMarkers, STOP_REASON_FILE } from './shutdown-reason.js';

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
  reloadMarker: string;
  /** Where the shared socket listens (port 0: the kernel picks; `listening` tells which). */
  host: string;
  port: number;
  logger: Logger;
  backoff?: Partial<SupervisorBackoff>;
  /** After forwarding a stop, SIGKILL the child if it still runs after this long. */
  killAfterMs: number;
  /** A successor must say ready (reclaimed, or idle) within this long, or the handover fails. */
  handoverTimeoutMs: number;
  /** A child handing over is SIGKILLed if it still runs this long after it stopped accepting. */
  retireAfterMs: number;
}

export const DEFAULT_SUPERVISOR_BACKOFF: SupervisorBackoff = { baseMs: 100, capMs: 5_000, stableMs: 10_000 };

/** Tries of one restart before the supervisor gives up on it (the current child keeps serving). */
export const HANDOVER_ATTEMPTS = 5;

/** How long a child gets to answer `prepare` and `drain` before the handover goes on without it. */
const ANSWER_TIMEOUT_MS = 10_000;

/** The delay before restart number `failures` (1 = first crash). */
export function crashBackoff(failures: number, { baseMs, capMs }: SupervisorBackoff): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
}

export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly backoff: SupervisorBackoff;
  private readonly log: Logger;
  private socket: ListenSocket | null = null;
  /** Every child still running: the current one, a successor, children draining. */
  private readonly children = new Set<SupervisedChild>();
  /** The child that accepts (or, before its first `accepting`, will). */
  private current: SupervisedChild | null = null;
  /** True once `current` accepts: only then can it hand over. */
  private accepting = false;
  private successor: SupervisedChild | null = null;
  private handingOver = false;
  /** A restart asked for while another could not start yet: run next. */
  private queued: RestartReason | null = null;
  private stopping = false;
  private killTimer: NodeJS.Timeout | undefined;
  /** Ends a backoff wait early (a stop, or a restart signal while no child runs). */
  private wake: (() => void) | null = null;
  /** Resolves the main loop's wait when the serving child is gone and no successor can take over. */
  private currentEnded: ((exit: ChildExit) => void) | null = null;
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
  signal(signal: 'SIGHUP' | 'SIGUSR2' | 'SIGTERM' | 'SIGINT'): void {
    const paths = { reloadMarker: this.options.reloadMarker, runDir: this.options.runDir };
    const decision = decideShutdown(signal, readMarkers(paths));
    // The stop reason file stays for the children: SIGINT makes each of them read it.
    if (decision.kind === 'stop') return this.stop(signal);
    for (const warning of consumeMarkers(decision, paths)) this.log.warn({ event: 'marker_warning' }, warning);
    this.restart(decision.reason, signal);
  }

  private stop(signal: NodeJS.Signals): void {
    if (this.stopping) {
      this.log.info({ event: 'signal_ignored', signal }, 'already stopping');
      return;
    }
    this.stopping = true;
    const pids = [...this.children].map((c) => c.pid);
    this.log.info({ event: 'supervisor_stopping', signal, child_pids: pids }, 'stopping for good');
    for (const child of this.children) child.kill('SIGINT');
    if (this.children.size > 0) {
      this.killTimer = setTimeout(() => {
        this.log.error({ event: 'child_kill', child_pids: pids }, `children still running after ${this.options.killAfterMs} ms: SIGKILL`);
        for (const child of this.children) child.kill('SIGKILL');
      }, this.options.killAfterMs);
    }
    this.wake?.();
  }

  private restart(reason: RestartReason, signal: NodeJS.Signals): void {
    if (this.stopping) return;
    if (!this.current) {
      this.log.info({ event: 'restart_now', signal, reason }, 'no child running: starting one now');
      this.wake?.();
      return;
    }
    if (this.handingOver || !this.accepting) {
      this.queued = reason;
      this.log.info({ event: 'restart_queued', signal, reason }, 'a handover (or the first start) is under way: this restart follows it');
      return;
    }
    void this.handOverAll(reason);
  }

  private async loop(): Promise<number> {
    const { runDir } = this.options;
    ensureRunDir(runDir);
    const other = readPid(runDir, SUPERVISOR_PID_FILE);
    if (other !== null && other !== process.pid && isAlive(other)) throw new SupervisorAlreadyRunningError(other, runDir);
    writePid(runDir, SUPERVISOR_PID_FILE, process.pid);
    removeFile(runDir, STOP_REASON_FILE); // left by a stop that found no child to read it

    let failures = 0;
    let exitCode: number = EXIT_CODES.stopped;
    try {
      this.socket = await bindListenSocket(this.options.host, this.options.port);
      const { host, port } = this.socket;
      this.log.info({ event: 'supervisor_started', run_dir: runDir, host, port }, `supervising the gateway on ${host}:${port}`);
      while (!this.stopping) {
        const startedAt = Date.now();
        const exit = await this.serveUntilEnded();
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
      // No orphans: whatever is still running (a stop during a handover, a child draining) is waited for.
      if (this.children.size > 0 && !this.stopping) this.stop('SIGTERM');
      await Promise.all([...this.children].map((c) => c.exited));
    } finally {
      clearTimeout(this.killTimer);
      this.socket?.close();
      removeFile(runDir, CHILD_PID_FILE);
      removeFile(runDir, STOP_REASON_FILE);
      if (readPid(runDir, SUPERVISOR_PID_FILE) === process.pid) removeFile(runDir, SUPERVISOR_PID_FILE);
    }
    this.log.info({ event: 'supervisor_exit', exit_code: exitCode }, 'supervisor exiting');
    return exitCode;
  }

  /** Starts a child that accepts as soon as it is ready; resolves when the serving child is gone for good. */
  private serveUntilEnded(): Promise<ChildExit> {
    const child = this.spawnChild(false);
    this.current = child;
    this.accepting = false;
    void this.admit(child);
    return new Promise((resolve) => {
      this.currentEnded = resolve;
    });
  }

  /** A child that said ready accepts; a restart queued meanwhile starts once it does. */
  private async admit(child: SupervisedChild): Promise<void> {
    if (!(await child.next('ready', 2 ** 31 - 1))) return;
    child.send({ type: 'accept' });
    if (!(await child.next('accepting', ANSWER_TIMEOUT_MS)) || child !== this.current) return;
    this.accepting = true;
    const queued = this.queued;
    this.queued = null;
    if (queued && !this.stopping) void this.handOverAll(queued);
  }

  private spawnChild(successor: boolean): SupervisedChild {
    const { command, args, env, runDir } = this.options;
    const socket = this.socket!;
    const childEnv = {
      ...env,
      [SETTINGS.listenFd.env]: String(CHILD_LISTEN_FD),
      [SETTINGS.port.env]: String(socket.port),
      ...(successor ? { [SUCCESSOR_ENV]: '1' } : {}),
    };
    const stdio: ('ignore' | 'inherit' | 'ipc' | number)[] = ['ignore', 'inherit', 'inherit', socket.fd, 'ipc'];
    const child = new SupervisedChild(
      spawn(command, args, { env: childEnv, stdio, detached: true, serialization: IPC_SERIALIZATION }),
      successor,
    );
    this.children.add(child);
    child.process.once('spawn', () => {
      if (!successor && child.pid !== undefined) writePid(runDir, CHILD_PID_FILE, child.pid);
      this.log.info({ event: 'child_started', child_pid: child.pid, successor }, successor ? 'successor started' : 'child started');
    });
    void child.exited.then((exit) => this.childExited(child, exit));
    return child;
  }

  private childExited(child: SupervisedChild, exit: ChildExit): void {
    this.children.delete(child);
    if (this.children.size === 0) clearTimeout(this.killTimer);
    this.log.info({ event: 'child_exited', child_pid: child.pid ?? null, code: exit.code, signal: exit.signal }, 'child exited');
    if (exit.code === null && exit.signal === null) this.log.error({ event: 'child_spawn_failed' }, 'could not start the child');
    if (child !== this.current) return;
    this.current = null;
    this.accepting = false;
    if (this.successor && !this.stopping) {
      this.log.warn(
        { event: 'current_died_during_handover', child_pid: child.pid },
        'the serving child died: the successor takes over once ready',
      );
      return;
    }
    this.currentEnded?.(exit);
  }

  /** Hands over for `reason`, then for any restart queued meanwhile: one handover at a time. */
  private async handOverAll(reason: RestartReason): Promise<void> {
    this.handingOver = true;
    try {
      let next: RestartReason | null = reason;
      let failures = 0;
      while (next && !this.stopping && this.current && this.accepting) {
        this.queued = null;
        const outcome = await this.handOver(next);
        if (outcome === 'done' || outcome === 'abandoned') {
          failures = 0;
          next = this.queued;
          continue;
        }
        failures++;
        if (outcome === 'config' || failures >= HANDOVER_ATTEMPTS) {
          const why = outcome === 'config' ? 'the successor refused its configuration' : `${failures} tries failed`;
          this.log.error(
            { event: 'handover_gave_up', reason: next, failures },
            `restart abandoned (${why}): the current child keeps serving`,
          );
          next = this.queued;
          failures = 0;
          continue;
        }
        const delayMs = crashBackoff(failures, this.backoff);
        this.log.warn({ event: 'handover_retry', reason: next, failures, delay_ms: delayMs }, `trying the restart again in ${delayMs} ms`);
        await this.pause(delayMs);
        next = this.queued ?? next;
      }
    } finally {
      this.handingOver = false;
    }
  }

  /**
   * One handover. 'done': the successor accepts. 'failed'/'config': it did not take over and the current child
   * serves on (its restart withdrawn). 'abandoned': a stop came, or nobody serves any more (the main loop starts over).
   */
  private async handOver(reason: RestartReason): Promise<'done' | 'failed' | 'config' | 'abandoned'> {
    const old = this.current!;
    const startedAt = Date.now();
    this.log.info({ event: 'handover_started', reason, from_pid: old.pid }, `hot restart (${reason}): starting a successor`);
    old.send({ type: 'prepare', reason });
    await old.next('prepared', ANSWER_TIMEOUT_MS);
    if (this.stopping) return 'abandoned';

    const next = this.spawnChild(true);
    this.successor = next;
    try {
      const ready = await next.next('ready', this.options.handoverTimeoutMs);
      if (this.stopping) return 'abandoned';
      if (!ready) return await this.successorFailed(old, next, startedAt);

      let state: Uint8Array | undefined;
      if (old.alive()) {
        old.send({ type: 'drain' });
        const draining = await old.next('draining', ANSWER_TIMEOUT_MS);
        state = draining?.state;
        if (!draining && old.alive()) {
          this.log.error({ event: 'drain_unanswered', child_pid: old.pid }, 'the serving child did not stop accepting: SIGKILL');
          old.kill('SIGKILL');
          await old.exited;
        }
        if (old.alive()) this.retire(old);
      }
      next.send({ type: 'accept', ...(state === undefined ? {} : { state }) });
      const accepting = await next.next('accepting', ANSWER_TIMEOUT_MS);
      this.current = next;
      this.accepting = accepting !== null;
      if (!accepting) {
        // Ready, then gone before accepting: nobody serves. The main loop starts a child afresh.
        if (!next.alive()) this.childExited(next, next.exit!);
        return 'abandoned';
      }
      if (next.pid !== undefined) writePid(this.options.runDir, CHILD_PID_FILE, next.pid);
      this.log.info(
        { event: 'handover_complete', reason, from_pid: old.pid, to_pid: next.pid, handover_ms: Date.now() - startedAt },
        `the successor (pid ${next.pid}) serves`,
      );
      return 'done';
    } finally {
      this.successor = null;
    }
  }

  /** The successor did not get ready: kill it; the current child withdraws its restart and serves on. */
  private async successorFailed(
    old: SupervisedChild,
    next: SupervisedChild,
    startedAt: number,
  ): Promise<'failed' | 'config' | 'abandoned'> {
    const why = next.exit
      ? `the successor exited (code ${next.exit.code}, signal ${next.exit.signal})`
      : `the successor was not ready within ${this.options.handoverTimeoutMs} ms`;
    next.kill('SIGKILL');
    const exit = await next.exited;
    this.log.warn(
      { event: 'handover_failed', why, successor_pid: next.pid, handover_ms: Date.now() - startedAt },
      `hot restart failed: ${why}`,
    );
    if (!old.alive() || this.current !== old) {
      this.successor = null;
      if (!this.stopping && !this.current) this.currentEnded?.(old.exit ?? exit);
      return 'abandoned';
    }
    old.send({ type: 'withdraw' });
    const withdrawn = await old.next('withdrawn', 2 ** 31 - 1);
    this.log.info({ event: 'restart_withdrawn', child_pid: old.pid, epoch: withdrawn?.epoch ?? null }, 'the serving child serves on');
    return exit.code === EXIT_CODES.config ? 'config' : 'failed';
  }

  /** A child that stopped accepting finishes on its own; past its drain budget it is killed. */
  private retire(child: SupervisedChild): void {
    const timer = setTimeout(() => {
      this.log.error(
        { event: 'retire_kill', child_pid: child.pid },
        `still running ${this.options.retireAfterMs} ms after handing over: SIGKILL`,
      );
      child.kill('SIGKILL');
    }, this.options.retireAfterMs);
    void child.exited.then(() => clearTimeout(timer));
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
