import type { ErrorType } from '../../schemas/error-types.js';

/**
 * Every kind of error the CDC engine throws, with the shared failure type an activity reports for it. Activities
 * switch over this list exhaustively, so a new kind cannot be forgotten.
 */
export const CDC_ERROR_KINDS = {
  /** An LSN string is not `X/Y` hex. */
  'invalid-lsn': 'InvalidInput',
  /** A CDC option (slot name, batch size, key column…) is invalid. */
  'invalid-option': 'InvalidInput',
  /** The source table has no primary key and the user named none. */
  'no-primary-key': 'InvalidInput',
  /** The source table's replica identity cannot identify rows for updates and deletes. */
  'replica-identity': 'InvalidInput',
  /** A source column has a type this engine cannot map to Iceberg. */
  'unsupported-type': 'Unsupported',
  /** The relation is not a table that logical replication can publish (a view, a foreign table…). */
  'unsupported-relation': 'Unsupported',
  /** The source table does not exist. */
  'table-not-found': 'NotFound',
  /** The replication slot does not exist. */
  'slot-not-found': 'NotFound',
  /** The publication does not exist. */
  'publication-not-found': 'NotFound',
  /** A slot of that name exists but uses another output plugin or database. */
  'slot-mismatch': 'InvalidInput',
  /** The slot is in use by another consumer (`is active for PID`); retry later. */
  'slot-busy': 'ServiceUnavailable',
  /** The slot lost WAL it needs (`wal_status = lost`); the table must be onboarded again. */
  'slot-invalidated': 'Corrupt',
  /** The source database did not answer or refused the connection. */
  'source-unavailable': 'ServiceUnavailable',
  /**
   * A source connection reference (`env:NAME`, `file:/path`) does not resolve on this worker: the variable is unset
   * or the file unreadable. Retryable: another worker, or this one once configured, can resolve it.
   */
  'source-secret': 'ServiceUnavailable',
  /** The source server is not set up for logical replication (`wal_level`, privileges, slot limits). */
  'source-config': 'InvalidConfig',
  /** A source value cannot be converted to its Iceberg type (type mismatch, out of range, infinity…). */
  'value-conversion': 'InvalidInput',
  /** A change carries no value (or null) for a key column. */
  'null-key': 'InvalidInput',
  /** A change belongs to a table that the batch does not target. */
  'unknown-table': 'InvalidInput',
  /** A change has a column that the Iceberg table does not have yet: evolve the schema first. */
  'unknown-column': 'InvalidInput',
  /** An unchanged TOASTed value could not be filled from the table's current row. */
  'unchanged-value-unavailable': 'InvalidInput',
  /** A change event or a change file cannot be parsed. */
  'invalid-event': 'Corrupt',
  /** A pgoutput message cannot be decoded. */
  'corrupt-change': 'Corrupt',
  /** The source table was truncated, which per-key upserts cannot express. */
  truncate: 'Unsupported',
  /** The source table changed in a way the Iceberg table cannot follow (drop, rename, narrowing, key change). */
  'incompatible-schema-change': 'Unsupported',
} as const satisfies Record<string, ErrorType>;

/** One of {@link CDC_ERROR_KINDS}. */
export type CdcErrorKind = keyof typeof CDC_ERROR_KINDS;

/** Base class of every error the CDC engine throws on purpose. */
export abstract class CdcError extends Error {
  /** Which kind of problem this is; stable, for `switch` statements. */
  abstract readonly kind: CdcErrorKind;

  /** The shared failure type an activity should report for this error. */
  get failureType(): ErrorType {
    return CDC_ERROR_KINDS[this.kind];
  }
}

/** Whether `err` is one of the CDC engine's typed errors. */
export function isCdcError(err: unknown): err is CdcError {
  return err instanceof CdcError;
}

/** An LSN string is malformed. */
export class InvalidLsnError extends CdcError {
  readonly kind = 'invalid-lsn';
  override readonly name = 'InvalidLsnError';
  constructor(readonly text: string) {
    super(`invalid LSN ${JSON.stringify(text)}: expected two hex numbers separated by "/", like 0/16B3748`);
  }
}

/** An option passed to the engine is invalid. */
export class InvalidCdcOptionError extends CdcError {
  readonly kind = 'invalid-option';
  override readonly name = 'InvalidCdcOptionError';
  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`invalid CDC option ${option}: ${problem}`);
  }
}

