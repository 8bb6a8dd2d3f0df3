import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Command } from 'commander';
import pg from 'pg';
import { sluiceEnv } from '../../lib/config.js';
import { renderPlanDiff } from '../../lib/quota/plan.js';
import { formatSlots } from '../../lib/quota/schedule.js';
import { openQuotaStoreAt, type QuotaPatch, type QuotaStore } from '../../lib/quota/store.js';
import {
  QuotaDraft,
  QuotaSpec,
  type Quota,
  type QuotaDecision,
  type QuotaDecisionRef,
  type QuotaPlan,
  type QuotaPlanSummary,
} from '../../schemas/quota.js';
import { SearchAttributes } from '../../schemas/search-attributes.js';
import { parseOrThrow } from '../../schemas/validation.js';
import { quotaApproveUpdate, quotaPlanQuery } from '../../workflows/quota-rightsize.js';
import { clientFor, globals, stackConfig } from '../context.js';
import { readInputArgument } from '../input.js';

/**
 * `sluice quota get|set|ls|history|plan|approve`. The store commands talk to PostgreSQL directly
 * (SLUICE_QUOTA_DATABASE_URL or --database-url) and go through the store's authorization and validation as the
 * database login PostgreSQL authenticated (or `--as`, which only a member of sluice_quota_impersonator may use);
 * `plan` and `approve` talk to the running `quota-rightsize` workflow and the store.
 */

interface StoreOptions {
  databaseUrl?: string;
}

async function withStore<T>(opts: StoreOptions, work: (store: QuotaStore) => Promise<T>): Promise<T> {
  const databaseUrl = opts.databaseUrl ?? sluiceEnv.quota.databaseUrl;
  if (!databaseUrl) {
    throw new Error('where is the quota store? set SLUICE_QUOTA_DATABASE_URL or pass --database-url postgres://…');
  }
  const opened = await openQuotaStoreAt(
    { ...sluiceEnv.quota, databaseUrl },
    (url) => new pg.Pool({ connectionString: url, max: 2, application_name: 'sluice-quota-cli' }),
  );
  try {
    return await work(opened.store);
  } finally {
    await opened.close();
  }
}

function specSummary(spec: Quota['spec']): string {
  switch (spec.kind) {
    case 'capacity':
      return (
        `memory ${spec.guaranteedMemoryMb}/${spec.maxMemoryMb} MB, vcores ${spec.guaranteedVcores}/${spec.maxVcores}, ` +
        `apps ≤ ${spec.maxApps}`
      );
    case 'rateLimit':
      return `${spec.qps} qps` + (spec.bandwidthBytesPerSec === null ? '' : `, ${spec.bandwidthBytesPerSec} B/s`);
    case 'custom':
      return `${spec.value} ${spec.unit}`;
  }
}

/** A quota's summary with its time-of-day schedule, when it has one (UTC slots). */
function quotaSummary(q: Pick<Quota, 'spec' | 'schedule'>): string {
  if (!q.schedule) return specSummary(q.spec);
  const slots = Object.entries(q.schedule.values)
    .filter((e): e is [string, number[]] => e[1] !== undefined)
    .map(([field, values]) => `${field} ${formatSlots(values, q.schedule!.slotHours)}`);
  return `${specSummary(q.spec)}; schedule (UTC): ${slots.join('; ')}`;
}

