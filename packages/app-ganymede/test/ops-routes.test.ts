/**
 * Liveness, readiness and the API's description, over real HTTP: `/readyz` answers 503 with the reason whenever
 * the database cannot serve this code (behind, ahead, gone); `/openapi.json` is the document generated from the
 * contract, and `/docs` browses it with assets served by Ganymede itself (no CDN).
 */
import { readdir } from 'node:fs/promises';
import { openApiText } from '@ganymede/contracts/openapi';
import { describe, expect, it } from 'vitest';
import { createGanymede } from '../src/ganymede.js';
import { TEST_DATABASE } from './database.js';
import { errorBodyProblem, openMigratedDatabase, rawRequest, useGanymede } from './support.js';

const g = useGanymede({ manualReaper: true });
const get = (path: string, base = g.url) => rawRequest(base, 'GET', path, {});
const MIGRATIONS = (await readdir(new URL('../migrations/', import.meta.url))).filter((f) => f.endsWith('.sql')).length;

describe('/healthz and /readyz', () => {
  it('/healthz: 200 while the process answers', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it("/readyz: 200 with the backend and the schema's version, which is the last migration's", async () => {
    expect((await get('/readyz')).body).toEqual({ status: 'ready', database: TEST_DATABASE, schema_version: MIGRATIONS });
  });

  it('/readyz: 503 schema_too_new while the database was migrated by newer code, ready again after', async () => {
    await g.ganymede.db.query("INSERT INTO schema_migrations (version, name) VALUES (999, '999_future.sql')");
    try {
      const res = await get('/readyz');
      expect(res).toMatchObject({ status: 503, body: { error: 'schema_too_new' } });
      expect(errorBodyProblem(res.body)).toBeNull();
    } finally {
      await g.ganymede.db.query('DELETE FROM schema_migrations WHERE version = 999');
    }
    expect((await get('/readyz')).status).toBe(200);
  });

  it('/readyz: 503 migrations_pending while the schema is behind the code', async () => {
    const { rows } = await g.ganymede.db.query<{ name: string }>('DELETE FROM schema_migrations WHERE version = $1 RETURNING name', [
      MIGRATIONS,
    ]);
    try {
      const res = await get('/readyz');
      expect(res).toMatchObject({ status: 503, body: { error: 'migrations_pending' } });
      expect((res.body as { message: string }).message).toContain(`this code needs ${MIGRATIONS}`);
    } finally {
      await g.ganymede.db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [MIGRATIONS, rows[0]!.name]);
    }
  });

  it('/readyz: 503 database_unavailable once the database is gone, while /healthz still answers 200', async () => {
    const db = await openMigratedDatabase();
    const server = await createGanymede({ db, logger: false });
    try {
      const url = await server.listen(0);
      expect((await get('/readyz', url)).status).toBe(200);
      await db.close();
      const res = await get('/readyz', url);
      expect(res).toMatchObject({ status: 503, body: { error: 'database_unavailable' } });
      expect(errorBodyProblem(res.body)).toBeNull();
      expect((await get('/healthz', url)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('/openapi.json and /docs', () => {
  it('/openapi.json is the document generated from the contract (and committed as contracts/openapi.json)', async () => {
    const res = await get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(openApiText()));
  });

  it("/docs is Swagger UI reading that document, every asset served from Ganymede's own package", async () => {
    const page = await get('/docs');
    expect(page.status).toBe(200);
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toContain('/docs/static/swagger-ui-bundle.js');
    // No CDN (the machine may have no internet): every asset is Ganymede's, and answers.
    for (const asset of assets) {
      expect(asset).toMatch(/^\/docs\//);
      expect((await get(asset)).status, asset).toBe(200);
    }
    expect((await get('/docs/json')).body).toEqual(JSON.parse(openApiText()));
    // What the page does not serve answers like any other route: the contract's error body.
    for (const [path, status] of [
      ['/docs/static/no-such-asset.js', 404],
      ['/docs/static/../../package.json', 404],
      ['/docs/%ZZ', 400],
    ] as const) {
      const res = await get(path);
      expect(res.status, path).toBe(status);
      expect(errorBodyProblem(res.body), path).toBeNull();
    }
  });
});
