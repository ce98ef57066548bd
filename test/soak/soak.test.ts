/**
 * The randomized soak (issue 10; README, Guarantees › Partitions): Ganymede with short leases (on PostgreSQL two
 * replicas), three supervised gateways each behind a TCP proxy, two organizations whose requests go to every
 * gateway, and faults at random times: partitions of every kind, pauses, kills, hot restarts, supervisor and
 * Ganymede restarts. Once every fault is healed and both organizations are served again, the serving history of
 * every gateway process must show no two processes serving one organization at once, but for hot restarts'
 * handovers within the drain bound.
 *
 * SOAK_SECONDS sets how long faults are injected (default 60), SOAK_SEED replays a run's draws (printed first).
 */
import { describe, expect, it } from 'vitest';
import {
  checkServingHistory,
  describeOverlap,
  newSeed,
  type SeededRandom,
  seededRandom,
  servedRecords,
  startOrganization,
  testDatabaseKind,
} from '@ganymede/testkit';
import { type FaultCounts, injectFaults } from './faults.js';
import { DRAIN_TIMEOUT_MS, type Fleet, startFleet } from './fleet.js';
import { type OrgLoadFigures, type SoakOrganization, startOrgLoad } from './org-load.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const SEED = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : newSeed();
/** Generous: organizations move after lease + grace, on a machine that may be busy. */
const SERVED_AGAIN_MS = 120_000;

/** Two organizations allocated, their load on every gateway, faults for SECONDS, and the load until both are served again. */
async function soak(fleet: Fleet, rng: SeededRandom): Promise<{ faults: FaultCounts; load: OrgLoadFigures }> {
  const organizations: SoakOrganization[] = [];
  for (let i = 0; i < 2; i++) {
    const { organizationId, token, res } = await startOrganization(fleet.replicas[0]!);
    expect(res.status).toBe(201);
    organizations.push({ organizationId, token });
  }
  const clients = startOrgLoad({
    organizations,
    gatewayUrls: fleet.gateways.map((g) => g.gw.url),
    ganymede: fleet.ganymede,
    intervalMs: 50,
    timeoutMs: 2_000,
    askEveryMs: 500,
  });
  try {
    await clients.untilServed(SERVED_AGAIN_MS);
    const faults = await injectFaults(fleet, rng, SECONDS * 1_000);
    // Every fault healed: each organization is served again (by another gateway where it lost its own).
    await clients.untilServed(SERVED_AGAIN_MS);
    return { faults, load: await clients.stop() };
  } finally {
    await clients.stop();
  }
}

describe('randomized soak', () => {
  it(
    `faults for ${SECONDS} s (seed ${SEED}): no two processes serve one organization at once`,
    { timeout: (SECONDS + 400) * 1_000 },
    async () => {
      const replay = `SOAK_SEED=${SEED} SOAK_SECONDS=${SECONDS} GANYMEDE_TEST_DATABASE=${testDatabaseKind()}`;
      console.log(`soak: seed ${SEED}; replay with ${replay} pnpm vitest run test/soak/soak.test.ts`);
      const fleet = await startFleet({ replicaCount: testDatabaseKind() === 'postgres' ? 2 : 1, gatewayCount: 3 });
      const { faults, load } = await soak(fleet, seededRandom(SEED)).finally(() => fleet.stop());

      const records = servedRecords(fleet.gatewayLogs());
      const result = checkServingHistory(records, { handoverBoundMs: DRAIN_TIMEOUT_MS });
      const injected = Object.values(faults).reduce((a, b) => a + b, 0);
      const allocations = new Set(result.windows.map((w) => w.allocationId)).size;
      console.log(
        [
          `soak: seed ${SEED}, ${SECONDS} s of faults on ${testDatabaseKind()}`,
          `faults injected: ${injected} (${Object.entries(faults)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`,
          `requests sent: ${load.sent} (${JSON.stringify(load.outcomes)}); asked for at Ganymede: ${JSON.stringify(load.asks)}`,
          `requests checked (served, 200): ${result.records} by ${new Set(records.map((r) => r.pid)).size} processes; ` +
            `serving windows: ${result.windows.length}; allocations: ${allocations}; handovers within ${DRAIN_TIMEOUT_MS} ms: ${result.handovers}`,
          `overlaps: ${result.overlaps.length}`,
        ].join('\n'),
      );

      const violations = result.overlaps.map((o) => describeOverlap(records, o, DRAIN_TIMEOUT_MS)).join('\n\n');
      expect(result.overlaps.length, `seed ${SEED} (${replay}):\n${violations}`).toBe(0);
      // The soak did something: faults of most kinds, traffic served all along, organizations that moved.
      expect(injected).toBeGreaterThanOrEqual(SECONDS / 6);
      expect(Object.values(faults).filter((n) => n > 0).length).toBeGreaterThanOrEqual(6);
      expect(result.records).toBeGreaterThanOrEqual(SECONDS * 5);
      expect(new Set(records.map((r) => r.organizationId)).size).toBe(2);
      expect(allocations).toBeGreaterThan(2);
    },
  );
});
