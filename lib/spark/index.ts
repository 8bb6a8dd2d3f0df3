// The Spark engine: submitters, failure classification, the resize ladder, cost, and the sizing history.
export * from './classifier.js';
export * from './event-log.js';
export * from './history.js';
export * from './ladder.js';
export * from './memory.js';
export * from './metrics.js';
export * from './resources.js';
export * from './sizing.js';
export * from './submitter.js';
export * from './template.js';
export * from './spark-home.js';