/** `field=value` pairs for a spec: numbers stay numbers, `null` is null, the rest strings. */
function parseAssignments(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--set "${pair}" is not field=value, e.g. --set maxMemoryMb=4096`);
    const raw = pair.slice(eq + 1);
    out[pair.slice(0, eq)] = raw === 'null' ? null : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerQuota(program: Command): void {
  const quota = program.command('quota').description('quotas: read, change, history, and rightsizing approvals');
  const dbOption = ['--database-url <url>', 'quota store (default SLUICE_QUOTA_DATABASE_URL)'] as const;

  quota
    .command('ls')
    .description('list quotas')
    .option(...dbOption)
    .option('--group <budgetGroup>', 'only this budget group')
    .option('--org <org>', 'only this org')
    .option('--kind <kind>', 'capacity | rateLimit | custom')
    .option('--json', 'print JSON')
    .action(async (opts: StoreOptions & { group?: string; org?: string; kind?: string; json?: boolean }) => {
      if (opts.kind && !['capacity', 'rateLimit', 'custom'].includes(opts.kind)) {
        throw new Error(`--kind must be capacity, rateLimit or custom, not "${opts.kind}"`);
      }
      const quotas = await withStore(opts, (s) =>
        s.list({ budgetGroup: opts.group, org: opts.org, kind: opts.kind as Quota['spec']['kind'] | undefined }),
      );
      if (opts.json) {
        console.log(JSON.stringify(quotas, null, 2));
        return;
      }
      console.log(`${'QUOTA'.padEnd(40)} ${'GROUP'.padEnd(14)} ${'TIER'.padEnd(10)} ${'V'.padStart(4)}  LIMITS`);
      for (const q of quotas) {
        console.log(
          `${q.id.padEnd(40)} ${q.budgetGroup.padEnd(14)} ${q.tier.padEnd(10)} ${String(q.version).padStart(4)}  ${quotaSummary(q)}`,
        );
      }
      if (quotas.length === 0) console.log('(no quotas)');
    });

  quota
    .command('get')
    .description('show one quota')
    .argument('<id>')
    .option(...dbOption)
    .action(async (id: string, opts: StoreOptions) => {
      const q = await withStore(opts, (s) => s.require(id));
      console.log(JSON.stringify(q, null, 2));
    });

  quota
    .command('set')
    .description('create or change a quota, as --as (owners and budget-group approvers may change; approvers create)')
    .argument('<id>')
    .option(...dbOption)
    .option('--as <user>', 'act for this user (default: the database login; needs sluice_quota_impersonator)')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .option('--version <n>', 'the version you read (required to change; a newer stored version is a conflict)')
    .option(
      '--create <json|file>',
      'create the quota from a full draft (id, hierarchy, spec, owners, tier, budgetGroup)',
    )
    .option('--spec <json|file>', 'replace the whole spec')
    .option('--set <field=value>', 'change one spec field, e.g. maxMemoryMb=4096 (repeatable)', collect, [])
    .option('--tier <tier>', 'change the tier')
    .option('--budget-group <group>', 'move to another budget group (its approvers must agree: act as one)')
    .option('--owner-users <a,b>', 'replace the owning users')
    .option('--owner-groups <a,b>', 'replace the owning groups')
    .action(
      async (
        id: string,
        opts: StoreOptions & {
          as?: string;
          reason: string;
          version?: string;
          create?: string;
          spec?: string;
          set: string[];
          tier?: string;
          budgetGroup?: string;
          ownerUsers?: string;
          ownerGroups?: string;
        },
      ) => {
        await withStore(opts, async (store) => {
          // The authenticated database login, or the user it acts for when it may (sluice_quota_impersonator).
          const user = await store.actingAs(opts.as);
          if (opts.create) {
            const draft = parseOrThrow(QuotaDraft, { ...(readInputArgument(opts.create) as object), id }, '--create');
            const created = await store.create(draft, user, opts.reason);
            console.log(`created ${created.id} at version ${created.version} as ${user}`);
            return;
          }
          if (opts.version === undefined) {
            throw new Error(`--version is required to change "${id}": read it with \`sluice quota get ${id}\``);
          }
          const version = Number(opts.version);
          if (!Number.isInteger(version) || version < 1) throw new Error(`--version must be a positive integer`);
          const current = await store.require(id);
          const patch: QuotaPatch = {};
          if (opts.spec || opts.set.length > 0) {
            const base = opts.spec ? (readInputArgument(opts.spec) as object) : current.spec;
            patch.spec = parseOrThrow(QuotaSpec, { ...base, ...parseAssignments(opts.set) }, 'the new spec');
          }
          if (opts.tier) patch.tier = opts.tier;
          if (opts.budgetGroup) patch.budgetGroup = opts.budgetGroup;
          const list = (v: string) =>
            v
              .split(',')
              .map((x) => x.trim())
              .filter((x) => x !== '');
          if (opts.ownerUsers !== undefined || opts.ownerGroups !== undefined) {
            patch.owners = {
              ...(opts.ownerUsers !== undefined ? { users: list(opts.ownerUsers) } : {}),
              ...(opts.ownerGroups !== undefined ? { groups: list(opts.ownerGroups) } : {}),
            };
          }
          if (Object.keys(patch).length === 0) throw new Error('nothing to change: pass --set, --spec, --tier, … ');
          const updated = await store.update(id, version, patch, user, opts.reason);
          console.log(`updated ${updated.id} to version ${updated.version} as ${user}: ${quotaSummary(updated)}`);
        });
      },
    );

  quota
    .command('history')
    .description("a quota's audit log: who, when, why, before → after")
    .argument('<id>')
    .option(...dbOption)
    .option('--limit <n>', 'the newest n entries', '50')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: StoreOptions & { limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a positive integer`);
      const entries = await withStore(opts, (s) => s.history(id, { limit }));
      if (opts.json) {
        console.log(JSON.stringify(entries, null, 2));
        return;
      }
      for (const e of entries) {
        console.log(`${e.at}  v${e.version}  ${e.action.padEnd(6)} by ${e.actor}: ${e.reason}`);
        if (e.before) console.log(`    before: ${quotaSummary(e.before)}`);
        if (e.after) console.log(`    after:  ${quotaSummary(e.after)}`);
      }
      if (entries.length === 0) console.log(`(no history for "${id}")`);
    });

  quota
    .command('approvers')
    .description(
      "show a budget group's approvers, or replace them (an operator's action: needs the store's credentials)",
    )
    .argument('<budgetGroup>')
    .argument('[principals...]', 'users, or group:<name>; none: show')
    .option(...dbOption)
    .action(async (budgetGroup: string, principals: string[], opts: StoreOptions) => {
      await withStore(opts, async (store) => {
        if (principals.length > 0) await store.setApprovers(budgetGroup, principals);
        console.log(`${budgetGroup}: ${(await store.listApprovers(budgetGroup)).join(', ') || '(no approvers)'}`);
      });
    });

  quota
    .command('members')
    .description("show a group's members, or replace them (an operator's action, or a directory sync)")
    .argument('<group>')
    .argument('[users...]', 'none: show')
    .option(...dbOption)
    .action(async (group: string, users: string[], opts: StoreOptions) => {
      await withStore(opts, async (store) => {
        if (users.length > 0) await store.setGroupMembers(group, users);
        console.log(`${group}: ${(await store.listGroupMembers(group)).join(', ') || '(no members)'}`);
      });
    });

  /** The running rightsize run of a group (through search attributes), or the one named. */
  async function findRun(cmd: Command, budgetGroup: string, workflowId: string | undefined) {
    const g = globals(cmd);
    const config = stackConfig(g);
    const { client, connection } = await clientFor(g, config);
    try {
      if (workflowId) return { handle: client.workflow.getHandle(workflowId), connection };
      const query =
        `${SearchAttributes.pipeline.name} = 'quota-rightsize' AND ${SearchAttributes.dataset.name} = '${budgetGroup}'` +
        ` AND ExecutionStatus = 'Running'`;
      for await (const wf of client.workflow.list({ query, pageSize: 10 })) {
        return { handle: client.workflow.getHandle(wf.workflowId, wf.runId), connection };
      }
      throw new Error(
        `no running quota-rightsize run for budget group "${budgetGroup}"; pass --workflow-id if it was just started`,
      );
    } catch (err) {
      await connection.close();
      throw err;
    }
  }

  quota
    .command('plan')
    .description("show the running rightsize run's plan with each change's status (the diff is read from the store)")
    .argument('<budgetGroup>')
    .option(...dbOption)
    .option('--workflow-id <id>', 'the run (default: the running quota-rightsize run of the group)')
    .option('--json', 'print JSON')
    .action(async (budgetGroup: string, opts: StoreOptions & { workflowId?: string; json?: boolean }, cmd: Command) => {
      const { handle, connection } = await findRun(cmd, budgetGroup, opts.workflowId);
      let summary: QuotaPlanSummary;
      try {
        summary = await handle.query(quotaPlanQuery);
      } finally {
        await connection.close();
      }
      if (!summary.stored) {
        // A run started before plans were stored carries its diff itself.
        console.log(opts.json ? JSON.stringify(summary, null, 2) : (summary.diff ?? ''));
        return;
      }
      const key = summary.stored;
      const plan = await withStore(opts, (s) => s.readPlan(key));
      if (!plan) throw new Error(`the quota store has no plan for run ${key.workflowId} (${key.runId})`);
      const { applied: _applied, ...stored } = plan;
      const live = new Map(summary.entries.map((e) => [e.quotaId, e]));
      const merged: QuotaPlan = {
        ...stored,
        entries: stored.entries.map((e) => {
          const state = live.get(e.quotaId);
          return state ? { ...e, status: state.status, ...(state.note ? { note: state.note } : {}) } : e;
        }),
      };
      merged.diff = renderPlanDiff(merged);
      console.log(opts.json ? JSON.stringify(merged, null, 2) : merged.diff);
    });

  quota
    .command('approve')
    .description(
      'decide on changes waiting for approval in the running rightsize run (owners and approvers only): the ' +
        'decision is recorded in the quota store under your database login, and the run reads it from there',
    )
    .argument('<budgetGroup>')
    .option(...dbOption)
    .option('--as <user>', 'decide for this user (default: the database login; needs sluice_quota_impersonator)')
    .option('--quota <id>', 'decide on this quota only (repeatable; default: every pending one)', collect, [])
    .option('--reject', 'reject instead of approving (the quotas keep their values)')
    .option('--modify <id=json>', 'apply this spec instead of the proposal (repeatable)', collect, [])
    .option('--reason <text>', 'why (kept in the audit log)')
    .option('--workflow-id <id>', 'the run (default: the running quota-rightsize run of the group)')
    .action(
      async (
        budgetGroup: string,
        opts: StoreOptions & {
          as?: string;
          quota: string[];
          reject?: boolean;
          modify: string[];
          reason?: string;
          workflowId?: string;
        },
        cmd: Command,
      ) => {
        if (opts.reject && opts.modify.length > 0) throw new Error('--reject and --modify exclude each other');
        const specs: Record<string, QuotaSpec> = {};
        for (const m of opts.modify) {
          const eq = m.indexOf('=');
          if (eq <= 0) throw new Error(`--modify "${m}" is not <id>=<spec json>`);
          specs[m.slice(0, eq)] = parseOrThrow(QuotaSpec, JSON.parse(m.slice(eq + 1)), `--modify ${m.slice(0, eq)}`);
        }
        const decision = opts.reject ? 'reject' : opts.modify.length > 0 ? 'modify' : 'approve';
        const { handle, connection } = await findRun(cmd, budgetGroup, opts.workflowId);
        try {
          const summary = await handle.query(quotaPlanQuery);
          const arg: QuotaDecisionRef | QuotaDecision = await withStore(opts, async (store) => {
            if (!summary.stored) {
              // A run started before decisions were recorded takes the decision itself, as the authenticated user.
              return {
                decision,
                user: await store.actingAs(opts.as),
                ...(opts.quota.length > 0 ? { quotaIds: opts.quota } : {}),
                ...(opts.modify.length > 0 ? { specs } : {}),
                ...(opts.reason ? { reason: opts.reason } : {}),
              };
            }
            const recorded = await store.recordDecision({
              workflowId: handle.workflowId,
              budgetGroup,
              decision,
              ...(opts.as !== undefined ? { as: opts.as } : {}),
              ...(opts.quota.length > 0 ? { quotaIds: opts.quota } : {}),
              ...(opts.modify.length > 0 ? { specs } : {}),
              ...(opts.reason ? { reason: opts.reason } : {}),
            });
            return { decisionId: recorded.id };
          });
          const result = await handle.executeUpdate(quotaApproveUpdate, { args: [arg] }).catch((err: unknown) => {
            if (err instanceof WorkflowUpdateFailedError) {
              throw new Error(`the ${decision} was refused: ${err.cause?.message ?? err.message}`);
            }
            throw err;
          });
          console.log(`${result.decision}: ${result.decided.join(', ')} (run ${handle.workflowId})`);
          for (const o of result.outcomes)
            console.log(`  ${o.quotaId}: ${o.status}${o.version ? ` v${o.version}` : ''}`);
          console.log(`still pending: ${result.stillPending.length === 0 ? 'none' : result.stillPending.join(', ')}`);
        } finally {
          await connection.close();
        }
      },
    );
}
