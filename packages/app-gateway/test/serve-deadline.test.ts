import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { ServeDeadline } from '../src/serve-deadline.js';

/** A deadline whose lapses are counted, and a promise of the next one. */
function deadline(ms: number) {
  let lapses = 0;
  let next: () => void = () => undefined;
  const d = new ServeDeadline(() => {
    lapses++;
    next();
  }, ms);
  return { d, lapses: () => lapses, lapse: () => new Promise<void>((resolve) => (next = resolve)) };
}

describe('the serve deadline', () => {
  it('nothing held: never lapses', () => {
    const { d } = deadline(1);
    expect(d.lapsed()).toBe(false);
    expect(d.remainingMs()).toBe(Infinity);
  });

  it('lapses once, by its timer, the deadline after the renewal was sent; a renewal lifts it', async () => {
    const { d, lapses, lapse } = deadline(10_000);
    const sentAt = performance.now();
    const lapsed = lapse();
    d.renewed(sentAt, 60); // Ganymede's deadline replaces the default
    expect(d.lapsed()).toBe(false);
    await lapsed;
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(60);
    expect(d.lapsed()).toBe(true);
    expect(lapses()).toBe(1); // asked again, it says so without telling the owner again
    expect(d.renewed(performance.now(), undefined)).toBe(true);
    expect(d.lapsed()).toBe(false);
    d.clear();
  });

  it('measures from the sending: a renewal sent long ago lifts nothing', async () => {
    const { d, lapse } = deadline(40);
    const lapsed = lapse();
    d.renewed(performance.now(), undefined);
    await lapsed;
    expect(d.renewed(performance.now() - 1_000, undefined)).toBe(false); // older than the one it had: ignored
    expect(d.lapsed()).toBe(true);
  });

  it('a paused process finds the deadline passed on its first check, before any timer runs', () => {
    const { d, lapses } = deadline(5);
    d.renewed(performance.now() - 10, undefined); // as if the process had been stopped since it sent the renewal
    expect(lapses()).toBe(1);
    expect(d.lapsed()).toBe(true);
    d.clear();
    expect(d.lapsed()).toBe(false);
  });
});
