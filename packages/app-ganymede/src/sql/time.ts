/** Timestamps come back as `Date` from both backends; the contract speaks ISO 8601. */
export const iso = (v: unknown): string | null => (v == null ? null : new Date(v as string).toISOString());
