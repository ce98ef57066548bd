/**
 * The Fastify + ts-rest server both apps run: request and response validation on, and every error,
 * whoever raised it (ts-rest, Fastify's body parser, a handler bug), answered with the contract's
 * one error body `{ error, message }`.
 */
import { STATUS_CODES } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { ErrorBody } from '@ganymede/contracts';
import { type AppRoute, type AppRouter, ResponseValidationError } from '@ts-rest/core';
import { initServer, RequestValidationError, type RouterImplementation } from '@ts-rest/fastify';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { ZodError } from 'zod';

/** Secrets never reach the logs, whatever object a log line happens to carry. */
export const LOG_REDACT = {
  paths: [
    'req.headers.authorization',
    'headers.authorization',
    'authorization',
    'token',
    '*.token',
    'organization_token',
    '*.organization_token',
    // A logged error keeps the answer it was about (`err.body`, `err.response.body`): tokens in it stay out.
    '*.*.token',
    '*.*.organization_token',
    '*.*.*.token',
    '*.*.*.organization_token',
    'signingKey',
  ],
  censor: '[redacted]',
};

/** Bodies past this many bytes are refused with 413 before any handler runs (unless a route has its own limit). */
export const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Request line plus headers past this many bytes answer 431 (Node's default is 16 KiB). Raised deliberately:
 * a user token lists the user's organizations (about 52 bytes each once encoded), and a user of 1,000
 * organizations must still be able to call `/gateway/start`. 64 KiB matches the body limit.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

/**
 * How long a client may take, so that no slow or silent client holds a connection (or a shutdown) open.
 * Node's checks run every `connectionsCheckingInterval`, derived from `headersMs` so a limit is late by at most
 * a quarter of itself.
 */
export interface HttpTimeouts {
  /** From connecting (or the previous answer) to the end of the headers: slowloris, a silent socket. 408. */
  headersMs: number;
  /** From the first byte to the end of the body: a trickled body. 408. Not the handler's time. */
  requestMs: number;
  /** An idle keep-alive connection is closed after this; above common load balancers' 60 s idle timeout. */
  keepAliveMs: number;
  /** A socket with no traffic either way for this long is destroyed, whatever it is doing. */
  idleSocketMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 72_000,
  // Longer than the longest handler (a /gateway/start trying several unreachable gateways in turn).
  idleSocketMs: 120_000,
};

export interface ServerOptions {
  logger: FastifyBaseLogger | false;
  timeouts?: Partial<HttpTimeouts>;
  /**
   * Routes of the contract that take larger (or smaller) bodies than BODY_LIMIT_BYTES, with their own limit in
   * bytes. Past it, 413 before the handler runs, as for any other route.
   */
  bodyLimits?: ReadonlyMap<AppRoute, number>;
}

/**
 * One line per zod issue. A body that matches no member of a union (a route taking either protocol's body) is
 * described by the member it came closest to (fewest issues), not by zod's bare "Invalid input".
 */
function describeZod(where: string, error: ZodError | null): string[] {
  return (error?.issues ?? []).flatMap((i) => {
    if (i.code === 'invalid_union' && i.unionErrors.length > 0) {
      const closest = i.unionErrors.reduce((a, b) => (b.issues.length < a.issues.length ? b : a));
      return describeZod([where, ...i.path].join('.'), closest);
    }
    return [`${[where, ...i.path].join('.')}: ${i.message}`];
  });
}

const errorCodeFor = (status: number): ErrorBody['error'] =>
  status === 401
    ? 'unauthorized'
    : status === 403
      ? 'forbidden'
      : status === 404
        ? 'not_found'
        : status === 413
          ? 'payload_too_large'
          : status === 415
            ? 'unsupported_media_type'
            : status === 408
              ? 'request_timeout'
              : status === 431
                ? 'headers_too_large'
                : 'bad_request';

/**
 * Errors Node's HTTP parser raises before any request exists (Fastify's default answers them off the contract):
 * the status and the contract's error body. The parser's own code (HPE_INVALID_CHUNK_SIZE, …) is in the message.
 */
export function clientErrorReply(error: NodeJS.ErrnoException): { status: number; body: ErrorBody } {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, body: { error: 'request_timeout', message: 'the request was not received in time' } };
  }
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      body: { error: 'headers_too_large', message: `the request line and headers exceed ${MAX_HEADER_BYTES} bytes` },
    };
  }
  return { status: 400, body: { error: 'bad_request', message: `malformed HTTP request (${error.code ?? 'parse error'})` } };
}

function answerClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, body } = clientErrorReply(error);
  this.log.debug({ err: error, status }, 'client error');
  if (socket.writable) {
    const json = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  }
  socket.destroy();
}

/** Maps any error thrown before or around a handler to a status and the contract's error body. */
export function errorReply(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof RequestValidationError) {
    // A missing or malformed Authorization header is an authentication failure, not a shape one.
    const authOnly = !error.body && !error.pathParams && !error.query && error.headers?.issues.every((i) => i.path[0] === 'authorization');
    if (authOnly) return { status: 401, body: { error: 'unauthorized', message: 'missing or malformed bearer token' } };
    const messages = [
      ...describeZod('params', error.pathParams),
      ...describeZod('headers', error.headers),
      ...describeZod('query', error.query),
      ...describeZod('body', error.body),
    ];
    return { status: 400, body: { error: 'bad_request', message: messages.join('; ').slice(0, 1000) } };
  }
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (!(error instanceof ResponseValidationError) && typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { error: errorCodeFor(status), message: String((error as Error).message).slice(0, 1000) } };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error' } };
}

