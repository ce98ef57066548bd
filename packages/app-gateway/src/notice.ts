/**
 * Checks that a notice (`POST /allocated`) comes from Ganymede before the gateway acts on it: its
 * `Authorization: Bearer <JWT>` must be signed (EdDSA, Ed25519) by the key whose public half Ganymede gave in
 * /gateway/ready's answer (`notice_key`), for this gateway (`aud`) and this allocation (`sub`), and not expired.
 * Without this, anyone who could reach the gateway made it call Ganymede once per notice.
 *
 * Only the public key is here: a gateway cannot sign a notice, to itself or to another gateway. Verification is
 * done with node:crypto on one fixed algorithm; the header may name no other (no `alg` confusion, no `none`).
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { NOTICE_ALGORITHM, NoticeClaims, NoticeKey } from '@ganymede/contracts';
import { z } from 'zod';

/** A notice token is a few hundred bytes; anything much longer is refused before any decoding. */
const MAX_TOKEN_LENGTH = 2048;
/** Clocks of Ganymede and the gateway may disagree by this much (a token's `iat`/`nbf` a little in the future). */
const CLOCK_TOLERANCE_SECONDS = 5;
const JWT = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;
/** The protected header: our algorithm, and no extension the verifier would have to understand. */
const Header = z.object({ alg: z.literal(NOTICE_ALGORITHM), crit: z.undefined() });

export type NoticeCheck = { ok: true } | { ok: false; reason: string };

/** Ganymede's public notice key (base64url, from /gateway/ready), ready for verification; undefined if it is not one. */
export function importNoticeKey(noticeKey: string): KeyObject | undefined {
  if (!NoticeKey.safeParse(noticeKey).success) return undefined;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: noticeKey }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Whether `authorization` proves a notice for `expected.allocationId` to `expected.gatewayId`. The reason of a
 * refusal names what is wrong and never holds the token.
 */
export function checkNotice(
  authorization: string | undefined,
  key: KeyObject,
  expected: { gatewayId: string; allocationId: string },
  nowSeconds = Math.floor(Date.now() / 1000),
): NoticeCheck {
  const refuse = (reason: string): NoticeCheck => ({ ok: false, reason });
  if (!authorization) return refuse('no notice token');
  if (authorization.length > MAX_TOKEN_LENGTH) return refuse('the notice token is too long');
  const parts = JWT.exec(authorization);
  if (!parts) return refuse('the notice token is not a JWT');
  const [, header, payload, signature] = parts as unknown as [string, string, string, string];
  if (!Header.safeParse(decodeJson(header)).success) return refuse(`the notice token is not signed ${NOTICE_ALGORITHM}`);
  // The claims are checked before the signature only to refuse cheaply (a signature check costs 0.1-0.3 ms, the
  // rest microseconds): nothing in them is used unless the signature then holds.
  const claims = NoticeClaims.safeParse(decodeJson(payload));
  if (!claims.success) {
    return refuse(
      `the notice token's claims are invalid: ${claims.error.issues.map((i) => `${i.path.join('.') || 'claims'}: ${i.message}`).join('; ')}`,
    );
  }
  const { aud, sub, exp, iat, nbf } = claims.data;
  if (aud !== expected.gatewayId) return refuse('the notice is for another gateway');
  if (sub !== expected.allocationId) return refuse('the notice is for another allocation');
  if (exp <= nowSeconds) return refuse('the notice token has expired');
  if (Math.max(iat, nbf ?? iat) > nowSeconds + CLOCK_TOLERANCE_SECONDS) return refuse('the notice token is not valid yet');
  const signed = verify(null, Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'));
  if (!signed) return refuse("the notice token's signature is not Ganymede's");
  return { ok: true };
}
