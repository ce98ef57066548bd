/**
 * Self-fencing's margins, in one place. A gateway serves its allocation only until the renew deadline has passed
 * since it sent its last renewal that succeeded, by its own monotonic clock. Ganymede ends an active allocation
 * (`lease_expired`) only once the lease, counted from that renewal's database time (which is later than its
 * sending), and the grace have passed by the database's clock. If each clock's rate is within `clockDrift` (a
 * ratio) of true time, and nothing needs the clocks to agree on the time of day, the gateway has stopped first when
 *
 *     renewDeadline × (1 + drift)  <  (lease + grace) × (1 − drift)
 *
 * The same must hold for a restart: a process that asked for one (/gateway/restart, after its last renewal) serves
 * on until its successor takes over, and Ganymede ends a restart no successor took up at the restart grace:
 *
 *     renewDeadline × (1 + drift)  <  restartGrace × (1 − drift)
 *
 * so a restart's grace is never shorter than that, whatever the gateway asks or --grace says.
 *
 * A deadline shorter than a renewal interval would stop a healthy gateway between any two renewals. Unset, the
 * deadline is three quarters of lease + grace (15 s of the default 10 + 10): a third of a renewal's worth of
 * room before the bound at 5 % drift, and about four renewals (at a third of the lease each) that may fail first.
 */
import { RENEWAL_JITTER, RENEWALS_PER_LEASE } from '@ganymede/contracts';
import { UnsafeLeaseMarginsError } from './errors.js';

export interface LeaseMargins {
  leaseSeconds: number;
  leaseGraceSeconds: number;
  /** Milliseconds; unset: three quarters of lease + grace. */
  renewDeadlineMs?: number;
  /** Bound on how far a clock's rate may stray from true time (0.05: 5 %). */
  clockDrift: number;
}

export const DEFAULT_CLOCK_DRIFT = 0.05;

/**
 * The renew deadline (ms) the margins give, and the shortest restart grace that keeps the order. Throws
 * UnsafeLeaseMarginsError, naming the settings and the bound, when they cannot guarantee it.
 */
export function leaseMargins(m: LeaseMargins): { renewDeadlineMs: number; minRestartGraceSeconds: number } {
  const { leaseSeconds: lease, leaseGraceSeconds: grace, clockDrift: drift } = m;
  const deadlineMs = m.renewDeadlineMs ?? Math.round(750 * (lease + grace));
  const deadline = deadlineMs / 1000;
  if (!(drift >= 0 && drift < 0.5)) throw new UnsafeLeaseMarginsError(`--clock-drift must be at least 0 and below 0.5, got ${drift}`);
  const ceiling = ((lease + grace) * (1 - drift)) / (1 + drift);
  if (!(deadline < ceiling)) {
    throw new UnsafeLeaseMarginsError(
      `--renew-deadline-ms ${deadlineMs} is not below (lease ${lease} s + grace ${grace} s) × (1 − ${drift}) / (1 + ${drift}) = ` +
        `${ceiling.toFixed(2)} s: a gateway cut off from Ganymede could still be serving when its allocation is ended and ` +
        'given to another; lower the deadline or raise --lease-seconds / --lease-grace-seconds',
    );
  }
  const floor = (lease * (1 + RENEWAL_JITTER)) / RENEWALS_PER_LEASE;
  if (!(deadline > floor)) {
    throw new UnsafeLeaseMarginsError(
      `--renew-deadline-ms ${deadlineMs} is not above the longest renewal interval (${(floor * 1000).toFixed(0)} ms with lease ${lease} s): ` +
        'a healthy gateway would stop serving between renewals; raise it or lower --lease-seconds',
    );
  }
  // The smallest whole number of seconds strictly above the bound.
  const minRestartGraceSeconds = Math.floor((deadline * (1 + drift)) / (1 - drift)) + 1;
  return { renewDeadlineMs: deadlineMs, minRestartGraceSeconds };
}
