export { createGanymede, DEFAULTS, type Ganymede, type GanymedeOptions } from './ganymede.js';
export { loadSigningKey, Tokens, type Claims } from './auth.js';
export type { Database, Queryable } from './db/database.js';
export {
  DataDirLockedError,
  ERROR_CODES,
  GanymedeError,
  type GanymedeErrorCode,
  InvalidTokenError,
  PG_ERRORS,
  SchemaTooNewError,
  UsageError,
} from './errors.js';
export { openDatabase } from './db/open.js';
export { migrate } from './db/migrate.js';
