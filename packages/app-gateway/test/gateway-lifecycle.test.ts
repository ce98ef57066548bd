/**
 * The lifecycle in-process (a Gateway object over real HTTP to a fake Ganymede): the boot's less common
 * turns, and start()/shutdown() being safe to call twice.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { Gateway } from '../src/gateway.js';
import {
  ALLOCATION,
  allocationAnswers,
  type FakeGanymede,
  GATEWAY_ID,
  GATEWAY_TOKEN,
  noticeAuth,
  ORG,
  type Responder,
  type RouteName,
  startFakeGanymede,
} from './fake-ganymede.js';

const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function setup(answers: Partial<Record<RouteName, Responder>>, env: Record<string, string> = {}) {
  const fake: FakeGanymede = await startFakeGanymede(answers);
  const gateway = new Gateway({
    config: loadConfig({
      GATEWAY_ID,
      GATEWAY_TOKEN,
      GANYMEDE_URL: fake.url,
      GATEWAY_PORT: '0',
      GATEWAY_RUN_DIR: '/tmp/gw-lifecycle',
      ...env,
    }),
    logger: silent,
    retry: { baseMs: 10, capMs: 50 },
  });
  cleanups.push(async () => {
    await gateway.shutdown({ kind: 'stop', reason: 'stop' });
    await fake.close();
  });
  return { fake, gateway };
}

describe('Gateway lifecycle', () => {
  it('an allocation racing in while coming up idle is claimed (reclaimed)', async () => {
    const scenario = allocationAnswers({ allocated: false });
    const { fake, gateway } = await setup({
      ...scenario.answers,
      ready: (call) => {
        if (call.body.allocation_id === null && !scenario.state.allocated) {
          scenario.state.allocated = true; // allocated between Ganymede marking us ready and answering
          return {
            status: 200,
            body: {
              gateway_id: GATEWAY_ID,
              allocation: { allocation_id: ALLOCATION, organization_id: ORG, state: 'active', epoch: 1 },
              reclaimed: false,
              lease: { expires_at: null, seconds: 10 },
            },
          };
        }
        return scenario.answers.ready!(call);
      },
    });
    await gateway.start();
    expect(fake.protocolCalls().map((c) => [c.route, c.body.allocation_id ?? null])).toEqual([
      ['reclaim', null],
      ['ready', null],
      ['reclaim', null],
    ]);
    expect(gateway.serving()).toBe(true);
    expect(gateway.whoami()).toMatchObject({ organization_id: ORG, allocation_id: ALLOCATION, epoch: 3 });
  });

  it('start() and shutdown() return the call in flight when called twice; the first reason wins', async () => {
    const scenario = allocationAnswers({ allocated: true });
    const { fake, gateway } = await setup(scenario.answers);
    const a = gateway.start();
    expect(gateway.start()).toBe(a);
    await a;
    const stop = gateway.shutdown({ kind: 'restart', reason: 'deploy' });
    expect(gateway.shutdown({ kind: 'stop', reason: 'stop' })).toBe(stop);
    expect(await stop).toBe(75);
    expect(fake.protocolCalls().map((c) => c.route)).toEqual(['reclaim', 'restart']);
    expect(gateway.phase()).toBe('stopped');
  });

  it('a shutdown during a boot that keeps retrying ends the boot and resolves in time', async () => {
    const { fake, gateway } = await setup(
      { config: () => ({ status: 500, body: { error: 'internal', message: 'internal error' } }) },
      { GATEWAY_SHUTDOWN_TIMEOUT_MS: '1000' },
    );
    const starting = gateway.start().then(
      () => null,
      (error: unknown) => error,
    );
    await fake.waitForCall('config', 2); // retrying
    const startedAt = Date.now();
    expect(await gateway.shutdown({ kind: 'stop', reason: 'stop' })).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(await starting).toMatchObject({ message: expect.stringMatching(/shutting down/) });
    expect(fake.callsTo('stop')).toEqual([]); // held nothing
  });

  it('a shutdown waits for a claim in flight, then tells Ganymede about the allocation it got', async () => {
    const scenario = allocationAnswers({ allocated: false });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { fake, gateway } = await setup({
      ...scenario.answers,
      ready: async (call) => {
        if (call.body.allocation_id !== null) await released;
        return scenario.answers.ready!(call);
      },
    });
    await gateway.start();
    scenario.state.allocated = true;
    const claim = gateway.allocated(ALLOCATION, noticeAuth());
    await fake.waitForCall('ready', 2);
    const stopping = gateway.shutdown({ kind: 'restart', reason: 'reload' });
    release();
    expect((await claim).status).toBe(200);
    expect(await stopping).toBe(75);
    expect(fake.callsTo('restart').map((c) => c.body)).toEqual([{ reason: 'reload', epoch: 3, allocation_id: ALLOCATION }]);
  });
});
