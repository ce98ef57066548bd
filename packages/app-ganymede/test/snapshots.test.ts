/**
 * Organization state snapshots over real HTTP (`/gateway/data/push`, `/gateway/data/pull`): revisions, the
 * platform's own bodies, epoch fencing against a successor, compare-and-set, what an ended allocation leaves to
 * the organization's next one, the size limit, retention, and the head row's triggers.
 */
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferLogger, errorBodyProblem, rawRequest, recordQueries, startTestGanymede, type TestGanymede, useGanymede } from './support.js';

const RETENTION = 4;
const logs = bufferLogger();
const g = useGanymede({ manualReaper: true, logger: logs.logger, snapshotRetention: RETENTION });

type Live = Awaited<ReturnType<typeof g.live>>;
type Body = Record<string, unknown>;
const JSON_TYPE = { 'content-type': 'application/json' };

const ofA = (a: Live) => ({ organization_id: a.organizationId, gateway_id: a.gw.gatewayId });
/** A push as this project's gateways send it: the platform's keys, the process's epoch. */
const pushBody = (a: Live, data: unknown, over: Body = {}) => ({ ...ofA(a), timestamp: new Date().toISOString(), data, epoch: 1, ...over });
const push = (a: Live, body: Body, headers = a.orgAuth) =>
  rawRequest(g.url, 'POST', '/gateway/data/push', { ...headers, ...JSON_TYPE }, JSON.stringify(body));
const pull = (a: Live, body: Body = ofA(a), headers = a.orgAuth) =>
  rawRequest(g.url, 'POST', '/gateway/data/pull', { ...headers, ...JSON_TYPE }, JSON.stringify(body));

const checksumOf = (data: unknown) => `sha256:${createHash('sha256').update(JSON.stringify(data)).digest('hex')}`;
const sizeOf = (data: unknown) => Buffer.byteLength(JSON.stringify(data));

/** Every stored snapshot of the organization, oldest first, and its head. */
async function stored(organizationId: string) {
  const { rows } = await g.ganymede.db.query<{ revision: string; epoch: number | null; allocation_id: string; data: string }>(
    'SELECT revision, epoch, allocation_id, data FROM snapshots WHERE organization_id = $1 ORDER BY revision',
    [organizationId],
  );
  const head = await g.ganymede.db.query<{ revision: string }>('SELECT revision FROM organization_state WHERE organization_id = $1', [
    organizationId,
  ]);
  return {
    revisions: rows.map((r) => Number(r.revision)),
    rows,
    head: head.rows[0] ? Number(head.rows[0].revision) : null,
  };
}

/** The allocation taken over by a new process of its gateway after a restart: epoch + 1. */
async function reclaim(a: Live, epoch = 1) {
  expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch } })).status).toBe(200);
  const claimed = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
  expect(claimed).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: epoch + 1 } } });
}

