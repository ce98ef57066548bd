/**
 * A raw TCP client for what no HTTP library sends: bytes trickled one at a time, broken framing, oversize
 * headers, a body that never ends. The answer is read from whatever arrives before the server closes.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  /** The status line's code; null when the server closed without answering. */
  status: number | null;
  /** The body parsed as JSON, when it is. */
  body: unknown;
  text: string;
}

export interface RawOptions {
  /** After `send`, write `data` every `everyMs` until the server closes the connection. */
  trickle?: { everyMs: number; data?: string };
  /** Fail (reject) if the server still holds the connection open after this long. */
  timeoutMs?: number;
  /** Half-close after `send`: the request's body ends early (an aborted upload). */
  end?: boolean;
  /** Called once the first bytes are written. */
  onSent?: () => void;
}

function parse(raw: string): RawAnswer {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  const text = raw.includes('\r\n\r\n') ? raw.slice(raw.indexOf('\r\n\r\n') + 4) : '';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: match ? Number(match[1]) : null, body, text };
}

/** Sends `send` to `baseUrl`'s host and port over a fresh connection; resolves when the server closes it. */
export function rawHttp(baseUrl: string, send: string | Buffer, options: RawOptions = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  const { trickle, timeoutMs = 30_000 } = options;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let ticker: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearInterval(ticker);
      socket.destroy();
      reject(new Error(`the server still held the connection open after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => {
      if (send.length) socket.write(send);
      if (options.end) socket.end();
      options.onSent?.();
      if (trickle) {
        ticker = setInterval(() => {
          if (socket.writable) socket.write(trickle.data ?? 'x');
        }, trickle.everyMs);
      }
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server resetting a connection it gave up on is an answer too: whatever arrived before it counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(ticker);
      clearTimeout(timer);
      resolve(parse(Buffer.concat(chunks).toString('utf8')));
    });
  });
}

/**
 * One request over a fresh connection, answered as soon as its answer is complete (by its Content-Length), then
 * the connection is closed: for requests that ask to keep it alive, as real clients' do.
 */
export function rawExchange(baseUrl: string, send: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(send));
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(parse(received.toString('utf8')));
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /^content-length:\s*(\d+)/im.exec(received.subarray(0, end).toString('latin1'));
      if (length && received.length - end - 4 >= Number(length[1])) finish();
    });
    socket.on('error', finish);
    socket.on('close', () => finish(new Error('the server closed the connection before a complete answer')));
  });
}
