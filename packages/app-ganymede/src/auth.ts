/**
 * Bearer tokens: HS256 JWTs signed with jose. Four kinds, told apart by the `typ` claim:
 * - gateway: one gateway's identity (`sub` = gateway id), for /gateway/config and /gateway/ready;
 * - organization: bound to one allocation (`sub` = allocation id), for /gateway/stop and /gateway/restart;
 * - user: a user and the organizations it belongs to, for /gateway/start;
 * - admin: operators' tools (the CLI mints one per call from the signing key).
 * A token that verifies is still refused (401) unless its claims fit `ClaimsSchema`. Notice tokens (`signNotice`,
 * EdDSA) are not bearer tokens for Ganymede: they prove a notice to a gateway comes from Ganymede.
 */
import { createHmac, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign as signBytes, webcrypto } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { NOTICE_ALGORITHM, type NoticeClaims, Uuid } from '@ganymede/contracts';
import { errors, jwtVerify } from 'jose';
import { z } from 'zod';
import { GanymedeError, InvalidTokenError } from './errors.js';

const ISSUER = 'ganymede';
/** How many verified tokens `Tokens.verify` remembers, and the longest it remembers: about 20 MB at most. */
const VERIFIED_TOKENS_KEPT = 10_000;
/**
 * Gateway, organization and admin tokens are a few hundred characters; a user token of 1,000 organizations is
 * 52 KB. Remembering those would cost half a GB at the cap, and verifying one again is one HMAC.
 */
const CACHED_TOKEN_MAX_CHARS = 2_048;
const ALGORITHM = 'HS256';

/**
 * The claims of each kind of token, the one place their shape is written down. A token signed with our key (by
 * this server, or by another service that shares the key) is still checked against it: whatever it names is used
 * in SQL and in membership tests. Strict on what we use, tolerant of what other issuers add (iat, exp, iss, jti…:
 * unknown claims are dropped, not refused).
 */
export const ClaimsSchema = z.discriminatedUnion('typ', [
  z.object({ typ: z.literal('gateway'), sub: Uuid }),
  z.object({ typ: z.literal('organization'), sub: Uuid, gateway_id: Uuid, organization_id: Uuid }),
  z.object({ typ: z.literal('user'), sub: z.string().min(1), organizations: z.array(Uuid) }),
  z.object({ typ: z.literal('admin'), sub: z.string().min(1) }),
]);
export type Claims = z.infer<typeof ClaimsSchema>;
export type TokenType = Claims['typ'];

/** How long each kind of token is good for. Gateways are long-lived; the rest are minted often. */
export const TOKEN_TTL: Record<TokenType, string> = {
  gateway: '365d',
  organization: '30d',
  user: '12h',
  admin: '5m',
};

/** A token's life as the CLI and TOKEN_TTL write it: a whole number of seconds, minutes, hours or days. */
const TTL_PATTERN = /^(-?[0-9]+)(s|m|h|d)$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