describe('push and pull', () => {
  it('each push is the next revision; a pull answers the latest with its size and checksum', async () => {
    const a = await g.live();
    expect((await pull(a)).body).toEqual({ error: 'not_found', message: 'nothing was ever pushed for this organization' });
    const states = [{ n: 1 }, { n: 2, text: 'é ✓ 😀', nested: [[{ deep: null }]] }, ['a', 3.5, true, null]];
    for (const [i, data] of states.entries()) {
      const timestamp = i === 1 ? 1764000000123 : `2026-11-24T09:00:0${i}.000Z`;
      const res = await push(a, pushBody(a, data, { timestamp, base_revision: i }));
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({
        organization_id: a.organizationId,
        revision: i + 1,
        epoch: 1,
        size: sizeOf(data),
        checksum: checksumOf(data),
        stored_at: expect.any(String),
      });
      const pulled = await pull(a);
      expect(pulled.body).toEqual({ ...(res.body as Body), gateway_id: a.gw.gatewayId, timestamp, data });
    }
    expect(await stored(a.organizationId)).toMatchObject({ revisions: [1, 2, 3], head: 3 });
  });

  it('any JSON value is a state, stored byte for byte as the text its checksum is of', async () => {
    const a = await g.live();
    for (const data of [null, 0, 'a string', [], {}, { z: 1, a: 2 }, { nul: '\u0000', lone: '\ud800', big: 1e300 }]) {
      const res = await push(a, pushBody(a, data));
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ size: sizeOf(data), checksum: checksumOf(data) });
      const pulled = await pull(a);
      expect((pulled.body as Body).data).toEqual(data);
      // What comes back hashes to the checksum it comes with: the key order and the escapes are kept.
      expect(checksumOf((pulled.body as Body).data)).toBe((pulled.body as Body).checksum);
    }
  });

  it("replays the platform's own bodies exactly (no epoch, no base_revision, its extra keys): stored, the extra keys dropped", async () => {
    const a = await g.live();
    const platformPush = `{"organization_id":"${a.organizationId}","gateway_id":"${a.gw.gatewayId}","timestamp":1764000000000,"data":{"yjs":"AQLk","users":3},"version":"1.4.2","reason":"shutdown"}`;
    const res = await rawRequest(g.url, 'POST', '/gateway/data/push', { ...a.orgAuth, ...JSON_TYPE }, platformPush);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ revision: 1, epoch: null });
    const platformPull = `{"organization_id":"${a.organizationId}","gateway_id":"${a.gw.gatewayId}","version":"1.4.2"}`;
    const pulled = await rawRequest(g.url, 'POST', '/gateway/data/pull', { ...a.orgAuth, ...JSON_TYPE }, platformPull);
    expect(pulled.status, pulled.text).toBe(200);
    expect(pulled.body).toMatchObject({
      organization_id: a.organizationId,
      gateway_id: a.gw.gatewayId,
      timestamp: 1764000000000,
      data: { yjs: 'AQLk', users: 3 },
      revision: 1,
      epoch: null,
    });
    expect(pulled.text).not.toContain('1.4.2');
    // A pull may name no gateway at all.
    expect((await pull(a, { organization_id: a.organizationId })).status).toBe(200);
  });

  it('a push is one statement', async () => {
    const a = await g.live();
    const recorder = recordQueries(g.ganymede.db);
    try {
      expect((await push(a, pushBody(a, { once: true }))).status).toBe(200);
    } finally {
      recorder.stop();
    }
    expect(recorder.texts).toHaveLength(1);
  });

  it('logs each push with its organization, revision, epoch and size; never the data nor the token', async () => {
    const a = await g.live();
    const secret = `secret-${randomUUID()}`;
    expect((await push(a, pushBody(a, { secret }))).status).toBe(200);
    expect((await push(a, pushBody(a, { secret }, { epoch: 9 }))).status).toBe(409);
    const mine = logs.lines.filter((l) => l.includes(a.organizationId) && l.includes('snapshot'));
    expect(mine.map((l) => JSON.parse(l) as Body)).toEqual([
      expect.objectContaining({
        msg: 'snapshot stored',
        organization_id: a.organizationId,
        revision: 1,
        epoch: 1,
        size: sizeOf({ secret }),
      }),
      expect.objectContaining({ msg: 'snapshot refused', organization_id: a.organizationId, refused: 'stale_epoch', epoch: 9 }),
    ]);
    const token = a.orgAuth.authorization.slice('Bearer '.length);
    for (const line of logs.lines) {
      expect(line).not.toContain(secret);
      expect(line).not.toContain(token);
    }
  });
});

