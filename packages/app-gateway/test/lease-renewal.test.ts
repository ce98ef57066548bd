/**
 * The gateway's lease renewal loop (`Gateway.renewLease`), in process against a fake Ganymede that grants a
 * one-second lease (so renewals come about every third of a second): what it sends, and what it does with each
 * answer. Every wait is on a call reaching the fake.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { Gateway } from '../src/gateway.js';
import {
  ALLOCATION,
  allocationAnswers,
  type Call,
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

const LEASE = { expires_at: '2030-01-01T00:00:00.000Z', seconds: 1 };

/** A gateway holding the allocation (or idle), whose Ganymede grants one-second leases; `lease` answers renewals. */
async function setup(options: { allocated: boolean; lease?: Responder; extra?: Partial<Record<RouteName, Responder>> }) {
  const scenario = allocationAnswers({ allocated: options.allocated, epoch: 2 });
  const served = () => ({ allocation_id: ALLOCATION, organization_id: ORG, state: 'active', epoch: scenario.state.epoch });
  const fake = await startFakeGanymede({
    ...scenario.answers,
    ready: (c) => {
      const answer = scenario.answers.ready!(c) as { status: number; body: Record<string, unknown> };
      return answer.status === 200 ? { ...answer, body: { ...answer.body, lease: { expires_at: null, seconds: 1 } } } : answer;
    },
    lease: options.lease ?? ((c: Call) => ({ status: 200, body: { lease: LEASE, allocation: c.body.allocation_id ? served() : null } })),
    ...options.extra,
  });
  const superseded: string[] = [];
  let stoodDown!: (reason: string) => void;
  const standDown = new Promise<string>((resolve) => (stoodDown = resolve));
  const gateway = new Gateway({
    config: loadConfig({
      GATEWAY_ID,
      GATEWAY_TOKEN,
      GANYMEDE_URL: fake.url,
      GATEWAY_PORT: '0',
      GATEWAY_RUN_DIR: '/tmp/gw-lease',
      GATEWAY_REQUEST_TIMEOUT_MS: '200',
    }),
    logger: silent,
    retry: { baseMs: 10, capMs: 50 },
    onSuperseded: (reason) => {
      superseded.push(reason);
      stoodDown(reason);
    },
  });
  cleanups.push(async () => {
    await gateway.shutdown({ kind: 'stop', reason: 'stop' });
    await fake.close();
  });
  await gateway.start();
  return { fake, gateway, scenario, served, superseded, standDown };
}

describe('lease renewal', () => {
  it('renews at once after boot, then again and again, naming its instance, its allocation and its epoch', async () => {
    const { fake, gateway } = await setup({ allocated: true });
    const third = await fake.waitForCall('lease', 3);
    for (const c of fake.callsTo('lease').slice(0, 3)) {
      expect(c.authorization).toBe(`Bearer ${GATEWAY_TOKEN}`);
      expect(c.body).toEqual({ instance_id: gateway.instanceId, allocation_id: ALLOCATION, epoch: 3 });
    }
    // About a third of the one-second lease apart (±25%), with slack for a busy machine.
    const [first, second] = fake.callsTo('lease');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(240);
    expect(third.at - second!.at).toBeGreaterThanOrEqual(240);
    expect(gateway.serving()).toBe(true);
  });

  it('an idle process renews with allocation_id null and no epoch', async () => {
    const { fake, gateway } = await setup({ allocated: false });
    const call = await fake.waitForCall('lease', 2);
    expect(call.body).toEqual({ instance_id: gateway.instanceId, allocation_id: null });
  });

  it('an idle renewal answering an allocation that raced in: the process claims it (config, ready) and serves', async () => {
    let raced = false;
    const { fake, gateway, scenario, served } = await setup({
      allocated: false,
      lease: (c) => {
        if (!raced && c.body.allocation_id === null) {
          raced = true;
          scenario.state.allocated = true; // allocated meanwhile; the notice never arrived
        }
        return { status: 200, body: { lease: LEASE, allocation: scenario.state.allocated ? served() : null } };
      },
    });
    await fake.waitForCall('ready', 2);
    await fake.waitForCall('lease', 2);
    expect(fake.protocolCalls().map((c) => [c.route, c.body.allocation_id ?? null])).toEqual([
      ['reclaim', null],
      ['ready', null],
      ['config', null],
      ['ready', ALLOCATION],
    ]);
    expect(gateway.serving()).toBe(true);
    expect(gateway.whoami()).toMatchObject({ allocation_id: ALLOCATION, organization_id: ORG });
  });

  it.each(['superseded', 'stale_epoch'] as const)('409 %s: stops serving and stands down, telling Ganymede nothing', async (error) => {
    const { fake, gateway, superseded, standDown } = await setup({
      allocated: true,
      lease: () => ({ status: 409, body: { error, message: 'another process took over' } }),
    });
    expect(await standDown).toBe(error);
    expect(superseded).toEqual([error]);
    expect(gateway.serving()).toBe(false);
    expect(gateway.whoami()).toMatchObject({ allocation_id: null, epoch: null });
    expect(gateway.phase()).toBe('stood_down');
    // It takes no allocation either: the process that took over does.
    expect(await gateway.allocated(ALLOCATION, noticeAuth())).toMatchObject({ status: 503, body: { error: 'not_ready' } });
    expect(fake.protocolCalls().map((c) => c.route)).toEqual(['reclaim']);
  });

  it('409 allocation_ended: stops serving it and says ready again, idle', async () => {
    const { fake, gateway, scenario, superseded } = await setup({
      allocated: true,
      lease: (c) => {
        if (c.body.allocation_id === null) return { status: 200, body: { lease: LEASE, allocation: null } };
        scenario.state.allocated = false; // the reaper ended it
        return { status: 409, body: { error: 'allocation_ended', message: 'the allocation has ended' } };
      },
    });
    await fake.waitForCall('ready');
    const idle = await fake.waitForCall('lease', 2);
    expect(fake.callsTo('ready')[0]!.body).toEqual({ allocation_id: null, instance_id: gateway.instanceId });
    expect(idle.body).toEqual({ instance_id: gateway.instanceId, allocation_id: null });
    expect(gateway.serving()).toBe(false);
    expect(gateway.phase()).toBe('up');
    expect(superseded).toEqual([]);
    expect(fake.callsTo('stop')).toEqual([]);
  });

  it.each([
    ['answers 500', (): ReturnType<Responder> => ({ status: 500, body: { error: 'internal', message: 'internal error' } })],
    ['never answers (the call times out)', (): ReturnType<Responder> => 'hang'],
  ] as const)('Ganymede %s: keeps serving and renews again', async (_, failure) => {
    let calls = 0;
    const { fake, gateway, served, superseded } = await setup({
      allocated: true,
      lease: () => (++calls <= 2 ? failure() : { status: 200, body: { lease: LEASE, allocation: served() } }),
    });
    await fake.waitForCall('lease', 3);
    expect(gateway.serving()).toBe(true);
    expect(superseded).toEqual([]);
    expect(fake.protocolCalls().map((c) => c.route)).toEqual(['reclaim']);
  });
});
