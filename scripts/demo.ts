/**
 * `pnpm demo`: the restart protocol end to end, as real processes on the embedded database.
 * Ganymede starts, two gateways are registered, one runs supervised, an organization is allocated the way
 * the frontend does it, the gateway is restarted (`gateway reload`) under a steady load of the organization's
 * traffic, which a hot handover serves throughout, and the same allocation is served again with a new epoch by a
 * new process, with the organization's shared document as it was edited before; then it is stopped for good and
 * the allocation ends. Exits non-zero if any step fails.
 */
import { rm } from 'node:fs/promises';
import {
  adminToken,
  gatewayClient,
  gatewayReady,
  type LoadReport,
  type LogRecord,
  openDoc,
  registerGateway,
  startGanymedeProcess,
  startGatewayProcess,
  startLoadProcess,
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

    step("Edit the organization's shared document (Yjs over WebSocket, as the platform's frontends do)");
    const writer = await openDoc(gw1.url, organizationId);
    const edit = `edited before the restart, at ${new Date().toISOString()}`;
    writer.text.insert(0, edit);
    const observer = await openDoc(gw1.url, organizationId);
    check((await observer.until((t) => t === edit)) === edit, `the gateway has the edit: "${edit}"`);
    writer.close();
    observer.close();

    step('Restart the gateway under load (gateway reload: SIGHUP through the supervisor, a hot handover)');
    // The organization's traffic: 2 clients from another process, each a request 5 ms after its previous answer,
    // on a keep-alive connection; nothing is retried, so every request that is not answered 200 counts as failed.
    const load = await startLoadProcess({
      url: `${gw1.url}/orgs/${organizationId}`,
      clients: 2,
      intervalMs: 5,
      keepAlive: true,
      timeoutMs: 5_000,
    });
    let complete: LogRecord | undefined;
    let report: LoadReport;
    try {
      await load.waitFor({ ok: 50 });
      const from = gateway.proc.logs.length;
      const reclaimed = gatewayReady(g, gw1.gateway_id, (before?.epoch ?? 0) + 1, g.proc.logs.length);
      // From the command until the old process has handed over and exited: the restart.
      await load.phase('restart');
      await gateway.cli('reload');
      complete = await gateway.proc.waitForLog((l) => l.event === 'handover_complete' || l.event === 'handover_gave_up', {
        from,
        timeoutMs: 60_000,
      });
      await gateway.proc.waitForLog((l) => l.event === 'child_exited' && l.child_pid === complete!.from_pid, { from, timeoutMs: 60_000 });
      await reclaimed;
      await load.phase('steady');
      await load.waitFor({ ok: (await load.snapshot()).ok + 50 });
    } finally {
      report = await load.stop();
    }
    const during = report.phases.restart;
    const answeredBy = (pid: number | undefined) => report.byPid[String(pid)] ?? 0;
    const oldPid = before?.pid;
    const newPid = complete?.event === 'handover_complete' ? Number(complete.to_pid) : undefined;
    console.log(
      `  handover: ${complete?.event} in ${String(complete?.handover_ms)} ms (the supervisor's handover_started → the successor accepts)`,
    );
    console.log(
      `  during the restart: ${during?.ok ?? 0} requests answered, ${during?.failed ?? 0} failed` +
        ` (p50 ${during?.p50.toFixed(1)} ms, p99 ${during?.p99.toFixed(1)} ms)`,
    );
    console.log(
      `  in all: ${report.sent} sent, ${report.ok} answered: pid ${oldPid} (old) ${answeredBy(oldPid)} → pid ${newPid} (new) ${answeredBy(newPid)};` +
        ` longest wait between two answers ${report.maxGapMs.toFixed(0)} ms`,
    );
    if (report.failed) console.log(`  failed: ${JSON.stringify(report.errors)}`);
    check(
      report.failed === 0,
      `no request failed (${report.failed} of ${report.sent}: refused ${report.refused}, reset ${report.reset}, non-2xx ${report.non2xx}, timed out ${report.timedOut})`,
    );
    check(
      answeredBy(oldPid) > 0 && answeredBy(newPid) > 0 && answeredBy(oldPid) + answeredBy(newPid) === report.ok,
      'answered by the old process, then by the new one, and no other',
    );
    const next = await client.serve({ params: { organization_id: organizationId } });
    const after = next.status === 200 ? next.body : undefined;
    check(after?.allocation_id === allocationId, 'the same allocation is served (no cold start, no new allocation)');
    check(after?.epoch === (before?.epoch ?? 0) + 1, `with a new epoch: ${before?.epoch} → ${after?.epoch}`);
    check(after !== undefined && after.pid !== before?.pid && after.pid === newPid, `in a new process: pid ${before?.pid} → ${after?.pid}`);
    const reader = await openDoc(gw1.url, organizationId);
    const read = await reader.until((t) => t === edit, 10_000).catch(() => reader.text.toJSON());
    reader.close();
    check(read === edit, `the edit made before the restart is read back from the new process: "${read}"`);

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
    console.log(
      failures.length
        ? `\nDEMO FAILED: ${failures.join('; ')}`
        : '\nDemo passed: the hot restart kept the allocation and served every request.',
    );
    process.exitCode = failures.length ? 1 : 0;
  },
  (error: unknown) => {
    console.error(`\nDEMO FAILED: ${error instanceof Error ? error.stack : String(error)}`);
    process.exitCode = 1;
  },
);
