/**
 * Why the gateway is shutting down, decided from the signal it got and the marker files an operator
 * (or `gateway reload` / `gateway stop`) left. A restart reason keeps the allocation (/gateway/restart, exit 75);
 * a stop reason ends it (/gateway/stop, exit 0).
 *
 * | signal  | reload marker        | reason                                                               |
 * | ------- | -------------------- | -------------------------------------------------------------------- |
 * | SIGHUP  | any                  | restart: the marker's restart reason if it names one, else `reload`  |
 * | SIGUSR2 | any (left alone)     | restart: `restart`                                                   |
 * | SIGTERM | present              | restart: the marker's restart reason if it names one, else `reload`  |
 * | SIGTERM | absent               | stop: the stop reason in `<run dir>/stop-reason` if any, else `stop` |
 * | SIGINT  | any (left alone)     | stop: as SIGTERM without marker (SIGINT always means stop)           |
 *
 * A marker file that decided the reason is consumed (deleted) so it cannot leak into the next shutdown.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isRestartReason, type RestartReason, STOP_REASONS, type StopReason } from '@ganymede/contracts';

export const SHUTDOWN_SIGNALS = ['SIGHUP', 'SIGUSR2', 'SIGTERM', 'SIGINT'] as const;
export type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

export const STOP_REASON_FILE = 'stop-reason';

/** What a shutdown is for: a restart keeps the allocation, a stop ends it. */
export type ShutdownRequest = { kind: 'restart'; reason: RestartReason } | { kind: 'stop'; reason: StopReason };

export type ShutdownDecision =
  | { kind: 'restart'; reason: RestartReason; consumeReloadMarker: boolean; consumeStopReason: false }
  | { kind: 'stop'; reason: StopReason; consumeReloadMarker: false; consumeStopReason: boolean };

export interface MarkerState {
  /** The reload marker's content (trimmed), or null when the file does not exist. */
  reloadMarker: string | null;
  /** The content of `<run dir>/stop-reason` (trimmed), or null when the file does not exist. */
  stopReason: string | null;
}

const isStopReason = (value: string): value is StopReason => (STOP_REASONS as readonly string[]).includes(value);

/** The pure decision: no file is read or deleted here. */
export function decideShutdown(signal: ShutdownSignal, markers: MarkerState): ShutdownDecision {
  const restart = (reason: RestartReason, consumeReloadMarker: boolean): ShutdownDecision => ({
    kind: 'restart',
    reason,
    consumeReloadMarker,
    consumeStopReason: false,
  });
  const stop = (): ShutdownDecision => ({
    kind: 'stop',
    reason: markers.stopReason !== null && isStopReason(markers.stopReason) ? markers.stopReason : 'stop',
    consumeReloadMarker: false,
    consumeStopReason: markers.stopReason !== null,
  });
  const fromMarker = (marker: string): RestartReason => (isRestartReason(marker) ? marker : 'reload');

  switch (signal) {
    case 'SIGHUP':
      return markers.reloadMarker === null ? restart('reload', false) : restart(fromMarker(markers.reloadMarker), true);
    case 'SIGUSR2':
      return restart('restart', false);
    case 'SIGTERM':
      return markers.reloadMarker === null ? stop() : restart(fromMarker(markers.reloadMarker), true);
    case 'SIGINT':
      return stop();
  }
}

/** The file's trimmed content; null if it does not exist; '' if it exists but cannot be read (it still counts as present). */
function readTrimmed(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : '';
  }
}

function remove(path: string, warnings: string[]): void {
  try {
    rmSync(path, { force: true });
  } catch (error) {
    warnings.push(`could not delete ${path}: ${(error as Error).message}`);
  }
}

export interface MarkerPaths {
  reloadMarker: string;
  runDir: string;
}

export function readMarkers(paths: MarkerPaths): MarkerState {
  return { reloadMarker: readTrimmed(paths.reloadMarker), stopReason: readTrimmed(join(paths.runDir, STOP_REASON_FILE)) };
}

/** Deletes the marker files `decision` consumed; answers a warning for each that could not be deleted. */
export function consumeMarkers(decision: ShutdownDecision, paths: MarkerPaths): string[] {
  const warnings: string[] = [];
  if (decision.consumeReloadMarker) remove(paths.reloadMarker, warnings);
  if (decision.consumeStopReason) remove(join(paths.runDir, STOP_REASON_FILE), warnings);
  return warnings;
}

/** Reads the marker files, decides, and deletes the files the decision consumed. Never throws. */
export function resolveShutdownReason(signal: ShutdownSignal, paths: MarkerPaths): ShutdownDecision & { warnings: string[] } {
  const decision = decideShutdown(signal, readMarkers(paths));
  return { ...decision, warnings: consumeMarkers(decision, paths) };
}
