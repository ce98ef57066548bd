/** The seeded generator: a seed replays its choices, another seed does not, and every helper stays in its range. */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src/seeded-random.js';

const draw = (seed: number) => {
  const rng = seededRandom(seed);
  return Array.from({ length: 50 }, () => rng.next());
};

describe('seeded random', () => {
  it('replays the same sequence for the same seed, and another for another seed', () => {
    expect(draw(42)).toEqual(draw(42));
    expect(draw(43)).not.toEqual(draw(42));
  });

  it('keeps int, between, pick and weighted in range, and never picks a zero weight', () => {
    const rng = seededRandom(7);
    const ints = new Set<number>();
    const kinds = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const n = rng.int(2, 4);
      ints.add(n);
      const x = rng.between(10, 11);
      expect(x >= 10 && x < 11).toBe(true);
      expect(['a', 'b']).toContain(rng.pick(['a', 'b']));
      kinds.add(rng.weighted({ often: 5, rarely: 1, never: 0 }));
    }
    expect([...ints].sort()).toEqual([2, 3, 4]);
    expect([...kinds].sort()).toEqual(['often', 'rarely']);
  });
});
