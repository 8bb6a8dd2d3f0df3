/**
 * The CDC base table's layout, shared by onboarding (slot and change-file sources), adding a table to a running
 * source, and re-bootstrap: the namespace, and the `bucket(N, key)` partition on the key's first bucketable column.
 */
import { NamespaceAlreadyExistsError, type SqlCatalog } from '../iceberg/catalog/index.js';
import type { PartitionFieldRequest } from '../iceberg/partition-spec.js';
import { BUCKET_SOURCE_TYPES } from '../iceberg/transforms.js';
import type { Schema } from '../iceberg/types.js';

/** The key column the table is bucketed by: the first key column of a bucketable type (none: unpartitioned). */
export function bucketColumnOf(built: {
  readonly key: readonly string[];
  readonly schema: Schema;
}): string | undefined {
  return built.key.find((name) => {
    const kind = built.schema.fields.find((f) => f.name === name)?.type.kind;
    return kind !== undefined && BUCKET_SOURCE_TYPES.has(kind);
  });
}

/** The `partitionSpec` part of a create-table request: `bucket(buckets, column)`, or nothing when unbucketed. */
export function bucketSpec(
  bucketColumn: string | undefined,
  buckets: number,
): { partitionSpec?: PartitionFieldRequest[] } {
  return bucketColumn ? { partitionSpec: [{ sourceColumn: bucketColumn, transform: `bucket[${buckets}]` }] } : {};
}

/** The namespace of `db.table` (validated by the schemas). */
export function namespaceOf(icebergTable: string): string {
  return icebergTable.slice(0, icebergTable.lastIndexOf('.'));
}

/** Creates the table's namespace unless it exists (a concurrent creation counts as existing). */
export async function ensureTableNamespace(catalog: SqlCatalog, icebergTable: string): Promise<void> {
  const namespace = namespaceOf(icebergTable);
  if (await catalog.namespaceExists(namespace)) return;
  try {
    await catalog.createNamespace(namespace);
  } catch (err) {
    if (!(err instanceof NamespaceAlreadyExistsError)) throw err;
  }
}
