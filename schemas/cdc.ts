import { z } from 'zod';
import { Progress } from './progress.js';

/**
 * Inputs, results and progress of the CDC pipelines (`cdc-onboard`, `cdc-merge`) and their activities. JSON-exact:
 * LSNs travel as PostgreSQL prints them (`0/16B3748`), byte counts as decimal strings (they exceed 2^53 on busy
 * servers), times as ISO strings. No row data ever crosses Temporal: activities read the source and write Iceberg
 * themselves and return counts and positions.
 */

/** A PostgreSQL LSN, `X/Y` in hex. */
export const Lsn = z.string().regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/, 'an LSN such as "0/16B3748"');
export type Lsn = z.infer<typeof Lsn>;

/** A byte count as a decimal string. */
export const ByteCount = z.string().regex(/^\d+$/, 'a byte count as a decimal string, e.g. "1048576"');

const IsoTime = z.iso.datetime();

/**
 * The logical name of a source database, used in workflow ids (`cdc/<source>`), slot and publication names
 * (`sluice_<source>`) and the default Iceberg namespace. Lower-case so that the slot name needs no quoting.
 */
export const SourceName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'lower-case letters, digits and "_", starting with a letter (at most 40)');

/** A source table, `schema.table` (neither part may contain a dot). */
export const SourceTableName = z
  .string()
  .regex(/^[^.\s"]+\.[^.\s"]+$/, 'a source table as "schema.table", e.g. "public.orders"');

/** An Iceberg table, `namespace.table` (more namespace levels allowed: `a.b.table`). */
export const IcebergTableName = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/, 'an Iceberg table as "namespace.table", e.g. "shop.orders"');

/** A replication slot or publication name: lower-case letters, digits and `_`, at most 63. */
export const ReplicationName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and "_" (at most 63), e.g. "sluice_shop"');

/** A source connection reference to an environment variable of the worker: `env:NAME`. */
export const SOURCE_ENV_REFERENCE = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;
/** A source connection reference to a file on the worker: `file:/absolute/path` (or `file:///absolute/path`). */
export const SOURCE_FILE_REFERENCE = /^file:(?:\/\/(?=\/))?(\/(?!\/)[^\0]*)$/;
/** A literal PostgreSQL connection URI. */
export const POSTGRES_URI = /^postgres(ql)?:\/\//;

/**
 * Whether a literal connection URI carries a password: `user:secret@` in its authority, or a `password` parameter.
 * Plain text matching (no `URL`, which workflow code should not depend on).
 */
export function connectionStringHasPassword(uri: string): boolean {
  const rest = uri.replace(POSTGRES_URI, '');
  const authority = rest.split(/[/?#]/, 1)[0] ?? '';
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0 && colon < userinfo.length - 1) return true;
  }
  return /[?&]password=/i.test(uri);
}

/**
 * Where the source database is. The workflow input is stored in Temporal's history and shown in its UI, so it never
 * holds a password: it names a reference that the worker resolves in the activity that connects
 * (lib/cdc/source-secret.ts), or a literal connection string without a password (trust, certificate, `.pgpass` or
 * `PGPASSWORD` on the worker).
 */
export const CdcSource = z.strictObject({
  /**
   * `env:NAME` (the worker's environment variable NAME holds `postgres://user:password@host:port/db`),
   * `file:/path` (the first line of that file on the worker, e.g. a mounted secret), or `postgres://user@host:port/db`
   * without a password. A literal connection string with a password is refused. The role needs REPLICATION (or
   * superuser) and the server `wal_level=logical`.
   */
  connectionString: z
    .string()
    .max(4096)
    .refine(
      (s) => POSTGRES_URI.test(s) || SOURCE_ENV_REFERENCE.test(s) || SOURCE_FILE_REFERENCE.test(s),
      'a postgres:// connection string, or a reference the worker resolves: env:NAME or file:/path',
    )
    .refine(
      (s) => !POSTGRES_URI.test(s) || !connectionStringHasPassword(s),
      'a connection string with a password would be stored in the workflow history; put it in an environment ' +
        'variable or a file on the workers and pass env:NAME or file:/path instead',
    ),
});
export type CdcSource = z.infer<typeof CdcSource>;

/** The slot a source's merge reads: `sluice_<source>`. */
export function cdcSlotName(sourceName: string): string {
  return `sluice_${sourceName}`;
}

/** The publication of a source: `sluice_<source>`. */
export function cdcPublicationName(sourceName: string): string {
  return `sluice_${sourceName}`;
}