function ttlSeconds(ttl: string): number {
  const match = TTL_PATTERN.exec(ttl);
  if (!match) throw new GanymedeError('TOKEN_TTL_INVALID', `a token's life must be a number and s, m, h or d, got ${JSON.stringify(ttl)}`);
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');
const HS256_HEADER = base64url(JSON.stringify({ alg: 'HS256' }));
const NOTICE_HEADER = base64url(JSON.stringify({ alg: NOTICE_ALGORITHM }));

/**
 * A compact JWS: header.payload.signature. Signing is written here, with node:crypto's one-shot calls, because
 * jose signs through WebCrypto's asynchronous jobs: a third of a millisecond of Ganymede's CPU per token, which a
 * reclaim (a new organization token) and an allocation (a notice) each pay. Verifying stays jose's.
 */
function compactJws(header: string, payload: object, signature: (signingInput: string) => Buffer): string {
  const signingInput = `${header}.${base64url(JSON.stringify(payload))}`;
  return `${signingInput}.${signature(signingInput).toString('base64url')}`;
}

const describeClaims = (error: z.ZodError) =>
  error.issues
    .map((i) => `${i.path.length ? i.path.join('.') : 'claims'}: ${i.message}`)
    .join('; ')
    .slice(0, 500);

/** The notice key is derived from the signing key with this label: nothing more to store or configure. */
const NOTICE_KEY_LABEL = 'ganymede notice signing key v1';
/** PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export class Tokens {
  /** The key imported once for HMAC: given raw bytes, jose would import them again on every verify. */
  private cryptoKey: Promise<webcrypto.CryptoKey> | undefined;

  constructor(private readonly key: Uint8Array) {}

  private hmacKey(): Promise<webcrypto.CryptoKey> {
    this.cryptoKey ??= webcrypto.subtle.importKey('raw', this.key, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    return this.cryptoKey;
  }

  /**
   * A token with these claims, good for `ttl`. Remembered as verified, so that its first use (an organization
   * token's /gateway/restart, say) costs no verification either.
   */
  async sign(claims: Claims, ttl: string = TOKEN_TTL[claims.typ]): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + ttlSeconds(ttl);
    const token = compactJws(HS256_HEADER, { ...claims, iss: ISSUER, iat, exp }, (input) =>
      createHmac('sha256', this.key).update(input).digest(),
    );
    // Remembered as `verify` would find them: parsed by the schema (a copy, and never claims it would refuse).
    const parsed = ClaimsSchema.safeParse(claims);
    if (parsed.success) this.remember(token, { claims: parsed.data, exp });
    return token;
  }

  /**
   * Tokens that passed verification and whose claims parsed, with those claims, until they expire. A gateway
   * presents the same token on every call: verifying it again would only compute the same HMAC again. Bounded;
   * the oldest go first. A token whose claims did not parse is never kept: it is refused again each time.
   */
  private readonly verified = new Map<string, { claims: Claims; exp: number }>();

  /**
   * The claims of a valid token of the given kind; `null` for a valid token of another kind. Throws
   * `InvalidTokenError` for a token that does not verify (`TOKEN_INVALID`) or whose claims are off the schema
   * (`TOKEN_CLAIMS_INVALID`).
   */
  async verify<T extends TokenType>(token: string, typ: T): Promise<Extract<Claims, { typ: T }> | null> {
    let entry = this.verified.get(token);
    if (entry && entry.exp * 1000 <= Date.now()) {
      this.verified.delete(token);
      entry = undefined;
    }
    if (!entry) {
      const key = await this.hmacKey();
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM], issuer: ISSUER, requiredClaims: ['exp', 'sub'] }));
      } catch (cause) {
        if (cause instanceof errors.JOSEError) throw new InvalidTokenError('TOKEN_INVALID', `invalid token: ${cause.code}`, { cause });
        throw cause;
      }
      const parsed = ClaimsSchema.safeParse(payload);
      if (!parsed.success) throw new InvalidTokenError('TOKEN_CLAIMS_INVALID', `invalid token claims: ${describeClaims(parsed.error)}`);
      entry = { claims: parsed.data, exp: payload.exp! };
      this.remember(token, entry);
    }
    return entry.claims.typ === typ ? (entry.claims as Extract<Claims, { typ: T }>) : null;
  }

  private remember(token: string, entry: { claims: Claims; exp: number }) {
    if (token.length > CACHED_TOKEN_MAX_CHARS || entry.exp * 1000 <= Date.now()) return;
    if (this.verified.size >= VERIFIED_TOKENS_KEPT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, entry);
  }

  /**
   * Ganymede's notices (`POST /allocated`) prove where they come from with a token the gateway can check. Why a key
   * pair: the gateway must not hold the signing key (it would let it mint any token) and a secret handed to each
   * gateway would be one more secret on the wire and in its memory. So an Ed25519 key pair is derived from the
   * signing key (HMAC-SHA256 with a fixed label: every replica derives the same, nothing is stored) and only its
   * public half travels, in /gateway/ready's answer (`notice_key`). Each notice is bound to its gateway (`aud`) and
   * allocation (`sub`) and expires soon, so a notice seen by one gateway cannot be replayed to another.
   */
  private noticeKeys: { privateKey: KeyObject; publicKey: string } | undefined;

  private noticeKeyPair() {
    if (!this.noticeKeys) {
      const seed = createHmac('sha256', this.key).update(NOTICE_KEY_LABEL).digest();
      const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
      const publicKey = createPublicKey(privateKey).export({ format: 'jwk' }).x!;
      this.noticeKeys = { privateKey, publicKey };
    }
    return this.noticeKeys;
  }

  /** The public key that verifies notices (base64url), for /gateway/ready's answer. */
  noticeKey(): string {
    return this.noticeKeyPair().publicKey;
  }

  /** A notice token for telling `gatewayId` it holds `allocationId`, good for `ttlSeconds`. */
  signNotice(gatewayId: string, allocationId: string, ttlSeconds: number): string {
    const now = Math.floor(Date.now() / 1000);
    const claims: NoticeClaims = {
      typ: 'notice',
      iss: ISSUER,
      aud: gatewayId,
      sub: allocationId,
      iat: now,
      exp: now + Math.ceil(ttlSeconds),
    };
    const { privateKey } = this.noticeKeyPair();
    return compactJws(NOTICE_HEADER, claims, (input) => signBytes(null, Buffer.from(input), privateKey));
  }
}

export const bearer = (authorization: string): string => authorization.slice('Bearer '.length);

export const KEY_FILE = 'signing.key';

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

/**
 * The signing key as `loadSigningKey` finds it, for commands that must never create one: a missing key means
 * the data directory is not the server's, and a fresh key would only sign tokens the server refuses.
 */
export async function readSigningKey(configured: string | undefined, dataDir: string): Promise<Uint8Array> {
  if (configured) return decodeKey(configured);
  const path = `${dataDir}/${KEY_FILE}`;
  try {
    return decodeKey((await readFile(path, 'utf8')).trim());
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw cause;
    throw new GanymedeError(
      'SIGNING_KEY_MISSING',
      `no signing key at ${resolve(path)}: give the server's data directory with --data-dir or GANYMEDE_DATA_DIR, set its key in ` +
        'GANYMEDE_SIGNING_KEY, or set GANYMEDE_ADMIN_TOKEN to a token from `ganymede token admin`',
      {
        cause,
      },
    );
  }
}

function decodeKey(text: string): Uint8Array {
  const bytes = /^[0-9a-f]+$/i.test(text) && text.length % 2 === 0 ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (bytes.length < 32) throw new GanymedeError('SIGNING_KEY_INVALID', 'the signing key must be at least 32 bytes (64 hex characters)');
  return new Uint8Array(bytes);
}
