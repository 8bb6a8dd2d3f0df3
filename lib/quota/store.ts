import type pg from 'pg';
import {
  Quota,
  QuotaDraft,
  QuotaSpec,
  type QuotaActor,
  type QuotaAuditEntry,
  type QuotaKind,
  type QuotaSchedule,
} from '../../schemas/quota.js';
import { QuotaAccessDenied, QuotaExists, QuotaNotFound, QuotaValidationError, QuotaVersionConflict } from './errors.js';
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

  private constructor(options: QuotaStoreOptions) {
    const schema = options.schema ?? 'sluice_quota';
    if (!SCHEMA_NAME.test(schema)) {
      throw new TypeError(`quota store schema "${schema}" is not a plain lower-case identifier`);
    }
    this.pool = options.pool;
    this.schema = schema;
    this.validators = options.validators ?? defaultValidators();
    this.trusted = new Set(options.trustedPrincipals ?? []);
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

  /** Creates the schema, tables, indexes and the append-only trigger, idempotently. */
  async migrate(): Promise<void> {
    const s = this.schema;
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
    });
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
  ): Promise<void> {
    if (this.trusted.has(actor.user)) return;
    const groups = new Set(actor.groups);
    if (what === 'change') {
      if (quota.owners.users.includes(actor.user)) return;
      if (quota.owners.groups.some((g) => groups.has(g))) return;
    }
    const approvers = await this.approversOf(c, quota.budgetGroup);
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
   */
  async write(
    ops: readonly QuotaWriteOp[],
    actor: QuotaActor | string,
    reason: string,
    options: { dryRun?: boolean } = {},
  ): Promise<Array<Quota | null>> {
    if (reason.trim() === '') throw new TypeError('every quota change needs a reason (it goes to the audit log)');
    const who = await this.resolveActor(actor);
    return this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice-quota-write:${this.schema}`]);
      const { rows } = await c.query<QuotaRow>(`SELECT * FROM ${this.t('quotas')} ORDER BY id`);
      const before = rows.map(rowToQuota);
      const current = new Map(before.map((q) => [q.id, q]));
      const { rows: clock } = await c.query<{ now: Date }>('SELECT clock_timestamp() AS now');
      const now = clock[0]!.now.toISOString();
      const changes: QuotaChange[] = [];
      for (const op of ops) {
        if (op.op === 'create') {
          const draft = QuotaDraft.parse(op.draft);
          if (current.has(draft.id)) throw new QuotaExists(draft.id);
          await this.authorizeWith(c, who, draft, 'create');
          const next: Quota = { ...draft, version: 1, updatedAt: now, updatedBy: who.user };
          current.set(next.id, next);
          changes.push({ previous: null, next });
          continue;
        }
        const previous = current.get(op.quotaId);
        if (!previous) throw new QuotaNotFound(op.quotaId);
        if (previous.version !== op.expectedVersion) {
          throw new QuotaVersionConflict(op.quotaId, op.expectedVersion, previous.version);
        }
        await this.authorizeWith(c, who, previous, 'change');
        if (op.op === 'delete') {
          current.delete(op.quotaId);
          changes.push({ previous, next: null });
          continue;
        }
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
        if (next.budgetGroup !== previous.budgetGroup) await this.authorizeWith(c, who, next, 'create');
        current.set(next.id, next);
        changes.push({ previous, next });
      }
      const problems = await runValidators(this.validators, { changes, before, after: [...current.values()] });
      if (problems.length > 0) throw new QuotaValidationError(problems);

      for (const { previous, next } of changes) {
        if (next) {
          const parsed = QuotaSpec.parse(next.spec);
          await c.query(
            `INSERT INTO ${this.t('quotas')}
               (id, org, project, workload, kind, spec, owners, tier, budget_group, version, updated_at, updated_by,
                schedule)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO UPDATE SET org = $2, project = $3, workload = $4, kind = $5, spec = $6, owners = $7,
               tier = $8, budget_group = $9, version = $10, updated_at = $11, updated_by = $12, schedule = $13`,
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
            who.user,
            previous === null ? 'create' : next === null ? 'delete' : 'update',
            reason,
            (next ?? previous)!.version,
            previous === null ? null : JSON.stringify(previous),
            next === null ? null : JSON.stringify(next),
          ],
        );
      }
      return changes.map((ch) => ch.next);
    }, !options.dryRun);
  }
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