/**
 * Fastify's lines per request, incoming and completed, at debug: at info each transition has its own line, and
 * those two lines cost a call more CPU than its SQL statement (BENCHMARKS.md). A refused request (4xx) still gets
 * its completed line at info, and a failed one at error; each is written after its answer was sent.
 */
class RequestLines extends LogController {
  override incomingRequest(request: FastifyRequest) {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply) {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else if (reply.statusCode >= 400) reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

export function createServer<T extends AppRouter>(contract: T, router: RouterImplementation<T>, options: ServerOptions): FastifyInstance {
  const timeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...options.timeouts };
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    logController: new RequestLines(),
    bodyLimit: BODY_LIMIT_BYTES,
    http: {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: timeouts.headersMs,
      connectionsCheckingInterval: Math.max(10, Math.floor(timeouts.headersMs / 4)),
    },
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.idleSocketMs,
    clientErrorHandler: answerClientError,
    // Refuse `__proto__` and `constructor.prototype` keys outright rather than strip them.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // While closing, requests on open connections are still answered: in flight work finishes.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // A URL the router cannot take (bad percent-encoding, a path parameter past its maximum length) is bad
    // input like any other: without this, Fastify answers it with its own body (and a 414 no route declares).
    frameworkErrors: (error, _request, reply) => {
      const body: ErrorBody = { error: 'bad_request', message: String(error.message).slice(0, 1000) };
      (reply as unknown as FastifyReply).status(400).send(body);
    },
  }) as unknown as FastifyInstance;
  // Fastify parses text/plain by default; the contract takes JSON only, so that is a 415 like any other type.
  app.removeContentTypeParser('text/plain');
  // Once closing or draining, answers in flight end their connection: a keep-alive socket would hold close() open.
  app.addHook('preClose', async () => {
    windingDown.add(app);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (windingDown.has(app)) reply.header('connection', 'close');
  });
  // ts-rest registers each route with its contract route in `config.tsRestRoute`: that is how a route is found.
  const bodyLimits = options.bodyLimits;
  if (bodyLimits?.size) {
    app.addHook('onRoute', (routeOptions) => {
      const config = (routeOptions.config ?? {}) as { tsRestRoute?: AppRoute };
      const limit = config.tsRestRoute && bodyLimits.get(config.tsRestRoute);
      if (limit !== undefined) routeOptions.bodyLimit = limit;
    });
  }
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = errorReply(error);
    // Fastify's own message names no number; the limit is the route's.
    if (status === 413) body.message = `request body is larger than ${request.routeOptions.bodyLimit ?? BODY_LIMIT_BYTES} bytes`;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.status(status).send(body);
  });
  // In a child scope: ts-rest sets its own error handler there, which passes what it does not handle up to ours.
  app.register(async (scope) => {
    initServer().registerRouter(contract, router, scope, {
      logInitialization: false,
      jsonQuery: false,
      responseValidation: true,
      requestValidationErrorHandler: (error, _request, reply) => {
        const { status, body } = errorReply(error);
        void reply.status(status).send(body);
      },
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.slice(0, 200)}` }),
  );
  return app;
}

/** Servers closing or draining: every answer they send from then on ends its connection. */
const windingDown = new WeakSet<FastifyInstance>();

export interface DrainOptions {
  /**
   * An idle keep-alive connection is closed only after this long. Closing it at once races a client that is just
   * sending its next request on it (ECONNRESET, nodejs/node#60617); a busy one is closed by its answer instead.
   */
  idleGraceMs: number;
  /** Past this, whatever is still open (a trickling client, a hung handler, a WebSocket) is destroyed. */
  deadlineMs: number;
}

/**
 * Hands the server's traffic to another process that shares its listening socket: stops accepting at once (the
 * socket stays open in the other processes, so nothing is refused), answers what is in flight with
 * `Connection: close`, closes connections left idle past the grace, and resolves when every connection is gone or
 * at the deadline (then `forced`). Unlike `app.close()`, it does not close idle connections at once. WebSockets are
 * the caller's: close them after calling this; they count as open connections until they end.
 */
export function drain(app: FastifyInstance, { idleGraceMs, deadlineMs }: DrainOptions): Promise<{ forced: boolean }> {
  windingDown.add(app);
  return new Promise((resolve) => {
    const finish = (forced: boolean) => {
      clearInterval(sweep);
      clearTimeout(deadline);
      resolve({ forced });
    };
    // net.Server's close, not http.Server's: the latter also closes every idle connection at once.
    NetServer.prototype.close.call(app.server, () => finish(false));
    const sweep = setInterval(() => app.server.closeIdleConnections(), idleGraceMs);
    const deadline = setTimeout(() => {
      app.server.closeAllConnections();
      finish(true);
    }, deadlineMs);
  });
}

/**
 * Closes the server: no new connections; requests in flight get up to `deadlineMs` to finish; then every
 * connection left (a trickling client, a handler that hangs) is destroyed. Node stops enforcing its request
 * timeouts once closing, so without this one slow client holds a shutdown open forever. Answers whether it forced.
 */
export async function closeWithin(app: FastifyInstance, deadlineMs: number): Promise<boolean> {
  let forced = false;
  const timer = setTimeout(() => {
    forced = true;
    app.server.closeAllConnections();
  }, deadlineMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
  return forced;
}
