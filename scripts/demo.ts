/**
 * `pnpm demo`: the restart protocol end to end, as real processes on the embedded database.
 * Ganymede starts, two gateways are registered, one runs supervised, an organization is allocated the way
 * the frontend does it, the gateway is restarted (`gateway reload`) and the same allocation is served again
 * with a new epoch; then it is stopped for good and the allocation ends. Exits non-zero if any step fails.
 */
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import {
  adminToken,
  gatewayClient,
  gatewayReady,
  registerGateway,
  startGanymedeProcess,
  startGatewayProcess,
  startOrganization,
  stopProcess,
} from '@ganymede/testkit';

const failures: string[] = [];
function check(ok: boolean, what: string): void {
  console.log(`  ${ok ? '✔' : '✘'} ${what}`);
  if (!ok) failures.push(what);
}
const step = (title: string) => console.log(`\n▶ ${title}`);

async function main(): Promise<void> {
  step('Start Ganymede on the embedded database (PGlite)');
  const g = await startGanymedeProcess();
  console.log(`  Ganymede at ${g.url}, data in ${g.dataDir}`);
  const admin = { authorization: `Bearer ${await adminToken(g)}` };

  try {
    step('Register two gateways (ganymede gateway add)');
    const gw1 = await registerGateway(g);
    const gw2 = await registerGateway(g);
    console.log(`  gateway 1 ${gw1.gateway_id} at ${gw1.url}\n  gateway 2 ${gw2.gateway_id} at ${gw2.url} (registered, not started)`);

    step('Start gateway 1 under its supervisor (gateway supervise)');
    const ready = gatewayReady(g, gw1.gateway_id);
    const gateway = await startGatewayProcess(g, gw1, 'supervise');
    await ready;
    check(true, 'gateway 1 said /gateway/ready and is idle in the pool');

    step('A user opens the app: the frontend calls POST /gateway/start');
    const { organizationId, res } = await startOrganization(g);
    check(res.status === 201, `allocated (HTTP ${res.status})`);
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    const allocationId = res.body.allocation_id;
    console.log(
      `  organization ${organizationId}\n  allocation ${allocationId} on gateway ${res.body.gateway_id}, epoch ${res.body.epoch}`,
    );
    const client = gatewayClient(gw1);
    const served = await client.serve({ params: { organization_id: organizationId } });
    check(
      served.status === 200 && served.body.allocation_id === allocationId,
      `gateway 1 serves the organization (pid ${served.status === 200 ? served.body.pid : '?'})`,
    );
    const before = served.status === 200 ? served.body : undefined;

    step('Restart the gateway for a reload (gateway reload: SIGHUP through the supervisor)');
    const from = g.proc.logs.length;
    const reclaimed = gatewayReady(g, gw1.gateway_id, (before?.epoch ?? 0) + 1, from);
    // What the organization sees: its traffic route polled without pause, from before the signal until a new
    // process serves it. Unserved = the first answer of the new process minus the last of the old one.
    let lastOld = performance.now();
    const t0 = lastOld;
    const polling = (async () => {
      while (performance.now() - t0 < 30_000) {
        const r = await client.serve({ params: { organization_id: organizationId } }).catch(() => undefined);
        if (r?.status === 200 && r.body.pid === before?.pid) lastOld = performance.now();
        else if (r?.status === 200) return { whoami: r.body, at: performance.now() };
      }
      return undefined;
    })();
    await gateway.cli('reload');
    const next = await polling;
    const after = next?.whoami;
    const unserved = next ? next.at - lastOld : Number.NaN;
    await reclaimed;
    check(after !== undefined, `the organization is served again after ${unserved.toFixed(0)} ms unserved`);
    check(after?.allocation_id === allocationId, 'by the same allocation (no cold start, no new allocation)');
    check(after?.epoch === (before?.epoch ?? 0) + 1, `with a new epoch: ${before?.epoch} → ${after?.epoch}`);
    check(after?.pid !== before?.pid, `in a new process: pid ${before?.pid} → ${after?.pid}`);

    step('Stop the gateway for good (gateway stop: SIGTERM to the supervisor, SIGINT to the gateway)');
    await gateway.cli('stop');
    await gateway.proc.exited;
    const history = await g.api.allocation({ headers: admin, params: { allocation_id: allocationId } });
    if (history.status !== 200) throw new Error(`allocation history answered ${history.status}`);
    check(history.body.state === 'ended' && history.body.ended_reason === 'stop', `allocation ended (reason ${history.body.ended_reason})`);
    console.log('  audit trail:');
    for (const e of history.body.events)
      console.log(`    ${e.at}  ${e.kind.padEnd(18)} epoch ${e.epoch}${e.reason ? `  (${e.reason})` : ''}`);
    const kinds = history.body.events.map((e) => e.kind).join(',');
    check(kinds === 'allocated,restart_requested,reclaimed,stopped', 'allocated → restart requested → reclaimed → stopped');

    step('The pool (ganymede status)');
    console.log(
      (await g.cli('status'))
        .trimEnd()
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  } finally {
    await stopProcess(g.proc, 'SIGTERM');
    await rm(g.dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => {
    console.log(failures.length ? `\nDEMO FAILED: ${failures.join('; ')}` : '\nDemo passed: the restart kept the allocation.');
    process.exitCode = failures.length ? 1 : 0;
  },
  (error: unknown) => {
    console.error(`\nDEMO FAILED: ${error instanceof Error ? error.stack : String(error)}`);
    process.exitCode = 1;
  },
);
