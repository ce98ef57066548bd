import { describe, expect, it } from 'vitest';
import { UnsafeLeaseMarginsError } from '../src/errors.js';
import { leaseMargins } from '../src/lease-margins.js';

const DEFAULTS = { leaseSeconds: 10, leaseGraceSeconds: 10, clockDrift: 0.05 };

describe('lease margins', () => {
  it('derive a renew deadline of three quarters of lease + grace, and the shortest safe restart grace', () => {
    expect(leaseMargins(DEFAULTS)).toEqual({ renewDeadlineMs: 15_000, minRestartGraceSeconds: 17 });
    expect(leaseMargins({ ...DEFAULTS, leaseSeconds: 1, leaseGraceSeconds: 1 })).toEqual({
      renewDeadlineMs: 1_500,
      minRestartGraceSeconds: 2,
    });
    // Long leases: a restart's grace grows with them (one-hour leases and no grace: at least 2,985 s).
    expect(leaseMargins({ ...DEFAULTS, leaseSeconds: 3600, leaseGraceSeconds: 0 }).minRestartGraceSeconds).toBe(2985);
    // Without drift the bound is the sum itself: just below it is allowed.
    expect(leaseMargins({ ...DEFAULTS, clockDrift: 0, renewDeadlineMs: 19_999 }).renewDeadlineMs).toBe(19_999);
  });

  it.each([
    ['a deadline at lease + grace', { renewDeadlineMs: 20_000 }, /not below \(lease 10 s \+ grace 10 s\)/],
    ['a deadline within the drift allowance', { renewDeadlineMs: 18_500 }, /18\.10 s/],
    ['no grace and a deadline at the lease', { leaseGraceSeconds: 0, renewDeadlineMs: 10_000 }, /not below/],
    ['a deadline shorter than a renewal interval', { renewDeadlineMs: 4_000 }, /longest renewal interval \(4167 ms/],
    ['a drift of a half', { clockDrift: 0.5 }, /--clock-drift/],
  ])('refuse %s, naming the settings and the bound', (_, change, message) => {
    const refuse = () => leaseMargins({ ...DEFAULTS, ...change });
    expect(refuse).toThrow(UnsafeLeaseMarginsError);
    expect(refuse).toThrow(message);
    try {
      refuse();
    } catch (error) {
      expect((error as UnsafeLeaseMarginsError).code).toBe('LEASE_MARGINS_UNSAFE');
    }
  });
});
