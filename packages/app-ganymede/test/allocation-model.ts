/**
 * A reference model of the allocation state machine (src/sql/transitions.ts, liveness.ts), written from its doc comments
 * and the protocol, for the model-based test (model.test.ts): what each call should answer, and how the
 * allocations, gateways, audit trail and control plane should look after it. No database here.
 *
 * Times the model cannot know (when a gateway said ready, a restart deadline) are `'pending'` until the test
 * adopts them from the database; after that they must not change until the model says they do. Times the
 * test moves with SQL (deadlines, leases, the crash-loop window, the control plane's heartbeat) are classes
 * here (`passed`, `lapsed`, ...), never clock values.
 */
import type { RestartReason, StopReason } from '@ganymede/contracts';
import type { LivenessPolicy } from '../src/sql/liveness.js';

export const POLICY: LivenessPolicy = { leaseSeconds: 300, crashLoopLimit: 3, crashLoopWindowSeconds: 600 };
export const LEASE_GRACE_SECONDS = 60;
export const RESTART_GRACE_SECONDS = 300;
export const OUTAGE_SECONDS = 30;

export type State = 'active' | 'restarting' | 'ended';
/** A gateway's lease as the clock sees it: never taken (older gateways), running, lapsed, lapsed past the grace. */
export type LeaseState = 'none' | 'valid' | 'lapsed' | 'past_grace';
export type EventKind =
  | 'allocated'
  | 'restart_requested'
  | 'restart_withdrawn'
  | 'reclaimed'
  | 'stopped'
  | 'restart_timed_out'
  | 'rolled_back'
  | 'lease_expired'
  | 'crash_loop';

export interface AuditEvent {
  kind: EventKind;
  reason: string | null;
  epoch: number;
}

export interface ModelAllocation {
  id: string;
  gateway: number;
  organization: number;
  state: State;
  epoch: number;
  /** The instance of the process that last claimed it (null: none yet, or an older gateway). */
  holder: string | null;
  /** The holder before it, set whenever the holder changes: its claim is a take-back (not a crash). */
  previousHolder: string | null;
  claimed: boolean;
  restartReason: RestartReason | null;
  /** Set while restarting: the deadline (microseconds since the epoch, or the string 'pending' until seen) and whether it passed. */
  deadline: { us: string; passed: boolean } | null;
  endedReason: string | null;
  /** Crash reclaims within the crash-loop window. */
  recentCrashes: number;
  events: AuditEvent[];
}

/** A process of a gateway and what it believes it serves. */
export interface Process {
  name: string;
  /** null: an older gateway, which sends no instance id. */
  instance: string | null;
  allocation: string | null;
  epoch: number | null;
}

export interface ModelGateway {
  id: string;
  url: string;
  /** When it last said ready (microseconds), null when out of the pool, the string 'pending' until seen. */
  readyUs: string | null;
  /** The instance of its current process as Ganymede knows it. */
  instance: string | null;
  lease: LeaseState;
  /** Its processes, oldest first; the last is the current one, the others are paused and may wake up late. */
  processes: Process[];
}

/** The parts of an allocation every answer is compared on. */
export interface View {
  allocation_id: string;
  gateway_id: string;
  organization_id: string;
  state: State;
  epoch: number;
  ended_reason: string | null;
}

export type AllocateAnswer = { kind: 'existing' | 'created'; allocation: View } | { kind: 'none' };
export type ReadyAnswer =
  | { kind: 'ok'; allocation: View | null; reclaimed: boolean; leased: boolean }
  | { kind: 'crash_loop'; allocation: View }
  | { kind: 'not_found' | 'forbidden' | 'ended' };
export type LeaseAnswer =
  { kind: 'ok'; allocation: View | null } | { kind: 'forbidden' | 'superseded' | 'ended' } | { kind: 'stale_epoch'; current: number };
export type FencedAnswer = { kind: 'ok'; allocation: View } | { kind: 'not_found' | 'ended' } | { kind: 'stale_epoch'; current: number };

/** Stands for the id the database will give a new allocation. */
export const NEW_ID = '(new allocation)';

export class AllocationModel {
  readonly gateways: ModelGateway[];
  /** Every allocation, in creation order. */
  readonly allocations: ModelAllocation[] = [];
  /** The control plane: no reaper ran for longer than the outage threshold; expiry is held back. */
  readonly controlPlane = { outage: false, held: false };
  /** Audit rows written, by kind. */
  readonly transitions = new Map<EventKind, number>();
  private processCount = 0;

