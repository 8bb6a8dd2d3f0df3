/**
 * A token bucket: it holds at most `capacity` tokens and gains `ratePerSec` a second. Taking `n` tokens succeeds
 * when the bucket holds them. Time comes from the caller, so the bucket is exact under test.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    readonly ratePerSec: number,
    readonly capacity: number,
    nowMs: number,
    /** Tokens at the start. @default capacity */
    initialTokens?: number,
  ) {
    if (!(ratePerSec >= 0) || !(capacity >= 0)) throw new RangeError('rate and capacity must be ≥ 0');
    this.tokens = Math.min(capacity, initialTokens ?? capacity);
    this.lastMs = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.capacity, this.tokens + ((nowMs - this.lastMs) / 1000) * this.ratePerSec);
      this.lastMs = nowMs;
    }
  }

  /** Tokens available at `nowMs`. */
  available(nowMs: number): number {
    this.refill(nowMs);
    return this.tokens;
  }

  /** Takes `n` tokens if there are that many; otherwise takes nothing. */
  tryTake(n: number, nowMs: number): boolean {
    this.refill(nowMs);
    if (n <= this.tokens) {
      this.tokens -= n;
      return true;
    }
    return false;
  }

  /** Milliseconds until `n` tokens will be there (Infinity when they never will). */
  waitMs(n: number, nowMs: number): number {
    this.refill(nowMs);
    if (n <= this.tokens) return 0;
    if (n > this.capacity || this.ratePerSec === 0) return Infinity;
    return Math.ceil(((n - this.tokens) / this.ratePerSec) * 1000);
  }
}
