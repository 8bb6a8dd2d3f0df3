import { Context } from '@temporalio/activity';

/**
 * Heartbeats `details()` now and every `everyMs` (or a third of the activity's heartbeat timeout, if shorter) until
 * the returned function is called: for activities whose work (a compaction, a copy) has no natural progress points,
 * so that a dead worker is noticed after the heartbeat timeout rather than the start-to-close timeout.
 */
export function keepHeartbeating(details: () => unknown, everyMs = 5000): () => void {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timeoutMs = ctx.info.heartbeatTimeoutMs;
  const interval = timeoutMs ? Math.min(everyMs, Math.max(200, timeoutMs / 3)) : everyMs;
  const timer = setInterval(() => ctx.heartbeat(details()), interval);
  return () => clearInterval(timer);
}
