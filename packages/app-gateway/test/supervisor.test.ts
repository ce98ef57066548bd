/**
 * `gateway supervise` with real processes against a fake Ganymede: hot restarts and restarts on crashes,
 * stop for good, the `gateway reload` / `gateway stop` commands, and a supervisor killed outright.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gatewayCommand, type GatewayChild, spawnGatewayChild } from '@ganymede/testkit/gateway-process';
import type { LogRecord } from '@ganymede/testkit/logged-process';
import {
  ALLOCATION,
  allocationAnswers,
  type FakeGanymede,
  GATEWAY_ID,
  GATEWAY_TOKEN,
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
  supervisor: GatewayChild;
  runDir: string;
  reloadMarker: string;
}

async function supervise(answers: Partial<Record<RouteName, Responder>>, env: Record<string, string> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-supervise-'));
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const reloadMarker = join(dir, 'reloading');
  const fake = await startFakeGanymede(answers);
  const supervisor = spawnGatewayChild('supervise', {
    env: {
      GATEWAY_ID,
      GATEWAY_TOKEN,
      GANYMEDE_URL: fake.url,
      GATEWAY_PORT: '0',
      GATEWAY_RUN_DIR: runDir,
      GATEWAY_RELOAD_MARKER: reloadMarker,
      ...env,
    },
  });
  cleanups.push(async () => {
    // Children first (they run in their own process group), then the supervisor.
    for (const r of supervisor.logs) {
      if (r.event === 'child_started' && typeof r.child_pid === 'number') {
        try {
          process.kill(r.child_pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await supervisor.kill();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fake, supervisor, runDir, reloadMarker };
}

/** Resolves with the next gateway child that serves, from log index `from`. */
async function nextServingChild(supervisor: GatewayChild, from: number, notPid?: number): Promise<LogRecord> {
  return supervisor.waitForLog((r) => r.role === 'gateway' && r.event === 'serving' && r.pid !== notPid, { from });
}

function runControl(command: 'reload' | 'stop', args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { file, args: argv } = gatewayCommand(command, args);
  return new Promise((resolve) => {
    const child = execFile(file, argv, (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }));
    child.stdin?.end();
  });
}

const readPid = (runDir: string, file: string) => Number(readFileSync(join(runDir, file), 'utf8').trim());

