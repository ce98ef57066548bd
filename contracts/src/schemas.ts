import { z } from 'zod';

/** Shutdown reasons a gateway's signal handler supplies. A restart keeps the allocation; a stop ends it. */
export const RESTART_REASONS = ['reload', 'deploy', 'restart'] as const;
export const STOP_REASONS = ['stop', 'idle', 'decommission'] as const;
export const RestartReason = z.enum(RESTART_REASONS);
export const StopReason = z.enum(STOP_REASONS);
export type RestartReason = z.infer<typeof RestartReason>;
export type StopReason = z.infer<typeof StopReason>;
export type ShutdownReason = RestartReason | StopReason;

export const isRestartReason = (reason: string): reason is RestartReason => (RESTART_REASONS as readonly string[]).includes(reason);

/** Why an allocation ended: a stop reason, or a decision Ganymede took on its own. */
export const EndedReason = z.enum([...STOP_REASONS, 'restart_timeout', 'gateway_unreachable', 'lease_expired', 'crash_loop']);
export type EndedReason = z.infer<typeof EndedReason>;

export const LiveState = z.enum(['active', 'restarting']);
export const AllocationState = z.enum(['active', 'restarting', 'ended']);
export type AllocationState = z.infer<typeof AllocationState>;

export const Uuid = z.string().uuid();
export const Epoch = z.number().int().min(1).max(2_147_483_647);
export const Timestamp = z.string().datetime({ offset: true });
export const HttpUrl = z
  .string()
  .max(2048)
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

/** The one error body every route answers with. `error` is a stable code from ERROR_CODES. */
export const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'no_allocation',
  'allocation_not_found',
  'allocation_ended',
  'stale_epoch',
  'superseded',
  'revision_conflict',
  'not_found',
  'no_gateway_available',
  'not_ready',
  'not_serving',
  'database_unavailable',
  'migrations_pending',
  'schema_too_new',
  'payload_too_large',
  'unsupported_media_type',
  'request_timeout',
  'headers_too_large',
  'internal',
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;
export const ErrorBody = z.object({ error: ErrorCode, message: z.string() });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const BearerHeaders = z.object({
  authorization: z.string().regex(/^Bearer \S+$/, 'expected "Bearer <token>"'),
});
/** A bearer token a route may do without: a notice from an older Ganymede, or `/metrics` opened by its flag. */
export const OptionalBearerHeaders = z.object({ authorization: BearerHeaders.shape.authorization.optional() });
/** A notice's headers: the notice token, absent only from a Ganymede older than notice tokens. */
export const NoticeHeaders = OptionalBearerHeaders;

/** Every body is a JSON object whose unknown keys are refused: a typo must not pass silently. */
export const StartBody = z.object({ organization_id: Uuid }).strict();

export const StartResponse = z.object({
  allocation_id: Uuid,
  gateway_id: Uuid,
  gateway_url: HttpUrl,
  organization_id: Uuid,
  state: LiveState,
  epoch: Epoch,
});

export const ConfigBody = z.object({}).strict();

/** An organization's member, as the platform's Ganymede lists them in /gateway/config. */
export const PlatformMember = z.object({ user_id: z.string(), username: z.string(), role: z.enum(['owner', 'admin', 'member']) });

/**
 * Keeps upstream's top-level `organization_id`, `gateway_id`, `organization_token` so older gateways still read it,
 * and the rest of what the platform's gateway reads (`organization_name`, `projects`, `project_names`, `members`).
 * Ganymede keeps no directory of organizations, so it always sends those empty ("" and []); they default to empty
 * when a Ganymede older than them leaves them out.
 */
export const ConfigResponse = z.object({
  gateway_id: Uuid,
  organization_id: Uuid,
  organization_token: z.string(),
  allocation_id: Uuid,
  state: LiveState,
  epoch: Epoch,
  restart_deadline: Timestamp.nullable(),
  organization_name: z.string().default(''),
  /** Project ids. */
  projects: z.array(z.string()).default([]),
  /** The projects' names, in the order of `projects`. */
  project_names: z.array(z.string()).default([]),
  members: z.array(PlatformMember).default([]),
});

