/**
 * What `gateway supervise` and its children say to each other over their IPC channel during a hot restart.
 *
 *   supervisor → current child   prepare {reason}   call /gateway/restart, keep serving           → prepared
 *   supervisor → successor       (started)          settle with Ganymede, accept nothing yet      → ready
 *   supervisor → current child   drain              stop accepting, close sessions, snapshot,     → draining {state}
 *                                                   finish what is open, exit 75
 *   supervisor → successor       accept {state}     restore the state, accept on the shared socket → accepting
 *   supervisor → current child   withdraw           the successor failed: withdraw the restart    → withdrawn
 *
 * The first child of a supervisor gets `accept` as soon as it says `ready`; a crash restart too.
 */
import type { RestartReason } from '@ganymede/contracts';

/**
 * `state`: the old process's final snapshot, handed to the successor before it accepts. The channel uses Node's
 * advanced serialization (structured clone), so the bytes travel as they are: no base64, no JSON text of a
 * document's size parsed twice on the way (the supervisor's and the successor's event loops).
 */
export type ToChild =
  { type: 'prepare'; reason: RestartReason } | { type: 'drain' } | { type: 'accept'; state?: Uint8Array } | { type: 'withdraw' };

export type FromChild =
  | { type: 'prepared' }
  | { type: 'ready' }
  | { type: 'draining'; state?: Uint8Array }
  | { type: 'accepting'; port: number }
  | { type: 'withdrawn'; epoch: number | null };

const CHILD_TYPES = new Set(['prepared', 'ready', 'draining', 'accepting', 'withdrawn']);
const SUPERVISOR_TYPES = new Set(['prepare', 'drain', 'accept', 'withdraw']);

const typed = (message: unknown, types: Set<string>): boolean =>
  typeof message === 'object' && message !== null && types.has((message as { type?: unknown }).type as string);

export const isFromChild = (message: unknown): message is FromChild => typed(message, CHILD_TYPES);
export const isToChild = (message: unknown): message is ToChild => typed(message, SUPERVISOR_TYPES);

/** The IPC channel's serialization (both ends: the supervisor spawns with it, Node sets it up in the child). */
export const IPC_SERIALIZATION = 'advanced';

/** Set by the supervisor in a child's environment: the child is a successor started for a hot restart. */
export const SUCCESSOR_ENV = 'GATEWAY_SUCCESSOR';
