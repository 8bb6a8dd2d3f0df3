import type { TableMetadata } from '../metadata-json.js';
import type { CreateTableOptions, SqlCatalog } from './sql-catalog.js';

/**
 * Loads `namespace.table`, creating it (and its namespace) first when missing. Safe when several workers do this at
 * once: a creator that loses the race loads the winner's table. The caller checks that an existing table has the
 * columns it needs.
 */
export async function loadOrCreateTable(
  catalog: SqlCatalog,
  table: string,
  options: CreateTableOptions,
): Promise<TableMetadata> {
  if (!(await catalog.tableExists(table))) {
    const ns = table.split('.').slice(0, -1);
    if (ns.length > 0 && !(await catalog.namespaceExists(ns))) {
      try {
        await catalog.createNamespace(ns);
      } catch (err) {
        if (!(await catalog.namespaceExists(ns))) throw err;
      }
    }
    try {
      return (await catalog.createTable(table, options)).metadata;
    } catch (err) {
      if (!(await catalog.tableExists(table))) throw err;
    }
  }
  return (await catalog.loadTable(table)).metadata;
}
