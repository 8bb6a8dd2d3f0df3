// The only workflowsPath: every exported function here is a workflow type.
export { activityFanOut } from './activity-fan-out.js';
export { poolCheck } from './pool-check.js';
export { cdcOnboard } from './cdc-onboard.js';
export { cdcMerge } from './cdc-merge.js';
export { cdcTableMaintenance } from './cdc-table-maintenance.js';
export { quotaRightsize } from './quota-rightsize.js';
export { cdcFileMerge } from './cdc-file-merge.js';
export { sparkJob } from './spark-job.js';
export { embeddingBackfill } from './embedding-backfill.js';
export { collectionsBuild } from './collections-build.js';
