/** What the numbers were measured on: CPU, cores, memory, Node, PostgreSQL, the date. */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  date: string;
  cpu: string;
  cores: number;
  memory_gib: number;
  os: string;
  node: string;
  postgres: string | null;
  load_average_at_start: number[];
}

export function machine(postgres: string | null): Machine {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory_gib: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres,
    load_average_at_start: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Resident set size of a process in MiB (Linux /proc), or NaN where that cannot be read. */
export function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
    return kb / 1024;
  } catch {
    return Number.NaN;
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time (user + system) a process has used so far, ms (Linux /proc), or NaN. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** CPU time the whole machine has been busy so far, all cores summed, ms (Linux /proc/stat), or NaN. */
export function machineBusyMs(): number {
  try {
    // cpu  user nice system idle iowait irq softirq steal …: all but idle and iowait.
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return ((user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / TICKS_PER_SECOND) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** CPU time used so far by every process named `name` on this machine (e.g. the PostgreSQL server's), ms. */
export function cpuMsOfCommand(name: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) total += cpuMs(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
