import type { SqlCatalog } from '../iceberg/catalog/index.js';
import { appendColumns } from '../iceberg/append.js';
import { and, gtEq, isIn, lt } from '../iceberg/expressions.js';
import { scanTable } from '../iceberg/scan.js';
import { Types, type Schema } from '../iceberg/types.js';
import type { FileIO } from '../storage/file-io.js';
import type { UsageMetric } from '../../schemas/quota.js';
import { UsageUnavailable } from './errors.js';

/**
 * Hourly pre-aggregated usage samples, from the Iceberg table Sluice writes (`quota.usage_hourly`) or from a
 * Prometheus-compatible query API. Both give the same shape: per quota and metric, one sample per hour with the
 * hour's average, p95 and peak. A quota with no samples is simply absent: the planner then keeps its value and
 * warns.
 */

/** One hour of one metric of one quota. */
export interface HourlyUsage {
  quotaId: string;
  /** Start of the hour, ms since the epoch (UTC). */
  hourStartMs: number;
  metric: UsageMetric;
  avg: number;
  /** 95th percentile within the hour; null when the source has none. */
  p95: number | null;
  peak: number;
}

/** Usage by quota id, then metric; samples ordered by hour. */
export type UsageByQuota = Map<string, Map<UsageMetric, HourlyUsage[]>>;

/** A window of hours: `[fromMs, toMs)`. */
export interface UsageWindow {
  quotaIds: readonly string[];
  fromMs: number;
  toMs: number;
}

/** Anything that reads usage for a window. */
export interface UsageReader {
  read(window: UsageWindow): Promise<UsageByQuota>;
}

const HOUR_MS = 3_600_000;

function groupUsage(samples: Iterable<HourlyUsage>): UsageByQuota {
  const out: UsageByQuota = new Map();
  for (const s of samples) {
    let byMetric = out.get(s.quotaId);
    if (!byMetric) out.set(s.quotaId, (byMetric = new Map()));
    let list = byMetric.get(s.metric);
    if (!list) byMetric.set(s.metric, (list = []));
    list.push(s);
  }
  for (const byMetric of out.values()) {
    for (const list of byMetric.values()) list.sort((a, b) => a.hourStartMs - b.hourStartMs);
  }
  return out;
}

// ---- Iceberg ------------------------------------------------------------------------------------------------------

/** The usage table's schema: one row per quota, hour and metric. Partitioned by day of `hour`. */
export const USAGE_TABLE_SCHEMA: Schema = {
  schemaId: 0,
  identifierFieldIds: [],
  fields: [
    { id: 1, name: 'quota_id', required: true, type: Types.string },
    { id: 2, name: 'hour', required: true, type: Types.timestamptz, doc: 'start of the hour (UTC)' },
    { id: 3, name: 'metric', required: true, type: Types.string, doc: 'memoryMb, vcores, apps, qps, …' },
    { id: 4, name: 'avg', required: true, type: Types.double },
    { id: 5, name: 'p95', required: false, type: Types.double },
    { id: 6, name: 'peak', required: true, type: Types.double },
    { id: 7, name: 'aggregated_at', required: false, type: Types.timestamptz, doc: 'when the hour was aggregated' },
  ],
};

/** Default table of the usage samples. */
export const DEFAULT_USAGE_TABLE = 'quota.usage_hourly';

/** Creates the usage table (and its namespace) when missing. */
export async function ensureUsageTable(catalog: SqlCatalog, table = DEFAULT_USAGE_TABLE): Promise<void> {
  if (await catalog.tableExists(table)) return;
  const namespace = table.split('.').slice(0, -1).join('.');
  if (!(await catalog.namespaceExists(namespace))) {
    await catalog.createNamespace(namespace).catch(async (err: unknown) => {
      if (!(await catalog.namespaceExists(namespace))) throw err;
    });
  }
  await catalog
    .createTable(table, {
      schema: USAGE_TABLE_SCHEMA,
      partitionSpec: [{ sourceColumn: 'hour', transform: 'day' }],
      properties: { 'sluice.purpose': 'hourly quota usage samples (lib/quota/usage.ts)' },
    })
    .catch(async (err: unknown) => {
      if (!(await catalog.tableExists(table))) throw err;
    });
}

