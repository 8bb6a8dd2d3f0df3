/** The in-process token-bucket rate limiter for services, fed by the quota dispatcher's rules file. */
export * from './rules.js';
export * from './token-bucket.js';
export * from './rate-limiter.js';
