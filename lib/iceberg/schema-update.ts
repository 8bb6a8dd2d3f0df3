/**
 * Commits a schema change: applies the evolution rules of `schema-evolution.ts` to the table's current schema and
 * makes the result current. Field ids never change; new columns get ids above `last-column-id`. Existing data files
 * need no rewrite: readers map columns by field id.
 */
import type { LoadedTable, SqlCatalog } from './catalog/sql-catalog.js';
import type { TableIdentifierInput } from './catalog/identifier.js';
import { currentSchema } from './metadata-json.js';
import { evolveSchema, type SchemaChange } from './schema-evolution.js';
import { setCurrentSchema } from './table-update.js';

/**
 * Applies `changes` in order and commits them in one metadata update, retrying on a lost race (the changes are
 * re-validated against the fresh schema each time).
 * @throws SchemaEvolutionError naming the column for a change the spec does not allow.
 */
export async function updateTableSchema(
  catalog: SqlCatalog,
  table: TableIdentifierInput,
  changes: readonly SchemaChange[],
): Promise<LoadedTable> {
  return catalog.commitWithRetry(table, (current) => {
    const evolved = evolveSchema({
      schema: currentSchema(current),
      lastColumnId: current.lastColumnId,
      newSchemaId: Math.max(...current.schemas.map((s) => s.schemaId)) + 1,
      changes,
    });
    return setCurrentSchema(current, evolved.schema, evolved.lastColumnId);
  });
}
