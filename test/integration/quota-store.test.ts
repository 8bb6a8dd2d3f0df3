import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import {
  QuotaAccessDenied,
  QuotaExists,
  QuotaNotFound,
  QuotaValidationError,
  QuotaVersionConflict,
} from '../../lib/quota/errors.js';
import { QuotaStore } from '../../lib/quota/store.js';
import { defaultValidators, type QuotaValidator } from '../../lib/quota/validation.js';
import type { QuotaDraft, QuotaSpec } from '../../schemas/quota.js';

// The real PostgreSQL from globalSetup; each store works in its own schema.
const postgresUrl = inject('postgresUrl');
let pool: pg.Pool;
let store: QuotaStore;
const schema = `quota_it_${randomUUID().replaceAll('-', '').slice(0, 8)}`;

const capacity = (gm: number, mm: number, gv = 1, mv = 2, apps = 5): QuotaSpec => ({
  kind: 'capacity',
  guaranteedMemoryMb: gm,
  maxMemoryMb: mm,
  guaranteedVcores: gv,
  maxVcores: mv,
  maxApps: apps,
});

function draft(id: string, spec: QuotaSpec, owners = { users: ['alice'], groups: ['search-team'] }): QuotaDraft {
  const [org, project, workload] = id.split('/') as [string, string, string];
  return { id, hierarchy: { org, project, workload }, spec, owners, tier: 'standard', budgetGroup: 'ads' };
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
  // Two stores opening at once: the migration is idempotent and takes turns.
  const [a] = await Promise.all([
    QuotaStore.open({
      pool,
      schema,
      trustedPrincipals: ['sluice-rightsizer'],
      validators: defaultValidators({ clusterCapacity: { memoryMb: 10_000, vcores: 100 } }),
    }),
    QuotaStore.open({ pool, schema }),
  ]);
  store = a;
  await store.setApprovers('ads', ['carol', 'group:ads-admins']);
  await store.setGroupMembers('search-team', ['dave']);
  await store.setGroupMembers('ads-admins', ['erin']);
});

afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool?.end();
});