describe('fencing', () => {
  it("a reclaimed allocation's old process is refused (409 stale_epoch) and changes nothing; its successor pushes on", async () => {
    const a = await g.live();
    expect((await push(a, pushBody(a, { by: 'old' }))).status).toBe(200);
    await reclaim(a);
    const before = await g.snapshot();
    const stale = await push(a, pushBody(a, { by: 'old, late' }));
    expect(stale).toMatchObject({ status: 409, body: { error: 'stale_epoch', message: 'epoch 1 is stale: the allocation is at epoch 2' } });
    expect(await g.snapshot()).toEqual(before);
    const pulled = await pull(a);
    expect(pulled.body).toMatchObject({ revision: 1, epoch: 1, data: { by: 'old' } });
    const next = await push(a, pushBody(a, { by: 'successor' }, { epoch: 2, base_revision: 1 }));
    expect(next).toMatchObject({ status: 200, body: { revision: 2, epoch: 2 } });
  });

  it('a push that names no epoch (an older gateway) is taken while the allocation is live, and recorded as unfenced', async () => {
    const a = await g.live();
    await reclaim(a);
    const res = await push(a, pushBody(a, { by: 'older gateway' }, { epoch: undefined }));
    expect(res).toMatchObject({ status: 200, body: { revision: 1, epoch: null } });
    expect((await stored(a.organizationId)).rows).toMatchObject([{ epoch: null, allocation_id: a.id }]);
  });

  it('a base_revision that is not the latest is refused (409 revision_conflict) and changes nothing', async () => {
    const a = await g.live();
    expect((await push(a, pushBody(a, { v: 1 }, { base_revision: 0 }))).status).toBe(200);
    expect((await push(a, pushBody(a, { v: 2 }, { base_revision: 1 }))).status).toBe(200);
    const before = await g.snapshot();
    for (const base of [0, 1, 3, 1000]) {
      const res = await push(a, pushBody(a, { v: 'lost' }, { base_revision: base }));
      expect(res, String(base)).toMatchObject({
        status: 409,
        body: { error: 'revision_conflict', message: `base_revision ${base} is not the latest revision 2` },
      });
    }
    expect(await g.snapshot()).toEqual(before);
    // Nothing pushed yet: only 0 (or none) is the latest.
    const b = await g.live();
    expect(await push(b, pushBody(b, {}, { base_revision: 1 }))).toMatchObject({
      status: 409,
      body: { message: 'base_revision 1 is not the latest revision 0' },
    });
  });

  it('pushes racing on one base: exactly one is stored; without a base, each is stored at its own revision', async () => {
    const a = await g.live();
    for (const base of [0, 1]) {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => push(a, pushBody(a, { i }, { base_revision: base }))));
      expect(
        answers.filter((r) => r.status === 200),
        `base ${base}`,
      ).toHaveLength(1);
      for (const r of answers.filter((x) => x.status !== 200)) expect(r.body).toMatchObject({ error: 'revision_conflict' });
    }
    const unbased = await Promise.all(Array.from({ length: 8 }, (_, i) => push(a, pushBody(a, { i }))));
    expect(unbased.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(unbased.map((r) => (r.body as { revision: number }).revision).sort((x, y) => x - y)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    // A push's retention sees what committed before it began: pushes racing it may leave a few to the next push.
    expect((await push(a, pushBody(a, { last: true }))).status).toBe(200);
    expect(await stored(a.organizationId)).toMatchObject({ head: 11, revisions: [8, 9, 10, 11] });
  });

  it('two epochs racing, many rounds: a push is stored only at the live epoch, and the successor pulls every one stored before it', async () => {
    const a = await g.live();
    let epoch = 1;
    let latest = 0;
    let refused = 0;
    for (let round = 0; round < 15; round++) {
      expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch } })).status).toBe(200);
      // The old process keeps pushing (two lanes, as an autosave and a shutdown would) until it is refused.
      const lane = async (name: string) => {
        const answers = [];
        for (let i = 0; i < 50; i++) {
          const res = await push(a, pushBody(a, { round, name, i }, { epoch }));
          answers.push(res);
          if (res.status !== 200) break;
        }
        return answers;
      };
      const successor = (async () => {
        await new Promise((resolve) => setTimeout(resolve, (round % 4) * 5));
        const claimed = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
        expect(claimed).toMatchObject({ status: 200, body: { allocation: { epoch: epoch + 1 } } });
        const pulled = await pull(a);
        const pushed = await push(a, pushBody(a, { round, by: 'successor' }, { epoch: epoch + 1 }));
        return { pulled, pushed };
      })();
      const [first, second, next] = await Promise.all([lane('autosave'), lane('shutdown'), successor]);
      const olds = [...first, ...second];
      const accepted = olds.filter((r) => r.status === 200).map((r) => (r.body as { revision: number }).revision);
      for (const r of olds.filter((x) => x.status !== 200)) expect(r.body).toMatchObject({ error: 'stale_epoch' });
      refused += olds.length - accepted.length;
      // Every push the old process was told was stored committed before the reclaim: the successor's pull sees it.
      const pulledRevision = next.pulled.status === 200 ? (next.pulled.body as { revision: number }).revision : 0;
      expect(pulledRevision).toBe(Math.max(latest, ...accepted));
      expect(next.pushed).toMatchObject({ status: 200, body: { epoch: epoch + 1, revision: pulledRevision + 1 } });
      latest = pulledRevision + 1;
      epoch += 1;
    }
    expect(refused).toBeGreaterThan(0); // the race was run: late pushes met the new epoch
    // What is kept is in revision order, never an old epoch after a newer one.
    const { rows } = await stored(a.organizationId);
    const epochs = rows.map((r) => r.epoch!);
    expect(epochs).toEqual([...epochs].sort((x, y) => x - y));
  });
});

