import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createQuotaActivities, defaultRightsizer } from '../../activities/quota-activities.js';
import { renderPlanDiff } from '../../lib/quota/plan.js';
import { QuotaStore } from '../../lib/quota/store.js';
import type { HourlyUsage, UsageByQuota } from '../../lib/quota/usage.js';
import { defaultValidators, type QuotaValidator } from '../../lib/quota/validation.js';
import { QuotaPlanSummary, type QuotaDraft, type QuotaSpec, type QuotaWriteOutcome } from '../../schemas/quota.js';

// A budget group of 3,000 quotas, planned, stored and applied at the activity level against the real PostgreSQL
// from globalSetup: what the workflow holds stays a small fraction of Temporal's 2 MB payload limit, and the whole
// plan (before, after, reasons, the readable diff) is in the store.
const N = 3000;
const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-26T00:00:00Z');
const LOOKBACK = 72;
const schema = `quota_scale_${randomUUID().replaceAll('-', '').slice(0, 8)}`;
const rate = (qps: number): QuotaSpec => ({ kind: 'rateLimit', qps, bandwidthBytesPerSec: null });
const idOf = (k: number) => `scale/p${Math.floor(k / 100)}/w${k % 100}`;

function flat(quotaId: string, peak: number): HourlyUsage[] {
  return Array.from({ length: LOOKBACK }, (_, h) => ({
    quotaId,
    metric: 'qps' as const,
    hourStartMs: NOW - (LOOKBACK - h) * HOUR,
    avg: peak * 0.8,
    p95: peak * 0.9,
    peak,
  }));
}
// A current value the real recommender changes a little over flat 100 qps (auto-applied), like the workflow test.
const smallQps = (() => {
  for (let c = 50; c <= 400; c++) {
    const v = defaultRightsizer.recommend('qps', c, flat('probe', 100), NOW).value;
    if (Math.abs(v - c) / c > 0 && Math.abs(v - c) / c <= 0.08) return c;
  }
  throw new Error('no current value between 50 and 400 qps gets a small change from the recommender');
})();

let pool: pg.Pool;
let store: QuotaStore;
const usage: UsageByQuota = new Map();

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: inject('postgresUrl'), max: 4 });
  // One custom rule refuses any change to one quota: the batch check must drop that proposal alone.
  const frozen: QuotaValidator = {
    name: 'frozen',
    validate: ({ changes }) =>
      changes
        .filter((c) => c.previous && c.next && c.next.id === idOf(2))
        .map((c) => ({ quotaId: c.next!.id, rule: 'frozen', message: 'frozen for the test' })),
  };
  store = await QuotaStore.open({
    pool,
    schema,
    trustedPrincipals: ['sluice-rightsizer'],
    validators: [...defaultValidators(), frozen],
  });
  await store.setApprovers('scale', ['carol']);
  // Every third quota gets a small change (auto), the rest a large one (approval).
  const drafts: QuotaDraft[] = Array.from({ length: N }, (_, k) => {
    const id = idOf(k);
    const [org, project, workload] = id.split('/') as [string, string, string];
    usage.set(id, new Map([['qps', flat(id, 100)]]));
    return {
      id,
      hierarchy: { org, project, workload },
      spec: rate(k % 3 === 0 ? smallQps : 1000),
      owners: { users: [`owner-${k % 50}`], groups: [] },
      tier: 'standard',
      budgetGroup: 'scale',
    };
  });
  await store.write(
    drafts.map((draft) => ({ op: 'create' as const, draft })),
    'carol',
    'scale test setup',
  );
}, 300_000);

afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool?.end();
});