/** The default Iceberg table of a source table: `<source>.<schema>.<table>`. */
export function defaultIcebergTable(sourceName: string, table: string): string {
  return `${sourceName}.${table}`;
}

/** Workflow id of a table's onboarding; a second onboarding of the same table is refused while one runs. */
export function cdcOnboardWorkflowId(sourceName: string, table: string): string {
  return `cdc-onboard/${sourceName}/${table}`;
}

/** Workflow id of a source's merge: one merge per source, since one slot serves all of its tables. */
export function cdcMergeWorkflowId(sourceName: string): string {
  return `cdc/${sourceName}`;
}

/** Tuning of the merge loop, shared by `cdc-merge` and the merge that `cdc-onboard` starts. */
const mergeTuning = {
  /** Row changes per batch at most (whole transactions: a larger transaction still comes in one batch). @default 20000 */
  maxChangesPerBatch: z.number().int().min(1).max(1_000_000).default(20_000),
  /**
   * `continuous`: merge, advance, and poll again after `pollIntervalMs` while there is work (at once when a batch was
   * cut short), backing off to `idleIntervalMs` when idle. `scheduled`: merge batch after batch until the slot is
   * caught up, then complete; a Schedule starts one run per tick (the reference system's way, with Sluice's
   * latency per tick). Use one mode per source: a Schedule with overlap SKIP, and no continuous merge beside it.
   * @default continuous
   */
  mode: z.enum(['continuous', 'scheduled']).default('continuous'),
  /** Wait after a batch that had changes. @default 1000 */
  pollIntervalMs: z.number().int().min(100).max(3_600_000).default(1000),
  /** Longest wait when idle; the wait doubles from `pollIntervalMs` up to this. @default 5000 */
  idleIntervalMs: z.number().int().min(100).max(3_600_000).default(5000),
  /** Batches per run before continue-as-new (history stays far below 10k events). @default 200 */
  iterationsPerRun: z.number().int().min(1).max(1000).default(200),
  /**
   * How long a forgotten key may stay in old snapshots (time travel) before `forget` purges them: snapshots are
   * expired, files holding the key compacted away and orphan files removed. @default 86400000 (1 day)
   */
  forgetRetentionMs: z
    .number()
    .int()
    .min(0)
    .max(90 * 86_400_000)
    .default(86_400_000),
  /** Retained WAL above which the merge logs a warning and sets `retainedWalAlert`, as a byte count. @default 10 GiB */
  retainedWalAlertBytes: ByteCount.default(String(10 * 1024 ** 3)),
  /**
   * How soon the work of a worker that died (crash, kill -9, lost host) is retried on another: the merge
   * activity's heartbeat timeout and the short slot activities' start-to-close timeout. @default 60000
   */
  workerLossTimeoutMs: z.number().int().min(2000).max(600_000).default(60_000),
};

// ---- cdc-onboard ------------------------------------------------------------------------------------------------

/** Input of the `cdc-onboard` pipeline: copy a source table into a new Iceberg table and start its merge. */
export const CdcOnboardInput = z.strictObject({
  source: CdcSource,
  sourceName: SourceName,
  /** `schema.table` in the source database. */
  table: SourceTableName,
  /**
   * Key columns, for a table without a primary key (then the table needs REPLICA IDENTITY FULL).
   * @default the primary key
   */
  key: z.array(z.string().min(1)).min(1).max(32).optional(),
  /** Buckets of the `bucket(N, key)` partitioning. @default 16 */
  buckets: z.number().int().min(1).max(4096).default(16),
  /** @default `<sourceName>.<schema>.<table>` */
  icebergTable: IcebergTableName.optional(),
  /** How to map unconstrained numerics: `decimal(38, 18)` (unfit values quarantined) or exact `string`. */
  wideNumeric: z.enum(['decimal', 'string']).default('decimal'),
  /** Start the source's merge workflow after the copy. @default true */
  startMerge: z.boolean().default(true),
  /** Tuning of the merge it starts. */
  merge: z.strictObject(mergeTuning).optional(),
});
export type CdcOnboardInput = z.input<typeof CdcOnboardInput>;