/**
 * Which protocol a gateway speaks, as its last /gateway/ready showed. `v2`: this project's gateway (instance ids,
 * epochs, leases; told of an allocation with `POST /allocated`). `v1`: the platform's gateway (`{gateway_id}`;
 * told with `GET /collab/ping`, then `POST /collab/start`).
 */
export const GATEWAY_PROTOCOLS = ['v1', 'v2'] as const;
export const GatewayProtocol = z.enum(GATEWAY_PROTOCOLS);
export type GatewayProtocol = z.infer<typeof GatewayProtocol>;

export const CurrentReadyBody = z
  .object({
    /** The allocation this process now serves (from /gateway/config), or null when it comes up idle. */
    allocation_id: Uuid.nullable(),
    /** Identifies this process: a repeated /ready from the same process does not bump the epoch. */
    instance_id: Uuid.optional(),
  })
  .strict();

/**
 * The platform's gateway says ready with its own id and nothing else, once per process. It never claims: read as an
 * idle ready (`allocation_id: null`), which leaves an allocation the gateway holds as it is (the platform's gateway
 * took it with /gateway/config). `gateway_id` must be the token's gateway.
 */
const PlatformReadyBody = z
  .object({ gateway_id: Uuid })
  .strict()
  .transform(({ gateway_id }) => ({ allocation_id: null, gateway_id }));

/** Either protocol's body; `gateway_id` is there only in the platform's (v1). */
export const ReadyBody = z.union([CurrentReadyBody, PlatformReadyBody]);

export const ServedAllocation = z.object({
  allocation_id: Uuid,
  organization_id: Uuid,
  state: LiveState,
  epoch: Epoch,
});
export type ServedAllocation = z.infer<typeof ServedAllocation>;

/** A gateway renews its lease this many times per lease length, each interval jittered by ± RENEWAL_JITTER. */
export const RENEWALS_PER_LEASE = 3;
export const RENEWAL_JITTER = 0.25;

/** A gateway's liveness lease. `expires_at` is null until the process renews it once (older gateways never do). */
export const Lease = z.object({
  expires_at: Timestamp.nullable(),
  /** Renew well within this (a third of it, with jitter). */
  seconds: z.number().int().positive(),
  /**
   * Self-fencing: the gateway stops serving its allocation once this long has passed, by its own monotonic
   * clock, since it sent its last renewal that succeeded; Ganymede chose it so that the gateway stops strictly
   * before Ganymede may end the allocation (README, Partitions). Absent from older Ganymedes: the gateway then
   * uses `seconds`.
   */
  renew_deadline_ms: z.number().int().positive().optional(),
});

/** An Ed25519 public key, base64url (a JWK's `x`). */
export const NoticeKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be an Ed25519 public key, base64url');

export const ReadyResponse = z.object({
  gateway_id: Uuid,
  /** What the gateway holds after this call: the allocation it claimed, or one it was given meanwhile. */
  allocation: ServedAllocation.nullable(),
  reclaimed: z.boolean(),
  lease: Lease,
  /**
   * The public key that verifies Ganymede's notices (`POST /allocated`, see NoticeClaims). Public: it lets nobody
   * sign one. Ganymede always sends it. Optional for a Ganymede older than the field: its gateways take its
   * unproven notices the old way (only a hint, checked with /gateway/config), so an upgrade may start on either side.
   */
  notice_key: NoticeKey.optional(),
});

export const ReclaimBody = z
  .object({
    /** Identifies this process, as in /gateway/ready: a repeat from the same process does not bump the epoch. */
    instance_id: Uuid,
  })
  .strict();

