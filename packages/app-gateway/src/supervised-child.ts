/**
 * One gateway process started by the supervisor: its exit, and the messages it sends, awaited by type.
 */
import type { ChildProcess } from 'node:child_process';
import { type FromChild, isFromChild, type ToChild } from './handover-protocol.js';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Message<T extends FromChild['type']> = Extract<FromChild, { type: T }>;

export class SupervisedChild {
  readonly pid: number | undefined;
  /** Resolves once the process is gone (or could not be started: code and signal null). */
  readonly exited: Promise<ChildExit>;
  exit: ChildExit | null = null;
  /** Messages not yet awaited, by type: a child may answer before the supervisor starts waiting. */
  private readonly inbox = new Map<FromChild['type'], FromChild>();
  private readonly waiters = new Map<FromChild['type'], (message: FromChild | null) => void>();

  constructor(
    readonly process: ChildProcess,
    /** Started for a hot restart, to take over from the current child. */
    readonly successor: boolean,
  ) {
    this.pid = process.pid;
    process.on('message', (message) => {
      if (!isFromChild(message)) return;
      const waiter = this.waiters.get(message.type);
      if (waiter) waiter(message);
      else this.inbox.set(message.type, message);
    });
    this.exited = new Promise((resolve) => {
      const done = (exit: ChildExit) => {
        if (this.exit) return;
        this.exit = exit;
        for (const waiter of [...this.waiters.values()]) waiter(null);
        resolve(exit);
      };
      // Could not spawn at all (no 'exit' follows).
      process.once('error', () => done({ code: null, signal: null }));
      process.once('exit', (code, signal) => done({ code, signal }));
    });
  }

  alive(): boolean {
    return this.exit === null;
  }

  /** The child's next message of `type`; null if it exits first or `timeoutMs` passes. */
  next<T extends FromChild['type']>(type: T, timeoutMs: number): Promise<Message<T> | null> {
    const queued = this.inbox.get(type);
    if (queued) {
      this.inbox.delete(type);
      return Promise.resolve(queued as Message<T>);
    }
    if (!this.alive()) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(null), timeoutMs);
      const settle = (message: FromChild | null) => {
        clearTimeout(timer);
        this.waiters.delete(type);
        resolve(message as Message<T> | null);
      };
      this.waiters.set(type, settle);
    });
  }

  /** Sends if the channel is open; a child that just died is not an error here (its exit is handled). */
  send(message: ToChild): void {
    if (this.process.connected) this.process.send(message, () => undefined);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.alive()) this.process.kill(signal);
  }
}
