/**
 * Ganymede's errors, in one place (in the spirit of fastify's lib/errors.js). Every error it raises on purpose
 * has a class here with a stable `code` from ERROR_CODES; the README lists every code (a test checks it). The
 * codes on the wire, in answers' `error` field, are the contract's own (`ERROR_CODES` in @ganymede/contracts).
 */

export const ERROR_CODES = {
  GANYMEDE_USAGE: 'a bad flag, value or command on the command line (exit 2)',
  DATA_DIR_LOCKED: 'another ganymede holds the embedded database directory',
  SIGNING_KEY_MISSING: "an operators' command found no signing key: not the server's data directory",
  SIGNING_KEY_INVALID: 'the configured signing key is shorter than 32 bytes',
  TOKEN_INVALID: 'a bearer token failed verification (signature, expiry, issuer, algorithm): 401',
  TOKEN_CLAIMS_INVALID: 'a bearer token verified, but its claims are off the schema: 401',
  TOKEN_TTL_INVALID: "a token's life is not a number and s, m, h or d",
  SCHEMA_TOO_NEW: 'the database was migrated by newer code',
  SCHEMA_NAME_INVALID: 'the PostgreSQL schema name is not lower-case letters, digits and _',
  DATABASE_UNREACHABLE: 'PostgreSQL did not accept a connection at start',
  GANYMEDE_ANSWER: "an operators' command got an answer it cannot use from the server",
  GANYMEDE_UNREACHABLE: "an operators' command could not reach the server at its URL (exit 3)",
  ADMIN_TOKEN_REFUSED: "the server refused an operators' command's admin token: another signing key, or expired (exit 4)",
  USER_TOKEN_TOO_LARGE: 'a user token would not fit the header limit (about 1,200 organizations)',
  LEASE_MARGINS_UNSAFE: 'the lease, grace, renew deadline and clock drift settings cannot guarantee that a cut-off gateway stops first',
} as const;
export type GanymedeErrorCode = keyof typeof ERROR_CODES;

export class GanymedeError extends Error {
  readonly code: GanymedeErrorCode;
  constructor(code: GanymedeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class UsageError extends GanymedeError {
  constructor(message: string) {
    super('GANYMEDE_USAGE', message);
  }
}

/** Settings refused at start (lease-margins.ts): they would let two processes serve one organization. */
export class UnsafeLeaseMarginsError extends GanymedeError {
  constructor(message: string) {
    super('LEASE_MARGINS_UNSAFE', message);
  }
}

export class DataDirLockedError extends GanymedeError {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | null,
  ) {
    super(
      'DATA_DIR_LOCKED',
      `the data directory ${dataDir} is in use by another ganymede (pid ${holderPid ?? 'unknown'}); ` +
        'stop it first, or give this one another --data-dir',
    );
  }
}

/** A token that does not verify, or (`TOKEN_CLAIMS_INVALID`) verifies with claims off the schema. Never holds the token. */
export class InvalidTokenError extends GanymedeError {
  constructor(code: 'TOKEN_INVALID' | 'TOKEN_CLAIMS_INVALID', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class SchemaTooNewError extends GanymedeError {
  constructor(
    readonly databaseVersion: number,
    readonly codeVersion: number,
  ) {
    super(
      'SCHEMA_TOO_NEW',
      `the database schema is at version ${databaseVersion}, newer than this code's ${codeVersion}: upgrade Ganymede`,
    );
  }
}

/** PostgreSQL error codes (SQLSTATE) this code reacts to, named once. */
export const PG_ERRORS = {
  uniqueViolation: '23505',
  duplicateSchema: '42P06',
  deadlockDetected: '40P01',
  undefinedTable: '42P01',
} as const;
