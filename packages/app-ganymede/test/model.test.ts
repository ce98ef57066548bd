/**
 * Model-based test of the allocation state machine: random interleavings of starts, claims, reclaims,
 * lease renewals, restarts, withdrawn restarts, stops, crashes, paused processes that wake up late, bursts of processes taking an
 * allocation over at once, reaper runs and clock moves, across 3 gateways and 4 organizations, on the real SQL
 * (src/sql/transitions.ts, liveness.ts) on the suite's migrated database (PGlite in memory, or PostgreSQL). A reference model (allocation-model.ts) predicts
 * every answer; after every command the whole database is compared with it and the invariants are checked:
 * - at most one live allocation per gateway and per organization;
 * - an ended allocation never changes again; epochs only grow;
 * - every transition has its audit row (per allocation, in order, and counted per kind);
 * - every allocation (gateway, organization, state, epoch, holder, deadline, reasons) and every gateway
 *   (readiness, current instance, lease) is as the model says; a refused call changes nothing at all.
 * Time passes only by moving timestamps into the past with SQL; nothing sleeps.
 */
import type { RestartReason, StopReason } from '@ganymede/contracts';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { controlPlaneHeartbeat, expireLeases, renewLease } from '../src/sql/liveness.js';
import { type Allocation, liveAllocationOfGateway } from '../src/sql/rows.js';
import {
  allocate,
  anyGatewayFree,
  expireRestarts,
  type ReadyResult,
  ready,
  reclaim,
  requestRestart,
  rollBack,
  stop,
  withdrawRestart,
} from '../src/sql/transitions.js';
import {
  AllocationModel,
  type AuditEvent,
  type FencedAnswer,
  LEASE_GRACE_SECONDS,
  type LeaseAnswer,
  NEW_ID,
  OUTAGE_SECONDS,
  POLICY,
  type Process,
  RESTART_GRACE_SECONDS,
  type ReadyAnswer,
  type View,
} from './allocation-model.js';
import { openMigratedDatabase, snapshotOf, truncateAll } from './support.js';

const GATEWAYS = 3;
const ORGANIZATIONS = 4;
/** Runs, and commands per run (uniformly up to): about 15 s on PGlite here. FC_RUNS, FC_SEED, FC_PATH override; FC_STATS=1 prints coverage. */
const NUM_RUNS = Number(process.env.FC_RUNS ?? 100);
const MAX_COMMANDS = 50;

// Fixed ids, so a counterexample replays the same way (ties in ready_at are broken by gateway id).
const gatewayId = (g: number) => `aaaaaaaa-0000-4000-8000-${String(g).padStart(12, '0')}`;
const organizationId = (o: number) => `bbbbbbbb-0000-4000-8000-${String(o).padStart(12, '0')}`;
const instanceId = (n: number) => `cccccccc-0000-4000-8000-${String(n).padStart(12, '0')}`;
const UNKNOWN_ALLOCATION = 'dddddddd-0000-4000-8000-000000000000';

let db: Database;
beforeAll(async () => {
  db = await openMigratedDatabase();
});
afterAll(async () => {
  await db?.close();
});

// ------------------------------------------------------------------------------------------------ commands

/** Which process of the gateway acts: 0 the current one, k the k-th paused one before it. */
type Who = number;
/** The epoch a call carries: the one the process holds (maybe stale), none (older gateways), the right one, a wrong one. */
type EpochChoice = 'held' | 'none' | 'current' | 'wrong';
/**
 * What /ready names: nothing (idle), what the process holds, the gateway's live allocation (as /config tells), another,
 * an unknown id; or 'reclaim': the process calls /reclaim instead (config + ready {live} in one statement).
 */
type ReadyTarget = 'idle' | 'held' | 'live' | 'reclaim' | 'unknown' | { other: number };
/** What /restart, /restart/withdraw and /stop name: what the process holds (else the gateway's live allocation), another, an unknown id. */
type FencedTarget = 'held' | 'unknown' | { other: number };

