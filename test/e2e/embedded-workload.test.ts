/**
 * The workload API, embedded as the README shows it: the counter example (packages/app-gateway/examples) in a
 * gateway built in this process, against a real Ganymede. Its state survives a restart into a new Gateway.
 */
import { Gateway, loadConfig, type Workload } from '@ganymede/app-gateway';
import { registerGateway, startOrganization } from '@ganymede/testkit';
import pino from 'pino';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { counter } from '../../packages/app-gateway/examples/counter.js';
import { ganymede } from './support.js';

const running: Gateway[] = [];
afterEach(async () => {
  for (const gateway of running.splice(0)) await gateway.shutdown({ kind: 'stop', reason: 'stop' });
});

/** The counter, recording the lifecycle callbacks the gateway makes on its states (the example implements none). */
const calls: string[] = [];
const recorded: Workload = {
  routes: counter.routes,
  createState: (context) =>
    Object.assign(counter.createState(context), {
      serving: () => calls.push('serving'),
      draining: () => calls.push('draining'),
      superseded: () => calls.push('superseded'),
      stopped: () => calls.push('stopped'),
    }),
};

describe('an embedded workload', () => {
  it('serves its routes and keeps its state across a restart into a new process', async () => {
    const g = await ganymede();
    const gw = await registerGateway(g);
    const config = loadConfig({ GATEWAY_ID: gw.gateway_id, GATEWAY_TOKEN: gw.token, GANYMEDE_URL: g.url, GATEWAY_PORT: String(gw.port) });
    const start = async () => {
      const gateway = new Gateway({ config, logger: pino({ level: 'silent' }), workload: recorded });
      running.push(gateway);
      await gateway.start();
      return gateway;
    };
    const first = await start();
    const { organizationId, res } = await startOrganization(g);
    expect(res.status).toBe(201);
    const increment = async () => {
      const answer = await request(`${gw.url}/orgs/${organizationId}/counter`, { method: 'POST' });
      return (await answer.body.json()) as { value: number };
    };
    expect(await increment()).toEqual({ value: 1 });
    expect(await increment()).toEqual({ value: 2 });

    // A restart pushes the state, then keeps the allocation; the next process pulls it before serving.
    expect(calls).toEqual(['serving']);
    expect(await first.shutdown({ kind: 'restart', reason: 'reload' })).toBe(75);
    expect(calls).toEqual(['serving', 'stopped']);
    running.splice(running.indexOf(first), 1);
    await start();
    expect(await increment()).toEqual({ value: 3 });
    expect(calls).toEqual(['serving', 'stopped', 'serving']);
  });
});
