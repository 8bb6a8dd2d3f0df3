import { randomUUID } from 'node:crypto';
import type { FileIO } from '../storage/file-io.js';
import { writeAddedManifest } from '../iceberg/append.js';
import { metadataDirectory } from '../iceberg/catalog/metadata-location.js';
import type { SqlCatalog } from '../iceberg/catalog/sql-catalog.js';
import type { DataFile } from '../iceberg/data-file.js';
import { assignManifestSequenceNumbers, writeManifestList } from '../iceberg/manifest-list.js';
import { currentSchema, currentSnapshot, newSnapshotId, type TableMetadata } from '../iceberg/metadata-json.js';
import { buildPartitionSpec, specsEquivalent } from '../iceberg/partition-spec.js';
import {
  addSnapshot,
  nextSequenceNumber,
  noChanges,
  setCurrentSchema,
  snapshotSummary,
  updateProperties,
} from '../iceberg/table-update.js';
import { isPrimitive, typesEqual, type IcebergType, type NestedField, type Schema } from '../iceberg/types.js';

/**
 * Re-bootstrapping a CDC table in place: the table keeps its identity and history, and one `overwrite` snapshot
 * replaces its whole content with a new copy of the source, under the source's current schema and key. Older
 * snapshots stay readable (time travel, incremental readers) until snapshot expiry removes them, as for any other
 * commit; nothing is dropped.
 *
 * Field ids: a column whose name and type (nested types by shape) did not change keeps its ids, so that old partition
 * specs and readers that resolve old files by id keep working, and an unchanged source reuses the current schema;
 * every other column gets new ids above `last-column-id`, so that no old file's values are read as a changed
 * column.
 */

/** What {@link prepareRebootstrap} decided: the metadata the copy's files are written under. */
export interface PreparedRebootstrap {
  /** The table's metadata with the new current schema, default spec and properties (not committed). */
  readonly metadata: TableMetadata;
  /** The metadata it was derived from; the commit refuses if the table's schemas or specs changed since. */
  readonly base: TableMetadata;
}

/**
 * The metadata for a re-bootstrap of `base`: `schema` (fresh ids from the source's definition, identifier fields
 * = the key) as the current schema with ids reused as described above, `bucket(numBuckets, column)` on
 * `bucketColumn` (or unpartitioned) as the default spec (an equivalent existing spec is reused), and the property
 * changes applied.
 */
export function prepareRebootstrap(
  base: TableMetadata,
  schema: Schema,
  partition: { bucketColumn?: string; numBuckets?: number },
  propertyChanges: Record<string, string | undefined>,
): PreparedRebootstrap {
  const old = currentSchema(base);
  let next = base.lastColumnId;
  const fresh = (type: IcebergType): IcebergType => {
    switch (type.kind) {
      case 'struct':
        return { kind: 'struct', fields: type.fields.map((f) => ({ ...f, id: ++next, type: fresh(f.type) })) };
      case 'list':
        return { ...type, elementId: ++next, element: fresh(type.element) };
      case 'map':
        return { ...type, keyId: ++next, key: fresh(type.key), valueId: ++next, value: fresh(type.value) };
      default:
        return type;
    }
  };
  const idByName = new Map<string, number>();
  const fields: NestedField[] = schema.fields.map((field) => {
    const previous = old.fields.find((f) => f.name === field.name);
    const keep = previous !== undefined && sameShape(previous.type, field.type);
    const id = keep ? previous.id : ++next;
    idByName.set(field.name, id);
    return { ...field, id, type: keep ? previous.type : fresh(field.type) };
  });
  const keyNames = schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)!.name);
  const newSchema: Schema = {
    schemaId: 0, // assigned by setCurrentSchema
    identifierFieldIds: keyNames.map((name) => idByName.get(name)!),
    fields,
  };
  let metadata = setCurrentSchema(base, newSchema, next);

  const specId = Math.max(...base.partitionSpecs.map((s) => s.specId)) + 1;
  const built = buildPartitionSpec({
    schema: currentSchema(metadata),
    specId,
    fields:
      partition.bucketColumn && partition.numBuckets
        ? [{ sourceColumn: partition.bucketColumn, transform: `bucket[${partition.numBuckets}]` }]
        : [],
    lastPartitionId: base.lastPartitionId,
    existingSpecs: base.partitionSpecs,
  });
  const same = base.partitionSpecs.find((s) => specsEquivalent(s, built.spec) && sameFieldIds(s, built.spec));
  metadata = same
    ? { ...metadata, defaultSpecId: same.specId }
    : {
        ...metadata,
        partitionSpecs: [...metadata.partitionSpecs, built.spec],
        defaultSpecId: built.spec.specId,
        lastPartitionId: Math.max(metadata.lastPartitionId, built.lastPartitionId),
      };
  metadata = updateProperties(metadata, propertyChanges);
  return { metadata, base };
}

