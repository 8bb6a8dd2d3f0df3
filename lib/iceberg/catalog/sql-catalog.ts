import { FileNotFoundError } from '../../storage/errors.js';
import type { FileIO } from '../../storage/file-io.js';
import { parseS3Uri, schemeOf, toFileUri } from '../../storage/uri.js';
import { InvalidTableConfigError } from '../errors.js';
import {
  newTableMetadata,
  parseTableMetadata,
  serializeTableMetadata,
  type NewTableOptions,
  type TableMetadata,
} from '../metadata-json.js';
import { recordPreviousMetadata } from '../table-update.js';
import type { Schema } from '../types.js';
import {
  ensureCatalogTables,
  MAX_LOCATION_LENGTH,
  MAX_NAME_LENGTH,
  MAX_PROPERTY_VALUE_LENGTH,
  missingCatalogTables,
} from './catalog-tables.js';
import {
  CatalogTablesMissingError,
  CatalogUnavailableError,
  CommitConflictError,
  CommitStateUnknownError,
  InvalidIdentifierError,
  InvalidNamespacePropertiesError,
  MissingMetadataFileError,
  NamespaceAlreadyExistsError,
  NamespaceNotEmptyError,
  NoSuchNamespaceError,
  NoSuchTableError,
  TableAlreadyExistsError,
} from './errors.js';
import {
  escapeLike,
  resolveNamespace,
  resolveTable,
  type NamespaceInput,
  type ResolvedNamespace,
  type ResolvedTable,
  type TableIdentifier,
  type TableIdentifierInput,
} from './identifier.js';
import { decodeMetadataFile, metadataFileVersion, newMetadataFileLocation } from './metadata-location.js';
import type { CatalogDriver, SqlExecutor, SqlValue } from './sql-driver.js';

/** Options of {@link SqlCatalog}. */
export interface SqlCatalogOptions {
  /**
   * The catalog name stored in every row's `catalog_name`. Readers must use the same name: pyiceberg's
   * `SqlCatalog(name, …)`, Spark's `spark.sql.catalog.<name>`.
   */
  readonly name: string;
  /** The database holding the catalog tables: {@link SqliteCatalogDriver} or {@link PostgresCatalogDriver}. */
  readonly driver: CatalogDriver;
  /** Reads and writes metadata files (and deletes table files on purge). */
  readonly io: FileIO;
  /**
   * Root URI under which new tables get their default location, `<warehouse>/<ns level>/…/<table>`: an
   * `s3://bucket/prefix` or a local directory. A relative local path resolves against the working directory and
   * is stored as an absolute `file:///…` URI, since readers on other machines need absolute locations.
   */
  readonly warehouse: string;
  /**
   * Create `iceberg_tables` and `iceberg_namespace_properties` when missing (and add Java's `iceberg_type`
   * column to an older `iceberg_tables`), like pyiceberg's `init_catalog_tables`.
   * @default true
   */
  readonly createTables?: boolean;
}

/** A table as the catalog currently points at it. */
export interface LoadedTable {
  readonly identifier: TableIdentifier;
  /** The metadata file the catalog points at; pass it back as `expectedMetadataLocation` when committing. */
  readonly metadataLocation: string;
  /** The metadata file before the last commit, or `null` for a new or registered table. */
  readonly previousMetadataLocation: string | null;
  readonly metadata: TableMetadata;
}

/** Inputs of {@link SqlCatalog.createTable}. */
export interface CreateTableOptions {
  /** The table schema; field ids are reassigned from 1 as Java does. */
  readonly schema: Schema;
  /** @default unpartitioned */
  readonly partitionSpec?: NewTableOptions['partitionSpec'];
  /** @default unsorted */
  readonly sortOrder?: NewTableOptions['sortOrder'];
  /** Table properties. @default {} */
  readonly properties?: Readonly<Record<string, string>>;
  /**
   * The table's base location. A relative local path resolves against the working directory.
   * @default the namespace's `location` property + `/<table>` if set, else `<warehouse>/<ns levels>/<table>`
   */
  readonly location?: string;
}

/** Inputs of {@link SqlCatalog.commitTable}. */
export interface CommitTableOptions {
  /** The metadata location the change was computed from (`LoadedTable.metadataLocation`). */
  readonly expectedMetadataLocation: string;
  /** The complete new metadata. */
  readonly newMetadata: TableMetadata;
  /**
   * The metadata at `expectedMetadataLocation`, if the caller has it; saves reading it again. It supplies the
   * `metadata-log` entry's timestamp and the table UUID the new metadata must keep.
   * @default read from `expectedMetadataLocation`
   */
  readonly baseMetadata?: TableMetadata;
}