describe('the quota store on PostgreSQL', () => {
  it('creates (approvers only), reads, lists and keeps an audit log of who, when, why, before and after', async () => {
    await expect(
      store.create(draft('ads/search/indexer', capacity(1000, 2000)), 'mallory', 'mine now'),
    ).rejects.toThrow(QuotaAccessDenied);
    const created = await store.create(draft('ads/search/indexer', capacity(1000, 2000)), 'carol', 'new indexer');
    expect(created).toMatchObject({ id: 'ads/search/indexer', version: 1, updatedBy: 'carol' });
    await expect(store.create(draft('ads/search/indexer', capacity(1, 2)), 'carol', 'again')).rejects.toThrow(
      QuotaExists,
    );
    await store.create(
      draft('ads/serving/api', { kind: 'rateLimit', qps: 100, bandwidthBytesPerSec: null }),
      'erin', // approver through the group:ads-admins entry
      'new api',
    );
    expect((await store.list({ budgetGroup: 'ads' })).map((q) => q.id)).toEqual([
      'ads/search/indexer',
      'ads/serving/api',
    ]);
    expect((await store.list({ kind: 'rateLimit' })).map((q) => q.id)).toEqual(['ads/serving/api']);

    const v2 = await store.update('ads/search/indexer', 1, { spec: capacity(1000, 3000) }, 'alice', 'more headroom');
    expect(v2.version).toBe(2);
    const history = await store.history('ads/search/indexer');
    expect(history.map((h) => [h.action, h.version, h.actor, h.reason])).toEqual([
      ['create', 1, 'carol', 'new indexer'],
      ['update', 2, 'alice', 'more headroom'],
    ]);
    expect(history[1]!.before!.spec).toEqual(capacity(1000, 2000));
    expect(history[1]!.after!.spec).toEqual(capacity(1000, 3000));
    expect(Date.parse(history[1]!.at)).toBeGreaterThanOrEqual(Date.parse(history[0]!.at));
    await expect(store.get('nope/x/y')).resolves.toBeNull();
    await expect(store.require('nope/x/y')).rejects.toThrow(QuotaNotFound);
  });

  it('lets owners (users and group members), approvers and trusted principals change a quota, and refuses others', async () => {
    await store.create(draft('ads/search/auth', capacity(100, 200)), 'carol', 'for auth tests');
    let version = 1;
    for (const who of ['alice', 'dave', 'carol', 'erin', 'sluice-rightsizer']) {
      const q = await store.update(
        'ads/search/auth',
        version,
        { spec: capacity(100, 200 + version) },
        who,
        `by ${who}`,
      );
      version = q.version;
    }
    const refusal = await store
      .update('ads/search/auth', version, { spec: capacity(100, 999) }, 'mallory', 'sneaky')
      .catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(QuotaAccessDenied);
    expect((refusal as QuotaAccessDenied).failureType).toBe('PolicyDenied');
    expect((refusal as Error).message).toBe(
      '"mallory" may not change quota "ads/search/auth": only its owners (alice, group:search-team) or the ' +
        'approvers of its budget group (carol, group:ads-admins) may',
    );
    // Moving to a group whose approvers did not agree is refused even for an owner.
    await expect(store.update('ads/search/auth', version, { budgetGroup: 'ml' }, 'alice', 'move')).rejects.toThrow(
      /budget group \(none\)/,
    );
    expect((await store.history('ads/search/auth')).map((h) => h.actor)).toEqual([
      'carol',
      'alice',
      'dave',
      'carol',
      'erin',
      'sluice-rightsizer',
    ]);
  });

  it('detects concurrent edits with the version: exactly one of two racing writers wins', async () => {
    await store.create(draft('ads/search/race', capacity(10, 20)), 'carol', 'race');
    const results = await Promise.allSettled([
      store.update('ads/search/race', 1, { spec: capacity(10, 30) }, 'alice', 'writer A'),
      store.update('ads/search/race', 1, { spec: capacity(10, 40) }, 'dave', 'writer B'),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.reason).toBeInstanceOf(QuotaVersionConflict);
    expect(failed[0]!.reason).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
    expect((await store.require('ads/search/race')).version).toBe(2);
  });

  it('validates every write: max ≥ guaranteed, Σ guaranteed within the cluster, kind kept, and custom rules', async () => {
    await store.create(draft('ads/search/val', capacity(100, 200)), 'carol', 'validation');
    const bad = await store
      .update('ads/search/val', 1, { spec: capacity(500, 400, 4, 2) }, 'alice', 'oops')
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(QuotaValidationError);
    expect((bad as QuotaValidationError).problems.map((p) => p.rule)).toEqual([
      'max-gte-guaranteed',
      'max-gte-guaranteed',
    ]);
    // The cluster has 10 000 MB; the other capacity quotas hold some of it already.
    await expect(
      store.update('ads/search/val', 1, { spec: capacity(9_000, 9_000) }, 'alice', 'too big'),
    ).rejects.toThrow(/guaranteed memory would total \d+ MB, above the cluster's 10000 MB/);
    await expect(
      store.update('ads/search/val', 1, { spec: { kind: 'custom', unit: 'x', value: 1 } }, 'alice', 'kind'),
    ).rejects.toThrow(/keeps its kind/);
    // Nothing of the refused writes was kept.
    expect((await store.require('ads/search/val')).version).toBe(1);
    expect(await store.history('ads/search/val')).toHaveLength(1);

    const noFridays: QuotaValidator = {
      name: 'change-freeze',
      validate: ({ changes }) =>
        changes
          .filter((c) => c.previous)
          .map((c) => ({ quotaId: c.next!.id, rule: 'change-freeze', message: 'frozen' })),
    };
    const frozen = await QuotaStore.open({ pool, schema, validators: [...defaultValidators(), noFridays] });
    await expect(frozen.update('ads/search/val', 1, { spec: capacity(100, 250) }, 'alice', 'x')).rejects.toThrow(
      /\[change-freeze\]: frozen/,
    );
  });

  it('checks a batch as a whole and applies it atomically; a dry run checks and keeps nothing', async () => {
    await store.create(draft('ads/batch/a', capacity(100, 200)), 'carol', 'batch');
    await store.create(draft('ads/batch/b', capacity(100, 200), { users: ['bob'], groups: [] }), 'carol', 'batch');
    // alice owns a but not b: the whole batch is refused, a is untouched.
    await expect(
      store.write(
        [
          { op: 'update', quotaId: 'ads/batch/a', expectedVersion: 1, patch: { spec: capacity(100, 300) } },
          { op: 'update', quotaId: 'ads/batch/b', expectedVersion: 1, patch: { spec: capacity(100, 300) } },
        ],
        'alice',
        'both',
      ),
    ).rejects.toThrow(QuotaAccessDenied);
    expect((await store.require('ads/batch/a')).version).toBe(1);
    const dry = await store.write(
      [{ op: 'update', quotaId: 'ads/batch/a', expectedVersion: 1, patch: { spec: capacity(100, 300) } }],
      'alice',
      'just checking',
      { dryRun: true },
    );
    expect(dry[0]!.version).toBe(2);
    expect((await store.require('ads/batch/a')).version).toBe(1);
    await store.delete('ads/batch/a', 1, 'alice', 'retired');
    expect(await store.get('ads/batch/a')).toBeNull();
    expect((await store.history('ads/batch/a')).map((h) => h.action)).toEqual(['create', 'delete']);
  });

  it('lists approvers and group members', async () => {
    expect(await store.listApprovers('ads')).toEqual(['carol', 'group:ads-admins']);
    expect(await store.listGroupMembers('search-team')).toEqual(['dave']);
    expect(await store.resolveActor('dave')).toEqual({ user: 'dave', groups: ['search-team'] });
  });

  it('keeps the audit log append-only in the database itself', async () => {
    await expect(pool.query(`UPDATE ${schema}.audit SET reason = 'rewritten'`)).rejects.toThrow(/append-only/);
    await expect(pool.query(`DELETE FROM ${schema}.audit`)).rejects.toThrow(/append-only/);
  });
});

describe('sluice quota (CLI) against the store', () => {
  const run = promisify(execFile);
  async function sluice(args: string[]) {
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        [path.join(REPO_ROOT, 'bin/sluice.js'), 'quota', ...args],
        {
          env: { ...process.env, SLUICE_QUOTA_DATABASE_URL: postgresUrl, SLUICE_QUOTA_SCHEMA: schema },
          timeout: 60_000,
        },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('set goes through authorization; history shows the result', async () => {
    await store.create(draft('ads/cli/job', capacity(100, 200)), 'carol', 'for the CLI');
    const refused = await sluice([
      'set',
      'ads/cli/job',
      '--as',
      'mallory',
      '--version',
      '1',
      '--set',
      'maxMemoryMb=400',
      '--reason',
      'x',
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/"mallory" may not change quota "ads\/cli\/job"/);
    const ok = await sluice([
      'set',
      'ads/cli/job',
      '--as',
      'alice',
      '--version',
      '1',
      '--set',
      'maxMemoryMb=400',
      '--reason',
      'bigger',
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/updated ads\/cli\/job to version 2 as alice/);
    expect((await store.require('ads/cli/job')).spec).toMatchObject({ maxMemoryMb: 400 });
    const history = (await sluice(['history', 'ads/cli/job'])).stdout;
    expect(history).toMatch(/v2\s+update by alice: bigger/);
    expect(history).toMatch(/after:\s+memory 100\/400 MB/);
  });
});
