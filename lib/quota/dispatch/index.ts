/** Dispatch targets of the quota control plane: Yunikorn queues.yaml, the rate-limit rules file, a webhook. */
export * from './atomic-file.js';
export * from './yunikorn.js';
export * from './rate-limit-rules.js';
export * from './webhook.js';
