/**
 * One gateway process's lifecycle.
 *
 * start():  listen first (so Ganymede can reach us), then settle with Ganymede, retrying transient failures
 *           (under a supervisor, settle only: the supervisor says when to `listen()` on its socket):
 *           /gateway/reclaim 200 → serving at the epoch it answers (config and ready in one call);
 *           /gateway/reclaim 404 or 409 (nothing held, or the claim ended it) → /gateway/ready {allocation_id: null} → idle.
 *           An older Ganymede without /gateway/reclaim: /gateway/config 200 → /gateway/ready {allocation_id} → serving
 *           at the epoch /ready answers; /gateway/config 404 (or the allocation is gone) → idle as above.
 * allocated(): Ganymede's notice on an idle gateway; its token checked against the notice key /gateway/ready gave
 *           (refused 401 otherwise, without a call to Ganymede), then verified with /gateway/config and claimed
 *           with /gateway/ready.
 * Hot restart, under a supervisor (supervisor.ts): prepareHandover() asks Ganymede to keep the allocation
 *           (/gateway/restart) while serving on; then drain() once the successor took over, or withdrawHandover()
 *           if it failed.
 * shutdown(): stop taking traffic; if serving, /gateway/restart (restart reasons) or /gateway/stop (stop reasons);
 *           resolves with the exit code (75 restart, 0 stop) within the shutdown budget whatever Ganymede does.
 *
 * Boot, claims and the shutdown's wait run one at a time (`serial`), so two notices never both claim.
 */
import { createHash, type KeyObject, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ConfigResponse, ReadyResponse, RestartReason, ServedAllocation, Whoami } from '@ganymede/contracts';
import { failpoint } from '@ganymede/failpoints';
import { drain } from '@ganymede/http-server';
import type { FastifyBaseLogger, FastifyInstance, FastifyListenOptions } from 'fastify';
import type { z } from 'zod';
import type { GatewayConfig } from './config.js';
import { EXIT_CODES, GanymedeAnswerError, GatewayError, InvalidAnswerError } from './errors.js';
import { createGanymedeClient, type GanymedeClient } from './ganymede-client.js';
import {
  type AllocatedAnswer,
  createGatewayServer,
  type GatewayView,
  NOT_READY,
  NOT_SERVING,
  type Phase,
  servesTraffic,
} from './http-api.js';
import { closeOrgSockets, registerOrgSocket, WS_CLOSE } from './org-socket.js';
import { ServeDeadline } from './serve-deadline.js';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js';
import { checkNotice, importNoticeKey, type NoticeCheck } from './notice.js';
import { retry, type RetryOptions } from './retry.js';
import { ROUTE_MISSING, unlessRouteMissing } from './route-missing.js';
import { Serial, within } from './serial.js';
import { tellGanymede } from './shutdown-call.js';
import { StateKeeper } from './state-keeper.js';
import type { Workload, WorkloadHost } from './workload.js';
import { sharedDocument } from './workloads/shared-document.js';
import type { ShutdownRequest } from './shutdown-reason.js';

/** The allocation this process holds, with what it needs to speak for it. */
export interface HeldAllocation {
  allocationId: string;
  organizationId: string;
  organizationToken: string;
  epoch: number;
  state: ServedAllocation['state'];
}

export interface GatewayOptions {
  config: GatewayConfig;
  logger: FastifyBaseLogger;
  /** Defaults to a client for `config.ganymedeUrl`; the gateway destroys it on shutdown either way. */
  client?: GanymedeClient;
  /** Backoff settings for boot calls (tests shorten them); the total comes from `config.bootTimeoutMs`. */
  retry?: Pick<RetryOptions, 'baseMs' | 'capMs'>;
  /** Called when Ganymede says another process took this gateway or its allocation over: stand down. */
  onSuperseded?: (reason: string) => void;
  /** Started by the supervisor to take over from a running process (arms the `…@successor` failpoints). */
  successor?: boolean;
  /** What the gateway serves for its organization (workload.ts); the built-in shared document by default. */
  workload?: Workload;
}

/** When each organization request was taken, and what this process held then (debug level only: the serving history). */
const takenWith = new WeakMap<object, { at: number; held: HeldAllocation }>();
/** CLOCK_MONOTONIC in milliseconds: one clock for every process of the machine, unlike performance.now(). */
const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;

/** An idle keep-alive connection of a draining process is closed only after this long (see `drain`). */
const IDLE_GRACE_MS = 1_000;

/** Attempts to reach a stable answer when allocations keep changing under us (config → ready → config ...). */
const MAX_SETTLE_ROUNDS = 5;