type Command =
  | { t: 'start'; org: number; notice: 'claimed' | 'unreachable' | 'answer_lost' }
  | { t: 'config'; gw: number }
  | { t: 'ready'; gw: number; who: Who; target: ReadyTarget }
  | { t: 'lease'; gw: number; who: Who; idle: boolean; epoch: EpochChoice }
  | { t: 'restart'; gw: number; who: Who; target: FencedTarget; epoch: EpochChoice; reason: RestartReason }
  | { t: 'stop'; gw: number; who: Who; target: FencedTarget; epoch: EpochChoice; reason: StopReason }
  /** The process takes its restart back (its successor failed to boot). The epoch is required: 'none' sends the current one. */
  | { t: 'withdraw'; gw: number; who: Who; target: FencedTarget; epoch: EpochChoice }
  /** The new process reclaims with /config then /ready, or (`oneCall`, not for an older gateway) with /reclaim. */
  | { t: 'crash' | 'pause'; gw: number; legacy: boolean; oneCall: boolean }
  /** `size` new processes of the gateway come up at once (its current one died) and all take over its live allocation. */
  | { t: 'burst'; gw: number; size: number }
  /** A late roll-back (Ganymede's notice timed out long ago) of any allocation: only a never-claimed one ends. */
  | { t: 'rollback'; target: 'unknown' | { other: number } }
  | { t: 'reap'; pass: 'full' | 'restarts' | 'leases' }
  /** `reap`: a reaper pass comes right after (before anything can renew or reclaim). */
  | { t: 'clock'; move: 'restart_deadline' | 'lease_lapsed' | 'lease_past_grace'; gw: number; reap: boolean }
  | { t: 'clock'; move: 'crash_window' | 'outage' | 'hold_over' };

const gw = fc.nat({ max: GATEWAYS - 1 });
const who = fc.constantFrom(0, 0, 0, 1, 2);
const epoch = fc.constantFrom<EpochChoice>('held', 'held', 'held', 'none', 'current', 'wrong');
const other = fc.record({ other: fc.nat({ max: 30 }) });
const fencedTarget: fc.Arbitrary<FencedTarget> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('held' as const) },
  { weight: 1, arbitrary: fc.constant('unknown' as const) },
  { weight: 2, arbitrary: other },
);
const readyTarget: fc.Arbitrary<ReadyTarget> = fc.oneof(
  { weight: 2, arbitrary: fc.constant('idle' as const) },
  { weight: 4, arbitrary: fc.constant('held' as const) },
  { weight: 3, arbitrary: fc.constant('live' as const) },
  { weight: 2, arbitrary: fc.constant('reclaim' as const) },
  { weight: 1, arbitrary: fc.constant('unknown' as const) },
  { weight: 1, arbitrary: other },
);

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('start' as const),
      org: fc.nat({ max: ORGANIZATIONS - 1 }),
      notice: fc.constantFrom('claimed' as const, 'claimed' as const, 'claimed' as const, 'unreachable' as const, 'answer_lost' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('config' as const), gw }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('ready' as const), gw, who, target: readyTarget }) },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant('lease' as const), gw, who, idle: fc.constantFrom(false, false, false, true), epoch }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('restart' as const),
      gw,
      who,
      target: fencedTarget,
      epoch,
      reason: fc.constantFrom<RestartReason>('reload', 'deploy', 'restart'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('withdraw' as const), gw, who, target: fencedTarget, epoch }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('stop' as const),
      gw,
      who,
      target: fencedTarget,
      epoch,
      reason: fc.constantFrom<StopReason>('stop', 'idle', 'decommission'),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constantFrom('crash' as const, 'pause' as const),
      gw,
      legacy: fc.constantFrom(false, false, false, true),
      oneCall: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('burst' as const), gw, size: fc.integer({ min: 2, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rollback' as const), target: fc.oneof(fc.constant('unknown' as const), other) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('reap' as const),
      pass: fc.constantFrom('full' as const, 'full' as const, 'restarts' as const, 'leases' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('clock' as const),
      move: fc.constantFrom('restart_deadline' as const, 'lease_lapsed' as const, 'lease_past_grace' as const),
      gw,
      reap: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('clock' as const),
      move: fc.constantFrom('crash_window' as const, 'outage' as const, 'hold_over' as const),
    }),
  },
);

// ------------------------------------------------------------------------------------------------ one run

const view = (a: Allocation): View => ({
  allocation_id: a.allocation_id,
  gateway_id: a.gateway_id,
  organization_id: a.organization_id,
  state: a.state,
  epoch: a.epoch,
  ended_reason: a.ended_reason,
});

/** What the test has seen of the database so far, for the invariants that span commands. */
interface Seen {
  epochs: Map<string, number>;
  /** Every ended allocation's row as it was when first seen ended. */
  endedRows: Map<string, string>;
  /** The latest ready_at seen: a gateway that says ready now cannot be earlier. */
  maxReadyUs: bigint;
}

class Run {
  readonly model = new AllocationModel(
    Array.from({ length: GATEWAYS }, (_, g) => ({ id: gatewayId(g), url: `http://127.0.0.1:${4101 + g}` })),
    Array.from({ length: ORGANIZATIONS }, (_, o) => organizationId(o)),
  );
  readonly seen: Seen = { epochs: new Map(), endedRows: new Map(), maxReadyUs: 0n };
  readonly trace: string[] = [];
  private instances = 0;