  constructor(
    gateways: { id: string; url: string }[],
    readonly organizations: string[],
  ) {
    this.gateways = gateways.map((g) => ({ ...g, readyUs: null, instance: null, lease: 'none', processes: [] }));
  }

  gateway(g: number): ModelGateway {
    const gateway = this.gateways[g];
    if (!gateway) throw new Error(`no gateway ${g}`);
    return gateway;
  }

  byId(id: string | null): ModelAllocation | undefined {
    return id === null ? undefined : this.allocations.find((a) => a.id === id);
  }

  liveOfGateway(g: number): ModelAllocation | undefined {
    return this.allocations.find((a) => a.gateway === g && a.state !== 'ended');
  }

  liveOfOrganization(o: number): ModelAllocation | undefined {
    return this.allocations.find((a) => a.organization === o && a.state !== 'ended');
  }

  view(a: ModelAllocation): View {
    return {
      allocation_id: a.id,
      gateway_id: this.gateway(a.gateway).id,
      organization_id: this.organizations[a.organization]!,
      state: a.state,
      epoch: a.epoch,
      ended_reason: a.endedReason,
    };
  }

  /** A new process on gateway `g`; `replace`: the current one dies (a crash), else it is paused. */
  startProcess(g: number, legacy: boolean, replace: boolean, instance: string): Process {
    const gateway = this.gateway(g);
    if (replace) gateway.processes.pop();
    // At most three paused processes; an older one is gone for good.
    while (gateway.processes.length > 3) gateway.processes.shift();
    const process: Process = { name: `g${g}p${++this.processCount}`, instance: legacy ? null : instance, allocation: null, epoch: null };
    gateway.processes.push(process);
    return process;
  }

  /** `who` 0: the current process; k: the k-th paused one before it (the oldest when there are fewer). */
  process(g: number, who: number): Process | undefined {
    const all = this.gateway(g).processes;
    return all[Math.max(0, all.length - 1 - who)];
  }

  /** Gateways a new allocation may go to, longest-ready first (ties by id, as the database orders them). */
  freeGateways(): number[] {
    return this.gateways
      .map((gateway, g) => ({ gateway, g }))
      .filter(({ gateway, g }) => {
        if (gateway.readyUs === null || gateway.readyUs === 'pending') {
          if (gateway.readyUs === 'pending') throw new Error('model: a ready time was never adopted');
          return false;
        }
        return (gateway.lease === 'none' || gateway.lease === 'valid') && !this.liveOfGateway(g);
      })
      .sort((x, y) => {
        const dx = BigInt(x.gateway.readyUs as string);
        const dy = BigInt(y.gateway.readyUs as string);
        return dx < dy ? -1 : dx > dy ? 1 : x.gateway.id < y.gateway.id ? -1 : x.gateway.id > y.gateway.id ? 1 : 0;
      })
      .map(({ g }) => g);
  }

  private record(a: ModelAllocation, kind: EventKind, reason: string | null) {
    a.events.push({ kind, reason, epoch: a.epoch });
    this.transitions.set(kind, (this.transitions.get(kind) ?? 0) + 1);
  }

  private end(a: ModelAllocation, endedReason: string, kind: EventKind) {
    a.state = 'ended';
    a.endedReason = endedReason;
    a.deadline = null;
    this.record(a, kind, endedReason);
  }

  /**
   * The gateway leaves the pool. `letGo`: its process is going away too (stop, restart timeout): no instance of
   * it is current. Its lease is left as it was (the process may resume and renew), although migration 002 says
   * "set with readiness, cleared with it".
   */
  private leavesPool(g: number, letGo: boolean) {
    const gateway = this.gateway(g);
    gateway.readyUs = null;
    if (letGo) gateway.instance = null;
  }

  /**
   * A successful /ready: in the pool from now (the current process saying it again keeps its place), this
   * instance current, and the lease renewed if the gateway holds one. An older gateway's process (no instance id)
   * never renews, so it holds no lease: its /ready answers none (the contract: "null until the process renews it
   * once (older gateways never do)").
   */
  private markReady(g: number, instance: string | null) {
    const gateway = this.gateway(g);
    const again = instance !== null && gateway.instance === instance && gateway.readyUs !== null;
    if (!again) gateway.readyUs = 'pending';
    gateway.instance = instance;
    if (gateway.lease !== 'none') gateway.lease = instance === null ? 'none' : 'valid';
  }

  // ---------------------------------------------------------------------------------------------- calls