/** Options of {@link SqlCatalog.commitWithRetry}. */
export interface CommitRetryOptions {
  /**
   * Attempts before the last {@link CommitConflictError} reaches the caller. Java's default is 4 retries
   * (`commit.retry.num-retries`), i.e. 5 attempts.
   * @default 5
   */
  readonly maxAttempts?: number;
  /** Wait before the first retry; doubles per retry, with jitter. @default 100 */
  readonly minWaitMs?: number;
  /** Longest wait between attempts. @default 5000 */
  readonly maxWaitMs?: number;
}

/** What the update function of {@link SqlCatalog.commitWithRetry} is told besides the current metadata. */
export interface CommitAttempt {
  /** 1 for the first try. */
  readonly attempt: number;
  /** The metadata file the update applies to. */
  readonly metadataLocation: string;
}

/** Changes for {@link SqlCatalog.updateNamespaceProperties}. */
export interface NamespacePropertiesChange {
  /** Keys to remove. @default [] */
  readonly removals?: readonly string[];
  /** Keys to set. @default {} */
  readonly updates?: Readonly<Record<string, string>>;
}

/** What {@link SqlCatalog.updateNamespaceProperties} did, like pyiceberg's `PropertiesUpdateSummary`. */
export interface NamespacePropertiesSummary {
  readonly removed: string[];
  readonly updated: string[];
  /** Keys asked to be removed that were not set. */
  readonly missing: string[];
}

/** Options of {@link SqlCatalog.dropTable}. */
export interface DropTableOptions {
  /**
   * Also delete the table's files: everything listed under its location, plus the metadata files and manifest
   * lists its metadata names. Files of other tables that share the location are deleted too; keeping locations
   * apart is the caller's job.
   * @default false
   */
  readonly purge?: boolean;
}

/** The outcome of {@link SqlCatalog.dropTable}. */
export interface DropTableResult {
  /** How many files a purge deleted (0 without purge, or when the metadata file was already gone). */
  readonly deletedFiles: number;
}

/** The `(catalog_name, namespace, property_key, property_value)` marker Java and pyiceberg write for a namespace. */
const EXISTS_PROPERTY = { key: 'exists', value: 'true' } as const;

/** Namespace property that sets the default location of its new tables (pyiceberg's convention). */
const NAMESPACE_LOCATION_PROPERTY = 'location';

// Rows with iceberg_type 'VIEW' are Java's views; NULL is a table written before the column existed.
const IS_TABLE = "(iceberg_type = 'TABLE' OR iceberg_type IS NULL)";
const TABLE_KEY = 'catalog_name = ? AND table_namespace = ? AND table_name = ?';

const SQL = {
  selectTable: `SELECT metadata_location, previous_metadata_location FROM iceberg_tables WHERE ${TABLE_KEY} AND ${IS_TABLE}`,
  selectAnyEntry: `SELECT iceberg_type FROM iceberg_tables WHERE ${TABLE_KEY}`,
  insertTable:
    'INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, ' +
    "previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')",
  // The compare-and-swap of Java's JdbcTableOperations and pyiceberg's commit_table: exactly one row or a conflict.
  commit:
    'UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? ' +
    `WHERE ${TABLE_KEY} AND metadata_location = ? AND ${IS_TABLE}`,
  rename: `UPDATE iceberg_tables SET table_namespace = ?, table_name = ? WHERE ${TABLE_KEY} AND ${IS_TABLE}`,
  drop: `DELETE FROM iceberg_tables WHERE ${TABLE_KEY} AND ${IS_TABLE}`,
  listTables: `SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND ${IS_TABLE} ORDER BY table_name`,
  entriesInNamespace:
    'SELECT table_name, iceberg_type FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ?',
  allNamespaces:
    'SELECT namespace AS ns FROM iceberg_namespace_properties WHERE catalog_name = ? ' +
    'UNION SELECT table_namespace AS ns FROM iceberg_tables WHERE catalog_name = ?',
  namespaceAndChildren:
    "SELECT namespace AS ns FROM iceberg_namespace_properties WHERE catalog_name = ? AND (namespace = ? OR namespace LIKE ? ESCAPE '!') " +
    "UNION SELECT table_namespace AS ns FROM iceberg_tables WHERE catalog_name = ? AND (table_namespace = ? OR table_namespace LIKE ? ESCAPE '!')",
  selectProperties:
    'SELECT property_key, property_value FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ?',
  insertProperty:
    'INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, property_value) VALUES (?, ?, ?, ?)',
  deleteProperty:
    'DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? AND property_key = ?',
  deleteProperties: 'DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ?',
} as const;

/**
 * An Iceberg catalog in Iceberg's JDBC-catalog tables (`iceberg_tables`, `iceberg_namespace_properties`), on SQLite
 * or PostgreSQL, that pyiceberg's `SqlCatalog` and Spark's `JdbcCatalog` read and write too.
 *
 * Namespaces exist when they have a property row (an `exists=true` marker when created without properties, as
 * Java and pyiceberg do), a table, or a child namespace. Tables are rows pointing at their current metadata file;
 * a commit writes a new metadata file and swaps the pointer with a compare-and-swap `UPDATE`, so concurrent
 * writers — Sluice, Spark or pyiceberg — never lose each other's commits.
 */
