/**
 * Keeps the organization's state safe across processes (workload.ts): restores it when this process starts serving
 * an allocation, pushes it to Ganymede when it changed (autosave), before a stop or a restart, and hands it to a
 * successor. Every push carries this process's epoch and the revision it was based on: Ganymede refuses a stale
 * one, so a process that lost its allocation can never overwrite its successor's state.
 *
 * The snapshot travels as base64 in the platform's `data` field. A pulled `data` that is not a string (a snapshot
 * the platform's own gateways pushed) cannot be restored: the organization starts empty, with a warning.
 *
 * A Ganymede older than snapshots has no data routes (route-missing.ts): then the state lives in this process's
 * memory only, said once in the log (`state_in_memory_only`), and nothing is pushed again.
 */
import type { PushOutcome } from './metrics.js';
import { failpoint } from '@ganymede/failpoints';
import type { FastifyBaseLogger } from 'fastify';
import type { GatewayConfig } from './config.js';
import { GanymedeAnswerError } from './errors.js';
import type { GanymedeClient } from './ganymede-client.js';
import type { HeldAllocation } from './gateway.js';
import { ROUTE_MISSING, unlessRouteMissing } from './route-missing.js';
import { Serial, within } from './serial.js';
import type { OrganizationState, StateEnd, Workload } from './workload.js';

interface Open {
  allocationId: string;
  organizationId: string;
  value: OrganizationState;
  /** Changes so far, and how many of them the last successful push held. */
  changes: number;
  pushedChanges: number;
  /** The organization's latest revision this process knows of (0: none yet): the next push's base. */
  revision: number;
  servingSaid?: boolean;
}

export class StateKeeper {
  private open: Open | null = null;
  private readonly pushes = new Serial();
  private autosave: NodeJS.Timeout | undefined;
  /** Ganymede has no data routes: nothing to pull or push, ever (for this process). */
  private inMemoryOnly = false;

  constructor(
    private readonly deps: {
      client: GanymedeClient;
      config: Pick<GatewayConfig, 'gatewayId' | 'autosaveMs' | 'requestTimeoutMs'>;
      log: FastifyBaseLogger;
      workload: Workload;
      /** The allocation this process holds now (its epoch may move on: a claim after a failed handover). */
      held: () => HeldAllocation | null;
      /** False while the process may not take writes (its lease lapsed, or it drains). */
      writable: () => boolean;
      /** Told the outcome of every push (the metrics count them). */
      pushed: (outcome: PushOutcome) => void;
    },
  ) {}

  /** The organization's state while open (the gateway decides when traffic may reach it). */
  state(organizationId: string): OrganizationState | null {
    return this.open?.organizationId === organizationId ? this.open.value : null;
  }

  /**
   * A fresh state for the allocation now held, restored from Ganymede's latest snapshot (nothing to restore: empty).
   * `signal` aborts the pull (a shutdown during boot). Throws when Ganymede cannot answer: the caller retries.
   */
  async openFor(
    held: HeldAllocation,
    pull: (body: { organization_id: string; gateway_id: string }) => ReturnType<GanymedeClient['dataPull']>,
  ) {
    if (this.open?.allocationId === held.allocationId) return;
    this.close('superseded');
    const value = this.create(held.organizationId);
    // The pull's own 404 is `not_found` (nothing pushed yet): only a body off the contract says the route is missing.
    const answer = this.inMemoryOnly
      ? ROUTE_MISSING
      : await unlessRouteMissing(pull({ organization_id: held.organizationId, gateway_id: this.deps.config.gatewayId }), false);
    let revision = 0;
    if (answer.status === ROUTE_MISSING.status) {
      this.keepInMemoryOnly('POST /gateway/data/pull');
    } else if (answer.status === 200) {
      revision = answer.body.revision;
      if (typeof answer.body.data === 'string') value.value.restore(Buffer.from(answer.body.data, 'base64'));
      else this.deps.log.warn({ event: 'state_unreadable', revision }, 'the latest snapshot is not one this gateway wrote: starting empty');
    } else if (answer.status !== 404) {
      throw new GanymedeAnswerError('POST /gateway/data/pull', answer);
    }
    this.open = { ...value, allocationId: held.allocationId, revision };
    this.deps.log.info(
      { event: 'state_restored', revision, organization_id: held.organizationId },
      `state restored (revision ${revision})`,
    );
    this.scheduleAutosave();
  }

  /** A predecessor's final snapshot, handed over directly in a hot restart: it replaces what was pulled. */
  adopt(held: HeldAllocation, bytes: Uint8Array): void {
    if (this.open?.allocationId !== held.allocationId) return;
    const revision = this.open.revision;
    const value = this.create(held.organizationId);
    value.value.restore(bytes);
    this.open = { ...value, allocationId: held.allocationId, revision, changes: 1 };
    this.deps.log.info({ event: 'state_adopted', bytes: bytes.length }, "the predecessor's final state adopted");
  }