/**
 * /gateway/config's answer and /gateway/ready's claim in one: the allocation as it is after the claim (active, at
 * the epoch it was claimed at: epoch + 1 for a reclaim, with no restart deadline), its organization token, and
 * what /gateway/ready answers besides (`reclaimed`, `lease`, `notice_key`).
 */
export const ReclaimResponse = ConfigResponse.extend({
  reclaimed: z.boolean(),
  lease: Lease,
  notice_key: NoticeKey,
});

export const LeaseBody = z
  .object({
    instance_id: Uuid,
    /** The allocation this process serves (null when idle) and its epoch: a renewal is fenced by both. */
    allocation_id: Uuid.nullable(),
    epoch: Epoch.optional(),
  })
  .strict();

export const LeaseResponse = z.object({
  lease: Lease,
  /** The gateway's live allocation: for an idle process, one it was given and must claim. */
  allocation: ServedAllocation.nullable(),
});

export const StopBody = z
  .object({
    /** The platform's gateways send `{}`: a stop. */
    reason: StopReason.default('stop'),
    /** Omitted by older gateways: then no fencing check is made. */
    epoch: Epoch.optional(),
    allocation_id: Uuid.optional(),
  })
  .strict();

export const StopResponse = z.object({
  allocation_id: Uuid,
  state: z.literal('ended'),
  epoch: Epoch,
  ended_at: Timestamp,
  ended_reason: EndedReason,
});

export const RestartBody = z
  .object({
    reason: RestartReason,
    epoch: Epoch.optional(),
    allocation_id: Uuid.optional(),
    /** The gateway may ask for less than Ganymede's grace, never more. */
    grace_seconds: z.number().int().min(1).max(86_400).optional(),
  })
  .strict();

export const RestartResponse = z.object({
  allocation_id: Uuid,
  state: z.literal('restarting'),
  epoch: Epoch,
  restart_deadline: Timestamp,
});

/**
 * The process that asked for a restart takes it back (its successor failed to boot) and keeps serving. Always
 * fenced: the epoch is required, so a process superseded since cannot withdraw its successor's restart.
 */
export const WithdrawRestartBody = z
  .object({
    epoch: Epoch,
    allocation_id: Uuid.optional(),
  })
  .strict();

export const WithdrawRestartResponse = z.object({
  allocation_id: Uuid,
  state: z.literal('active'),
  epoch: Epoch,
});

/**
 * Organization state snapshots (`/gateway/data/push`, `/gateway/data/pull`): the gateway's state of its
 * organization, kept by Ganymede across allocations. The paths and the top-level keys are the platform's
 * (`{organization_id, gateway_id, timestamp, data}`); `epoch` and `base_revision` are ours, and optional.
 *
 * Unlike every other body, these two are tolerant: unknown top-level keys are dropped, not refused. The
 * platform's gateways send these bodies as they always have, with whatever keys they add, and a gateway that
 * cannot push its state loses it; a key we do not know is stored nowhere (only `data` is kept, as given).
 */

/** The platform's timestamp, kept as it was sent: an ISO string or a number (milliseconds, as it happens). */
export const ClientTimestamp = z.union([z.string().max(256), z.number().finite()]);
/**
 * How deeply a snapshot's `data` may nest (arrays and objects in one another). JavaScript's JSON.stringify recurses,
 * and past a few thousand levels it throws: a state it could store but not serve back would be lost.
 */
export const MAX_DATA_DEPTH = 512;

