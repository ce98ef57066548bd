/**
 * The gateway process's metrics (prom-client), in a registry of its own (several gateways in one test process
 * never share a series). Counters are this process's: a hot restart starts the successor's from zero, which
 * Prometheus reads as a counter reset (`rate`, `increase` handle it).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { PHASES, type Phase } from './http-api.js';

/** What a snapshot push came to: stored, refused by Ganymede (a stale epoch, a revision conflict…), or failed (unreachable, timeout). */
export type PushOutcome = 'stored' | 'refused' | 'failed';
/**
 * Steps of a hot restart as this process lives them: `prepared` (asked Ganymede to keep the allocation for a
 * successor), `withdrawn` (the successor failed: serving on), `drained` (handed over: finishing what it has), and
 * `taken_over` (this process is the successor, accepting now).
 */
export type HandoverStep = 'prepared' | 'withdrawn' | 'drained' | 'taken_over';

export function createGatewayMetrics(view: { phase(): Phase; epoch(): number | null }) {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'gateway_phase',
    help: "This process's phase: 1 for the current one, 0 for the others.",
    labelNames: ['phase'],
    registers,
    collect() {
      const current = view.phase();
      for (const phase of PHASES) this.set({ phase }, phase === current ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gateway_epoch',
    help: 'The epoch at which this process serves its allocation (0: idle).',
    registers,
    collect() {
      this.set(view.epoch() ?? 0);
    },
  });
  return {
    registry,
    handovers: new Counter<'step'>({
      name: 'gateway_handovers_total',
      help: 'Hot-restart steps this process went through: prepared, withdrawn, drained, taken_over.',
      labelNames: ['step'],
      registers,
    }),
    drainedRequests: new Counter({
      name: 'gateway_drained_requests_total',
      help: 'Requests this process answered while draining (after its successor took over).',
      registers,
    }),
    snapshotPushes: new Counter<'outcome'>({
      name: 'gateway_snapshot_pushes_total',
      help: "Pushes of the organization's state to Ganymede, by outcome: stored, refused, failed.",
      labelNames: ['outcome'],
      registers,
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
