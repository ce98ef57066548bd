/** The bearer-token check every authenticated route of Ganymede's makes, and its refusals (401, 403). */
import { type ErrorBody, type ganymedeContract as contract } from '@ganymede/contracts';
import { TsRestResponseError } from '@ts-rest/core';
import type { FastifyBaseLogger } from 'fastify';
import { bearer, type Claims, type TokenType, type Tokens } from './auth.js';
import { InvalidTokenError } from './errors.js';

export const fail = (error: ErrorBody['error'], message: string) => ({ error, message });

/** Every authenticated Ganymede route declares 401 and 403 with the error body: thrown from a shared check, answered as is. */
export type Route = (typeof contract)[keyof typeof contract];
export const refusal = (route: Route, status: 401 | 403, body: ErrorBody) => new TsRestResponseError<Route>(route, { status, body });

/** `authorize(route, authorization, typ)`: the token's claims, or a thrown 401 (invalid) / 403 (valid, wrong kind). */
export function authorizer(tokens: Tokens, log: FastifyBaseLogger) {
  return async function authorize<T extends TokenType>(route: Route, authorization: string, typ: T) {
    let claims: Extract<Claims, { typ: T }> | null;
    try {
      claims = await tokens.verify(bearer(authorization), typ);
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      // Signed with our key, yet off the schema: a peer sharing the key is minting bad tokens. Worth a warning.
      if (error.code === 'TOKEN_CLAIMS_INVALID')
        log.warn({ route: route.path, reason: error.message }, 'token refused: claims off the schema');
      throw refusal(route, 401, fail('unauthorized', error.message));
    }
    if (!claims) throw refusal(route, 403, fail('forbidden', `this route needs a ${typ} token`));
    return claims;
  };
}