/** Input of the `onboardTable` activity: the onboarding input with every name resolved. */
export const OnboardTableInput = z.strictObject({
  connectionString: CdcSource.shape.connectionString,
  sourceName: SourceName,
  table: SourceTableName,
  key: z.array(z.string().min(1)).min(1).max(32).optional(),
  buckets: z.number().int().min(1).max(4096),
  icebergTable: IcebergTableName,
  slot: ReplicationName,
  publication: ReplicationName,
  wideNumeric: z.enum(['decimal', 'string']).default('decimal'),
  /** Source rows per chunk read from the snapshot cursor. @default 10000 */
  chunkRows: z.number().int().min(1).max(1_000_000).default(10_000),
  /** Rows buffered before they are written as data files (one commit at the end). @default 200000 */
  flushRows: z.number().int().min(1).max(10_000_000).default(200_000),
});
export type OnboardTableInput = z.input<typeof OnboardTableInput>;

export const OnboardTableResult = z.object({
  icebergTable: z.string(),
  /** The key the Iceberg table's identifier fields hold. */
  key: z.array(z.string()),
  /** Rows copied from the snapshot (0 when the table was already onboarded). */
  rowsCopied: z.number().int(),
  quarantined: z.number().int(),
  /** The table's watermark: the slot's consistent point for a new copy. */
  watermark: Lsn,
  /** The snapshot carrying the watermark, as a decimal string. */
  snapshotId: z.string().nullable(),
  /** True when an earlier attempt or run had already finished the copy; nothing was done. */
  alreadyOnboarded: z.boolean(),
});
export type OnboardTableResult = z.infer<typeof OnboardTableResult>;

export const CdcOnboardResult = z.object({
  onboard: OnboardTableResult,
  /** `cdc/<source>` */
  mergeWorkflowId: z.string().nullable(),
  /** False when the merge was already running (or `startMerge` was false). */
  mergeStarted: z.boolean(),
  /** The first run of the merge this onboarding started; null when it started none. */
  mergeRunId: z.string().nullable(),
});
export type CdcOnboardResult = z.infer<typeof CdcOnboardResult>;

// ---- cdc-merge --------------------------------------------------------------------------------------------------

/** A table a merge applies changes to. */
export const CdcMergeTable = z.strictObject({
  /** `schema.table` in the source. */
  source: SourceTableName,
  /** `namespace.table` in the catalog; it must have been onboarded (it carries the watermark). */
  icebergTable: IcebergTableName,
});
export type CdcMergeTable = z.infer<typeof CdcMergeTable>;

/**
 * A table whose source changed in a way the Iceberg table cannot follow on its own (a dropped or renamed column, a
 * key change, a narrowing or unrelated type change). Its changes are held in the quarantine (error kind
 * `incompatible-schema-change`) while the other tables go on, until an operator resolves it with the merge's
 * `resolveSchemaChange` update: `apply`, `skip` or `re-bootstrap`.
 */
export const BlockedTable = z.strictObject({
  /** `schema.table` in the source. */
  table: SourceTableName,
  icebergTable: IcebergTableName,
  /** What changed, e.g. `column "note" was dropped or renamed`. */
  changes: z.array(z.string()).max(200),
  /** When the merge first saw it. */
  since: IsoTime,
});
export type BlockedTable = z.infer<typeof BlockedTable>;

/** A forgotten key whose snapshots and orphan files are purged once the retention window has passed. */
export const PendingPurge = z.strictObject({
  icebergTable: IcebergTableName,
  /** When the key was deleted; files written before it are purged. */
  forgottenAt: IsoTime,
  /** When the purge is due: forgottenAt + the retention window. */
  dueAt: IsoTime,
  /** How many keys wait for this purge. */
  keys: z.number().int().min(1),
});
export type PendingPurge = z.infer<typeof PendingPurge>;

/** Counters a merge carries across continue-as-new. */
export const CdcMergeCarriedState = z.strictObject({
  runs: z.number().int().min(0).default(0),
  batches: z.number().int().min(0).default(0),
  changes: z.number().int().min(0).default(0),
  rowsMerged: z.number().int().min(0).default(0),
  quarantined: z.number().int().min(0).default(0),
  paused: z.boolean().default(false),
  lastCommitTime: IsoTime.optional(),
  lastSourceCommitTime: IsoTime.optional(),
  confirmedLsn: Lsn.optional(),
  sourceLsn: Lsn.optional(),
  lagBytes: ByteCount.optional(),
  lagSeconds: z.number().min(0).optional(),
  retainedWalBytes: ByteCount.optional(),
  /** Tables held back by an incompatible source schema change. */
  blockedTables: z.array(BlockedTable).default([]),
  /** Compliance purges waiting for their retention window. */
  pendingPurges: z.array(PendingPurge).default([]),
  /** Compatible source schema changes applied to Iceberg so far. */
  schemaChanges: z.number().int().min(0).default(0),
  /** Whether retained WAL was above `retainedWalAlertBytes` at the last batch. */
  retainedWalAlert: z.boolean().default(false),
});
export type CdcMergeCarriedState = z.infer<typeof CdcMergeCarriedState>;