export class SqlCatalog {
  /** The catalog name stored in `catalog_name`. */
  readonly name: string;
  /** The warehouse root as an absolute URI, without a trailing slash. */
  readonly warehouse: string;
  private readonly driver: CatalogDriver;
  private readonly io: FileIO;
  private readonly createTables: boolean;
  private initialized: Promise<void> | undefined;

  constructor(options: SqlCatalogOptions) {
    if (options.name === '' || [...options.name].length > MAX_NAME_LENGTH) {
      throw new InvalidIdentifierError(options.name, `a catalog name needs 1 to ${MAX_NAME_LENGTH} characters`);
    }
    this.name = options.name;
    this.driver = options.driver;
    this.io = options.io;
    this.createTables = options.createTables ?? true;
    this.warehouse = absoluteLocation(options.warehouse);
  }

  /**
   * Creates the catalog tables if needed (see {@link SqlCatalogOptions.createTables}). Every other method calls it
   * first; call it directly to fail fast at startup.
   */
  initialize(): Promise<void> {
    this.initialized ??= this.sql('creating the catalog tables', async (db) => {
      if (this.createTables) {
        await ensureCatalogTables(db);
        return;
      }
      const missing = await missingCatalogTables(db);
      if (missing.length > 0) throw new CatalogTablesMissingError(this.name, missing);
    }).catch((err: unknown) => {
      // Let a later call try again, e.g. after the database comes back.
      this.initialized = undefined;
      throw err;
    });
    return this.initialized;
  }

  // ---- namespaces ---------------------------------------------------------------------------------------------

  /**
   * Creates a namespace. Without properties it stores the `exists=true` marker, like Java and pyiceberg.
   * A parent need not exist.
   * @throws NamespaceAlreadyExistsError when it (or a child of it) already exists.
   */
  async createNamespace(namespace: NamespaceInput, properties: Readonly<Record<string, string>> = {}): Promise<void> {
    const ns = resolveNamespace(namespace);
    checkProperties(ns.joined, properties);
    await this.initialize();
    const entries = Object.entries(properties);
    const rows = entries.length === 0 ? [[EXISTS_PROPERTY.key, EXISTS_PROPERTY.value] as const] : entries;
    try {
      await this.sql(`creating namespace "${ns.joined}"`, (db) =>
        db.transaction(async (tx) => {
          if (await this.namespaceExistsIn(tx, ns)) throw new NamespaceAlreadyExistsError(this.name, ns.joined);
          for (const [key, value] of rows) await tx.execute(SQL.insertProperty, [this.name, ns.joined, key, value]);
        }),
      );
    } catch (err) {
      // Another process created it between our check and insert.
      if (this.driver.classifyError(err) === 'unique-violation') {
        throw new NamespaceAlreadyExistsError(this.name, ns.joined);
      }
      throw err;
    }
  }

  /** Whether the namespace exists: it has properties, tables, or child namespaces. */
  async namespaceExists(namespace: NamespaceInput): Promise<boolean> {
    const ns = resolveNamespace(namespace);
    await this.initialize();
    return this.sql(`checking namespace "${ns.joined}"`, (db) => this.namespaceExistsIn(db, ns));
  }

  /**
   * The namespaces one level below `parent` (top-level ones without it), as level arrays, sorted. Namespaces that
   * exist only through a deeper child or a table are included, as in Java and pyiceberg.
   * @throws NoSuchNamespaceError when `parent` does not exist.
   */
  async listNamespaces(parent?: NamespaceInput): Promise<string[][]> {
    const parentNs = parent === undefined ? undefined : resolveNamespace(parent);
    await this.initialize();
    if (parentNs !== undefined) await this.requireNamespace(parentNs);
    const rows = await this.sql('listing namespaces', (db) => db.query(SQL.allNamespaces, [this.name, this.name]));
    const prefix = parentNs?.levels ?? [];
    const children = new Map<string, string[]>();
    for (const row of rows) {
      const levels = String(row.ns).split('.');
      if (levels.length <= prefix.length || prefix.some((level, i) => levels[i] !== level)) continue;
      const child = levels.slice(0, prefix.length + 1);
      children.set(child.join('.'), child);
    }
    return [...children.entries()].sort(([a], [b]) => compare(a, b)).map(([, levels]) => levels);
  }

  /**
   * The namespace's properties (including the `exists` marker when that is all it has; `{}` for a namespace that
   * exists only through its tables or children).
   * @throws NoSuchNamespaceError
   */
  async loadNamespaceProperties(namespace: NamespaceInput): Promise<Record<string, string>> {
    const ns = resolveNamespace(namespace);
    await this.initialize();
    await this.requireNamespace(ns);
    const rows = await this.sql(`loading properties of namespace "${ns.joined}"`, (db) =>
      db.query(SQL.selectProperties, [this.name, ns.joined]),
    );
    return Object.fromEntries(rows.map((r) => [String(r.property_key), String(r.property_value)]));
  }

