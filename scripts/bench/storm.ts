/**
 * Restart storm, simulated gateways: `count` gateways registered through the admin API, each ready, allocated
 * and claimed (epoch 1). Then all restart at once: each does what a restarted gateway process does, with the
 * real typed client, at bounded concurrency: /gateway/restart (the old process), then /gateway/reclaim (the new
 * one: config and ready in one call). Timed until every allocation is reclaimed (epoch 2); then every allocation and
 * its audit trail is checked through the admin API: none lost, the histories by kind (histories.ts).
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { BenchGanymede } from './ganymede.js';
import { countDoubleAllocations, countHistory, type Histories, noHistories } from './histories.js';
import { cpuMs, cpuMsOfCommand } from './machine.js';
import { startNoticeServer } from './notice-server.js';
import { mapLimit, type Summary, summarize } from './stats.js';

export interface StormResult {
  gateways: number;
  concurrency: number;
  /** From the first restart call to the last reclaim. */
  total_ms: number;
  /** Per gateway: from the storm's start to its reclaim (what a gateway waited, queueing included). */
  reclaimed_after_ms: Summary;
  /** Per gateway: its own two calls, restart to reclaimed. */
  sequence_ms: Summary;
  calls: number;
  calls_per_second: number;
  lost: number;
  /** Each allocation's audit history by kind, and double allocations (absent in runs before it was recorded). */
  histories?: Histories;
  /** Runs before `histories`: any history other than a clean reclaim, or a second live allocation. */
  doubled?: number;
  errors: string[];
  setup_ms: number;
  /** CPU time spent during the storm (ms): Ganymede (all replicas), this process (the clients), PostgreSQL's processes. */
  cpu_ms: { ganymede: number; clients: number; postgres: number; available: number };
}

interface Held {
  gatewayId: string;
  gatewayToken: string;
  allocationId: string;
  organizationId: string;
  organizationToken: string;
}

/** What Ganymede logged at error level, for a message: the cause of a 500 is in its logs, not in the answer. */
export function serverErrors(g: BenchGanymede): string {
  const lines = g.replicas.flatMap((r) => r.proc.logs.filter((l) => Number(l.level) >= 50)).slice(0, 3);
  return lines.length ? `; Ganymede logged: ${lines.map((l) => JSON.stringify(l).slice(0, 2000)).join(' | ')}` : '';
}

export async function restartStorm(g: BenchGanymede, options: { count: number; concurrency: number }): Promise<StormResult> {
  try {
    return await storm(g, options);
  } catch (error) {
    throw new Error(`${(error as Error).message}${serverErrors(g)}`, { cause: error });
  }
}

