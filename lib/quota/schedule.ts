import type { Quota, QuotaSchedule, QuotaSpec, ScheduledField } from '../../schemas/quota.js';

/**
 * Time-of-day quota schedules as the store keeps them ({@link QuotaSchedule}): which value is in force when, and
 * how a schedule reads in a plan. The rightsizer's schedule maths lives in lib/quota/rightsizing/schedule.ts.
 */

const HOUR_MS = 3_600_000;

/** The UTC hour (0..23) of an epoch time. */
export function utcHourOf(epochMs: number): number {
  return Math.floor((((epochMs % 86_400_000) + 86_400_000) % 86_400_000) / HOUR_MS);
}

/** A field's schedule as 24 values, one per UTC hour. */
export function valuesByUtcHour(slotValues: readonly number[], slotHours: number): number[] {
  return Array.from({ length: 24 }, (_, h) => slotValues[Math.floor(h / slotHours)]!);
}

/**
 * The spec with each scheduled field at its value for the slot holding `atMs`, never above the spec's own value
 * (the spec itself without a schedule).
 */
export function specInForce(quota: Pick<Quota, 'spec' | 'schedule'>, atMs: number): QuotaSpec {
  const schedule = quota.schedule;
  if (!schedule) return quota.spec;
  const slot = Math.floor(utcHourOf(atMs) / schedule.slotHours);
  let spec: QuotaSpec = quota.spec;
  for (const [field, values] of Object.entries(schedule.values) as Array<[ScheduledField, number[] | undefined]>) {
    if (values === undefined || !(field in spec)) continue;
    // The spec's value is the ceiling (a hand edit that lowers it caps every slot).
    const ceiling = (quota.spec as Record<string, unknown>)[field];
    const v = typeof ceiling === 'number' ? Math.min(values[slot]!, ceiling) : values[slot]!;
    spec = { ...spec, [field]: v } as QuotaSpec;
  }
  return spec;
}

/** The next slot boundary strictly after `atMs` (epoch ms). */
export function nextSlotBoundaryMs(atMs: number, slotHours: number): number {
  const slotMs = slotHours * HOUR_MS;
  return Math.floor(atMs / slotMs) * slotMs + slotMs;
}

function hh(h: number): string {
  return String(h).padStart(2, '0');
}

/**
 * A schedule readably, consecutive equal slots merged: `00–08h 4096, 08–20h 8192, 20–24h 4096`. `fmt` formats a
 * value.
 */
export function formatSlots(values: readonly number[], slotHours: number, fmt: (v: number) => string = String): string {
  const parts: string[] = [];
  let start = 0;
  for (let k = 1; k <= values.length; k++) {
    if (k === values.length || values[k] !== values[start]) {
      parts.push(`${hh(start * slotHours)}–${hh(k * slotHours)}h ${fmt(values[start]!)}`);
      start = k;
    }
  }
  return parts.join(', ');
}

/** Checks a schedule against its spec: every slot value of a field the kind has, > 0 and ≥ its guarantee. */
export function scheduleProblems(spec: QuotaSpec, schedule: QuotaSchedule): string[] {
  const problems: string[] = [];
  for (const [field, values] of Object.entries(schedule.values) as Array<[ScheduledField, number[] | undefined]>) {
    if (values === undefined) continue;
    if (!(field in spec)) {
      problems.push(`schedule.${field}: a ${spec.kind} quota has no field ${field}`);
      continue;
    }
    const guaranteed =
      spec.kind === 'capacity' && field === 'maxMemoryMb'
        ? spec.guaranteedMemoryMb
        : spec.kind === 'capacity' && field === 'maxVcores'
          ? spec.guaranteedVcores
          : 0;
    values.forEach((v, k) => {
      const at = `schedule.${field}[${k}] (${hh(k * schedule.slotHours)}–${hh((k + 1) * schedule.slotHours)}h)`;
      if (!(v > 0)) problems.push(`${at}: ${v} must be > 0 (a quota never goes to 0)`);
      else if (v < guaranteed) problems.push(`${at}: ${v} is below the guarantee ${guaranteed}`);
    });
  }
  return problems;
}
