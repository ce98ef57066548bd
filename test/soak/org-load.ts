/**
 * The soak's clients: each organization's request (`GET /orgs/:id`) sent to every gateway, over keep-alive
 * connections, so that two processes serving one organization at once would both answer 200 and both log it.
 * Each organization is also asked for at Ganymede every so often (`/gateway/start` with a user token), as the
 * platform's frontend does on every page load, whether or not some gateway still answers: that is how an
 * organization whose allocation ended gets another gateway while clients may still reach the first one (the split
 * brain self-fencing prevents). Nothing here asserts: the serving history does.
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
  /** `/gateway/start` calls, by answer (`201`: a new allocation, `200`, `503`, `unreachable`). */
  asks: Record<string, number>;
}

export interface OrgLoad {
  /** Resolves once every organization got a 200 from some gateway after this call. */
  untilServed(timeoutMs: number): Promise<void>;
  /** Stops every client and answers the figures; safe to call twice. */
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
  /** How often each organization is asked for at Ganymede. */
  askEveryMs: number;
}

const count = (tally: Record<string, number>, key: string) => void (tally[key] = (tally[key] ?? 0) + 1);

export function startOrgLoad(options: OrgLoadOptions): OrgLoad {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: options.timeoutMs } });
  const figures: OrgLoadFigures = { sent: 0, outcomes: {}, asks: {} };
  const onServed = new Set<(organizationId: string) => void>();
  let running = true;
  let stopped: Promise<OrgLoadFigures> | undefined;

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
        if (res.statusCode === 200) for (const waiter of [...onServed]) waiter(organizationId);
      } catch (error) {
        count(figures.outcomes, (error as { code?: string }).code ?? 'error');
      }
      await sleep(options.intervalMs);
    }
  };

  const asker = async ({ organizationId, token }: SoakOrganization) => {
    while (running) {
      await sleep(options.askEveryMs);
      if (!running) break;
      const answer = await options
        .ganymede()
        ?.api.start({ headers: { authorization: `Bearer ${token}` }, body: { organization_id: organizationId } })
        .then((res) => String(res.status))
        .catch(() => 'unreachable');
      count(figures.asks, answer ?? 'unreachable');
    }
  };

  const loops = [
    ...options.organizations.flatMap((o) => options.gatewayUrls.map((url) => client(o.organizationId, url))),
    ...options.organizations.map(asker),
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
    stop() {
      stopped ??= (async () => {
        running = false;
        await Promise.all(loops);
        await dispatcher.close();
        return figures;
      })();
      return stopped;
    },
  };
}
