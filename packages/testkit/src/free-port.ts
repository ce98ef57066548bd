/** A free TCP port for a test or the benchmark to give a process (the supervisor binds its own port 0 itself). */
import { createServer } from 'node:net';

/** A free TCP port, found by listening on port 0 and closing (someone else may take it before you do). */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
