/**
 * What the organization's state costs (the built-in shared document, Yjs):
 *
 * - Hot restart with state: one supervised gateway serving one organization whose document holds 0, then 1 MiB,
 *   then 10 MiB of text (written by a real Yjs client in 32 KiB edits, below the socket's message limit, then
 *   autosaved), restarted `restarts` times under the hot restart's load (hot-restart.ts, keep-alive). Each restart
 *   now carries the state: the old process pushes it if it changed, the successor pulls the latest snapshot while
 *   it boots, the old process hands its final snapshot over at the drain and the successor restores it before it
 *   accepts, then pushes it as its own. Reported per size: the handover and the longest gap between answers,
 *   and what each adds to the same figures with no state (the floor, same run). After the restarts a new Yjs
 *   client reads the document back: every byte must be there.
 * - Push and pull throughput: `callers` organizations, each with its own claimed allocation, push a snapshot of
 *   `snapshotBytes` (its JSON text, as the gateway sends it: base64 in `data`) one after the other with
 *   compare-and-set, for `durationMs`; then pull it as often. Floor: the database's raw `bytea` write rate, a
 *   single-row INSERT of as many bytes from as many callers through the same database door Ganymede uses (floors.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { openDoc } from '@ganymede/testkit';
import { byteaWriteRate, type FloorDatabase } from './floors.js';
import type { BenchGanymede } from './ganymede.js';
import { runMode, servedGateway, type HotRestartOptions } from './hot-restart.js';
import { startNoticeServer } from './notice-server.js';
import { callRate, type Rate, type Summary } from './stats.js';

export const MIB = 1024 * 1024;
/** One edit of the fill: under the gateway's WebSocket message limit (64 KiB). */
const EDIT_BYTES = 32 * 1024;

export interface StateHandoverRow {
  /** Characters of text in the document (ASCII: bytes). */
  document_bytes: number;
  restarts: number;
  /** `handover_complete`'s handover_ms: the supervisor's handover started → the successor accepts. */
  handover_ms: Summary;
  max_gap_ms: number;
  restart_p99_ms: number;
  steady_p99_ms: number;
  sent: number;
  failed: number;
  /** The document read back after the restarts by a new client is the one written. */
  intact: boolean;
}

export interface ThroughputRow {
  backend: string;
  /** Bytes of the snapshot's JSON text as stored (Ganymede's `size`). */
  snapshot_bytes: number;
  callers: number;
  push: Rate;
  pull: Rate;
  raw_bytea: Rate;
}

