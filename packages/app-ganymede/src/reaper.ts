import { failpoint } from '@ganymede/failpoints';
import type { FastifyBaseLogger } from 'fastify';
import type { Database } from './db/database.js';
import { controlPlaneHeartbeat, expireLeases } from './sql/liveness.js';
import { expireRestarts } from './sql/transitions.js';
import type { Metrics } from './metrics.js';
import type { TransitionLog } from './transition-log.js';

export interface ReaperOptions {
  intervalMs: number;
  leaseSeconds: number;
  /** An active allocation whose gateway's lease lapsed longer than this ago is ended. */
  leaseGraceSeconds: number;
}

/**
 * Ends restarts past their deadline and allocations whose gateway's lease lapsed, unless the control plane
 * was just down (then gateways first get a full lease period to reach it). Runs on an interval, schedules
 * its next run only after the current one finished, and never throws: a failed run is logged and retried.
 * Safe on several replicas at once: each expiry is one statement that skips rows another replica holds.
 */
export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private holding = false;

  constructor(
    private readonly db: Database,
    private readonly log: FastifyBaseLogger,
    private readonly options: ReaperOptions,
    private readonly transitions: TransitionLog,
    private readonly metrics: Metrics,
  ) {}

  /** No reaper ran for this long: every replica was down. */
  get outageSeconds(): number {
    return Math.max(2, (3 * this.options.intervalMs) / 1000);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** One pass; answers how many allocations it ended (none while expiry is held back). */
  async runOnce(): Promise<number> {
    const { leaseSeconds, leaseGraceSeconds } = this.options;
    if (await controlPlaneHeartbeat(this.db, this.outageSeconds, leaseSeconds)) {
      if (!this.holding)
        this.log.info({ expiry: 'held' }, 'expiry held back: the control plane was down, gateways get a lease period to reach it');
      this.holding = true;
      return 0;
    }
    failpoint('ganymede:before:expire');
    const restarts = await expireRestarts(this.db, this.outageSeconds);
    for (const a of restarts) this.transitions.record('restart_timed_out', a, 'restart_timeout');
    const leases = await expireLeases(this.db, leaseGraceSeconds, this.outageSeconds);
    for (const a of leases) this.transitions.record('lease_expired', a, 'lease_expired');
    this.metrics.leaseExpiries.inc(leases.length);
    if (restarts.length + leases.length > 0) failpoint('ganymede:after:expire');
    if (this.holding) this.log.info({ expiry: 'resumed', ended: restarts.length + leases.length }, 'expiry resumed');
    this.holding = false;
    return restarts.length + leases.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .then(
          () => undefined,
          (err: unknown) => this.log.error({ err }, 'reaper run failed'),
        )
        .finally(() => this.schedule());
    }, this.options.intervalMs);
  }
}