type ConfigBody = z.infer<typeof ConfigResponse>;
type ReadyBody = z.infer<typeof ReadyResponse>;

export class Gateway implements GatewayView {
  /** Identifies this process to Ganymede: a repeated /ready from it does not bump the epoch. */
  readonly instanceId = randomUUID();
  readonly startedAt = new Date().toISOString();
  readonly app: FastifyInstance;
  private readonly config: GatewayConfig;
  private readonly log: FastifyBaseLogger;
  private readonly client: GanymedeClient;
  private readonly retryOptions: Pick<RetryOptions, 'baseMs' | 'capMs'>;
  private readonly serial = new Serial();
  private readonly abortBoot = new AbortController();
  private current: Phase = 'created';
  private held: HeldAllocation | null = null;
  private startPromise: Promise<void> | undefined;
  private shutdownPromise: Promise<number> | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  /** Ganymede's lease length, from /gateway/ready's answer; renewals come at about a third of it. */
  private leaseSeconds = 10;
  /** Ganymede has no /gateway/reclaim (an older one): boot and resettle with /gateway/config, then /gateway/ready. */
  private reclaimUnsupported = false;
  /** Ganymede has no /gateway/lease (an older one): no renewals, ever (for this process). */
  private leasesUnsupported = false;
  /**
   * Verifies Ganymede's notices, from /gateway/ready's last answer: the public key; null from a Ganymede older than
   * notice tokens (its notices are taken unproven, the old way); 'unusable' when the key sent does not import (every
   * notice is refused: fail closed).
   */
  private noticeKey: KeyObject | null | 'unusable' = null;
  private readonly onSuperseded: (reason: string) => void;
  private readonly successor: boolean;
  private readonly stateKeeper: StateKeeper;
  private drained: Promise<number> | undefined;
  /** Self-fencing (serve-deadline.ts): past it, the organization's traffic is refused until a renewal succeeds. */
  private readonly deadline = new ServeDeadline(() => this.pause(), this.leaseSeconds * 1000);
  /** Logging each organization request served (debug level): the serving history a test checks. */
  private readonly historyOn: boolean;
  private readonly counters: GatewayMetrics;

  constructor(options: GatewayOptions) {
    this.config = options.config;
    this.log = options.logger;
    this.client =
      options.client ?? createGanymedeClient({ baseUrl: options.config.ganymedeUrl, timeoutMs: options.config.requestTimeoutMs });
    this.retryOptions = options.retry ?? {};
    this.onSuperseded = options.onSuperseded ?? (() => undefined);
    this.successor = options.successor ?? false;
    this.counters = createGatewayMetrics({ phase: () => this.current, epoch: () => this.held?.epoch ?? null });
    this.app = createGatewayServer(this, { logger: options.logger });
    this.historyOn = ['trace', 'debug'].includes(this.log.level);
    // Past the renew deadline no organization route runs, the workload's included (upgrades too: before them).
    this.app.addHook('onRequest', async (request, reply) => {
      if (!request.url.startsWith('/orgs/')) return;
      if (this.lapsed()) return reply.status(503).send(NOT_SERVING);
      if (this.historyOn && this.held) takenWith.set(request, { at: monotonicMs(), held: this.held });
    });
    // At debug level, the serving history (README, Partitions): each organization request answered 200, with the
    // allocation and epoch and the machine's monotonic time (comparable across processes) at which it was taken. The
    // allocation tells a hot restart's successor (same allocation, a later epoch) from another gateway's allocation.
    this.app.addHook('onResponse', async (request, reply) => {
      const taken = takenWith.get(request);
      if (taken === undefined || reply.statusCode !== 200) return;
      const {
        at,
        held: { organizationId, allocationId, epoch },
      } = taken;
      this.log.debug({ event: 'served', organization_id: organizationId, allocation_id: allocationId, epoch, at_ms: at }, 'served');
    });
    this.app.addHook('onResponse', async () => {
      if (this.current === 'draining') this.counters.drainedRequests.inc();
    });
    registerOrgSocket(this.app, this);
    const workload = options.workload ?? sharedDocument;
    const writable = () => (this.current === 'up' || this.current === 'handing_over') && !this.deadline.lapsed();
    this.stateKeeper = new StateKeeper({
      client: this.client,
      config: this.config,
      log: this.log,
      workload,
      held: () => this.held,
      writable,
      pushed: (outcome) => this.counters.snapshotPushes.inc({ outcome }),
    });
    const host: WorkloadHost = {
      state: (organizationId) => (servesTraffic(this.current) ? this.stateKeeper.state(organizationId) : null),
      acceptsSessions: writable,
    };
    void this.app.register(async (scope) => workload.routes(scope, host));
  }

