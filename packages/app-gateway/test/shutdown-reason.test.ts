import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decideShutdown, resolveShutdownReason, SHUTDOWN_SIGNALS, type ShutdownSignal, STOP_REASON_FILE } from '../src/shutdown-reason.js';

/** Marker contents to try: absent, empty (`touch`), each kind of reason, garbage. */
const MARKERS = [null, '', 'reload', 'deploy', 'restart', 'stop', 'nonsense'] as const;
const STOP_REASONS = [null, 'decommission', 'idle', 'stop', 'reload', 'nonsense'] as const;

type Expected = { kind: 'restart' | 'stop'; reason: string; consumeReloadMarker: boolean; consumeStopReason: boolean };

/** The table from shutdown-reason.ts, written independently. */
function expected(signal: ShutdownSignal, marker: string | null, stopReason: string | null): Expected {
  const restartFrom = (m: string) => (['reload', 'deploy', 'restart'].includes(m) ? m : 'reload');
  const stop: Expected = {
    kind: 'stop',
    reason: stopReason !== null && ['stop', 'idle', 'decommission'].includes(stopReason) ? stopReason : 'stop',
    consumeReloadMarker: false,
    consumeStopReason: stopReason !== null,
  };
  if (signal === 'SIGUSR2') return { kind: 'restart', reason: 'restart', consumeReloadMarker: false, consumeStopReason: false };
  if (signal === 'SIGINT') return stop;
  if (marker !== null) return { kind: 'restart', reason: restartFrom(marker), consumeReloadMarker: true, consumeStopReason: false };
  if (signal === 'SIGHUP') return { kind: 'restart', reason: 'reload', consumeReloadMarker: false, consumeStopReason: false };
  return stop;
}

describe('decideShutdown', () => {
  const cases = SHUTDOWN_SIGNALS.flatMap((signal) =>
    MARKERS.flatMap((marker) => STOP_REASONS.map((stopReason) => [signal, marker, stopReason] as const)),
  );
  it.each(cases)('%s, reload marker %j, stop-reason %j', (signal, marker, stopReason) => {
    expect(decideShutdown(signal, { reloadMarker: marker, stopReason })).toEqual(expected(signal, marker, stopReason));
  });

  it('spells out the headline cases', () => {
    const none = { reloadMarker: null, stopReason: null };
    expect(decideShutdown('SIGHUP', none)).toMatchObject({ kind: 'restart', reason: 'reload' });
    expect(decideShutdown('SIGUSR2', none)).toMatchObject({ kind: 'restart', reason: 'restart' });
    expect(decideShutdown('SIGTERM', none)).toMatchObject({ kind: 'stop', reason: 'stop' });
    expect(decideShutdown('SIGINT', none)).toMatchObject({ kind: 'stop', reason: 'stop' });
    expect(decideShutdown('SIGTERM', { reloadMarker: '', stopReason: null })).toMatchObject({ kind: 'restart', reason: 'reload' });
    expect(decideShutdown('SIGTERM', { reloadMarker: 'deploy', stopReason: null })).toMatchObject({ kind: 'restart', reason: 'deploy' });
    // SIGINT always means stop, even with a reload marker present.
    expect(decideShutdown('SIGINT', { reloadMarker: 'deploy', stopReason: 'decommission' })).toMatchObject({
      kind: 'stop',
      reason: 'decommission',
    });
  });
});

describe('resolveShutdownReason (files)', () => {
  const setup = (marker: string | null, stopReason: string | null) => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-reason-'));
    const runDir = join(dir, 'run');
    mkdirSync(runDir);
    const reloadMarker = join(dir, 'reloading');
    if (marker !== null) writeFileSync(reloadMarker, `${marker}\n`);
    if (stopReason !== null) writeFileSync(join(runDir, STOP_REASON_FILE), `${stopReason}\n`);
    return { reloadMarker, runDir, stopReasonPath: join(runDir, STOP_REASON_FILE) };
  };

  it('SIGTERM with a marker naming deploy: restart (deploy), the marker is consumed, the stop-reason kept', () => {
    const paths = setup('deploy', 'decommission');
    expect(resolveShutdownReason('SIGTERM', paths)).toMatchObject({ kind: 'restart', reason: 'deploy', warnings: [] });
    expect(existsSync(paths.reloadMarker)).toBe(false);
    expect(existsSync(paths.stopReasonPath)).toBe(true);
  });

  it('SIGTERM without marker reads and consumes the stop-reason file', () => {
    const paths = setup(null, 'decommission');
    expect(resolveShutdownReason('SIGTERM', paths)).toMatchObject({ kind: 'stop', reason: 'decommission' });
    expect(existsSync(paths.stopReasonPath)).toBe(false);
  });

  it('SIGINT leaves a reload marker alone', () => {
    const paths = setup('reload', null);
    expect(resolveShutdownReason('SIGINT', paths)).toMatchObject({ kind: 'stop', reason: 'stop' });
    expect(existsSync(paths.reloadMarker)).toBe(true);
  });

  it('SIGHUP consumes the marker and takes its reason', () => {
    const paths = setup('restart', null);
    expect(resolveShutdownReason('SIGHUP', paths)).toMatchObject({ kind: 'restart', reason: 'restart' });
    expect(existsSync(paths.reloadMarker)).toBe(false);
  });

  it('SIGUSR2 leaves the marker alone', () => {
    const paths = setup('deploy', null);
    expect(resolveShutdownReason('SIGUSR2', paths)).toMatchObject({ kind: 'restart', reason: 'restart' });
    expect(existsSync(paths.reloadMarker)).toBe(true);
  });

  it('an unreadable marker (a directory) still counts as present', () => {
    const paths = setup(null, null);
    mkdirSync(paths.reloadMarker);
    const decision = resolveShutdownReason('SIGTERM', paths);
    expect(decision).toMatchObject({ kind: 'restart', reason: 'reload' });
  });
});
