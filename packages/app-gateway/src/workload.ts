/**
 * What a gateway serves for its organization: the workload API for embedding one (`@ganymede/app-gateway`).
 *
 * The gateway owns the lifecycle and the state's safety: it creates one `OrganizationState` per organization it
 * starts serving, restores it from the latest snapshot (Ganymede's, or the predecessor's in a hot restart) before
 * the first request, pushes `snapshot()` to Ganymede when `changed()` was called (autosave), before a stop, and
 * hands it to its successor in a hot restart. Every push is fenced by the process's epoch: a stale process can
 * never overwrite its successor's state.
 *
 * The workload registers its routes once, under `/orgs/:organization_id/…`, and finds the organization's state with
 * `host.state(organizationId)` (null: this process does not serve that organization now: answer 404 or 503).
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

/** One organization's state inside a gateway process. */
export interface OrganizationState {
  /** The whole state as bytes: what is pushed to Ganymede and handed to a successor. */
  snapshot(): Uint8Array;
  /** Loads a snapshot (called before the first request is served). */
  restore(bytes: Uint8Array): void;
  /** Lifecycle, each optional. Traffic may reach the state now (restored, and this process serves). */
  serving?(): void;
  /** A hot restart's successor took over: close sessions (clients reconnect to the successor); a snapshot follows. */
  draining?(): void;
  /**
   * This process may not serve for now (it could not renew its lease in time): close sessions, take no writes.
   * `serving()` follows if Ganymede renews the lease while the allocation is still this process's.
   */
  paused?(): void;
  /** Another process holds the allocation now: stop serving; nothing this process holds is saved any more. */
  superseded?(): void;
  /** The process stops, or the allocation ended (the state was pushed first where it could be). */
  stopped?(): void;
}

export type StateEnd = 'draining' | 'superseded' | 'stopped';

export interface StateContext {
  organizationId: string;
  log: FastifyBaseLogger;
  /** Call after every change: the next autosave pushes only if something changed. */
  changed(): void;
  /** False while this process may not change the state (paused, draining, ended): refuse the write. */
  writable(): boolean;
}

/** What the gateway offers a workload's routes. */
export interface WorkloadHost {
  /** The organization's state while this process serves it (also while handing over); null otherwise. */
  state(organizationId: string): OrganizationState | null;
  /** True while new sessions may open (false once draining: a client should reconnect and reach the successor). */
  acceptsSessions(): boolean;
}

export interface Workload {
  /** Registers the workload's HTTP routes and WebSocket handlers (`@fastify/websocket` is registered). */
  routes(app: FastifyInstance, host: WorkloadHost): void;
  /** A fresh, empty state for an organization this process starts serving. */
  createState(context: StateContext): OrganizationState;
}
