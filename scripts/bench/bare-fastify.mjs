/**
 * The floor for HTTP: a bare Fastify JSON route (POST, a small JSON body in and out), no contract, no
 * validation, no logging, no database. Plain JavaScript, started like Ganymede (plain node); prints its port.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/echo', async (request) => ({ ok: true, got: request.body }));
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ event: 'listening', url: address })}\n`);
process.once('SIGTERM', () => void app.close());
