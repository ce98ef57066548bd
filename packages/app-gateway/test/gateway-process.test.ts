/**
 * A real `gateway run` process (node and the CLI bundle, as a user runs it) against a fake Ganymede: boot, reclaim,
 * each shutdown signal and what it tells Ganymede, exit codes, deadlines. Every wait is on an event
 * (a call reaching the fake, a log line, the process's exit), never a fixed sleep.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { GATEWAY_CLI } from '@ganymede/testkit/clis';
import { type GatewayChild, spawnGatewayChild } from '@ganymede/testkit/gateway-process';
import { spawnLogged } from '@ganymede/testkit/logged-process';
import {
  ALLOCATION,
  allocationAnswers,
  type FakeGanymede,
  GATEWAY_ID,
  GATEWAY_TOKEN,
  noticeAuth,
  ORG,
  ORG_TOKEN,
  type Responder,
  type RouteName,
  startFakeGanymede,
} from './fake-ganymede.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

interface Setup {
  fake: FakeGanymede;
  gateway: GatewayChild;
  reloadMarker: string;
  runDir: string;
}

async function start(answers: Partial<Record<RouteName, Responder>>, env: Record<string, string> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-process-'));
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const reloadMarker = join(dir, 'reloading');
  const fake = await startFakeGanymede(answers);
  const gateway = spawnGatewayChild('run', {
    env: {
      GATEWAY_ID,
      GATEWAY_TOKEN,
      GANYMEDE_URL: fake.url,
      GATEWAY_PORT: '0',
      GATEWAY_RELOAD_MARKER: reloadMarker,
      GATEWAY_RUN_DIR: runDir,
      ...env,
    },
  });
  cleanups.push(async () => {
    await gateway.kill();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fake, gateway, reloadMarker, runDir };
}

/** Boots a gateway that reclaims its allocation (epoch 2 → 3) and waits until it serves. */
async function startServing(overrides: Partial<Record<RouteName, Responder>> = {}, env: Record<string, string> = {}) {
  const scenario = allocationAnswers({ allocated: true, epoch: 2 });
  const setup = await start({ ...scenario.answers, ...overrides }, env);
  await setup.gateway.waitForLog((r) => r.event === 'serving');
  return setup;
}

const routes = (fake: FakeGanymede) => fake.protocolCalls().map((c) => c.route);

