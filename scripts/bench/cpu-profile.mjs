/**
 * Preloaded by `pnpm bench --profile DIR` (NODE_OPTIONS=--import, where node refuses --cpu-prof): profiles the whole
 * process with V8's sampling profiler and writes DIR/<pid>.cpuprofile when it exits. An in-thread inspector session
 * answers synchronously, so the profile is written within the 'exit' event.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
