import { z } from 'zod';
import { CdcSource, IcebergTableName, Lsn, SourceName, SourceTableName } from './cdc.js';

/**
 * What an operator does to a running CDC merge (the `cdc/<source>` workflow's updates: resolve a blocked schema
 * change, forget a key, replay quarantined changes) and the per-table maintenance pipeline, with the inputs and
 * results of their activities. JSON-exact, no row data: keys travel as PostgreSQL text.
 */

/** Update names of the merge workflow. */
export const CDC_MERGE_UPDATES = {
  resolveSchemaChange: 'resolveSchemaChange',
  forget: 'forget',
  replayQuarantine: 'replayQuarantine',
  addTable: 'addTable',
} as const;

const IsoTime = z.iso.datetime();

// ---- resolveSchemaChange ----------------------------------------------------------------------------------------

/**
 * `apply`: make the Iceberg table follow what it can (a dropped column becomes optional, a narrowing keeps the wider
 * type) and merge the held changes. `skip`: accept the source as it is, leave the held changes in the quarantine.
 * `re-bootstrap`: copy the table again from the source (the held changes are superseded).
 */
export const SchemaResolution = z.enum(['apply', 'skip', 're-bootstrap']);
export type SchemaResolution = z.infer<typeof SchemaResolution>;

export const ResolveSchemaChangeRequest = z.strictObject({
  /** The blocked table: source `schema.table` or its Iceberg table. */
  table: z.string().min(1).max(255),
  action: SchemaResolution,
});
export type ResolveSchemaChangeRequest = z.infer<typeof ResolveSchemaChangeRequest>;

/** Input of the `resolveSchemaChange` activity. */
export const ResolveSchemaChangeInput = z.strictObject({
  connectionString: CdcSource.shape.connectionString,
  sourceName: SourceName,
  table: SourceTableName,
  icebergTable: IcebergTableName,
  slot: z.string().min(1),
  publication: z.string().min(1),
  action: SchemaResolution,
});
export type ResolveSchemaChangeInput = z.input<typeof ResolveSchemaChangeInput>;

export const ResolveSchemaChangeResult = z.object({
  table: z.string(),
  icebergTable: z.string(),
  action: SchemaResolution,
  /** Iceberg schema changes committed, described. */
  schemaChanges: z.array(z.string()),
  /** Held changes merged (apply), left quarantined (skip) or superseded (re-bootstrap). */
  heldChanges: z.number().int(),
  replayed: z.number().int(),
  /** Rows copied by a re-bootstrap. */
  rowsCopied: z.number().int(),
  /** The re-bootstrapped table's watermark. */
  watermark: Lsn.nullable(),
});
export type ResolveSchemaChangeResult = z.infer<typeof ResolveSchemaChangeResult>;

// ---- forget -----------------------------------------------------------------------------------------------------

export const ForgetRequest = z.strictObject({
  /** Source `schema.table` or its Iceberg table. */
  table: z.string().min(1).max(255),
  /** The key's values as PostgreSQL text, in key order (one per key column). */
  key: z.array(z.string()).min(1).max(32),
  /**
   * Purge the table's history this long after the delete instead of the merge's `forgetRetentionMs`; 0 purges at
   * once (and also covers earlier forgets of the table still waiting).
   */
  retentionMs: z
    .number()
    .int()
    .min(0)
    .max(90 * 86_400_000)
    .optional(),
});
export type ForgetRequest = z.infer<typeof ForgetRequest>;

/** Input of the `forgetKey` activity. */
export const ForgetKeyInput = z.strictObject({
  sourceName: SourceName,
  table: SourceTableName,
  icebergTable: IcebergTableName,
  key: z.array(z.string()).min(1).max(32),
});
export type ForgetKeyInput = z.input<typeof ForgetKeyInput>;

export const ForgetKeyResult = z.object({
  icebergTable: z.string(),
  /** Rows deleted (0 when the key was not in the table). */
  deleted: z.number().int(),
  /** The position-delete snapshot; null when nothing was deleted. */
  snapshotId: z.string().nullable(),
  /** Quarantine records holding the key that were removed. */
  quarantineRecordsRemoved: z.number().int(),
  forgottenAt: IsoTime,
});
export type ForgetKeyResult = z.infer<typeof ForgetKeyResult>;

/** What the `forget` update returns. */
export const ForgetResult = ForgetKeyResult.extend({ purgeDueAt: IsoTime });
export type ForgetResult = z.infer<typeof ForgetResult>;