/**
 * Appends usage samples as one snapshot. Hours must be aligned to the hour. Each row carries `aggregatedAtMs`, so
 * that a re-aggregated hour (appended again) wins over the earlier row when read.
 */
export async function writeUsageSamples(
  catalog: SqlCatalog,
  io: FileIO,
  samples: readonly HourlyUsage[],
  table = DEFAULT_USAGE_TABLE,
  aggregatedAtMs: number = Date.now(),
): Promise<void> {
  if (samples.length === 0) return;
  for (const s of samples) {
    if (s.hourStartMs % HOUR_MS !== 0) {
      throw new TypeError(
        `usage sample of "${s.quotaId}" starts at ${new Date(s.hourStartMs).toISOString()}, not on the hour`,
      );
    }
  }
  await ensureUsageTable(catalog, table);
  await appendColumns(catalog, io, table, {
    columns: new Map<number, unknown[]>([
      [1, samples.map((s) => s.quotaId)],
      [2, samples.map((s) => BigInt(s.hourStartMs) * 1000n)],
      [3, samples.map((s) => s.metric)],
      [4, samples.map((s) => s.avg)],
      [5, samples.map((s) => s.p95)],
      [6, samples.map((s) => s.peak)],
      [7, samples.map(() => BigInt(aggregatedAtMs) * 1000n)],
    ]),
  });
}

const METRICS: ReadonlySet<string> = new Set(['memoryMb', 'vcores', 'apps', 'qps', 'bandwidthBytesPerSec', 'custom']);

/**
 * Reads usage from the Iceberg table. When a quota, hour and metric appear more than once (a re-run of the
 * aggregation appended them again), the row aggregated last wins. A missing table reads as no usage.
 */
export function icebergUsageReader(catalog: SqlCatalog, io: FileIO, table = DEFAULT_USAGE_TABLE): UsageReader {
  return {
    async read(window) {
      if (window.quotaIds.length === 0 || !(await catalog.tableExists(table))) return new Map();
      const { metadata } = await catalog.loadTable(table);
      const byKey = new Map<string, { sample: HourlyUsage; aggregatedAt: bigint }>();
      const filter = and(
        gtEq('hour', new Date(window.fromMs)),
        lt('hour', new Date(window.toMs)),
        isIn('quota_id', [...window.quotaIds]),
      );
      for await (const batch of scanTable(io, metadata, { filter })) {
        const ids = batch.columns.get(1)!;
        const hours = batch.columns.get(2)!;
        const metrics = batch.columns.get(3)!;
        const avgs = batch.columns.get(4)!;
        const p95s = batch.columns.get(5)!;
        const peaks = batch.columns.get(6)!;
        const aggregated = batch.columns.get(7)!;
        for (let i = 0; i < batch.rowCount; i++) {
          const metric = metrics[i] as string;
          if (!METRICS.has(metric)) continue; // a metric this version does not know: not ours to interpret
          const sample: HourlyUsage = {
            quotaId: ids[i] as string,
            hourStartMs: Number((hours[i] as bigint) / 1000n),
            metric: metric as UsageMetric,
            avg: avgs[i] as number,
            p95: (p95s[i] as number | null) ?? null,
            peak: peaks[i] as number,
          };
          const key = `${sample.quotaId}\u0000${sample.metric}\u0000${sample.hourStartMs}`;
          const aggregatedAt = (aggregated[i] as bigint | null) ?? 0n;
          const seen = byKey.get(key);
          if (!seen || aggregatedAt >= seen.aggregatedAt) byKey.set(key, { sample, aggregatedAt });
        }
      }
      return groupUsage([...byKey.values()].map((v) => v.sample));
    },
  };
}

// ---- Prometheus ---------------------------------------------------------------------------------------------------

