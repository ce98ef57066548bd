/**
 * A Ganymede older than a route answers 404 for it, with its server's not-found body: off the contract (a bare
 * Fastify's `{statusCode, error: "Not Found", message}`, an HTML page), or the contract's `not_found` (this project's
 * http-server). A 404 the route itself declares names what is missing instead (`allocation_not_found`). Only the
 * first means "this Ganymede cannot do that": the caller degrades (README, "Rolling upgrades").
 */
import { UnknownStatusError } from '@ts-rest/core';
import { InvalidAnswerError } from './errors.js';

/** What a call answers when Ganymede has no such route. */
export const ROUTE_MISSING = { status: 'route_missing' } as const;
export type RouteMissing = typeof ROUTE_MISSING;

/** True for a 404 answer whose body says the route, not a thing it names, is missing. */
export function isRouteMissing(answer: { status: number; body: unknown }): boolean {
  return answer.status === 404 && (answer.body as { error?: unknown } | null)?.error === 'not_found';
}

/**
 * The call's answer, or ROUTE_MISSING when Ganymede has no such route: a 404 with a body off the contract (thrown
 * as InvalidAnswerError where the route declares 404, UnknownStatusError where it does not), or the contract's
 * `not_found` on a route whose own 404s never use that code (`notFoundIsTheRoute`).
 */
export async function unlessRouteMissing<A extends { status: number; body: unknown }>(
  call: Promise<A>,
  notFoundIsTheRoute = true,
): Promise<A | RouteMissing> {
  try {
    const answer = await call;
    return notFoundIsTheRoute && isRouteMissing(answer) ? ROUTE_MISSING : answer;
  } catch (error) {
    if (error instanceof InvalidAnswerError && error.status === 404) return ROUTE_MISSING;
    if (error instanceof UnknownStatusError && (error.response as { status?: unknown }).status === 404) return ROUTE_MISSING;
    throw error;
  }
}
