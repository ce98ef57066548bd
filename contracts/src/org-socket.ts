/**
 * The organization's WebSocket on a gateway: `GET /orgs/:organization_id/socket` (ts-rest describes HTTP routes
 * only, so its shapes live here). On open the gateway sends `hello` with the process's Whoami; each text message
 * a client sends comes back as `echo`, stamped with the process and epoch that answered it. Refused before the
 * upgrade, with the contract's error body: 404 (not this organization), 503 (not serving, or handing over).
 *
 * Close codes: 1012 Service Restart (a hot restart: reconnect at once, the successor serves), 1001 Going Away
 * (the gateway stops), 1009 (a message over the size limit).
 */
import { z } from 'zod';
import { Epoch, Whoami } from './schemas.js';

export const ORG_SOCKET_PATH = '/orgs/:organization_id/socket';

export const orgSocketPath = (organizationId: string) => ORG_SOCKET_PATH.replace(':organization_id', organizationId);

/** Messages past this many bytes close the socket with 1009. */
export const ORG_SOCKET_MAX_BYTES = 64 * 1024;

/** 1013 Try Again Later: the process may not serve for now (its lease lapsed; README, Partitions). */
export const WS_CLOSE = { goingAway: 1001, tooBig: 1009, serviceRestart: 1012, tryAgainLater: 1013 } as const;

export const OrgSocketMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), whoami: Whoami }),
  z.object({ type: z.literal('echo'), pid: z.number().int().positive(), epoch: Epoch.nullable(), data: z.string() }),
]);
export type OrgSocketMessage = z.infer<typeof OrgSocketMessage>;
