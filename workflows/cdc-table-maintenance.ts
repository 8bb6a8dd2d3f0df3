import { log, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { CdcOperatorActivities } from '../activities/cdc-operator-activities.js';
import {
  CdcTableMaintenanceInput,
  type CdcTableMaintenanceResult,
  type CompactCdcTableResult,
  type TableHealth,
} from '../schemas/cdc-operations.js';
import { SearchAttributes } from '../schemas/search-attributes.js';
import { parseWorkflowInput } from './validate-input.js';

const { inspectTableHealth, compactCdcTable, expireCdcSnapshots, removeCdcOrphans } =
  proxyActivities<CdcOperatorActivities>({
    startToCloseTimeout: '2h',
    // The activities heartbeat on a timer while they work: a dead worker is noticed within a minute.
    heartbeatTimeout: '1m',
    // The compaction runs beside the merge and carries the merge's concurrent deletes over to its new files, so
    // the merge is never paused for it. MaintenanceConflict (retryable: only a rewritten file with equality deletes
    // applied that a concurrent commit deleted from) simply runs again.
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 10 },
    summary: 'maintain a CDC table',
  });

/**
 * Keeps one CDC table healthy under continuous merges (usually started by a Schedule, see docs/cdc-pipeline.md):
 * compacts when position-deleted rows reach `deletedRowsRatio` of the data rows or small files reach `smallFiles`,
 * then expires old snapshots and removes orphan files, and returns what it did with the table's health before and
 * after.
 */
export async function cdcTableMaintenance(rawInput: CdcTableMaintenanceInput): Promise<CdcTableMaintenanceResult> {
  const input = parseWorkflowInput(CdcTableMaintenanceInput, rawInput, 'cdcTableMaintenance input');
  upsertSearchAttributes([
    { key: SearchAttributes.pipeline, value: 'cdc-table-maintenance' },
    { key: SearchAttributes.dataset, value: input.icebergTable },
  ]);
  const inspect = () => inspectTableHealth({ icebergTable: input.icebergTable, smallFileBytes: input.smallFileBytes });
  const before = await inspect();
  const reason = compactionReason(before, input.deletedRowsRatio, input.smallFiles);
  let compaction: CompactCdcTableResult | null = null;
  if (reason.compact) {
    compaction = await compactCdcTable({
      icebergTable: input.icebergTable,
      ...(input.targetFileSizeBytes ? { targetFileSizeBytes: input.targetFileSizeBytes } : {}),
      minInputFiles: 2,
    });
  }
  const expiry = await expireCdcSnapshots({
    icebergTable: input.icebergTable,
    olderThanMs: input.expireOlderThanMs,
    retainLast: input.retainLast,
  });
  const orphans = await removeCdcOrphans({
    icebergTable: input.icebergTable,
    olderThanMs: input.orphanOlderThanMs,
    force: input.forceOrphanAge,
  });
  const after = await inspect();
  const result = {
    icebergTable: input.icebergTable,
    before,
    after,
    compactionReason: reason.why,
    compaction,
    expiry,
    orphans,
  };
  log.info('cdc-table-maintenance done', {
    table: input.icebergTable,
    compacted: compaction !== null,
    reason: reason.why,
    expiredSnapshots: expiry.expiredSnapshots,
    orphanFilesRemoved: orphans.orphanFilesRemoved,
  });
  return result;
}

/** Whether the table needs compacting, and why, in words. */
export function compactionReason(
  health: TableHealth,
  deletedRowsRatio: number,
  smallFiles: number,
): { compact: boolean; why: string } {
  const ratio = `${(health.deletedRatio * 100).toFixed(1)}% of rows deleted (threshold ${(deletedRowsRatio * 100).toFixed(1)}%)`;
  const small = `${health.smallDataFiles} small data files (threshold ${smallFiles})`;
  if (health.deletedRecords > 0 && health.deletedRatio >= deletedRowsRatio) return { compact: true, why: ratio };
  if (health.smallDataFiles >= smallFiles) return { compact: true, why: small };
  return { compact: false, why: `not needed: ${ratio}, ${small}` };
}
