import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UsageUnavailable } from '../../../lib/quota/errors.js';
import {
  icebergUsageReader,
  prometheusUsageReader,
  writeUsageSamples,
  type HourlyUsage,
} from '../../../lib/quota/usage.js';
import { createTempCatalog, type TempCatalog } from '../../fixtures/temp-catalog.js';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-11-20T00:00:00Z');

describe('usage from the Iceberg table', () => {
  let temp: TempCatalog;
  beforeEach(async () => {
    temp = await createTempCatalog('sluice-usage-');
  });
  afterEach(() => temp.cleanup());

  it('reads back the window of the quotas asked for, by metric and hour, last write winning', async () => {
    const samples: HourlyUsage[] = [];
    for (let h = 0; h < 48; h++) {
      samples.push({
        quotaId: 'a/b/c',
        hourStartMs: T0 + h * HOUR,
        metric: 'memoryMb',
        avg: h,
        p95: h + 0.5,
        peak: h + 1,
      });
      samples.push({ quotaId: 'a/b/c', hourStartMs: T0 + h * HOUR, metric: 'vcores', avg: 1, p95: null, peak: 2 });
      samples.push({ quotaId: 'x/y/z', hourStartMs: T0 + h * HOUR, metric: 'qps', avg: 10, p95: 12, peak: 15 });
    }
    await writeUsageSamples(temp.catalog, temp.io, samples, 'quota.usage_hourly', T0 + 49 * HOUR);
    // A re-run of the aggregation appends hour 30 again with a corrected value; a stale re-run loses to it.
    await writeUsageSamples(
      temp.catalog,
      temp.io,
      [{ quotaId: 'a/b/c', hourStartMs: T0 + 30 * HOUR, metric: 'memoryMb', avg: 99, p95: 99, peak: 100 }],
      'quota.usage_hourly',
      T0 + 51 * HOUR,
    );
    await writeUsageSamples(
      temp.catalog,
      temp.io,
      [{ quotaId: 'a/b/c', hourStartMs: T0 + 30 * HOUR, metric: 'memoryMb', avg: 1, p95: 1, peak: 1 }],
      'quota.usage_hourly',
      T0 + 50 * HOUR,
    );
    const reader = icebergUsageReader(temp.catalog, temp.io, 'quota.usage_hourly');
    const usage = await reader.read({
      quotaIds: ['a/b/c', 'missing/q/x'],
      fromMs: T0 + 24 * HOUR,
      toMs: T0 + 48 * HOUR,
    });
    expect([...usage.keys()]).toEqual(['a/b/c']);
    const memory = usage.get('a/b/c')!.get('memoryMb')!;
    expect(memory).toHaveLength(24);
    expect(memory[0]).toEqual({
      quotaId: 'a/b/c',
      hourStartMs: T0 + 24 * HOUR,
      metric: 'memoryMb',
      avg: 24,
      p95: 24.5,
      peak: 25,
    });
    expect(memory[6]!.peak).toBe(100);
    expect(usage.get('a/b/c')!.get('vcores')![0]!.p95).toBeNull();
    // A table that does not exist yet reads as no usage.
    expect(
      (
        await icebergUsageReader(temp.catalog, temp.io, 'quota.nothing').read({
          quotaIds: ['a/b/c'],
          fromMs: 0,
          toMs: T0,
        })
      ).size,
    ).toBe(0);
  });

  it('refuses samples that are not on the hour', async () => {
    await expect(
      writeUsageSamples(temp.catalog, temp.io, [
        { quotaId: 'a', hourStartMs: T0 + 1, metric: 'qps', avg: 1, p95: 1, peak: 1 },
      ]),
    ).rejects.toThrow(/not on the hour/);
  });
});

describe('usage from a Prometheus-compatible API', () => {
  let server: Server;
  let url: string;
  const queries: string[] = [];
  let failNext = false;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.pathname !== '/api/v1/query_range') return res.writeHead(404).end();
      if (failNext) {
        failNext = false;
        return res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' }));
      }
      const query = u.searchParams.get('query')!;
      queries.push(query);
      const start = Number(u.searchParams.get('start'));
      const end = Number(u.searchParams.get('end'));
      expect(u.searchParams.get('step')).toBe('3600');
      const fn = /^(\w+)/.exec(query)![1];
      const value = fn === 'avg_over_time' ? 10 : fn === 'max_over_time' ? 30 : 20;
      const values: Array<[number, string]> = [];
      for (let t = start; t <= end; t += 3600) values.push([t, String(value)]);
      const result = [
        { metric: { quota_id: 'a/b/c' }, values },
        { metric: { quota_id: 'not/asked/for' }, values },
        { metric: {}, values },
      ];
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('aggregates each metric per hour (avg, p95, peak) into hourly samples for the quotas asked for', async () => {
    const reader = prometheusUsageReader({ url, queries: { qps: 'sum by (quota_id) (rate(requests_total[5m]))' } });
    const usage = await reader.read({ quotaIds: ['a/b/c'], fromMs: T0, toMs: T0 + 6 * HOUR });
    expect([...usage.keys()]).toEqual(['a/b/c']);
    const qps = usage.get('a/b/c')!.get('qps')!;
    expect(qps).toHaveLength(6);
    expect(qps[0]).toEqual({ quotaId: 'a/b/c', hourStartMs: T0, metric: 'qps', avg: 10, p95: 20, peak: 30 });
    expect(qps[5]!.hourStartMs).toBe(T0 + 5 * HOUR);
    expect(queries).toContain('avg_over_time((sum by (quota_id) (rate(requests_total[5m])))[1h:])');
    expect(queries).toContain('quantile_over_time(0.95, (sum by (quota_id) (rate(requests_total[5m])))[1h:])');
  });

  it('reports a failing query as UsageUnavailable with the server error', async () => {
    failNext = true;
    const reader = prometheusUsageReader({ url, queries: { qps: 'bad(' } });
    const err = await reader.read({ quotaIds: ['a/b/c'], fromMs: T0, toMs: T0 + 2 * HOUR }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageUnavailable);
    expect((err as Error).message).toMatch(/parse error at char 3/);
  });
});
