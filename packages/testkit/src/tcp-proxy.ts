/**
 * A TCP proxy a test controls, to put a real network fault between two processes (a gateway and Ganymede,
 * Ganymede and PostgreSQL). Listens on loopback only and forwards to one loopback target.
 *
 *   pass        forward both ways
 *   blackhole   accept, forward nothing, send no reset: bytes are held, as a partitioned TCP path holds
 *               them (the sender retransmits), and delivered in order if the partition heals while the
 *               connection is still open; new connections reach the target only then
 *   slow        forward each chunk `delayMs` late, in order
 *   reset       reset every open connection (RST) and each new one at once
 *   cut-up      hold what the client sends (to the target); forward the rest
 *   cut-down    hold what the target sends (to the client); forward the rest
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'blackhole' | 'reset' | 'cut-up' | 'cut-down' | { slowMs: number };

export interface TcpProxy {
  /** `http://127.0.0.1:<port>`: what the client should call instead of the target. */
  url: string;
  port: number;
  mode(): ProxyMode;
  /** Changes how every connection, open or new, is treated from now on. */
  set(mode: ProxyMode): void;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

/** One direction of one connection: holds chunks while it may not deliver, delays them when slow. */
class Direction {
  private held: Buffer[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly to: () => Socket | null,
    private readonly blocked: () => boolean,
    private readonly delayMs: () => number,
  ) {}

  push(chunk: Buffer): void {
    this.held.push(chunk);
    this.flush();
  }

  /** Delivers what is held, in order, unless this direction is blocked now. */
  flush(): void {
    const to = this.to();
    if (!to || this.blocked() || this.held.length === 0) return;
    const chunks = this.held;
    this.held = [];
    const delay = this.delayMs();
    this.chain = this.chain.then(async () => {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      for (const chunk of chunks) if (!to.destroyed) to.write(chunk);
    });
  }
}

export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  let current: ProxyMode = 'pass';
  let accepted = 0;
  const open = new Set<{ client: Socket; upstream: Socket | null; flush(): void }>();
  const isBlackhole = () => current === 'blackhole';
  const slowMs = () => (typeof current === 'object' ? current.slowMs : 0);

  const server: Server = createServer((client) => {
    accepted++;
    if (current === 'reset') return void client.resetAndDestroy();
    const conn = { client, upstream: null as Socket | null, flush: () => undefined as void };
    const up = new Direction(
      () => conn.upstream,
      () => isBlackhole() || current === 'cut-up',
      slowMs,
    );
    const down = new Direction(
      () => client,
      () => isBlackhole() || current === 'cut-down',
      slowMs,
    );
    const connectUpstream = () => {
      if (conn.upstream || isBlackhole() || client.destroyed) return;
      const upstream = createConnection({ host, port: target.port });
      conn.upstream = upstream;
      upstream.on('data', (chunk: Buffer) => down.push(chunk));
      upstream.on('connect', () => up.flush());
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => client.end());
    };
    conn.flush = () => {
      connectUpstream();
      up.flush();
      down.flush();
    };
    open.add(conn);
    client.on('data', (chunk: Buffer) => up.push(chunk));
    client.on('error', () => conn.upstream?.destroy());
    client.on('close', () => {
      open.delete(conn);
      conn.upstream?.destroy();
    });
    connectUpstream();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    mode: () => current,
    set(mode) {
      current = mode;
      for (const conn of [...open]) {
        if (mode === 'reset') {
          conn.client.resetAndDestroy();
          conn.upstream?.resetAndDestroy();
        } else conn.flush();
      }
    },
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const conn of open) {
          conn.client.destroy();
          conn.upstream?.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