/** True when `value` nests no more than `max` arrays and objects deep (checked without recursion). */
export function nestsWithin(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return false;
    for (const child of Array.isArray(v) ? (v as unknown[]) : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return true;
}

/** Any JSON value nested at most MAX_DATA_DEPTH deep; a body without `data` is refused (null is a value, a missing key is not). */
export const SnapshotData = z
  .custom<unknown>((v) => v !== undefined, { message: 'Required' })
  .refine((v) => nestsWithin(v, MAX_DATA_DEPTH), `nested deeper than ${MAX_DATA_DEPTH} levels`)
  .describe(`Any JSON value, nested at most ${MAX_DATA_DEPTH} arrays and objects deep.`);
/** A snapshot's revision: 1 for an organization's first push, then + 1 for each. */
export const Revision = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** `sha256:` and the hex SHA-256 of the JSON text of `data` (UTF-8), as Ganymede stored it. */
export const Checksum = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>');

export const DataPushBody = z.object({
  organization_id: Uuid,
  gateway_id: Uuid,
  timestamp: ClientTimestamp,
  data: SnapshotData,
  /** The pushing process's epoch: a stale one is refused (409 stale_epoch). Omitted by older gateways. */
  epoch: Epoch.optional(),
  /**
   * Compare-and-set: the revision this state was based on (0: nothing was pushed yet). Refused (409
   * revision_conflict) unless it is the latest. Omitted: the push is stored on top of whatever is there.
   */
  base_revision: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

/** What a stored snapshot is, without its content. */
const SnapshotMeta = {
  organization_id: Uuid,
  revision: Revision,
  /** The epoch the push was fenced by; null when it named none (an older gateway). */
  epoch: Epoch.nullable(),
  /** Bytes of the JSON text of `data` (UTF-8). */
  size: z.number().int().min(0),
  checksum: Checksum,
  stored_at: Timestamp,
};

export const DataPushResponse = z.object(SnapshotMeta);

export const DataPullBody = z.object({
  organization_id: Uuid,
  /** The platform's gateways send their own id; when given it must be the token's gateway. */
  gateway_id: Uuid.optional(),
});

/** The organization's latest snapshot: the platform's keys (the gateway that pushed it, its timestamp, data), and ours. */
export const DataPullResponse = z.object({
  ...SnapshotMeta,
  gateway_id: Uuid,
  timestamp: ClientTimestamp,
  data: SnapshotData,
});

export const AddGatewayBody = z.object({ url: HttpUrl }).strict();
export const AddGatewayResponse = z.object({ gateway_id: Uuid, token: z.string() });

export const PoolEntry = z.object({
  gateway_id: Uuid,
  url: HttpUrl,
  ready: z.boolean(),
  ready_at: Timestamp.nullable(),
  allocation_id: Uuid.nullable(),
  organization_id: Uuid.nullable(),
  state: z.enum(['idle', 'active', 'restarting']),
  epoch: Epoch.nullable(),
  restart_deadline: Timestamp.nullable(),
  since: Timestamp,
  /** Seconds since the gateway's lease was last granted, by the database's clock; null when it never held one. */
  lease_age_seconds: z.number().min(0).nullable(),
});
export type PoolEntry = z.infer<typeof PoolEntry>;
/** `lease_seconds`: the lease this server grants, the scale of `lease_age_seconds` (past it, the lease has lapsed). */
export const StatusResponse = z.object({ gateways: z.array(PoolEntry), lease_seconds: z.number().int().positive() });

export const AllocationEvent = z.object({
  kind: z.enum([
    'allocated',
    'restart_requested',
    'restart_withdrawn',
    'reclaimed',
    'stopped',
    'restart_timed_out',
    'rolled_back',
    'lease_expired',
    'crash_loop',
  ]),
  reason: z.string().nullable(),
  epoch: Epoch,
  at: Timestamp,
});
export type AllocationEvent = z.infer<typeof AllocationEvent>;

/** `/admin/events`: the pool's audit events after a cursor, oldest first (the dashboard's live feed). */
export const EVENTS_PAGE_MAX = 500;
/** Plain decimal digits only: `Number()` would also take hex, exponents, blanks and an empty string. */
const QueryInt = (max: number) =>
  z
    .string()
    .regex(/^(0|[1-9][0-9]{0,15})$/, 'must be a decimal integer')
    .transform(Number)
    .pipe(z.number().int().max(max));
export const EventsQuery = z
  .object({
    after: QueryInt(Number.MAX_SAFE_INTEGER).default('0'),
    limit: QueryInt(EVENTS_PAGE_MAX).pipe(z.number().min(1)).default('100'),
  })
  .strict();
export const PoolEvent = AllocationEvent.extend({
  id: z.number().int().positive(),
  allocation_id: Uuid,
  gateway_id: Uuid,
  organization_id: Uuid,
});
export type PoolEvent = z.infer<typeof PoolEvent>;
/** `last_id`: the cursor for the next call (`after`); the same as given when nothing happened since. */
export const EventsResponse = z.object({ events: z.array(PoolEvent), last_id: z.number().int().min(0) });
export const AllocationHistoryResponse = z.object({
  allocation_id: Uuid,
  gateway_id: Uuid,
  organization_id: Uuid,
  state: AllocationState,
  epoch: Epoch,
  ended_at: Timestamp.nullable(),
  ended_reason: EndedReason.nullable(),
  events: z.array(AllocationEvent),
});

// Operations: health, metrics, the API's own description (both apps serve health and metrics)

/** `/healthz`: the process answers. Nothing else is checked. */
export const Liveness = z.object({ status: z.literal('ok') });

/** Ganymede's readiness (`/readyz`): its database answers and its schema is at this code's version. */
export const Readiness = z.object({
  status: z.literal('ready'),
  database: z.enum(['pglite', 'postgres']),
  schema_version: z.number().int().min(0),
});

/** The media type of the Prometheus text exposition format, version 0.0.4 (prom-client's `contentType`). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** An OpenAPI 3 document (`/openapi.json`), generated from this contract (openapi.ts). */
export const OpenApiDocument = z
  .object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }).passthrough() })
  .passthrough();

