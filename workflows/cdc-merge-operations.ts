import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineUpdate,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { CdcOperatorActivities } from '../activities/cdc-operator-activities.js';
import {
  defaultIcebergTable,
  type CdcMergeCarriedState,
  type MergeBatchResult,
  type OnboardTableResult,
  type PendingPurge,
} from '../schemas/cdc.js';
import {
  AddTableRequest,
  CDC_MERGE_UPDATES,
  ForgetRequest,
  ReplayQuarantineRequest,
  ResolveSchemaChangeRequest,
  type ForgetResult,
  type ReplayQuarantinedResult,
  type ResolveSchemaChangeResult,
} from '../schemas/cdc-operations.js';
import type { z } from 'zod';
import type { CdcMergeInput as CdcMergeInputSchema } from '../schemas/cdc.js';

/**
 * The operator side of `cdc-merge`: its updates (resolve a blocked schema change, forget a key, replay quarantined
 * changes) and the compliance purges they schedule. Updates only queue work; the merge loop runs it between
 * batches, so an operator action never races the merge's own commits to a table. Not a workflow: a helper of
 * workflows/cdc-merge.ts, deterministic like it.
 */

/** Resolve a table blocked by an incompatible source schema change: `apply`, `skip` or `re-bootstrap`. */
export const cdcMergeResolveSchemaUpdate = defineUpdate<ResolveSchemaChangeResult, [ResolveSchemaChangeRequest]>(
  CDC_MERGE_UPDATES.resolveSchemaChange,
);
/** Compliance: delete a key now, purge it from every snapshot and file after the retention window. */
export const cdcMergeForgetUpdate = defineUpdate<ForgetResult, [ForgetRequest]>(CDC_MERGE_UPDATES.forget);
/** Re-apply quarantined changes (after fixing their cause) and mark them replayed. */
export const cdcMergeReplayUpdate = defineUpdate<ReplayQuarantinedResult, [ReplayQuarantineRequest]>(
  CDC_MERGE_UPDATES.replayQuarantine,
);

/**
 * Adds a source table to the merge: creates its Iceberg table and copies it from a temporary slot's snapshot, then
 * the merge reads its changes from the source's slot with the others (each table committed before the slot moves).
 */
export const cdcMergeAddTableUpdate = defineUpdate<OnboardTableResult, [AddTableRequest]>(CDC_MERGE_UPDATES.addTable);

// The copy of an added table is one long activity (an exported snapshot cannot outlive its connection).
const { addSourceTable } = proxyActivities<CdcOperatorActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 5 },
  summary: 'add a source table to the merge: copy it into a new Iceberg table',
});

const { resolveSchemaChange, forgetKey, purgeForgotten, replayQuarantined } = proxyActivities<CdcOperatorActivities>({
  startToCloseTimeout: '2h',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
  summary: 'operator action on a CDC table',
});

interface QueuedAction {
  what: string;
  run: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Operator actions queued by update handlers and run by a merge loop between its batches, one at a time in arrival
 * order, so that an action never races the merge's own commits. A failed action fails its update (typed, not
 * retryable), never the merge. Shared by `cdc-merge` and `cdc-file-merge`.
 */
export class OperatorActionQueue {
  private readonly queue: QueuedAction[] = [];

  /** Whether an action waits: a merge loop's wait conditions wake on it. */
  hasWork(): boolean {
    return this.queue.length > 0;
  }

  /** Runs the queued actions (and any queued meanwhile); each settles the update that queued it. */
  async runPending(): Promise<void> {
    while (this.queue.length > 0) {
      const action = this.queue.shift()!;
      try {
        action.resolve(await CancellationScope.nonCancellable(action.run));
      } catch (err) {
        log.warn('cdc operator action failed', { action: action.what, error: String(err) });
        action.reject(updateFailure(err, action.what));
      }
    }
  }

  /** Queues an action; the promise settles once the loop has run it. */
  enqueue<T>(what: string, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ what, run, resolve: resolve as (v: unknown) => void, reject });
    });
  }
}

type ParsedInput = z.output<typeof CdcMergeInputSchema>;

/** The merge's operator actions; {@link MergeOperations.runPending} runs them from the loop. */
export class MergeOperations {
  private readonly actions = new OperatorActionQueue();
  private readonly timers: Promise<void>[] = [];

  constructor(
    private readonly input: ParsedInput,
    private readonly state: CdcMergeCarriedState,
    /** Told when the set of blocked tables becomes empty or non-empty (for the phase search attribute). */
    private readonly onBlockedChange: (blocked: boolean) => void,
    /** Told after a table was added to the merge (for the dataset search attribute). */
    private readonly onTableAdded: () => void = () => undefined,
  ) {}