/** Input of the `purgeForgotten` activity. */
export const PurgeForgottenInput = z.strictObject({
  icebergTable: IcebergTableName,
  /** Files written before this are purged when unreferenced. */
  forgottenAt: IsoTime,
});
export type PurgeForgottenInput = z.input<typeof PurgeForgottenInput>;

export const PurgeForgottenResult = z.object({
  icebergTable: z.string(),
  rewrittenDataFiles: z.number().int(),
  expiredSnapshots: z.number().int(),
  deletedFiles: z.number().int(),
  orphanFilesRemoved: z.number().int(),
});
export type PurgeForgottenResult = z.infer<typeof PurgeForgottenResult>;

// ---- addTable ---------------------------------------------------------------------------------------------------

/**
 * Adds a source table to a running merge (one slot and publication feed all of a source's tables). The activity is
 * `addSourceTable` (input and result: `OnboardTableInput`, `OnboardTableResult` in schemas/cdc.ts).
 */
export const AddTableRequest = z.strictObject({
  /** `schema.table` in the source database. */
  table: SourceTableName,
  /** Key columns, for a table without a primary key (then it needs REPLICA IDENTITY FULL). */
  key: z.array(z.string().min(1)).min(1).max(32).optional(),
  /** Buckets of the `bucket(N, key)` partitioning. @default 16 */
  buckets: z.number().int().min(1).max(4096).default(16),
  /** @default `<sourceName>.<schema>.<table>` */
  icebergTable: IcebergTableName.optional(),
  wideNumeric: z.enum(['decimal', 'string']).default('decimal'),
});
export type AddTableRequest = z.input<typeof AddTableRequest>;

// ---- replayQuarantine -------------------------------------------------------------------------------------------

export const ReplayQuarantineRequest = z.strictObject({
  /** Source `schema.table` (or its Iceberg table); @default every table of the merge */
  table: z.string().min(1).max(255).optional(),
  /** Only this error kind, e.g. `value-conversion`. */
  errorKind: z.string().min(1).max(64).optional(),
  /** Only these record ids (from `sluice cdc quarantine ls`). */
  ids: z
    .array(z.string().regex(/^[0-9a-f]{64}$/))
    .max(10_000)
    .optional(),
});
export type ReplayQuarantineRequest = z.infer<typeof ReplayQuarantineRequest>;

/** Input of the `replayQuarantined` activity. */
export const ReplayQuarantinedInput = z.strictObject({
  /**
   * The source database, to skip records that a newer change of their key supersedes (lib/cdc/replay-guard.ts);
   * without it (a history from before) pgoutput records are replayed unchecked.
   */
  connectionString: CdcSource.shape.connectionString.optional(),
  /**
   * The change files' prefix of a Debezium-file source (`cdc-file-merge`), to skip records that a later change of
   * their key in the files supersedes.
   */
  filesPrefix: z.string().min(1).max(2048).optional(),
  sourceName: SourceName,
  tables: z
    .array(z.strictObject({ source: SourceTableName, icebergTable: IcebergTableName }))
    .min(1)
    .max(100),
  table: SourceTableName.optional(),
  errorKind: z.string().min(1).max(64).optional(),
  ids: z.array(z.string()).max(10_000).optional(),
});
export type ReplayQuarantinedInput = z.input<typeof ReplayQuarantinedInput>;

export const ReplayQuarantinedResult = z.object({
  /** Records selected. */
  selected: z.number().int(),
  /** Records applied and marked replayed. */
  replayed: z.number().int(),
  /** Records that still fail; they stay quarantined (the same record, not a copy). */
  stillFailing: z.number().int(),
  /** Selected records of tables this merge does not write. */
  skippedUnknownTable: z.number().int(),
  /**
   * Records older than the newest change of their key (the source row says otherwise now): not applied, marked
   * `superseded` with the reason. Absent in results from before the check.
   */
  skippedNewer: z.number().int().optional(),
  snapshotIds: z.array(z.string()),
});
export type ReplayQuarantinedResult = z.infer<typeof ReplayQuarantinedResult>;

// ---- cdc-table-maintenance --------------------------------------------------------------------------------------

/** Workflow id of a table's maintenance run. */
export function cdcMaintenanceWorkflowId(icebergTable: string): string {
  return `cdc-maintenance/${icebergTable}`;
}