  phase(): Phase {
    return this.current;
  }

  lapsed(): boolean {
    return this.held !== null && this.deadline.lapsed();
  }

  /** The renew deadline passed (serve-deadline.ts): refuse the organization's traffic, close its sessions. */
  private pause(): void {
    if (!this.held) return;
    const sockets = closeOrgSockets(this.app, WS_CLOSE.tryAgainLater);
    this.stateKeeper.pause();
    this.log.warn(
      { event: 'serving_paused', websockets: sockets, ...this.context() },
      'the lease was not renewed within the renew deadline: not serving until Ganymede renews it',
    );
  }

  /** A renewal sent at `sentAt` succeeded while the allocation is still this process's: serve again if paused. */
  private renewed(sentAt: number, deadlineMs: number | undefined): void {
    if (!this.held) return this.deadline.clear();
    if (!this.deadline.renewed(sentAt, deadlineMs)) return;
    this.stateKeeper.serving();
    this.log.info({ event: 'serving_resumed', ...this.context() }, 'the lease was renewed: serving again');
  }

  allocation(): HeldAllocation | null {
    return this.held;
  }

  serving(): boolean {
    return servesTraffic(this.current) && this.held !== null;
  }

  /** The port actually listened on (useful with GATEWAY_PORT=0); undefined before start(). */
  port(): number | undefined {
    const address = this.app.server.address() as AddressInfo | null;
    return address?.port;
  }

  whoami(): Whoami {
    return {
      gateway_id: this.config.gatewayId,
      organization_id: this.held?.organizationId ?? null,
      allocation_id: this.held?.allocationId ?? null,
      epoch: this.held?.epoch ?? null,
      pid: process.pid,
      started_at: this.startedAt,
    };
  }

  /**
   * The metrics for whoever presents this gateway's own token. Not open: the port also serves organizations'
   * traffic, and the numbers (the epoch, the phase) are the operator's business.
   */
  async metrics(authorization: string): Promise<string | null> {
    const digest = (text: string) => createHash('sha256').update(text).digest();
    if (!timingSafeEqual(digest(authorization), digest(`Bearer ${this.config.gatewayToken}`))) return null;
    return this.counters.registry.metrics();
  }

  /** Log fields naming what this process holds. */
  private context() {
    return {
      instance_id: this.instanceId,
      organization_id: this.held?.organizationId ?? null,
      allocation_id: this.held?.allocationId ?? null,
      epoch: this.held?.epoch ?? null,
    };
  }

  /** Listens, then settles with Ganymede. Safe to call twice: returns the start in flight. */
  start(): Promise<void> {
    this.startPromise ??= this.doStart();
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    this.current = 'booting';
    // On the supervisor's socket, accepting waits for its word; get the routes ready now, so that takeover is quick.
    if (this.config.listenFd === undefined) await this.listen();
    else await this.app.ready();
    await this.serial.run(() => this.settleAtBoot());
    if (this.current !== 'booting') return; // a shutdown began meanwhile
    this.current = 'up';
    if (this.app.server.listening) this.stateKeeper.serving();
    if (this.held) this.log.info({ event: 'serving', ...this.context() }, 'serving the allocation');
    else this.log.info({ event: 'idle', ...this.context() }, 'idle: ready to be allocated');
    // The first renewal comes at once: it is what makes this process's liveness known to Ganymede.
    this.scheduleRenewal(0);
  }

  /**
   * Starts accepting: on its own port, or on the listening socket it was given (`listenFd`, the supervisor's).
   * The host is explicit either way: given 'localhost', Fastify would bind more sockets of its own.
   */
  async listen(): Promise<void> {
    const { listenFd: fd, port, host } = this.config;
    // Fastify's types omit `fd`, but it passes its options through to Node's `server.listen`, which takes it.
    const onFd = { fd, host: host === 'localhost' ? '127.0.0.1' : host } as FastifyListenOptions;
    await this.app.listen(fd === undefined ? { port, host } : onFd);
    if (this.successor) this.counters.handovers.inc({ step: 'taken_over' });
    const bound = this.port();
    this.log.info(
      { event: 'listening', port: bound, host, url: `http://${host}:${bound}`, fd: fd ?? null, instance_id: this.instanceId },
      `listening on ${host}:${bound}`,
    );
    if (this.current === 'up') this.stateKeeper.serving();
  }

