/**
 * The load process's entry (steady-load-process.ts forks it with tsx): runs the steady load given as its one
 * argument (JSON) and answers the parent's commands. When the IPC channel closes, it stops and exits.
 */
import type { LoadCommand, LoadReply } from './steady-load-process.js';
import { runSteadyLoad, type SteadyLoadOptions } from './steady-load.js';

const load = runSteadyLoad(JSON.parse(process.argv[2]!) as SteadyLoadOptions);

const reply = (message: LoadReply) =>
  new Promise<void>((resolve) => {
    if (!process.connected) return resolve();
    // The callback once the message is written, or failed (the parent is gone): either way there is nothing to wait for.
    process.send!(message, undefined, {}, () => resolve());
  });

const answer = async (command: LoadCommand): Promise<LoadReply> => {
  switch (command.type) {
    case 'snapshot':
      return { type: 'report', id: command.id, report: load.snapshot() };
    case 'phase':
      load.phase(command.name);
      return { type: 'report', id: command.id, report: load.snapshot() };
    case 'waitFor':
      return { type: 'report', id: command.id, report: await load.waitFor(command.atLeast, { timeoutMs: command.timeoutMs }) };
    case 'stop':
      return { type: 'report', id: command.id, report: await load.stop() };
  }
};

process.on('message', (command: LoadCommand) => {
  void answer(command)
    .catch((error: unknown): LoadReply => ({
      type: 'error',
      id: command.id,
      message: error instanceof Error ? error.message : String(error),
    }))
    .then(async (message) => {
      await reply(message);
      // The final report is delivered: closing the channel lets the process exit once its sockets are closed.
      if (command.type === 'stop' && process.connected) process.disconnect();
    });
});

// The parent disconnected (after `stop`, or it exited or died): stop sending; the process exits when the requests
// in flight settle. Exit explicitly all the same, should anything keep the event loop alive.
process.once('disconnect', () => {
  void load.stop().finally(() => process.exit());
});

void reply({ type: 'ready' });