describe('the organization keeps its state, not the allocation', () => {
  it("an ended allocation's token is refused (403 allocation_ended); the snapshot stays, and the next allocation, on another gateway, pulls it", async () => {
    const a = await g.live();
    expect((await push(a, pushBody(a, { doc: 'kept' }))).status).toBe(200);
    expect((await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop', epoch: 1 } })).status).toBe(200);
    const before = await g.snapshot();
    expect(await push(a, pushBody(a, { doc: 'late' }))).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    expect(await push(a, pushBody(a, { doc: 'late' }, { epoch: undefined }))).toMatchObject({
      status: 403,
      body: { error: 'allocation_ended' },
    });
    expect(await pull(a)).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    expect(await g.snapshot()).toEqual(before);

    const gw = await g.addReadyGateway(g.target.url);
    const { allocation, orgAuth } = await g.allocateTo(a.organizationId, gw.auth);
    expect(allocation.gateway_id).not.toBe(a.gw.gatewayId);
    const next = { ...a, gw, orgAuth, id: allocation.allocation_id };
    const pulled = await pull(next);
    expect(pulled).toMatchObject({ status: 200, body: { revision: 1, gateway_id: a.gw.gatewayId, data: { doc: 'kept' } } });
    // Its gateway's id in the body must be its own now.
    expect(await pull(next, ofA(a))).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    const pushed = await push(next, pushBody(next, { doc: 'next' }, { base_revision: 1 }));
    expect(pushed).toMatchObject({ status: 200, body: { revision: 2, epoch: 1 } });
    expect((await stored(a.organizationId)).rows.map((r) => r.allocation_id)).toEqual([a.id, next.id]);
  });

  it('a token for another organization or gateway than the body names: 403 forbidden, nothing stored', async () => {
    const a = await g.live();
    const b = await g.live();
    const before = await g.snapshot();
    for (const body of [pushBody(b, { x: 1 }), pushBody(a, { x: 1 }, { gateway_id: b.gw.gatewayId })]) {
      expect(await push(a, body)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    }
    expect(await pull(a, ofA(b))).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    // Claims that agree with the body but not with the allocation (a peer sharing the signing key): refused all the same.
    const forged = await g.orgToken(a.id, b.gw.gatewayId, b.organizationId);
    expect(await push(a, pushBody(b, { x: 1 }), forged)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    expect(await pull(a, ofA(b), forged)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    // Another kind of token.
    expect(await push(a, pushBody(a, { x: 1 }), a.gw.auth)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('retention and revisions', () => {
  it(`keeps the latest ${RETENTION} revisions: the push deletes the older ones`, async () => {
    const a = await g.live();
    const other = await g.live();
    expect((await push(other, pushBody(other, { untouched: true }))).status).toBe(200);
    for (let i = 1; i <= 9; i++) expect((await push(a, pushBody(a, { i }))).status).toBe(200);
    expect(await stored(a.organizationId)).toMatchObject({ head: 9, revisions: [6, 7, 8, 9] });
    expect(await stored(other.organizationId)).toMatchObject({ head: 1, revisions: [1] });
    expect((await pull(a)).body).toMatchObject({ revision: 9, data: { i: 9 } });
  });

  it('revisions only grow and snapshots never change (triggers): direct updates fail', async () => {
    const a = await g.live();
    for (let i = 0; i < 3; i++) expect((await push(a, pushBody(a, { i }))).status).toBe(200);
    const db = g.ganymede.db;
    for (const to of [2, 3, 1]) {
      await expect(
        db.query('UPDATE organization_state SET revision = $2 WHERE organization_id = $1', [a.organizationId, to]),
      ).rejects.toMatchObject({ code: '23514' });
    }
    await expect(
      db.query(`UPDATE snapshots SET data = '{"forged":true}' WHERE organization_id = $1 AND revision = 3`, [a.organizationId]),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(db.query(`UPDATE snapshots SET epoch = 7 WHERE organization_id = $1`, [a.organizationId])).rejects.toMatchObject({
      code: '23514',
    });
    // A snapshot must be consistent: its size is the bytes of its text, its checksum a sha256.
    await expect(
      db.query(
        `INSERT INTO snapshots (organization_id, revision, allocation_id, gateway_id, data, size, checksum, client_timestamp)
         VALUES ($1, 4, $2, $3, '{}', 3, $4, '1')`,
        [a.organizationId, a.id, a.gw.gatewayId, checksumOf({})],
      ),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      db.query(
        `INSERT INTO snapshots (organization_id, revision, allocation_id, gateway_id, data, size, checksum, client_timestamp)
         VALUES ($1, 4, $2, $3, '{}', 2, 'md5:abc', '1')`,
        [a.organizationId, a.id, a.gw.gatewayId],
      ),
    ).rejects.toMatchObject({ code: '23514' });
    expect(await stored(a.organizationId)).toMatchObject({ head: 3, revisions: [1, 2, 3] });
  });
});

describe('bad input stores nothing', () => {
  it.each([
    ['no data', (a: Live) => pushBody(a, undefined)],
    ['no timestamp', (a: Live) => pushBody(a, {}, { timestamp: undefined })],
    ['a timestamp that is an object', (a: Live) => pushBody(a, {}, { timestamp: { at: 1 } })],
    ['epoch 0', (a: Live) => pushBody(a, {}, { epoch: 0 })],
    ['base_revision -1', (a: Live) => pushBody(a, {}, { base_revision: -1 })],
    ['gateway_id not a uuid', (a: Live) => pushBody(a, {}, { gateway_id: 'gw-1' })],
    ['data nested 513 deep', (a: Live) => pushBody(a, JSON.parse('['.repeat(513) + ']'.repeat(513)))],
  ] as const)('%s: 400 with the error body', async (_, body) => {
    const a = await g.live();
    const before = await g.snapshot();
    const res = await push(a, body(a));
    expect(res.status, res.text).toBe(400);
    expect(errorBodyProblem(res.body), res.text).toBeNull();
    expect(await g.snapshot()).toEqual(before);
  });

  it('data nested 512 deep is a state', async () => {
    const a = await g.live();
    const data = JSON.parse('['.repeat(512) + ']'.repeat(512)) as unknown;
    expect((await push(a, pushBody(a, data))).status).toBe(200);
    expect((await pull(a)).body).toMatchObject({ data });
  });
});

describe('the size limit', () => {
  const LIMIT = 96 * 1024;
  let small: TestGanymede;
  beforeAll(async () => {
    small = await startTestGanymede({ manualReaper: true, maxSnapshotBytes: LIMIT });
  });
  afterAll(async () => {
    await small?.close();
  });
  const smallPush = (a: Live, body: Body | string) =>
    rawRequest(
      small.url,
      'POST',
      '/gateway/data/push',
      { ...a.orgAuth, ...JSON_TYPE },
      typeof body === 'string' ? body : JSON.stringify(body),
    );

  it('the push route takes bodies past 64 KiB up to its limit; past it 413, nothing stored; every other route keeps 64 KiB', async () => {
    const a = await small.live();
    const fits = 'x'.repeat(LIMIT - 1024);
    expect(await smallPush(a, pushBody(a, fits))).toMatchObject({ status: 200, body: { size: fits.length + 2 } });
    const before = await small.snapshot();
    const over = await smallPush(a, pushBody(a, 'x'.repeat(LIMIT)));
    expect(over).toMatchObject({
      status: 413,
      body: { error: 'payload_too_large', message: `request body is larger than ${LIMIT} bytes` },
    });
    expect(errorBodyProblem(over.body)).toBeNull();
    // Re-encoded larger than it came (1e9 is 10 bytes once written out): refused by the handler's own check.
    const numbers = `[${Array(Math.floor(LIMIT / 5))
      .fill('1e9')
      .join(',')}]`;
    expect(numbers.length).toBeLessThan(LIMIT - 1024);
    const grown = await smallPush(
      a,
      `{"organization_id":"${a.organizationId}","gateway_id":"${a.gw.gatewayId}","timestamp":1,"data":${numbers}}`,
    );
    expect(grown).toMatchObject({ status: 413, body: { error: 'payload_too_large', message: `the data is larger than ${LIMIT} bytes` } });
    expect(await small.snapshot()).toEqual(before);
    const pulled = await rawRequest(
      small.url,
      'POST',
      '/gateway/data/pull',
      { ...a.orgAuth, ...JSON_TYPE },
      JSON.stringify({ ...ofA(a), pad: 'x'.repeat(65 * 1024) }),
    );
    expect(pulled).toMatchObject({ status: 413, body: { message: 'request body is larger than 65536 bytes' } });
    const stopped = await rawRequest(
      small.url,
      'POST',
      '/gateway/stop',
      { ...a.orgAuth, ...JSON_TYPE },
      JSON.stringify({ reason: 'stop', pad: 'x'.repeat(65 * 1024) }),
    );
    expect(stopped.status).toBe(413);
  });

  it('by default a state of 15 MiB is taken and comes back whole', async () => {
    const a = await g.live();
    const data = { blob: 'y'.repeat(15 * 1024 * 1024) };
    const res = await push(a, pushBody(a, data));
    expect(res).toMatchObject({ status: 200, body: { size: sizeOf(data), checksum: checksumOf(data) } });
    const pulled = await pull(a);
    expect(pulled.status).toBe(200);
    expect(checksumOf((pulled.body as Body).data)).toBe(checksumOf(data));
  });
});