  async setUp() {
    await truncateAll(db);
    // The control plane's row survives truncation: a reaper just ran, nothing is held back.
    await db.query('UPDATE control_plane SET last_reaped_at = now(), expiry_held_until = now()');
    for (const g of this.model.gateways) await db.query('INSERT INTO gateways (id, url) VALUES ($1, $2)', [g.id, g.url]);
    // Every gateway's first process comes up (idle).
    for (let g = 0; g < GATEWAYS; g++) await this.step({ t: 'crash', gw: g, legacy: false, oneCall: false });
  }

  async step(c: Command) {
    try {
      const line = await this.execute(c);
      this.trace.push(`${JSON.stringify(c)} → ${line}`);
      count(`${c.t}${'move' in c ? ` ${c.move}` : ''}: ${answerShape(line)}`);
    } catch (error) {
      this.trace.push(`${JSON.stringify(c)} → FAILED`);
      throw error;
    }
    await this.verify();
  }

  /** Runs one command on the database and on the model; checks the answers; answers a line for the trace. */
  private async execute(c: Command): Promise<string> {
    const m = this.model;
    switch (c.t) {
      case 'start':
        return this.start(c.org, c.notice);
      case 'config': {
        const live = m.liveOfGateway(c.gw);
        const actual = await liveAllocationOfGateway(db, gatewayId(c.gw));
        expect(actual ? { ...view(actual), url: actual.gateway_url } : actual).toEqual(
          live ? { ...m.view(live), url: m.gateway(c.gw).url } : null,
        );
        return actual ? `${actual.state} epoch ${actual.epoch}` : 'none';
      }
      case 'ready': {
        const process = m.process(c.gw, c.who);
        if (!process) return 'skipped: no process';
        if (c.target === 'reclaim')
          return process.instance === null ? 'skipped: an older gateway' : (await this.reclaim(c.gw, process)).line;
        const target =
          c.target === 'idle'
            ? null
            : c.target === 'held'
              ? process.allocation
              : c.target === 'live'
                ? (m.liveOfGateway(c.gw)?.id ?? null)
                : this.pick(c.target);
        return (await this.ready(c.gw, process, target)).line;
      }
      case 'lease':
        return this.lease(c);
      case 'restart':
      case 'stop':
      case 'withdraw':
        return this.fenced(c);
      case 'crash':
      case 'pause': {
        const process = m.startProcess(c.gw, c.legacy, c.t === 'crash', instanceId(++this.instances));
        if (c.oneCall && process.instance !== null) {
          // One call; nothing to claim, or refused (the crash loop's end): it comes up idle.
          const claimed = await this.reclaim(c.gw, process);
          if (claimed.kind !== 'ok') return `${claimed.line}; then ${(await this.ready(c.gw, process, null)).line}`;
          return claimed.line;
        }
        // The new process asks for its live allocation and reclaims it, or comes up idle (as the gateway does).
        const live = m.liveOfGateway(c.gw);
        const actual = await liveAllocationOfGateway(db, gatewayId(c.gw));
        expect(actual ? view(actual) : actual).toEqual(live ? m.view(live) : null);
        const claimed = await this.ready(c.gw, process, actual?.allocation_id ?? null);
        // Refused (the crash loop's end): it comes up idle instead.
        if (claimed.kind !== 'ok') return `${claimed.line}; then ${(await this.ready(c.gw, process, null)).line}`;
        return claimed.line;
      }
      case 'burst':
        return this.burst(c.gw, c.size);
      case 'rollback': {
        const id = this.pick(c.target);
        const expected = m.rollBack(id);
        expect(await this.unchangedIf(!expected, () => rollBack(db, id))).toBe(expected);
        return `rolled back: ${expected}`;
      }
      case 'reap':
        return this.reap(c.pass);
      case 'clock': {
        const moved = await this.clock(c);
        return 'reap' in c && c.reap ? `${moved}; ${await this.reap('full')}` : moved;
      }
    }
  }

  /** An allocation by position in creation order (any state, any gateway), or an id nobody knows. */
  private pick(target: 'unknown' | { other: number }): string {
    const all = this.model.allocations;
    if (target === 'unknown' || all.length === 0) return UNKNOWN_ALLOCATION;
    return all[target.other % all.length]!.id;
  }

