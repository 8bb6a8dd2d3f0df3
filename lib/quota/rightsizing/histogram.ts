/**
 * A decaying histogram with exponentially growing buckets, the data structure the Kubernetes VPA recommender keeps
 * per container and resource. Both our recommender and the VPA peer (`vpa.ts`) use it.
 *
 * Bucket `i` covers `[start(i), start(i + 1))` with `start(i) = firstBucketSize * (ratio^i - 1) / (ratio - 1)`, so
 * bucket widths grow by `ratio` (VPA: 5%). A percentile is answered with the END of the bucket that holds it, which
 * over-estimates by at most one bucket width (≤ `ratio - 1` relative), never under-estimates: the safe side for a
 * limit.
 *
 * Decay is expressed through sample weights: a sample at time `t` weighs `2^((t - referenceMs) / halfLife)`.
 * Relative weights are all that matter for a percentile, so the reference time only keeps the numbers in range.
 */
export interface HistogramOptions {
  /** Width of the first bucket, in the resource's unit. Must be > 0. */
  firstBucketSize: number;
  /** Growth of each bucket's width over the previous one. @default 1.05 */
  ratio?: number;
  /** Values above this land in the last bucket. Must be > firstBucketSize. */
  maxValue: number;
}

export class DecayingHistogram {
  private readonly firstBucketSize: number;
  private readonly ratio: number;
  private readonly weights: Float64Array;
  private total = 0;

  constructor(options: HistogramOptions) {
    const ratio = options.ratio ?? 1.05;
    if (!(options.firstBucketSize > 0) || !Number.isFinite(options.firstBucketSize)) {
      throw new RangeError(`histogram firstBucketSize must be a positive number, got ${options.firstBucketSize}`);
    }
    if (!(ratio > 1) || !Number.isFinite(ratio)) {
      throw new RangeError(`histogram ratio must be > 1, got ${ratio}`);
    }
    if (!(options.maxValue > options.firstBucketSize) || !Number.isFinite(options.maxValue)) {
      throw new RangeError(
        `histogram maxValue must be a finite number above firstBucketSize (${options.firstBucketSize}), got ${options.maxValue}`,
      );
    }
    this.firstBucketSize = options.firstBucketSize;
    this.ratio = ratio;
    // Number of buckets so that the last one starts at or above maxValue.
    const n = Math.ceil(Math.log((options.maxValue * (ratio - 1)) / options.firstBucketSize + 1) / Math.log(ratio)) + 1;
    this.weights = new Float64Array(Math.max(2, n));
  }

  /** Number of buckets. */
  get bucketCount(): number {
    return this.weights.length;
  }

  /** Sum of all weights added. */
  get totalWeight(): number {
    return this.total;
  }

  /** Lower bound of bucket `i`. */
  bucketStart(i: number): number {
    return (this.firstBucketSize * (Math.pow(this.ratio, i) - 1)) / (this.ratio - 1);
  }

  /** Index of the bucket that holds `value` (values < 0 go to bucket 0, values past the range to the last one). */
  bucketIndex(value: number): number {
    if (!(value > 0)) return 0;
    const i = Math.floor(Math.log((value * (this.ratio - 1)) / this.firstBucketSize + 1) / Math.log(this.ratio));
    // Guard against floating-point drift at bucket edges.
    let idx = Math.min(Math.max(i, 0), this.weights.length - 1);
    while (idx > 0 && this.bucketStart(idx) > value) idx--;
    while (idx < this.weights.length - 1 && this.bucketStart(idx + 1) <= value) idx++;
    return idx;
  }

  /** Adds `weight` (> 0) at `value`. Non-finite values or weights are ignored. */
  add(value: number, weight: number): void {
    if (!Number.isFinite(value) || !Number.isFinite(weight) || weight <= 0) return;
    const i = this.bucketIndex(value);
    this.weights[i] = this.weights[i]! + weight;
    this.total += weight;
  }

  /** True when nothing has been added. */
  isEmpty(): boolean {
    return this.total <= 0;
  }

  /**
   * The `p`-quantile (0..1): the end of the first bucket at which the cumulative weight reaches `p` of the total.
   * Returns 0 for an empty histogram.
   */
  percentile(p: number): number {
    if (this.total <= 0) return 0;
    const q = Math.min(1, Math.max(0, p));
    const threshold = q * this.total;
    let cumulative = 0;
    let bucket = this.weights.length - 1;
    for (let i = 0; i < this.weights.length; i++) {
      cumulative += this.weights[i]!;
      // Relative epsilon: p = 1 must land on the last non-empty bucket despite rounding in the running sum.
      if (cumulative >= threshold - this.total * 1e-12 && this.weights[i]! > 0) {
        bucket = i;
        break;
      }
    }
    return this.bucketStart(bucket + 1);
  }
}

/** Weight of a sample taken at `sampleMs`, decayed with `halfLifeHours` relative to `referenceMs`. */
export function decayWeight(sampleMs: number, referenceMs: number, halfLifeHours: number): number {
  return Math.pow(2, (sampleMs - referenceMs) / (halfLifeHours * 3_600_000));
}