/** Fills the organization's document up to `bytes` characters; resolves once the gateway has autosaved it. */
async function fillDocument(
  base: string,
  organizationId: string,
  bytes: number,
  logs: { length: number },
  pushed: (from: number) => Promise<unknown>,
) {
  const client = await openDoc(base, organizationId);
  try {
    const from = logs.length;
    const chunk = 'x'.repeat(EDIT_BYTES);
    while (client.text.length < bytes) {
      client.text.insert(client.text.length, chunk.slice(0, Math.min(EDIT_BYTES, bytes - client.text.length)));
      // Let the socket drain between edits: y-websocket sends each update as it happens.
      if (client.text.length % (EDIT_BYTES * 32) === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    if (bytes > 0) await pushed(from);
  } finally {
    client.close();
  }
}

export async function stateHandover(
  g: BenchGanymede,
  options: Omit<HotRestartOptions, 'floorSamples'> & { sizes: number[] },
): Promise<StateHandoverRow[]> {
  const say = options.progress ?? (() => undefined);
  const served = await servedGateway(g);
  const rows: StateHandoverRow[] = [];
  try {
    for (const size of options.sizes) {
      const proc = served.gp.proc;
      await fillDocument(served.base, served.organizationId, size, proc.logs, (from) =>
        proc.waitForLog((l) => l.event === 'state_pushed' && l.why === 'autosave', { from, timeoutMs: 60_000 }),
      );
      say(`   document of ${(size / MIB).toFixed(0)} MiB: ${options.restarts} restarts under load`);
      const mode = await runMode(served.gp, served.url, true, { ...options, progress: undefined });
      const reader = await openDoc(served.base, served.organizationId, 60_000);
      const intact = reader.text.length === size && !/[^x]/.test(reader.text.toJSON());
      reader.close();
      rows.push({
        document_bytes: size,
        restarts: mode.restarts,
        handover_ms: mode.handover_ms,
        max_gap_ms: mode.max_gap_ms,
        restart_p99_ms: mode.restart.p99_ms,
        steady_p99_ms: mode.steady.p99_ms,
        sent: mode.requests.sent,
        failed: mode.requests.failed,
        intact,
      });
      say(
        `   ${(size / MIB).toFixed(0)} MiB: handover median ${mode.handover_ms.median.toFixed(0)} ms, longest gap ${mode.max_gap_ms.toFixed(1)} ms, ` +
          `failed ${mode.requests.failed}, read back ${intact ? 'intact' : 'NOT intact'}`,
      );
    }
    return rows;
  } finally {
    await served.close();
  }
}

interface Claimed {
  organizationId: string;
  gatewayId: string;
  token: string;
}

/** `callers` organizations, each allocated to a (simulated) gateway of its own and claimed at epoch 1. */
async function claimOrganizations(g: BenchGanymede, callers: number, noticeUrl: string): Promise<Claimed[]> {
  const client = g.client(0);
  const claimed: Claimed[] = [];
  // One after the other: each /gateway/start then finds exactly one free gateway, the one just added.
  for (let i = 0; i < callers; i++) {
    const added = await client.addGateway(g.admin, { url: noticeUrl });
    if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
    const { gateway_id: gatewayId, token } = added.body;
    const ready = await client.ready(token, { allocation_id: null, instance_id: randomUUID() });
    if (ready.status !== 200) throw new Error(`ready answered ${ready.status}`);
    const organizationId = randomUUID();
    const start = await client.start(await g.userToken(organizationId), { organization_id: organizationId });
    if (start.status !== 201 || start.body.gateway_id !== gatewayId) throw new Error(`start answered ${start.status}`);
    const config = await client.config(token);
    if (config.status !== 200) throw new Error(`config answered ${config.status}`);
    const claim = await client.ready(token, { allocation_id: start.body.allocation_id, instance_id: randomUUID() });
    if (claim.status !== 200) throw new Error(`claim answered ${claim.status}`);
    claimed.push({ organizationId, gatewayId, token: config.body.organization_token });
  }
  return claimed;
}

export async function stateThroughput(
  g: BenchGanymede,
  floor: FloorDatabase,
  options: { callers: number; snapshotBytes: number; durationMs: number },
): Promise<Omit<ThroughputRow, 'backend'>> {
  const { callers, durationMs } = options;
  const notice = await startNoticeServer();
  try {
    const orgs = await claimOrganizations(g, callers, notice.url);
    // base64 of this many random bytes is the snapshot's JSON text but for its two quotes.
    const data = randomBytes(Math.floor(((options.snapshotBytes - 2) * 3) / 4)).toString('base64');
    const revisions = orgs.map(() => 0);
    const push = async (c: number) => {
      const o = orgs[c]!;
      const answer = await g.client(c).dataPush(o.token, {
        organization_id: o.organizationId,
        gateway_id: o.gatewayId,
        timestamp: new Date().toISOString(),
        data,
        epoch: 1,
        base_revision: revisions[c]!,
      });
      if (answer.status !== 200) throw new Error(`push answered ${answer.status} ${JSON.stringify(answer.body)}`);
      revisions[c] = answer.body.revision;
      return answer.body.size;
    };
    const size = await push(0);
    const pushes = await callRate({ callers, durationMs, bytes: size }, push);
    const pull = await callRate({ callers, durationMs, bytes: size }, async (c) => {
      const o = orgs[c]!;
      const answer = await g.client(c).dataPull(o.token, { organization_id: o.organizationId, gateway_id: o.gatewayId });
      if (answer.status !== 200 || answer.body.revision !== revisions[c]) throw new Error(`pull answered ${answer.status}`);
    });
    const raw = await byteaWriteRate(floor, { callers, bytes: size, durationMs });
    return { snapshot_bytes: size, callers, push: pushes, pull, raw_bytea: raw };
  } finally {
    await notice.close();
  }
}