async function storm(g: BenchGanymede, options: { count: number; concurrency: number }): Promise<StormResult> {
  const { count, concurrency } = options;
  const notice = await startNoticeServer();
  const setupStart = performance.now();
  const errors: string[] = [];
  try {
    // Setup (not timed): register, ready, allocate, claim.
    const gateways = await mapLimit(Array.from({ length: count }), 32, async (_, i) => {
      const added = await g.client(i).addGateway(g.admin, { url: notice.url });
      if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
      const ready = await g.client(i).ready(added.body.token, { allocation_id: null, instance_id: randomUUID() });
      if (ready.status !== 200) throw new Error(`ready answered ${ready.status}`);
      return { gatewayId: added.body.gateway_id, gatewayToken: added.body.token };
    });
    const tokenOf = new Map(gateways.map((gw) => [gw.gatewayId, gw.gatewayToken]));
    const held: Held[] = await mapLimit(Array.from({ length: count }), 32, async (_, i) => {
      const organizationId = randomUUID();
      const start = await g.client(i).start(await g.userToken(organizationId), { organization_id: organizationId });
      if (start.status !== 201) throw new Error(`start answered ${start.status} ${JSON.stringify(start.body)}`);
      const gatewayToken = tokenOf.get(start.body.gateway_id)!;
      const config = await g.client(i).config(gatewayToken);
      if (config.status !== 200) throw new Error(`config answered ${config.status}`);
      const claim = await g.client(i).ready(gatewayToken, { allocation_id: start.body.allocation_id, instance_id: randomUUID() });
      if (claim.status !== 200 || claim.body.allocation?.epoch !== 1) throw new Error(`claim answered ${claim.status}`);
      return {
        gatewayId: start.body.gateway_id,
        gatewayToken,
        allocationId: start.body.allocation_id,
        organizationId,
        organizationToken: config.body.organization_token,
      };
    });
    const setup_ms = performance.now() - setupStart;

    // The storm: each call of a gateway's sequence to the next replica (with several).
    const reclaimedAfter: number[] = [];
    const sequence: number[] = [];
    let calls = 0;
    const cpuBefore = cpuNow(g);
    const t0 = performance.now();
    await mapLimit(held, concurrency, async (h, i) => {
      const s = performance.now();
      try {
        calls++;
        const restart = await g.client(i).restart(h.organizationToken, { reason: 'reload', epoch: 1, allocation_id: h.allocationId });
        if (restart.status !== 200) throw new Error(`restart answered ${restart.status}`);
        calls++;
        const reclaim = await g.client(i + 1).reclaim(h.gatewayToken, { instance_id: randomUUID() });
        if (
          reclaim.status !== 200 ||
          reclaim.body.allocation_id !== h.allocationId ||
          !reclaim.body.reclaimed ||
          reclaim.body.epoch !== 2
        ) {
          throw new Error(`reclaim answered ${reclaim.status} ${JSON.stringify(reclaim.body)}`);
        }
        const done = performance.now();
        reclaimedAfter.push(done - t0);
        sequence.push(done - s);
      } catch (error) {
        errors.push(`${h.gatewayId}: ${(error as Error).message}${errors.length ? '' : serverErrors(g)}`);
      }
    });
    const total_ms = Math.max(...reclaimedAfter, 0);
    const cpuAfter = cpuNow(g);

    // Check (not timed): every allocation active at epoch 2 on its gateway and organization; the histories.
    const { lost, histories } = await check(g, held);
    return {
      gateways: count,
      concurrency,
      total_ms,
      reclaimed_after_ms: summarize(reclaimedAfter),
      sequence_ms: summarize(sequence),
      calls,
      calls_per_second: (calls / total_ms) * 1000,
      lost,
      histories,
      errors: errors.slice(0, 10),
      setup_ms,
      cpu_ms: {
        ganymede: cpuAfter.ganymede - cpuBefore.ganymede,
        clients: cpuAfter.clients - cpuBefore.clients,
        postgres: cpuAfter.postgres - cpuBefore.postgres,
        available: total_ms * cpus().length,
      },
    };
  } finally {
    await notice.close();
  }
}

async function check(g: BenchGanymede, held: Held[]): Promise<{ lost: number; histories: Histories }> {
  const status = await g.client(0).status(g.admin);
  if (status.status !== 200) throw new Error(`status answered ${status.status}`);
  const histories = noHistories();
  countDoubleAllocations(histories, status.body.gateways);
  const byAllocation = new Map(status.body.gateways.filter((e) => e.allocation_id !== null).map((e) => [e.allocation_id!, e]));
  let lost = 0;
  await mapLimit(held, 32, async (h, i) => {
    const e = byAllocation.get(h.allocationId);
    if (!e || e.state !== 'active' || e.epoch !== 2 || e.gateway_id !== h.gatewayId || e.organization_id !== h.organizationId) lost++;
    const history = await g.client(i).allocation(g.admin, h.allocationId);
    if (history.status !== 200) throw new Error(`allocation ${h.allocationId} answered ${history.status}`);
    countHistory(histories, history.body.events);
  });
  return { lost, histories };
}

/** CPU used so far by Ganymede's processes, this one, and PostgreSQL's (ms). */
export function cpuNow(g: BenchGanymede) {
  const own = process.cpuUsage();
  return {
    ganymede: g.replicas.reduce((sum, r) => sum + cpuMs(r.proc.pid), 0),
    clients: (own.user + own.system) / 1000,
    postgres: cpuMsOfCommand('postgres'),
  };
}
