/** Pid files in the run dir: `supervisor.pid` (what `gateway reload`/`gateway stop` signal) and `child.pid`. */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SUPERVISOR_PID_FILE = 'supervisor.pid';
export const CHILD_PID_FILE = 'child.pid';

export function ensureRunDir(runDir: string): void {
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
}

export function writePid(runDir: string, file: string, pid: number): void {
  writeFileSync(join(runDir, file), `${pid}\n`);
}

/** The pid in the file, or null when there is no such file or it holds no pid. */
export function readPid(runDir: string, file: string): number | null {
  try {
    const pid = Number(readFileSync(join(runDir, file), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function removeFile(runDir: string, file: string): void {
  rmSync(join(runDir, file), { force: true });
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