/** Input of the `cdc-merge` pipeline: the per-source loop that applies the slot's changes to Iceberg. */
export const CdcMergeInput = z.strictObject({
  source: CdcSource,
  sourceName: SourceName,
  tables: z.array(CdcMergeTable).min(1).max(100),
  slot: ReplicationName,
  publication: ReplicationName,
  ...mergeTuning,
  /** Set by the workflow itself when it continues as new. */
  state: CdcMergeCarriedState.optional(),
});
export type CdcMergeInput = z.input<typeof CdcMergeInput>;

/** Input of the `mergeBatch` activity. */
export const MergeBatchInput = z.strictObject({
  connectionString: CdcSource.shape.connectionString,
  sourceName: SourceName,
  tables: z.array(CdcMergeTable).min(1).max(100),
  slot: ReplicationName,
  publication: ReplicationName,
  maxChanges: z.number().int().min(1).max(1_000_000),
  /** Source tables (`schema.table`) whose changes are held in the quarantine instead of merged. @default [] */
  blockedTables: z.array(SourceTableName).max(100).optional(),
});
export type MergeBatchInput = z.input<typeof MergeBatchInput>;

/** What one merged table got from a batch. */
export const MergedTable = z.object({
  icebergTable: z.string(),
  /** Rows inserted, updated or deleted. */
  merged: z.number().int(),
  inserted: z.number().int(),
  updated: z.number().int(),
  deleted: z.number().int(),
  /** Changes skipped because the table's watermark already covered their transaction (a replay). */
  skippedBelowWatermark: z.number().int(),
  /** The new snapshot, as a decimal string; null when nothing was committed. */
  snapshotId: z.string().nullable(),
  /** The table's watermark after the batch. */
  watermark: Lsn,
});
export type MergedTable = z.infer<typeof MergedTable>;

export const MergeBatchResult = z.object({
  /** Row changes read from the slot (before collapsing). */
  changes: z.number().int(),
  transactions: z.number().int(),
  /** Rows inserted, updated or deleted, over all tables. */
  merged: z.number().int(),
  quarantined: z.number().int(),
  skippedBelowWatermark: z.number().int(),
  tables: z.array(MergedTable),
  /** Commit end LSN of the last transaction read. */
  lastCommitEndLsn: Lsn.nullable(),
  /** Where the slot may be advanced now that the batch is committed; null when there is nothing to advance. */
  advanceTo: Lsn.nullable(),
  /** The source's flushed WAL position when the batch was read. */
  uptoLsn: Lsn,
  /** More changes are waiting: poll again at once. */
  cutShort: z.boolean(),
  /** Seconds from the oldest change in the batch to now; 0 for an empty batch. */
  lagSeconds: z.number(),
  /** When the last Iceberg commit of this batch happened; null when nothing was committed. */
  committedAt: IsoTime.nullable(),
  /** Commit time of the batch's last source transaction. */
  lastSourceCommitTime: IsoTime.nullable(),
  /** Where quarantined records went, when there were any. */
  quarantineFile: z.string().nullable(),
  /** Tables this batch found blocked by an incompatible source schema change (their changes were held). */
  newlyBlocked: z.array(BlockedTable.omit({ since: true })).optional(),
  /** Compatible source schema changes applied to the Iceberg tables before this batch's rows were written. */
  schemaChanges: z.array(z.strictObject({ icebergTable: z.string(), changes: z.array(z.string()) })).optional(),
  /** Changes of blocked tables held in the quarantine. */
  held: z.number().int().optional(),
});
export type MergeBatchResult = z.infer<typeof MergeBatchResult>;

/** Input of the `advanceSlot` activity. */
export const AdvanceSlotInput = z.strictObject({
  connectionString: CdcSource.shape.connectionString,
  slot: ReplicationName,
  /** Advance to here: a batch's `advanceTo`, after its Iceberg commit. */
  to: Lsn,
});
export type AdvanceSlotInput = z.input<typeof AdvanceSlotInput>;