  private async start(o: number, notice: 'claimed' | 'unreachable' | 'answer_lost'): Promise<string> {
    const m = this.model;
    expect(await anyGatewayFree(db)).toBe(m.anyGatewayFree());
    const expected = m.allocate(o);
    const actual = await allocate(db, organizationId(o));
    if (actual.kind === 'none' || expected.kind === 'none') {
      expect(actual).toEqual(expected);
      return 'none';
    }
    const actualView = view(actual.allocation);
    if (actual.kind === 'created') actualView.allocation_id = NEW_ID;
    expect({ kind: actual.kind, allocation: actualView, url: actual.allocation.gateway_url }).toEqual({
      ...expected,
      url: m.gateways.find((g) => g.id === expected.allocation.gateway_id)?.url,
    });
    const id = actual.allocation.allocation_id;
    if (actual.kind === 'existing') return `existing ${id.slice(0, 8)}`;
    m.adoptNewId(id);
    const g = m.byId(id)!.gateway;
    // Ganymede notifies the gateway: its current process claims it, or it never hears (unreachable), or it
    // claims it but its answer to the notice is lost (Ganymede rolls back, which must not undo the claim).
    const line = `created ${id.slice(0, 8)} on g${g}`;
    const current = m.process(g, 0);
    if (notice !== 'unreachable' && current) {
      const claimed = await this.ready(g, current, id);
      if (notice === 'claimed') return `${line}; ${claimed.line}`;
    }
    const expectedRolledBack = m.rollBack(id);
    expect(await this.unchangedIf(!expectedRolledBack, () => rollBack(db, id))).toBe(expectedRolledBack);
    return `${line}; rolled back: ${expectedRolledBack}`;
  }

  /** `process` calls /ready naming `target` (null: idle). */
  private async ready(g: number, process: Process, target: string | null): Promise<{ kind: string; line: string }> {
    const m = this.model;
    const expected: ReadyAnswer = m.ready(g, target, process.instance);
    const refused = expected.kind !== 'ok' && expected.kind !== 'crash_loop';
    const actual = await this.unchangedIf(refused, () => ready(db, gatewayId(g), target, process.instance, POLICY));
    return this.readyAnswered(g, process, target, expected, actual);
  }

  /**
   * `process` calls /reclaim: in the model, /config (the gateway's live allocation) then /ready naming it; nothing
   * live is `not_found` and changes nothing.
   */
  private async reclaim(g: number, process: Process): Promise<{ kind: string; line: string }> {
    const live = this.model.liveOfGateway(g)?.id ?? null;
    const expected: ReadyAnswer = live === null ? { kind: 'not_found' } : this.model.ready(g, live, process.instance);
    const refused = expected.kind !== 'ok' && expected.kind !== 'crash_loop';
    const actual = await this.unchangedIf(refused, () => reclaim(db, gatewayId(g), process.instance!, POLICY));
    const answered = this.readyAnswered(g, process, live, expected, actual);
    return { kind: answered.kind, line: answered.line.replace(' ready(', ' reclaim(') };
  }

  /** Checks `ready`'s answer against the model's, and tells `process` what it now serves. */
  private readyAnswered(g: number, process: Process, target: string | null, expected: ReadyAnswer, actual: ReadyResult) {
    const normalized: ReadyAnswer =
      actual.kind === 'ok'
        ? {
            kind: 'ok',
            allocation: actual.allocation && view(actual.allocation),
            reclaimed: actual.reclaimed,
            leased: actual.lease.expires_at !== null,
          }
        : actual.kind === 'crash_loop'
          ? { kind: 'crash_loop', allocation: view(actual.allocation) }
          : actual;
    expect(normalized).toEqual(expected);
    if (actual.kind === 'ok') {
      expect(actual.lease.seconds).toBe(POLICY.leaseSeconds);
      if (actual.allocation) expect(actual.allocation.gateway_url).toBe(this.model.gateway(g).url);
    }
    if (actual.kind === 'ok') {
      process.allocation = target === null ? null : (actual.allocation?.allocation_id ?? null);
      process.epoch = target === null ? null : (actual.allocation?.epoch ?? null);
    } else if (target === process.allocation) {
      forget(process);
    }
    const held = actual.kind === 'ok' && actual.allocation ? ` ${actual.allocation.state} epoch ${actual.allocation.epoch}` : '';
    const reclaimed = actual.kind === 'ok' && actual.reclaimed ? ' reclaimed' : '';
    return { kind: actual.kind, line: `${process.name} ready(${target?.slice(0, 8) ?? 'idle'}): ${actual.kind}${held}${reclaimed}` };
  }

