import {
  allHandlersFinished,
  CancellationScope,
  CancelledFailure,
  condition,
  continueAsNew,
  defineQuery,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CdcActivities } from '../activities/cdc-activities.js';
import type { CdcOperatorActivities } from '../activities/cdc-operator-activities.js';
import { ReplayQuarantineRequest } from '../schemas/cdc-operations.js';
import {
  CdcFileMergeCarriedState,
  CdcFileMergeInput,
  defaultIcebergTable,
  type CdcFileMergeProgress,
  type CdcMergePhase,
  type MergeFileBatchResult,
} from '../schemas/cdc.js';
import { PROGRESS_QUERY } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { cdcMergeFlushSignal, cdcMergePauseSignal, cdcMergeResumeSignal, permanentFailure } from './cdc-merge.js';
import { cdcMergeReplayUpdate, OperatorActionQueue } from './cdc-merge-operations.js';
import { parseWorkflowInput } from './validate-input.js';

/** The shared `progress` query, answered with the file merge's status. */
export const cdcFileMergeProgressQuery = defineQuery<CdcFileMergeProgress>(PROGRESS_QUERY);

/**
 * The merge of a Debezium change-file source (`cdc-files/<source>`): creates the Iceberg table once (schema from
 * the events' Connect schema or the given columns), then merges the files above the table's committed high-water
 * mark in key order, through the same collapse and upsert as the PostgreSQL merge, with the new mark in the same
 * snapshot. It answers the same signals (`pause`, `resume`, `flush`), the `progress` query and the
 * `replayQuarantine` update (run between batches; records a later change of their key in the files supersedes are
 * skipped), and runs until cancelled, like `cdc-merge`.
 */
export async function cdcFileMerge(rawInput: CdcFileMergeInput): Promise<void> {
  const input = parseWorkflowInput(CdcFileMergeInput, rawInput, 'cdcFileMerge input');
  const state = input.state ?? CdcFileMergeCarriedState.parse({});
  state.runs += 1;
  const icebergTable = input.icebergTable ?? defaultIcebergTable(input.sourceName, input.table);
  const { onboardFileTable, mergeFileBatch } = proxyActivities<CdcActivities>({
    startToCloseTimeout: '15m',
    heartbeatTimeout: input.workerLossTimeoutMs,
    // As for the PostgreSQL merge: transient failures (a store outage) retry without a limit.
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
    summary: 'merge change files into Iceberg',
  });
  const { replayQuarantined } = proxyActivities<CdcOperatorActivities>({
    startToCloseTimeout: '2h',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
    summary: 'replay quarantined change-file events',
  });
  let phase: CdcMergePhase = 'starting';
  let flushRequested = false;
  const actions = new OperatorActionQueue();

  setHandler(cdcFileMergeProgressQuery, (): CdcFileMergeProgress => ({
    ...state,
    phase,
    done: state.rowsMerged,
    total: 0,
    unit: 'rows',
    detail: `${state.files} files, ${state.batches} batches, ${state.rowsMerged} rows merged`,
    sourceName: input.sourceName,
    prefix: input.files.prefix,
    tables: [icebergTable],
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
  setHandler(
    cdcMergeReplayUpdate,
    (request) =>
      actions.enqueue('replay quarantined changes', () =>
        replayQuarantined({
          sourceName: input.sourceName,
          filesPrefix: input.files.prefix,
          tables: [{ source: input.table, icebergTable }],
          ...(request.errorKind ? { errorKind: request.errorKind } : {}),
          ...(request.ids ? { ids: request.ids } : {}),
        }),
      ),
    {
      validator: (request) => {
        ReplayQuarantineRequest.parse(request);
        if (request.table !== undefined && request.table !== input.table && request.table !== icebergTable) {
          throw new Error(
            `${workflowInfo().workflowId} merges only ${input.table} (→ ${icebergTable}), not ${request.table}`,
          );
        }
      },
    },
  );
  let shownPhase: 'running' | 'paused' = state.paused ? 'paused' : 'running';
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'cdc-file-merge' },
    { key: SearchAttributes.dataset, value: icebergTable },
    { key: SearchAttributes.phase, value: shownPhase },
  ]);
  const showPhase = (next: 'running' | 'paused') => {
    if (next === shownPhase) return;
    shownPhase = next;
    upsertSearchAttributes([{ key: SearchAttributes.phase, value: next }]);
  };

  if (!state.onboarded) {
    try {
      await onboardFileTable({
        sourceName: input.sourceName,
        prefix: input.files.prefix,
        table: input.table,
        icebergTable,
        key: input.key,
        ...(input.columns ? { columns: input.columns } : {}),
        buckets: input.buckets,
      });
    } catch (err) {
      throw permanentFailure(err, input.sourceName, 'cdc-file-merge');
    }
    state.onboarded = true;
  }

  let idleWaitMs = input.pollIntervalMs;
  for (let iteration = 1; ; iteration++) {
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cdc-file-merge was cancelled');
    await actions.runPending();
    while (state.paused && !flushRequested) {
      phase = 'paused';
      showPhase('paused');
      await condition(() => !state.paused || flushRequested || actions.hasWork());
      await actions.runPending();
    }
    showPhase(state.paused ? 'paused' : 'running');
    flushRequested = false;

    phase = 'merging';
    let result: MergeFileBatchResult;
    try {
      result = await CancellationScope.nonCancellable(() =>
        mergeFileBatch({
          sourceName: input.sourceName,
          prefix: input.files.prefix,
          table: input.table,
          icebergTable,
          maxFiles: input.maxFilesPerBatch,
          maxChanges: input.maxChangesPerBatch,
        }),
      );
    } catch (err) {
      throw permanentFailure(err, input.sourceName, 'cdc-file-merge');
    }
    state.batches += 1;
    state.files += result.files;
    state.changes += result.changes;
    state.rowsMerged += result.merged;
    state.quarantined += result.quarantined;
    state.watermark = result.watermark;
    if (result.committedAt) state.lastCommitTime = result.committedAt;
    if (result.quarantined > 0) {
      log.warn('cdc-file-merge quarantined changes', { count: result.quarantined, file: result.quarantineFile });
    }

    if (iteration >= input.iterationsPerRun || workflowInfo().continueAsNewSuggested) {
      // Updates wait for the loop to run their action, so keep running actions until every handler is done.
      await actions.runPending();
      while (!allHandlersFinished()) {
        await condition(() => allHandlersFinished() || actions.hasWork());
        await actions.runPending();
      }
      await continueAsNew<typeof cdcFileMerge>({ ...rawInput, state });
    }
    if (result.cutShort) continue;
    let waitMs: number;
    if (result.files > 0) {
      idleWaitMs = input.pollIntervalMs;
      waitMs = input.pollIntervalMs;
      phase = 'waiting';
    } else {
      waitMs = idleWaitMs;
      idleWaitMs = Math.min(idleWaitMs * 2, input.idleIntervalMs);
      phase = 'idle';
    }
    await condition(() => flushRequested || state.paused || actions.hasWork(), waitMs);
  }
}