describe('gateway run', () => {
  it('boots by reclaiming in one call: /reclaim (gateway token) with its instance id; serves at the new epoch', async () => {
    const { fake, gateway } = await startServing();
    expect(routes(fake)).toEqual(['reclaim']);
    const [reclaim] = fake.calls;
    expect(reclaim!.authorization).toBe(`Bearer ${GATEWAY_TOKEN}`);
    expect(reclaim!.body).toEqual({ instance_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const serving = await gateway.waitForLog((r) => r.event === 'serving');
    expect(serving).toMatchObject({ gateway_id: GATEWAY_ID, organization_id: ORG, allocation_id: ALLOCATION, epoch: 3, role: 'gateway' });

    const port = await gateway.port();
    const res = await request(`http://127.0.0.1:${port}/orgs/${ORG}`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ organization_id: ORG, allocation_id: ALLOCATION, epoch: 3, pid: gateway.pid });
  });

  it('its bundle is one file: copied alone into an empty directory and run as a program, it reclaims and serves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-alone-'));
    const program = join(dir, 'gateway.mjs');
    copyFileSync(GATEWAY_CLI, program); // executable: the copy keeps the mode
    const fake = await startFakeGanymede(allocationAnswers({ allocated: true, epoch: 2 }).answers);
    const env = { GATEWAY_ID, GATEWAY_TOKEN, GANYMEDE_URL: fake.url, GATEWAY_PORT: '0', GATEWAY_RUN_DIR: dir };
    const gateway = spawnLogged(program, ['run'], { env, cwd: dir });
    cleanups.push(async () => {
      await gateway.kill();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const serving = await gateway.waitForLog((r) => r.event === 'serving');
    expect(serving).toMatchObject({ organization_id: ORG, allocation_id: ALLOCATION, epoch: 3 });
    const { port } = await gateway.waitForLog((r) => r.event === 'listening' && typeof r.port === 'number');
    const res = await request(`http://127.0.0.1:${String(port)}/orgs/${ORG}`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ organization_id: ORG, epoch: 3, pid: gateway.pid });
  });

  it('SIGHUP: exactly one /gateway/restart (reason reload, its epoch, the organization token), no /stop, exit 75', async () => {
    const { fake, gateway } = await startServing();
    gateway.signal('SIGHUP');
    expect(await gateway.exited).toEqual({ code: 75, signal: null });
    expect(routes(fake)).toEqual(['reclaim', 'restart']);
    const restart = fake.callsTo('restart')[0]!;
    expect(restart.authorization).toBe(`Bearer ${ORG_TOKEN}`);
    expect(restart.body).toEqual({ reason: 'reload', epoch: 3, allocation_id: ALLOCATION });
    expect(gateway.logs.find((r) => r.event === 'restart_requested')).toMatchObject({
      reason: 'reload',
      epoch: 3,
      allocation_id: ALLOCATION,
      organization_id: ORG,
    });
  });

  it('SIGUSR2: /gateway/restart with reason restart and grace_seconds when configured, exit 75', async () => {
    const { fake, gateway } = await startServing({}, { GATEWAY_RESTART_GRACE_SECONDS: '20' });
    gateway.signal('SIGUSR2');
    expect((await gateway.exited).code).toBe(75);
    expect(fake.callsTo('restart').map((c) => c.body)).toEqual([
      { reason: 'restart', epoch: 3, allocation_id: ALLOCATION, grace_seconds: 20 },
    ]);
    expect(fake.callsTo('stop')).toEqual([]);
  });

  it('SIGTERM without a reload marker: /gateway/stop reason stop, exit 0', async () => {
    const { fake, gateway } = await startServing();
    gateway.signal('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(routes(fake)).toEqual(['reclaim', 'stop']);
    expect(fake.callsTo('stop')[0]).toMatchObject({
      authorization: `Bearer ${ORG_TOKEN}`,
      body: { reason: 'stop', epoch: 3, allocation_id: ALLOCATION },
    });
  });

  it('SIGTERM with the reload marker containing deploy: /gateway/restart reason deploy, marker deleted, exit 75', async () => {
    const { fake, gateway, reloadMarker } = await startServing();
    writeFileSync(reloadMarker, 'deploy\n');
    gateway.signal('SIGTERM');
    expect((await gateway.exited).code).toBe(75);
    expect(fake.callsTo('restart').map((c) => c.body)).toEqual([{ reason: 'deploy', epoch: 3, allocation_id: ALLOCATION }]);
    expect(fake.callsTo('stop')).toEqual([]);
    expect(existsSync(reloadMarker)).toBe(false);
  });

  it('SIGINT with <run dir>/stop-reason decommission: /gateway/stop reason decommission, even with a reload marker', async () => {
    const { fake, gateway, reloadMarker, runDir } = await startServing();
    writeFileSync(reloadMarker, 'reload\n');
    writeFileSync(join(runDir, 'stop-reason'), 'decommission\n');
    gateway.signal('SIGINT');
    expect((await gateway.exited).code).toBe(0);
    expect(fake.callsTo('stop').map((c) => c.body)).toEqual([{ reason: 'decommission', epoch: 3, allocation_id: ALLOCATION }]);
    expect(existsSync(join(runDir, 'stop-reason'))).toBe(false);
    expect(existsSync(reloadMarker)).toBe(true);
  });

  it('/gateway/restart answered 404 (an older Ganymede): no fallback to /gateway/stop, exit 75', async () => {
    const { fake, gateway } = await startServing({
      restart: () => ({ status: 404, body: { error: 'not_found', message: 'no route POST /gateway/restart' } }),
    });
    gateway.signal('SIGHUP');
    expect((await gateway.exited).code).toBe(75);
    expect(routes(fake)).toEqual(['reclaim', 'restart']);
    expect(gateway.logs.some((r) => r.event === 'restart_unsupported')).toBe(true);
  });

  it("/gateway/restart 404 with a body off the contract (Fastify's default): still no /stop, exit 75", async () => {
    const { fake, gateway } = await startServing({
      restart: () => ({ status: 404, body: { statusCode: 404, error: 'Not Found', message: 'Route POST:/gateway/restart not found' } }),
    });
    gateway.signal('SIGHUP');
    expect((await gateway.exited).code).toBe(75);
    expect(routes(fake)).toEqual(['reclaim', 'restart']);
    expect(gateway.logs.some((r) => r.event === 'restart_unsupported')).toBe(true);
  });

  it('/gateway/restart 409 stale_epoch: nothing to keep, exit 75 without /stop', async () => {
    const { fake, gateway } = await startServing({
      restart: () => ({ status: 409, body: { error: 'stale_epoch', message: 'epoch 3 is stale: the allocation is at epoch 4' } }),
    });
    gateway.signal('SIGHUP');
    expect((await gateway.exited).code).toBe(75);
    expect(routes(fake)).toEqual(['reclaim', 'restart']);
    expect(gateway.logs.find((r) => r.event === 'restart_refused')).toMatchObject({ error: 'stale_epoch' });
  });

  it('Ganymede never answers /gateway/restart: the process still exits within the shutdown timeout', async () => {
    const timeoutMs = 1_000;
    const { fake, gateway } = await startServing({ restart: () => 'hang' }, { GATEWAY_SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
    const signalledAt = Date.now();
    gateway.signal('SIGHUP');
    await fake.waitForCall('restart');
    const exit = await gateway.exited;
    const elapsed = Date.now() - signalledAt;
    expect(exit.code).toBe(75);
    expect(elapsed).toBeLessThan(timeoutMs + 500);
    expect(gateway.logs.some((r) => r.event === 'restart_failed')).toBe(true);
  });

  it('a second signal during a shutdown forces the exit at once', async () => {
    const { fake, gateway } = await startServing({ stop: () => 'hang' }, { GATEWAY_SHUTDOWN_TIMEOUT_MS: '20000' });
    gateway.signal('SIGTERM');
    await fake.waitForCall('stop');
    const signalledAt = Date.now();
    gateway.signal('SIGINT');
    expect((await gateway.exited).code).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(2_000);
    expect(gateway.logs.some((r) => r.event === 'forced_exit')).toBe(true);
  });

  it('idle path: /reclaim 404 → /ready null; POST /allocated → /config, /ready, 200 Whoami with the organization', async () => {
    const scenario = allocationAnswers({ allocated: false });
    const { fake, gateway } = await start(scenario.answers);
    await gateway.waitForLog((r) => r.event === 'idle');
    expect(routes(fake)).toEqual(['reclaim', 'ready']);
    expect(fake.callsTo('ready')[0]!.body).toMatchObject({ allocation_id: null });

    scenario.state.allocated = true; // Ganymede allocates this gateway, then notifies it
    const port = await gateway.port();
    const res = await request(`http://127.0.0.1:${port}/allocated`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: noticeAuth() },
      body: JSON.stringify({ allocation_id: ALLOCATION }),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({
      gateway_id: GATEWAY_ID,
      organization_id: ORG,
      allocation_id: ALLOCATION,
      epoch: 3,
      pid: gateway.pid,
    });
    expect(routes(fake)).toEqual(['reclaim', 'ready', 'config', 'ready']);
    expect(fake.callsTo('ready')[1]!.body).toEqual({ allocation_id: ALLOCATION, instance_id: fake.callsTo('ready')[0]!.body.instance_id });

    gateway.signal('SIGTERM');
    expect((await gateway.exited).code).toBe(0);
    expect(fake.callsTo('stop').map((c) => c.body)).toEqual([{ reason: 'stop', epoch: 3, allocation_id: ALLOCATION }]);
  });

  it('a reclaim refused (409 allocation_ended: a crash loop) comes up idle with /ready null', async () => {
    const scenario = allocationAnswers({ allocated: true });
    const { fake, gateway } = await start({
      ...scenario.answers,
      reclaim: () => ({
        status: 409,
        body: { error: 'allocation_ended', message: 'the gateway kept dying: the allocation ended (crash_loop)' },
      }),
    });
    await gateway.waitForLog((r) => r.event === 'idle');
    expect(fake.protocolCalls().map((c) => [c.route, c.body.allocation_id ?? null])).toEqual([
      ['reclaim', null],
      ['ready', null],
    ]);
    gateway.signal('SIGHUP');
    expect((await gateway.exited).code).toBe(75);
    expect(fake.callsTo('restart')).toEqual([]); // idle: nothing to keep
  });

  it.each([
    ["Fastify's", { statusCode: 404, error: 'Not Found', message: 'Route POST:/gateway/reclaim not found' }],
    ["the contract's", { error: 'not_found', message: 'no route POST /gateway/reclaim' }],
  ])('an older Ganymede without /gateway/reclaim (%s 404): /config then /ready, said once', async (_, notFound) => {
    const scenario = allocationAnswers({ allocated: true, epoch: 2 });
    const { fake, gateway } = await start({ ...scenario.answers, reclaim: () => ({ status: 404, body: notFound }) });
    await gateway.waitForLog((r) => r.event === 'serving');
    expect(fake.protocolCalls().map((c) => [c.route, c.body.allocation_id ?? null])).toEqual([
      ['reclaim', null],
      ['config', null],
      ['ready', ALLOCATION],
    ]);
    expect(gateway.logs.filter((r) => r.event === 'reclaim_unsupported')).toHaveLength(1);
    expect(gateway.logs.find((r) => r.event === 'serving')).toMatchObject({ allocation_id: ALLOCATION, epoch: 3 });
  });

  it('boot retries a 503 from Ganymede, then reclaims', async () => {
    const scenario = allocationAnswers({ allocated: true });
    let reclaims = 0;
    const { fake, gateway } = await start({
      ...scenario.answers,
      reclaim: (call) =>
        ++reclaims <= 2 ? { status: 503, body: { error: 'internal', message: 'starting' } } : scenario.answers.reclaim!(call),
    });
    await gateway.waitForLog((r) => r.event === 'serving');
    expect(routes(fake)).toEqual(['reclaim', 'reclaim', 'reclaim']);
    expect(gateway.logs.filter((r) => r.event === 'boot_retry')).toHaveLength(2);
  });

  it('Ganymede unreachable past the boot budget: exit 1, saying where it looked and which flag and variable set it', async () => {
    const fake = await startFakeGanymede();
    const url = fake.url;
    await fake.close();
    const gateway = spawnGatewayChild('run', {
      env: { GATEWAY_ID, GATEWAY_TOKEN, GANYMEDE_URL: url, GATEWAY_PORT: '0', GATEWAY_BOOT_TIMEOUT_MS: '300', GATEWAY_RUN_DIR: tmpdir() },
    });
    cleanups.push(() => gateway.kill());
    expect((await gateway.exited).code).toBe(1);
    const failed = gateway.logs.find((r) => r.event === 'boot_failed');
    expect(failed).toMatchObject({ level: 'fatal' });
    expect(failed?.msg).toContain(`Ganymede is at ${url} (set with --ganymede-url or GANYMEDE_URL)`);
  });

  it('a refused token (401) is not retried: exit 1', async () => {
    const { fake, gateway } = await start({
      reclaim: () => ({ status: 401, body: { error: 'unauthorized', message: 'missing or invalid bearer token' } }),
    });
    expect((await gateway.exited).code).toBe(1);
    expect(routes(fake)).toEqual(['reclaim']);
    expect(gateway.logs.find((r) => r.event === 'boot_failed')?.msg).toContain('--token / GATEWAY_TOKEN');
  });

  it('invalid configuration: exit 2 with a clear message', async () => {
    const gateway = spawnGatewayChild('run', { env: { GATEWAY_ID: 'not-a-uuid', GATEWAY_TOKEN: '' } });
    cleanups.push(() => gateway.kill());
    expect((await gateway.exited).code).toBe(2);
    expect(gateway.stderr()).toMatch(/GATEWAY_ID \(--id\).*uuid/i);
    expect(gateway.stderr()).toMatch(/GATEWAY_TOKEN/);
  });
});
