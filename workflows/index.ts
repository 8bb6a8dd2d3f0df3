// The only workflowsPath: every exported function here is a workflow type.
export { activityFanOut } from './activity-fan-out.js';
export { poolCheck } from './pool-check.js';
export { cdcOnboard } from './cdc-onboard.js';
export { cdcMerge } from './cdc-merge.js';