  /** Fires a failpoint; in a successor also its `@successor` twin (so a test can fail only the successor). */
  private failpoint(name: string): void {
    failpoint(name);
    if (this.successor) failpoint(`${name}@successor`);
  }

  /** Next renewal in `delayMs`, or at about a third of the lease with ±25% jitter so a fleet spreads out. */
  private scheduleRenewal(delayMs = (this.leaseSeconds * 1000 * (0.75 + Math.random() * 0.5)) / 3): void {
    clearTimeout(this.leaseTimer);
    if (this.current !== 'up' || this.leasesUnsupported) return;
    this.leaseTimer = setTimeout(() => void this.serial.run(() => this.renewLease()).finally(() => this.scheduleRenewal()), delayMs);
    this.leaseTimer.unref();
  }

  /**
   * One renewal. Ganymede down or failing: keep serving (a control-plane outage must not end healthy
   * service) and try again next time. Refused because the allocation ended: stop serving it and say ready
   * again, idle. Refused because another process took over (superseded, stale epoch): stand down.
   */
  private async renewLease(): Promise<void> {
    if (this.current !== 'up') return;
    const held = this.held;
    const body = { instance_id: this.instanceId, allocation_id: held?.allocationId ?? null, ...(held ? { epoch: held.epoch } : {}) };
    let answer;
    const sentAt = ServeDeadline.now();
    try {
      answer = await unlessRouteMissing(this.client.lease(this.config.gatewayToken, body));
    } catch (error) {
      const left = Math.round(this.deadline.remainingMs());
      this.log.warn(
        { event: 'lease_failed', err: error, serving_left_ms: Number.isFinite(left) ? left : null, ...this.context() },
        'could not renew the lease',
      );
      return;
    }
    if (answer.status === ROUTE_MISSING.status) {
      // It never expires a lease either: this gateway is exempt there, as the platform's gateways are.
      this.leasesUnsupported = true;
      this.log.warn({ event: 'lease_unsupported', ...this.context() }, 'Ganymede has no /gateway/lease (an older Ganymede): no renewals');
      return;
    }
    if (this.current !== 'up') return;
    if (answer.status === 200) {
      this.leaseSeconds = answer.body.lease.seconds;
      this.renewed(sentAt, answer.body.lease.renew_deadline_ms);
      this.log.debug({ event: 'lease_renewed', ...this.context() }, 'lease renewed');
      const given = answer.body.allocation;
      if (!held && given) {
        this.log.info({ event: 'allocation_raced', allocation_id: given.allocation_id }, 'allocated meanwhile: claiming it');
        await this.claim(given.allocation_id);
      }
      return;
    }
    if (answer.status === 409 && answer.body.error === 'allocation_ended') {
      this.held = null;
      this.deadline.clear();
      this.stateKeeper.close('stopped');
      this.log.warn(
        { event: 'allocation_lost', reason: answer.body.error, allocation_id: held?.allocationId ?? null },
        'the allocation ended: no longer serving it',
      );
      await this.settleAtBoot().catch((err: unknown) => this.log.error({ event: 'resettle_failed', err }, 'could not say ready again'));
      this.stateKeeper.serving();
      return;
    }
    if (answer.status === 409) {
      this.held = null;
      this.deadline.clear();
      this.stateKeeper.close('superseded');
      this.current = 'stood_down'; // no more renewals or claims: the process that took over makes them
      this.log.warn(
        { event: 'superseded', reason: answer.body.error, allocation_id: held?.allocationId ?? null },
        'another process took over: standing down',
      );
      this.onSuperseded(answer.body.error);
      return;
    }
    this.log.error({ event: 'lease_refused', status: answer.status, body: answer.body }, 'Ganymede refused the lease renewal');
  }

  /** One boot call, retried while it fails transiently (network, timeout, 5xx) within the boot budget. */
  private bootCall<A extends { status: number | string; body?: unknown }>(
    what: string,
    deadline: number,
    call: (signal: AbortSignal) => Promise<A>,
  ): Promise<A> {
    return retry(
      async () => {
        const answer = await call(this.abortBoot.signal);
        const { status, body } = answer;
        if (typeof status === 'number' && status >= 500) throw new GanymedeAnswerError(what, { status, body });
        return answer;
      },
      {
        ...this.retryOptions,
        totalMs: Math.max(0, deadline - Date.now()),
        signal: this.abortBoot.signal,
        onRetry: ({ attempt, delayMs, error }) =>
          this.log.warn(
            { event: 'boot_retry', call: what, attempt: attempt + 1, delay_ms: delayMs, err: error },
            `${what} failed; retrying in ${delayMs} ms`,
          ),
      },
    );
  }

