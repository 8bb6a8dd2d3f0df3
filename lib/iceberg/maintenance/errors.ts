import type { ErrorType } from '../../../schemas/error-types.js';

/**
 * Every kind of error the table-maintenance operations throw themselves. Activities switch over this list
 * exhaustively to pick the `ApplicationFailure` type, as they do for `ICEBERG_ERROR_KINDS` and
 * `CATALOG_ERROR_KINDS`; the maintenance functions also let those through (a lost compare-and-swap race after every
 * retry is the catalog's `CommitConflictError`).
 */
export const MAINTENANCE_ERROR_KINDS = {
  /**
   * A concurrent commit changed files this operation replaces (removed a file it rewrites, or added a position
   * delete for one). Retryable: plan the operation again on the fresh table.
   */
  'maintenance-conflict': 'CommitConflict',
  /** An option is out of range (a negative size, a retain count below 1…). */
  'invalid-maintenance-options': 'InvalidInput',
  /** An orphan-file age threshold so short that files of in-flight writes could be deleted. */
  'unsafe-orphan-threshold': 'InvalidInput',
  /** The table's `gc.enabled` is false, so deleting its files is forbidden. */
  'gc-disabled': 'PolicyDenied',
} as const satisfies Record<string, ErrorType>;

/** One of {@link MAINTENANCE_ERROR_KINDS}. */
export type MaintenanceErrorKind = keyof typeof MAINTENANCE_ERROR_KINDS;

/** Base class of every error the maintenance operations throw on purpose. */
export abstract class MaintenanceError extends Error {
  /** Which kind of problem this is; stable, for `switch` statements. */
  abstract readonly kind: MaintenanceErrorKind;

  /** The shared failure type an activity should report for this error. */
  get failureType(): ErrorType {
    return MAINTENANCE_ERROR_KINDS[this.kind];
  }
}

/** Whether `err` is one of the maintenance operations' typed errors. */
export function isMaintenanceError(err: unknown): err is MaintenanceError {
  return err instanceof MaintenanceError;
}

/**
 * A maintenance commit re-validated its plan against the table's fresh metadata and found that a concurrent commit
 * invalidated it. Nothing was committed, and the files the operation wrote were deleted again. Retryable as a
 * whole: run the operation again, which plans on the fresh table.
 */
export class MaintenanceConflictError extends MaintenanceError {
  readonly kind = 'maintenance-conflict';
  override readonly name = 'MaintenanceConflictError';

  constructor(
    /** The table, e.g. `db.orders`. */
    readonly table: string,
    /** The operation, e.g. `compaction`. */
    readonly operation: string,
    /** What changed underneath the operation. */
    readonly problem: string,
  ) {
    super(
      `${operation} of table "${table}" conflicts with a concurrent commit: ${problem}; nothing was committed — ` +
        `run the ${operation} again on the fresh table`,
    );
  }
}

/** An option of a maintenance operation is out of range. */
export class InvalidMaintenanceOptionsError extends MaintenanceError {
  readonly kind = 'invalid-maintenance-options';
  override readonly name = 'InvalidMaintenanceOptionsError';

  constructor(
    /** The option, e.g. `retainLast`. */
    readonly option: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
  ) {
    super(`invalid maintenance option ${option}: ${problem}`);
  }
}

/**
 * `removeOrphanFiles` was asked to delete unreferenced files younger than the safety floor. A writer that is
 * still running has written data files and manifests that no metadata references yet; with a short threshold they
 * look like orphans and would be deleted, and its commit would then reference missing files.
 */
export class UnsafeOrphanThresholdError extends MaintenanceError {
  readonly kind = 'unsafe-orphan-threshold';
  override readonly name = 'UnsafeOrphanThresholdError';

  constructor(
    readonly table: string,
    /** The requested threshold. */
    readonly olderThanMs: number,
    /** The smallest threshold accepted without `force`. */
    readonly minimumMs: number,
  ) {
    super(
      `refusing to remove orphan files of table "${table}" younger than ${olderThanMs} ms: files of writes still ` +
        'in flight are not referenced by any metadata until their commit lands, so they would be deleted and ' +
        `that commit would point at missing files; use a threshold of at least ${minimumMs} ms (the default is ` +
        '3 days), or pass force: true only when no writer can be running',
    );
  }
}

/**
 * The table's `gc.enabled` property is `false` (e.g. its files are shared with another table after a snapshot or
 * migrate), so an operation that deletes files refuses to run, as Java's does.
 */
export class GarbageCollectionDisabledError extends MaintenanceError {
  readonly kind = 'gc-disabled';
  override readonly name = 'GarbageCollectionDisabledError';

  constructor(
    readonly table: string,
    /** The operation, e.g. `snapshot expiry`. */
    readonly operation: string,
  ) {
    super(
      `cannot run ${operation} on table "${table}": its property gc.enabled is false, which says its files may be ` +
        'referenced by other tables and must not be deleted; set gc.enabled=true if the table owns its files',
    );
  }
}
