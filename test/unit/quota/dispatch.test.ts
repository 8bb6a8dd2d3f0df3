import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { writeRateLimitRules } from '../../../lib/quota/dispatch/rate-limit-rules.js';
import {
  DELIVERY_HEADER,
  postWebhook,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from '../../../lib/quota/dispatch/webhook.js';
import { writeYunikornQueues, yunikornVcores } from '../../../lib/quota/dispatch/yunikorn.js';
import { DispatchFailed, DispatchRejected } from '../../../lib/quota/errors.js';
import { parseRateLimitRules, RateLimiter, watchRulesFile } from '../../../lib/quota/limiter/index.js';
import type { Quota, QuotaSpec } from '../../../schemas/quota.js';

function quota(id: string, spec: QuotaSpec): Quota {
  const [org, project, workload] = id.split('/') as [string, string, string];
  return {
    id,
    hierarchy: { org, project, workload },
    spec,
    owners: { users: ['alice'], groups: [] },
    tier: 'standard',
    budgetGroup: 'g',
    version: 1,
    updatedAt: new Date(0).toISOString(),
    updatedBy: 'test',
  };
}

const capacity = (gm: number, mm: number, gv: number, mv: number, apps: number): QuotaSpec => ({
  kind: 'capacity',
  guaranteedMemoryMb: gm,
  maxMemoryMb: mm,
  guaranteedVcores: gv,
  maxVcores: mv,
  maxApps: apps,
});

const quotas: Quota[] = [
  quota('ads/search/indexer', capacity(1024, 4096, 2, 8, 10)),
  quota('ads/search/ranker', capacity(0, 2048, 0, 1.5, 0)),
  quota('ads/serving/api', { kind: 'rateLimit', qps: 200, bandwidthBytesPerSec: null }),
  quota('ml/train/gpu', capacity(512, 512, 1, 1, 3)),
  quota('ml/train/tokens', { kind: 'custom', unit: 'gpu-hours', value: 40 }),
  quota('ml/serve/embed', { kind: 'rateLimit', qps: 50, bandwidthBytesPerSec: 1_000_000 }),
];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-dispatch-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Yunikorn queues.yaml', () => {
  it('renders org/project/workload queues with guaranteed/max memory and vcores and maxapplications', async () => {
    const file = path.join(dir, 'conf', 'queues.yaml');
    expect(await writeYunikornQueues(file, quotas, { partition: 'default' })).toBe(3);
    expect(readdirSync(path.dirname(file))).toEqual(['queues.yaml']); // no temp file left behind
    const doc = parse(readFileSync(file, 'utf8')) as {
      partitions: Array<{ name: string; queues: Array<{ name: string; submitacl: string; queues: unknown[] }> }>;
    };
    expect(doc.partitions).toHaveLength(1);
    const root = doc.partitions[0]!.queues[0]!;
    expect(root).toMatchObject({ name: 'root', parent: true, submitacl: '*' });
    expect(root.queues).toEqual([
      {
        name: 'ads',
        parent: true,
        queues: [
          {
            name: 'search',
            parent: true,
            queues: [
              {
                name: 'indexer',
                maxapplications: 10,
                resources: { guaranteed: { memory: '1024Mi', vcore: '2' }, max: { memory: '4096Mi', vcore: '8' } },
              },
              // zeros are left out: Yunikorn reads a missing max as unlimited and refuses all-zero quotas
              { name: 'ranker', resources: { max: { memory: '2048Mi', vcore: '1500m' } } },
            ],
          },
        ],
      },
      {
        name: 'ml',
        parent: true,
        queues: [
          {
            name: 'train',
            parent: true,
            queues: [
              {
                name: 'gpu',
                maxapplications: 3,
                resources: { guaranteed: { memory: '512Mi', vcore: '1' }, max: { memory: '512Mi', vcore: '1' } },
              },
            ],
          },
        ],
      },
    ]);
    expect(yunikornVcores(0.25)).toBe('250m');
  });
});

describe('rate-limit rules file', () => {
  it('is written atomically in the format the limiter loads, and a running limiter picks up a rewrite', async () => {
    const file = path.join(dir, 'rate-limits.json');
    expect(await writeRateLimitRules(file, quotas, new Date('2026-11-26T00:00:00Z'))).toBe(2);
    const parsed = parseRateLimitRules(readFileSync(file, 'utf8'));
    expect(parsed.rules).toEqual([
      { key: 'ads/serving/api', qps: 200, burst: 200, bandwidthBytesPerSec: null },
      { key: 'ml/serve/embed', qps: 50, burst: 50, bandwidthBytesPerSec: 1_000_000, burstBytes: 1_000_000 },
    ]);
    const limiter = new RateLimiter();
    const watch = await watchRulesFile(file, limiter, { pollIntervalMs: 50 });
    try {
      expect(limiter.ruleFor('ads/serving/api')?.qps).toBe(200);
      const changed = quotas.map((q) =>
        q.id === 'ads/serving/api'
          ? { ...q, spec: { kind: 'rateLimit' as const, qps: 20, bandwidthBytesPerSec: null } }
          : q,
      );
      await writeRateLimitRules(file, changed, new Date('2026-11-26T01:00:00Z'));
      const deadline = Date.now() + 5000;
      while (limiter.ruleFor('ads/serving/api')?.qps !== 20) {
        if (Date.now() > deadline) throw new Error('the limiter did not reload');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      watch.close();
    }
  });
});

describe('webhook', () => {
  const secret = 'test-secret';
  let server: Server;
  let url: string;
  let plan: number[] = [];
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        const status = plan.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `status ${status}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/quota`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    received.length = 0;
  });

  it('posts signed JSON and retries 5xx with the same delivery id', async () => {
    plan = [503, 500, 200];
    const result = await postWebhook({ event: 'quota.applied', n: 1 }, { url, secret, initialBackoffMs: 10 });
    expect(result).toMatchObject({ status: 200, attempts: 3 });
    expect(received).toHaveLength(3);
    const ids = new Set(received.map((r) => r.headers[DELIVERY_HEADER]));
    expect(ids.size).toBe(1);
    for (const r of received) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(JSON.parse(r.body)).toEqual({ event: 'quota.applied', n: 1 });
      const ts = r.headers[TIMESTAMP_HEADER] as string;
      expect(verifyWebhookSignature(secret, ts, r.body, r.headers[SIGNATURE_HEADER] as string)).toBe(true);
      expect(verifyWebhookSignature('wrong', ts, r.body, r.headers[SIGNATURE_HEADER] as string)).toBe(false);
    }
  });

  it('does not retry a 4xx, and gives up on endless 5xx with a retryable failure', async () => {
    plan = [401];
    await expect(postWebhook({ a: 1 }, { url, secret, initialBackoffMs: 10 })).rejects.toThrow(DispatchRejected);
    expect(received).toHaveLength(1);
    plan = [502, 502, 502];
    const err = await postWebhook({ a: 1 }, { url, secret, maxAttempts: 3, initialBackoffMs: 10 }).catch((e) => e);
    expect(err).toBeInstanceOf(DispatchFailed);
    expect((err as DispatchFailed).failureType).toBe('ServiceUnavailable');
    expect(received).toHaveLength(4);
  });

  it('reports an unreachable endpoint after its attempts', async () => {
    const err = await postWebhook({}, { url: 'http://127.0.0.1:1/x', maxAttempts: 2, initialBackoffMs: 5 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(DispatchFailed);
    expect((err as Error).message).toMatch(/after 2 attempts/);
  });
});