  private async settleAtBoot(): Promise<void> {
    const deadline = Date.now() + this.config.bootTimeoutMs;
    const token = this.config.gatewayToken;
    const instance_id = this.instanceId;
    const config = () => this.bootCall('POST /gateway/config', deadline, (signal) => this.client.config(token, { signal }));
    // When the last /gateway/ready was first sent (a retry is later): what the serve deadline counts from.
    let readySentAt = 0;
    const ready = (allocation_id: string | null) => {
      readySentAt = ServeDeadline.now();
      return this.bootCall('POST /gateway/ready', deadline, (signal) =>
        this.client.ready(token, { allocation_id, instance_id }, { signal }),
      );
    };

    // One call where Ganymede has /gateway/reclaim; /gateway/config then /gateway/ready where it is older.
    const reclaim = async (): Promise<'held' | 'idle' | 'older'> => {
      this.failpoint('gateway:before:reclaim');
      readySentAt = ServeDeadline.now();
      const answer = await this.bootCall('POST /gateway/reclaim', deadline, (signal) =>
        unlessRouteMissing(this.client.reclaim(token, { instance_id }, { signal })),
      );
      if (answer.status === ROUTE_MISSING.status) {
        this.reclaimUnsupported = true;
        this.log.info(
          { event: 'reclaim_unsupported' },
          'Ganymede has no /gateway/reclaim (an older Ganymede): /gateway/config, then /gateway/ready',
        );
        return 'older';
      }
      this.failpoint('gateway:after:reclaim');
      if (answer.status === 404 || answer.status === 409) {
        this.log.info({ event: 'config', allocation_id: null, error: answer.body.error }, 'Ganymede holds no allocation for this gateway');
        return 'idle';
      }
      if (answer.status !== 200) throw new GanymedeAnswerError('POST /gateway/reclaim', answer);
      const { allocation_id, organization_id, state, epoch, reclaimed } = answer.body;
      this.readyAnswered(answer.body, readySentAt);
      await this.hold(answer.body, { allocation_id, organization_id, state, epoch }, deadline);
      this.log.info({ event: 'reclaimed', reclaimed, ...this.context() }, `holding the allocation at epoch ${epoch}`);
      return 'held';
    };

    /** Ready with nothing held: true when that is how it stays; false when allocated meanwhile (claim it next round). */
    const sayIdle = async (): Promise<boolean> => {
      const idle = await ready(null);
      if (idle.status !== 200) throw new GanymedeAnswerError('POST /gateway/ready', idle);
      this.readyAnswered(idle.body, readySentAt);
      if (idle.body.allocation === null) return true;
      this.log.info(
        { event: 'allocation_raced', allocation_id: idle.body.allocation.allocation_id },
        'allocated while coming up idle: claiming it',
      );
      return false;
    };

    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      const reclaimed = this.reclaimUnsupported ? 'older' : await reclaim();
      if (reclaimed === 'held') return;
      if (reclaimed === 'idle') {
        if (await sayIdle()) return;
        continue;
      }
      const configured = await config();
      this.failpoint('gateway:after:config');
      if (configured.status === 200) {
        const { allocation_id, organization_id, state, epoch } = configured.body;
        this.log.info(
          { event: 'config', allocation_id, organization_id, state, epoch },
          'Ganymede holds an allocation for this gateway: reclaiming it',
        );
        const claimed = await ready(allocation_id);
        this.failpoint('gateway:after:ready');
        if (claimed.status === 200) {
          const { allocation, reclaimed } = claimed.body;
          this.readyAnswered(claimed.body, readySentAt);
          if (allocation?.allocation_id === allocation_id) {
            await this.hold(configured.body, allocation, deadline);
            this.log.info({ event: 'reclaimed', reclaimed, ...this.context() }, `holding the allocation at epoch ${allocation.epoch}`);
            return;
          }
          if (allocation !== null) {
            this.log.warn(
              { event: 'allocation_changed', allocation_id: allocation.allocation_id },
              'Ganymede answered another allocation: asking again',
            );
            continue;
          }
          this.log.warn({ event: 'allocation_gone', allocation_id }, 'Ganymede answered no allocation: idle');
          return;
        }
        if (claimed.status !== 404 && claimed.status !== 409) throw new GanymedeAnswerError('POST /gateway/ready', claimed);
        this.log.info({ event: 'allocation_gone', allocation_id, error: claimed.body.error }, 'the allocation is gone: coming up idle');
      } else if (configured.status === 404) {
        this.log.info({ event: 'config', allocation_id: null }, 'Ganymede holds no allocation for this gateway');
      } else {
        throw new GanymedeAnswerError('POST /gateway/config', configured);
      }

      if (await sayIdle()) return;
    }
    throw new GatewayError('BOOT_FAILED', `the allocation kept changing over ${MAX_SETTLE_ROUNDS} rounds with Ganymede`);
  }

  /**
   * What every 200 from /gateway/ready (sent at `sentAt`) tells this process: its lease length and renew deadline
   * (the ready renewed the lease), and the key that verifies notices.
   */
  private readyAnswered(body: Pick<ReadyBody, 'lease' | 'notice_key'>, sentAt: number): void {
    this.leaseSeconds = body.lease.seconds;
    this.deadline.renewed(sentAt, body.lease.renew_deadline_ms);
    if (body.notice_key === undefined) {
      // Once a key is known it stays: while Ganymede replicas are mixed, an older one's unproven notices are refused.
      if (this.noticeKey === null)
        this.log.warn({ event: 'no_notice_key' }, 'Ganymede gave no notice key (an older Ganymede): notices are taken unproven');
      return;
    }
    this.noticeKey = importNoticeKey(body.notice_key) ?? 'unusable';
    if (this.noticeKey === 'unusable') {
      this.log.error({ event: 'bad_notice_key' }, 'Ganymede gave a notice key that is not an Ed25519 public key: notices are refused');
    }
  }

  /**
   * Holds the allocation, its organization's state restored first (so no request reaches an empty organization).
   * At boot (`deadline`) the pull is retried like every boot call; on a notice it is one call (a failure: 503).
   */
  private async hold(config: ConfigBody, served: ServedAllocation, deadline?: number): Promise<void> {
    const held: HeldAllocation = {
      allocationId: served.allocation_id,
      organizationId: served.organization_id,
      organizationToken: config.organization_token,
      epoch: served.epoch,
      state: served.state,
    };
    const token = held.organizationToken;
    await this.stateKeeper.openFor(held, (body) =>
      deadline === undefined
        ? this.client.dataPull(token, body)
        : this.bootCall('POST /gateway/data/pull', deadline, (signal) => this.client.dataPull(token, body, { signal })),
    );
    this.held = held;
  }

  /**
   * Ganymede says this gateway was allocated. Before anything else, the notice must prove it comes from Ganymede
   * (its token, checked with the notice key): an unproven one is refused here, without a call to Ganymede, so
   * a flood of them costs Ganymede nothing. A proven one is still only a hint: ask /gateway/config, claim with
   * /gateway/ready. A Ganymede older than notice tokens gives no key and signs nothing: its notices are taken the
   * old way (only a hint, checked with /gateway/config), so a rolling upgrade may start with either side.
   */
  allocated(allocationId: string, authorization: string | undefined): Promise<AllocatedAnswer> {
    if (this.current !== 'up') return Promise.resolve({ status: 503, body: NOT_READY });
    const key = this.noticeKey;
    const proof: NoticeCheck =
      key === null
        ? { ok: true }
        : key === 'unusable'
          ? { ok: false, reason: 'Ganymede gave no usable notice key' }
          : checkNotice(authorization, key, { gatewayId: this.config.gatewayId, allocationId });
    if (!proof.ok) {
      this.log.warn({ event: 'notice_refused', allocation_id: allocationId, reason: proof.reason }, `notice refused: ${proof.reason}`);
      return Promise.resolve({ status: 401, body: { error: 'unauthorized', message: proof.reason } });
    }
    return this.serial.run(() => this.claim(allocationId));
  }

  private async claim(allocationId: string): Promise<AllocatedAnswer> {
    const ended = (message: string): AllocatedAnswer => ({ status: 409, body: { error: 'allocation_ended', message } });
    if (this.current !== 'up') return { status: 503, body: NOT_READY };
    if (this.held) {
      return this.held.allocationId === allocationId
        ? { status: 200, body: this.whoami() }
        : ended(`this gateway serves allocation ${this.held.allocationId}`);
    }
    const token = this.config.gatewayToken;
    this.log.info({ event: 'allocated_notice', allocation_id: allocationId }, 'allocation notice: asking Ganymede');
    try {
      const config = await this.client.config(token);
      if (config.status === 404) return ended('Ganymede holds no allocation for this gateway');
      if (config.status !== 200) throw new GanymedeAnswerError('POST /gateway/config', config);
      if (config.body.allocation_id !== allocationId) {
        return ended(`Ganymede holds allocation ${config.body.allocation_id}, not ${allocationId}`);
      }
      const sentAt = ServeDeadline.now();
      const ready = await this.client.ready(token, { allocation_id: allocationId, instance_id: this.instanceId });
      if (ready.status === 404 || ready.status === 409) return ended(`Ganymede refused the claim: ${ready.body.error}`);
      if (ready.status !== 200) throw new GanymedeAnswerError('POST /gateway/ready', ready);
      this.readyAnswered(ready.body, sentAt);
      if (ready.body.allocation?.allocation_id !== allocationId) return ended('Ganymede answered another allocation');
      await this.hold(config.body, ready.body.allocation);
      this.stateKeeper.serving();
      this.log.info({ event: 'claimed', ...this.context() }, 'claimed the allocation: serving');
      return { status: 200, body: this.whoami() };
    } catch (error) {
      this.log.error({ event: 'claim_failed', allocation_id: allocationId, err: error }, 'could not confirm the allocation with Ganymede');
      return { status: 503, body: { error: 'not_ready', message: 'could not confirm the allocation with Ganymede' } };
    }
  }

  /**
   * A hot restart begins: ask Ganymede to keep the allocation (/gateway/restart) and keep serving. No more lease
   * renewals or claims: the successor reclaims at epoch + 1, after which this process's epoch is stale.
   */
  async prepareHandover(reason: RestartReason): Promise<void> {
    if (this.current !== 'up') return;
    this.current = 'handing_over';
    this.counters.handovers.inc({ step: 'prepared' });
    clearTimeout(this.leaseTimer);
    this.log.info({ event: 'handover_prepare', reason, ...this.context() }, 'hot restart: keeping the allocation for a successor');
    await this.serial.idle();
    const held = this.held;
    if (!held) return;
    // While this epoch is still the allocation's: the successor pulls this at the latest.
    await this.stateKeeper.push('handover');
    try {
      await tellGanymede(this.shutdownCallDeps(), { kind: 'restart', reason }, held, this.config.requestTimeoutMs, this.context());
    } catch (error) {
      // The successor still reclaims (a crash reclaim if the allocation stayed active), or withdraws on failure.
      this.log.error({ event: 'restart_failed', reason, err: error, ...this.context() }, 'could not tell Ganymede (restart)');
    }
  }

  /**
   * The successor failed: serve on as before. The restart is withdrawn so the allocation is active at this
   * process's epoch again. If the successor had reclaimed it meanwhile (it is dead now: the supervisor killed it),
   * or Ganymede is older than the withdraw route, claim it again instead. Retried while Ganymede fails: a restart
   * left standing would end at its deadline. Resolves with the epoch now held (null: idle).
   */
  async withdrawHandover(): Promise<number | null> {
    if (this.current !== 'handing_over') return this.held?.epoch ?? null;
    try {
      await this.serial.run(async () => {
        const held = this.held;
        if (held && !(await this.withdrawRestart(held))) await this.settleAtBoot();
      });
    } catch (error) {
      // Ganymede stayed unreachable: serve on; the lease renewals tell whether the allocation is still ours.
      this.log.error({ event: 'withdraw_failed', err: error, ...this.context() }, 'could not withdraw the restart');
    }
    if (this.current === 'handing_over') this.current = 'up';
    this.counters.handovers.inc({ step: 'withdrawn' });
    this.stateKeeper.serving();
    this.log.info({ event: 'handover_withdrawn', ...this.context() }, 'hot restart withdrawn: serving on');
    this.scheduleRenewal(0);
    return this.held?.epoch ?? null;
  }

  /** True when Ganymede took the withdraw (or there is nothing left to withdraw); false: claim the allocation again. */
  private async withdrawRestart(held: HeldAllocation): Promise<boolean> {
    const sentAt = ServeDeadline.now();
    const answer = await this.bootCall('POST /gateway/restart/withdraw', Date.now() + this.config.bootTimeoutMs, (signal) =>
      this.client
        .withdrawRestart(held.organizationToken, { epoch: held.epoch, allocation_id: held.allocationId }, { signal })
        .catch((error: unknown) => {
          if (error instanceof InvalidAnswerError && error.status === 404) return { status: 404 as const, body: null };
          throw error;
        }),
    );
    if (answer.status === 200) {
      this.renewed(sentAt, undefined); // the withdraw renewed the lease
      return true;
    }
    if (answer.status === 403 && answer.body.error === 'allocation_ended') {
      this.held = null;
      this.log.warn({ event: 'allocation_lost', allocation_id: held.allocationId }, 'the allocation ended during the handover');
    }
    this.log.info({ event: 'withdraw_refused', status: answer.status }, 'withdraw refused: settling with Ganymede again');
    return false;
  }

  /**
   * The successor accepts now: stop accepting (the socket stays open in the others), close WebSockets with 1012
   * so clients reconnect to the successor, finish what is open within the drain timeout, and resolve with exit
   * code 75. Ganymede is not called again: the allocation is the successor's.
   */
  drain(): { state: Uint8Array | null; drained: Promise<number> } {
    if (this.drained) return { state: null, drained: this.drained };
    this.current = 'draining';
    this.counters.handovers.inc({ step: 'drained' });
    clearTimeout(this.leaseTimer);
    const finished = drain(this.app, { idleGraceMs: IDLE_GRACE_MS, deadlineMs: this.config.drainTimeoutMs });
    const sockets = closeOrgSockets(this.app, WS_CLOSE.serviceRestart);
    // Sessions closed first, so the snapshot holds every change they made; the successor persists it.
    this.stateKeeper.freeze();
    const state = this.stateKeeper.snapshot();
    this.stateKeeper.close('draining');
    this.log.info(
      { event: 'draining', websockets: sockets, state_bytes: state?.length ?? null, ...this.context() },
      'the successor accepts: draining',
    );
    this.drained = finished.then(async ({ forced }) => {
      await this.client.destroy().catch(() => undefined);
      this.current = 'stopped';
      this.log.info({ event: 'drained', forced, ...this.context() }, forced ? 'drain deadline: connections closed' : 'drained');
      return EXIT_CODES.restart;
    });
    return { state, drained: this.drained };
  }

  /** A hot restart's successor takes its predecessor's final state (then persists it at its own epoch). */
  adoptState(bytes: Uint8Array): void {
    if (!this.held) return;
    this.stateKeeper.adopt(this.held, bytes);
    void this.stateKeeper.push('adopted');
  }

  /**
   * Shuts down for `request.reason` and resolves with the exit code. Safe to call twice: returns the
   * shutdown in flight (the first reason wins). Never rejects.
   */
  shutdown(request: ShutdownRequest): Promise<number> {
    this.shutdownPromise ??= this.doShutdown(request);
    return this.shutdownPromise;
  }

  private shutdownCallDeps() {
    return { client: this.client, log: this.log, config: this.config };
  }

  private async doShutdown(request: ShutdownRequest): Promise<number> {
    const { kind, reason } = request;
    const exitCode = kind === 'restart' ? EXIT_CODES.restart : EXIT_CODES.stopped;
    const budget = this.config.shutdownTimeoutMs;
    // Keep a slice of the budget for closing and exiting after the call to Ganymede.
    const deadline = Date.now() + budget - Math.min(500, Math.floor(budget / 5));
    const remaining = () => deadline - Date.now();
    const was = this.current;
    if (this.drained) {
      // Handed over already: nothing to tell Ganymede; the drain gets what is left of the budget.
      if (!(await within(this.drained, deadline - Date.now()))) this.app.server.closeAllConnections();
      return EXIT_CODES.restart;
    }
    this.current = 'shutting_down';
    clearTimeout(this.leaseTimer);
    this.log.info({ event: 'shutdown_started', kind, reason, phase: was, ...this.context() }, `shutting down (${reason})`);

    this.abortBoot.abort(new GatewayError('BOOT_FAILED', `shutting down (${reason}) during boot`));
    const closing = this.app.server.listening ? this.app.close() : Promise.resolve();
    closing.catch((err: unknown) => this.log.error({ event: 'close_failed', err }, 'closing the server failed'));

    if (!(await within(this.serial.idle(), remaining()))) {
      this.log.warn({ event: 'claim_still_running', reason }, 'a claim with Ganymede is still running at the deadline');
    }
    const held = this.held;
    if (held) {
      await this.stateKeeper.push(kind, remaining());
      this.stateKeeper.close('stopped');
      try {
        await tellGanymede(this.shutdownCallDeps(), request, held, remaining(), this.context());
      } catch (error) {
        const event = kind === 'restart' ? 'restart_failed' : 'stop_failed';
        this.log.error({ event, reason, err: error, ...this.context() }, `could not tell Ganymede (${reason})`);
      }
    }
    if (!(await within(closing, remaining()))) this.log.warn({ event: 'close_timeout' }, 'open connections at the deadline');
    await this.client.destroy().catch(() => undefined);
    this.current = 'stopped';
    this.log.info({ event: 'shutdown_complete', kind, reason, exit_code: exitCode, ...this.context() }, `shut down (${reason})`);
    return exitCode;
  }
}
