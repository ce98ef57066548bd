/**
 * A real gateway (`Gateway` from @ganymede/app-gateway) run in the test's own process against a test Ganymede,
 * with a client that reports its calls: for tests that need the gateway's own renewal loop and reactions
 * without the cost of a child process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGanymedeClient, Gateway, type GanymedeClient, loadConfig } from '@ganymede/app-gateway';
import pino from 'pino';
import type { TestGanymede } from './support.js';

type Watched = 'lease' | 'claim' | 'idle';

/**
 * A client that reports each lease renewal and each /ready once answered and acted on: the gateway handles an
 * answer synchronously after its await, so the report waits for the next turn of the event loop. A claim (a /ready
 * naming an allocation, answered 200) is acted on only once the organization's state is pulled: it is reported
 * after that pull.
 */
export function watchedClient(baseUrl: string) {
  const client = createGanymedeClient({ baseUrl, timeoutMs: 5_000 });
  const waiters: { what: Watched; resolve: (status: number) => void }[] = [];
  const settle = (what: Watched, status: number) =>
    setImmediate(() => {
      for (const w of waiters.filter((x) => x.what === what)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(status);
      }
    });
  /** A claim answered 200, waiting for its state pull. */
  let claimed: number | null = null;
  const watched: GanymedeClient = {
    ...client,
    dataPull: async (...args) => {
      const answer = await client.dataPull(...args);
      if (claimed !== null) settle('claim', claimed);
      claimed = null;
      return answer;
    },
    lease: async (...args) => {
      const answer = await client.lease(...args);
      settle('lease', answer.status);
      return answer;
    },
    ready: async (token, body, options) => {
      const answer = await client.ready(token, body, options);
      if (body.allocation_id !== null && answer.status === 200) claimed = answer.status;
      else settle(body.allocation_id === null ? 'idle' : 'claim', answer.status);
      return answer;
    },
  };
  /** The status of the next such call to be answered. */
  const next = (what: Watched) => new Promise<number>((resolve) => waiters.push({ what, resolve }));
  return { client: watched, next };
}

/**
 * Registers a gateway with `g` (notices to `noticeUrl`) and builds its process, not yet started. `close` shuts
 * it down and removes its run directory.
 */
export async function inProcessGateway(g: TestGanymede, noticeUrl: string) {
  const added = await g.client.addGateway({ headers: g.admin, body: { url: noticeUrl } });
  if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
  const runDir = await mkdtemp(join(tmpdir(), 'in-process-gw-'));
  const watched = watchedClient(g.url);
  const gateway = new Gateway({
    config: loadConfig({
      GATEWAY_ID: added.body.gateway_id,
      GATEWAY_TOKEN: added.body.token,
      GANYMEDE_URL: g.url,
      GATEWAY_PORT: '0',
      GATEWAY_RUN_DIR: runDir,
    }),
    logger: pino({ level: 'silent' }),
    client: watched.client,
  });
  return {
    gateway,
    gatewayId: added.body.gateway_id,
    next: watched.next,
    close: async () => {
      await gateway.shutdown({ kind: 'stop', reason: 'stop' });
      await rm(runDir, { recursive: true, force: true });
    },
  };
}
