/**
 * Bounded exponential backoff with full jitter (delay = random(0, min(cap, base * 2^attempt))), for the
 * boot calls to Ganymede: transient failures (network errors, timeouts, 5xx) are retried until a total
 * time budget is spent; anything else fails at once.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { UnknownStatusError } from '@ts-rest/core';
import { GanymedeAnswerError, GanymedeTimeoutError, GatewayError } from './errors.js';

export interface BackoffOptions {
  /** First delay ceiling. */
  baseMs: number;
  /** Largest delay ceiling. */
  capMs: number;
}

export interface RetryOptions extends Partial<BackoffOptions> {
  /** Give up once the next attempt would start later than this many ms after the first one. */
  totalMs?: number;
  signal?: AbortSignal;
  isRetryable?: (error: unknown) => boolean;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  /** For tests: a source of [0, 1) numbers, a clock and a sleep. */
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 100, capMs: 5_000 };
export const DEFAULT_RETRY_TOTAL_MS = 60_000;

/** Full jitter: a uniform delay below the exponential ceiling for this attempt (attempt 0 = first retry). */
export function backoffDelay(attempt: number, { baseMs, capMs }: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Network-level codes worth another try: the peer was down, reset us or was too slow. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Network errors, call timeouts and 5xx answers are transient; 4xx answers and bad bodies are not. */
export function isTransient(error: unknown): boolean {
  if (error instanceof GanymedeTimeoutError) return true;
  if (error instanceof GanymedeAnswerError) return error.status >= 500;
  if (error instanceof UnknownStatusError) return (error.response as { status: number }).status >= 500;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const {
    baseMs = DEFAULT_BACKOFF.baseMs,
    capMs = DEFAULT_BACKOFF.capMs,
    totalMs = DEFAULT_RETRY_TOTAL_MS,
    signal,
    isRetryable = isTransient,
    onRetry,
    random = Math.random,
    now = Date.now,
    sleep = (ms, s) => sleepFor(ms, undefined, { signal: s }),
  } = options;
  const startedAt = now();
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!isRetryable(error)) throw error;
      const delayMs = backoffDelay(attempt, { baseMs, capMs }, random);
      if (now() + delayMs - startedAt > totalMs) {
        throw new GatewayError('RETRY_GAVE_UP', `gave up after ${attempt + 1} attempts in ${now() - startedAt} ms`, { cause: error });
      }
      onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs, signal);
    }
  }
}