  /**
   * `size` new processes of gateway `g` (the first replaces the current one, which died) all take over its live
   * allocation at once: on PostgreSQL the statements really meet on the row lock. They must be linearizable: the
   * answers say in which order they took the lock (claims by epoch, each takeover raised it; then the crash loop's
   * end; then those that found it ended), and the model, run in that order, must predict every one of them. The
   * refused processes then come up idle, one after another, as a gateway does.
   */
  private async burst(gw: number, size: number): Promise<string> {
    const m = this.model;
    // The gw-th gateway among those holding a live allocation (a burst elsewhere only says ready).
    const g =
      among(
        m.gateways.flatMap((_, g) => (m.liveOfGateway(g) ? [g] : [])),
        gw,
      ) ?? gw;
    const live = m.liveOfGateway(g);
    const actualLive = await liveAllocationOfGateway(db, gatewayId(g));
    expect(actualLive ? view(actualLive) : actualLive).toEqual(live ? m.view(live) : null);
    if (!live) return 'skipped: nothing to take over';
    const target = live.id;
    const processes = Array.from({ length: size }, (_, i) => m.startProcess(g, false, i === 0, instanceId(++this.instances)));
    const answers = await Promise.all(processes.map((p) => ready(db, gatewayId(g), target, p.instance, POLICY)));
    const rank = (r: ReadyResult) =>
      r.kind === 'ok' ? (r.allocation?.epoch ?? 0) : r.kind === 'crash_loop' ? Number.MAX_SAFE_INTEGER - 1 : Number.MAX_SAFE_INTEGER;
    const order = processes.map((p, i) => ({ p, actual: answers[i]! })).sort((x, y) => rank(x.actual) - rank(y.actual));
    // The gateway's processes, oldest first: the burst's in the order they took the lock.
    const all = m.gateway(g).processes;
    all.splice(0, all.length, ...all.filter((p) => !processes.includes(p)), ...order.map((o) => o.p));
    const lines = order.map(({ p, actual }) => this.readyAnswered(g, p, target, m.ready(g, target, p.instance), actual).line);
    for (const { p, actual } of order) if (actual.kind !== 'ok') lines.push(`then ${(await this.ready(g, p, null)).line}`);
    return `${size} at once: ${lines.join('; ')}`;
  }

  private async lease(c: Extract<Command, { t: 'lease' }>): Promise<string> {
    const m = this.model;
    const process = m.process(c.gw, c.who);
    // Older gateways (no instance id) never renew.
    if (!process || process.instance === null) return 'skipped: no process that renews';
    const allocationId = c.idle ? null : process.allocation;
    const epoch = allocationId === null ? null : this.epochFor(c.epoch, process, allocationId);
    const expected: LeaseAnswer = m.renewLease(c.gw, process.instance, allocationId, epoch);
    const actual = await this.unchangedIf(expected.kind !== 'ok', () =>
      renewLease(db, gatewayId(c.gw), process.instance!, allocationId, epoch, POLICY.leaseSeconds),
    );
    if (actual.kind === 'ok') {
      expect(actual.lease.expires_at).not.toBeNull();
      expect(actual.lease.seconds).toBe(POLICY.leaseSeconds);
      if (actual.allocation) expect(actual.allocation.gateway_url).toBe(m.gateway(c.gw).url);
    }
    expect(actual.kind === 'ok' ? { kind: 'ok', allocation: actual.allocation && view(actual.allocation) } : actual).toEqual(expected);
    if (actual.kind !== 'ok') forget(process);
    return `${process.name} lease(${allocationId?.slice(0, 8) ?? 'idle'}, epoch ${epoch}): ${actual.kind}`;
  }

  private epochFor(choice: EpochChoice, process: Process, allocationId: string): number | null {
    const current = this.model.byId(allocationId)?.epoch ?? 1;
    switch (choice) {
      case 'held':
        return process.allocation === allocationId ? process.epoch : null;
      case 'none':
        return null;
      case 'current':
        return current;
      case 'wrong':
        return current + 1;
    }
  }

