import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config.js';

/**
 * Structured JSON logs on stdout, one object a line, with `component` naming the process part that wrote it.
 * Every Sluice process writes through this; Temporal's own logs are forwarded into it by the workers.
 */
export function createLogger(component: string, level: LogLevel = 'info'): Logger {
  return pino({
    level,
    base: { component, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

export type { Logger };