describe('gateway supervise', () => {
  it('SIGHUP restarts the child at once (exit 75, reclaim at epoch+1); a SIGKILLed child is restarted; SIGTERM stops for good', async () => {
    const scenario = allocationAnswers({ allocated: true, epoch: 2 });
    const { fake, supervisor, runDir } = await supervise(scenario.answers);

    const first = await nextServingChild(supervisor, 0);
    expect(first).toMatchObject({ epoch: 3, allocation_id: ALLOCATION });
    const firstPid = first.pid!;
    expect(readPid(runDir, 'supervisor.pid')).toBe(supervisor.pid);
    expect(readPid(runDir, 'child.pid')).toBe(firstPid);
    const port = (await supervisor.waitForLog((r) => r.event === 'listening' && r.pid === firstPid)).port;

    // Reload, hot: the child asks Ganymede to keep the allocation, a successor reclaims it at epoch + 1 and takes
    // over, then the old child drains and exits 75.
    let mark = supervisor.logs.length;
    supervisor.signal('SIGHUP');
    const exited = await supervisor.waitForLog((r) => r.event === 'child_exited', { from: mark });
    expect(exited).toMatchObject({ child_pid: firstPid, code: 75, signal: null });
    const second = await nextServingChild(supervisor, mark, firstPid);
    expect(second).toMatchObject({ epoch: 4, allocation_id: ALLOCATION });
    expect(fake.callsTo('restart').map((c) => c.body)).toEqual([{ reason: 'reload', epoch: 3, allocation_id: ALLOCATION }]);
    expect(supervisor.logs.slice(mark).some((r) => r.event === 'child_crashed')).toBe(false);
    // Same port across restarts: the supervisor's socket, bound once with GATEWAY_PORT=0.
    expect((await supervisor.waitForLog((r) => r.event === 'listening' && r.pid === second.pid)).port).toBe(port);

    // A crash: SIGKILL the child. Nothing reaches Ganymede from it; the supervisor restarts it after a backoff.
    mark = supervisor.logs.length;
    const callsBefore = fake.protocolCalls().length;
    process.kill(second.pid!, 'SIGKILL');
    expect(await supervisor.waitForLog((r) => r.event === 'child_exited', { from: mark })).toMatchObject({
      child_pid: second.pid,
      code: null,
      signal: 'SIGKILL',
    });
    expect(await supervisor.waitForLog((r) => r.event === 'child_crashed', { from: mark })).toMatchObject({ delay_ms: 100, failures: 1 });
    const third = await nextServingChild(supervisor, mark, second.pid);
    expect(third).toMatchObject({ epoch: 5 });
    expect(
      fake
        .protocolCalls()
        .slice(callsBefore)
        .map((c) => c.route),
    ).toEqual(['reclaim']);

    // Stop for good: the child gets SIGINT (a stop), ends the allocation, exits 0; so does the supervisor.
    mark = supervisor.logs.length;
    supervisor.signal('SIGTERM');
    expect(await supervisor.exited).toEqual({ code: 0, signal: null });
    expect(fake.callsTo('stop').map((c) => c.body)).toEqual([{ reason: 'stop', epoch: 5, allocation_id: ALLOCATION }]);
    expect(supervisor.logs.slice(mark).find((r) => r.event === 'child_exited')).toMatchObject({ child_pid: third.pid, code: 0 });
    expect(supervisor.logs.slice(mark).find((r) => r.event === 'shutdown_signal')).toMatchObject({ trigger: 'SIGINT', kind: 'stop' });
    expect(existsSync(join(runDir, 'supervisor.pid'))).toBe(false);
    expect(existsSync(join(runDir, 'child.pid'))).toBe(false);
  });

  it('`gateway reload --reason deploy` and `gateway stop --reason decommission` drive it through the pid file', async () => {
    const scenario = allocationAnswers({ allocated: true, epoch: 2 });
    const { fake, supervisor, runDir, reloadMarker } = await supervise(scenario.answers);
    const first = await nextServingChild(supervisor, 0);
    const control = ['--run-dir', runDir, '--reload-marker', reloadMarker];

    const mark = supervisor.logs.length;
    const reload = await runControl('reload', [...control, '--reason', 'deploy']);
    expect(reload.code, reload.stderr).toBe(0);
    expect(JSON.parse(reload.stdout)).toMatchObject({ event: 'reload_sent', supervisor_pid: supervisor.pid, reason: 'deploy' });
    const second = await nextServingChild(supervisor, mark, first.pid);
    await supervisor.waitForLog((r) => r.event === 'handover_complete', { from: mark });
    expect(fake.callsTo('restart').map((c) => c.body.reason)).toEqual(['deploy']);
    expect(existsSync(reloadMarker)).toBe(false);

    const stop = await runControl('stop', [...control, '--reason', 'decommission']);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await supervisor.exited).code).toBe(0);
    expect(fake.callsTo('stop').map((c) => c.body)).toEqual([{ reason: 'decommission', epoch: second.epoch, allocation_id: ALLOCATION }]);
    expect(existsSync(join(runDir, 'stop-reason'))).toBe(false);

    // Nothing left to signal.
    const again = await runControl('stop', control);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no supervisor runs/);
    expect((await runControl('reload', [...control, '--reason', 'bogus'])).code).toBe(2);
  });

  it('crash loops back off exponentially; SIGTERM during a backoff exits 0 at once', async () => {
    const { supervisor } = await supervise({ config: () => ({ status: 401, body: { error: 'unauthorized', message: 'bad token' } }) });
    for (const n of [1, 2, 3]) await supervisor.waitForLog((r) => r.event === 'child_crashed' && r.failures === n);
    const delays = supervisor.logs.filter((r) => r.event === 'child_crashed').map((r) => r.delay_ms);
    expect(delays.slice(0, 3)).toEqual([100, 200, 400]);
    supervisor.signal('SIGTERM');
    expect((await supervisor.exited).code).toBe(0);
  });

  it('a supervisor killed outright: its child notices, keeps the allocation (/restart) and exits', async () => {
    const scenario = allocationAnswers({ allocated: true, epoch: 2 });
    const { fake, supervisor } = await supervise(scenario.answers);
    const child = await nextServingChild(supervisor, 0);
    process.kill(supervisor.pid, 'SIGKILL');
    // The child still writes to our pipe: its own exit line shows up.
    const exit = await supervisor.waitForLog((r) => r.event === 'exit' && r.pid === child.pid);
    expect(exit).toMatchObject({ exit_code: 75 });
    expect(fake.callsTo('restart').map((c) => c.body.reason)).toEqual(['restart']);
  });

  it('invalid configuration: exit 2 before any child starts', async () => {
    const supervisor = spawnGatewayChild('supervise', { env: { GATEWAY_ID: GATEWAY_ID, GATEWAY_TOKEN: '', GATEWAY_PORT: 'x' } });
    cleanups.push(() => supervisor.kill());
    expect((await supervisor.exited).code).toBe(2);
    expect(supervisor.logs.some((r) => r.event === 'child_started')).toBe(false);
  });
});
