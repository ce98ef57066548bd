/**
 * Fastify's per-request lines: at info a successful call writes none (each transition has its own line), a refused
 * one writes one `request completed` line once its answer was sent; at debug every request has both lines.
 */
import { initContract } from '@ts-rest/core';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { closeWithin, createServer, LOG_REDACT } from '../src/index.js';

const contract = initContract().router(
  {
    echo: {
      method: 'POST',
      path: '/echo',
      body: z.object({ text: z.string() }).strict(),
      responses: { 200: z.object({ text: z.string() }), 400: z.object({ error: z.string(), message: z.string() }) },
    },
  },
  { strictStatusCodes: true },
);

interface Line {
  msg: string;
  level: number;
  reqId?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
}

const servers: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of servers.splice(0)) await closeWithin(app, 100);
});

async function serve(level: 'info' | 'debug') {
  const lines: Line[] = [];
  const waiting: { test: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  const logger = pino(
    { level, redact: LOG_REDACT },
    {
      write(text: string) {
        const line = JSON.parse(text) as Line;
        lines.push(line);
        for (const w of waiting.filter((w) => w.test(line))) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve(line);
        }
      },
    },
  );
  const app = createServer(contract, { echo: async ({ body }) => ({ status: 200, body }) }, { logger });
  servers.push(app);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const post = (body: unknown) =>
    fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const lineWhere = (test: (l: Line) => boolean) =>
    new Promise<Line>((resolve) => {
      const seen = lines.find(test);
      if (seen) resolve(seen);
      else waiting.push({ test, resolve });
    });
  return { lines, post, lineWhere };
}

const requestLine = (l: Line) => l.msg === 'incoming request' || l.msg === 'request completed';

describe('request lines', () => {
  it('at info: none for an answered call, one for a refused call, written after its answer', async () => {
    const s = await serve('info');
    const ok = await s.post({ text: 'a' });
    expect(ok.status).toBe(200);
    const refused = await s.post({ text: 1 });
    expect(refused.status).toBe(400);
    const line = await s.lineWhere((l) => l.msg === 'request completed');
    expect(line).toMatchObject({ level: 30, req: { method: 'POST', url: '/echo' }, res: { statusCode: 400 } });
    // The refused call's line is the only request line: the answered call (made first) wrote none.
    expect(s.lines.filter(requestLine)).toEqual([line]);
  });

  it('at debug: incoming and completed for every request, in that order', async () => {
    const s = await serve('debug');
    expect((await s.post({ text: 'a' })).status).toBe(200);
    const completed = await s.lineWhere((l) => l.msg === 'request completed');
    expect(completed).toMatchObject({ level: 20, res: { statusCode: 200 } });
    const mine = s.lines.filter((l) => requestLine(l) && l.reqId === completed.reqId).map((l) => l.msg);
    expect(mine).toEqual(['incoming request', 'request completed']);
  });
});
