/**
 * Attack suite: concurrency bursts. A gateway's token is all it takes to send many `/gateway/ready` (or
 * `/gateway/reclaim`, the same claim in one statement) calls at once (a hostile or broken fleet, or a supervisor respawning a crashing process faster than Ganymede answers).
 * Each call must be decided against everything committed before it, never against a statement's snapshot that a
 * concurrent call made stale while it waited for the row lock. Here: bursts of takeovers (distinct instance ids)
 * of one allocation must not skip the crash-loop limit. Exactly limit - 1 crash reclaims happen within the
 * window, the next one ends the allocation (`crash_loop`) exactly once, every other caller is refused
 * (409 `allocation_ended`; /gateway/reclaim: 404 `no_allocation`, the gateway holds nothing live), epochs are distinct and increasing with one audit row each, and the allocation is
 * never left active past the limit.
 *
 * On PostgreSQL (GANYMEDE_TEST_DATABASE=postgres) the calls really run at once: Ganymede's pool has several
 * connections, so the statements meet on the row lock. On PGlite (one connection) they are serialized, which
 * checks the same outcome in one order. Each trial uses a fresh allocation; every trial of a scenario must end
 * the same way, and a failure says how many trials broke the limit.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useGanymede } from './support.js';

const LIMIT = 5;
const WINDOW = 300;
const CALLERS = 8;
const TRIALS = 10;

const g = useGanymede({ crashLoopLimit: LIMIT, crashLoopWindowSeconds: WINDOW, manualReaper: true });

const sql = <T = Record<string, unknown>>(text: string, params?: unknown[]) => g.ganymede.db.query<T>(text, params);
type Live = Awaited<ReturnType<typeof g.live>>;

/** How a new process claims: /gateway/ready naming the allocation, or /gateway/reclaim. */
type Claim = 'ready' | 'reclaim';
interface Answer {
  status: number;
  body: unknown;
}

/** A new process of the allocation's gateway takes it over; answered with the epoch it claimed, if any. */
async function takeOver(a: Live, instance_id: string = randomUUID(), claim: Claim = 'ready'): Promise<Answer & { epoch?: number }> {
  if (claim === 'reclaim') {
    const res = await g.client.reclaim({ headers: a.gw.auth, body: { instance_id } });
    return { ...res, epoch: res.status === 200 ? res.body.epoch : undefined };
  }
  const res = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id } });
  return { ...res, epoch: res.status === 200 ? res.body.allocation?.epoch : undefined };
}

/** What one burst left behind, in a form every trial of a scenario must match exactly. */
async function outcome(a: Live, answers: (Answer & { epoch?: number })[], instances: string[]) {
  const claimed = answers.flatMap((res, i) =>
    res.status === 200 ? [{ epoch: res.epoch, reclaimed: (res.body as { reclaimed: boolean }).reclaimed, instance: instances[i]! }] : [],
  );
  claimed.sort((x, y) => (x.epoch ?? 0) - (y.epoch ?? 0));
  // The caller whose takeover ended the allocation is told why (crash_loop); the others that it ended.
  const refusals = answers
    .flatMap((res) => {
      if (res.status === 200) return [];
      const { error, message } = res.body as { error: string; message: string };
      return [`${res.status} ${error}${/crash_loop/.test(message) ? ' (crash_loop)' : ''}`];
    })
    .sort();
  const { rows: allocation } = await sql<{ state: string; epoch: number; ended_reason: string | null; holder_instance: string | null }>(
    'SELECT state, epoch, ended_reason, holder_instance FROM allocations WHERE id = $1',
    [a.id],
  );
  const { rows: audit } = await sql<{ kind: string; reason: string | null; epoch: number }>(
    'SELECT kind, reason, epoch FROM allocation_events WHERE allocation_id = $1 ORDER BY id',
    [a.id],
  );
  const { rows: gateway } = await sql<{ ready: boolean; instance_id: string | null }>(
    'SELECT ready_at IS NOT NULL AS ready, instance_id FROM gateways WHERE id = $1',
    [a.gw.gatewayId],
  );
  const crashReclaims = audit.filter((e) => e.kind === 'reclaimed' && e.reason === 'crash').length;
  const last = claimed.at(-1);
  const { holder_instance, ...row } = allocation[0]!;
  return {
    summary: { crashReclaims, state: allocation[0]!.state },
    observed: {
      claimedEpochs: claimed.map((c) => `${c.epoch}${c.reclaimed ? ' reclaimed' : ''}`),
      refusals,
      allocation: { ...row, epoch: Number(row.epoch), holder_is_last_claimer: holder_instance === last?.instance },
      audit: audit.map((e) => `${e.kind}${e.reason ? `/${e.reason}` : ''}@${Number(e.epoch)}`),
      // The refused calls left the gateway alone: its current process is the last one that claimed.
      gateway: { ready: gateway[0]!.ready, current_is_last_claimer: gateway[0]!.instance_id === last?.instance },
    },
  };
}