  /**
   * Removes and sets namespace properties in one transaction. If no property row would remain, the `exists`
   * marker is written so that the namespace does not silently disappear.
   * @throws NoSuchNamespaceError
   * @throws InvalidNamespacePropertiesError when a key is both removed and set, or a key/value is too long.
   */
  async updateNamespaceProperties(
    namespace: NamespaceInput,
    change: NamespacePropertiesChange,
  ): Promise<NamespacePropertiesSummary> {
    const ns = resolveNamespace(namespace);
    const removals = [...new Set(change.removals ?? [])];
    const updates = change.updates ?? {};
    checkProperties(ns.joined, updates);
    const overlap = removals.filter((key) => Object.prototype.hasOwnProperty.call(updates, key));
    if (overlap.length > 0) {
      throw new InvalidNamespacePropertiesError(
        ns.joined,
        `${overlap.map((k) => `"${k}"`).join(', ')} ${overlap.length === 1 ? 'is' : 'are'} both removed and set; ` +
          'do one or the other',
      );
    }
    await this.initialize();
    await this.requireNamespace(ns);
    return this.sql(`updating properties of namespace "${ns.joined}"`, (db) =>
      db.transaction(async (tx) => {
        const current = new Set(
          (await tx.query(SQL.selectProperties, [this.name, ns.joined])).map((r) => String(r.property_key)),
        );
        const removed = removals.filter((key) => current.has(key));
        const missing = removals.filter((key) => !current.has(key));
        for (const key of removed) {
          await tx.execute(SQL.deleteProperty, [this.name, ns.joined, key]);
          current.delete(key);
        }
        for (const [key, value] of Object.entries(updates)) {
          // Delete-then-insert is the one upsert both dialects share; the transaction keeps it atomic.
          await tx.execute(SQL.deleteProperty, [this.name, ns.joined, key]);
          await tx.execute(SQL.insertProperty, [this.name, ns.joined, key, value]);
          current.add(key);
        }
        if (current.size === 0) {
          await tx.execute(SQL.insertProperty, [this.name, ns.joined, EXISTS_PROPERTY.key, EXISTS_PROPERTY.value]);
        }
        return { removed, updated: Object.keys(updates), missing };
      }),
    );
  }

  /**
   * Drops an empty namespace (its property rows).
   * @throws NoSuchNamespaceError
   * @throws NamespaceNotEmptyError when it holds tables, views or child namespaces.
   */
  async dropNamespace(namespace: NamespaceInput): Promise<void> {
    const ns = resolveNamespace(namespace);
    await this.initialize();
    await this.requireNamespace(ns);
    const entries = await this.sql(`dropping namespace "${ns.joined}"`, (db) =>
      db.query(SQL.entriesInNamespace, [this.name, ns.joined]),
    );
    const children = await this.listNamespaces(ns.levels);
    if (entries.length > 0 || children.length > 0) {
      const parts: string[] = [];
      const tables = entries.filter((e) => e.iceberg_type !== 'VIEW').map((e) => String(e.table_name));
      const views = entries.filter((e) => e.iceberg_type === 'VIEW').map((e) => String(e.table_name));
      if (tables.length > 0) parts.push(listing(tables, 'table'));
      if (views.length > 0) parts.push(listing(views, 'view'));
      if (children.length > 0)
        parts.push(
          listing(
            children.map((c) => c.join('.')),
            'child namespace',
          ),
        );
      throw new NamespaceNotEmptyError(this.name, ns.joined, parts.join(' and '));
    }
    await this.sql(`dropping namespace "${ns.joined}"`, (db) =>
      db.execute(SQL.deleteProperties, [this.name, ns.joined]),
    );
  }

  // ---- tables -------------------------------------------------------------------------------------------------

