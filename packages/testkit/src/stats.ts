/** Order statistics shared by the load generator and the benchmark. No imports: the benchmark loads it alone. */

/**
 * The `p`th percentile (0–100) of samples sorted in ascending order, by linear interpolation between ranks;
 * NaN when there are none. Sort once (`[...xs].sort((a, b) => a - b)`) and ask for several percentiles.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}
