/**
 * Ganymede's side of authenticated notices: /gateway/ready hands the gateway the public notice key, and the notice
 * `/gateway/start` sends carries a token that the gateway's own check (`checkNotice` from @ganymede/app-gateway)
 * accepts for that gateway and allocation only, expiring within the notify timeout plus a small margin. The key is
 * derived from the signing key (every replica derives the same; another key, another notice key). Neither the
 * notice token nor the key reaches Ganymede's log.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkNotice, importNoticeKey } from '@ganymede/app-gateway';
import { NoticeClaims } from '@ganymede/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokens } from '../src/auth.js';
import { bearer, bufferLogger, startTestGanymede, type TestGanymede } from './support.js';

const NOTIFY_TIMEOUT_MS = 1_500;
const SIGNING_KEY = randomBytes(32).toString('hex');
const logs = bufferLogger();

let g: TestGanymede;
beforeAll(async () => {
  g = await startTestGanymede({ signingKey: SIGNING_KEY, notifyTimeoutMs: NOTIFY_TIMEOUT_MS, logger: logs.logger, manualReaper: true });
});
afterAll(async () => {
  await g?.close();
});

const claimsOf = (authorization: string) =>
  NoticeClaims.passthrough().parse(JSON.parse(Buffer.from(authorization.split('.')[1]!, 'base64url').toString('utf8')));

describe('the notice token', () => {
  it('/gateway/ready gives the notice key; the notice /gateway/start sends passes the gateway check, for that gateway and allocation only', async () => {
    const added = await g.client.addGateway({ headers: g.admin, body: { url: g.target.url } });
    if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
    const ready = await g.client.ready({ headers: bearer(added.body.token), body: { allocation_id: null, instance_id: randomUUID() } });
    if (ready.status !== 200) throw new Error(`ready answered ${ready.status}`);
    expect(ready.body.notice_key).toBe(g.ganymede.tokens.noticeKey());
    const key = importNoticeKey(ready.body.notice_key!)!;
    expect(key).toBeDefined();

    const organizationId = randomUUID();
    const started = await g.client.start({ headers: await g.userToken(organizationId), body: { organization_id: organizationId } });
    if (started.status !== 201) throw new Error(`start answered ${started.status}`);
    const allocationId = started.body.allocation_id;
    const gatewayId = added.body.gateway_id;
    const authorization = g.target.authorizations.at(-1)!;
    expect(authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

    expect(checkNotice(authorization, key, { gatewayId, allocationId })).toEqual({ ok: true });
    expect(checkNotice(authorization, key, { gatewayId: randomUUID(), allocationId })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/another gateway/),
    });
    expect(checkNotice(authorization, key, { gatewayId, allocationId: randomUUID() })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/another allocation/),
    });

    const claims = claimsOf(authorization);
    expect(claims).toMatchObject({ typ: 'notice', iss: 'ganymede', aud: gatewayId, sub: allocationId });
    // Short-lived: the notify timeout plus a margin of a few seconds; refused once expired.
    expect(claims.exp - claims.iat).toBeGreaterThanOrEqual(NOTIFY_TIMEOUT_MS / 1000);
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(Math.ceil(NOTIFY_TIMEOUT_MS / 1000) + 3);
    expect(checkNotice(authorization, key, { gatewayId, allocationId }, claims.exp)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired/),
    });
    // Signed by another Ganymede key: refused.
    const stranger = importNoticeKey(new Tokens(randomBytes(32)).noticeKey())!;
    expect(checkNotice(authorization, stranger, { gatewayId, allocationId })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/signature/),
    });
  });

  it('the notice key is derived from the signing key: the same for every replica, another for another key', () => {
    const key = new Uint8Array(Buffer.from(SIGNING_KEY, 'hex'));
    expect(new Tokens(key).noticeKey()).toBe(g.ganymede.tokens.noticeKey());
    expect(new Tokens(randomBytes(32)).noticeKey()).not.toBe(g.ganymede.tokens.noticeKey());
    expect(g.ganymede.tokens.noticeKey()).toMatch(/^[\w-]{43}$/);
  });

  it('neither the notice tokens nor the notice key reach the log', () => {
    const secrets = [...g.target.authorizations.map((a) => a!.slice('Bearer '.length)), g.ganymede.tokens.noticeKey()];
    expect(secrets.length).toBeGreaterThan(1);
    expect(logs.lines.some((l) => l.includes('"transition":"allocated"'))).toBe(true);
    const leaks = logs.lines.filter(
      (line) => /bearer/i.test(line) || secrets.some((s) => line.includes(s) || line.includes(s.split('.')[2] ?? s)),
    );
    expect(leaks).toEqual([]);
  });
});
