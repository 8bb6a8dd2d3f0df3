import type { ErrorType } from '../../schemas/error-types.js';

/**
 * Every kind of error the Iceberg engine throws. Activities switch over this list exhaustively to pick the
 * `ApplicationFailure` type, so a new kind cannot be forgotten.
 */
export const ICEBERG_ERROR_KINDS = {
  /** A schema (or a type inside one) is malformed or breaks a spec rule. */
  'invalid-schema': 'InvalidInput',
  /** A requested schema change is not allowed by the spec's evolution rules. */
  'schema-evolution': 'InvalidInput',
  /** A transform string is malformed, or the transform does not apply to the source column's type. */
  'invalid-transform': 'InvalidInput',
  /** A partition spec is malformed or does not fit the schema. */
  'invalid-partition-spec': 'InvalidInput',
  /** A sort order is malformed or does not fit the schema. */
  'invalid-sort-order': 'InvalidInput',
  /** A value does not have the JavaScript representation its Iceberg type requires, or is out of range. */
  'invalid-value': 'InvalidInput',
  /** A table cannot be created or changed as asked (bad location, conflicting properties…). */
  'invalid-table-config': 'InvalidInput',
  /** A table metadata file cannot be parsed or breaks a spec invariant. */
  'corrupt-metadata': 'Corrupt',
  /** The table uses a format version this engine cannot read or write safely. */
  'unsupported-format-version': 'Unsupported',
  /** Rows given to a write do not fit the table (wrong type, missing required column, null key). */
  'invalid-write': 'InvalidInput',
  /** A row-level commit lost to a concurrent commit that touched the same rows; run it again on fresh state. */
  'row-level-conflict': 'CommitConflict',
  /** A filter expression does not fit the schema (unknown column, column inside a list or map, bad literal). */
  'invalid-expression': 'InvalidInput',
  /** An incremental scan asks for a range the table's history cannot serve as appends. */
  'invalid-incremental-scan': 'InvalidInput',
  /** A change batch for an upsert is unusable (no primary key, null key, wrong columns). */
  'invalid-changes': 'InvalidInput',
  /** A copy-on-write overwrite's new rows do not fall under its own filter. */
  'invalid-overwrite': 'InvalidInput',
  /** A value given to the Parquet writer does not fit its column (null in a required field, wrong type, range). */
  'invalid-column-value': 'InvalidInput',
  /** A Parquet data or delete file cannot be read (not Parquet, damaged footer, missing or unreadable column). */
  'corrupt-data-file': 'Corrupt',
  /** An Avro manifest or manifest list cannot be decoded or is not the structure the spec requires. */
  'corrupt-manifest': 'Corrupt',
} as const satisfies Record<string, ErrorType>;

/** One of {@link ICEBERG_ERROR_KINDS}. */
export type IcebergErrorKind = keyof typeof ICEBERG_ERROR_KINDS;

/** Base class of every error the Iceberg engine throws on purpose. */
export abstract class IcebergError extends Error {
  /** Which kind of problem this is; stable, for `switch` statements. */
  abstract readonly kind: IcebergErrorKind;

  /** The shared failure type an activity should report for this error. */
  get failureType(): ErrorType {
    return ICEBERG_ERROR_KINDS[this.kind];
  }
}

/** Whether `err` is one of the engine's typed errors. */
export function isIcebergError(err: unknown): err is IcebergError {
  return err instanceof IcebergError;
}

/**
 * An error found while reading one of the spec's JSON structures (schema, partition spec, sort order, table
 * metadata). `jsonPath` points at the offending field, e.g. `schemas[0].fields[2].type`, so that the caller
 * can embed the error in a larger document and still name the exact field.
 */
