/**
 * The SQL catalog: Iceberg's JDBC-catalog tables on SQLite or PostgreSQL, readable by pyiceberg's `SqlCatalog` and
 * Spark's `JdbcCatalog`. See lib/iceberg/catalog/README.md.
 */
export * from './errors.js';
export * from './identifier.js';
export * from './sql-driver.js';
export * from './sqlite-driver.js';
export * from './postgres-driver.js';
export * from './catalog-tables.js';
export * from './metadata-location.js';
export * from './sql-catalog.js';
export * from './load-or-create.js';
