import type { ErrorType } from '../../../schemas/error-types.js';

/**
 * Every kind of error the SQL catalog throws itself. Activities switch over this list exhaustively to pick the
 * `ApplicationFailure` type. The catalog also lets through the engine's {@link CorruptMetadataError} and
 * {@link UnsupportedFormatVersionError} (from `../errors.ts`) for unreadable metadata files, and the storage
 * layer's errors (`lib/storage/errors.ts`) for FileIO failures.
 */
export const CATALOG_ERROR_KINDS = {
  /** A namespace or table name is empty, too long, or contains a character the catalog cannot store. */
  'invalid-identifier': 'InvalidInput',
  /** The namespace does not exist. */
  'no-such-namespace': 'NotFound',
  /** The table does not exist. */
  'no-such-table': 'NotFound',
  /** A namespace with this name already exists. */
  'namespace-already-exists': 'InvalidInput',
  /** A table or view with this name already exists. */
  'table-already-exists': 'InvalidInput',
  /** The namespace still holds tables, views or child namespaces. */
  'namespace-not-empty': 'InvalidInput',
  /** Another writer changed the table first; reload, re-apply and commit again. */
  'commit-conflict': 'CommitConflict',
  /** The catalog database failed during the pointer swap, so whether the commit happened is unknown. */
  'commit-state-unknown': 'ServiceUnavailable',
  /** The catalog database did not answer, or was busy. */
  'catalog-unavailable': 'ServiceUnavailable',
  /** The catalog points at a metadata file that does not exist. */
  'missing-metadata-file': 'Corrupt',
  /** Namespace properties to set or remove are malformed (empty key, too long, a key both set and removed). */
  'invalid-namespace-properties': 'InvalidInput',
  /** The catalog tables do not exist and the catalog was told not to create them. */
  'catalog-tables-missing': 'InvalidConfig',
} as const satisfies Record<string, ErrorType>;

/** One of {@link CATALOG_ERROR_KINDS}. */
export type CatalogErrorKind = keyof typeof CATALOG_ERROR_KINDS;

/** Base class of every error the SQL catalog throws on purpose. */
export abstract class CatalogError extends Error {
  /** Which kind of problem this is; stable, for `switch` statements. */
  abstract readonly kind: CatalogErrorKind;

  /** The shared failure type an activity should report for this error. */
  get failureType(): ErrorType {
    return CATALOG_ERROR_KINDS[this.kind];
  }
}

/** Whether `err` is one of the catalog's typed errors. */
export function isCatalogError(err: unknown): err is CatalogError {
  return err instanceof CatalogError;
}

/** A namespace or table identifier cannot be stored in the JDBC-catalog tables. */
export class InvalidIdentifierError extends CatalogError {
  readonly kind = 'invalid-identifier';
  override readonly name = 'InvalidIdentifierError';

  constructor(
    /** The identifier as given, for the message. */
    readonly identifier: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
  ) {
    super(`invalid identifier ${JSON.stringify(identifier)}: ${problem}`);
  }
}

/** The namespace does not exist. */
export class NoSuchNamespaceError extends CatalogError {
  readonly kind = 'no-such-namespace';
  override readonly name = 'NoSuchNamespaceError';

  constructor(
    readonly catalog: string,
    /** The dot-joined namespace. */
    readonly namespace: string,
  ) {
    super(`namespace "${namespace}" does not exist in catalog "${catalog}"; create it first with createNamespace`);
  }
}

/** The table does not exist. */
export class NoSuchTableError extends CatalogError {
  readonly kind = 'no-such-table';
  override readonly name = 'NoSuchTableError';

  constructor(
    readonly catalog: string,
    /** The dot-joined table identifier, e.g. `db.orders`. */
    readonly table: string,
  ) {
    super(
      `table "${table}" does not exist in catalog "${catalog}"; check the name (listTables shows the namespace's ` +
        'tables) or create it with createTable',
    );
  }
}

/** A namespace with this name already exists. */
export class NamespaceAlreadyExistsError extends CatalogError {
  readonly kind = 'namespace-already-exists';
  override readonly name = 'NamespaceAlreadyExistsError';

  constructor(
    readonly catalog: string,
    readonly namespace: string,
  ) {
    super(
      `namespace "${namespace}" already exists in catalog "${catalog}" (it has properties, tables or child ` +
        'namespaces); use updateNamespaceProperties to change it',
    );
  }
}

/** A table or view with this name already exists. */
export class TableAlreadyExistsError extends CatalogError {
  readonly kind = 'table-already-exists';
  override readonly name = 'TableAlreadyExistsError';

  constructor(
    readonly catalog: string,
    readonly table: string,
  ) {
    super(
      `a table or view "${table}" already exists in catalog "${catalog}"; load it, pick another name, or drop it ` +
        'first',
    );
  }
}

