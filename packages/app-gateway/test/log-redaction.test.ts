/**
 * Secrets never reach the gateway's logs (its logger: `src/logger.ts`, pino with LOG_REDACT): real `gateway
 * supervise` and `gateway run` processes against a fake Ganymede that hands out JWT-shaped tokens, driven through
 * boot, renewals, notices (genuine and forged, with JWT-shaped notice tokens), their HTTP API, a restart, a stop, a
 * refused renewal, and the failures whose logged
 * error carries Ganymede's answer (an off-contract /gateway/config with the organization token in it). No line of
 * stdout or stderr may hold a token, a JWT, or `Bearer`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayChild, spawnGatewayChild } from '@ganymede/testkit/gateway-process';
import {
  ALLOCATION,
  allocationAnswers,
  type FakeGanymede,
  GATEWAY_ID,
  noticeToken,
  ORG,
  type Answer,
  type Responder,
  type RouteName,
  startFakeGanymede,
} from './fake-ganymede.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** A JWT-shaped token nobody else could print by chance. */
function jwtLike(claims: Record<string, unknown>) {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'HS256' })}.${part({ ...claims, nonce: randomBytes(8).toString('hex') })}.${randomBytes(32).toString('base64url')}`;
}
const GATEWAY_TOKEN = jwtLike({ typ: 'gateway', sub: GATEWAY_ID });
const ORG_TOKEN = jwtLike({ typ: 'organization', sub: ALLOCATION });
const SECRETS = [GATEWAY_TOKEN, ORG_TOKEN, ...[GATEWAY_TOKEN, ORG_TOKEN].map((t) => t.split('.')[2]!)];
/** A notice's Authorization header, its token (and signature) added to the secrets no line may hold. */
function notice(token: string) {
  SECRETS.push(token, token.split('.')[2]!);
  return `Bearer ${token}`;
}
const genuineNotice = () => notice(noticeToken());
const forgedNotice = () => notice(noticeToken({}, { key: generateKeyPairSync('ed25519').privateKey }));

const configBody = (over: Record<string, unknown> = {}) => ({
  gateway_id: GATEWAY_ID,
  organization_id: ORG,
  organization_token: ORG_TOKEN,
  allocation_id: ALLOCATION,
  state: 'active',
  epoch: 2,
  restart_deadline: null,
  ...over,
});

async function spawn(command: 'run' | 'supervise', answers: Partial<Record<RouteName, Responder>>) {
  const dir = mkdtempSync(join(tmpdir(), 'gw-logs-'));
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const fake: FakeGanymede = await startFakeGanymede(answers);
  const proc = spawnGatewayChild(command, {
    env: {
      GATEWAY_ID,
      GATEWAY_TOKEN,
      GANYMEDE_URL: fake.url,
      GATEWAY_PORT: '0',
      GATEWAY_RUN_DIR: runDir,
      GATEWAY_RELOAD_MARKER: join(dir, 'reloading'),
      GATEWAY_LOG_LEVEL: 'trace',
      GATEWAY_BOOT_TIMEOUT_MS: '2000',
    },
  });
  cleanups.push(async () => {
    for (const r of proc.logs) {
      if (r.event === 'child_started' && typeof r.child_pid === 'number') {
        try {
          process.kill(r.child_pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await proc.kill();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fake, proc };
}

/** Every line the process wrote, stdout and stderr, that gives a secret away. */
function leaks(proc: GatewayChild): string[] {
  const lines = [...proc.logs.map((r) => JSON.stringify(r)), ...proc.stderr().split('\n')];
  return lines.filter(
    (line) => /bearer/i.test(line) || /eyJ[\w-]{8,}\.[\w-]{8,}/.test(line) || SECRETS.some((secret) => line.includes(secret)),
  );
}

const call = async (port: number, method: 'GET' | 'POST', path: string, body?: string, authorization?: string) => {
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) } }),
  });
  await res.body.dump();
  return res.statusCode;
};

/** A claim's answer with a one-second lease. */
function oneSecondLease(answer: Answer | Promise<Answer>): Answer {
  const claimed = answer as { status: number; body: Record<string, unknown> };
  return claimed.status === 200 ? { ...claimed, body: { ...claimed.body, lease: { expires_at: null, seconds: 1 } } } : claimed;
}

describe("the gateway's logs hold no secret", () => {
  it('a supervised gateway: boot, renewals (one refused), its API, a restart, a stop', async () => {
    const scenario = allocationAnswers({ allocated: true, epoch: 2 });
    let renewals = 0;
    const served = () => ({ allocation_id: ALLOCATION, organization_id: ORG, state: 'active', epoch: scenario.state.epoch });
    const { fake, proc } = await spawn('supervise', {
      ...scenario.answers,
      config: () => ({ status: 200, body: configBody({ epoch: scenario.state.epoch }) }),
      // A one-second lease: renewals come every third of a second. The second is refused (401).
      ready: (c) => oneSecondLease(scenario.answers.ready!(c)),
      reclaim: (c) => {
        const answer = oneSecondLease(scenario.answers.reclaim!(c)) as { status: number; body: Record<string, unknown> };
        return answer.status === 200 ? { ...answer, body: { ...answer.body, ...configBody({ epoch: scenario.state.epoch }) } } : answer;
      },
      lease: (c) =>
        ++renewals === 2
          ? { status: 401, body: { error: 'unauthorized', message: 'invalid token: ERR_JWS_SIGNATURE_VERIFICATION_FAILED' } }
          : {
              status: 200,
              body: { lease: { expires_at: '2030-01-01T00:00:00.000Z', seconds: 1 }, allocation: c.body.allocation_id ? served() : null },
            },
    });
    const serving = await proc.waitForLog((r) => r.role === 'gateway' && r.event === 'serving');
    await proc.waitForLog((r) => r.event === 'lease_refused');
    await fake.waitForCall('lease', 3);
    const port = (await proc.waitForLog((r) => r.event === 'listening')).port as number;
    expect(await call(port, 'GET', '/healthz')).toBe(200);
    expect(await call(port, 'GET', '/whoami')).toBe(200);
    expect(await call(port, 'GET', `/orgs/${ORG}`)).toBe(200);
    expect(await call(port, 'GET', '/orgs/%ZZ')).toBe(400);
    expect(await call(port, 'POST', '/allocated', JSON.stringify({ allocation_id: ALLOCATION }), forgedNotice())).toBe(401);
    expect(await call(port, 'POST', '/allocated', JSON.stringify({ allocation_id: ALLOCATION }), `Bearer ${GATEWAY_TOKEN}`)).toBe(401);
    expect(await call(port, 'POST', '/allocated', JSON.stringify({ allocation_id: ALLOCATION }), genuineNotice())).toBe(200);
    expect(await call(port, 'POST', '/allocated', JSON.stringify({ allocation_id: ORG_TOKEN }), genuineNotice())).toBe(400);
    expect(await call(port, 'POST', '/allocated', `{"allocation_id": "${GATEWAY_TOKEN}`)).toBe(400);

    const from = proc.logs.length;
    proc.signal('SIGHUP');
    await proc.waitForLog((r) => r.role === 'gateway' && r.event === 'serving' && r.pid !== serving.pid, { from });
    await proc.waitForLog((r) => r.event === 'handover_complete', { from });
    proc.signal('SIGTERM');
    expect((await proc.exited).code).toBe(0);

    expect(fake.callsTo('restart').map((c) => c.authorization)).toEqual([`Bearer ${ORG_TOKEN}`]);
    expect(fake.callsTo('stop').map((c) => c.authorization)).toEqual([`Bearer ${ORG_TOKEN}`]);
    const events = new Set(proc.logs.map((r) => r.event));
    for (const e of ['child_started', 'reclaimed', 'lease_refused', 'notice_refused', 'restart_requested', 'stop_confirmed'])
      expect(events, e).toContain(e);
    expect(leaks(proc)).toEqual([]);
  });

  it("a boot that fails on an off-contract /gateway/config logs the error, but not the answer's organization token", async () => {
    const { proc } = await spawn('run', {
      // A declared status with a body off the contract (an unknown state): not retried, the boot fails.
      config: () => ({ status: 200, body: configBody({ state: 'paused' }) }),
    });
    expect((await proc.exited).code).toBe(1);
    const failed = proc.logs.find((r) => r.event === 'boot_failed');
    expect(failed).toBeDefined();
    expect(failed).toMatchObject({ err: { body: { organization_token: '[redacted]', organization_id: ORG } } });
    expect(leaks(proc)).toEqual([]);
  });

  it('a notice whose /gateway/config answer is off the contract: the claim fails (503), logged without the token', async () => {
    const scenario = allocationAnswers({ allocated: false });
    const { fake, proc } = await spawn('run', scenario.answers);
    await proc.waitForLog((r) => r.event === 'idle');
    const port = (await proc.waitForLog((r) => r.event === 'listening')).port as number;
    fake.answers.config = () => ({ status: 200, body: configBody({ epoch: 0 }) });
    expect(await call(port, 'POST', '/allocated', JSON.stringify({ allocation_id: ALLOCATION }), genuineNotice())).toBe(503);
    expect(await proc.waitForLog((r) => r.event === 'claim_failed')).toMatchObject({ err: { body: { organization_token: '[redacted]' } } });
    proc.signal('SIGTERM');
    expect((await proc.exited).code).toBe(0);
    expect(leaks(proc)).toEqual([]);
  });
});
