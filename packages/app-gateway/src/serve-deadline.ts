/**
 * Self-fencing: this process serves its allocation only until the renew deadline has passed since it sent the
 * last call that renewed its lease and succeeded (/gateway/ready, /gateway/lease, a withdrawn restart), by its own
 * monotonic clock. Ganymede picks the deadline so that the process has stopped before Ganymede may end the
 * allocation and give the organization to another gateway (README, Partitions). Measuring from the *sending* of
 * the call is what makes it safe: Ganymede renewed the lease at some moment after that.
 *
 * The deadline is checked where traffic is taken (`lapsed()`), not only by a timer: a process paused past the
 * deadline (SIGSTOP, a long GC, a frozen VM) runs its timers late, but answers nothing once it resumes.
 */
import { performance } from 'node:perf_hooks';

export class ServeDeadline {
  /** performance.now() when the last successful renewal was sent; null: nothing held, nothing to fence. */
  private renewedAt: number | null = null;
  private deadlineMs: number;
  private timer: NodeJS.Timeout | undefined;
  private fenced = false;

  constructor(
    private readonly onLapse: () => void,
    defaultDeadlineMs: number,
  ) {
    this.deadlineMs = defaultDeadlineMs;
  }

  /** The time to pass to `renewed` for a call sent now. */
  static now(): number {
    return performance.now();
  }

  /**
   * A renewal sent at `sentAt` succeeded; `deadlineMs` is Ganymede's (absent from older ones: kept as it was).
   * Answers true when this lifts a lapse (the process may serve again).
   */
  renewed(sentAt: number, deadlineMs: number | undefined): boolean {
    if (deadlineMs !== undefined) this.deadlineMs = deadlineMs;
    if (this.renewedAt !== null && sentAt < this.renewedAt) return false; // an older call answered late
    this.renewedAt = sentAt;
    this.arm();
    const lifted = this.fenced && !this.lapsed();
    if (lifted) this.fenced = false;
    return lifted;
  }

  /** Nothing held any more (idle, stood down, stopped): no deadline. */
  clear(): void {
    this.renewedAt = null;
    this.fenced = false;
    clearTimeout(this.timer);
  }

  /** Past the deadline: the process must not serve its allocation. */
  lapsed(): boolean {
    if (this.renewedAt === null) return false;
    if (performance.now() - this.renewedAt < this.deadlineMs) return false;
    this.lapse();
    return true;
  }

  /** Milliseconds left before the deadline (Infinity with nothing held). */
  remainingMs(): number {
    return this.renewedAt === null ? Infinity : this.renewedAt + this.deadlineMs - performance.now();
  }

  private arm(): void {
    clearTimeout(this.timer);
    const left = this.remainingMs();
    if (left <= 0) return void this.lapse();
    // A timer may fire a little before performance.now() says the time is up (libuv counts from the loop's cached
    // time): then it is armed again for what is left.
    this.timer = setTimeout(() => {
      if (!this.lapsed()) this.arm();
    }, left);
    this.timer.unref();
  }

  /** The first time the deadline is found passed: tell the owner once (it stops serving until a renewal lifts it). */
  private lapse(): void {
    if (this.fenced) return;
    this.fenced = true;
    clearTimeout(this.timer);
    this.onLapse();
  }
}