  /** `allocate`: the organization's live allocation, else a new one (id `NEW_ID`) on the longest-ready free gateway. */
  allocate(o: number): AllocateAnswer {
    const live = this.liveOfOrganization(o);
    if (live) return { kind: 'existing', allocation: this.view(live) };
    const g = this.freeGateways()[0];
    if (g === undefined) return { kind: 'none' };
    const a: ModelAllocation = {
      id: NEW_ID,
      gateway: g,
      organization: o,
      state: 'active',
      epoch: 1,
      holder: null,
      previousHolder: null,
      claimed: false,
      restartReason: null,
      deadline: null,
      endedReason: null,
      recentCrashes: 0,
      events: [],
    };
    this.allocations.push(a);
    this.record(a, 'allocated', null);
    return { kind: 'created', allocation: this.view(a) };
  }

  /** The id the database gave the allocation `allocate` just created. */
  adoptNewId(id: string) {
    const a = this.byId(NEW_ID);
    if (!a) throw new Error('model: no new allocation to name');
    a.id = id;
  }

  anyGatewayFree(): boolean {
    return this.freeGateways().length > 0;
  }

  /** `ready`: idle (null), or a claim: first, repeat, reclaim after a restart or a crash, or the crash loop's end. */
  ready(g: number, allocationId: string | null, instance: string | null): ReadyAnswer {
    if (allocationId === null) {
      this.markReady(g, instance);
      const live = this.liveOfGateway(g);
      return { kind: 'ok', allocation: live ? this.view(live) : null, reclaimed: false, leased: this.gateway(g).lease !== 'none' };
    }
    const a = this.byId(allocationId);
    if (!a) return { kind: 'not_found' };
    if (a.gateway !== g) return { kind: 'forbidden' };
    if (a.state === 'ended') return { kind: 'ended' };
    const claim =
      a.state === 'restarting'
        ? 'restart'
        : !a.claimed
          ? 'first'
          : instance !== null && a.holder === instance
            ? 'repeat'
            : instance !== null && a.previousHolder === instance
              ? 'takeback'
              : 'crash';
    if (claim === 'crash' && a.recentCrashes + 1 >= POLICY.crashLoopLimit) {
      this.end(a, 'crash_loop', 'crash_loop');
      this.leavesPool(a.gateway, false);
      return { kind: 'crash_loop', allocation: this.view(a) };
    }
    const reclaimed = claim === 'restart' || claim === 'crash' || claim === 'takeback';
    if (reclaimed) a.epoch += 1;
    a.state = 'active';
    a.deadline = null;
    a.restartReason = null;
    if (a.holder !== instance) a.previousHolder = a.holder;
    a.holder = instance;
    a.claimed = true;
    if (reclaimed) this.record(a, 'reclaimed', claim);
    if (claim === 'crash') a.recentCrashes += 1;
    this.markReady(g, instance);
    return { kind: 'ok', allocation: this.view(a), reclaimed, leased: this.gateway(g).lease !== 'none' };
  }

  /**
   * `renewLease`: only the gateway's current process (its last successful /ready; none after its allocation
   * was stopped or timed out), serving what it says at the epoch it says, renews. `superseded`: another process
   * took over; `ended`: its allocation is gone; `stale_epoch`: it was reclaimed meanwhile.
   */
  renewLease(g: number, instance: string, allocationId: string | null, epoch: number | null): LeaseAnswer {
    const gateway = this.gateway(g);
    const a = this.byId(allocationId);
    const serves =
      allocationId === null || (a !== undefined && a.gateway === g && a.state !== 'ended' && (epoch === null || a.epoch === epoch));
    if (gateway.instance === instance && serves) {
      gateway.lease = 'valid';
      if (gateway.readyUs === null) gateway.readyUs = 'pending'; // back in the pool
      const live = this.liveOfGateway(g);
      return { kind: 'ok', allocation: live ? this.view(live) : null };
    }
    if (gateway.instance !== instance) {
      // No process is current once its allocation was stopped or timed out: nobody took over, the allocation is gone.
      if (gateway.instance === null && a && a.gateway === g && a.state === 'ended') return { kind: 'ended' };
      return { kind: 'superseded' };
    }
    if (a && a.gateway !== g) return { kind: 'forbidden' };
    if (!a || a.state === 'ended') return { kind: 'ended' };
    return { kind: 'stale_epoch', current: a.epoch };
  }

  private fenced(allocationId: string, epoch: number | null): FencedAnswer | ModelAllocation {
    const a = this.byId(allocationId);
    if (!a) return { kind: 'not_found' };
    if (a.state === 'ended') return { kind: 'ended' };
    if (epoch !== null && epoch !== a.epoch) return { kind: 'stale_epoch', current: a.epoch };
    return a;
  }