interface Scenario {
  name: string;
  /** Brings a fresh allocation to the state the burst meets. */
  setUp: (a: Live) => Promise<void>;
  callers: number;
  expected: Awaited<ReturnType<typeof outcome>>['observed'];
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const crashes = (epochs: number[]) => epochs.map((e) => `reclaimed/crash@${e}`);
const allocation = (state: string, epoch: number, ended_reason: string | null) => ({
  state,
  epoch,
  ended_reason,
  holder_is_last_claimer: true,
});
/** What a caller that found the allocation ended is told: /gateway/ready names it; for /gateway/reclaim, nothing is live. */
const ENDED: Record<Claim, string> = { ready: '409 allocation_ended', reclaim: '404 no_allocation' };

const scenarios = (claim: Claim): Scenario[] => {
  const refused = (crashLoop: number, ended: number) =>
    [...Array(crashLoop).fill('409 allocation_ended (crash_loop)'), ...Array(ended).fill(ENDED[claim])].sort();
  return [
    {
      name: `${CALLERS} takeovers of a claimed, active allocation: ${LIMIT - 1} crash reclaims, then crash_loop once, the rest refused`,
      setUp: async () => undefined,
      callers: CALLERS,
      expected: {
        claimedEpochs: range(2, LIMIT).map((e) => `${e} reclaimed`),
        refusals: refused(1, CALLERS - LIMIT),
        allocation: allocation('ended', LIMIT, 'crash_loop'),
        audit: ['allocated@1', ...crashes(range(2, LIMIT)), `crash_loop/crash_loop@${LIMIT}`],
        gateway: { ready: false, current_is_last_claimer: true },
      },
    },
    {
      name: `${CALLERS} takeovers after 2 crash reclaims in the window: ${LIMIT - 3} more, then crash_loop once`,
      setUp: async (a) => {
        for (const epoch of [2, 3]) expect(await takeOver(a)).toMatchObject({ status: 200, epoch });
      },
      callers: CALLERS,
      expected: {
        claimedEpochs: range(4, LIMIT).map((e) => `${e} reclaimed`),
        refusals: refused(1, CALLERS - (LIMIT - 3) - 1),
        allocation: allocation('ended', LIMIT, 'crash_loop'),
        audit: ['allocated@1', ...crashes(range(2, LIMIT)), `crash_loop/crash_loop@${LIMIT}`],
        gateway: { ready: false, current_is_last_claimer: true },
      },
    },
    {
      name: `${CALLERS} takeovers of a restarting allocation: the first is a restart reclaim (not counted), then ${LIMIT - 1} crash reclaims, then crash_loop`,
      setUp: async (a) => {
        expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch: 1 } })).status).toBe(200);
      },
      callers: CALLERS,
      expected: {
        claimedEpochs: range(2, LIMIT + 1).map((e) => `${e} reclaimed`),
        refusals: refused(1, CALLERS - LIMIT - 1),
        allocation: allocation('ended', LIMIT + 1, 'crash_loop'),
        audit: [
          'allocated@1',
          'restart_requested/deploy@1',
          'reclaimed/restart@2',
          ...crashes(range(3, LIMIT + 1)),
          `crash_loop/crash_loop@${LIMIT + 1}`,
        ],
        gateway: { ready: false, current_is_last_claimer: true },
      },
    },
    {
      name: `${CALLERS} takeovers when older crash reclaims fell out of the window: they do not count`,
      setUp: async (a) => {
        for (const epoch of [2, 3, 4]) expect(await takeOver(a)).toMatchObject({ status: 200, epoch });
        await sql(`UPDATE allocation_events SET at = now() - make_interval(secs => $2) WHERE allocation_id = $1 AND kind = 'reclaimed'`, [
          a.id,
          WINDOW + 10,
        ]);
      },
      callers: CALLERS,
      expected: {
        claimedEpochs: range(5, LIMIT + 3).map((e) => `${e} reclaimed`),
        refusals: refused(1, CALLERS - LIMIT),
        allocation: allocation('ended', LIMIT + 3, 'crash_loop'),
        audit: ['allocated@1', ...crashes(range(2, LIMIT + 3)), `crash_loop/crash_loop@${LIMIT + 3}`],
        gateway: { ready: false, current_is_last_claimer: true },
      },
    },
    {
      name: `${LIMIT - 1} takeovers at once stay under the limit: all reclaim, none is refused`,
      setUp: async () => undefined,
      callers: LIMIT - 1,
      expected: {
        claimedEpochs: range(2, LIMIT).map((e) => `${e} reclaimed`),
        refusals: [],
        allocation: allocation('active', LIMIT, null),
        audit: ['allocated@1', ...crashes(range(2, LIMIT))],
        gateway: { ready: true, current_is_last_claimer: true },
      },
    },
  ];
};

describe.each(['ready', 'reclaim'] as const)(
  `bursts of concurrent /gateway/%s takeovers (crash-loop limit ${LIMIT}, ${TRIALS} trials each)`,
  (claim) => {
    it.each(scenarios(claim).map((s) => [s.name, s] as const))('%s', async (_, scenario) => {
      const results = [];
      for (let trial = 0; trial < TRIALS; trial++) {
        const a = await g.live();
        await scenario.setUp(a);
        const instances = Array.from({ length: scenario.callers }, () => randomUUID());
        const answers = await Promise.all(instances.map((instance) => takeOver(a, instance, claim)));
        results.push(await outcome(a, answers, instances));
      }
      // Over the limit: more crash reclaims than the scenario allows (limit - 1 in the window), whatever became of the allocation.
      const allowed = scenario.expected.audit.filter((e) => e.startsWith('reclaimed/crash')).length;
      const over = results.filter((r) => r.summary.crashReclaims > allowed).length;
      const leftActive = results.filter((r) => r.summary.state === 'active' && r.summary.crashReclaims > allowed).length;
      expect(
        results.map((r) => r.observed),
        `${over} of ${TRIALS} trials had more crash reclaims than the limit allows (${leftActive} left active); ` +
          `crash reclaims per trial: ${results.map((r) => r.summary.crashReclaims).join(', ')}`,
      ).toEqual(Array(TRIALS).fill(scenario.expected));
    });
  },
);