  /**
   * Creates a table: writes `<location>/metadata/00000-<uuid>.metadata.json` (built like Java's
   * `TableMetadata.newTableMetadata`) and inserts the catalog row.
   * @throws NoSuchNamespaceError when the namespace does not exist.
   * @throws TableAlreadyExistsError when a table or view of that name exists (the metadata file is then removed).
   * @throws InvalidIdentifierError, InvalidTableConfigError, InvalidSchemaError… for bad inputs.
   */
  async createTable(identifier: TableIdentifierInput, options: CreateTableOptions): Promise<LoadedTable> {
    const table = resolveTable(identifier);
    await this.initialize();
    await this.requireNamespace(table.namespace);
    if (await this.entryExists(table)) throw new TableAlreadyExistsError(this.name, table.display);
    const location =
      options.location === undefined ? await this.defaultTableLocation(table) : absoluteLocation(options.location);
    const metadata = newTableMetadata({
      schema: options.schema,
      location,
      ...(options.partitionSpec === undefined ? {} : { partitionSpec: options.partitionSpec }),
      ...(options.sortOrder === undefined ? {} : { sortOrder: options.sortOrder }),
      ...(options.properties === undefined ? {} : { properties: options.properties }),
    });
    const metadataLocation = checkedLocation(newMetadataFileLocation(metadata, 0));
    const written = await this.writeMetadataFile(metadataLocation, metadata);
    try {
      await this.sql(`creating table "${table.display}"`, (db) =>
        db.execute(SQL.insertTable, [this.name, table.namespace.joined, table.name, metadataLocation]),
      );
    } catch (err) {
      await this.deleteQuietly(metadataLocation);
      if (this.driver.classifyError(err) === 'unique-violation') {
        throw new TableAlreadyExistsError(this.name, table.display);
      }
      throw err;
    }
    return { identifier: toIdentifier(table), metadataLocation, previousMetadataLocation: null, metadata: written };
  }

  /**
   * Registers an existing metadata file as a table (e.g. one written by another catalog). The file is read and
   * validated first.
   * @throws NoSuchNamespaceError, TableAlreadyExistsError, CorruptMetadataError, FileNotFoundError
   */
  async registerTable(identifier: TableIdentifierInput, metadataLocation: string): Promise<LoadedTable> {
    const table = resolveTable(identifier);
    await this.initialize();
    await this.requireNamespace(table.namespace);
    const location = checkedLocation(metadataLocation);
    const metadata = parseTableMetadata(decodeMetadataFile(await this.io.read(location), location), location);
    try {
      await this.sql(`registering table "${table.display}"`, (db) =>
        db.execute(SQL.insertTable, [this.name, table.namespace.joined, table.name, location]),
      );
    } catch (err) {
      if (this.driver.classifyError(err) === 'unique-violation') {
        throw new TableAlreadyExistsError(this.name, table.display);
      }
      throw err;
    }
    return { identifier: toIdentifier(table), metadataLocation: location, previousMetadataLocation: null, metadata };
  }

  /**
   * The table's current metadata.
   * @throws NoSuchTableError naming the table.
   * @throws MissingMetadataFileError when the catalog points at a file that does not exist.
   * @throws CorruptMetadataError naming the file when it cannot be parsed.
   */
  async loadTable(identifier: TableIdentifierInput): Promise<LoadedTable> {
    const table = resolveTable(identifier);
    await this.initialize();
    const row = await this.pointerOf(table);
    if (row === undefined) throw new NoSuchTableError(this.name, table.display);
    if (row.metadataLocation === null) {
      throw new MissingMetadataFileError(
        this.name,
        table.display,
        undefined,
        row.previousMetadataLocation ?? undefined,
      );
    }
    const metadata = await this.readMetadataFile(table, row.metadataLocation, row.previousMetadataLocation);
    return {
      identifier: toIdentifier(table),
      metadataLocation: row.metadataLocation,
      previousMetadataLocation: row.previousMetadataLocation,
      metadata,
    };
  }

  /** Whether a table (not a view) of that name exists. Does not read its metadata file. */
  async tableExists(identifier: TableIdentifierInput): Promise<boolean> {
    const table = resolveTable(identifier);
    await this.initialize();
    return (await this.pointerOf(table)) !== undefined;
  }

  /**
   * The tables directly in a namespace (not in its children), sorted by name.
   * @throws NoSuchNamespaceError
   */
  async listTables(namespace: NamespaceInput): Promise<TableIdentifier[]> {
    const ns = resolveNamespace(namespace);
    await this.initialize();
    await this.requireNamespace(ns);
    const rows = await this.sql(`listing tables of namespace "${ns.joined}"`, (db) =>
      db.query(SQL.listTables, [this.name, ns.joined]),
    );
    return rows
      .map((r) => String(r.table_name))
      .sort(compare)
      .map((name) => ({ namespace: [...ns.levels], name }));
  }

  /**
   * Renames a table, possibly into another namespace. Only the catalog row changes; files stay where they are, as
   * in Java and pyiceberg.
   * @throws NoSuchTableError, NoSuchNamespaceError (target), TableAlreadyExistsError (target).
   */
  async renameTable(from: TableIdentifierInput, to: TableIdentifierInput): Promise<void> {
    const source = resolveTable(from);
    const target = resolveTable(to);
    await this.initialize();
    await this.requireNamespace(target.namespace);
    let changed: number;
    try {
      changed = await this.sql(`renaming table "${source.display}" to "${target.display}"`, (db) =>
        db.execute(SQL.rename, [target.namespace.joined, target.name, ...this.keyOf(source)]),
      );
    } catch (err) {
      if (this.driver.classifyError(err) === 'unique-violation') {
        throw new TableAlreadyExistsError(this.name, target.display);
      }
      throw err;
    }
    if (changed === 0) throw new NoSuchTableError(this.name, source.display);
  }

