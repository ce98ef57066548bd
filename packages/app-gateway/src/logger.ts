/**
 * Structured logs: one JSON object a line on stdout (pino, also Fastify's logger), each with `role`
 * (gateway or supervisor), `pid`, and an `event` field naming what happened, for people and tests alike.
 * Written synchronously: the supervisor and its children share one stdout, and a handover's lines must appear in the
 * order things happened across those processes (a buffered line could trail what another process did after it).
 */
import { LOG_REDACT } from '@ganymede/http-server';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

export function createLogger(options: { level: LogLevel; role: 'gateway' | 'supervisor'; base?: Record<string, unknown> }): Logger {
  return pino(
    {
      level: options.level,
      redact: LOG_REDACT,
      base: { role: options.role, pid: process.pid, ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 1, sync: true }),
  );
}