  private async fenced(c: Extract<Command, { t: 'restart' | 'stop' | 'withdraw' }>): Promise<string> {
    const m = this.model;
    // The gw-th gateway among those holding a live allocation (a stop or restart elsewhere is rarely interesting);
    // a withdrawal goes to a restarting one while there is one.
    const holding = (restartingOnly: boolean) =>
      m.gateways.flatMap((_, g) => {
        const live = m.liveOfGateway(g);
        return live && (!restartingOnly || live.state === 'restarting') ? [g] : [];
      });
    const restarting = c.t === 'withdraw' ? holding(true) : [];
    const g = among(restarting.length ? restarting : holding(false), c.gw) ?? c.gw;
    const process = m.process(g, c.who);
    const target = c.target === 'held' ? (process?.allocation ?? m.liveOfGateway(g)?.id ?? null) : this.pick(c.target);
    if (target === null) return 'skipped: nothing to name';
    const chosen = process ? this.epochFor(c.epoch, process, target) : null;
    // A withdrawal always names an epoch: without one to hand, the process names the current one.
    const epoch = c.t === 'withdraw' ? (chosen ?? m.byId(target)?.epoch ?? 1) : chosen;
    const expected: FencedAnswer =
      c.t === 'restart'
        ? m.requestRestart(target, epoch, c.reason)
        : c.t === 'stop'
          ? m.stop(target, epoch, c.reason)
          : m.withdrawRestart(target, epoch!);
    const actual = await this.unchangedIf(expected.kind !== 'ok', () =>
      c.t === 'restart'
        ? requestRestart(db, target, epoch, c.reason, RESTART_GRACE_SECONDS)
        : c.t === 'stop'
          ? stop(db, target, epoch, c.reason)
          : withdrawRestart(db, target, epoch!),
    );
    expect(actual.kind === 'ok' ? { kind: 'ok', allocation: view(actual.allocation) } : actual).toEqual(expected);
    if (actual.kind === 'ok') {
      const a = m.byId(target)!;
      expect(actual.allocation.gateway_url).toBe(m.gateway(a.gateway).url);
      if (c.t === 'restart') {
        // The deadline answered is the one stored, and a repeat answers the first one (checked in verify).
        const { rows } = await db.query<{ us: string }>(
          'SELECT (extract(epoch FROM restart_deadline) * 1000000)::bigint::text AS us FROM allocations WHERE id = $1',
          [target],
        );
        expect(Date.parse(actual.allocation.restart_deadline!)).toBe(Math.floor(Number(rows[0]!.us) / 1000));
      } else if (c.t === 'withdraw') {
        expect(actual.allocation).toMatchObject({ state: 'active', restart_deadline: null, ended_at: null });
      } else {
        expect(actual.allocation).toMatchObject({ restart_deadline: null, ended_reason: c.reason });
        expect(actual.allocation.ended_at).not.toBeNull();
      }
    }
    if (process && target === process.allocation && (c.t === 'stop' || actual.kind !== 'ok')) forget(process);
    return `${c.t}(${target.slice(0, 8)}, epoch ${epoch}): ${actual.kind}${actual.kind === 'stale_epoch' ? ` at ${actual.current}` : ''}`;
  }

  private async reap(pass: 'full' | 'restarts' | 'leases'): Promise<string> {
    const m = this.model;
    if (pass === 'full') {
      const held = m.heartbeat();
      expect(await controlPlaneHeartbeat(db, OUTAGE_SECONDS, POLICY.leaseSeconds)).toBe(held);
      if (held) return 'held back';
    }
    const ended: string[] = [];
    if (pass !== 'leases') ended.push(...(await this.expired(m.expireRestarts(), () => expireRestarts(db), 'restart_timeout')));
    if (pass !== 'restarts')
      ended.push(...(await this.expired(m.expireLeases(), () => expireLeases(db, LEASE_GRACE_SECONDS), 'lease_expired')));
    return `ended ${ended.map((id) => id.slice(0, 8)).join(', ') || 'nothing'}`;
  }

  private async expired(expected: string[], run: () => Promise<Allocation[]>, reason: string): Promise<string[]> {
    const actual = await this.unchangedIf(expected.length === 0, run);
    expect(actual.map((a) => a.allocation_id).sort()).toEqual(expected);
    for (const a of actual) {
      expect(a).toMatchObject({ state: 'ended', ended_reason: reason, restart_deadline: null });
      expect(a.gateway_url).toBe(this.model.gateway(this.model.byId(a.allocation_id)!.gateway).url);
    }
    return expected;
  }

  private async clock(c: Extract<Command, { t: 'clock' }>): Promise<string> {
    const m = this.model;
    switch (c.move) {
      case 'restart_deadline': {
        // The gw-th gateway among those whose allocation is restarting.
        const g = among(
          m.gateways.flatMap((_, g) => (m.liveOfGateway(g)?.state === 'restarting' ? [g] : [])),
          c.gw,
        );
        if (g === undefined || !m.restartDeadlinePasses(g)) return 'nothing restarting';
        await db.query(
          `UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE gateway_id = $1 AND state = 'restarting'`,
          [gatewayId(g)],
        );
        return 'the deadline passed';
      }
      case 'lease_lapsed':
      case 'lease_past_grace': {
        // The gw-th gateway among those that ever took a lease, those serving an active allocation first.
        const leased = m.gateways.flatMap((gateway, g) => (gateway.lease !== 'none' ? [g] : []));
        const serving = leased.filter((g) => m.liveOfGateway(g)?.state === 'active');
        const g = among(serving.length ? serving : leased, c.gw);
        if (g === undefined) return 'no lease';
        const past = c.move === 'lease_lapsed' ? 1 : LEASE_GRACE_SECONDS + 10;
        m.leaseLapses(g, c.move === 'lease_past_grace');
        await db.query(
          'UPDATE gateways SET lease_expires_at = now() - make_interval(secs => $2) WHERE id = $1 AND lease_expires_at IS NOT NULL',
          [gatewayId(g), past],
        );
        return `${m.gateway(g).lease} (${m.liveOfGateway(g)?.state ?? 'idle'})`;
      }
      case 'crash_window':
        m.crashWindowPasses();
        await db.query(`UPDATE allocation_events SET at = at - make_interval(secs => $1) WHERE kind = 'reclaimed' AND reason = 'crash'`, [
          POLICY.crashLoopWindowSeconds + 10,
        ]);
        return 'crashes forgotten';
      case 'outage':
        m.outage();
        await db.query('UPDATE control_plane SET last_reaped_at = now() - make_interval(secs => $1)', [OUTAGE_SECONDS * 2]);
        return 'no reaper ran for a while';
      case 'hold_over':
        m.holdEnds();
        await db.query(`UPDATE control_plane SET expiry_held_until = now() - interval '1 second'`);
        return 'the hold is over';
    }
  }