  /**
   * Removes the table from the catalog, and with `purge` also deletes its files (see {@link DropTableOptions}).
   * The row goes first, as in Java: a purge that fails half-way leaves orphan files, never a table whose files are
   * half gone.
   * @throws NoSuchTableError
   * @throws InvalidTableConfigError when purging a location that is the warehouse, a bucket or the file-system
   *   root, or an ancestor of the warehouse (the table is then not dropped).
   */
  async dropTable(identifier: TableIdentifierInput, options: DropTableOptions = {}): Promise<DropTableResult> {
    const table = resolveTable(identifier);
    await this.initialize();
    let loaded: LoadedTable | undefined;
    if (options.purge === true) {
      try {
        loaded = await this.loadTable(toIdentifier(table));
      } catch (err) {
        // Nothing to learn the files from; drop the row anyway, as Java does.
        if (!(err instanceof MissingMetadataFileError)) throw err;
      }
      if (loaded !== undefined) this.checkPurgeable(table, loaded.metadata.location);
    }
    const changed = await this.sql(`dropping table "${table.display}"`, (db) =>
      db.execute(SQL.drop, this.keyOf(table)),
    );
    if (changed === 0) throw new NoSuchTableError(this.name, table.display);
    return { deletedFiles: loaded === undefined ? 0 : await this.purgeFiles(loaded) };
  }

  /**
   * Commits new metadata: writes it to `<metadata dir>/<next version>-<uuid>.metadata.json` (the version parsed
   * from the expected file name, plus one), records the replaced file in `metadata-log` (unless the caller already
   * did), then swaps the catalog pointer with `UPDATE … WHERE metadata_location = expected`, which must change
   * exactly one row.
   *
   * @returns the table as now committed.
   * @throws CommitConflictError (retryable) when another commit won; the new metadata file is deleted.
   * @throws CommitStateUnknownError when the database failed during the swap and the outcome cannot be read back;
   *   the new file is kept, since the catalog may point at it.
   * @throws NoSuchTableError when the table was dropped meanwhile.
   * @throws InvalidTableConfigError when the new metadata belongs to another table (different `table-uuid`).
   */
  async commitTable(identifier: TableIdentifierInput, options: CommitTableOptions): Promise<LoadedTable> {
    const table = resolveTable(identifier);
    await this.initialize();
    const expected = options.expectedMetadataLocation;
    const base = options.baseMetadata ?? (await this.readBaseMetadata(table, expected));
    if (base.tableUuid !== options.newMetadata.tableUuid) {
      throw new InvalidTableConfigError(
        'table-uuid',
        `the new metadata of table "${table.display}" has table-uuid ${options.newMetadata.tableUuid}, but the ` +
          `table's is ${base.tableUuid}; metadata from another table cannot be committed here`,
      );
    }
    const lastLogged = options.newMetadata.metadataLog[options.newMetadata.metadataLog.length - 1];
    const metadata =
      lastLogged?.metadataFile === expected
        ? options.newMetadata
        : recordPreviousMetadata(options.newMetadata, { metadataFile: expected, lastUpdatedMs: base.lastUpdatedMs });
    const newLocation = checkedLocation(newMetadataFileLocation(metadata, metadataFileVersion(expected) + 1));
    const written = await this.writeMetadataFile(newLocation, metadata);

    let changed: number;
    try {
      changed = await this.driver.execute(SQL.commit, [newLocation, expected, ...this.keyOf(table), expected]);
    } catch (err) {
      if (this.driver.classifyError(err) !== 'unavailable') {
        // The statement itself failed, so the pointer did not move and the new file is an orphan.
        await this.deleteQuietly(newLocation);
        throw err;
      }
      // The connection failed mid-statement: the UPDATE may have committed. Read the pointer back to find out.
      const current = await this.pointerOf(table).catch(() => {
        throw new CommitStateUnknownError(this.name, table.display, newLocation, { cause: err });
      });
      if (current?.metadataLocation !== newLocation) {
        throw new CommitStateUnknownError(this.name, table.display, newLocation, { cause: err });
      }
      changed = 1;
    }
    if (changed === 1) {
      return {
        identifier: toIdentifier(table),
        metadataLocation: newLocation,
        previousMetadataLocation: expected,
        metadata: written,
      };
    }
    await this.deleteQuietly(newLocation);
    const current = await this.pointerOf(table);
    if (current === undefined) throw new NoSuchTableError(this.name, table.display);
    throw new CommitConflictError(this.name, table.display, expected, current.metadataLocation ?? undefined);
  }