  /** Sets the update handlers and restarts the purge timers a previous run carried over. */
  install(): void {
    setHandler(
      cdcMergeResolveSchemaUpdate,
      (request) => {
        const blocked = this.blockedTable(request.table)!;
        return this.enqueue(`resolve ${blocked.table} (${request.action})`, async () => {
          const result = await resolveSchemaChange({
            connectionString: this.input.source.connectionString,
            sourceName: this.input.sourceName,
            table: blocked.table,
            icebergTable: blocked.icebergTable,
            slot: this.input.slot,
            publication: this.input.publication,
            action: request.action,
          });
          this.state.blockedTables = this.state.blockedTables.filter((b) => b.table !== blocked.table);
          this.showBlockedTables();
          if (this.state.blockedTables.length === 0) this.onBlockedChange(false);
          log.info('cdc-merge resolved a blocked table', { ...result });
          return result;
        });
      },
      {
        validator: (request) => {
          ResolveSchemaChangeRequest.parse(request);
          if (!this.blockedTable(request.table)) {
            throw new Error(
              `table "${request.table}" is not blocked by a schema change (blocked: ` +
                `${this.state.blockedTables.map((b) => b.table).join(', ') || 'none'})`,
            );
          }
        },
      },
    );
    setHandler(
      cdcMergeForgetUpdate,
      (request) => {
        const table = this.mergeTable(request.table)!;
        return this.enqueue(`forget a key of ${table.icebergTable}`, async () => {
          const done = await forgetKey({
            sourceName: this.input.sourceName,
            table: table.source,
            icebergTable: table.icebergTable,
            key: request.key,
          });
          const retention = request.retentionMs ?? this.input.forgetRetentionMs;
          const purge: PendingPurge = {
            icebergTable: table.icebergTable,
            forgottenAt: done.forgottenAt,
            dueAt: new Date(Date.parse(done.forgottenAt) + retention).toISOString(),
            keys: 1,
          };
          this.state.pendingPurges.push(purge);
          this.startPurgeTimer(purge, retention);
          return { ...done, purgeDueAt: purge.dueAt };
        });
      },
      {
        validator: (request) => {
          ForgetRequest.parse(request);
          if (!this.mergeTable(request.table)) throw new Error(this.unknownTable(request.table));
        },
      },
    );
    setHandler(
      cdcMergeReplayUpdate,
      (request) => {
        const table = request.table === undefined ? undefined : this.mergeTable(request.table)!;
        return this.enqueue('replay quarantined changes', () =>
          replayQuarantined({
            connectionString: this.input.source.connectionString,
            sourceName: this.input.sourceName,
            tables: this.input.tables,
            ...(table ? { table: table.source } : {}),
            ...(request.errorKind ? { errorKind: request.errorKind } : {}),
            ...(request.ids ? { ids: request.ids } : {}),
          }),
        );
      },
      {
        validator: (request) => {
          ReplayQuarantineRequest.parse(request);
          if (request.table !== undefined && !this.mergeTable(request.table)) {
            throw new Error(this.unknownTable(request.table));
          }
        },
      },
    );
    setHandler(
      cdcMergeAddTableUpdate,
      (raw) => {
        const request = AddTableRequest.parse(raw);
        const icebergTable = request.icebergTable ?? defaultIcebergTable(this.input.sourceName, request.table);
        return this.enqueue(`add table ${request.table}`, async () => {
          const result = await addSourceTable({
            connectionString: this.input.source.connectionString,
            sourceName: this.input.sourceName,
            table: request.table,
            ...(request.key ? { key: request.key } : {}),
            buckets: request.buckets,
            icebergTable,
            slot: this.input.slot,
            publication: this.input.publication,
            wideNumeric: request.wideNumeric,
          });
          // From the next batch on, the table is merged with the others (and carried across continue-as-new).
          if (!this.mergeTable(request.table)) {
            this.input.tables.push({ source: request.table, icebergTable });
            this.onTableAdded();
          }
          log.info('cdc-merge added a table', { table: request.table, icebergTable, rowsCopied: result.rowsCopied });
          return result;
        });
      },
      {
        validator: (raw) => {
          const request = AddTableRequest.parse(raw);
          const icebergTable = request.icebergTable ?? defaultIcebergTable(this.input.sourceName, request.table);
          const known = this.mergeTable(request.table) ?? this.mergeTable(icebergTable);
          if (known) {
            throw new Error(
              `table "${request.table}" is already merged by ${workflowInfo().workflowId} (→ ${known.icebergTable})`,
            );
          }
          if (this.input.tables.length >= 100) throw new Error('a merge takes at most 100 tables');
        },
      },
    );
    const runStart = workflowInfo().runStartTime.getTime();
    for (const purge of this.state.pendingPurges) {
      this.startPurgeTimer(purge, Math.max(0, Date.parse(purge.dueAt) - runStart));
    }
  }

