import { z } from 'zod';

/** What every pipeline's `progress` query returns; the CLI renders it as a progress bar. */
export const Progress = z.object({
  /** A short phase name, e.g. `reserving-host`, `running`, `done`. */
  phase: z.string(),
  /** Units finished so far. */
  done: z.number().int().nonnegative(),
  /** Units in all; 0 while unknown. */
  total: z.number().int().nonnegative(),
  /** The unit, e.g. `activities`, `rows`, `files`. */
  unit: z.string(),
  /** A one-line human description of the current step. */
  detail: z.string().optional(),
});
export type Progress = z.infer<typeof Progress>;

/** The query name shared by every pipeline workflow. */
export const PROGRESS_QUERY = 'progress';