  /** Runs `call`; when the model says it is refused (or finds nothing), the database must not change at all. */
  private async unchangedIf<T>(refused: boolean, call: () => Promise<T>): Promise<T> {
    if (!refused) return call();
    const before = await snapshotOf(db);
    const result = await call();
    expect(await snapshotOf(db), 'a refused call changed the database').toEqual(before);
    return result;
  }

  // ---------------------------------------------------------------------------------------------- invariants

  /** The whole database against the model, and the invariants that span commands. */
  async verify() {
    const m = this.model;
    const { rows: allocations } = await db.query<{
      id: string;
      gateway_id: string;
      organization_id: string;
      state: string;
      epoch: number;
      holder_instance: string | null;
      claimed: boolean;
      restart_reason: string | null;
      ended_reason: string | null;
      deadline_us: string | null;
      deadline_passed: boolean | null;
      row: string;
    }>(
      `SELECT id, gateway_id, organization_id, state, epoch, holder_instance, claimed_at IS NOT NULL AS claimed,
         restart_reason, ended_reason, (extract(epoch FROM restart_deadline) * 1000000)::bigint::text AS deadline_us,
         restart_deadline < now() AS deadline_passed, to_jsonb(a)::text AS row
       FROM allocations a ORDER BY id`,
    );

    // At most one live allocation per gateway and per organization.
    const live = allocations.filter((a) => a.state !== 'ended');
    expect(new Set(live.map((a) => a.gateway_id)).size, 'two live allocations on one gateway').toBe(live.length);
    expect(new Set(live.map((a) => a.organization_id)).size, 'two live allocations for one organization').toBe(live.length);

    for (const a of allocations) {
      // Ended is terminal: the row never changes again.
      const endedRow = this.seen.endedRows.get(a.id);
      if (endedRow !== undefined) expect(a.row, `ended allocation ${a.id} changed`).toBe(endedRow);
      else if (a.state === 'ended') this.seen.endedRows.set(a.id, a.row);
      // Epochs only grow.
      expect(a.epoch, `epoch of ${a.id} went down`).toBeGreaterThanOrEqual(this.seen.epochs.get(a.id) ?? 1);
      this.seen.epochs.set(a.id, a.epoch);
      // Restart deadlines the model could not know are adopted once, then must stay (a repeated restart keeps the first).
      const modelled = m.byId(a.id);
      if (modelled?.deadline && a.deadline_us !== null) {
        if (modelled.deadline.us === 'pending') modelled.deadline.us = a.deadline_us;
        else expect(a.deadline_us, `restart deadline of ${a.id} moved`).toBe(modelled.deadline.us);
      }
    }

    const gatewayIndex = (id: string) => m.gateways.findIndex((g) => g.id === id);
    const organizationIndex = (id: string) => m.organizations.indexOf(id);
    expect(
      allocations.map((a) => ({
        id: a.id,
        gateway: gatewayIndex(a.gateway_id),
        organization: organizationIndex(a.organization_id),
        state: a.state,
        epoch: a.epoch,
        holder: a.holder_instance,
        claimed: a.claimed,
        restartReason: a.restart_reason,
        endedReason: a.ended_reason,
        deadline: a.deadline_us === null ? null : { passed: a.deadline_passed },
      })),
      'allocations',
    ).toEqual(
      [...m.allocations]
        .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
        .map((a) => ({
          id: a.id,
          gateway: a.gateway,
          organization: a.organization,
          state: a.state,
          epoch: a.epoch,
          holder: a.holder,
          claimed: a.claimed,
          restartReason: a.restartReason,
          endedReason: a.endedReason,
          deadline: a.deadline && { passed: a.deadline.passed },
        })),
    );

    // Every transition has its audit row: per allocation in order, and counted per kind.
    const { rows: events } = await db.query<AuditEvent & { allocation_id: string }>(
      'SELECT allocation_id, kind, reason, epoch FROM allocation_events ORDER BY id',
    );
    const byAllocation = new Map<string, AuditEvent[]>();
    for (const { allocation_id, ...e } of events) byAllocation.set(allocation_id, [...(byAllocation.get(allocation_id) ?? []), e]);
    expect(Object.fromEntries(byAllocation), 'audit rows').toEqual(Object.fromEntries(m.allocations.map((a) => [a.id, a.events])));
    const { rows: counts } = await db.query<{ kind: string; n: number }>(
      'SELECT kind, count(*)::int AS n FROM allocation_events GROUP BY kind ORDER BY kind',
    );
    expect(counts, 'audit rows per kind').toEqual(
      [...m.transitions.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([kind, n]) => ({ kind, n })),
    );

    // Gateways: in the pool or not (and since when), the current instance, the lease.
    const { rows: gateways } = await db.query<{ id: string; ready_us: string | null; instance_id: string | null; lease: string }>(
      `SELECT id, (extract(epoch FROM ready_at) * 1000000)::bigint::text AS ready_us, instance_id,
         CASE WHEN lease_expires_at IS NULL THEN 'none' WHEN lease_expires_at > now() THEN 'valid'
              WHEN lease_expires_at >= now() - make_interval(secs => $1) THEN 'lapsed' ELSE 'past_grace' END AS lease
       FROM gateways ORDER BY id`,
      [LEASE_GRACE_SECONDS],
    );
    for (const row of gateways) {
      const g = m.gateway(gatewayIndex(row.id));
      if (g.readyUs === 'pending' && row.ready_us !== null) {
        expect(BigInt(row.ready_us), 'ready_at went back in time').toBeGreaterThanOrEqual(this.seen.maxReadyUs);
        g.readyUs = row.ready_us;
      }
      if (g.readyUs !== null && BigInt(g.readyUs) > this.seen.maxReadyUs) this.seen.maxReadyUs = BigInt(g.readyUs);
    }
    expect(
      gateways.map((g) => ({ id: g.id, readyUs: g.ready_us, instance: g.instance_id, lease: g.lease })),
      'gateways',
    ).toEqual(m.gateways.map((g) => ({ id: g.id, readyUs: g.readyUs, instance: g.instance, lease: g.lease })));

    const { rows: controlPlane } = await db.query<{ outage: boolean; held: boolean }>(
      'SELECT now() - last_reaped_at > make_interval(secs => $1) AS outage, expiry_held_until > now() AS held FROM control_plane',
      [OUTAGE_SECONDS],
    );
    expect(controlPlane, 'control plane').toEqual([m.controlPlane]);
  }
}