/** Input of the `slotStatus` activity. */
export const SlotStatusInput = z.strictObject({
  connectionString: CdcSource.shape.connectionString,
  slot: ReplicationName,
});
export type SlotStatusInput = z.input<typeof SlotStatusInput>;

/** A slot's position and what it costs the source (`readSlotStatus`), JSON-exact. */
export const CdcSlotStatus = z.object({
  slot: z.string(),
  active: z.boolean(),
  /** Everything before this has been applied. */
  confirmedLsn: Lsn.nullable(),
  /** `pg_current_wal_lsn()` when read. */
  currentLsn: Lsn,
  /** WAL not yet applied: current − confirmed. */
  lagBytes: ByteCount,
  /** WAL the slot pins on the source: current − restart. */
  retainedWalBytes: ByteCount,
  walStatus: z.string().nullable(),
  safeWalBytes: ByteCount.nullable(),
  /** For `advanceSlot`: whether the slot moved (false for a repeated advance). */
  moved: z.boolean().optional(),
});
export type CdcSlotStatus = z.infer<typeof CdcSlotStatus>;

/** Phases of the merge loop, shown in the progress query and the `SluicePhase` search attribute. */
export const CdcMergePhase = z.enum(['starting', 'merging', 'advancing', 'waiting', 'idle', 'paused', 'caught-up']);
export type CdcMergePhase = z.infer<typeof CdcMergePhase>;

/** What the merge's `progress` query returns: the shared {@link Progress} (rows merged) plus CDC status. */
export const CdcMergeProgress = Progress.extend({
  phase: CdcMergePhase,
  sourceName: z.string(),
  slot: z.string(),
  tables: z.array(z.string()),
  paused: z.boolean(),
  /** Runs so far (continue-as-new count + 1). */
  runs: z.number().int(),
  batches: z.number().int(),
  changes: z.number().int(),
  rowsMerged: z.number().int(),
  quarantined: z.number().int(),
  lastCommitTime: IsoTime.optional(),
  lastSourceCommitTime: IsoTime.optional(),
  /** The slot's confirmed position: every change before it is in Iceberg. */
  confirmedLsn: Lsn.optional(),
  /** The source's WAL position when the slot was last read. */
  sourceLsn: Lsn.optional(),
  lagBytes: ByteCount.optional(),
  lagSeconds: z.number().optional(),
  retainedWalBytes: ByteCount.optional(),
  /** Tables held back by an incompatible source schema change, waiting for `resolveSchemaChange`. */
  blockedTables: z.array(BlockedTable).optional(),
  pendingPurges: z.array(PendingPurge).optional(),
  schemaChanges: z.number().int().optional(),
  /** Whether the slot's retained WAL is above `retainedWalAlertBytes`. */
  retainedWalAlert: z.boolean().optional(),
});
export type CdcMergeProgress = z.infer<typeof CdcMergeProgress>;

/** Signal names of the merge workflow. */
export const CDC_MERGE_SIGNALS = { pause: 'pause', resume: 'resume', flush: 'flush' } as const;

// ---- cdc-file-merge (Debezium change files) ---------------------------------------------------------------------

/** Where a file source's change files are: a directory URI (`file:///…/` or `s3://bucket/…/`), listed recursively. */
export const CdcFileSource = z.strictObject({
  prefix: z.string().regex(/^(file:\/\/\/|s3:\/\/).+\/$/, 'a directory URI ending in "/", e.g. "s3://cdc/topics/"'),
});
export type CdcFileSource = z.infer<typeof CdcFileSource>;

/** A column of an explicit file-source table spec: an Iceberg primitive type (`long`, `decimal(12,2)`…). */
export const FileTableColumnSpec = z.strictObject({
  name: z.string().min(1).max(255),
  type: z.string().min(1).max(64),
  required: z.boolean().optional(),
});

/** Workflow id of a file source's merge. */
export function cdcFileMergeWorkflowId(sourceName: string): string {
  return `cdc-files/${sourceName}`;
}

/** Counters a file merge carries across continue-as-new. */
export const CdcFileMergeCarriedState = z.strictObject({
  runs: z.number().int().min(0).default(0),
  onboarded: z.boolean().default(false),
  batches: z.number().int().min(0).default(0),
  files: z.number().int().min(0).default(0),
  changes: z.number().int().min(0).default(0),
  rowsMerged: z.number().int().min(0).default(0),
  quarantined: z.number().int().min(0).default(0),
  paused: z.boolean().default(false),
  lastCommitTime: IsoTime.optional(),
  /** The committed high-water mark: `topic+partition` → start offset of the last file applied. */
  watermark: z.record(z.string(), z.string()).optional(),
});
export type CdcFileMergeCarriedState = z.infer<typeof CdcFileMergeCarriedState>;