/** Whether two types are the same apart from nested field ids (those of `a` are kept when they are). */
function sameShape(a: IcebergType, b: IcebergType): boolean {
  if (isPrimitive(a) || isPrimitive(b)) return isPrimitive(a) && isPrimitive(b) && typesEqual(a, b);
  switch (a.kind) {
    case 'struct':
      return (
        b.kind === 'struct' &&
        a.fields.length === b.fields.length &&
        a.fields.every((f, i) => {
          const g = b.fields[i]!;
          return f.name === g.name && f.required === g.required && sameShape(f.type, g.type);
        })
      );
    case 'list':
      return b.kind === 'list' && a.elementRequired === b.elementRequired && sameShape(a.element, b.element);
    case 'map':
      return (
        b.kind === 'map' &&
        a.valueRequired === b.valueRequired &&
        sameShape(a.key, b.key) &&
        sameShape(a.value, b.value)
      );
  }
}

function sameFieldIds(a: { fields: readonly { sourceId: number }[] }, b: { fields: readonly { sourceId: number }[] }) {
  return a.fields.length === b.fields.length && a.fields.every((f, i) => f.sourceId === b.fields[i]!.sourceId);
}

/** The table changed its schemas or specs since {@link prepareRebootstrap}: the copy's files no longer fit. */
export class RebootstrapConflictError extends Error {
  override readonly name = 'RebootstrapConflictError';
}

/**
 * Commits the re-bootstrap: the prepared schema, spec and properties, and one `overwrite` snapshot whose manifest
 * list holds only `dataFiles` (written under `prepared.metadata`), carrying `snapshotProperties` (the watermark).
 * The previous snapshot's files are no longer in the current snapshot but stay in the older snapshots. The
 * summary reports the previous content as removed (from the parent's totals), so the totals describe the copy.
 *
 * @returns the new snapshot's id.
 * @throws RebootstrapConflictError when the table's schemas or specs changed since the preparation.
 */
export async function commitRebootstrap(
  catalog: SqlCatalog,
  io: FileIO,
  icebergTable: string,
  prepared: PreparedRebootstrap,
  dataFiles: readonly DataFile[],
  snapshotProperties: Record<string, string>,
): Promise<bigint> {
  const snapshotId = newSnapshotId(prepared.base.snapshots.map((s) => s.snapshotId));
  const added =
    dataFiles.length > 0 ? [await writeAddedManifest(io, prepared.metadata, snapshotId, dataFiles, 'data')] : [];
  await catalog.commitWithRetry(icebergTable, async (current, attempt) => {
    const base = prepared.base;
    if (
      current.lastColumnId !== base.lastColumnId ||
      current.lastPartitionId !== base.lastPartitionId ||
      current.schemas.length !== base.schemas.length ||
      current.partitionSpecs.length !== base.partitionSpecs.length ||
      current.snapshots.some((s) => s.snapshotId === snapshotId)
    ) {
      throw new RebootstrapConflictError(
        `table "${icebergTable}" changed its schema or partitioning while it was re-bootstrapped; run it again`,
      );
    }
    const parent = currentSnapshot(current);
    const totals: Readonly<Record<string, string>> = parent?.summary ?? {};
    const count = (key: string) => BigInt(totals[key] ?? '0');
    const next: TableMetadata = {
      ...current,
      schemas: prepared.metadata.schemas,
      currentSchemaId: prepared.metadata.currentSchemaId,
      lastColumnId: prepared.metadata.lastColumnId,
      partitionSpecs: prepared.metadata.partitionSpecs,
      defaultSpecId: prepared.metadata.defaultSpecId,
      lastPartitionId: prepared.metadata.lastPartitionId,
      properties: prepared.metadata.properties,
    };
    const sequenceNumber = nextSequenceNumber(next);
    const list = writeManifestList({
      snapshotId,
      parentSnapshotId: parent?.snapshotId ?? null,
      sequenceNumber,
      manifests: assignManifestSequenceNumbers(added, { snapshotId, sequenceNumber }),
    });
    const listPath = `${metadataDirectory(current)}/snap-${snapshotId}-${attempt.attempt}-${randomUUID()}.avro`;
    await io.write(listPath, list.bytes);
    const changes = {
      ...noChanges(),
      addedDataFiles: dataFiles.length,
      addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
      addedFilesSize: dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
      removedDataFiles: Number(count('total-data-files')),
      removedRecords: count('total-records'),
      removedFilesSize: count('total-files-size'),
      // CDC tables hold position deletes only (merge-on-read upserts).
      removedPositionDeleteFiles: Number(count('total-delete-files')),
      removedPositionDeletes: count('total-position-deletes'),
    };
    return addSnapshot(next, {
      snapshotId,
      manifestList: listPath,
      summary: snapshotSummary('overwrite', changes, parent?.summary, snapshotProperties),
      timestampMs: BigInt(Date.now()),
      schemaId: prepared.metadata.currentSchemaId,
    });
  });
  return snapshotId;
}