  /** The state as bytes, to hand to a successor; null when no organization is served. */
  snapshot(): Uint8Array | null {
    return this.open?.value.snapshot() ?? null;
  }

  /**
   * Pushes the state if it changed since the last push, within `timeLeftMs`. Never throws: a failed push is logged
   * (the next one carries the change; a stop that cannot push leaves the last pushed snapshot).
   */
  push(why: string, timeLeftMs = this.deps.config.requestTimeoutMs): Promise<void> {
    return this.pushes.run(async () => {
      const open = this.open;
      const held = this.deps.held();
      if (this.inMemoryOnly || !open || !held || held.allocationId !== open.allocationId || open.changes === open.pushedChanges) return;
      const timeoutMs = Math.min(this.deps.config.requestTimeoutMs, timeLeftMs);
      if (timeoutMs < 10) return this.deps.log.error({ event: 'push_skipped', why }, 'no time left to push the state');
      const changes = open.changes;
      const data = Buffer.from(open.value.snapshot()).toString('base64');
      const body = {
        organization_id: open.organizationId,
        gateway_id: this.deps.config.gatewayId,
        timestamp: new Date().toISOString(),
        data,
        epoch: held.epoch,
        base_revision: open.revision,
      };
      failpoint('gateway:before:push');
      try {
        // The push's own 404 is `allocation_not_found`: `not_found` (or a body off the contract) is the route missing.
        const answer = await unlessRouteMissing(this.deps.client.dataPush(held.organizationToken, body, { timeoutMs }));
        if (answer.status === ROUTE_MISSING.status) return this.keepInMemoryOnly('POST /gateway/data/push');
        if (answer.status === 200) {
          open.revision = answer.body.revision;
          open.pushedChanges = changes;
          this.deps.pushed('stored');
          this.deps.log.info(
            { event: 'state_pushed', why, revision: answer.body.revision, size: answer.body.size },
            `state pushed (${why})`,
          );
          return;
        }
        // A stale epoch: another process holds the allocation now (the lease renewal makes this one stand down).
        this.deps.pushed('refused');
        this.deps.log.warn(
          { event: 'push_refused', why, status: answer.status, error: answer.body.error },
          `push refused: ${answer.body.error}`,
        );
      } catch (error) {
        this.deps.pushed('failed');
        this.deps.log.error({ event: 'push_failed', why, err: error }, 'could not push the state');
      }
    });
  }

  /** Ganymede has no data routes: say so once, and stop calling them. */
  private keepInMemoryOnly(route: string): void {
    if (this.inMemoryOnly) return;
    this.inMemoryOnly = true;
    this.deps.log.warn(
      { event: 'state_in_memory_only', route },
      `Ganymede has no ${route} (an older Ganymede): the organization's state is kept in this process's memory only`,
    );
  }

  /** Waits up to `ms` for pushes in flight. */
  settled(ms: number): Promise<boolean> {
    return within(this.pushes.idle(), ms);
  }

  /** Traffic may reach the state now: tells the workload, once per state (again after a pause). */
  serving(): void {
    const open = this.open;
    if (!open || open.servingSaid) return;
    open.servingSaid = true;
    open.value.serving?.();
  }

  /** The process may not serve for now (its lease lapsed): the workload closes its sessions; the state is kept. */
  pause(): void {
    const open = this.open;
    if (!open?.servingSaid) return;
    open.servingSaid = false;
    open.value.paused?.();
  }

  /** The organization is no longer served here: the workload is told why (it closes its sessions); the state is dropped. */
  close(why: StateEnd): void {
    clearInterval(this.autosave);
    const open = this.open;
    this.open = null;
    open?.value[why]?.();
  }

  /** Stops autosaving, keeping the state (a handover: the successor persists it). */
  freeze(): void {
    clearInterval(this.autosave);
  }

  private scheduleAutosave(): void {
    clearInterval(this.autosave);
    this.autosave = setInterval(() => void this.push('autosave'), this.deps.config.autosaveMs);
    this.autosave.unref();
  }

  private create(organizationId: string): Pick<Open, 'organizationId' | 'value' | 'changes' | 'pushedChanges'> {
    const entry = { organizationId, changes: 0, pushedChanges: 0 } as Pick<Open, 'organizationId' | 'value' | 'changes' | 'pushedChanges'>;
    entry.value = this.deps.workload.createState({
      organizationId,
      log: this.deps.log,
      changed: () => {
        if (this.open?.value === entry.value) this.open.changes++;
      },
      writable: () => this.open?.value === entry.value && this.deps.writable(),
    });
    return entry;
  }
}