  /**
   * Loads the table, applies `update` to its current metadata and commits; on a {@link CommitConflictError} it
   * waits (exponential backoff with jitter), reloads and re-applies `update` to the fresher metadata, up to
   * `maxAttempts` times. `update` must therefore be a function of the metadata it is given. Returning the very
   * same metadata object commits nothing.
   *
   * @throws CommitConflictError after `maxAttempts` lost races (retryable later, as a whole).
   */
  async commitWithRetry(
    identifier: TableIdentifierInput,
    update: (current: TableMetadata, attempt: CommitAttempt) => TableMetadata | Promise<TableMetadata>,
    options: CommitRetryOptions = {},
  ): Promise<LoadedTable> {
    const maxAttempts = options.maxAttempts ?? 5;
    const minWaitMs = options.minWaitMs ?? 100;
    const maxWaitMs = options.maxWaitMs ?? 5000;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new RangeError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
    }
    for (let attempt = 1; ; attempt++) {
      const current = await this.loadTable(identifier);
      const next = await update(current.metadata, { attempt, metadataLocation: current.metadataLocation });
      if (next === current.metadata) return current;
      try {
        return await this.commitTable(identifier, {
          expectedMetadataLocation: current.metadataLocation,
          newMetadata: next,
          baseMetadata: current.metadata,
        });
      } catch (err) {
        if (!(err instanceof CommitConflictError)) throw err;
        if (attempt >= maxAttempts) {
          throw new CommitConflictError(
            this.name,
            err.table,
            err.expectedMetadataLocation,
            err.currentMetadataLocation,
            attempt,
          );
        }
        const ceiling = Math.min(maxWaitMs, minWaitMs * 2 ** (attempt - 1));
        // Jitter spreads out writers that lost the same race, so they do not collide again in lockstep.
        await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + (Math.random() * ceiling) / 2));
      }
    }
  }

  // ---- internals ----------------------------------------------------------------------------------------------

  /** Runs database work, turning "database unavailable" errors into {@link CatalogUnavailableError}. */
  private async sql<T>(operation: string, work: (db: CatalogDriver) => Promise<T>): Promise<T> {
    try {
      return await work(this.driver);
    } catch (err) {
      if (this.driver.classifyError(err) === 'unavailable') {
        throw new CatalogUnavailableError(this.name, operation, { cause: err });
      }
      throw err;
    }
  }

  private keyOf(table: ResolvedTable): SqlValue[] {
    return [this.name, table.namespace.joined, table.name];
  }

  private async namespaceExistsIn(db: SqlExecutor, ns: ResolvedNamespace): Promise<boolean> {
    const children = `${escapeLike(ns.joined)}.%`;
    const rows = await db.query(SQL.namespaceAndChildren, [
      this.name,
      ns.joined,
      children,
      this.name,
      ns.joined,
      children,
    ]);
    // SQLite's LIKE ignores ASCII case; the exact check here does not.
    return rows.some((r) => String(r.ns) === ns.joined || String(r.ns).startsWith(`${ns.joined}.`));
  }

  private async requireNamespace(ns: ResolvedNamespace): Promise<void> {
    const exists = await this.sql(`checking namespace "${ns.joined}"`, (db) => this.namespaceExistsIn(db, ns));
    if (!exists) throw new NoSuchNamespaceError(this.name, ns.joined);
  }

  /** The table's row, or `undefined` when there is no table (views excluded). */
  private async pointerOf(
    table: ResolvedTable,
  ): Promise<{ metadataLocation: string | null; previousMetadataLocation: string | null } | undefined> {
    const rows = await this.sql(`loading table "${table.display}"`, (db) =>
      db.query(SQL.selectTable, this.keyOf(table)),
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      metadataLocation: row.metadata_location === null ? null : String(row.metadata_location),
      previousMetadataLocation: row.previous_metadata_location === null ? null : String(row.previous_metadata_location),
    };
  }

  /** Whether any row (table or view) has this name. */
  private async entryExists(table: ResolvedTable): Promise<boolean> {
    const rows = await this.sql(`checking table "${table.display}"`, (db) =>
      db.query(SQL.selectAnyEntry, this.keyOf(table)),
    );
    return rows.length > 0;
  }

  private async defaultTableLocation(table: ResolvedTable): Promise<string> {
    for (const part of [...table.namespace.levels, table.name]) {
      if (part.includes('/') || part === '..') {
        throw new InvalidIdentifierError(
          table.display,
          `"${part}" cannot be a directory of the default table location; pass an explicit location`,
        );
      }
    }
    const rows = await this.sql(`loading properties of namespace "${table.namespace.joined}"`, (db) =>
      db.query(SQL.selectProperties, [this.name, table.namespace.joined]),
    );
    const namespaceLocation = rows.find((r) => r.property_key === NAMESPACE_LOCATION_PROPERTY)?.property_value;
    if (typeof namespaceLocation === 'string' && namespaceLocation !== '') {
      return `${absoluteLocation(namespaceLocation)}/${table.name}`;
    }
    return `${this.warehouse}/${table.namespace.levels.join('/')}/${table.name}`;
  }

  private async readMetadataFile(
    table: ResolvedTable,
    location: string,
    previous: string | null,
  ): Promise<TableMetadata> {
    let bytes: Uint8Array;
    try {
      bytes = await this.io.read(location);
    } catch (err) {
      if (err instanceof FileNotFoundError) {
        throw new MissingMetadataFileError(this.name, table.display, location, previous ?? undefined, { cause: err });
      }
      throw err;
    }
    return parseTableMetadata(decodeMetadataFile(bytes, location), location);
  }

  /** The metadata a commit replaces, read from its file; a vanished file usually means a newer commit won. */
  private async readBaseMetadata(table: ResolvedTable, expected: string): Promise<TableMetadata> {
    try {
      return await this.readMetadataFile(table, expected, null);
    } catch (err) {
      if (!(err instanceof MissingMetadataFileError)) throw err;
      const current = await this.pointerOf(table);
      if (current === undefined) throw new NoSuchTableError(this.name, table.display);
      if (current.metadataLocation !== expected) {
        throw new CommitConflictError(this.name, table.display, expected, current.metadataLocation ?? undefined);
      }
      throw err;
    }
  }

  /** Serializes, re-parses as a self-check, and writes atomically; returns the metadata as a reader will see it. */
  private async writeMetadataFile(location: string, metadata: TableMetadata): Promise<TableMetadata> {
    const text = serializeTableMetadata(metadata);
    const parsed = parseTableMetadata(text, location);
    await this.io.write(location, text);
    return parsed;
  }

  private async deleteQuietly(uri: string): Promise<void> {
    // Best effort: a leftover metadata file is an orphan that maintenance removes; the caller's error matters more.
    await this.io.delete(uri).catch(() => undefined);
  }

  private checkPurgeable(table: ResolvedTable, location: string): void {
    const normalized = location.replace(/\/+$/, '');
    const isStoreRoot =
      schemeOf(normalized) === 's3' ? parseS3Uri(normalized).key === '' : toFileUri(normalized, '/') === 'file:///';
    if (isStoreRoot || normalized === this.warehouse || `${this.warehouse}/`.startsWith(`${normalized}/`)) {
      throw new InvalidTableConfigError(
        'location',
        `refusing to purge table "${table.display}": its location "${location}" is ${
          isStoreRoot ? 'the root of its store' : `the warehouse "${this.warehouse}" or one of its parents`
        }, so a purge would delete other tables' files; drop it without purge and delete its files yourself`,
      );
    }
  }

  private async purgeFiles(loaded: LoadedTable): Promise<number> {
    const files = new Set<string>();
    for await (const file of this.io.list(`${loaded.metadata.location.replace(/\/+$/, '')}/`)) files.add(file.uri);
    // Metadata and manifest lists may live outside the location (write.metadata.path); the metadata names them.
    files.add(loaded.metadataLocation);
    for (const entry of loaded.metadata.metadataLog) files.add(entry.metadataFile);
    for (const snapshot of loaded.metadata.snapshots) files.add(snapshot.manifestList);
    await this.io.deleteMany(files);
    return files.size;
  }
}

