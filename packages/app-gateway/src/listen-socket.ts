/**
 * The supervisor's listening socket: bound once, outliving every gateway process it starts.
 *
 * Each child gets the descriptor (as fd 3, LISTEN_FDS style) and accepts on it; the supervisor keeps its own copy
 * but never accepts. So the socket stays open while no child accepts (a crash, the instant of a takeover), and a
 * connection arriving then waits in the kernel's backlog instead of being refused.
 *
 * Node 20 has no public way to hold a socket without accepting on it: a listening `net.Server` accepts, and
 * `reusePort` came only in 22.12. `net._createServerHandle` is what `node:cluster`'s primary uses for exactly this
 * (SCHED_NONE: the primary binds, the workers accept); it binds without listening. The first child's `listen()`
 * puts the shared socket in the listening state, and it stays so while any copy is open.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { GatewayError } from './errors.js';

/** The descriptor number a child finds the socket at. */
export const CHILD_LISTEN_FD = 3;

interface ServerHandle {
  readonly fd: number;
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: 4 | 6) => ServerHandle | number;

export interface ListenSocket {
  fd: number;
  host: string;
  port: number;
  close(): void;
}

/** Binds `host:port` (port 0: the kernel picks one, which `port` then tells). */
export async function bindListenSocket(host: string, port: number): Promise<ListenSocket> {
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof create !== 'function') {
    throw new GatewayError('LISTEN_FAILED', `this Node.js (${process.version}) cannot hold a listening socket for its children`);
  }
  const address = net.isIP(host) ? host : (await lookup(host)).address;
  const handle = create(address, port, net.isIPv6(address) ? 6 : 4);
  if (typeof handle === 'number') {
    throw new GatewayError('LISTEN_FAILED', `cannot bind ${host}:${port}: ${getSystemErrorName(handle)}`);
  }
  const bound: { port?: number } = {};
  handle.getsockname(bound);
  return { fd: handle.fd, host, port: bound.port ?? port, close: () => handle.close() };
}
