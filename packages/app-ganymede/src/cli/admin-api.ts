/**
 * How an operators' command reaches Ganymede: the URL (and which flag or variable set it), the admin token (and
 * where it came from), and the translation of what can go wrong into an error that says what to do.
 */
import { resolve } from 'node:path';
import { ganymedeContract } from '@ganymede/contracts';
import { initClient, UnknownStatusError } from '@ts-rest/core';
import { KEY_FILE, readSigningKey, Tokens } from '../auth.js';
import { GanymedeError } from '../errors.js';

/** The options every operators' command takes. */
export const ADMIN_OPTIONS = {
  'ganymede-url': { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export interface AdminValues {
  'ganymede-url'?: string;
  'data-dir'?: string;
}

export const DEFAULT_URL = 'http://127.0.0.1:4000';
/** A call that takes longer than this is as good as unreachable for an operator at a terminal. */
const CALL_TIMEOUT_MS = 10_000;

export interface Target {
  url: string;
  /** Which flag or variable set it, for the error that says how to change it. */
  source: string;
}

export function target(values: AdminValues, env: NodeJS.ProcessEnv): Target {
  if (values['ganymede-url']) return { url: values['ganymede-url'], source: '--ganymede-url' };
  if (env.GANYMEDE_URL) return { url: env.GANYMEDE_URL, source: 'GANYMEDE_URL' };
  // On the server's own machine, its own settings say where it listens.
  if (env.GANYMEDE_PORT || env.GANYMEDE_HOST) {
    return {
      url: `http://${env.GANYMEDE_HOST ?? '127.0.0.1'}:${env.GANYMEDE_PORT ?? '4000'}`,
      source: "the server's GANYMEDE_HOST and GANYMEDE_PORT",
    };
  }
  return { url: DEFAULT_URL, source: 'the default: neither --ganymede-url nor GANYMEDE_URL is set' };
}

export interface Credential {
  token: string;
  /** Where the token came from, and what to do when the server refuses it. */
  origin: string;
  remedy: string;
}

// `||`: a variable set but empty means the default, as for the other variables.
const dataDirOf = (values: AdminValues, env: NodeJS.ProcessEnv) => values['data-dir'] || env.GANYMEDE_DATA_DIR || '.ganymede';

/** The signing key, read (never created) from GANYMEDE_SIGNING_KEY or the data directory, with where it was. */
export async function signingKey(values: AdminValues, env: NodeJS.ProcessEnv): Promise<{ tokens: Tokens; origin: string }> {
  const dir = dataDirOf(values, env);
  const key = await readSigningKey(env.GANYMEDE_SIGNING_KEY, dir);
  const origin = env.GANYMEDE_SIGNING_KEY ? 'the key in GANYMEDE_SIGNING_KEY' : `the key in ${resolve(dir, KEY_FILE)}`;
  return { tokens: new Tokens(key), origin };
}

/** GANYMEDE_ADMIN_TOKEN as given (another machine needs no key), else one minted from the signing key. */
export async function adminCredential(values: AdminValues, env: NodeJS.ProcessEnv): Promise<Credential> {
  if (env.GANYMEDE_ADMIN_TOKEN) {
    return {
      token: env.GANYMEDE_ADMIN_TOKEN,
      origin: 'the token in GANYMEDE_ADMIN_TOKEN',
      remedy: 'it may have expired or come from another server: mint a new one with `ganymede token admin` where the server keeps its data',
    };
  }
  const { tokens, origin } = await signingKey(values, env);
  return {
    token: await tokens.sign({ typ: 'admin', sub: 'cli' }),
    origin: `a token signed with ${origin}`,
    remedy:
      "that is not the server's key: give the server's data directory with --data-dir or GANYMEDE_DATA_DIR, set its key in " +
      'GANYMEDE_SIGNING_KEY, or set GANYMEDE_ADMIN_TOKEN to a token from `ganymede token admin`',
  };
}

export type AdminClient = ReturnType<typeof initClient<typeof ganymedeContract, { baseUrl: string; throwOnUnknownStatus: true }>>;

/** The error a failed call becomes: unreachable, or an answer this command cannot use. */
function translate(error: unknown, where: Target): unknown {
  if (error instanceof UnknownStatusError) {
    return new GanymedeError(
      'GANYMEDE_ANSWER',
      `${where.url} answered ${error.response.status}: is it Ganymede? (set by ${where.source})`,
      {
        cause: error,
      },
    );
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const timedOut = (error as Error).name === 'TimeoutError';
  if (timedOut || (error instanceof TypeError && error.message === 'fetch failed')) {
    const why = timedOut ? `no answer within ${CALL_TIMEOUT_MS / 1000} s` : (cause?.code ?? cause?.message ?? 'fetch failed');
    return new GanymedeError(
      'GANYMEDE_UNREACHABLE',
      `cannot reach Ganymede at ${where.url} (${why}); the URL came from ${where.source}. ` +
        'Is the server running there? Point this command at it with --ganymede-url URL or GANYMEDE_URL',
      { cause: error },
    );
  }
  return error;
}

/**
 * Runs one call of the admin API: unreachable and unknown answers become errors that say what to do, a 401 or 403
 * says which token was refused and how to give another. Answers the 2xx body.
 */
export async function adminCall<T extends { status: number; body: unknown }>(
  where: Target,
  credential: Credential,
  call: (client: AdminClient, args: { headers: { authorization: string }; fetchOptions: { signal: AbortSignal } }) => Promise<T>,
): Promise<Extract<T, { status: 200 | 201 }>['body']> {
  const client = initClient(ganymedeContract, { baseUrl: where.url, throwOnUnknownStatus: true });
  let res: T;
  try {
    res = await call(client, {
      headers: { authorization: `Bearer ${credential.token}` },
      fetchOptions: { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) },
    });
  } catch (error) {
    throw translate(error, where);
  }
  if (res.status === 200 || res.status === 201) return res.body;
  const body = res.body as { error?: string; message?: string };
  if (res.status === 401 || res.status === 403) {
    throw new GanymedeError(
      'ADMIN_TOKEN_REFUSED',
      `Ganymede at ${where.url} refused ${credential.origin} (${res.status} ${body.error}: ${body.message}); ${credential.remedy}`,
    );
  }
  throw new GanymedeError('GANYMEDE_ANSWER', `Ganymede at ${where.url} answered ${res.status} ${body.error}: ${body.message}`);
}