/**
 * Input of the `cdc-file-merge` pipeline: creates the Iceberg table of a table fed by Debezium change files (once),
 * then merges the files in key order above the committed high-water mark, exactly like the PostgreSQL merge.
 */
export const CdcFileMergeInput = z.strictObject({
  files: CdcFileSource,
  sourceName: SourceName,
  /** `schema.table` as the events' `source` block names it; events of other tables are quarantined. */
  table: SourceTableName,
  /** @default `<sourceName>.<schema>.<table>` */
  icebergTable: IcebergTableName.optional(),
  /** Key columns (change files do not carry the key: it is in the Kafka record key). */
  key: z.array(z.string().min(1)).min(1).max(32),
  /** The table's columns; @default the Connect schema of the first event that carries one */
  columns: z.array(FileTableColumnSpec).min(1).max(4000).optional(),
  /** Buckets of the `bucket(N, key)` partitioning. @default 16 */
  buckets: z.number().int().min(1).max(4096).default(16),
  /** Files per batch at most (files are read whole). @default 100 */
  maxFilesPerBatch: z.number().int().min(1).max(10_000).default(100),
  ...mergeTuning,
  state: CdcFileMergeCarriedState.optional(),
});
export type CdcFileMergeInput = z.input<typeof CdcFileMergeInput>;

/** Input of the `onboardFileTable` activity. */
export const OnboardFileTableInput = z.strictObject({
  sourceName: SourceName,
  prefix: CdcFileSource.shape.prefix,
  table: SourceTableName,
  icebergTable: IcebergTableName,
  key: z.array(z.string().min(1)).min(1).max(32),
  columns: z.array(FileTableColumnSpec).min(1).max(4000).optional(),
  buckets: z.number().int().min(1).max(4096),
});
export type OnboardFileTableInput = z.input<typeof OnboardFileTableInput>;

export const OnboardFileTableResult = z.object({
  icebergTable: z.string(),
  key: z.array(z.string()),
  /** False when the table already existed (a retry or a later run); it was left as it is. */
  created: z.boolean(),
  /** Where the schema came from: an event's Connect schema (`file:line`), the `columns` spec, or the existing table. */
  schemaFrom: z.string(),
});
export type OnboardFileTableResult = z.infer<typeof OnboardFileTableResult>;

/** Input of the `mergeFileBatch` activity. */
export const MergeFileBatchInput = z.strictObject({
  sourceName: SourceName,
  prefix: CdcFileSource.shape.prefix,
  table: SourceTableName,
  icebergTable: IcebergTableName,
  maxFiles: z.number().int().min(1).max(10_000),
  maxChanges: z.number().int().min(1).max(1_000_000),
});
export type MergeFileBatchInput = z.input<typeof MergeFileBatchInput>;

export const MergeFileBatchResult = z.object({
  /** Files read (whole) in this batch. */
  files: z.number().int(),
  /** Change events read (before collapsing); tombstones not counted. */
  changes: z.number().int(),
  merged: z.number().int(),
  inserted: z.number().int(),
  updated: z.number().int(),
  deleted: z.number().int(),
  quarantined: z.number().int(),
  /** The new snapshot, as a decimal string; null when nothing was committed. */
  snapshotId: z.string().nullable(),
  /** The table's high-water mark after the batch. */
  watermark: z.record(z.string(), z.string()),
  /** More files are waiting: merge again at once. */
  cutShort: z.boolean(),
  committedAt: IsoTime.nullable(),
  quarantineFile: z.string().nullable(),
});
export type MergeFileBatchResult = z.infer<typeof MergeFileBatchResult>;

/** What the file merge's `progress` query returns. */
export const CdcFileMergeProgress = Progress.extend({
  phase: CdcMergePhase,
  sourceName: z.string(),
  prefix: z.string(),
  tables: z.array(z.string()),
  paused: z.boolean(),
  runs: z.number().int(),
  batches: z.number().int(),
  files: z.number().int(),
  changes: z.number().int(),
  rowsMerged: z.number().int(),
  quarantined: z.number().int(),
  lastCommitTime: IsoTime.optional(),
  watermark: z.record(z.string(), z.string()).optional(),
});
export type CdcFileMergeProgress = z.infer<typeof CdcFileMergeProgress>;
