import http from 'node:http';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import client from 'prom-client';
import type { LogLevel } from '../lib/config.js';
import { freePort } from '../lib/stack/ports.js';
import type { Logger } from '../lib/observability/logger.js';

const TEMPORAL_LEVEL: Record<LogLevel, 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR'> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
};

/** Sluice's own metrics, served beside Temporal's runtime metrics on one endpoint. */
export const sluiceMetrics = {
  registry: new client.Registry(),
  activityExecutions: undefined as unknown as client.Counter<'activity_type' | 'outcome' | 'task_queue'>,
  activityDuration: undefined as unknown as client.Histogram<'activity_type' | 'task_queue'>,
};
sluiceMetrics.activityExecutions = new client.Counter({
  name: 'sluice_activity_executions_total',
  help: 'Activity executions finished by this worker process, by outcome',
  labelNames: ['activity_type', 'outcome', 'task_queue'],
  registers: [sluiceMetrics.registry],
});
sluiceMetrics.activityDuration = new client.Histogram({
  name: 'sluice_activity_duration_seconds',
  help: 'Wall time of activity executions in this worker process',
  labelNames: ['activity_type', 'task_queue'],
  buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60, 300],
  registers: [sluiceMetrics.registry],
});
client.collectDefaultMetrics({ register: sluiceMetrics.registry, prefix: 'sluice_process_' });

export interface WorkerRuntimeOptions {
  logger: Logger;
  logLevel: LogLevel;
  /** Port of the combined Prometheus endpoint; `null` turns metrics off. */
  metricsPort: number | null;
  /** @default 127.0.0.1 */
  metricsHost?: string;
}

export interface WorkerRuntime {
  /** URL of `/metrics`, when metrics are on. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

/**
 * Installs the Temporal runtime for a worker process: Temporal's logs (workflow, activity and core) go to the JSON
 * logger, and one Prometheus endpoint serves Temporal's runtime metrics followed by Sluice's own. Core's exporter
 * listens on a private loopback port; this process's endpoint concatenates the two, so scrapers see one target.
 * Call before any connection or Worker exists.
 */
export async function installWorkerRuntime(opts: WorkerRuntimeOptions): Promise<WorkerRuntime> {
  const corePort = opts.metricsPort === null ? undefined : await freePort();
  Runtime.install({
    logger: new DefaultLogger(TEMPORAL_LEVEL[opts.logLevel], (entry: LogEntry) => {
      const { level, message, meta } = entry;
      const fn =
        level === 'TRACE'
          ? 'trace'
          : level === 'DEBUG'
            ? 'debug'
            : level === 'INFO'
              ? 'info'
              : level === 'WARN'
                ? 'warn'
                : 'error';
      opts.logger[fn]({ ...meta, temporal: true }, message);
    }),
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(corePort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${corePort}` } } } : {}),
    },
    shutdownSignals: [],
  });
  if (opts.metricsPort === null || corePort === undefined) return { metricsUrl: undefined, close: async () => {} };

  const host = opts.metricsHost ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    void (async () => {
      let core = '';
      try {
        core = await (await fetch(`http://127.0.0.1:${corePort}/metrics`)).text();
      } catch (err) {
        opts.logger.warn({ err }, 'Temporal runtime metrics unavailable');
      }
      const own = await sluiceMetrics.registry.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${core.trimEnd()}\n${own}`);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new Error(
          `metrics port ${host}:${opts.metricsPort} is not free (${err.message}); set another metricsPort in temporal-dev.yml`,
        ),
      ),
    );
    server.listen(opts.metricsPort ?? 0, host, () => resolve());
  });
  return {
    metricsUrl: `http://${host}:${opts.metricsPort}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
