import type { ganymedeContract } from '@ganymede/contracts';
import type { Claims } from '../src/auth.js';

/** The routes any token (or none) may call: health and the API's description. */
export const PUBLIC_ROUTES = ['healthz', 'readyz', 'openapi'] as const;
/** The routes that take a bearer token (`metrics` unless opened by its flag, which these tests do not set). */
export type Route = Exclude<keyof typeof ganymedeContract, (typeof PUBLIC_ROUTES)[number]>;
export type Kind = Claims['typ'];

export const KINDS: Kind[] = ['admin', 'user', 'gateway', 'organization'];

/** The token kind each route needs. */
export const NEEDS: Record<Route, Kind> = {
  start: 'user',
  config: 'gateway',
  ready: 'gateway',
  reclaim: 'gateway',
  lease: 'gateway',
  stop: 'organization',
  restart: 'organization',
  withdrawRestart: 'organization',
  dataPush: 'organization',
  dataPull: 'organization',
  addGateway: 'admin',
  status: 'admin',
  allocation: 'admin',
  events: 'admin',
  metrics: 'admin',
};
