import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../lib/config.js';
import { QuotaAccessDenied, QuotaImpersonationDenied } from '../../lib/quota/errors.js';
import { QuotaStore } from '../../lib/quota/store.js';
import { defaultValidators } from '../../lib/quota/validation.js';
import type { QuotaSpec } from '../../schemas/quota.js';

// Who acts is the login PostgreSQL authenticated: real login roles on the real PostgreSQL from globalSetup (trust
// authentication on loopback, as the local stack runs it), each with its own pool. The setup's `postgres` login is a
// superuser: the documented dev path, which may act for any named user.
const postgresUrl = inject('postgresUrl');
const tag = randomUUID().replaceAll('-', '').slice(0, 8);
const schema = `quota_id_${tag}`;
const bob = `q${tag}_bob`; // owns the quota
const mallory = `q${tag}_mallory`; // owns nothing, may not impersonate
const svc = `q${tag}_svc`; // a service login granted sluice_quota_impersonator
const roles = [bob, mallory, svc];

const rate = (qps: number): QuotaSpec => ({ kind: 'rateLimit', qps, bandwidthBytesPerSec: null });
const urlAs = (role: string) => postgresUrl.replace('://postgres@', `://${role}@`);

let admin: pg.Pool;
let adminStore: QuotaStore;
const pools: pg.Pool[] = [];
const stores: Record<string, QuotaStore> = {};

