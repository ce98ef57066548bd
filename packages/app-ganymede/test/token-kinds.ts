import type { ganymedeContract } from '@ganymede/contracts';
import type { Claims } from '../src/auth.js';

export type Route = keyof typeof ganymedeContract;
export type Kind = Claims['typ'];

export const KINDS: Kind[] = ['admin', 'user', 'gateway', 'organization'];

/** The token kind each route needs. */
export const NEEDS: Record<Route, Kind> = {
  start: 'user',
  config: 'gateway',
  ready: 'gateway',
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
};