describe(`a plan of ${N} quotas`, () => {
  it('is stored in PostgreSQL; the workflow gets a summary far below the payload limit; auto changes apply', async () => {
    const activities = createQuotaActivities({ store, usageReaderFor: () => ({ read: async () => usage }) });
    const env = new MockActivityEnvironment();
    const key = { workflowId: 'quota-rightsize/scale', runId: 'run-1' };
    const started = Date.now();
    const summary: QuotaPlanSummary = await env.run(activities.planQuotaRightsizeStored, {
      budgetGroup: 'scale',
      asOf: new Date(NOW).toISOString(),
      lookbackHours: LOOKBACK,
      plan: key,
    });
    const planMs = Date.now() - started;
    expect(QuotaPlanSummary.parse(summary)).toEqual(summary);
    expect(summary.entries).toHaveLength(N);
    const gates = { auto: 0, approval: 0, none: 0 };
    for (const e of summary.entries) gates[e.gate]++;
    expect(gates).toEqual({ auto: N / 3, approval: (2 * N) / 3 - 1, none: 1 });
    expect(summary.entries.find((e) => e.quotaId === idOf(2))).toMatchObject({
      quotaId: idOf(2),
      gate: 'none',
      status: 'unchanged',
    });
    expect(summary.warningCount).toBe(1);
    expect(summary.warnings[0]).toMatch(/scale\/p0\/w2: the proposed change fails validation \(\[frozen\] frozen/);

    // What travels through Temporal (activity result, query, workflow result) against what is stored.
    const summaryBytes = Buffer.byteLength(JSON.stringify(summary));
    const stored = (await store.readPlan(key))!;
    const { applied: _applied, ...plan } = stored;
    plan.diff = renderPlanDiff(plan);
    const fullBytes = Buffer.byteLength(JSON.stringify(plan));
    console.log(
      `${N} quotas: planned and stored in ${planMs} ms; summary ${summaryBytes} B, whole plan ${fullBytes} B`,
    );
    expect(summaryBytes).toBeLessThan(512 * 1024);
    expect(fullBytes).toBeGreaterThan(summaryBytes * 4);
    expect(stored.entries).toHaveLength(N);
    expect(stored.entries.map((e) => e.quotaId)).toEqual(summary.entries.map((e) => e.quotaId));
    expect(plan.diff).toContain(`~ ${idOf(1)} (rateLimit, tier standard, v1) [approval: pending]`);
    expect(plan.diff.split('\n').filter((l) => l.startsWith('~ '))).toHaveLength(N - 1);
    expect(plan.diff).toContain(`= ${idOf(2)} (rateLimit, tier standard, v1) [none: unchanged]`);

    // Auto-apply of a thousand changes: one transaction, each write checked on its own.
    const autoIds = summary.entries.filter((e) => e.gate === 'auto').map((e) => e.quotaId);
    // One of them was edited by hand meanwhile: a conflict for it, the others apply.
    await store.update(idOf(0), 1, { spec: rate(smallQps + 1) }, 'owner-0', 'hand edit');
    const applyStarted = Date.now();
    const outcomes: QuotaWriteOutcome[] = await env.run(activities.applyQuotaChanges, {
      plan: key,
      quotaIds: autoIds,
      actor: 'sluice-rightsizer',
      reason: 'scale auto-apply',
      atomic: false,
    });
    console.log(`${autoIds.length} auto-applied changes over ${N} quotas: ${Date.now() - applyStarted} ms`);
    expect(outcomes).toHaveLength(autoIds.length);
    expect(outcomes.filter((o) => o.status === 'applied')).toHaveLength(autoIds.length - 1);
    expect(outcomes.find((o) => o.quotaId === idOf(0))).toMatchObject({ status: 'conflict' });
    const planned = stored.entries.find((e) => e.quotaId === idOf(3))!;
    expect(await store.require(idOf(3))).toMatchObject({ version: 2, spec: planned.after });
    const after = await store.readPlan(key);
    expect(after!.applied.get(idOf(3))).toEqual({ spec: planned.after, schedule: null, by: 'sluice-rightsizer' });
    expect(after!.applied.get(idOf(0))).toBeUndefined();
  }, 300_000);

  it('refuses a decision recorded for another run', async () => {
    const activities = createQuotaActivities({ store });
    const env = new MockActivityEnvironment();
    const other = await store.recordDecision({
      workflowId: 'quota-rightsize/elsewhere',
      budgetGroup: 'scale',
      decision: 'approve',
      as: 'carol',
    });
    const refused = await env
      .run(activities.authorizeQuotaDecision, {
        decisionId: other.id,
        workflowId: 'quota-rightsize/scale',
        budgetGroup: 'scale',
        pending: [idOf(1)],
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApplicationFailure);
    expect(refused).toMatchObject({ type: 'PolicyDenied', nonRetryable: true });
    expect((refused as Error).message).toMatch(/was not recorded for run quota-rightsize\/scale/);
    const mine = await store.recordDecision({
      workflowId: 'quota-rightsize/scale',
      budgetGroup: 'scale',
      decision: 'reject',
      as: 'owner-1',
      quotaIds: [idOf(1)],
    });
    await expect(
      env.run(activities.authorizeQuotaDecision, {
        decisionId: mine.id,
        workflowId: 'quota-rightsize/scale',
        budgetGroup: 'scale',
        pending: [idOf(1), idOf(2)],
      }),
    ).resolves.toEqual({
      decisionId: mine.id,
      decision: 'reject',
      actor: 'owner-1',
      quotaIds: [idOf(1)],
      reason: null,
    });
  });
});