/** How often each kind of answer came up (FC_STATS=1 prints it): to see that the interesting cases are reached. */
const coverage = new Map<string, number>();
const count = (label: string) => coverage.set(label, (coverage.get(label) ?? 0) + 1);
afterAll(() => {
  if (!process.env.FC_STATS) return;
  console.log(
    [...coverage.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, n]) => `${String(n).padStart(6)} ${k}`)
      .join('\n'),
  );
});

/** A trace line without its ids, processes and numbers: the kind of answer. */
const answerShape = (line: string) =>
  line
    .replace(/g\d+p\d+ /g, '')
    .replace(/\b[0-9a-f]{8}\b/g, 'ID')
    .replace(/epoch (\d+|null)/g, 'epoch N')
    .replace(/at \d+/g, 'at N');

/** The `k`-th of `candidates` (cyclically), undefined when there are none. */
const among = (candidates: number[], k: number): number | undefined => candidates[k % Math.max(1, candidates.length)];

/** A process told it no longer serves what it held. */
function forget(process: Process) {
  process.allocation = null;
  process.epoch = null;
}

it(
  'random interleavings across 3 gateways and 4 organizations match the model, and the invariants hold',
  async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: MAX_COMMANDS, size: 'max' }), async (commands) => {
        const run = new Run();
        try {
          await run.setUp();
          for (const c of commands) await run.step(c);
          for (const [kind, n] of run.model.transitions)
            coverage.set(`audit rows: ${kind}`, (coverage.get(`audit rows: ${kind}`) ?? 0) + n);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          throw new Error(`${message}\n--- trace (command → answer) ---\n${run.trace.join('\n')}`, { cause: error });
        }
      }),
      {
        numRuns: NUM_RUNS,
        // Replay a failure with the seed and path fast-check printed.
        ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
        ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
      },
    );
  },
  // Generous: the machines here are shared and noisy.
  60_000 + NUM_RUNS * 2_000,
);