export abstract class IcebergJsonError extends IcebergError {
  constructor(
    /** Where in the JSON document the problem is, e.g. `fields[1].transform`; empty for the document itself. */
    readonly jsonPath: string,
    /** What is wrong, without the location. */
    readonly problem: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

function at(jsonPath: string): string {
  return jsonPath === '' ? '' : ` at ${jsonPath}`;
}

/** A schema or type is malformed, or breaks a rule of the spec (duplicate field ids, bad identifier fields…). */
export class InvalidSchemaError extends IcebergJsonError {
  readonly kind = 'invalid-schema';
  override readonly name = 'InvalidSchemaError';

  constructor(jsonPath: string, problem: string, options?: ErrorOptions) {
    super(jsonPath, problem, `invalid Iceberg schema${at(jsonPath)}: ${problem}`, options);
  }
}

/** A partition spec is malformed or does not fit the table schema. */
export class InvalidPartitionSpecError extends IcebergJsonError {
  readonly kind = 'invalid-partition-spec';
  override readonly name = 'InvalidPartitionSpecError';

  constructor(jsonPath: string, problem: string, options?: ErrorOptions) {
    super(jsonPath, problem, `invalid Iceberg partition spec${at(jsonPath)}: ${problem}`, options);
  }
}

/** A sort order is malformed or does not fit the table schema. */
export class InvalidSortOrderError extends IcebergJsonError {
  readonly kind = 'invalid-sort-order';
  override readonly name = 'InvalidSortOrderError';

  constructor(jsonPath: string, problem: string, options?: ErrorOptions) {
    super(jsonPath, problem, `invalid Iceberg sort order${at(jsonPath)}: ${problem}`, options);
  }
}

/**
 * A table metadata file cannot be parsed or breaks a spec invariant. The message names the file and the field;
 * the usual remedy is to point the catalog back at the previous metadata file (listed in `metadata-log`).
 */
export class CorruptMetadataError extends IcebergJsonError {
  readonly kind = 'corrupt-metadata';
  override readonly name = 'CorruptMetadataError';

  constructor(
    /** The metadata file location the caller read, as given by the caller. */
    readonly file: string,
    jsonPath: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(
      jsonPath,
      problem,
      `table metadata file "${file}" is invalid${at(jsonPath)}: ${problem}; ` +
        'the file was not written by a spec-compliant writer or was damaged — point the catalog back at the ' +
        'previous metadata file (see its metadata-log) or repair the file',
      options,
    );
  }
}

/** The table's `format-version` is one this engine does not handle. */
export class UnsupportedFormatVersionError extends IcebergError {
  readonly kind = 'unsupported-format-version';
  override readonly name = 'UnsupportedFormatVersionError';

  constructor(
    /** The metadata file location the caller read. */
    readonly file: string,
    /** The version found in the file. */
    readonly formatVersion: number,
  ) {
    super(
      `table metadata file "${file}" has format-version ${formatVersion}, but this engine reads and writes only ` +
        'format version 2; ' +
        (formatVersion < 2
          ? 'upgrade the table to v2 with Spark or pyiceberg first'
          : 'use an engine that supports this version, or keep the table on v2'),
    );
  }
}

/** A schema change breaks the spec's evolution rules (narrowing, making a column required, unknown column…). */
export class SchemaEvolutionError extends IcebergError {
  readonly kind = 'schema-evolution';
  override readonly name = 'SchemaEvolutionError';

  constructor(
    /** The full (dotted) name of the column the change is about. */
    readonly column: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
  ) {
    super(`cannot change column "${column}": ${problem}`);
  }
}

/** A transform string is malformed, or the transform does not apply to the source column's type. */
export class InvalidTransformError extends IcebergError {
  readonly kind = 'invalid-transform';
  override readonly name = 'InvalidTransformError';

  constructor(
    /** The transform as written, e.g. `bucket[0]`. */
    readonly transform: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
    /** The source column, when known. */
    readonly column?: string,
  ) {
    super(`invalid transform "${transform}"${column === undefined ? '' : ` on column "${column}"`}: ${problem}`);
  }
}

/** A value does not have the JavaScript representation its Iceberg type requires, or is out of range. */
export class InvalidValueError extends IcebergError {
  readonly kind = 'invalid-value';
  override readonly name = 'InvalidValueError';

  constructor(
    /** The Iceberg type the value was meant to have, e.g. `decimal(10, 2)`. */
    readonly type: string,
    /** What is wrong, including the expected representation. */
    readonly problem: string,
  ) {
    super(`invalid ${type} value: ${problem}`);
  }
}

/** A table cannot be created or changed as asked (bad location, conflicting properties…). */
export class InvalidTableConfigError extends IcebergError {
  readonly kind = 'invalid-table-config';
  override readonly name = 'InvalidTableConfigError';

  constructor(
    /** The setting at fault, e.g. `location`. */
    readonly setting: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
  ) {
    super(`invalid table ${setting}: ${problem}`);
  }
}

/**
 * Rows given to a write do not fit the table. Names the table, the file being written and the column, and keeps
 * the underlying error (e.g. the Parquet writer's, which names the row) as `cause`.
 */
export class TableWriteError extends IcebergError {
  readonly kind = 'invalid-write';
  override readonly name = 'TableWriteError';

  constructor(
    readonly table: string,
    /** The data file the rows were going to. */
    readonly file: string,
    /** The column at fault, when one is. */
    readonly column: string | undefined,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(
      `cannot write to table ${table}${column === undefined ? '' : `, column "${column}"`} (file ${file}): ${problem}`,
      options,
    );
  }
}

/** A row-level commit conflicts with a concurrent commit touching the same rows; retryable as a whole. */
export class RowLevelConflictError extends IcebergError {
  readonly kind = 'row-level-conflict';
  override readonly name = 'RowLevelConflictError';

  constructor(
    readonly table: string,
    readonly problem: string,
  ) {
    super(
      `row-level commit to table "${table}" conflicts with a concurrent commit: ${problem}; run it again on the fresh table`,
    );
  }
}
