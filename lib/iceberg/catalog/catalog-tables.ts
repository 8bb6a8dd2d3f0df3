import type { CatalogDriver } from './sql-driver.js';

/**
 * The JDBC-catalog tables, as Iceberg Java's `JdbcCatalog` (schema V1) and pyiceberg's `SqlCatalog` define them:
 * same names, columns, types and primary keys, so that both read and write what Sluice commits. `iceberg_type`
 * (`TABLE` or `VIEW`) is Java's V1 column; pyiceberg ignores it. The namespace property key and value are
 * `NOT NULL` as pyiceberg declares them (Java never writes NULLs there).
 */
export const CREATE_TABLES_SQL =
  'CREATE TABLE IF NOT EXISTS iceberg_tables (' +
  'catalog_name VARCHAR(255) NOT NULL, ' +
  'table_namespace VARCHAR(255) NOT NULL, ' +
  'table_name VARCHAR(255) NOT NULL, ' +
  'metadata_location VARCHAR(1000), ' +
  'previous_metadata_location VARCHAR(1000), ' +
  'iceberg_type VARCHAR(5), ' +
  'PRIMARY KEY (catalog_name, table_namespace, table_name))';

/** See {@link CREATE_TABLES_SQL}. */
export const CREATE_NAMESPACE_PROPERTIES_SQL =
  'CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (' +
  'catalog_name VARCHAR(255) NOT NULL, ' +
  'namespace VARCHAR(255) NOT NULL, ' +
  'property_key VARCHAR(255) NOT NULL, ' +
  'property_value VARCHAR(1000) NOT NULL, ' +
  'PRIMARY KEY (catalog_name, namespace, property_key))';

/** Java's V0→V1 migration: tables created by pyiceberg before 0.12 or by Java in V0 mode lack `iceberg_type`. */
export const ADD_ICEBERG_TYPE_SQL = 'ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)';

/** Column limits of the tables above; checked before writing because SQLite does not enforce `VARCHAR(n)`. */
export const MAX_NAME_LENGTH = 255;
export const MAX_LOCATION_LENGTH = 1000;
export const MAX_PROPERTY_VALUE_LENGTH = 1000;

/**
 * Creates the catalog tables when they are missing, and adds `iceberg_type` to an `iceberg_tables` that lacks it.
 * Safe to run from several processes at once: a concurrent creator's "already exists" is ignored.
 */
export async function ensureCatalogTables(driver: CatalogDriver): Promise<void> {
  const tableColumns = await driver.columnsOf('iceberg_tables');
  if (tableColumns === undefined) {
    await ignoringRace(driver, () => driver.execute(CREATE_TABLES_SQL));
  } else if (!tableColumns.includes('iceberg_type')) {
    await ignoringRace(driver, () => driver.execute(ADD_ICEBERG_TYPE_SQL));
  }
  if ((await driver.columnsOf('iceberg_namespace_properties')) === undefined) {
    await ignoringRace(driver, () => driver.execute(CREATE_NAMESPACE_PROPERTIES_SQL));
  }
}

/** Which catalog tables are missing (for a clear error when the caller asked not to create them). */
export async function missingCatalogTables(driver: CatalogDriver): Promise<string[]> {
  const missing: string[] = [];
  for (const table of ['iceberg_tables', 'iceberg_namespace_properties']) {
    if ((await driver.columnsOf(table)) === undefined) missing.push(table);
  }
  return missing;
}

async function ignoringRace(driver: CatalogDriver, ddl: () => Promise<unknown>): Promise<void> {
  try {
    await ddl();
  } catch (err) {
    // Postgres: two concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog's type index (23505),
    // and ADD COLUMN collides as 42701; SQLite reports a duplicate column by message.
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
    const message = err instanceof Error ? err.message : '';
    const lostRace =
      driver.classifyError(err) === 'unique-violation' ||
      code === '42P07' ||
      code === '42701' ||
      /already exists|duplicate column/i.test(message);
    if (!lostRace) throw err;
  }
}
