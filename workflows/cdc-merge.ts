import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CdcActivities } from '../activities/cdc-activities.js';
import {
  CDC_MERGE_SIGNALS,
  CdcMergeCarriedState,
  CdcMergeInput,
  type CdcMergePhase,
  type CdcMergeProgress,
  type CdcSlotStatus,
  type MergeBatchResult,
} from '../schemas/cdc.js';
import { PROGRESS_QUERY } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { MergeOperations } from './cdc-merge-operations.js';
import { parseWorkflowInput } from './validate-input.js';

/**
 * The merge's activities. A continuous pipeline should outlast a source outage, so transient failures retry
 * without a limit (at most one try a minute); permanent ones (typed, non-retryable) fail at once.
 * `workerLossTimeoutMs` (default 1 min) is how soon the work of a dead worker is retried elsewhere.
 */
function mergeActivities(workerLossTimeoutMs: number) {
  const { mergeBatch } = proxyActivities<CdcActivities>({
    startToCloseTimeout: '15m',
    heartbeatTimeout: workerLossTimeoutMs,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
    summary: 'merge one batch of slot changes into Iceberg',
  });
  const { advanceSlot, slotStatus } = proxyActivities<CdcActivities>({
    startToCloseTimeout: workerLossTimeoutMs,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
    summary: 'advance the replication slot past committed changes',
  });
  return { mergeBatch, advanceSlot, slotStatus };
}

/** The shared `progress` query, answered with the merge's full status. */
export const cdcMergeProgressQuery = defineQuery<CdcMergeProgress>(PROGRESS_QUERY);
/** Stop merging after the current batch until `resume`; the slot keeps the changes meanwhile. */
export const cdcMergePauseSignal = defineSignal(CDC_MERGE_SIGNALS.pause);
export const cdcMergeResumeSignal = defineSignal(CDC_MERGE_SIGNALS.resume);
/** Merge now instead of waiting out the poll interval; while paused, merge exactly one batch. */
export const cdcMergeFlushSignal = defineSignal(CDC_MERGE_SIGNALS.flush);

/**
 * The per-source merge loop (`cdc/<source>`): merge a batch of the slot's changes into the Iceberg tables, advance
 * the slot only after that commit, then wait per `mode`. Exactly once rests on each table's watermark, so a retried
 * batch or a slot that went back applies nothing twice. `continuous` runs until cancelled: a cancel lets the batch
 * in flight finish and commit, then ends the run as cancelled. `scheduled` returns its counters once caught up.
 */
