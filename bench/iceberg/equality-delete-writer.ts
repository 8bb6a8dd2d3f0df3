/**
 * BENCH-ONLY: applies a change batch as equality deletes plus inserts, the way Flink's upsert mode writes a table.
 * Sluice's engine never writes equality deletes (lib/iceberg/upsert.ts writes position deletes); this writer exists
 * only so that bench/iceberg/run.ts can give Spark the equality-delete table the scan benchmark compares against.
 * Do not import it outside bench/.
 *
 * Per batch: every changed key (update, insert or delete) goes into an equality-delete file of its partition
 * (Parquet with the key column only, `content = 2`, `equality_ids = [1]`), and the after-images of updates and
 * inserts are appended as data files, all in one `overwrite` snapshot. An equality delete applies to data files
 * with a smaller data sequence number, so the after-images committed with it stay live.
 */
import { randomUUID } from 'node:crypto';
import type { FileIO } from '../../lib/storage/file-io.js';
import { commitNewManifests, dataDirectory, writeAddedManifest, writeDataFiles } from '../../lib/iceberg/append.js';
import type { SqlCatalog } from '../../lib/iceberg/catalog/sql-catalog.js';
import type { DataFile, PartitionValue } from '../../lib/iceberg/data-file.js';
import { currentSchema, defaultPartitionSpec, newSnapshotId } from '../../lib/iceberg/metadata-json.js';
import { writeParquetDataFile, type ColumnValues } from '../../lib/iceberg/parquet/index.js';
import { partitionPath, partitionValues } from '../../lib/iceberg/partition-spec.js';
import { noChanges, type SnapshotChanges } from '../../lib/iceberg/table-update.js';
import type { ChangeOp } from '../../lib/iceberg/upsert.js';
import type { PrimitiveValue } from '../../lib/iceberg/values.js';

/** What {@link upsertWithEqualityDeletes} committed. */
export interface EqualityUpsertResult {
  snapshotId: bigint;
  dataFiles: DataFile[];
  deleteFiles: DataFile[];
}

/**
 * Commits one change batch on a table whose identifier is a single top-level column: equality deletes of every
 * changed key, and the after-images of the upserts. Keys must be distinct within the batch.
 */
export async function upsertWithEqualityDeletes(
  catalog: SqlCatalog,
  io: FileIO,
  table: string,
  changes: { columns: ReadonlyMap<number, ColumnValues>; ops: readonly ChangeOp[] },
): Promise<EqualityUpsertResult> {
  const { metadata } = await catalog.loadTable(table);
  const schema = currentSchema(metadata);
  const spec = defaultPartitionSpec(metadata);
  const [keyId, ...more] = schema.identifierFieldIds;
  if (keyId === undefined || more.length > 0) {
    throw new Error(`table "${table}" needs exactly one identifier field for this bench-only writer`);
  }
  const keyField = schema.fields.find((f) => f.id === keyId)!;
  const keys = changes.columns.get(keyId);
  if (!keys) throw new Error(`the changes for "${table}" have no key column (field id ${keyId})`);

  // Equality-delete files, one per partition of the changed keys.
  const byPartition = new Map<string, { partition: PartitionValue[]; keys: unknown[] }>();
  for (let r = 0; r < changes.ops.length; r++) {
    const partition = partitionValues(spec, schema, (fieldId) =>
      fieldId === keyId ? (keys[r] as PrimitiveValue) : null,
    );
    const id = JSON.stringify(partition, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    const group = byPartition.get(id) ?? { partition, keys: [] };
    group.keys.push(keys[r]);
    byPartition.set(id, group);
  }
  const writeId = randomUUID();
  const deleteFiles: DataFile[] = [];
  let index = 0;
  for (const group of byPartition.values()) {
    const written = await writeParquetDataFile({
      schema: { fields: [keyField] },
      columns: new Map([[keyId, group.keys]]),
      rowCount: group.keys.length,
    });
    const dir = spec.fields.length ? `/${partitionPath(spec, schema, group.partition)}` : '';
    const filePath = `${dataDirectory(metadata)}${dir}/${String(index++).padStart(5, '0')}-${writeId}-eq-deletes.parquet`;
    await io.write(filePath, written.bytes);
    deleteFiles.push({
      content: 'equality-deletes',
      filePath,
      fileFormat: 'PARQUET',
      partition: group.partition,
      specId: spec.specId,
      recordCount: written.recordCount,
      fileSizeInBytes: BigInt(written.bytes.length),
      ...written.metrics,
      equalityIds: [keyId],
    });
  }

  // After-images of updates and inserts.
  const upserts: number[] = [];
  changes.ops.forEach((op, r) => op === 'upsert' && upserts.push(r));
  const dataFiles = upserts.length
    ? await writeDataFiles(io, metadata, {
        columns: new Map([...changes.columns].map(([id, values]) => [id, upserts.map((r) => values[r])] as const)),
        rowCount: upserts.length,
      })
    : [];

  const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
  const manifests = [await writeAddedManifest(io, metadata, snapshotId, deleteFiles, 'deletes')];
  if (dataFiles.length) manifests.push(await writeAddedManifest(io, metadata, snapshotId, dataFiles, 'data'));
  const summary: SnapshotChanges = {
    ...noChanges(),
    addedDataFiles: dataFiles.length,
    addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
    addedFilesSize: [...dataFiles, ...deleteFiles].reduce((n, f) => n + f.fileSizeInBytes, 0n),
    addedEqualityDeleteFiles: deleteFiles.length,
    addedEqualityDeletes: deleteFiles.reduce((n, f) => n + f.recordCount, 0n),
  };
  await commitNewManifests(catalog, io, table, {
    snapshotId,
    manifests,
    operation: 'overwrite',
    changes: summary,
  });
  return { snapshotId, dataFiles, deleteFiles };
}
