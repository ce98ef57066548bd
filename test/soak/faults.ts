/**
 * The soak's faults, injected at random times into random targets, each healed before it resolves: partitions
 * between a gateway and Ganymede (the gateway's TCP proxy: blackhole, one direction cut, slow, reset), a gateway
 * child or supervisor paused (SIGSTOP, then SIGCONT), a gateway child killed (its supervisor starts another), a hot
 * restart (`gateway reload`), a supervisor killed and started again, a Ganymede replica killed and started again.
 * One fault at a time per target; faults on different targets overlap.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProxyMode, SeededRandom } from '@ganymede/testkit';
import { type Fleet, LEASE_AND_GRACE_MS } from './fleet.js';

/** How often each kind is drawn. */
export const FAULT_WEIGHTS = {
  // The faults that silence a gateway's renewals, drawn most: past lease + grace they move its organization.
  blackhole: 4,
  'cut-up': 3,
  reset: 3,
  'cut-down': 2,
  slow: 2,
  'pause-child': 2,
  'pause-supervisor': 1,
  'kill-child': 2,
  reload: 3,
  'restart-supervisor': 1,
  'restart-ganymede': 1,
} as const;

export type FaultKind = keyof typeof FAULT_WEIGHTS;

/** Faults injected, by kind (one that found nothing to act on, such as no child running, does not count). */
export type FaultCounts = Record<FaultKind, number>;

/** One fault, every random choice drawn when it is planned (so a seed replays the same draws whatever the timing). */
interface PlannedFault {
  kind: FaultKind;
  target: number;
  /** How long a partition or a pause lasts: from well under the renew deadline to 2.5 × (lease + grace). */
  durationMs: number;
  /** How late a slow proxy delivers each chunk. */
  slowMs: number;
  /** How long a killed replica stays down. */
  downMs: number;
}

const PROXY_MODES = {
  blackhole: () => 'blackhole',
  'cut-up': () => 'cut-up',
  'cut-down': () => 'cut-down',
  reset: () => 'reset',
  slow: (f) => ({ slowMs: f.slowMs }),
} satisfies Partial<Record<FaultKind, (fault: PlannedFault) => ProxyMode>>;

/**
 * What a hot restart ends with, in the supervisor's log: done, withdrawn or given up (the old child serves on), or
 * no child was running (the supervisor starts one at once).
 */
const HANDOVER_ENDS = new Set(['handover_complete', 'handover_gave_up', 'restart_withdrawn', 'restart_now']);

/** Injects a fault into gateway (or, for restart-ganymede, replica) `target`, and heals it. False: nothing to inject it into. */
async function runFault(fleet: Fleet, fault: PlannedFault): Promise<boolean> {
  const { kind, target } = fault;
  if (kind in PROXY_MODES) {
    const proxy = fleet.gateways[target]!.proxy;
    proxy.set(PROXY_MODES[kind as keyof typeof PROXY_MODES](fault));
    await sleep(fault.durationMs);
    proxy.set('pass');
    return true;
  }
  switch (kind) {
    case 'pause-child':
    case 'pause-supervisor': {
      const pid = kind === 'pause-child' ? await fleet.childPid(target) : fleet.supervisor(target).proc.pid;
      if (pid === null || !signal(pid, 'SIGSTOP')) return false;
      await sleep(fault.durationMs);
      signal(pid, 'SIGCONT');
      return true;
    }
    case 'kill-child': {
      const supervisor = fleet.supervisor(target);
      const from = supervisor.proc.logs.length;
      const pid = await fleet.childPid(target);
      if (pid === null || !signal(pid, 'SIGKILL')) return false;
      // Held until its supervisor started the next child (after its crash backoff).
      await supervisor.proc.waitForLog((l) => l.event === 'child_started', { from, timeoutMs: 60_000 });
      return true;
    }
    case 'reload': {
      const supervisor = fleet.supervisor(target);
      const from = supervisor.proc.logs.length;
      await supervisor.cli('reload');
      await supervisor.proc.waitForLog((l) => HANDOVER_ENDS.has(String(l.event)), { from, timeoutMs: 120_000 });
      return true;
    }
    case 'restart-supervisor':
      await fleet.restartSupervisor(target);
      return true;
    case 'restart-ganymede':
      await fleet.restartReplica(target, fault.downMs);
      return true;
    default:
      throw new Error(`no such fault: ${kind}`);
  }
}

/** Sends a signal to a process this test started; false if it is gone. */
function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/**
 * Injects faults for `durationMs`, one every 0.2 to 1.5 s, each into a random target that has none, then waits for
 * every one of them to be healed. Resolves with the number of faults injected, by kind.
 */
export async function injectFaults(fleet: Fleet, rng: SeededRandom, durationMs: number): Promise<FaultCounts> {
  const counts = Object.fromEntries(Object.keys(FAULT_WEIGHTS).map((k) => [k, 0])) as FaultCounts;
  const busy = new Set<string>();
  const running: Promise<void>[] = [];
  const failures: unknown[] = [];
  const end = Date.now() + durationMs;
  while (Date.now() < end) {
    // Random times are what this sleep is for.
    await sleep(rng.between(200, 1_500));
    const kind = rng.weighted(FAULT_WEIGHTS);
    const role = kind === 'restart-ganymede' ? 'replica' : 'gateway';
    const targets = (role === 'replica' ? fleet.replicas : fleet.gateways).map((_, i) => i).filter((i) => !busy.has(`${role} ${i}`));
    const fault: PlannedFault = {
      kind,
      target: targets[Math.floor(rng.next() * targets.length)] ?? -1, // one draw, a target free or not
      durationMs: rng.between(0.25, 2.5) * LEASE_AND_GRACE_MS,
      slowMs: rng.int(200, 2_000),
      downMs: rng.between(200, 3_000),
    };
    if (targets.length === 0) continue;
    const key = `${role} ${fault.target}`;
    busy.add(key);
    running.push(
      runFault(fleet, fault)
        .then((injected) => void (injected && counts[kind]++))
        .catch((error: unknown) => void failures.push(new Error(`fault ${kind} on ${key}`, { cause: error })))
        .finally(() => busy.delete(key)),
    );
  }
  await Promise.all(running);
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} faults could not be injected or healed`);
  return counts;
}
