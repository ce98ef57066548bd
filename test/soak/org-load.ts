/**
 * The soak's clients: each organization's request (`GET /orgs/:id`) sent to every gateway, over keep-alive
 * connections, so that two processes serving one organization at once would both answer 200 and both log it.
 * An organization served nowhere for a while is asked for again at Ganymede (`/gateway/start` with a user token),
 * as the platform's frontend does. Nothing here asserts: the serving history does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { GanymedeProcess } from '@ganymede/testkit';
import { Agent, request } from 'undici';

export interface SoakOrganization {
  organizationId: string;
  /** A user token of the organization, for `/gateway/start`. */
  token: string;
}

export interface OrgLoadFigures {
  sent: number;
  /** Answers by status (`200`, `404`, `503`, …) and failures by code (`UND_ERR_HEADERS_TIMEOUT`, `ECONNREFUSED`, …). */
  outcomes: Record<string, number>;
  /** `/gateway/start` calls for organizations served nowhere, by answer (`201`, `200`, `503`, `unreachable`). */
  reasks: Record<string, number>;
}

export interface OrgLoad {
  /** Resolves once every organization got a 200 from some gateway after this call. */
  untilServed(timeoutMs: number): Promise<void>;
  stop(): Promise<OrgLoadFigures>;
}

export interface OrgLoadOptions {
  organizations: SoakOrganization[];
  gatewayUrls: string[];
  /** A Ganymede replica that runs now, if any. */
  ganymede(): GanymedeProcess | undefined;
  /** Each client's pause between an answer and its next request. */
  intervalMs: number;
  /** A request not answered within this long (a paused process) is given up. */
  timeoutMs: number;
  /** An organization without a 200 for this long is asked for again. */
  reaskAfterMs: number;
}

const count = (tally: Record<string, number>, key: string) => void (tally[key] = (tally[key] ?? 0) + 1);

export function startOrgLoad(options: OrgLoadOptions): OrgLoad {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: options.timeoutMs } });
  const figures: OrgLoadFigures = { sent: 0, outcomes: {}, reasks: {} };
  const lastServed = new Map<string, number>(options.organizations.map((o) => [o.organizationId, Date.now()]));
  const onServed = new Set<(organizationId: string) => void>();
  let running = true;

  const client = async (organizationId: string, gatewayUrl: string) => {
    while (running) {
      figures.sent++;
      try {
        const res = await request(`${gatewayUrl}/orgs/${organizationId}`, {
          dispatcher,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        });
        await res.body.dump();
        count(figures.outcomes, String(res.statusCode));
        if (res.statusCode === 200) {
          lastServed.set(organizationId, Date.now());
          for (const waiter of [...onServed]) waiter(organizationId);
        }
      } catch (error) {
        count(figures.outcomes, (error as { code?: string }).code ?? 'error');
      }
      await sleep(options.intervalMs);
    }
  };

  const reasker = async ({ organizationId, token }: SoakOrganization) => {
    while (running) {
      await sleep(options.reaskAfterMs / 2);
      const g = options.ganymede();
      if (!running || Date.now() - lastServed.get(organizationId)! < options.reaskAfterMs) continue;
      const answer = await g?.api
        .start({ headers: { authorization: `Bearer ${token}` }, body: { organization_id: organizationId } })
        .then((res) => String(res.status))
        .catch(() => 'unreachable');
      count(figures.reasks, answer ?? 'unreachable');
    }
  };

  const loops = [
    ...options.organizations.flatMap((o) => options.gatewayUrls.map((url) => client(o.organizationId, url))),
    ...options.organizations.map(reasker),
  ];

  return {
    untilServed: (timeoutMs) =>
      new Promise((resolve, reject) => {
        const waiting = new Set(options.organizations.map((o) => o.organizationId));
        const timer = setTimeout(() => {
          onServed.delete(waiter);
          reject(new Error(`organizations served nowhere for ${timeoutMs} ms: ${[...waiting].join(', ')}`));
        }, timeoutMs);
        const waiter = (organizationId: string) => {
          waiting.delete(organizationId);
          if (waiting.size > 0) return;
          clearTimeout(timer);
          onServed.delete(waiter);
          resolve();
        };
        onServed.add(waiter);
      }),
    async stop() {
      running = false;
      await Promise.all(loops);
      await dispatcher.close();
      return figures;
    },
  };
}