/** The namespace still holds tables, views or child namespaces. */
export class NamespaceNotEmptyError extends CatalogError {
  readonly kind = 'namespace-not-empty';
  override readonly name = 'NamespaceNotEmptyError';

  constructor(
    readonly catalog: string,
    readonly namespace: string,
    /** What it still holds, e.g. `2 tables (orders, items)`. */
    readonly contents: string,
  ) {
    super(
      `namespace "${namespace}" in catalog "${catalog}" is not empty: it holds ${contents}; drop or rename those ` +
        'first',
    );
  }
}

/**
 * Another writer committed to the table after the caller loaded it, so the compare-and-swap on
 * `metadata_location` matched no row. Retryable: reload the table, re-apply the change and commit again
 * (`commitWithRetry` does this).
 */
export class CommitConflictError extends CatalogError {
  readonly kind = 'commit-conflict';
  override readonly name = 'CommitConflictError';

  constructor(
    readonly catalog: string,
    readonly table: string,
    /** The metadata location the commit expected to replace. */
    readonly expectedMetadataLocation: string,
    /** The location the catalog held when the commit failed, when known. */
    readonly currentMetadataLocation: string | undefined,
    /** How many attempts were made, when this ends a retry loop. */
    readonly attempts = 1,
  ) {
    super(
      `commit to table "${table}" in catalog "${catalog}" lost a race${
        attempts > 1 ? ` ${attempts} times in a row` : ''
      }: the table no longer points at "${expectedMetadataLocation}"${
        currentMetadataLocation === undefined ? '' : ` (it now points at "${currentMetadataLocation}")`
      }; reload the table, re-apply the change and commit again`,
    );
  }
}

/**
 * The catalog database failed while swapping the metadata pointer, and re-reading the pointer failed too, so the
 * commit may or may not have happened. The new metadata file is kept, since the catalog may point at it.
 */
export class CommitStateUnknownError extends CatalogError {
  readonly kind = 'commit-state-unknown';
  override readonly name = 'CommitStateUnknownError';

  constructor(
    readonly catalog: string,
    readonly table: string,
    /** The metadata file the commit tried to install. */
    readonly newMetadataLocation: string,
    options?: ErrorOptions,
  ) {
    super(
      `commit to table "${table}" in catalog "${catalog}" may or may not have been applied: the catalog database ` +
        `failed during the update (${describeCause(options?.cause)}); load the table and check whether it points at ` +
        `"${newMetadataLocation}" before committing the same change again`,
      options,
    );
  }
}

/** The catalog database did not answer, or was busy (locked, too many connections). Retryable. */
export class CatalogUnavailableError extends CatalogError {
  readonly kind = 'catalog-unavailable';
  override readonly name = 'CatalogUnavailableError';

  constructor(
    readonly catalog: string,
    /** What the catalog was doing, e.g. `loading table "db.orders"`. */
    readonly operation: string,
    options?: ErrorOptions,
  ) {
    super(
      `catalog "${catalog}" could not complete ${operation}: its database did not answer or was busy ` +
        `(${describeCause(options?.cause)}); retry, and check the database connection if it persists`,
      options,
    );
  }
}

/** The catalog points at a metadata file that does not exist (deleted, or on another store). */
export class MissingMetadataFileError extends CatalogError {
  readonly kind = 'missing-metadata-file';
  override readonly name = 'MissingMetadataFileError';

  constructor(
    readonly catalog: string,
    readonly table: string,
    /** The missing file, or `undefined` when the catalog row has no location at all. */
    readonly file: string | undefined,
    /** The previous metadata location recorded in the catalog, a candidate to point back at. */
    readonly previousFile: string | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `table "${table}" in catalog "${catalog}" ${
        file === undefined ? 'has no metadata location' : `points at metadata file "${file}", which does not exist`
      }; restore the file, or point the catalog back at ${
        previousFile === undefined ? 'an earlier metadata file' : `the previous one ("${previousFile}")`
      }`,
      options,
    );
  }
}

/** Namespace properties to set or remove are malformed. */
export class InvalidNamespacePropertiesError extends CatalogError {
  readonly kind = 'invalid-namespace-properties';
  override readonly name = 'InvalidNamespacePropertiesError';

  constructor(
    readonly namespace: string,
    /** What is wrong and what to do instead. */
    readonly problem: string,
  ) {
    super(`invalid properties for namespace "${namespace}": ${problem}`);
  }
}

/** The catalog tables do not exist and the catalog was told not to create them. */
export class CatalogTablesMissingError extends CatalogError {
  readonly kind = 'catalog-tables-missing';
  override readonly name = 'CatalogTablesMissingError';

  constructor(
    readonly catalog: string,
    /** The missing tables, e.g. `iceberg_tables`. */
    readonly tables: readonly string[],
  ) {
    super(
      `catalog "${catalog}" cannot start: its database has no ${tables.join(' or ')} table; point it at the right ` +
        'database, or let it create the tables (createTables: true)',
    );
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return cause === undefined ? 'no detail' : String(cause);
}