/** Input of the `cdc-table-maintenance` pipeline (one table, usually from a Schedule). */
export const CdcTableMaintenanceInput = z.strictObject({
  icebergTable: IcebergTableName,
  /** Compact when position-deleted rows are at least this share of the data rows. @default 0.1 */
  deletedRowsRatio: z.number().min(0).max(1).default(0.1),
  /** Compact when at least this many data files are small. @default 16 */
  smallFiles: z.number().int().min(1).max(1_000_000).default(16),
  /** A data file below this size is small. @default 33554432 (32 MiB) */
  smallFileBytes: z
    .number()
    .int()
    .min(1)
    .default(32 * 1024 * 1024),
  /** Target size of compacted files. @default the table's `write.target-file-size-bytes`, else 512 MiB */
  targetFileSizeBytes: z.number().int().min(1).optional(),
  /** Snapshots older than this expire (the latest `retainLast` always stay). @default 432000000 (5 days) */
  expireOlderThanMs: z.number().int().min(0).default(432_000_000),
  /** @default 1 */
  retainLast: z.number().int().min(1).max(10_000).default(1),
  /**
   * Unreferenced files older than this are deleted. Below 1 hour only with `forceOrphanAge` (no writer may run).
   * @default 259200000 (3 days)
   */
  orphanOlderThanMs: z.number().int().min(0).default(259_200_000),
  forceOrphanAge: z.boolean().default(false),
});
export type CdcTableMaintenanceInput = z.input<typeof CdcTableMaintenanceInput>;

/** The table's health, read from its current snapshot's manifests. */
export const TableHealth = z.object({
  icebergTable: z.string(),
  snapshots: z.number().int(),
  dataFiles: z.number().int(),
  smallDataFiles: z.number().int(),
  deleteFiles: z.number().int(),
  dataRecords: z.number().int(),
  /** Rows removed by position deletes. */
  deletedRecords: z.number().int(),
  /** deletedRecords / dataRecords (0 for an empty table). */
  deletedRatio: z.number(),
});
export type TableHealth = z.infer<typeof TableHealth>;

export const InspectTableHealthInput = z.strictObject({
  icebergTable: IcebergTableName,
  smallFileBytes: z.number().int().min(1),
});
export type InspectTableHealthInput = z.input<typeof InspectTableHealthInput>;

export const CompactCdcTableInput = z.strictObject({
  icebergTable: IcebergTableName,
  targetFileSizeBytes: z.number().int().min(1).optional(),
  /** Merge a partition's small files once there are this many. @default 2 */
  minInputFiles: z.number().int().min(1).default(2),
});
export type CompactCdcTableInput = z.input<typeof CompactCdcTableInput>;

export const CompactCdcTableResult = z.object({
  snapshotId: z.string().nullable(),
  rewrittenDataFiles: z.number().int(),
  addedDataFiles: z.number().int(),
  removedDeleteFiles: z.number().int(),
  rewrittenRows: z.number().int(),
});
export type CompactCdcTableResult = z.infer<typeof CompactCdcTableResult>;

export const ExpireCdcSnapshotsInput = z.strictObject({
  icebergTable: IcebergTableName,
  olderThanMs: z.number().int().min(0),
  retainLast: z.number().int().min(1),
});
export type ExpireCdcSnapshotsInput = z.input<typeof ExpireCdcSnapshotsInput>;

export const ExpireCdcSnapshotsResult = z.object({
  expiredSnapshots: z.number().int(),
  deletedFiles: z.number().int(),
});
export type ExpireCdcSnapshotsResult = z.infer<typeof ExpireCdcSnapshotsResult>;

export const RemoveCdcOrphansInput = z.strictObject({
  icebergTable: IcebergTableName,
  olderThanMs: z.number().int().min(0),
  force: z.boolean(),
});
export type RemoveCdcOrphansInput = z.input<typeof RemoveCdcOrphansInput>;

export const RemoveCdcOrphansResult = z.object({ orphanFilesRemoved: z.number().int(), listedFiles: z.number().int() });
export type RemoveCdcOrphansResult = z.infer<typeof RemoveCdcOrphansResult>;

/** What a maintenance run did. */
export const CdcTableMaintenanceResult = z.object({
  icebergTable: z.string(),
  before: TableHealth,
  after: TableHealth,
  /** Why it compacted (or did not). */
  compactionReason: z.string(),
  compaction: CompactCdcTableResult.nullable(),
  expiry: ExpireCdcSnapshotsResult,
  orphans: RemoveCdcOrphansResult,
});
export type CdcTableMaintenanceResult = z.infer<typeof CdcTableMaintenanceResult>;
