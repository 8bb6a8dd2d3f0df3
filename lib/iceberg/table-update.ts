/**
 * Pure updates of table metadata: the steps a commit applies to the current metadata before the catalog swaps the
 * pointer. No I/O here; a commit that loses its race re-applies the same steps to the fresher metadata.
 */
import type { Schema } from './types.js';
import { InvalidTableConfigError } from './errors.js';
import {
  MAIN_BRANCH,
  type MetadataLogEntry,
  type Snapshot,
  type SnapshotOperation,
  type SnapshotSummary,
  type TableMetadata,
} from './metadata-json.js';
import { schemasEquivalent } from './schema-evolution.js';

/** `write.metadata.previous-versions-max`: how many earlier metadata files the log keeps. @default 100 */
export const PREVIOUS_VERSIONS_MAX_PROPERTY = 'write.metadata.previous-versions-max';
const DEFAULT_PREVIOUS_VERSIONS_MAX = 100;

/** What a new snapshot needs; the sequence number is assigned here. */
export interface NewSnapshot {
  snapshotId: bigint;
  /** The manifest list written for this snapshot. */
  manifestList: string;
  summary: SnapshotSummary;
  /** @default the current snapshot of `main` */
  parentSnapshotId?: bigint | null;
  timestampMs: bigint;
  /** @default the current schema id */
  schemaId?: number;
}

/** The sequence number the next snapshot gets: one more than `last-sequence-number`. */
export function nextSequenceNumber(metadata: TableMetadata): bigint {
  return metadata.lastSequenceNumber + 1n;
}

/**
 * Adds a snapshot on `main`: sequence number `last-sequence-number + 1`, `current-snapshot-id`, the `main` ref and
 * the snapshot log all move to it.
 */
export function addSnapshot(metadata: TableMetadata, snap: NewSnapshot): TableMetadata {
  if (metadata.snapshots.some((s) => s.snapshotId === snap.snapshotId)) {
    throw new InvalidTableConfigError('snapshot-id', `${snap.snapshotId} already exists in table ${metadata.location}`);
  }
  const sequenceNumber = nextSequenceNumber(metadata);
  const parent = snap.parentSnapshotId === undefined ? metadata.currentSnapshotId : snap.parentSnapshotId;
  const snapshot: Snapshot = {
    snapshotId: snap.snapshotId,
    ...(parent !== null ? { parentSnapshotId: parent } : {}),
    sequenceNumber,
    timestampMs: snap.timestampMs,
    manifestList: snap.manifestList,
    summary: snap.summary,
    schemaId: snap.schemaId ?? metadata.currentSchemaId,
  };
  const existingMain = metadata.refs[MAIN_BRANCH];
  return {
    ...metadata,
    lastSequenceNumber: sequenceNumber,
    lastUpdatedMs: snap.timestampMs > metadata.lastUpdatedMs ? snap.timestampMs : metadata.lastUpdatedMs,
    currentSnapshotId: snap.snapshotId,
    snapshots: [...metadata.snapshots, snapshot],
    refs: { ...metadata.refs, [MAIN_BRANCH]: { ...existingMain, snapshotId: snap.snapshotId, type: 'branch' } },
    snapshotLog: [...metadata.snapshotLog, { timestampMs: snap.timestampMs, snapshotId: snap.snapshotId }],
  };
}

/**
 * Records the metadata file being replaced in `metadata-log`, keeping at most `write.metadata.previous-versions-max`
 * entries (oldest dropped first), as Java does on every commit.
 */
export function recordPreviousMetadata(
  metadata: TableMetadata,
  previous: { metadataFile: string; lastUpdatedMs: bigint },
): TableMetadata {
  const raw = metadata.properties[PREVIOUS_VERSIONS_MAX_PROPERTY];
  const max = raw === undefined ? DEFAULT_PREVIOUS_VERSIONS_MAX : Number(raw);
  if (!Number.isInteger(max) || max < 1) {
    throw new InvalidTableConfigError(
      `property ${PREVIOUS_VERSIONS_MAX_PROPERTY}`,
      `"${raw}" must be a positive integer (table ${metadata.location})`,
    );
  }
  const log: MetadataLogEntry[] = [
    ...metadata.metadataLog,
    { timestampMs: previous.lastUpdatedMs, metadataFile: previous.metadataFile },
  ];
  return { ...metadata, metadataLog: log.slice(Math.max(0, log.length - max)) };
}

/**
 * Makes `schema` current, reusing an equivalent existing schema (same fields and ids) instead of adding a copy.
 * New schemas get the next schema id; `last-column-id` grows to cover their fields.
 */
export function setCurrentSchema(metadata: TableMetadata, schema: Schema, lastColumnId: number): TableMetadata {
  const existing = metadata.schemas.find((s) => schemasEquivalent(s, schema));
  if (existing)
    return {
      ...metadata,
      currentSchemaId: existing.schemaId,
      lastColumnId: Math.max(metadata.lastColumnId, lastColumnId),
    };
  const schemaId = Math.max(...metadata.schemas.map((s) => s.schemaId)) + 1;
  return {
    ...metadata,
    schemas: [...metadata.schemas, { ...schema, schemaId }],
    currentSchemaId: schemaId,
    lastColumnId: Math.max(metadata.lastColumnId, lastColumnId),
  };
}

