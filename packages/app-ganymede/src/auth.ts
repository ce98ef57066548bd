/**
 * Bearer tokens: HS256 JWTs signed with jose. Four kinds, told apart by the `typ` claim:
 * - gateway: one gateway's identity (`sub` = gateway id), for /gateway/config and /gateway/ready;
 * - organization: bound to one allocation (`sub` = allocation id), for /gateway/stop and /gateway/restart;
 * - user: a user and the organizations it belongs to, for /gateway/start;
 * - admin: operators' tools (the CLI mints one per call from the signing key).
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { errors, type JWTPayload, jwtVerify, SignJWT } from 'jose';

const ISSUER = 'ganymede';
/** How many verified tokens `Tokens.verify` remembers (a few MB at most). */
const VERIFIED_TOKENS_KEPT = 10_000;
const ALGORITHM = 'HS256';

export type Claims =
  | { typ: 'gateway'; sub: string }
  | { typ: 'organization'; sub: string; gateway_id: string; organization_id: string }
  | { typ: 'user'; sub: string; organizations: string[] }
  | { typ: 'admin'; sub: string };
export type TokenType = Claims['typ'];

/** How long each kind of token is good for. Gateways are long-lived; the rest are minted often. */
export const TOKEN_TTL: Record<TokenType, string> = {
  gateway: '365d',
  organization: '30d',
  user: '12h',
  admin: '5m',
};

export class InvalidTokenError extends Error {
  readonly code = 'unauthorized';
}

export class Tokens {
  /** The key imported once for HMAC: given raw bytes, jose would import them again on every sign and verify. */
  private cryptoKey: Promise<webcrypto.CryptoKey> | undefined;

  constructor(private readonly key: Uint8Array) {}

  private hmacKey(): Promise<webcrypto.CryptoKey> {
    this.cryptoKey ??= webcrypto.subtle.importKey('raw', this.key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    return this.cryptoKey;
  }

  async sign(claims: Claims, ttl: string = TOKEN_TTL[claims.typ]): Promise<string> {
    const { sub, ...rest } = claims;
    return new SignJWT(rest)
      .setProtectedHeader({ alg: ALGORITHM })
      .setSubject(sub)
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime(ttl)
      .sign(await this.hmacKey());
  }

  /**
   * Tokens that passed verification, with their claims, until they expire. A gateway presents the same token on
   * every call: verifying it again would only compute the same HMAC again. Bounded; the oldest go first.
   */
  private readonly verified = new Map<string, JWTPayload & { exp: number }>();

  /** The claims of a valid token of the given kind; `null` for a valid token of another kind. */
  async verify<T extends TokenType>(token: string, typ: T): Promise<Extract<Claims, { typ: T }> | null> {
    let payload = this.verified.get(token);
    if (payload && payload.exp * 1000 <= Date.now()) {
      this.verified.delete(token);
      payload = undefined;
    }
    if (!payload) {
      const key = await this.hmacKey();
      try {
        ({ payload } = (await jwtVerify(token, key, { algorithms: [ALGORITHM], issuer: ISSUER, requiredClaims: ['exp', 'sub'] })) as {
          payload: JWTPayload & { exp: number };
        });
      } catch (cause) {
        if (cause instanceof errors.JOSEError) throw new InvalidTokenError(`invalid token: ${cause.code}`, { cause });
        throw cause;
      }
      if (this.verified.size >= VERIFIED_TOKENS_KEPT) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, payload);
    }
    return payload.typ === typ ? (payload as unknown as Extract<Claims, { typ: T }>) : null;
  }
}

export const bearer = (authorization: string): string => authorization.slice('Bearer '.length);

const KEY_FILE = 'signing.key';

/**
 * The signing key: from configuration (at least 32 bytes, hex or base64), else read from the data
 * directory, else generated once into it with mode 0600. An in-memory server with no key gets a fresh one.
 */
export async function loadSigningKey(configured: string | undefined, dataDir: string | undefined): Promise<Uint8Array> {
  if (configured) return decodeKey(configured);
  if (!dataDir) return randomBytes(32);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = `${dataDir}/${KEY_FILE}`;
  try {
    // `wx`: if two processes race, one writes and both read the winner's key.
    await writeFile(path, randomBytes(32).toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
  }
  return decodeKey((await readFile(path, 'utf8')).trim());
}

function decodeKey(text: string): Uint8Array {
  const bytes = /^[0-9a-f]+$/i.test(text) && text.length % 2 === 0 ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (bytes.length < 32) throw new Error('the signing key must be at least 32 bytes (64 hex characters)');
  return new Uint8Array(bytes);
}
