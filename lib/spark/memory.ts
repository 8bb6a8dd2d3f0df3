import { MEMORY_PATTERN, memoryMib } from '../../schemas/spark.js';

/** A memory string that is not a Spark size; the message names the field and the value. */
export class MemorySizeError extends Error {
  override readonly name = 'MemorySizeError';
  readonly kind = 'invalid-memory-size';
  readonly failureType = 'InvalidInput' as const;
  constructor(
    readonly field: string,
    readonly value: string,
  ) {
    super(`${field}: "${value}" is not a memory size; write digits then k, m, g or t, e.g. "512m" or "4g"`);
  }
}

/**
 * MiB of a Spark memory string (`512m`, `4g`, `1t`, `2048k`), strictly: `12 GB`, `4gb`, `1.5g` and bare numbers
 * are refused with a {@link MemorySizeError} naming `field`.
 */
export function parseMemoryMib(value: string, field = 'memory'): number {
  if (!MEMORY_PATTERN.test(value)) throw new MemorySizeError(field, value);
  return memoryMib(value);
}

/** The Spark spelling of `mib` MiB: `4g` when it is whole GiB, else `1536m`. Rounds up to whole MiB. */
export function formatMemoryMib(mib: number): string {
  const whole = Math.max(1, Math.ceil(mib));
  return whole % 1024 === 0 ? `${whole / 1024}g` : `${whole}m`;
}

/** Spark's default container overhead for a JVM of `heapMib`: max(384 MiB, 10%). */
export function defaultOverheadMib(heapMib: number): number {
  return Math.max(384, Math.ceil(heapMib * 0.1));
}

/** Rounds `mib` up to a multiple of `step` MiB (the recommender's granularity). */
export function roundUpMib(mib: number, step = 64): number {
  return Math.ceil(mib / step) * step;
}
