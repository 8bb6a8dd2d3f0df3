import type { ErrorType } from '../../schemas/error-types.js';

/**
 * Every kind of error the quota engine throws on purpose, with the shared failure type an activity reports for it
 * (see activities/failures.ts `toActivityFailure`).
 */
export const QUOTA_ERROR_KINDS = {
  /** The quota changed since the caller read it: re-read and decide again. */
  'version-conflict': 'CommitConflict',
  /** The actor may not change this quota (not an owner, not an approver of its budget group). */
  'access-denied': 'PolicyDenied',
  /** The database login may not act for the named user (no impersonator grant). */
  'impersonation-denied': 'PolicyDenied',
  /** An approval update named a decision that is not this run's, or none at all. */
  'decision-invalid': 'PolicyDenied',
  /** A validator refused the write (structure, max ≥ guaranteed, cluster capacity…). */
  'validation-failed': 'InvalidInput',
  /** No quota with that id. */
  'quota-not-found': 'NotFound',
  /** A quota with that id exists already. */
  'quota-exists': 'InvalidInput',
  /** A usage source did not answer or answered garbage. */
  'usage-unavailable': 'ServiceUnavailable',
  /** A dispatch target refused or did not answer. */
  'dispatch-failed': 'ServiceUnavailable',
  /** A dispatch target refused permanently (4xx). */
  'dispatch-rejected': 'InvalidConfig',
  /** A rate-limit rules file cannot be parsed. */
  'invalid-rules': 'Corrupt',
} as const satisfies Record<string, ErrorType>;

export type QuotaErrorKind = keyof typeof QUOTA_ERROR_KINDS;

/** Base class of the quota engine's typed errors. */
export abstract class QuotaError extends Error {
  abstract readonly kind: QuotaErrorKind;
  get failureType(): ErrorType {
    return QUOTA_ERROR_KINDS[this.kind];
  }
}

/** Optimistic concurrency: the stored version is not the one the write was based on. */
export class QuotaVersionConflict extends QuotaError {
  readonly kind = 'version-conflict';
  override readonly name = 'QuotaVersionConflict';
  constructor(
    readonly quotaId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(
      `quota "${quotaId}" is at version ${actualVersion}, not ${expectedVersion}: someone changed it meanwhile; ` +
        `read it again (sluice quota get ${quotaId}) and retry with --version ${actualVersion}`,
    );
  }
}

/** The actor is neither an owner nor an approver. */
export class QuotaAccessDenied extends QuotaError {
  readonly kind = 'access-denied';
  override readonly name = 'QuotaAccessDenied';
  constructor(
    readonly quotaId: string,
    readonly actor: string,
    readonly allowed: { owners: readonly string[]; approvers: readonly string[] },
  ) {
    super(
      `"${actor}" may not change quota "${quotaId}": only its owners (${allowed.owners.join(', ') || 'none'}) or ` +
        `the approvers of its budget group (${allowed.approvers.join(', ') || 'none'}) may`,
    );
  }
}

/**
 * The authenticated PostgreSQL login asked to act for someone else without being allowed to: only the login itself,
 * a member of the impersonator role (`sluice_quota_impersonator`), or a superuser may name another user.
 */
export class QuotaImpersonationDenied extends QuotaError {
  readonly kind = 'impersonation-denied';
  override readonly name = 'QuotaImpersonationDenied';
  constructor(
    readonly login: string,
    readonly requested: string,
    readonly impersonatorRole: string,
  ) {
    super(
      `database login "${login}" may not act as "${requested}": leave out --as to act as "${login}", or have an ` +
        `operator GRANT ${impersonatorRole} TO "${login}" (services that act for users, e.g. the quota workers)`,
    );
  }
}

/** An approval names a decision that does not exist or was recorded for another run. */
export class QuotaDecisionInvalid extends QuotaError {
  readonly kind = 'decision-invalid';
  override readonly name = 'QuotaDecisionInvalid';
}

/** One problem a validator found. */
export interface QuotaProblem {
  quotaId: string;
  /** The validator's name, e.g. `max-gte-guaranteed`. */
  rule: string;
  message: string;
}

/** Validators refused a write; every problem is listed. */
export class QuotaValidationError extends QuotaError {
  readonly kind = 'validation-failed';
  override readonly name = 'QuotaValidationError';
  constructor(readonly problems: readonly QuotaProblem[]) {
    super(
      `quota change refused by validation:\n${problems.map((p) => `  - ${p.quotaId} [${p.rule}]: ${p.message}`).join('\n')}`,
    );
  }
}

export class QuotaNotFound extends QuotaError {
  readonly kind = 'quota-not-found';
  override readonly name = 'QuotaNotFound';
  constructor(readonly quotaId: string) {
    super(`no quota "${quotaId}"; list them with: sluice quota ls`);
  }
}

export class QuotaExists extends QuotaError {
  readonly kind = 'quota-exists';
  override readonly name = 'QuotaExists';
  constructor(readonly quotaId: string) {
    super(`quota "${quotaId}" exists already; change it with --version <current version>`);
  }
}

export class UsageUnavailable extends QuotaError {
  readonly kind = 'usage-unavailable';
  override readonly name = 'UsageUnavailable';
}

export class DispatchFailed extends QuotaError {
  readonly kind = 'dispatch-failed';
  override readonly name = 'DispatchFailed';
}

export class DispatchRejected extends QuotaError {
  readonly kind = 'dispatch-rejected';
  override readonly name = 'DispatchRejected';
}

export class InvalidRateLimitRules extends QuotaError {
  readonly kind = 'invalid-rules';
  override readonly name = 'InvalidRateLimitRules';
}

/** Whether `err` is one of the quota engine's typed errors. */
export function isQuotaError(err: unknown): err is QuotaError {
  return err instanceof QuotaError;
}
