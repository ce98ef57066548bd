/**
 * Structured logs: one JSON object a line on stdout (pino, also Fastify's logger), each with `role`
 * (gateway or supervisor), `pid`, and an `event` field naming what happened, for people and tests alike.
 */
import { LOG_REDACT } from '@ganymede/http-server';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

export function createLogger(options: { level: LogLevel; role: 'gateway' | 'supervisor'; base?: Record<string, unknown> }): Logger {
  return pino({
    level: options.level,
    redact: LOG_REDACT,
    base: { role: options.role, pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
