/**
 * This gateway against a Ganymede older than leases, restarts and snapshots (the test kit's `startOlderGanymede`: a
 * real Fastify server with only config, ready and stop), with either not-found body it may answer: the gateway
 * boots with config then ready (no /gateway/reclaim there, said once), serves its allocation, stops renewing leases (said once), keeps the organization's state in memory only (said
 * once), and on a restart leaves the allocation active for its next process instead of ending it.
 */
import { randomUUID } from 'node:crypto';
import { startOlderGanymede } from '@ganymede/testkit/older-ganymede';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { counter } from '../examples/counter.js';
import { loadConfig } from '../src/config.js';
import { Gateway } from '../src/gateway.js';

/** A logger whose lines the test reads, and awaits by `event`. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: () => void }[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write(line: string) {
        const record = JSON.parse(line) as Record<string, unknown>;
        lines.push(record);
        for (const w of waiters.filter((w) => w.event === record.event)) w.resolve();
      },
    },
  );
  const events = (event: string) => lines.filter((l) => l.event === event);
  const waitFor = (event: string) =>
    events(event).length > 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ event, resolve }));
  return { logger, events, waitFor };
}

describe.each(['fastify', 'contract'] as const)("an older Ganymede whose missing routes answer %s's 404", (notFound) => {
  it('serves the allocation; no lease renewals and state in memory only, each said once; a restart leaves the allocation active', async () => {
    const gatewayId = randomUUID();
    const organizationId = randomUUID();
    const older = await startOlderGanymede({ gatewayId, organizationId, notFound });
    const log = recordingLogger();
    /** A process of this gateway against the older Ganymede. */
    const gatewayProcess = (logger: FastifyBaseLogger, env: NodeJS.ProcessEnv = {}) =>
      new Gateway({
        config: loadConfig({
          GATEWAY_ID: gatewayId,
          GATEWAY_TOKEN: 'older-ganymede-gateway-token',
          GANYMEDE_URL: older.url,
          GATEWAY_PORT: '0',
          GATEWAY_RUN_DIR: '/tmp/gw-older-ganymede',
          ...env,
        }),
        logger,
        workload: counter,
      });
    const gateway = gatewayProcess(log.logger, { GATEWAY_AUTOSAVE_MS: '60000' });
    try {
      await gateway.start();
      expect(gateway.allocation()).toMatchObject({ allocationId: older.allocationId, epoch: 1 });

      // The first renewal comes right after boot: 404, so none after it (the lease it got is a second long).
      await log.waitFor('lease_unsupported');
      // The organization's traffic changes its state; the stop's push finds no route and says so.
      const bumped = await request(`http://127.0.0.1:${gateway.port()}/orgs/${organizationId}/counter`, { method: 'POST' });
      expect(await bumped.body.json()).toEqual({ value: 1 });

      expect(await gateway.shutdown({ kind: 'restart', reason: 'reload' })).toBe(75);
      expect(log.events('restart_unsupported')).toHaveLength(1);
      // Never a stop instead: the allocation stays active, for the next process to reclaim (a crash reclaim).
      expect(older.allocation()).toEqual({ state: 'active', epoch: 1 });
      expect(older.calls.filter((c) => c.includes('/gateway/stop'))).toEqual([]);
      expect(older.calls.filter((c) => c.includes('/gateway/lease'))).toHaveLength(1);
      expect(log.events('lease_unsupported')).toHaveLength(1);
      // Booted with config then ready: one /gateway/reclaim tried, said once.
      expect(older.calls.filter((c) => c.includes('/gateway/reclaim'))).toHaveLength(1);
      expect(log.events('reclaim_unsupported')).toHaveLength(1);
      expect(log.events('state_in_memory_only')).toHaveLength(1);
      // A pull's `not_found` may mean "nothing pushed yet": only the push tells the contract flavour's routes apart.
      const tried = older.calls.filter((c) => c.includes('/gateway/data/'));
      expect(tried).toEqual(notFound === 'fastify' ? ['POST /gateway/data/pull'] : ['POST /gateway/data/pull', 'POST /gateway/data/push']);
      expect(log.events('state_in_memory_only')[0]).toMatchObject({
        route: notFound === 'fastify' ? 'POST /gateway/data/pull' : 'POST /gateway/data/push',
      });

      // The next process takes it back as a crash reclaim, epoch + 1.
      const next = gatewayProcess(pino({ level: 'silent' }));
      await next.start();
      expect(next.allocation()).toMatchObject({ allocationId: older.allocationId, epoch: 2 });
      expect(await next.shutdown({ kind: 'stop', reason: 'stop' })).toBe(0);
      expect(older.allocation().state).toBe('ended');
    } finally {
      await gateway.shutdown({ kind: 'stop', reason: 'stop' });
      await older.close();
    }
  });
});
