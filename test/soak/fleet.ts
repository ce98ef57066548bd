/**
 * The soak's processes: Ganymede (on PostgreSQL, two replicas on one schema) with short leases, and supervised
 * gateways logging their serving history, each reaching Ganymede through a TCP proxy of its own. Gateways and
 * replicas can be killed and started again; every incarnation's log lines are kept for the history checker.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type GanymedeProcess,
  type GatewayProcess,
  gatewayReady,
  type LogRecord,
  type RegisteredGateway,
  registerGateway,
  type StartGanymedeProcessOptions,
  startGanymedeProcess,
  startGatewayProcess,
  startTcpProxy,
  stopProcess,
  type TcpProxy,
} from '@ganymede/testkit';

/** Lease 2 s and grace 2 s: Ganymede ends a silent gateway's allocation after 4 s; the renew deadline is 3 s. */
export const LEASE_AND_GRACE_MS = 4_000;
/** A hot restart's old process finishes its open connections within this long: the checker's handover bound. */
export const DRAIN_TIMEOUT_MS = 1_000;

const GANYMEDE_OPTIONS: StartGanymedeProcessOptions = {
  reaperIntervalMs: 100,
  grace: 3,
  env: { GANYMEDE_LEASE_SECONDS: '2', GANYMEDE_LEASE_GRACE_SECONDS: '2' },
};

const GATEWAY_ENV = {
  GATEWAY_LOG_LEVEL: 'debug', // the serving history
  GATEWAY_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
  // A renewal held by a partition gives up in time for the next one (the renew deadline is 3 s).
  GATEWAY_REQUEST_TIMEOUT_MS: '1000',
  GATEWAY_HANDOVER_TIMEOUT_MS: '15000',
};

/** The longest a process gets to start or exit here: generous, for a loaded 2-core machine. */
const PROCESS_TIMEOUT_MS = 60_000;

export interface SoakGateway {
  index: number;
  gw: RegisteredGateway;
  /** Between this gateway and its replica of Ganymede. */
  proxy: TcpProxy;
  replica: number;
  /** Every supervisor started for it, the current one last. */
  runs: GatewayProcess[];
}

export interface Fleet {
  replicas: GanymedeProcess[];
  gateways: SoakGateway[];
  /** A replica that runs now (for the clients' calls), if any. */
  ganymede(): GanymedeProcess | undefined;
  /** SIGKILL replica `i`, leave it down `downMs`, start it again on the same port and database. */
  restartReplica(i: number, downMs: number): Promise<void>;
  /** The supervisor of gateway `i` that runs now. */
  supervisor(i: number): GatewayProcess;
  /** The pid of the child serving for gateway `i`'s supervisor (its pid file), if any. */
  childPid(i: number): Promise<number | null>;
  /** SIGKILL gateway `i`'s supervisor (its children shut down on their own), then start a new one. */
  restartSupervisor(i: number): Promise<void>;
  /** Every log line of every gateway process, supervisors and children, of every incarnation. */
  gatewayLogs(): LogRecord[];
  /** Everything killed (nothing left paused), proxies closed. */
  stop(): Promise<void>;
}

/** The children a supervisor started and has not seen exit. */
function liveChildren(p: GatewayProcess): number[] {
  const pids = (event: string) => p.proc.logs.filter((l) => l.event === event).map((l) => l.child_pid);
  const exited = new Set(pids('child_exited'));
  return pids('child_started').filter((pid): pid is number => typeof pid === 'number' && !exited.has(pid));
}

/** Resolves once the supervisor's child serves or is idle (the boot settled with Ganymede). */
const settled = (p: GatewayProcess) =>
  p.proc.waitForLog((l) => l.event === 'serving' || l.event === 'idle', { timeoutMs: PROCESS_TIMEOUT_MS });

export async function startFleet({ replicaCount, gatewayCount }: { replicaCount: number; gatewayCount: number }): Promise<Fleet> {
  const first = await startGanymedeProcess(GANYMEDE_OPTIONS);
  // The same data directory: the same signing key, and on PostgreSQL the same schema.
  const replicas = [first];
  for (let i = 1; i < replicaCount; i++) {
    replicas.push(await startGanymedeProcess({ ...GANYMEDE_OPTIONS, dataDir: first.dataDir }));
  }
  const down = new Set<number>();
  const gateways: SoakGateway[] = [];
  const supervise = (g: SoakGateway) =>
    startGatewayProcess(replicas[g.replica]!, g.gw, 'supervise', { ...GATEWAY_ENV, GANYMEDE_URL: g.proxy.url });

  const fleet: Fleet = {
    replicas,
    gateways,
    ganymede: () => replicas.find((_, i) => !down.has(i)),
    async restartReplica(i, downMs) {
      const old = replicas[i]!;
      down.add(i);
      await stopProcess(old.proc, 'SIGKILL');
      await sleep(downMs);
      replicas[i] = await startGanymedeProcess({ ...GANYMEDE_OPTIONS, dataDir: old.dataDir, port: old.port });
      down.delete(i);
    },
    supervisor: (i) => gateways[i]!.runs.at(-1)!,
    async childPid(i) {
      const text = await readFile(join(fleet.supervisor(i).runDir, 'child.pid'), 'utf8').catch(() => '');
      const pid = Number(text.trim());
      // Only a child this supervisor says runs: never a pid that another process may have been given since.
      return liveChildren(fleet.supervisor(i)).includes(pid) ? pid : null;
    },
    async restartSupervisor(i) {
      const g = gateways[i]!;
      // The supervisor's output pipe closes only once its children exited too: then the port is free again.
      await stopProcess(fleet.supervisor(i).proc, 'SIGKILL');
      const next = await supervise(g);
      g.runs.push(next);
      await settled(next);
    },
    gatewayLogs: () => gateways.flatMap((g) => g.runs.flatMap((r) => r.proc.logs)),
    async stop() {
      // A child left paused would keep its supervisor's pipe open: kill the children the supervisors say run.
      // (A restarted supervisor's predecessor had none left: restartSupervisor waited for them.)
      for (const pid of gateways.flatMap((g) => liveChildren(g.runs.at(-1)!))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }
      await Promise.all(gateways.flatMap((g) => g.runs.map((r) => stopProcess(r.proc, 'SIGKILL'))));
      await Promise.all(replicas.map((r) => stopProcess(r.proc, 'SIGKILL')));
      await Promise.all(gateways.map((g) => g.proxy.close()));
    },
  };

  try {
    for (let index = 0; index < gatewayCount; index++) {
      const replica = index % replicas.length;
      const g = replicas[replica]!;
      const gateway: SoakGateway = { index, gw: await registerGateway(g), proxy: await startTcpProxy({ port: g.port }), replica, runs: [] };
      gateways.push(gateway);
      const ready = gatewayReady(g, gateway.gw.gateway_id, undefined, g.proc.logs.length);
      gateway.runs.push(await supervise(gateway));
      await ready;
    }
  } catch (error) {
    await fleet.stop();
    throw error;
  }
  return fleet;
}
