import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  log,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { CdcActivities } from '../activities/cdc-activities.js';
import {
  cdcMergeWorkflowId,
  CdcOnboardInput,
  cdcPublicationName,
  cdcSlotName,
  defaultIcebergTable,
  type CdcMergeInput,
  type CdcOnboardResult,
} from '../schemas/cdc.js';
import type { Progress } from '../schemas/progress.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { cdcMerge } from './cdc-merge.js';
import { progressQuery } from './queries.js';
import { parseWorkflowInput } from './validate-input.js';

// The copy is one activity (an exported snapshot cannot outlive its connection), so it gets hours, and a heartbeat
// so that a dead worker is noticed within a minute. A retry starts the copy over.
const { onboardTable } = proxyActivities<CdcActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 5 },
  summary: 'copy the source table into a new Iceberg table',
});

/**
 * Onboards one source table (`cdc-onboard/<source>/<table>`): copies it into a new Iceberg table from exactly the
 * slot's starting point, then starts the source's merge (`cdc/<source>`) as a child workflow with the ABANDON
 * parent-close policy, so that the merge outlives this workflow and the start is recorded in its history (a retry
 * or replay cannot start a second merge). A merge that is already running is left alone.
 */
export async function cdcOnboard(rawInput: CdcOnboardInput): Promise<CdcOnboardResult> {
  const input = parseWorkflowInput(CdcOnboardInput, rawInput, 'cdcOnboard input');
  const icebergTable = input.icebergTable ?? defaultIcebergTable(input.sourceName, input.table);
  const slot = cdcSlotName(input.sourceName);
  const publication = cdcPublicationName(input.sourceName);
  const progress: Progress = {
    phase: 'copying',
    done: 0,
    total: 0,
    unit: 'rows',
    detail: `${input.table} → ${icebergTable}`,
  };
  setHandler(progressQuery, () => progress);
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'cdc-onboard' },
    { key: SearchAttributes.dataset, value: icebergTable },
    { key: SearchAttributes.phase, value: 'copying' },
  ]);

  const onboard = await onboardTable({
    connectionString: input.source.connectionString,
    sourceName: input.sourceName,
    table: input.table,
    ...(input.key ? { key: input.key } : {}),
    buckets: input.buckets,
    icebergTable,
    slot,
    publication,
    wideNumeric: input.wideNumeric,
  });
  progress.done = onboard.rowsCopied;
  progress.total = onboard.rowsCopied;

  let mergeWorkflowId: string | null = null;
  let mergeStarted = false;
  let mergeRunId: string | null = null;
  if (input.startMerge) {
    progress.phase = 'starting-merge';
    mergeWorkflowId = cdcMergeWorkflowId(input.sourceName);
    const mergeInput: CdcMergeInput = {
      source: input.source,
      sourceName: input.sourceName,
      tables: [{ source: input.table, icebergTable }],
      slot,
      publication,
      ...input.merge,
    };
    try {
      const child = await startChild(cdcMerge, {
        workflowId: mergeWorkflowId,
        args: [mergeInput],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: SearchAttributes.pipeline, value: 'cdc-merge' },
          { key: SearchAttributes.dataset, value: icebergTable },
        ],
        staticSummary: `CDC merge of source ${input.sourceName}: ${input.table} → ${icebergTable}`,
      });
      mergeStarted = true;
      mergeRunId = child.firstExecutionRunId;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      log.info('the source merge is already running; left as it is', { mergeWorkflowId });
    }
  }

  progress.phase = 'done';
  upsertSearchAttributes([{ key: SearchAttributes.phase, value: 'done' }]);
  return { onboard, mergeWorkflowId, mergeStarted, mergeRunId };
}
