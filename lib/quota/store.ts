import type pg from 'pg';
import {
  PlanEntry,
  Quota,
  QuotaDraft,
  QuotaSpec,
  type QuotaActor,
  type QuotaPlan,
  type QuotaAuditEntry,
  type QuotaKind,
  type QuotaSchedule,
} from '../../schemas/quota.js';
import {
  QuotaAccessDenied,
  QuotaExists,
  QuotaImpersonationDenied,
  QuotaNotFound,
  QuotaValidationError,
  QuotaVersionConflict,
  type QuotaProblem,
} from './errors.js';
import { defaultValidators, runValidators, type QuotaChange, type QuotaValidator } from './validation.js';

/**
 * The quota store: PostgreSQL tables for the quotas and an append-only audit log, with optimistic concurrency,
 * owner-based authorization and pluggable validation on every write. Every writer, the CLI and the rightsizer
 * alike, goes through {@link QuotaStore.write}.
 *
 * Writes are serialized by a transaction-scoped advisory lock, so that validators that look at every quota (the
 * cluster-capacity sum) see a stable table; quota writes are rare (people and a scheduled rightsizer), so one lock
 * costs nothing that matters.
 */

/** Options of {@link QuotaStore.open}. */
export interface QuotaStoreOptions {
  pool: pg.Pool;
  /** PostgreSQL schema holding the tables; created when missing. @default sluice_quota */
  schema?: string;
  /** Validators run on every write. @default {@link defaultValidators}() (no cluster capacity) */
  validators?: readonly QuotaValidator[];
  /**
   * Service principals allowed to change any quota, e.g. the rightsizer (`sluice-rightsizer`). Their writes are
   * still validated and audited.
   * @default []
   */
  trustedPrincipals?: readonly string[];
  /**
   * The PostgreSQL role whose members may act for other users (`--as`, the workers writing for an approver). The
   * migration creates it (NOLOGIN) when the migrating login may create roles. Superusers always may.
   * @default sluice_quota_impersonator
   */
  impersonatorRole?: string;
}

/** Who the store's connections act as: the login PostgreSQL authenticated, and whether it may act for others. */
export interface QuotaLoginIdentity {
  /** `session_user` of the connections. */
  login: string;
  /** A superuser, or a member of the impersonator role. */
  mayImpersonate: boolean;
}

/** A decision on a rightsizing run's pending changes, as recorded under the login that made it. */
export interface QuotaDecisionRecord {
  id: number;
  workflowId: string;
  budgetGroup: string;
  decision: 'approve' | 'reject' | 'modify';
  /** Who decides: the login, or the user it acted for when it may impersonate. */
  actor: string;
  /** The PostgreSQL login that recorded it (`session_user`, set by the database). */
  login: string;
  /** null: every pending change of the run. */
  quotaIds: string[] | null;
  specs: Record<string, QuotaSpec> | null;
  reason: string | null;
  at: string;
}

/** Which run a stored plan belongs to. */
export interface QuotaPlanKey {
  workflowId: string;
  runId: string;
}

/** A stored plan entry with what was applied from it. */
export interface StoredPlanEntry {
  entry: PlanEntry;
  /** The spec (and schedule) written, and by whom, once applied. */
  applied?: { spec: QuotaSpec; schedule: QuotaSchedule | null | undefined; by: string };
}

/** A change to an existing quota: the fields to replace. */
export interface QuotaPatch {
  spec?: QuotaSpec;
  /** A time-of-day schedule, or null to drop it; absent: kept. */
  schedule?: QuotaSchedule | null;
  owners?: { users?: string[]; groups?: string[] };
  tier?: string;
  budgetGroup?: string;
}

/** One write of a batch: create (no `expectedVersion`), update, or delete. */
export type QuotaWriteOp =
  | { op: 'create'; draft: QuotaDraft }
  | { op: 'update'; quotaId: string; expectedVersion: number; patch: QuotaPatch }
  | { op: 'delete'; quotaId: string; expectedVersion: number };

/** Filters of {@link QuotaStore.list}. */
export interface QuotaListFilter {
  budgetGroup?: string;
  org?: string;
  project?: string;
  kind?: QuotaKind;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The store's table layout version: 1 quotas and audit, 2 identity (logins, decisions) and stored plans. */
export const SCHEMA_VERSION = 2;

interface DecisionRow {
  id: string;
  workflow_id: string;
  budget_group: string;
  decision: 'approve' | 'reject' | 'modify';
  actor: string;
  login: string;
  quota_ids: string[] | null;
  specs: Record<string, unknown> | null;
  reason: string | null;
  at: Date;
}

function decisionOf(r: DecisionRow): QuotaDecisionRecord {
  return {
    id: Number(r.id),
    workflowId: r.workflow_id,
    budgetGroup: r.budget_group,
    decision: r.decision,
    actor: r.actor,
    login: r.login,
    quotaIds: r.quota_ids,
    specs: r.specs ? Object.fromEntries(Object.entries(r.specs).map(([k, v]) => [k, QuotaSpec.parse(v)])) : null,
    reason: r.reason,
    at: r.at.toISOString(),
  };
}

interface QuotaRow {
  id: string;
  org: string;
  project: string;
  workload: string;
  spec: unknown;
  /** Added by a later migration; null: no schedule. */
  schedule?: unknown;
  owners: unknown;
  tier: string;
  budget_group: string;
  version: number;
  updated_at: Date;
  updated_by: string;
}

function rowToQuota(row: QuotaRow): Quota {
  return Quota.parse({
    id: row.id,
    hierarchy: { org: row.org, project: row.project, workload: row.workload },
    spec: row.spec,
    ...(row.schedule !== null && row.schedule !== undefined ? { schedule: row.schedule } : {}),
    owners: row.owners,
    tier: row.tier,
    budgetGroup: row.budget_group,
    version: row.version,
    updatedAt: row.updated_at.toISOString(),
    updatedBy: row.updated_by,
  });
}

export class QuotaStore {
  private readonly pool: pg.Pool;
  private readonly schema: string;
  private readonly validators: readonly QuotaValidator[];
  private readonly trusted: ReadonlySet<string>;
  /** The role whose members may act for others. */
  readonly impersonatorRole: string;