beforeAll(async () => {
  expect(postgresUrl).toContain('://postgres@');
  admin = new pg.Pool({ connectionString: postgresUrl, max: 2 });
  adminStore = await QuotaStore.open({ pool: admin, schema, trustedPrincipals: ['sluice-rightsizer'] });
  // What an operator does for each person or service (docs/quota.md, "Identity").
  for (const role of roles) {
    await admin.query(`CREATE ROLE "${role}" LOGIN`);
    await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO "${role}"`);
    await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO "${role}"`);
    await admin.query(`GRANT INSERT, UPDATE, DELETE ON ${schema}.quotas TO "${role}"`);
    await admin.query(`GRANT INSERT ON ${schema}.audit, ${schema}.decisions TO "${role}"`);
    await admin.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${schema} TO "${role}"`);
  }
  await admin.query(`GRANT ${adminStore.impersonatorRole} TO "${svc}"`);
  await adminStore.setApprovers('ads', ['carol']);
  await adminStore.create(
    {
      id: 'ads/id/api',
      hierarchy: { org: 'ads', project: 'id', workload: 'api' },
      spec: rate(100),
      owners: { users: [bob], groups: [] },
      tier: 'standard',
      budgetGroup: 'ads',
    },
    'carol',
    'identity tests',
  );
  for (const role of roles) {
    const pool = new pg.Pool({ connectionString: urlAs(role), max: 2 });
    pools.push(pool);
    // A login that does not own the tables opens the migrated store without DDL.
    stores[role] = await QuotaStore.open({ pool, schema, validators: defaultValidators() });
  }
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  for (const role of roles) await admin?.query(`DROP ROLE IF EXISTS "${role}"`);
  await admin?.end();
});

describe('quota identity: the authenticated database login acts', () => {
  it('knows who is logged in and who may act for others', async () => {
    expect(await stores[bob]!.loginIdentity()).toEqual({ login: bob, mayImpersonate: false });
    expect(await stores[svc]!.loginIdentity()).toEqual({ login: svc, mayImpersonate: true });
    expect(await adminStore.loginIdentity()).toEqual({ login: 'postgres', mayImpersonate: true });
    expect(await stores[mallory]!.actingAs()).toBe(mallory);
  });

  it('refuses a login that does not own the quota, and lets its owner change it as itself', async () => {
    const m = stores[mallory]!;
    const refused = await m
      .update('ads/id/api', 1, { spec: rate(1) }, await m.actingAs(), 'mine now')
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QuotaAccessDenied);
    expect((refused as Error).message).toContain(`"${mallory}" may not change quota "ads/id/api"`);

    const b = stores[bob]!;
    const updated = await b.update('ads/id/api', 1, { spec: rate(120) }, await b.actingAs(), 'more');
    expect(updated).toMatchObject({ version: 2, updatedBy: bob });
    const { rows } = await admin.query(`SELECT actor, login FROM ${schema}.audit WHERE quota_id = $1 ORDER BY seq`, [
      'ads/id/api',
    ]);
    expect(rows).toEqual([
      { actor: 'carol', login: 'postgres' },
      { actor: bob, login: bob },
    ]);
  });

  it('refuses to act for another user without the impersonator grant, in the store and in the database itself', async () => {
    const m = stores[mallory]!;
    const refused = await m.update('ads/id/api', 2, { spec: rate(1) }, bob, 'as bob').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QuotaImpersonationDenied);
    expect((refused as QuotaImpersonationDenied).failureType).toBe('PolicyDenied');
    expect((refused as Error).message).toBe(
      `database login "${mallory}" may not act as "${bob}": leave out --as to act as "${mallory}", or have an ` +
        `operator GRANT sluice_quota_impersonator TO "${mallory}" (services that act for users, e.g. the quota workers)`,
    );
    await expect(m.actingAs(bob)).rejects.toThrow(QuotaImpersonationDenied);
    await expect(
      m.recordDecision({ workflowId: 'wf', budgetGroup: 'ads', decision: 'approve', as: bob }),
    ).rejects.toThrow(QuotaImpersonationDenied);
    // Around the store: the triggers stamp the login and check the actor on every audit row and decision.
    const direct = new pg.Client({ connectionString: urlAs(mallory) });
    await direct.connect();
    try {
      await expect(
        direct.query(
          `INSERT INTO ${schema}.audit (quota_id, actor, action, reason, version) VALUES ('ads/id/api', $1, 'update', 'x', 9)`,
          [bob],
        ),
      ).rejects.toThrow(/may not act as/);
      await expect(
        direct.query(
          `INSERT INTO ${schema}.decisions (workflow_id, budget_group, decision, actor) VALUES ('wf', 'ads', 'approve', $1)`,
          [bob],
        ),
      ).rejects.toThrow(/may not act as/);
      // Nor can the quotas table be written around the store: the row check asks what the store asks.
      await expect(
        direct.query(`UPDATE ${schema}.quotas SET spec = $1, updated_by = $2 WHERE id = 'ads/id/api'`, [
          JSON.stringify(rate(1)),
          mallory,
        ]),
      ).rejects.toThrow(`database login "${mallory}" may not change quota "ads/id/api"`);
      await expect(
        direct.query(`UPDATE ${schema}.quotas SET updated_by = $1 WHERE id = 'ads/id/api'`, [bob]),
      ).rejects.toThrow(/may not act as/);
      await expect(direct.query(`DELETE FROM ${schema}.quotas`)).rejects.toThrow(/may not change quota/);
      await expect(
        direct.query(
          `INSERT INTO ${schema}.quotas (id, org, project, workload, kind, spec, owners, tier, budget_group, version,
             updated_at, updated_by) SELECT 'ads/id/new', org, project, 'new', kind, spec, owners, tier, budget_group, 1,
             now(), $1 FROM ${schema}.quotas WHERE id = 'ads/id/api'`,
          [mallory],
        ),
      ).rejects.toThrow(/may not create or move quotas into budget group "ads"/);
      // A login column cannot be forged either: the trigger overwrites it.
      const { rows } = await direct.query(
        `INSERT INTO ${schema}.decisions (workflow_id, budget_group, decision, login) VALUES ('wf', 'ads', 'reject', $1)
         RETURNING actor, login`,
        [bob],
      );
      expect(rows[0]).toEqual({ actor: mallory, login: mallory });
    } finally {
      await direct.end();
    }
    expect((await adminStore.require('ads/id/api')).version).toBe(2);
  });

  it('lets a login granted sluice_quota_impersonator act for a user, recording both', async () => {
    const s = stores[svc]!;
    const updated = await s.update('ads/id/api', 2, { spec: rate(130) }, await s.actingAs(bob), 'for bob');
    expect(updated).toMatchObject({ version: 3, updatedBy: bob });
    const { rows } = await admin.query(
      `SELECT actor, login FROM ${schema}.audit WHERE quota_id = $1 ORDER BY seq DESC LIMIT 1`,
      ['ads/id/api'],
    );
    expect(rows[0]).toEqual({ actor: bob, login: svc });
    // Impersonation is not authorization: acting for mallory, the service is refused what mallory may not do.
    await expect(s.update('ads/id/api', 3, { spec: rate(1) }, mallory, 'for mallory')).rejects.toThrow(
      QuotaAccessDenied,
    );
    const decision = await s.recordDecision({ workflowId: 'wf', budgetGroup: 'ads', decision: 'approve', as: bob });
    expect(decision).toMatchObject({ actor: bob, login: svc, decision: 'approve', quotaIds: null });
    expect(await s.getDecision(decision.id)).toEqual(decision);
    await expect(admin.query(`UPDATE ${schema}.decisions SET actor = 'carol'`)).rejects.toThrow(/append-only/);
  });

  it('the CLI acts as its database login; --as needs the grant', async () => {
    const run = promisify(execFile);
    const sluice = async (role: string, args: string[]) => {
      try {
        const { stdout, stderr } = await run(
          process.execPath,
          [path.join(REPO_ROOT, 'bin/sluice.js'), 'quota', ...args],
          {
            env: { ...process.env, SLUICE_QUOTA_DATABASE_URL: urlAs(role), SLUICE_QUOTA_SCHEMA: schema, USER: 'carol' },
            timeout: 60_000,
          },
        );
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const version = String((await adminStore.require('ads/id/api')).version);
    // $USER says carol (an approver), but the login is mallory: $USER no longer decides who acts.
    const asLogin = await sluice(mallory, [
      'set',
      'ads/id/api',
      '--version',
      version,
      '--set',
      'qps=5',
      '--reason',
      'x',
    ]);
    expect(asLogin.code).toBe(1);
    expect(asLogin.stderr).toContain(`"${mallory}" may not change quota "ads/id/api"`);
    const forged = await sluice(mallory, [
      'set',
      'ads/id/api',
      '--as',
      'carol',
      '--version',
      version,
      '--set',
      'qps=5',
      '--reason',
      'x',
    ]);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toContain(`database login "${mallory}" may not act as "carol"`);
    const owner = await sluice(bob, ['set', 'ads/id/api', '--version', version, '--set', 'qps=140', '--reason', 'ok']);
    expect(owner.stderr).toBe('');
    expect(owner.stdout).toContain(`as ${bob}`);
    expect((await adminStore.history('ads/id/api', { limit: 1 }))[0]).toMatchObject({
      actor: bob,
      login: bob,
      reason: 'ok',
    });
  });
});