/** An absolute URI for a location: local paths and `file:` URIs become `file:///abs`, trailing slashes go. */
function absoluteLocation(location: string): string {
  return schemeOf(location) === 'file' ? toFileUri(location, process.cwd()) : location.replace(/\/+$/, '');
}

function checkedLocation(location: string): string {
  if ([...location].length > MAX_LOCATION_LENGTH) {
    throw new InvalidTableConfigError(
      'location',
      `the metadata file location "${location}" is longer than the catalog's ${MAX_LOCATION_LENGTH}-character ` +
        'metadata_location column; use a shorter table location',
    );
  }
  return location;
}

function checkProperties(namespace: string, properties: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(properties)) {
    if (key === '' || [...key].length > MAX_NAME_LENGTH) {
      throw new InvalidNamespacePropertiesError(namespace, `property keys need 1 to ${MAX_NAME_LENGTH} characters`);
    }
    if (typeof value !== 'string') {
      throw new InvalidNamespacePropertiesError(namespace, `the value of "${key}" must be a string`);
    }
    if ([...value].length > MAX_PROPERTY_VALUE_LENGTH) {
      throw new InvalidNamespacePropertiesError(
        namespace,
        `the value of "${key}" is longer than ${MAX_PROPERTY_VALUE_LENGTH} characters`,
      );
    }
    if (key.includes('\0') || value.includes('\0')) {
      throw new InvalidNamespacePropertiesError(namespace, `"${key}" contains a NUL character`);
    }
  }
}

function toIdentifier(table: ResolvedTable): TableIdentifier {
  return { namespace: [...table.namespace.levels], name: table.name };
}

function listing(names: readonly string[], noun: string): string {
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
  return `${names.length} ${noun}${names.length === 1 ? '' : 's'} (${shown})`;
}

// Code-unit order, the same in every locale, so listings are stable across machines.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