  private constructor(options: QuotaStoreOptions) {
    const schema = options.schema ?? 'sluice_quota';
    if (!SCHEMA_NAME.test(schema)) {
      throw new TypeError(`quota store schema "${schema}" is not a plain lower-case identifier`);
    }
    this.pool = options.pool;
    this.schema = schema;
    this.validators = options.validators ?? defaultValidators();
    this.trusted = new Set(options.trustedPrincipals ?? []);
    this.impersonatorRole = options.impersonatorRole ?? 'sluice_quota_impersonator';
    if (!SCHEMA_NAME.test(this.impersonatorRole)) {
      throw new TypeError(`impersonator role "${this.impersonatorRole}" is not a plain lower-case identifier`);
    }
  }

  /** Opens the store and creates its tables when missing (safe to run from many processes at once). */
  static async open(options: QuotaStoreOptions): Promise<QuotaStore> {
    const store = new QuotaStore(options);
    await store.migrate();
    return store;
  }

  private t(name: string): string {
    return `${this.schema}.${name}`;
  }

  /**
   * Creates the schema, tables, indexes and triggers, idempotently. A store already at {@link SCHEMA_VERSION} is left
   * alone, so logins that do not own the tables (people using the CLI under their own role) open it without DDL.
   */
  async migrate(): Promise<void> {
    const s = this.schema;
    const role = this.impersonatorRole;
    const { rows: found } = await this.pool.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [
      `${s}.meta`,
    ]);
    if (found[0]?.t) {
      const { rows } = await this.pool.query<{ value: string }>(
        `SELECT value FROM ${s}.meta WHERE key = 'schema_version'`,
      );
      if (Number(rows[0]?.value ?? 0) >= SCHEMA_VERSION) return;
    }
    await this.transaction(async (c) => {
      // Concurrent CREATE … IF NOT EXISTS can still collide in the catalogs; one lock makes them take turns.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-quota-migrate:${s}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.quotas (
        id text PRIMARY KEY,
        org text NOT NULL,
        project text NOT NULL,
        workload text NOT NULL,
        kind text NOT NULL,
        spec jsonb NOT NULL,
        owners jsonb NOT NULL,
        tier text NOT NULL,
        budget_group text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        updated_at timestamptz NOT NULL,
        updated_by text NOT NULL)`);
      // Time-of-day schedules (nullable: a quota without one behaves as before).
      await c.query(`ALTER TABLE ${s}.quotas ADD COLUMN IF NOT EXISTS schedule jsonb`);
      await c.query(`CREATE INDEX IF NOT EXISTS quotas_budget_group_idx ON ${s}.quotas (budget_group)`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.audit (
        seq bigserial PRIMARY KEY,
        quota_id text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor text NOT NULL,
        action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
        reason text NOT NULL,
        version integer NOT NULL,
        before jsonb,
        after jsonb)`);
      await c.query(`CREATE INDEX IF NOT EXISTS audit_quota_idx ON ${s}.audit (quota_id, seq)`);
      await c.query(`CREATE OR REPLACE FUNCTION ${s}.audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the quota audit log is append-only'; END $$`);
      await c.query(`CREATE OR REPLACE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON ${s}.audit
        FOR EACH ROW EXECUTE FUNCTION ${s}.audit_is_append_only()`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.approvers (
        budget_group text NOT NULL, principal text NOT NULL, PRIMARY KEY (budget_group, principal))`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.group_members (
        group_name text NOT NULL, user_name text NOT NULL, PRIMARY KEY (group_name, user_name))`);