export async function cdcMerge(rawInput: CdcMergeInput): Promise<CdcMergeCarriedState | undefined> {
  const input = parseWorkflowInput(CdcMergeInput, rawInput, 'cdcMerge input');
  const { mergeBatch, advanceSlot, slotStatus } = mergeActivities(input.workerLossTimeoutMs);
  const state = input.state ?? CdcMergeCarriedState.parse({});
  state.runs += 1;
  // Live: the addTable update adds to input.tables.
  const icebergTables = () => input.tables.map((t) => t.icebergTable);
  let phase: CdcMergePhase = 'starting';
  let flushRequested = false;

  setHandler(cdcMergeProgressQuery, (): CdcMergeProgress => ({
    ...state,
    phase,
    done: state.rowsMerged,
    total: 0,
    unit: 'rows',
    detail:
      `${state.batches} batches, ${state.rowsMerged} rows merged` +
      (state.lagBytes === undefined ? '' : `, lag ${state.lagBytes} bytes`) +
      (state.blockedTables.length === 0
        ? ''
        : `; BLOCKED by a source schema change: ${state.blockedTables.map((b) => b.table).join(', ')}`),
    sourceName: input.sourceName,
    slot: input.slot,
    tables: icebergTables(),
  }));
  setHandler(cdcMergePauseSignal, () => {
    state.paused = true;
  });
  setHandler(cdcMergeResumeSignal, () => {
    state.paused = false;
  });
  setHandler(cdcMergeFlushSignal, () => {
    flushRequested = true;
  });
  // The phase search attribute changes only between running, paused and blocked (a table waits for an operator):
  // an upsert per batch would fill the history.
  const wantedPhase = (): 'running' | 'paused' | 'blocked' =>
    state.paused ? 'paused' : state.blockedTables.length > 0 ? 'blocked' : 'running';
  let shownPhase = wantedPhase();
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'cdc-merge' },
    { key: SearchAttributes.dataset, value: icebergTables().join(',') },
    { key: SearchAttributes.phase, value: shownPhase },
  ]);
  const showPhase = (next: 'running' | 'paused' | 'blocked') => {
    if (next === shownPhase) return;
    shownPhase = next;
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: next }]);
  };

  // Operator updates (resolve a blocked table, forget a key, replay the quarantine) run here, between batches.
  const operations = new MergeOperations(
    input,
    state,
    () => showPhase(wantedPhase()),
    () => upsertSearchAttributes([{ key: SearchAttributes.dataset, value: icebergTables().join(',') }]),
  );
  operations.install();

  let idleWaitMs = input.pollIntervalMs;
  for (let iteration = 1; ; iteration++) {
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cdc-merge was cancelled');
    await operations.runPending();
    while (state.paused && !flushRequested) {
      phase = 'paused';
      showPhase('paused');
      await condition(() => !state.paused || flushRequested || operations.hasWork());
      await operations.runPending();
    }
    showPhase(wantedPhase());
    flushRequested = false;

    // Once a batch is read, it is merged and the slot advanced even if a cancel arrives meanwhile.
    const { result, status } = await CancellationScope.nonCancellable(() => mergeAndAdvance());
    state.batches += 1;
    state.changes += result.changes;
    state.rowsMerged += result.merged;
    state.quarantined += result.quarantined;
    if (result.committedAt) state.lastCommitTime = result.committedAt;
    if (result.lastSourceCommitTime) state.lastSourceCommitTime = result.lastSourceCommitTime;
    if (status.confirmedLsn) state.confirmedLsn = status.confirmedLsn;
    state.sourceLsn = status.currentLsn;
    state.lagBytes = status.lagBytes;
    state.retainedWalBytes = status.retainedWalBytes;
    state.lagSeconds = result.lagSeconds;
    operations.afterBatch(result, result.lastSourceCommitTime ?? workflowInfo().runStartTime.toISOString());
    const walAlert = BigInt(status.retainedWalBytes) > BigInt(input.retainedWalAlertBytes);
    if (walAlert && !state.retainedWalAlert) {
      log.warn('cdc-merge: the slot retains more WAL than the alert limit', {
        slot: input.slot,
        retainedWalBytes: status.retainedWalBytes,
        limit: input.retainedWalAlertBytes,
      });
    }
    state.retainedWalAlert = walAlert;
    if (result.quarantined > 0) {
      log.warn('cdc-merge quarantined changes', { count: result.quarantined, file: result.quarantineFile });
    }

    if (input.mode === 'scheduled' && !result.cutShort) {
      // Caught up: this tick's run is done, after any operator update that arrived meanwhile. A table blocked by a
      // schema change is detected again by the next run until an operator resolves it (docs/cdc-pipeline.md).
      await operations.runPending();
      while (!allHandlersFinished()) {
        await condition(() => allHandlersFinished() || operations.hasWork());
        await operations.runPending();
      }
      phase = 'caught-up';
      log.info('cdc-merge caught up (scheduled mode)', {
        source: input.sourceName,
        batches: state.batches,
        rowsMerged: state.rowsMerged,
        confirmedLsn: state.confirmedLsn,
      });
      return state;
    }

    if (iteration >= input.iterationsPerRun || workflowInfo().continueAsNewSuggested) {
      // Updates wait for the loop to run their action, so keep running actions until every handler is done.
      await operations.runPending();
      while (!allHandlersFinished()) {
        await condition(() => allHandlersFinished() || operations.hasWork());
        await operations.runPending();
      }
      // input.tables: the tables added by the addTable update go on in the next run.
      await continueAsNew<typeof cdcMerge>({ ...rawInput, tables: input.tables, state });
    }

    // More is waiting: go on at once. Work was found: poll again soon. Idle: back off up to idleIntervalMs.
    if (result.cutShort) continue;
    let waitMs: number;
    if (result.changes > 0) {
      idleWaitMs = input.pollIntervalMs;
      waitMs = input.pollIntervalMs;
      phase = 'waiting';
    } else {
      waitMs = idleWaitMs;
      idleWaitMs = Math.min(idleWaitMs * 2, input.idleIntervalMs);
      phase = 'idle';
    }
    await condition(() => flushRequested || state.paused || operations.hasWork(), waitMs);
  }

  async function mergeAndAdvance(): Promise<{ result: MergeBatchResult; status: CdcSlotStatus }> {
    phase = 'merging';
    let result: MergeBatchResult;
    try {
      result = await mergeBatch({
        connectionString: input.source.connectionString,
        sourceName: input.sourceName,
        tables: input.tables,
        slot: input.slot,
        publication: input.publication,
        maxChanges: input.maxChangesPerBatch,
        ...(state.blockedTables.length > 0 ? { blockedTables: state.blockedTables.map((b) => b.table) } : {}),
      });
    } catch (err) {
      throw permanentFailure(err, input.sourceName);
    }
    phase = 'advancing';
    const connection = { connectionString: input.source.connectionString, slot: input.slot };
    const status = result.advanceTo
      ? await advanceSlot({ ...connection, to: result.advanceTo })
      : await slotStatus(connection);
    return { result, status };
  }
}

/** A failed merge activity as the workflow's failure: the activity's type, named for the source. */
export function permanentFailure(err: unknown, sourceName: string, workflow = 'cdc-merge'): unknown {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return err;
  const cause = err.cause;
  return ApplicationFailure.create({
    type: cause.type ?? 'InvalidInput',
    nonRetryable: true,
    message: `${workflow} of source "${sourceName}" stopped: ${cause.message}`,
    cause: err,
  });
}
