import { createHash } from 'node:crypto';
import { ganymedeContract as contract, type GatewayProtocol } from '@ganymede/contracts';
import type { RouterImplementation } from '@ts-rest/fastify';
import type { FastifyBaseLogger } from 'fastify';
import type { Tokens } from './auth.js';
import { authorizer, fail, refusal, type Route } from './authorize.js';
import type { Database } from './db/database.js';
import { failpoint } from '@ganymede/failpoints';
import type { Metrics } from './metrics.js';
import { notifyAllocated, notifyPlatformGateway } from './notify.js';
import type { OpsRoute } from './ops-routes.js';
import { addGateway, poolStatus } from './sql/gateways.js';
import { type LivenessPolicy, renewLease } from './sql/liveness.js';
import { type Allocation, eventsOf, type LiveAllocation, getAllocation, liveAllocationOfGateway, poolEvents } from './sql/rows.js';
import { pullSnapshot, pushSnapshot } from './sql/snapshots.js';
import * as transitions from './sql/transitions.js';
import type { FencedResult } from './sql/transitions.js';
import type { TransitionLog } from './transition-log.js';

export interface RouteDeps {
  db: Database;
  tokens: Tokens;
  log: FastifyBaseLogger;
  restartGraceSeconds: number;
  notifyTimeoutMs: number;
  liveness: LivenessPolicy;
  /**
   * lease-margins.ts: the renew deadline, sent with every lease (the gateway stops serving that long after its last
   * renewal), and the shortest restart grace that ends a restart only after the old process stopped serving.
   */
  margins: { renewDeadlineMs: number; minRestartGraceSeconds: number };
  /** `/gateway/data/push`: the largest state it stores (bytes of its JSON text), and how many revisions are kept. */
  snapshots: { maxBytes: number; retention: number };
  metrics: Metrics;
  transitions: TransitionLog;
}

/** The contract's view of a live allocation a gateway holds or must claim. */
const served = (a: Allocation | null) =>
  a && a.state !== 'ended' ? { allocation_id: a.allocation_id, organization_id: a.organization_id, state: a.state, epoch: a.epoch } : null;

/** Added to a notice token's life: clocks of Ganymede and its gateways may disagree by this much. */
const NOTICE_CLOCK_MARGIN_SECONDS = 2;

/** Gateways tried per /gateway/start before answering 503 (each unreachable one is taken out of the pool). */
const START_ATTEMPTS = 8;