      // Identity (version 2): who acts is the login PostgreSQL authenticated, or a user it may act for.
      await c.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN
          BEGIN CREATE ROLE ${role} NOLOGIN;
          EXCEPTION WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN NULL; END;
        END IF; END $$`);
      await c.query(`CREATE OR REPLACE FUNCTION ${s}.may_impersonate() RETURNS boolean LANGUAGE plpgsql STABLE AS $$
        BEGIN
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN RETURN true; END IF;
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN RETURN false; END IF;
          RETURN pg_has_role(session_user, '${role}', 'MEMBER');
        END $$`);
      // Every audit row and decision records the login; its actor must be the login or a user it may act for.
      await c.query(`CREATE OR REPLACE FUNCTION ${s}.stamp_identity() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.login := session_user;
          IF NEW.actor IS DISTINCT FROM session_user::text AND NOT ${s}.may_impersonate() THEN
            RAISE EXCEPTION 'database login "%" may not act as "%" (needs ${role})', session_user, NEW.actor
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN NEW;
        END $$`);
      // Writes made around the store by a login that may not act for others are authorized by the database too:
      // the login must be the row's updated_by and an owner (or approver) as the store would require.
      await c.query(`CREATE OR REPLACE FUNCTION ${s}.is_approver(who text, grp text) RETURNS boolean LANGUAGE sql STABLE
        AS $$ SELECT EXISTS (SELECT FROM ${s}.approvers a WHERE a.budget_group = grp AND (a.principal = who OR (
          a.principal LIKE 'group:%' AND EXISTS (SELECT FROM ${s}.group_members m
            WHERE m.group_name = substr(a.principal, 7) AND m.user_name = who)))) $$`);
      await c.query(`CREATE OR REPLACE FUNCTION ${s}.is_owner(who text, owners jsonb) RETURNS boolean LANGUAGE sql STABLE
        AS $$ SELECT who IN (SELECT jsonb_array_elements_text(owners->'users')) OR EXISTS (
          SELECT FROM ${s}.group_members m WHERE m.user_name = who
            AND m.group_name IN (SELECT jsonb_array_elements_text(owners->'groups'))) $$`);
      await c.query(`CREATE OR REPLACE FUNCTION ${s}.authorize_quota_row() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE who text := session_user;
        BEGIN
          -- Services and superusers may act for others: the store authorized the user they act for.
          IF ${s}.may_impersonate() THEN RETURN COALESCE(NEW, OLD); END IF;
          IF TG_OP <> 'DELETE' AND NEW.updated_by IS DISTINCT FROM who THEN
            RAISE EXCEPTION 'database login "%" may not act as "%" (needs ${role})', who, NEW.updated_by
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          IF TG_OP <> 'INSERT' AND NOT (${s}.is_owner(who, OLD.owners) OR ${s}.is_approver(who, OLD.budget_group)) THEN
            RAISE EXCEPTION 'database login "%" may not change quota "%"', who, OLD.id
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          IF (TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.budget_group <> OLD.budget_group))
             AND NOT ${s}.is_approver(who, NEW.budget_group) THEN
            RAISE EXCEPTION 'database login "%" may not create or move quotas into budget group "%"', who,
              NEW.budget_group USING ERRCODE = 'insufficient_privilege';
          END IF;
          RETURN COALESCE(NEW, OLD);
        END $$`);
      await c.query(`CREATE OR REPLACE TRIGGER quotas_authorize BEFORE INSERT OR UPDATE OR DELETE ON ${s}.quotas
        FOR EACH ROW EXECUTE FUNCTION ${s}.authorize_quota_row()`);
      await c.query(`ALTER TABLE ${s}.audit ADD COLUMN IF NOT EXISTS login text`);
      await c.query(`ALTER TABLE ${s}.audit ALTER COLUMN login SET DEFAULT session_user`);
      await c.query(`CREATE OR REPLACE TRIGGER audit_identity BEFORE INSERT ON ${s}.audit
        FOR EACH ROW EXECUTE FUNCTION ${s}.stamp_identity()`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.decisions (
        id bigserial PRIMARY KEY,
        workflow_id text NOT NULL,
        budget_group text NOT NULL,
        decision text NOT NULL CHECK (decision IN ('approve', 'reject', 'modify')),
        actor text NOT NULL DEFAULT session_user,
        login text NOT NULL DEFAULT session_user,
        quota_ids jsonb,
        specs jsonb,
        reason text,
        at timestamptz NOT NULL DEFAULT clock_timestamp())`);
      await c.query(`CREATE OR REPLACE TRIGGER decisions_identity BEFORE INSERT ON ${s}.decisions
        FOR EACH ROW EXECUTE FUNCTION ${s}.stamp_identity()`);
      await c.query(`CREATE OR REPLACE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON ${s}.decisions
        FOR EACH ROW EXECUTE FUNCTION ${s}.audit_is_append_only()`);

      // Plans (version 2): a run's plan lives here, the workflow keeps only each entry's state.
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.plans (
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        budget_group text NOT NULL,
        as_of timestamptz NOT NULL,
        header jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (workflow_id, run_id))`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.plan_entries (
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        quota_id text NOT NULL,
        ord integer NOT NULL,
        entry jsonb NOT NULL,
        applied_spec jsonb,
        applied_schedule jsonb,
        applied_by text,
        PRIMARY KEY (workflow_id, run_id, quota_id),
        FOREIGN KEY (workflow_id, run_id) REFERENCES ${s}.plans ON DELETE CASCADE)`);

      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.meta (key text PRIMARY KEY, value text NOT NULL)`);
      await c.query(
        `INSERT INTO ${s}.meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        [String(SCHEMA_VERSION)],
      );
    });
  }

  private loginCache?: Promise<QuotaLoginIdentity>;

  /** The login PostgreSQL authenticated for this store's connections, and whether it may act for others. */
  async loginIdentity(): Promise<QuotaLoginIdentity> {
    this.loginCache ??= this.pool
      .query<{ login: string; may: boolean }>(`SELECT session_user AS login, ${this.t('may_impersonate')}() AS may`)
      .then(({ rows }) => ({ login: rows[0]!.login, mayImpersonate: rows[0]!.may }));
    try {
      return await this.loginCache;
    } catch (err) {
      this.loginCache = undefined;
      throw err;
    }
  }

  /**
   * The user an action is taken as: `requested` when given and the login may act for it (itself, or any user for
   * a member of the impersonator role), else the login itself. Throws {@link QuotaImpersonationDenied}.
   */
  async actingAs(requested?: string): Promise<string> {
    const id = await this.loginIdentity();
    if (requested === undefined || requested === id.login) return id.login;
    if (!id.mayImpersonate) throw new QuotaImpersonationDenied(id.login, requested, this.impersonatorRole);
    return requested;
  }

  /**
   * Records a decision on a run's pending changes, as the authenticated login (or `as`, when it may act for
   * others); the database stamps the login. Returns the decision's id, which is all the approval update carries.
   */
  async recordDecision(d: {
    workflowId: string;
    budgetGroup: string;
    decision: 'approve' | 'reject' | 'modify';
    as?: string;
    quotaIds?: readonly string[];
    specs?: Record<string, QuotaSpec>;
    reason?: string;
  }): Promise<QuotaDecisionRecord> {
    const actor = await this.actingAs(d.as);
    const { rows } = await this.pool.query<DecisionRow>(
      `INSERT INTO ${this.t('decisions')} (workflow_id, budget_group, decision, actor, quota_ids, specs, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [
        d.workflowId,
        d.budgetGroup,
        d.decision,
        actor,
        d.quotaIds ? JSON.stringify(d.quotaIds) : null,
        d.specs ? JSON.stringify(d.specs) : null,
        d.reason ?? null,
      ],
    );
    return decisionOf(rows[0]!);
  }

  /** A recorded decision, or null. */
  async getDecision(id: number): Promise<QuotaDecisionRecord | null> {
    const { rows } = await this.pool.query<DecisionRow>(`SELECT * FROM ${this.t('decisions')} WHERE id = $1`, [id]);
    return rows[0] ? decisionOf(rows[0]) : null;
  }

  /** Stores a run's plan (replacing what an earlier attempt stored for the same run). */
  async savePlan(key: QuotaPlanKey, plan: QuotaPlan): Promise<void> {
    const { entries, diff: _diff, ...header } = plan;
    await this.transaction(async (c) => {
      await c.query(`DELETE FROM ${this.t('plans')} WHERE workflow_id = $1 AND run_id = $2`, [
        key.workflowId,
        key.runId,
      ]);
      await c.query(
        `INSERT INTO ${this.t('plans')} (workflow_id, run_id, budget_group, as_of, header) VALUES ($1, $2, $3, $4, $5)`,
        [key.workflowId, key.runId, plan.budgetGroup, plan.asOf, JSON.stringify(header)],
      );
      // One statement per chunk: thousands of entries without thousands of round trips.
      for (let start = 0; start < entries.length; start += 500) {
        const chunk = entries
          .slice(start, start + 500)
          .map((entry, k) => ({ q: entry.quotaId, o: start + k, e: entry }));
        await c.query(
          `INSERT INTO ${this.t('plan_entries')} (workflow_id, run_id, quota_id, ord, entry)
           SELECT $1, $2, x.q, x.o, x.e FROM jsonb_to_recordset($3::jsonb) AS x(q text, o integer, e jsonb)`,
          [key.workflowId, key.runId, JSON.stringify(chunk)],
        );
      }
    });
  }

  /** A stored plan (entries in plan order, with their planned status), or null; `diff` is left empty. */
  async readPlan(
    key: QuotaPlanKey,
  ): Promise<(QuotaPlan & { applied: Map<string, StoredPlanEntry['applied']> }) | null> {
    const { rows } = await this.pool.query<{ header: Omit<QuotaPlan, 'entries' | 'diff'> }>(
      `SELECT header FROM ${this.t('plans')} WHERE workflow_id = $1 AND run_id = $2`,
      [key.workflowId, key.runId],
    );
    if (!rows[0]) return null;
    const stored = await this.planEntries(key);
    const applied = new Map(stored.map((s) => [s.entry.quotaId, s.applied]));
    return { ...rows[0].header, entries: stored.map((s) => s.entry), diff: '', applied };
  }

  /** Stored entries of a plan, in plan order: all, or those of `quotaIds`. */
  async planEntries(key: QuotaPlanKey, quotaIds?: readonly string[]): Promise<StoredPlanEntry[]> {
    const { rows } = await this.pool.query<{
      entry: unknown;
      applied_spec: unknown;
      applied_schedule: unknown;
      applied_by: string | null;
    }>(
      `SELECT entry, applied_spec, applied_schedule, applied_by FROM ${this.t('plan_entries')}
       WHERE workflow_id = $1 AND run_id = $2 ${quotaIds ? 'AND quota_id = ANY($3::text[])' : ''} ORDER BY ord`,
      quotaIds ? [key.workflowId, key.runId, [...quotaIds]] : [key.workflowId, key.runId],
    );
    return rows.map((r) => ({
      entry: PlanEntry.parse(r.entry),
      ...(r.applied_spec
        ? {
            applied: {
              spec: QuotaSpec.parse(r.applied_spec),
              schedule: r.applied_schedule as QuotaSchedule | null,
              by: r.applied_by!,
            },
          }
        : {}),
    }));
  }

  /** Records what was applied from a plan's entries (what the dispatch webhook reports as after, and by whom). */
  async markPlanApplied(
    key: QuotaPlanKey,
    applied: ReadonlyArray<{ quotaId: string; spec: QuotaSpec; schedule?: QuotaSchedule | null; by: string }>,
  ): Promise<void> {
    if (applied.length === 0) return;
    await this.pool.query(
      `UPDATE ${this.t('plan_entries')} p SET applied_spec = x.s, applied_schedule = x.sc, applied_by = x.b
       FROM jsonb_to_recordset($3::jsonb) AS x(q text, s jsonb, sc jsonb, b text)
       WHERE p.workflow_id = $1 AND p.run_id = $2 AND p.quota_id = x.q`,
      [
        key.workflowId,
        key.runId,
        JSON.stringify(applied.map((a) => ({ q: a.quotaId, s: a.spec, sc: a.schedule ?? null, b: a.by }))),
      ],
    );
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>, commit = true): Promise<T> {
    const client = await this.pool.connect();
    let failed = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
      return result;
    } catch (err) {
      failed = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release(failed);
    }
  }

  /** A quota, or null. */
  async get(quotaId: string): Promise<Quota | null> {
    const { rows } = await this.pool.query<QuotaRow>(`SELECT * FROM ${this.t('quotas')} WHERE id = $1`, [quotaId]);
    return rows[0] ? rowToQuota(rows[0]) : null;
  }

  /** A quota, or {@link QuotaNotFound}. */
  async require(quotaId: string): Promise<Quota> {
    const quota = await this.get(quotaId);
    if (!quota) throw new QuotaNotFound(quotaId);
    return quota;
  }

  /** Quotas matching the filter, ordered by id. */
  async list(filter: QuotaListFilter = {}): Promise<Quota[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      params.push(value);
      where.push(`${column} = $${params.length}`);
    };
    add('budget_group', filter.budgetGroup);
    add('org', filter.org);
    add('project', filter.project);
    add('kind', filter.kind);
    const { rows } = await this.pool.query<QuotaRow>(
      `SELECT * FROM ${this.t('quotas')} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`,
      params,
    );
    return rows.map(rowToQuota);
  }

  /** The audit log of a quota, oldest first (or the newest `limit` entries). */
  async history(quotaId: string, options: { limit?: number } = {}): Promise<QuotaAuditEntry[]> {
    const limit = options.limit ?? 1000;
    const { rows } = await this.pool.query<{
      seq: string;
      quota_id: string;
      at: Date;
      actor: string;
      login: string | null;
      action: 'create' | 'update' | 'delete';
      reason: string;
      version: number;
      before: unknown;
      after: unknown;
    }>(
      `SELECT * FROM (SELECT * FROM ${this.t('audit')} WHERE quota_id = $1 ORDER BY seq DESC LIMIT $2) recent ORDER BY seq`,
      [quotaId, limit],
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      quotaId: r.quota_id,
      at: r.at.toISOString(),
      actor: r.actor,
      login: r.login ?? null,
      action: r.action,
      reason: r.reason,
      version: r.version,
      before: r.before === null ? null : Quota.parse(r.before),
      after: r.after === null ? null : Quota.parse(r.after),
    }));
  }

  /**
   * Runs `work` with every quota, under a lock that dispatchers take in turn: a dispatch that renders later
   * always renders a state at least as new as one before it, so two budget groups dispatching at once cannot
   * leave an older `queues.yaml` behind a newer one.
   */
  async withDispatchLock<T>(work: (quotas: Quota[]) => Promise<T>): Promise<T> {
    return this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-quota-dispatch:${this.schema}`]);
      const { rows } = await c.query<QuotaRow>(`SELECT * FROM ${this.t('quotas')} ORDER BY id`);
      return work(rows.map(rowToQuota));
    });
  }

  /** Replaces the approvers (users, or `group:<name>`) of a budget group. An operator's action: not authorized here. */
  async setApprovers(budgetGroup: string, principals: readonly string[]): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(`DELETE FROM ${this.t('approvers')} WHERE budget_group = $1`, [budgetGroup]);
      for (const p of principals) {
        await c.query(`INSERT INTO ${this.t('approvers')} (budget_group, principal) VALUES ($1, $2)`, [budgetGroup, p]);
      }
    });
  }

  /** Replaces a group's members. An operator's action (or a directory sync): not authorized here. */
  async setGroupMembers(group: string, users: readonly string[]): Promise<void> {
    await this.transaction(async (c) => {
      await c.query(`DELETE FROM ${this.t('group_members')} WHERE group_name = $1`, [group]);
      for (const u of users) {
        await c.query(`INSERT INTO ${this.t('group_members')} (group_name, user_name) VALUES ($1, $2)`, [group, u]);
      }
    });
  }

  /** The approvers of a budget group (users, and `group:<name>` entries). */
  async listApprovers(budgetGroup: string): Promise<string[]> {
    return this.approversOf(this.pool, budgetGroup);
  }

  /** The members of a group. */
  async listGroupMembers(group: string): Promise<string[]> {
    const { rows } = await this.pool.query<{ user_name: string }>(
      `SELECT user_name FROM ${this.t('group_members')} WHERE group_name = $1 ORDER BY user_name`,
      [group],
    );
    return rows.map((r) => r.user_name);
  }

  /** The actor with the groups the store knows for the user (added to any the caller passed). */
  async resolveActor(actor: QuotaActor | string): Promise<Required<QuotaActor>> {
    const a = typeof actor === 'string' ? { user: actor } : actor;
    const { rows } = await this.pool.query<{ group_name: string }>(
      `SELECT group_name FROM ${this.t('group_members')} WHERE user_name = $1`,
      [a.user],
    );
    return { user: a.user, groups: [...new Set([...(a.groups ?? []), ...rows.map((r) => r.group_name)])] };
  }

  private async approversOf(c: pg.Pool | pg.ClientBase, budgetGroup: string): Promise<string[]> {
    const { rows } = await c.query<{ principal: string }>(
      `SELECT principal FROM ${this.t('approvers')} WHERE budget_group = $1 ORDER BY principal`,
      [budgetGroup],
    );
    return rows.map((r) => r.principal);
  }

  /**
   * Whether `actor` may change `quota`: a trusted principal, an owner (user, or member of an owner group), or an
   * approver of its budget group (user, or `group:<name>`). Throws {@link QuotaAccessDenied} otherwise.
   */
  async authorize(actor: QuotaActor | string, quota: Pick<Quota, 'id' | 'owners' | 'budgetGroup'>): Promise<void> {
    const resolved = await this.resolveActor(actor);
    await this.authorizeWith(this.pool, resolved, quota, 'change');
  }

  private async authorizeWith(
    c: pg.ClientBase | pg.Pool,
    actor: Required<QuotaActor>,
    quota: Pick<Quota, 'id' | 'owners' | 'budgetGroup'>,
    what: 'change' | 'create',
    cache?: Map<string, string[]>,
  ): Promise<void> {
    if (this.trusted.has(actor.user)) return;
    const groups = new Set(actor.groups);
    if (what === 'change') {
      if (quota.owners.users.includes(actor.user)) return;
      if (quota.owners.groups.some((g) => groups.has(g))) return;
    }
    let approvers = cache?.get(quota.budgetGroup);
    if (!approvers) {
      approvers = await this.approversOf(c, quota.budgetGroup);
      cache?.set(quota.budgetGroup, approvers);
    }
    if (approvers.includes(actor.user)) return;
    if (approvers.some((p) => p.startsWith('group:') && groups.has(p.slice('group:'.length)))) return;
    throw new QuotaAccessDenied(quota.id, actor.user, {
      owners: what === 'create' ? [] : [...quota.owners.users, ...quota.owners.groups.map((g) => `group:${g}`)],
      approvers,
    });
  }

  /** Creates a quota; the actor must approve for its budget group (or be trusted). */
  async create(draft: QuotaDraft, actor: QuotaActor | string, reason: string): Promise<Quota> {
    const [q] = await this.write([{ op: 'create', draft }], actor, reason);
    return q!;
  }

  /** Changes a quota if it is still at `expectedVersion`; the actor must own it or approve for its group. */
  async update(
    quotaId: string,
    expectedVersion: number,
    patch: QuotaPatch,
    actor: QuotaActor | string,
    reason: string,
  ): Promise<Quota> {
    const [q] = await this.write([{ op: 'update', quotaId, expectedVersion, patch }], actor, reason);
    return q!;
  }

  /** Deletes a quota if it is still at `expectedVersion`. */
  async delete(quotaId: string, expectedVersion: number, actor: QuotaActor | string, reason: string): Promise<void> {
    await this.write([{ op: 'delete', quotaId, expectedVersion }], actor, reason);
  }

  /**
   * Applies a batch of writes atomically: every version is checked ({@link QuotaVersionConflict}), the actor is
   * authorized for every quota ({@link QuotaAccessDenied}), the validators see the whole table after the batch
   * ({@link QuotaValidationError}), and each change gets an audit entry with before and after. Returns the new
   * quotas (null for a delete), in the order of `ops`. With `dryRun` every check runs and nothing is kept.
   *
   * The actor must be the authenticated login, or a user the login may act for ({@link actingAs}:
   * {@link QuotaImpersonationDenied} otherwise); the database checks this again on every audit row.
   */
  async write(
    ops: readonly QuotaWriteOp[],
    actor: QuotaActor | string,
    reason: string,
    options: { dryRun?: boolean } = {},
  ): Promise<Array<Quota | null>> {
    if (reason.trim() === '') throw new TypeError('every quota change needs a reason (it goes to the audit log)');
    const who = await this.resolveActor(actor);
    await this.actingAs(who.user);
    return this.transaction(async (c) => {
      const { before, current, now } = await this.lockedSnapshot(c);
      const approvers = new Map<string, string[]>();
      const changes: QuotaChange[] = [];
      for (const op of ops) {
        const change = await this.prepare(c, who, op, current, now, approvers);
        current.set((change.next ?? change.previous)!.id, change.next);
        changes.push(change);
      }
      const problems = await runValidators(this.validators, { changes, before, after: present(current) });
      if (problems.length > 0) throw new QuotaValidationError(problems);
      for (const change of changes) await this.persist(c, change, who.user, reason, now);
      return changes.map((ch) => ch.next);
    }, !options.dryRun);
  }

  /**
   * Applies writes one by one, each on its own (a conflict or refusal of one leaves the others), in one
   * transaction with one read of the table: what the rightsizer's auto-apply of thousands of quotas needs. Each
   * write is checked as {@link write} checks it, against the table as the writes before it left it.
   */
  async writeEach(
    ops: readonly Extract<QuotaWriteOp, { op: 'update' }>[],
    actor: QuotaActor | string,
    reason: string,
    onProgress?: (done: number) => void,
  ): Promise<Array<{ quota: Quota } | { error: QuotaVersionConflict | QuotaAccessDenied | QuotaValidationError }>> {
    if (reason.trim() === '') throw new TypeError('every quota change needs a reason (it goes to the audit log)');
    const who = await this.resolveActor(actor);
    await this.actingAs(who.user);
    return this.transaction(async (c) => {
      const { current, now } = await this.lockedSnapshot(c);
      const approvers = new Map<string, string[]>();
      const out: Array<{ quota: Quota } | { error: QuotaVersionConflict | QuotaAccessDenied | QuotaValidationError }> =
        [];
      for (const op of ops) {
        try {
          const change = await this.prepare(c, who, op, current, now, approvers);
          const before = present(current);
          current.set(op.quotaId, change.next);
          const problems = await runValidators(this.validators, { changes: [change], before, after: present(current) });
          if (problems.length > 0) {
            current.set(op.quotaId, change.previous);
            throw new QuotaValidationError(problems);
          }
          await this.persist(c, change, who.user, reason, now);
          out.push({ quota: change.next! });
        } catch (err) {
          if (
            err instanceof QuotaVersionConflict ||
            err instanceof QuotaAccessDenied ||
            err instanceof QuotaValidationError
          ) {
            out.push({ error: err });
          } else {
            throw err;
          }
        }
        onProgress?.(out.length);
      }
      return out;
    });
  }

  /**
   * Checks each update on its own against one read of the table, as a dry run of it alone would (versions,
   * authorization, validators), and keeps nothing: the planner's check of thousands of proposals. Returns the
   * problems of each, in order (empty: it would pass).
   */
  async checkEach(
    ops: readonly Extract<QuotaWriteOp, { op: 'update' }>[],
    actor: QuotaActor | string,
  ): Promise<string[][]> {
    const who = await this.resolveActor(actor);
    return this.transaction(async (c) => {
      const { rows } = await c.query<QuotaRow>(`SELECT * FROM ${this.t('quotas')} ORDER BY id`);
      const before = rows.map(rowToQuota);
      const index = new Map(before.map((q, k) => [q.id, k]));
      const current = new Map(before.map((q) => [q.id, q as Quota | null]));
      const now = new Date().toISOString();
      const approvers = new Map<string, string[]>();
      const out: string[][] = [];
      for (const op of ops) {
        try {
          const change = await this.prepare(c, who, op, current, now, approvers);
          const after = [...before];
          after[index.get(op.quotaId)!] = change.next!;
          const problems = await runValidators(this.validators, { changes: [change], before, after });
          out.push(problems.map((p: QuotaProblem) => `[${p.rule}] ${p.message}`));
        } catch (err) {
          if (err instanceof QuotaVersionConflict || err instanceof QuotaAccessDenied || err instanceof QuotaNotFound) {
            out.push([err.message]);
          } else {
            throw err;
          }
        }
      }
      return out;
    }, false);
  }

  /** Takes the write lock and reads every quota, in a write transaction. */
  private async lockedSnapshot(c: pg.ClientBase) {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-quota-write:${this.schema}`]);
    const { rows } = await c.query<QuotaRow>(`SELECT * FROM ${this.t('quotas')} ORDER BY id`);
    const before = rows.map(rowToQuota);
    const current = new Map<string, Quota | null>(before.map((q) => [q.id, q]));
    const { rows: clock } = await c.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    return { before, current, now: clock[0]!.now.toISOString() };
  }

  /** Checks one write (version, authorization) against `current` and computes the quota after it. */
  private async prepare(
    c: pg.ClientBase,
    who: Required<QuotaActor>,
    op: QuotaWriteOp,
    current: ReadonlyMap<string, Quota | null>,
    now: string,
    approvers: Map<string, string[]>,
  ): Promise<QuotaChange> {
    if (op.op === 'create') {
      const draft = QuotaDraft.parse(op.draft);
      if (current.get(draft.id)) throw new QuotaExists(draft.id);
      await this.authorizeWith(c, who, draft, 'create', approvers);
      return { previous: null, next: { ...draft, version: 1, updatedAt: now, updatedBy: who.user } };
    }
    const previous = current.get(op.quotaId);
    if (!previous) throw new QuotaNotFound(op.quotaId);
    if (previous.version !== op.expectedVersion) {
      throw new QuotaVersionConflict(op.quotaId, op.expectedVersion, previous.version);
    }
    await this.authorizeWith(c, who, previous, 'change', approvers);
    if (op.op === 'delete') return { previous, next: null };
    const { schedule: _previousSchedule, ...unscheduled } = previous;
    const next: Quota = {
      ...(op.patch.schedule === null ? unscheduled : previous),
      ...(op.patch.schedule ? { schedule: op.patch.schedule } : {}),
      ...(op.patch.spec ? { spec: op.patch.spec } : {}),
      ...(op.patch.owners
        ? {
            owners: {
              users: op.patch.owners.users ?? previous.owners.users,
              groups: op.patch.owners.groups ?? previous.owners.groups,
            },
          }
        : {}),
      ...(op.patch.tier ? { tier: op.patch.tier } : {}),
      ...(op.patch.budgetGroup ? { budgetGroup: op.patch.budgetGroup } : {}),
      version: previous.version + 1,
      updatedAt: now,
      updatedBy: who.user,
    };
    // Moving a quota into another budget group needs that group's say too.
    if (next.budgetGroup !== previous.budgetGroup) await this.authorizeWith(c, who, next, 'create', approvers);
    return { previous, next };
  }

  /** Writes one checked change and its audit row (the database stamps the login on it). */
  private async persist(c: pg.ClientBase, change: QuotaChange, actor: string, reason: string, now: string) {
    const { previous, next } = change;
    if (next) {
      const parsed = QuotaSpec.parse(next.spec);
      // A plain INSERT or UPDATE (not an upsert): the database's row check tells a create from a change.
      await c.query(
        previous === null
          ? `INSERT INTO ${this.t('quotas')}
               (id, org, project, workload, kind, spec, owners, tier, budget_group, version, updated_at, updated_by,
                schedule)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
          : `UPDATE ${this.t('quotas')} SET org = $2, project = $3, workload = $4, kind = $5, spec = $6, owners = $7,
               tier = $8, budget_group = $9, version = $10, updated_at = $11, updated_by = $12, schedule = $13
             WHERE id = $1`,
        [
          next.id,
          next.hierarchy.org,
          next.hierarchy.project,
          next.hierarchy.workload,
          parsed.kind,
          JSON.stringify(parsed),
          JSON.stringify(next.owners),
          next.tier,
          next.budgetGroup,
          next.version,
          next.updatedAt,
          next.updatedBy,
          next.schedule ? JSON.stringify(next.schedule) : null,
        ],
      );
    } else {
      await c.query(`DELETE FROM ${this.t('quotas')} WHERE id = $1`, [previous!.id]);
    }
    await c.query(
      `INSERT INTO ${this.t('audit')} (quota_id, at, actor, action, reason, version, before, after)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        (next ?? previous)!.id,
        now,
        actor,
        previous === null ? 'create' : next === null ? 'delete' : 'update',
        reason,
        (next ?? previous)!.version,
        previous === null ? null : JSON.stringify(previous),
        next === null ? null : JSON.stringify(next),
      ],
    );
  }
}

/** The quotas of a working map that still exist. */
function present(current: ReadonlyMap<string, Quota | null>): Quota[] {
  const out: Quota[] = [];
  for (const q of current.values()) if (q) out.push(q);
  return out;
}

/** Settings of {@link openQuotaStoreAt} (from `SluiceEnv.quota`). */
export interface QuotaStoreSettings {
  databaseUrl: string;
  schema?: string;
  trustedPrincipals?: readonly string[];
  clusterCapacity?: { memoryMb: number; vcores: number };
  /** Extra validators after the built-in ones. */
  extraValidators?: readonly QuotaValidator[];
}

/** Opens a pool and the store on it, with the built-in validators; `close()` ends the pool. */
export async function openQuotaStoreAt(
  settings: QuotaStoreSettings,
  makePool: (connectionString: string) => pg.Pool,
): Promise<{ store: QuotaStore; close(): Promise<void> }> {
  const pool = makePool(settings.databaseUrl);
  try {
    const store = await QuotaStore.open({
      pool,
      schema: settings.schema,
      trustedPrincipals: settings.trustedPrincipals,
      validators: [
        ...defaultValidators(settings.clusterCapacity ? { clusterCapacity: settings.clusterCapacity } : {}),
        ...(settings.extraValidators ?? []),
      ],
    });
    return { store, close: () => pool.end() };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}
