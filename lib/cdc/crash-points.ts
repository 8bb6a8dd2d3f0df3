import { InvalidCdcOptionError } from './errors.js';

/**
 * TEST ONLY: crash points for the exactly-once kill loop (`test/integration/cdc-kill-loop.test.ts`). A worker
 * started with `SLUICE_TEST_CRASH_AT=<point>[:<probability>][,…]` kills itself with SIGKILL, the same as
 * `kill -9`, when a merge reaches that point. Never set it in production: it exists to prove that a crash at any
 * of these points applies nothing twice and loses nothing.
 *
 * | point | where |
 * |---|---|
 * | `before-write` | a batch is read and collapsed, nothing written yet |
 * | `after-write` | a data or delete file of the batch is written, the Iceberg commit not done |
 * | `after-commit` | the Iceberg commit (with the watermark) is done, the activity has not returned |
 * | `after-advance` | the slot is advanced (or, for change files, the batch is finished), not reported |
 */
export const CRASH_POINTS = ['before-write', 'after-write', 'after-commit', 'after-advance'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** One armed crash point. */
export interface CrashPlan {
  readonly point: CrashPoint;
  /** Chance of crashing each time the point is reached, 0..1. @default 1 */
  readonly probability: number;
}

/**
 * Parses `SLUICE_TEST_CRASH_AT` (`after-commit:0.3,before-write`); empty or undefined → no crash points.
 *
 * @throws InvalidCdcOptionError naming the bad entry.
 */
export function parseCrashPlans(text: string | undefined): CrashPlan[] {
  if (text === undefined || text.trim() === '') return [];
  return text.split(',').map((entry) => {
    const [point, probabilityText] = entry.trim().split(':');
    if (!(CRASH_POINTS as readonly string[]).includes(point ?? '')) {
      throw new InvalidCdcOptionError(
        'SLUICE_TEST_CRASH_AT',
        `"${entry}" names no crash point; use one of ${CRASH_POINTS.join(', ')}, optionally with :<probability>`,
      );
    }
    const probability = probabilityText === undefined ? 1 : Number(probabilityText);
    if (!(probability >= 0 && probability <= 1)) {
      throw new InvalidCdcOptionError('SLUICE_TEST_CRASH_AT', `probability of "${entry}" must be in 0..1`);
    }
    return { point: point as CrashPoint, probability };
  });
}

/** Decides at each point whether to crash; {@link NO_CRASHES} when none is armed. */
export interface CrashInjector {
  readonly armed: boolean;
  /** Crashes the process here if a plan for `point` says so; `detail` goes into the last log line. */
  reach(point: CrashPoint, detail?: string): void;
}

export const NO_CRASHES: CrashInjector = { armed: false, reach: () => undefined };

/** Options of {@link createCrashInjector}; tests of the injector replace the random source and the crash. */
export interface CrashInjectorOptions {
  random?: () => number;
  /** @default a line on stderr, then SIGKILL to this process */
  crash?: (point: CrashPoint, detail: string) => void;
}

/** An injector for `plans`; {@link NO_CRASHES} when there are none. */
export function createCrashInjector(plans: readonly CrashPlan[], options: CrashInjectorOptions = {}): CrashInjector {
  if (plans.length === 0) return NO_CRASHES;
  const random = options.random ?? Math.random;
  const crash =
    options.crash ??
    ((point: CrashPoint, detail: string) => {
      // Written synchronously so that the line is in the log before the process is gone.
      process.stderr.write(`SLUICE_TEST_CRASH ${point} ${detail}\n`);
      process.kill(process.pid, 'SIGKILL');
    });
  return {
    armed: true,
    reach(point, detail = '') {
      for (const plan of plans) {
        if (plan.point === point && random() < plan.probability) crash(point, detail);
      }
    },
  };
}