/** A problem with a source table's definition: no key, bad replica identity, unsupported type or relation. */
export class SourceTableError extends CdcError {
  override readonly name = 'SourceTableError';
  constructor(
    readonly kind:
      'no-primary-key' | 'replica-identity' | 'unsupported-type' | 'unsupported-relation' | 'table-not-found',
    /** `schema.table` */
    readonly table: string,
    message: string,
    /** The column at fault, when there is one. */
    readonly column?: string,
  ) {
    super(message);
  }
}

/** A problem with a replication slot or publication. */
export class ReplicationError extends CdcError {
  override readonly name = 'ReplicationError';
  constructor(
    readonly kind:
      | 'slot-not-found'
      | 'publication-not-found'
      | 'slot-mismatch'
      | 'slot-busy'
      | 'slot-invalidated'
      | 'source-unavailable'
      | 'source-config'
      | 'corrupt-change',
    /** The slot or publication name. */
    readonly target: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A source connection reference that does not resolve on this worker (lib/cdc/source-secret.ts). */
export class SourceSecretError extends CdcError {
  override readonly name = 'SourceSecretError';
  readonly kind = 'source-secret';
  constructor(
    /** The reference as given (`env:NAME`, `file:/path`); never the secret. */
    readonly reference: string,
    message: string,
  ) {
    super(message);
  }
}

/** Why a single change could not be applied. These are quarantined, not thrown, by the batch functions. */
export type ChangeErrorKind =
  'value-conversion' | 'null-key' | 'unknown-table' | 'unchanged-value-unavailable' | 'invalid-event';

/** One change (or one value of it) that cannot be applied. Batch functions turn these into quarantine records. */
export class ChangeError extends CdcError {
  override readonly name: string = 'ChangeError';
  constructor(
    readonly kind: ChangeErrorKind,
    message: string,
    /** The column at fault, when there is one. */
    readonly column?: string,
  ) {
    super(message);
  }
}

/** A source value cannot be converted to its Iceberg type. */
export class ValueConversionError extends ChangeError {
  override readonly name = 'ValueConversionError';
  constructor(
    /** The Iceberg type, as a string (`decimal(10, 2)`). */
    readonly targetType: string,
    /** The source value, shortened for the message. */
    readonly value: string,
    readonly problem: string,
    column?: string,
  ) {
    super(
      'value-conversion',
      `${column === undefined ? '' : `column "${column}": `}cannot convert ${value} to ${targetType}: ${problem}`,
      column,
    );
  }

  /** The same error, naming the column it happened in. */
  inColumn(column: string): ValueConversionError {
    return new ValueConversionError(this.targetType, this.value, this.problem, column);
  }
}

/** A change has a column the Iceberg table lacks: the schema must be evolved before the batch can apply. */
export class UnknownColumnError extends CdcError {
  readonly kind = 'unknown-column';
  override readonly name = 'UnknownColumnError';
  constructor(
    readonly table: string,
    readonly columns: readonly string[],
    readonly lsn: string,
  ) {
    super(
      `changes for table "${table}" at LSN ${lsn} have column(s) ${columns.map((c) => `"${c}"`).join(', ')} ` +
        'that the Iceberg table does not have; add them to the Iceberg schema (cdc-merge evolves compatible ' +
        'source changes) and run the batch again',
    );
  }
}

/** The source table was truncated; per-key upserts cannot express that. */
export class TruncateError extends CdcError {
  readonly kind = 'truncate';
  override readonly name = 'TruncateError';
  constructor(
    readonly table: string,
    readonly lsn: string,
  ) {
    super(
      `table "${table}" was truncated at LSN ${lsn}; a TRUNCATE cannot be applied as row changes. Onboard the ` +
        'table again (new snapshot), or merge with onTruncate: "apply" to delete every row of the Iceberg table',
    );
  }
}

/** The source table changed in a way the Iceberg table cannot follow. */
export class IncompatibleSchemaChangeError extends CdcError {
  readonly kind = 'incompatible-schema-change';
  override readonly name = 'IncompatibleSchemaChangeError';
  constructor(
    readonly table: string,
    readonly changes: readonly string[],
  ) {
    super(
      `table "${table}" changed incompatibly: ${changes.join('; ')}. Onboard the table again into a new Iceberg ` +
        'table, or revert the source change',
    );
  }
}

/** Shortens a value for an error message. */
export function describeSourceValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  const text =
    typeof value === 'string' ? value : JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v));
  if (text === undefined) return String(value);
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return typeof value === 'string' ? JSON.stringify(shown) : shown;
}