  /** Whether an action waits for the loop. */
  hasWork(): boolean {
    return this.actions.hasWork();
  }

  /** Runs the queued actions, one at a time, in arrival order; a failed action fails its update, not the merge. */
  runPending(): Promise<void> {
    // The queue's own promise, not an async wrapper's: an extra await would move the commands it schedules
    // relative to the update's acceptance, and recorded histories would no longer replay.
    return this.actions.runPending();
  }

  /** Takes note of what a batch found: newly blocked tables and applied schema changes. */
  afterBatch(result: MergeBatchResult, nowIso: string): void {
    for (const change of result.schemaChanges ?? []) {
      this.state.schemaChanges += change.changes.length;
      log.info('cdc-merge followed a source schema change', change);
    }
    for (const blocked of result.newlyBlocked ?? []) {
      if (this.state.blockedTables.some((b) => b.table === blocked.table)) continue;
      const wasEmpty = this.state.blockedTables.length === 0;
      this.state.blockedTables.push({ ...blocked, since: nowIso });
      // The typed error an operator sees in the UI's event history and worker logs; the query lists it too.
      log.error('cdc-merge blocked a table: incompatible source schema change', {
        type: 'Unsupported',
        kind: 'incompatible-schema-change',
        table: blocked.table,
        icebergTable: blocked.icebergTable,
        changes: blocked.changes,
        resolveWith: `update ${CDC_MERGE_UPDATES.resolveSchemaChange} {table, action: apply|skip|re-bootstrap}`,
      });
      this.showBlockedTables();
      if (wasEmpty) this.onBlockedChange(true);
    }
  }

  /** The UI's "current details" of the run: the blocked tables and how to resolve them (empty when none). */
  private showBlockedTables(): void {
    setCurrentDetails(
      this.state.blockedTables
        .map(
          (b) =>
            `**${b.table}** (${b.icebergTable}) is blocked since ${b.since} by an incompatible source schema change ` +
            `(Unsupported, incompatible-schema-change): ${b.changes.join('; ')}. Resolve with the ` +
            `\`${CDC_MERGE_UPDATES.resolveSchemaChange}\` update or \`sluice cdc resolve --table ${b.table} ` +
            `--action apply|skip|re-bootstrap\`.`,
        )
        .join('\n\n'),
    );
  }

  private enqueue<T>(what: string, run: () => Promise<T>): Promise<T> {
    return this.actions.enqueue(what, run);
  }

  private startPurgeTimer(purge: PendingPurge, delayMs: number): void {
    this.timers.push(
      sleep(delayMs)
        .then(() =>
          this.enqueue(`purge forgotten keys of ${purge.icebergTable}`, async () => {
            // A later purge of the same table already covered this one.
            if (!this.state.pendingPurges.includes(purge)) return undefined;
            const result = await purgeForgotten({ icebergTable: purge.icebergTable, forgottenAt: purge.forgottenAt });
            // Everything forgotten before this purge's forget is gone too.
            this.state.pendingPurges = this.state.pendingPurges.filter(
              (p) => p.icebergTable !== purge.icebergTable || Date.parse(p.forgottenAt) > Date.parse(purge.forgottenAt),
            );
            log.info('cdc-merge purged forgotten keys', { ...result });
            return result;
          }),
        )
        .then(
          () => undefined,
          // A cancelled run or a failed purge: the purge stays pending and is retried by the next run.
          () => undefined,
        ),
    );
  }

  private blockedTable(name: string) {
    return this.state.blockedTables.find((b) => b.table === name || b.icebergTable === name);
  }

  private mergeTable(name: string) {
    return this.input.tables.find((t) => t.source === name || t.icebergTable === name);
  }

  private unknownTable(name: string): string {
    return (
      `table "${name}" is not merged by ${workflowInfo().workflowId} ` +
      `(tables: ${this.input.tables.map((t) => `${t.source} → ${t.icebergTable}`).join(', ')})`
    );
  }
}

/** An operator action's failure as the update's failure: the activity's type and message. */
function updateFailure(err: unknown, what: string): ApplicationFailure {
  const cause = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
  return ApplicationFailure.create({
    type: cause?.type ?? 'Internal',
    nonRetryable: true,
    message: `${what} failed: ${cause?.message ?? (err instanceof Error ? err.message : String(err))}`,
  });
}