export function ganymedeRoutes(deps: RouteDeps): Omit<RouterImplementation<typeof contract>, OpsRoute> {
  const { db, tokens, log, metrics } = deps;
  const logTransition = deps.transitions.record;
  const authorize = authorizer(tokens, log);
  /** A notice is good while /gateway/start waits for its answer, plus a margin for the gateway's clock. */
  const noticeTtlSeconds = deps.notifyTimeoutMs / 1000 + NOTICE_CLOCK_MARGIN_SECONDS;

  /** Shared by /stop, /restart and /restart/withdraw: the organization token names the allocation; a body that names another is refused. */
  async function allocationOf(route: Route, authorization: string, bodyAllocationId: string | undefined) {
    const claims = await authorize(route, authorization, 'organization');
    if (bodyAllocationId && bodyAllocationId !== claims.sub) {
      throw refusal(route, 403, fail('forbidden', 'this token is bound to another allocation'));
    }
    return claims.sub;
  }

  /**
   * Shared by /data/push and /data/pull: the organization token, which must be bound to the organization (and the
   * gateway) the body names. The body's ids are the platform's; the token is what decides, so a body naming another
   * organization or gateway is refused, never read as a request for that one.
   */
  async function organizationOf(route: Route, authorization: string, body: { organization_id: string; gateway_id?: string }) {
    const claims = await authorize(route, authorization, 'organization');
    if (body.organization_id !== claims.organization_id) {
      throw refusal(route, 403, fail('forbidden', 'this token is bound to another organization'));
    }
    if (body.gateway_id !== undefined && body.gateway_id !== claims.gateway_id) {
      throw refusal(route, 403, fail('forbidden', 'this token is bound to another gateway'));
    }
    return claims;
  }

  function fencedReply(result: Exclude<FencedResult, { kind: 'ok' }>, epoch: number | undefined) {
    switch (result.kind) {
      case 'not_found':
        return { status: 404 as const, body: fail('allocation_not_found', 'no such allocation') };
      case 'ended':
        // The organization token's authority ended with its allocation: refused, like any token gone stale.
        return { status: 403 as const, body: fail('allocation_ended', 'the allocation has ended: its token no longer acts on it') };
      case 'stale_epoch':
        return {
          status: 409 as const,
          body: fail('stale_epoch', `epoch ${epoch} is stale: the allocation is at epoch ${result.current}`),
        };
    }
  }

  /** /gateway/config's answer for the gateway's live allocation, with a fresh organization token. */
  async function configOf(a: LiveAllocation) {
    const organization_token = await tokens.sign({
      typ: 'organization',
      sub: a.allocation_id,
      gateway_id: a.gateway_id,
      organization_id: a.organization_id,
    });
    return {
      gateway_id: a.gateway_id,
      organization_id: a.organization_id,
      organization_token,
      allocation_id: a.allocation_id,
      state: a.state,
      epoch: a.epoch,
      restart_deadline: a.restart_deadline,
      // What the platform's gateway reads: Ganymede keeps no directory of organizations to fill them from.
      organization_name: '',
      projects: [],
      project_names: [],
      members: [],
    };
  }

  /**
   * Shared by /ready and /reclaim, once the claim's statement ran: a crash loop ends the allocation (409); otherwise
   * the claim is logged (and timed, when it reclaimed) and answered with the lease and the notice key.
   */
  async function claimedAnswer(
    result: Extract<transitions.ReadyResult, { kind: 'ok' | 'crash_loop' }> | { kind: 'ended' },
    gatewayId: string,
    protocol: GatewayProtocol,
    startedAt: number,
  ) {
    if (result.kind === 'ended') return { status: 409 as const, body: fail('allocation_ended', 'the allocation has ended') };
    if (result.kind === 'crash_loop') {
      logTransition('crash_loop', result.allocation, 'crash_loop');
      return { status: 409 as const, body: fail('allocation_ended', 'the gateway kept dying: the allocation ended (crash_loop)') };
    }
    const a = result.allocation;
    if (a && result.reclaimed) deps.transitions.reclaimed(a, result.reclaim, startedAt);
    log.info(
      {
        gateway_id: gatewayId,
        allocation_id: a?.allocation_id ?? null,
        organization_id: a?.organization_id ?? null,
        epoch: a?.epoch ?? null,
        protocol,
      },
      'gateway ready',
    );
    return {
      status: 200 as const,
      body: {
        allocation: a,
        reclaimed: result.reclaimed,
        lease: { ...result.lease, renew_deadline_ms: deps.margins.renewDeadlineMs },
        notice_key: tokens.noticeKey(),
      },
    };
  }

  return {
    start: async ({ headers, body }) => {
      const user = await authorize(contract.start, headers.authorization, 'user');
      if (!user.organizations.includes(body.organization_id)) {
        return { status: 403, body: fail('forbidden', 'the user is not a member of that organization') };
      }
      for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        failpoint('ganymede:before:allocate');
        const result = await transitions.allocate(db, body.organization_id);
        failpoint('ganymede:after:allocate');
        if (result.kind === 'none') break;
        let allocation = result.allocation;
        if (result.kind === 'created') {
          logTransition('allocated', allocation);
          const failure =
            result.protocol === 'v1'
              ? await notifyPlatformGateway(allocation.gateway_url, deps.notifyTimeoutMs)
              : await notifyAllocated(
                  allocation.gateway_url,
                  allocation.allocation_id,
                  tokens.signNotice(allocation.gateway_id, allocation.allocation_id, noticeTtlSeconds),
                  deps.notifyTimeoutMs,
                );
          if (failure) {
            metrics.noticeFailures.inc({ why: failure });
            if (await transitions.rollBack(db, allocation.allocation_id)) {
              logTransition('rolled_back', allocation, 'gateway_unreachable');
              continue;
            }
          }
          allocation = (await getAllocation(db, allocation.allocation_id)) ?? allocation;
          if (allocation.state === 'ended') continue;
        }
        const { allocation_id, gateway_id, gateway_url, organization_id, epoch } = allocation;
        const state = allocation.state === 'restarting' ? 'restarting' : 'active';
        return {
          status: result.kind === 'created' ? 201 : 200,
          body: { allocation_id, gateway_id, gateway_url, organization_id, state, epoch },
        };
      }
      return { status: 503, body: fail('no_gateway_available', 'no ready gateway is free') };
    },

    config: async ({ headers }) => {
      const { sub: gatewayId } = await authorize(contract.config, headers.authorization, 'gateway');
      const a = await liveAllocationOfGateway(db, gatewayId);
      // A token of a gateway that is not (or no longer) registered is refused, as /gateway/ready does.
      if (a === undefined) return { status: 403, body: fail('forbidden', 'no such gateway is registered') };
      if (!a) return { status: 404, body: fail('no_allocation', 'this gateway holds no live allocation') };
      return { status: 200, body: await configOf(a) };
    },

    ready: async ({ headers, body }) => {
      const startedAt = performance.now();
      const { sub: gatewayId } = await authorize(contract.ready, headers.authorization, 'gateway');
      // Only the platform's gateway (v1) names itself; the token decides, so another gateway's id is refused.
      const protocol = 'gateway_id' in body ? 'v1' : 'v2';
      if ('gateway_id' in body && body.gateway_id !== gatewayId) {
        return { status: 403, body: fail('forbidden', 'gateway_id names another gateway than the token') };
      }
      const instanceId = 'instance_id' in body ? (body.instance_id ?? null) : null;
      failpoint('ganymede:before:ready');
      const result = await transitions.ready(db, gatewayId, body.allocation_id, instanceId, deps.liveness, protocol);
      failpoint('ganymede:after:ready');
      if (result.kind === 'not_found') return { status: 404, body: fail('allocation_not_found', 'no such allocation') };
      if (result.kind === 'forbidden') return { status: 403, body: fail('forbidden', 'that allocation belongs to another gateway') };
      const claimed = await claimedAnswer(result, gatewayId, protocol, startedAt);
      if (claimed.status !== 200) return claimed;
      const { allocation: a, ...rest } = claimed.body;
      return { status: 200, body: { gateway_id: gatewayId, allocation: served(a), ...rest } };
    },

    reclaim: async ({ headers, body }) => {
      const startedAt = performance.now();
      const { sub: gatewayId } = await authorize(contract.reclaim, headers.authorization, 'gateway');
      failpoint('ganymede:before:ready');
      const result = await transitions.reclaim(db, gatewayId, body.instance_id, deps.liveness);
      failpoint('ganymede:after:ready');
      if (result.kind === 'forbidden') return { status: 403, body: fail('forbidden', 'no such gateway is registered') };
      // Nothing to claim, or it ended between finding and locking it: the process comes up idle either way.
      if (result.kind === 'not_found' || result.kind === 'ended') {
        return { status: 404, body: fail('no_allocation', 'this gateway holds no live allocation') };
      }
      const claimed = await claimedAnswer(result, gatewayId, 'v2', startedAt);
      if (claimed.status !== 200) return claimed;
      const { allocation: a, ...rest } = claimed.body;
      // A claim always answers the allocation it claimed, active (restarting no more) at the epoch it claimed.
      return { status: 200, body: { ...(await configOf({ ...a!, state: 'active' })), ...rest } };
    },

    lease: async ({ headers, body }) => {
      const { sub: gatewayId } = await authorize(contract.lease, headers.authorization, 'gateway');
      const result = await renewLease(db, gatewayId, body.instance_id, body.allocation_id, body.epoch ?? null, deps.liveness.leaseSeconds);
      metrics.leaseRenewals.inc({ outcome: result.kind === 'ended' ? 'allocation_ended' : result.kind });
      switch (result.kind) {
        case 'ok':
          return {
            status: 200,
            body: { lease: { ...result.lease, renew_deadline_ms: deps.margins.renewDeadlineMs }, allocation: served(result.allocation) },
          };
        case 'forbidden':
          return { status: 403, body: fail('forbidden', 'not this gateway, or not its allocation') };
        case 'superseded':
          return { status: 409, body: fail('superseded', 'another process of this gateway said ready after this one') };
        case 'ended':
          return { status: 409, body: fail('allocation_ended', 'the allocation has ended') };
        case 'stale_epoch':
          return { status: 409, body: fail('stale_epoch', `epoch ${body.epoch} is stale: the allocation is at epoch ${result.current}`) };
      }
    },

    restart: async ({ headers, body }) => {
      const allocationId = await allocationOf(contract.restart, headers.authorization, body.allocation_id);
      // Never longer than configured, and never so short that it could end before the
      // process that asked (serving on through a hot restart) stops by its renew deadline.
      const asked = Math.min(body.grace_seconds ?? deps.restartGraceSeconds, deps.restartGraceSeconds);
      const grace = Math.max(asked, deps.margins.minRestartGraceSeconds);
      failpoint('ganymede:before:restart');
      const result = await transitions.requestRestart(db, allocationId, body.epoch ?? null, body.reason, grace);
      failpoint('ganymede:after:restart');
      if (result.kind !== 'ok') return fencedReply(result, body.epoch);
      const a = result.allocation;
      logTransition('restart_requested', a, body.reason);
      return {
        status: 200,
        body: { allocation_id: a.allocation_id, state: 'restarting', epoch: a.epoch, restart_deadline: a.restart_deadline! },
      };
    },

    withdrawRestart: async ({ headers, body }) => {
      const allocationId = await allocationOf(contract.withdrawRestart, headers.authorization, body.allocation_id);
      failpoint('ganymede:before:withdraw');
      const result = await transitions.withdrawRestart(db, allocationId, body.epoch, deps.liveness.leaseSeconds);
      failpoint('ganymede:after:withdraw');
      if (result.kind !== 'ok') return fencedReply(result, body.epoch);
      const a = result.allocation;
      logTransition('restart_withdrawn', a);
      return { status: 200, body: { allocation_id: a.allocation_id, state: 'active', epoch: a.epoch } };
    },

    stop: async ({ headers, body }) => {
      const allocationId = await allocationOf(contract.stop, headers.authorization, body.allocation_id);
      failpoint('ganymede:before:stop');
      const result = await transitions.stop(db, allocationId, body.epoch ?? null, body.reason);
      failpoint('ganymede:after:stop');
      if (result.kind !== 'ok') return fencedReply(result, body.epoch);
      const a = result.allocation;
      logTransition('stopped', a, body.reason);
      return {
        status: 200,
        body: { allocation_id: a.allocation_id, state: 'ended', epoch: a.epoch, ended_at: a.ended_at!, ended_reason: a.ended_reason! },
      };
    },

    dataPush: async ({ headers, body }) => {
      const claims = await organizationOf(contract.dataPush, headers.authorization, body);
      // Size and checksum are of the text stored and answered back: the client can check what it pulls.
      const dataJson = JSON.stringify(body.data);
      const size = Buffer.byteLength(dataJson);
      // The body limit already held the request to the same number; re-encoding can still grow it (1e9 → 1000000000).
      if (size > deps.snapshots.maxBytes) {
        return { status: 413, body: fail('payload_too_large', `the data is larger than ${deps.snapshots.maxBytes} bytes`) };
      }
      const checksum = `sha256:${createHash('sha256').update(dataJson).digest('hex')}`;
      failpoint('ganymede:before:push');
      const result = await pushSnapshot(db, {
        allocationId: claims.sub,
        organizationId: claims.organization_id,
        gatewayId: claims.gateway_id,
        epoch: body.epoch ?? null,
        baseRevision: body.base_revision ?? null,
        timestamp: body.timestamp,
        dataJson,
        size,
        checksum,
        retention: deps.snapshots.retention,
      });
      failpoint('ganymede:after:push');
      // Never the data, nor the token.
      const line = {
        organization_id: claims.organization_id,
        allocation_id: claims.sub,
        gateway_id: claims.gateway_id,
        epoch: body.epoch ?? null,
        size,
      };
      if (result.kind !== 'ok') log.info({ ...line, refused: result.kind }, 'snapshot refused');
      switch (result.kind) {
        case 'ok':
          log.info({ ...line, revision: result.snapshot.revision }, 'snapshot stored');
          return { status: 200, body: result.snapshot };
        case 'not_found':
          return { status: 404, body: fail('allocation_not_found', 'no such allocation') };
        case 'forbidden':
          return { status: 403, body: fail('forbidden', 'the allocation is not of this organization and gateway') };
        case 'ended':
          return { status: 403, body: fail('allocation_ended', 'the allocation has ended: its token no longer acts on it') };
        case 'stale_epoch':
          return {
            status: 409,
            body: fail('stale_epoch', `epoch ${body.epoch} is stale: the allocation is at epoch ${result.current}`),
          };
        case 'revision_conflict':
          return {
            status: 409,
            body: fail(
              'revision_conflict',
              result.current === null
                ? `base_revision ${body.base_revision} is not the latest: another push was stored first`
                : `base_revision ${body.base_revision} is not the latest revision ${result.current}`,
            ),
          };
      }
    },

    dataPull: async ({ headers, body }) => {
      const claims = await organizationOf(contract.dataPull, headers.authorization, body);
      // Only a live allocation's token reads the organization's state (whichever allocation pushed it).
      const a = await getAllocation(db, claims.sub);
      if (!a) return { status: 404, body: fail('allocation_not_found', 'no such allocation') };
      if (a.organization_id !== claims.organization_id || a.gateway_id !== claims.gateway_id) {
        return { status: 403, body: fail('forbidden', 'the allocation is not of this organization and gateway') };
      }
      if (a.state === 'ended') {
        return { status: 403, body: fail('allocation_ended', 'the allocation has ended: its token no longer acts on it') };
      }
      const snapshot = await pullSnapshot(db, claims.organization_id);
      if (!snapshot) return { status: 404, body: fail('not_found', 'nothing was ever pushed for this organization') };
      return { status: 200, body: snapshot };
    },

    addGateway: async ({ headers, body }) => {
      await authorize(contract.addGateway, headers.authorization, 'admin');
      const gateway_id = await addGateway(db, body.url);
      log.info({ gateway_id, url: body.url }, 'gateway registered');
      return { status: 201, body: { gateway_id, token: await tokens.sign({ typ: 'gateway', sub: gateway_id }) } };
    },

    status: async ({ headers }) => {
      await authorize(contract.status, headers.authorization, 'admin');
      const leaseSeconds = deps.liveness.leaseSeconds;
      return { status: 200, body: { gateways: await poolStatus(db, leaseSeconds), lease_seconds: leaseSeconds } };
    },

    events: async ({ headers, query }) => {
      await authorize(contract.events, headers.authorization, 'admin');
      const events = await poolEvents(db, query.after, query.limit);
      return { status: 200, body: { events, last_id: events.at(-1)?.id ?? query.after } };
    },

    allocation: async ({ headers, params }) => {
      await authorize(contract.allocation, headers.authorization, 'admin');
      const a = await getAllocation(db, params.allocation_id);
      if (!a) return { status: 404, body: fail('allocation_not_found', 'no such allocation') };
      const events = await eventsOf(db, a.allocation_id);
      return {
        status: 200,
        body: {
          allocation_id: a.allocation_id,
          gateway_id: a.gateway_id,
          organization_id: a.organization_id,
          state: a.state,
          epoch: a.epoch,
          ended_at: a.ended_at,
          ended_reason: a.ended_reason,
          events,
        },
      };
    },
  };
}