/** Options of {@link prometheusUsageReader}. */
export interface PrometheusUsageOptions {
  /** Base URL, e.g. `http://prometheus:9090`. */
  url: string;
  /** A PromQL expression per metric returning one series per quota, labelled `quota_id`. */
  queries: Partial<Record<UsageMetric, string>>;
  /** The label holding the quota id. @default quota_id */
  quotaLabel?: string;
  /** @default 30000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

interface PromMatrixResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
}

/**
 * Reads usage from a Prometheus-compatible API (`/api/v1/query_range`, step 1h). Each metric's expression is
 * aggregated per hour with subqueries: `avg_over_time`, `quantile_over_time(0.95, …)` and `max_over_time` over
 * `[1h:]`. A point at time t covers the hour before t.
 */
export function prometheusUsageReader(options: PrometheusUsageOptions): UsageReader {
  const doFetch = options.fetch ?? fetch;
  const label = options.quotaLabel ?? 'quota_id';
  async function queryRange(expr: string, startS: number, endS: number) {
    const url = new URL('/api/v1/query_range', options.url);
    url.searchParams.set('query', expr);
    url.searchParams.set('start', String(startS));
    url.searchParams.set('end', String(endS));
    url.searchParams.set('step', '3600');
    let response: Response;
    try {
      response = await doFetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
    } catch (err) {
      throw new UsageUnavailable(`Prometheus at ${options.url} did not answer: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await response.text();
    let body: PromMatrixResponse;
    try {
      body = JSON.parse(text) as PromMatrixResponse;
    } catch {
      throw new UsageUnavailable(
        `Prometheus at ${options.url} answered ${response.status} with non-JSON: ${text.slice(0, 200)}`,
      );
    }
    if (!response.ok || body.status !== 'success' || body.data?.resultType !== 'matrix') {
      throw new UsageUnavailable(
        `Prometheus query failed (${response.status}): ${body.error ?? `resultType ${body.data?.resultType}`}; query: ${expr}`,
      );
    }
    return body.data.result;
  }

  return {
    async read(window) {
      const wanted = new Set(window.quotaIds);
      // Points at the end of each hour: t covers [t - 1h, t).
      const startS = Math.ceil(window.fromMs / HOUR_MS) * 3600 + 3600;
      const endS = Math.floor(window.toMs / HOUR_MS) * 3600;
      if (wanted.size === 0 || endS < startS) return new Map();
      const samples = new Map<string, HourlyUsage>();
      for (const [metric, expr] of Object.entries(options.queries) as Array<[UsageMetric, string]>) {
        const [avg, p95, peak] = await Promise.all([
          queryRange(`avg_over_time((${expr})[1h:])`, startS, endS),
          queryRange(`quantile_over_time(0.95, (${expr})[1h:])`, startS, endS),
          queryRange(`max_over_time((${expr})[1h:])`, startS, endS),
        ]);
        const put = (series: typeof avg, field: 'avg' | 'p95' | 'peak') => {
          for (const s of series) {
            const quotaId = s.metric[label];
            if (quotaId === undefined || !wanted.has(quotaId)) continue;
            for (const [t, v] of s.values) {
              const value = Number(v);
              if (!Number.isFinite(value)) continue;
              const hourStartMs = Math.round(t * 1000) - HOUR_MS;
              const key = `${quotaId}\u0000${metric}\u0000${hourStartMs}`;
              let sample = samples.get(key);
              if (!sample) {
                sample = { quotaId, hourStartMs, metric, avg: NaN, p95: null, peak: NaN };
                samples.set(key, sample);
              }
              sample[field] = value;
            }
          }
        };
        put(avg, 'avg');
        put(p95, 'p95');
        put(peak, 'peak');
      }
      // An hour needs both the average and the peak; a half-answered hour is dropped rather than guessed.
      return groupUsage([...samples.values()].filter((s) => Number.isFinite(s.avg) && Number.isFinite(s.peak)));
    },
  };
}
