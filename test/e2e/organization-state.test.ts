/**
 * The organization's state goes with it, with real processes and real Yjs clients: the built-in shared document
 * survives a hot restart, a crash and a move to another gateway, and a stale process can never overwrite it.
 */
import { readFileSync } from 'node:fs';
import { gatewayReady, openDoc, registerGateway, startOrganization } from '@ganymede/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { allocate, ganymede, gateway, gatewayEvent, retired } from './support.js';

const docs: { close(): void }[] = [];
afterEach(() => {
  for (const d of docs.splice(0)) d.close();
});
const open = async (url: string, organizationId: string) => {
  const d = await openDoc(url, organizationId);
  docs.push(d);
  return d;
};

describe('organization state', () => {
  it('survives a hot restart: edits acknowledged before and during it are all there after', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId } = await allocate(g, p);
    const writer = await open(p.gw.url, organizationId);
    const observer = await open(p.gw.url, organizationId);
    writer.text.insert(0, 'before;');
    await observer.until((t) => t === 'before;'); // acknowledged: the gateway has it and passed it on

    // Edits keep coming through the handover; each one the observer sees, the gateway had.
    let n = 0;
    const editing = setInterval(() => writer.text.insert(writer.text.length, `${n++};`), 5);
    const from = p.proc.logs.length;
    await p.cli('reload');
    await retired(p, from);
    clearInterval(editing);
    const acknowledged = observer.text.toJSON();
    expect(acknowledged.split(';').length).toBeGreaterThan(2);

    const fresh = await open(p.gw.url, organizationId);
    await fresh.until((t) => t.startsWith(acknowledged));
    expect(p.proc.logs.slice(from).some((l) => l.event === 'state_adopted')).toBe(true);
  });

  it('survives a crash (SIGKILL after an autosave)', async () => {
    const g = await ganymede();
    const p = await gateway(g, 'supervise', { GATEWAY_AUTOSAVE_MS: '200' });
    const { organizationId, whoami } = await allocate(g, p);
    const writer = await open(p.gw.url, organizationId);
    const from = p.proc.logs.length;
    writer.text.insert(0, 'saved');
    await p.proc.waitForLog((l) => l.event === 'state_pushed' && l.why === 'autosave', { from });
    writer.close();
    process.kill(whoami.pid, 'SIGKILL');
    await p.proc.waitForLog((l) => l.event === 'listening' && l.pid !== whoami.pid, { from, timeoutMs: 30_000 });
    const reader = await open(p.gw.url, organizationId);
    expect(await reader.until((t) => t === 'saved')).toBe('saved');
  });

  it('moves with the organization: stopped on one gateway, re-allocated to another, the document is there', async () => {
    const g = await ganymede();
    const first = await gateway(g);
    const { organizationId } = await allocate(g, first);
    const writer = await open(first.gw.url, organizationId);
    writer.text.insert(0, 'moved');
    const observer = await open(first.gw.url, organizationId);
    await observer.until((t) => t === 'moved');
    writer.close();
    observer.close();
    await first.cli('stop');
    await first.proc.exited;

    const second = await registerGateway(g);
    const ready = gatewayReady(g, second.gateway_id, undefined, g.proc.logs.length);
    const p2 = await gateway(g, 'supervise', {}, second);
    await ready;
    const again = await startOrganization(g, organizationId);
    expect(again.res).toMatchObject({ status: 201, body: { gateway_id: second.gateway_id } });
    const reader = await open(p2.gw.url, organizationId);
    expect(await reader.until((t) => t === 'moved')).toBe('moved');
  });

  it('a stale process cannot overwrite its successor: paused before its push, resumed after a takeover, refused', async () => {
    const g = await ganymede();
    // The old process pauses itself right before its first push (SIGSTOP at the failpoint), its change unsaved.
    const a = await gateway(g, 'run', { GATEWAY_AUTOSAVE_MS: '100', FAILPOINTS: 'gateway:before:push=stop' });
    const { organizationId, whoami } = await allocate(g, a);
    const old = await open(a.gw.url, organizationId);
    old.text.insert(0, 'stale');
    await expect.poll(() => processState(whoami.pid), { timeout: 30_000 }).toBe('T');
    old.close();

    // A second process of the same gateway takes the allocation over (epoch 2) and saves its own document.
    const takeover = await registerGateway(g).then((other) => ({ ...a.gw, port: other.port, url: other.url }));
    const b = await gateway(g, 'run', { GATEWAY_AUTOSAVE_MS: '100' }, takeover);
    const fresh = await open(b.gw.url, organizationId);
    const from = b.proc.logs.length;
    fresh.text.insert(0, 'fresh');
    const saved = await b.proc.waitForLog((l) => l.event === 'state_pushed', { from });

    // Resumed, the old process pushes with its stale epoch: refused, nothing written.
    const resumed = a.proc.logs.length;
    process.kill(whoami.pid, 'SIGCONT');
    expect(await gatewayEvent(a, 'push_refused', resumed)).toMatchObject({ status: 409, error: 'stale_epoch' });
    fresh.text.insert(5, '!');
    const next = await b.proc.waitForLog((l) => l.event === 'state_pushed' && l.revision !== saved.revision, { from });
    expect(next.revision).toBe((saved.revision as number) + 1);
    const reader = await open(b.gw.url, organizationId);
    expect(await reader.until((t) => t === 'fresh!')).toBe('fresh!');
  });
});

/** The process's state letter from /proc (R running, S sleeping, T stopped, Z zombie). */
function processState(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^\d+ \(.*\) /, '')[0]!;
}
