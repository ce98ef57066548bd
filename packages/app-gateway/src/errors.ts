/**
 * The gateway's exit codes and error classes, in one place.
 * Every error carries a stable `code`; wrapped failures keep theirs in `cause`. The README lists every code (a test
 * checks it).
 */
import { type AppRoute, ResponseValidationError } from '@ts-rest/core';

/** Process exit codes. The supervisor acts on them: 75 restart now, 0 stopped for good, anything else a crash. */
export const EXIT_CODES = {
  /** Stopped for good (a stop reason): the supervisor exits too. */
  stopped: 0,
  /** Crashed or could not boot (Ganymede unreachable past the boot budget, refused token): restart with backoff. */
  failed: 1,
  /** Invalid configuration or usage: restarting cannot help, the supervisor gives up too. */
  config: 2,
  /** Shut down for a restart reason (EX_TEMPFAIL): the supervisor restarts at once. */
  restart: 75,
} as const;
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

export const ERROR_CODES = {
  GATEWAY_CONFIG_INVALID: 'configuration from the environment or flags is invalid',
  GANYMEDE_TIMEOUT: 'a call to Ganymede did not complete within its timeout',
  GANYMEDE_BAD_ANSWER: 'Ganymede answered with a declared status this caller cannot act on (a 401, a 500, ...)',
  GANYMEDE_INVALID_JSON: "Ganymede's answer claimed JSON but did not parse",
  RETRY_GAVE_UP: 'a retried call kept failing past its time budget',
  GANYMEDE_INVALID_ANSWER: 'Ganymede answered a declared status with a body off the contract (a 404 from a server without the route)',
  BOOT_FAILED: 'the gateway could not settle its allocation with Ganymede',
  GATEWAY_USAGE: 'a bad command or argument on the command line (exit 2)',
  SUPERVISOR_RUNNING: 'a supervisor already runs for this run directory',
  NO_SUPERVISOR: '`gateway reload` or `gateway stop` found no live supervisor for the run directory',
  LISTEN_FAILED: "the supervisor could not bind the gateway's listening socket (port taken, no permission)",
  SIGNAL_HANDLERS_INSTALLED: "the process's signal handlers were installed twice (a bug)",
} as const;
export type GatewayErrorCode = keyof typeof ERROR_CODES;

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class ConfigError extends GatewayError {
  constructor(message: string) {
    super('GATEWAY_CONFIG_INVALID', message);
  }
}

export class GanymedeTimeoutError extends GatewayError {
  constructor(what: string, timeoutMs: number, cause?: unknown) {
    super('GANYMEDE_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`, { cause });
  }
}

/** A declared status the caller has no use for. 5xx ones are worth retrying. */
export class GanymedeAnswerError extends GatewayError {
  readonly status: number;
  readonly body: unknown;
  constructor(what: string, answer: { status: number; body: unknown }) {
    const detail = (answer.body as { error?: unknown; message?: unknown } | null | undefined) ?? {};
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    super('GANYMEDE_BAD_ANSWER', `${what}: Ganymede answered ${answer.status} ${text(detail.error)} ${text(detail.message)}`.trim());
    this.status = answer.status;
    this.body = answer.body;
  }
}

export class UsageError extends GatewayError {
  constructor(message: string) {
    super('GATEWAY_USAGE', message);
  }
}

export class SupervisorAlreadyRunningError extends GatewayError {
  constructor(
    readonly pid: number,
    runDir: string,
  ) {
    super('SUPERVISOR_RUNNING', `a supervisor (pid ${pid}) already runs for ${runDir}`);
  }
}

/**
 * A declared status whose body is off the contract (e.g. a 404 from a server without the route). A ts-rest
 * `ResponseValidationError`, so it cannot extend GatewayError; it carries a code all the same.
 */
export class InvalidAnswerError extends ResponseValidationError {
  readonly code: GatewayErrorCode = 'GANYMEDE_INVALID_ANSWER';
  readonly status: number;
  readonly body: unknown;
  constructor(route: AppRoute, cause: ResponseValidationError, answer: { status: number; body: unknown }) {
    super(route, cause.cause);
    // Kept, but out of logged errors: a route's zod schemas serialize to kilobytes of internals (and once a schema
    // has parsed, its cached shape, error messages included).
    Object.defineProperty(this, 'appRoute', { enumerable: false });
    this.name = 'InvalidAnswerError';
    this.status = answer.status;
    this.body = answer.body;
  }
}