// Gateway API

export const Whoami = z.object({
  gateway_id: Uuid,
  organization_id: Uuid.nullable(),
  allocation_id: Uuid.nullable(),
  epoch: Epoch.nullable(),
  pid: z.number().int().positive(),
  started_at: Timestamp,
});
export type Whoami = z.infer<typeof Whoami>;

/** The organization's traffic with a body (`POST /orgs/:organization_id/echo`): answered once all of it arrived. */
export const EchoBody = z.object({ data: z.string().max(60_000) }).strict();
export const EchoResponse = Whoami.extend({ data: z.string() });

export const Health = z.object({
  status: z.literal('ok'),
  serving: z.boolean(),
});

/** The gateway's readiness (`/readyz`): it serves its organization, or is idle and ready to be allocated. */
export const GatewayReadiness = z.object({
  status: z.literal('ready'),
  serving: z.boolean(),
});

export const AllocatedNotice = z.object({ allocation_id: Uuid }).strict();

/**
 * The platform's gateway (protocol v1) is told of an allocation as the platform's Ganymede told it: `GET /collab/ping`,
 * then `POST /collab/start` with `{}`, which it answers once it has read /gateway/config. Its answers are `{}`;
 * anything else it adds is tolerated (only the status is read).
 */
export const CollabStartBody = z.object({}).strict();
export const CollabAnswer = z.object({}).passthrough();

/**
 * The notice token: `Authorization: Bearer <JWT>` on Ganymede's `POST /allocated`, signed EdDSA (Ed25519) with a
 * key Ganymede derives from its signing key, verified by the gateway with /gateway/ready's `notice_key`. It binds
 * the notice to one gateway (`aud`) and one allocation (`sub`) and lives only as long as Ganymede waits for the
 * answer (plus a small margin). Other claims are tolerated.
 */
export const NOTICE_ALGORITHM = 'EdDSA';
export const NoticeClaims = z.object({
  typ: z.literal('notice'),
  iss: z.literal('ganymede'),
  aud: Uuid,
  sub: Uuid,
  iat: z.number().int(),
  exp: z.number().int(),
  nbf: z.number().int().optional(),
});
export type NoticeClaims = z.infer<typeof NoticeClaims>;
