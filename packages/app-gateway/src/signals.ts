/**
 * Process signal handlers, registered once per process and removable (graphile-worker's signals.ts pattern).
 */
import { GatewayError } from './errors.js';

let installed = false;

/** Calls `handler` for each of `signals` received. Throws if handlers are already installed. Returns the remover. */
export function onSignals<S extends NodeJS.Signals>(signals: readonly S[], handler: (signal: S) => void): () => void {
  if (installed) throw new GatewayError('SIGNAL_HANDLERS_INSTALLED', 'signal handlers are already installed in this process');
  installed = true;
  const listeners = signals.map((signal) => {
    const listener = () => handler(signal);
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
    installed = false;
  };
}