  /** `requestRestart`: fenced; a repeat keeps the first deadline and reason and writes no second audit row. */
  requestRestart(allocationId: string, epoch: number | null, reason: RestartReason): FencedAnswer {
    const a = this.fenced(allocationId, epoch);
    if (!('id' in a)) return a;
    if (a.state === 'active') {
      a.state = 'restarting';
      a.restartReason = reason;
      a.deadline = { us: 'pending', passed: false };
      this.record(a, 'restart_requested', reason);
    }
    return { kind: 'ok', allocation: this.view(a) };
  }

  /**
   * `withdrawRestart`: always fenced (the epoch is required); restarting → active at the same epoch, deadline and
   * reason cleared, audited, and the gateway's lease (if it holds one) renewed: the process stopped renewing while its
   * successor booted. Already active at that epoch: ok, nothing changes.
   */
  withdrawRestart(allocationId: string, epoch: number): FencedAnswer {
    const a = this.fenced(allocationId, epoch);
    if (!('id' in a)) return a;
    if (a.state === 'restarting') {
      a.state = 'active';
      a.restartReason = null;
      a.deadline = null;
      this.record(a, 'restart_withdrawn', null);
      const gateway = this.gateway(a.gateway);
      if (gateway.lease !== 'none') gateway.lease = 'valid';
    }
    return { kind: 'ok', allocation: this.view(a) };
  }

  /** `stop`: fenced; ends it, and the gateway's process is going away. */
  stop(allocationId: string, epoch: number | null, reason: StopReason): FencedAnswer {
    const a = this.fenced(allocationId, epoch);
    if (!('id' in a)) return a;
    this.end(a, reason, 'stopped');
    this.leavesPool(a.gateway, true);
    return { kind: 'ok', allocation: this.view(a) };
  }

  /** `rollBack`: only a never-claimed active allocation; the gateway leaves the pool (its process is not let go). */
  rollBack(allocationId: string): boolean {
    const a = this.byId(allocationId);
    if (!a || a.state !== 'active' || a.claimed) return false;
    this.end(a, 'gateway_unreachable', 'rolled_back');
    this.leavesPool(a.gateway, false);
    return true;
  }

  /** `expireRestarts`: restarting allocations whose deadline passed; the ids it ends, sorted. */
  expireRestarts(): string[] {
    const expired = this.allocations.filter((a) => a.state === 'restarting' && a.deadline?.passed === true);
    for (const a of expired) {
      this.end(a, 'restart_timeout', 'restart_timed_out');
      this.leavesPool(a.gateway, true);
    }
    return expired.map((a) => a.id).sort();
  }

  /** `expireLeases`: active allocations whose gateway's lease lapsed past the grace; the ids it ends, sorted. */
  expireLeases(): string[] {
    const expired = this.allocations.filter((a) => a.state === 'active' && this.gateway(a.gateway).lease === 'past_grace');
    for (const a of expired) {
      this.end(a, 'lease_expired', 'lease_expired');
      this.leavesPool(a.gateway, false);
    }
    return expired.map((a) => a.id).sort();
  }

  /** `controlPlaneHeartbeat`: after an outage, expiry is held back (until the test moves that time past). */
  heartbeat(): boolean {
    if (this.controlPlane.outage) this.controlPlane.held = true;
    this.controlPlane.outage = false;
    return this.controlPlane.held;
  }

  // ---------------------------------------------------------------------------------------------- clock moves

  /** The restart deadline of the gateway's restarting allocation passes; false if there is none. */
  restartDeadlinePasses(g: number): boolean {
    const a = this.liveOfGateway(g);
    if (!a || a.state !== 'restarting' || !a.deadline) return false;
    a.deadline = { us: 'pending', passed: true };
    return true;
  }

  /** The gateway's lease (if it ever took one) lapses, within or past the grace. */
  leaseLapses(g: number, pastGrace: boolean) {
    const gateway = this.gateway(g);
    if (gateway.lease !== 'none') gateway.lease = pastGrace ? 'past_grace' : 'lapsed';
  }

  /** Every crash reclaim so far falls out of the crash-loop window. */
  crashWindowPasses() {
    for (const a of this.allocations) a.recentCrashes = 0;
  }

  /** No reaper ran for longer than the outage threshold. */
  outage() {
    this.controlPlane.outage = true;
  }

  /** The hold on expiry is over. */
  holdEnds() {
    this.controlPlane.held = false;
  }
}
