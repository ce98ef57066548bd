/**
 * Attack suite, slow and malformed clients, against the server both apps run: every client that sends too slowly,
 * too much, or nonsense is answered on the contract (`{error, message}`, a declared status) and its connection is
 * closed, while running and at shutdown. Timeouts are shortened here; the defaults are in `DEFAULT_HTTP_TIMEOUTS`.
 */
import { ERROR_CODES } from '@ganymede/contracts';
import { rawHttp } from '@ganymede/testkit/raw-http';
import { initContract } from '@ts-rest/core';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { closeWithin, createServer, MAX_HEADER_BYTES } from '../src/index.js';

const Error = z.object({ error: z.enum(ERROR_CODES), message: z.string() });
const contract = initContract().router(
  {
    echo: {
      method: 'POST',
      path: '/echo',
      body: z.object({ text: z.string() }).strict(),
      responses: { 200: z.object({ text: z.string() }), 400: Error },
    },
    slow: {
      method: 'POST',
      path: '/slow',
      body: z.object({}).strict(),
      responses: { 200: z.object({ done: z.boolean() }) },
    },
  },
  { strictStatusCodes: true },
);

const TIMEOUTS = { headersMs: 400, requestMs: 800 };
const servers: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of servers.splice(0)) await closeWithin(app, 100);
});

/** A server whose `/slow` answers only when `release()` is called. */
async function serve() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const slowEntered = new Promise<void>((resolve) => (entered = resolve));
  const app = createServer(
    contract,
    {
      echo: async ({ body }) => ({ status: 200, body }),
      slow: async () => {
        entered();
        await released;
        return { status: 200, body: { done: true } };
      },
    },
    { logger: false, timeouts: TIMEOUTS },
  );
  servers.push(app);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url, release, slowEntered };
}

const post = (path: string, body: string, headers = '') =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`;

function expectError(answer: { status: number | null; body: unknown }, status: number, code: string) {
  expect(answer.status, JSON.stringify(answer)).toBe(status);
  expect(Error.strict().parse(answer.body).error).toBe(code);
}

describe('slow clients are cut off while running', () => {
  it('headers trickled a byte at a time: 408 request_timeout, connection closed', async () => {
    const { url } = await serve();
    const answer = await rawHttp(url, 'POST /echo HTTP/1.1\r\nHost: t\r\nX-Slow: ', { trickle: { everyMs: 50 }, timeoutMs: 10_000 });
    expectError(answer, 408, 'request_timeout');
  });

  it('a connection that never sends a byte: 408 request_timeout, connection closed', async () => {
    const { url } = await serve();
    expectError(await rawHttp(url, '', { timeoutMs: 10_000 }), 408, 'request_timeout');
  });

  it('a body trickled a byte at a time: 408 request_timeout, connection closed', async () => {
    const { url } = await serve();
    const head = 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"text":"';
    const answer = await rawHttp(url, head, { trickle: { everyMs: 50, data: 'a' }, timeoutMs: 10_000 });
    expectError(answer, 408, 'request_timeout');
  });

  it('the server keeps answering others while slow clients are cut off', async () => {
    const { url } = await serve();
    const slow = Array.from({ length: 20 }, () =>
      rawHttp(url, 'POST /echo HTTP/1.1\r\nX: ', { trickle: { everyMs: 100 }, timeoutMs: 10_000 }),
    );
    const quick = await rawHttp(url, post('/echo', '{"text":"hi"}', 'Connection: close\r\n'));
    expect(quick).toMatchObject({ status: 200, body: { text: 'hi' } });
    for (const answer of await Promise.all(slow)) expectError(answer, 408, 'request_timeout');
  });
});

describe("transport-level errors answer the contract's error body with a stable code", () => {
  it.each([
    ['headers over the limit', 431, 'headers_too_large', post('/echo', '{"text":"a"}', `X-Pad: ${'p'.repeat(MAX_HEADER_BYTES)}\r\n`)],
    ['a URL over the limit', 431, 'headers_too_large', `GET /${'u'.repeat(MAX_HEADER_BYTES)} HTTP/1.1\r\nHost: t\r\n\r\n`],
    [
      'a malformed chunk size',
      400,
      'bad_request',
      'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ],
    ['a content length that is not a number', 400, 'bad_request', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n'],
    ['two content lengths', 400, 'bad_request', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}'],
    ['a request line that is not HTTP', 400, 'bad_request', 'HELLO THERE\r\n\r\n'],
  ])('%s: %i %s', async (_name, status, code, request) => {
    const { url } = await serve();
    expectError(await rawHttp(url, request, { timeoutMs: 10_000 }), status, code);
  });

  it('headers just under the limit are served (a large bearer token fits)', async () => {
    const { url } = await serve();
    const pad = 'p'.repeat(MAX_HEADER_BYTES - 1024);
    const answer = await rawHttp(url, post('/echo', '{"text":"a"}', `Authorization: Bearer ${pad}\r\nConnection: close\r\n`));
    expect(answer).toMatchObject({ status: 200, body: { text: 'a' } });
  });

  it('a body that ends before its content length is answered 400 on the contract, and the server goes on', async () => {
    const { url } = await serve();
    const head = 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"text":';
    expectError(await rawHttp(url, head, { end: true, timeoutMs: 10_000 }), 400, 'bad_request');
    expect(await rawHttp(url, post('/echo', '{"text":"next"}', 'Connection: close\r\n'))).toMatchObject({ status: 200 });
  });
});

describe('closeWithin: a shutdown has a hard deadline', () => {
  it('a trickling client does not hold the close open: its connection is destroyed at the deadline', async () => {
    // Timeouts far past the deadline, so only the deadline can end this client.
    const app = createServer(
      contract,
      { echo: async ({ body }) => ({ status: 200, body }), slow: async () => ({ status: 200, body: { done: true } }) },
      {
        logger: false,
        timeouts: { headersMs: 60_000, requestMs: 60_000 },
      },
    );
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const trickler = rawHttp(url, 'POST /echo HTTP/1.1\r\nX: ', { trickle: { everyMs: 50 }, timeoutMs: 30_000 });
    await new Promise<void>((resolve) => app.server.once('connection', () => resolve()));
    expect(await closeWithin(app, 300)).toBe(true);
    expect((await trickler).status).toBeNull();
  });

  it('a request in flight finishes within the deadline and is answered', async () => {
    const { app, url, release, slowEntered } = await serve();
    const inFlight = rawHttp(url, post('/slow', '{}'), { timeoutMs: 10_000 });
    await slowEntered;
    const closed = closeWithin(app, 10_000);
    release();
    expect(await closed).toBe(false);
    expect(await inFlight).toMatchObject({ status: 200, body: { done: true } });
  });
});
