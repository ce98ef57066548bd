/** Shared by the end-to-end suites: processes that are killed after each test, and what tests ask of them. */
import { afterEach, expect } from 'vitest';
import {
  adminToken,
  type GanymedeProcess,
  type GatewayProcess,
  gatewayClient,
  gatewayReady,
  type RegisteredGateway,
  registerGateway,
  type StartGanymedeProcessOptions,
  startGanymedeProcess,
  startGatewayProcess,
  startOrganization,
  stopProcess,
} from '@ganymede/testkit';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

/** A Ganymede process, SIGKILLed after the test. */
export async function ganymede(options: StartGanymedeProcessOptions = {}) {
  const g = await startGanymedeProcess(options);
  cleanup.push(() => stopProcess(g.proc, 'SIGKILL'));
  return g;
}

/** A gateway process (supervised or not) for a registered gateway, SIGKILLed after the test; not awaited ready. */
export async function gatewayProcess(g: GanymedeProcess, gw: RegisteredGateway, mode: 'supervise' | 'run', env: NodeJS.ProcessEnv = {}) {
  const p = await startGatewayProcess(g, gw, mode, env);
  cleanup.push(() => stopProcess(p.proc, 'SIGKILL'));
  return p;
}

/** Like `gatewayProcess` (registering a new gateway unless given one); resolves once Ganymede saw it ready. */
export async function gateway(
  g: GanymedeProcess,
  mode: 'supervise' | 'run' = 'supervise',
  env: NodeJS.ProcessEnv = {},
  gw?: RegisteredGateway,
) {
  const registered = gw ?? (await registerGateway(g));
  const ready = gatewayReady(g, registered.gateway_id, undefined, g.proc.logs.length);
  const p = await gatewayProcess(g, registered, mode, env);
  await ready;
  return p;
}

/** Allocates a new organization and answers what its gateway says it serves. */
export async function allocate(g: GanymedeProcess, p: GatewayProcess) {
  const { organizationId, res } = await startOrganization(g);
  expect(res.status).toBe(201);
  const served = await gatewayClient(p.gw).serve({ params: { organization_id: organizationId } });
  expect(served.status).toBe(200);
  if (served.status !== 200 || res.status !== 201) throw new Error('not served');
  return { organizationId, allocationId: res.body.allocation_id, whoami: served.body };
}

export async function history(g: GanymedeProcess, allocationId: string) {
  const res = await g.api.allocation({
    headers: { authorization: `Bearer ${await adminToken(g)}` },
    params: { allocation_id: allocationId },
  });
  if (res.status !== 200) throw new Error(`history answered ${res.status}`);
  return res.body;
}

/** Resolves on Ganymede's log line for a transition of this allocation. */
export const transition = (g: GanymedeProcess, allocationId: string, name: string, from = 0) =>
  g.proc.waitForLog((l) => l.transition === name && l.allocation_id === allocationId, { from, timeoutMs: 30_000 });

/** Resolves on a gateway log line with this `event`. */
export const gatewayEvent = (p: GatewayProcess, event: string, from = 0) =>
  p.proc.waitForLog((l) => l.event === event, { from, timeoutMs: 30_000 });

/** Resolves once the gateway process serves at `epoch`: reclaimed, and its organization's state restored. */
export const servingAt = (p: GatewayProcess, epoch: number, from = 0) =>
  p.proc.waitForLog((l) => l.event === 'serving' && l.epoch === epoch, { from, timeoutMs: 30_000 });

/** Resolves on the supervisor's `handover_complete` line (from log index `from`): the successor accepts. */
export const handedOver = (p: GatewayProcess, from = 0) =>
  p.proc.waitForLog((l) => l.event === 'handover_complete', { from, timeoutMs: 30_000 });

/**
 * Resolves once a handover completed and the old process exited. Until then it still answers requests on the
 * connections it had (a pooled keep-alive connection of the test's own client, say), once each, with
 * `Connection: close`.
 */
export async function retired(p: GatewayProcess, from = 0) {
  const done = await handedOver(p, from);
  await p.proc.waitForLog((l) => l.event === 'child_exited' && l.child_pid === done.from_pid, { from, timeoutMs: 30_000 });
  return done;
}

/** What the gateway answers for the organization's traffic right now (status and whoami). */
export async function served(p: GatewayProcess, organizationId: string) {
  return gatewayClient(p.gw)
    .serve({ params: { organization_id: organizationId } })
    .catch(() => ({ status: 0 as const, body: null }));
}

/** SIGHUP to an unsupervised gateway: resolves once Ganymede recorded the restart and the process exited. */
export async function restartUnsupervised(g: GanymedeProcess, p: GatewayProcess, allocationId: string) {
  const requested = transition(g, allocationId, 'restart_requested', g.proc.logs.length);
  p.proc.signal('SIGHUP');
  await requested;
  return p.proc.exited;
}

/**
 * Leases for the partition tests: 4 s (a renewal every 1.3 s or so) with a grace of 6 s and a renew deadline of 5 s:
 * a gateway cut off stops serving 5 s after it sent its last renewal that succeeded; Ganymede may end its
 * allocation 10 s after that renewal at the earliest.
 */
export const PARTITION_LEASES = {
  GANYMEDE_LEASE_SECONDS: '4',
  GANYMEDE_LEASE_GRACE_SECONDS: '6',
  GANYMEDE_RENEW_DEADLINE_MS: '5000',
};
/** Gateways that log every request they serve, and whose calls to Ganymede give up after 1 s. */
export const HISTORY_GATEWAY = { GATEWAY_LOG_LEVEL: 'debug', GATEWAY_REQUEST_TIMEOUT_MS: '1000' };

/** Monotonic times (ms) at which `p` took the organization's requests it served (its `served` lines). */
export const servedTimes = (p: GatewayProcess, organizationId: string) =>
  p.proc.logs.filter((l) => l.event === 'served' && l.organization_id === organizationId).map((l) => Number(l.at_ms));
