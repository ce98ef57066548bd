/**
 * The dashboard's page, script and style, served at /ui from `packages/app-ganymede/ui/` (no CDN: it works on a
 * machine without internet). The files are read once at start. They hold no secret: the page asks for an admin token
 * and calls the admin API with it, so these routes need none. Strict headers: the page loads only its own files.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/** Two folders up, from the sources (src/dashboard/) and from the bundle (dist/bin/) alike. */
const UI_DIR = new URL('../../ui/', import.meta.url);

const FILES = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/ui/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
} as const;

const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function serveDashboard(app: FastifyInstance): void {
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const content = readFileSync(new URL(file, UI_DIR));
    app.get(path, async (_request, reply) => reply.headers(HEADERS).type(type).send(content));
  }
}