/** Sets or removes table properties (`undefined` removes a key). */
export function updateProperties(metadata: TableMetadata, changes: Record<string, string | undefined>): TableMetadata {
  const properties: Record<string, string> = { ...metadata.properties };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete properties[key];
    else properties[key] = value;
  }
  return { ...metadata, properties };
}

/** What a snapshot changed, in files, records and bytes; the input of {@link snapshotSummary}. */
export interface SnapshotChanges {
  addedDataFiles: number;
  addedRecords: bigint;
  addedFilesSize: bigint;
  removedDataFiles: number;
  removedRecords: bigint;
  removedFilesSize: bigint;
  addedPositionDeleteFiles: number;
  addedPositionDeletes: bigint;
  removedPositionDeleteFiles: number;
  removedPositionDeletes: bigint;
  addedEqualityDeleteFiles: number;
  addedEqualityDeletes: bigint;
  removedEqualityDeleteFiles: number;
  removedEqualityDeletes: bigint;
}

/** A `SnapshotChanges` with every count at zero. */
export function noChanges(): SnapshotChanges {
  return {
    addedDataFiles: 0,
    addedRecords: 0n,
    addedFilesSize: 0n,
    removedDataFiles: 0,
    removedRecords: 0n,
    removedFilesSize: 0n,
    addedPositionDeleteFiles: 0,
    addedPositionDeletes: 0n,
    removedPositionDeleteFiles: 0,
    removedPositionDeletes: 0n,
    addedEqualityDeleteFiles: 0,
    addedEqualityDeletes: 0n,
    removedEqualityDeleteFiles: 0,
    removedEqualityDeletes: 0n,
  };
}

function total(parent: SnapshotSummary | undefined, key: string, delta: bigint): string | undefined {
  const before = parent?.[key];
  // Java stops tracking a total once any parent lacks it; so do we, rather than report a wrong number.
  if (parent !== undefined && before === undefined) return undefined;
  return String(BigInt(before ?? '0') + delta);
}

/**
 * Builds a snapshot summary with Java's metric names (`added-data-files`, `total-records`, …), totals carried from
 * the parent's summary, and any custom properties (e.g. a CDC watermark) after them.
 */
export function snapshotSummary(
  operation: SnapshotOperation,
  changes: SnapshotChanges,
  parent: SnapshotSummary | undefined,
  custom: Record<string, string> = {},
): SnapshotSummary {
  const c = changes;
  const out: Record<string, string> = { operation };
  const put = (key: string, value: number | bigint) => {
    if (BigInt(value) !== 0n) out[key] = String(value);
  };
  put('added-data-files', c.addedDataFiles);
  put('deleted-data-files', c.removedDataFiles);
  put('added-records', c.addedRecords);
  put('deleted-records', c.removedRecords);
  put('added-files-size', c.addedFilesSize);
  put('removed-files-size', c.removedFilesSize);
  put('added-delete-files', c.addedPositionDeleteFiles + c.addedEqualityDeleteFiles);
  put('removed-delete-files', c.removedPositionDeleteFiles + c.removedEqualityDeleteFiles);
  put('added-position-delete-files', c.addedPositionDeleteFiles);
  put('removed-position-delete-files', c.removedPositionDeleteFiles);
  put('added-position-deletes', c.addedPositionDeletes);
  put('removed-position-deletes', c.removedPositionDeletes);
  put('added-equality-delete-files', c.addedEqualityDeleteFiles);
  put('removed-equality-delete-files', c.removedEqualityDeleteFiles);
  put('added-equality-deletes', c.addedEqualityDeletes);
  put('removed-equality-deletes', c.removedEqualityDeletes);
  const totals: [string, bigint][] = [
    ['total-records', c.addedRecords - c.removedRecords],
    ['total-files-size', c.addedFilesSize - c.removedFilesSize],
    ['total-data-files', BigInt(c.addedDataFiles - c.removedDataFiles)],
    [
      'total-delete-files',
      BigInt(
        c.addedPositionDeleteFiles +
          c.addedEqualityDeleteFiles -
          c.removedPositionDeleteFiles -
          c.removedEqualityDeleteFiles,
      ),
    ],
    ['total-position-deletes', c.addedPositionDeletes - c.removedPositionDeletes],
    ['total-equality-deletes', c.addedEqualityDeletes - c.removedEqualityDeletes],
  ];
  for (const [key, delta] of totals) {
    const value = total(parent, key, delta);
    if (value !== undefined) out[key] = value;
  }
  for (const [key, value] of Object.entries(custom)) {
    if (key === 'operation')
      throw new InvalidTableConfigError('snapshot summary', 'a custom property may not be named "operation"');
    out[key] = value;
  }
  return out as SnapshotSummary;
}
