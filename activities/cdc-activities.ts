import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import type { z } from 'zod';
import {
  CDC_FILES_WATERMARK_PROPERTY,
  CDC_WATERMARK_PROPERTY,
  advanceSlot as advanceReplicationSlot,
  buildIcebergSchema,
  buildSchemaFromColumns,
  buildSchemaFromConnect,
  createCrashInjector,
  findConnectSchema,
  formatFilesWatermark,
  parseCrashPlans,
  readChangeFiles,
  readFilesWatermark,
  type CrashInjector,
  type FileTableSchema,
  collapseChanges,
  copyInitialSnapshot,
  dropSlot,
  ensurePublication,
  fillUnchangedValues,
  followSourceSchemas,
  holdBlockedChanges,
  formatLsn,
  parseLsn,
  qualifiedName,
  appendQuarantine,
  readChangeBatch,
  readSlotStatus,
  readSourceTable,
  readWatermark,
  translateReplicationError,
  watermarkProperties,
  type QuarantineRecord,
  type SlotStatus,
  type TableChanges,
  type TableName,
} from '../lib/cdc/index.js';
import { commitNewManifests, writeAddedManifest, writeDataFiles } from '../lib/iceberg/append.js';
import { TableAlreadyExistsError, type SqlCatalog } from '../lib/iceberg/catalog/index.js';
import type { DataFile } from '../lib/iceberg/data-file.js';
import { isIn } from '../lib/iceberg/expressions.js';
import { currentSchema, currentSnapshot, newSnapshotId, type TableMetadata } from '../lib/iceberg/metadata-json.js';
import { scanTable } from '../lib/iceberg/scan.js';
import { noChanges } from '../lib/iceberg/table-update.js';
import type { NestedField, Schema } from '../lib/iceberg/types.js';
import { KeyIndexCache, keyString, upsertRows } from '../lib/iceberg/upsert.js';
import type { PrimitiveValue } from '../lib/iceberg/values.js';
import type { FileIO } from '../lib/storage/file-io.js';
import { sluiceEnv } from '../lib/config.js';
import {
  AdvanceSlotInput,
  MergeBatchInput,
  MergeFileBatchInput,
  OnboardFileTableInput,
  OnboardTableInput,
  SlotStatusInput,
  type CdcSlotStatus,
  type MergeBatchResult,
  type MergedTable,
  type MergeFileBatchResult,
  type OnboardFileTableResult,
  type OnboardTableResult,
} from '../schemas/cdc.js';
import { toActivityFailure, typedFailure, validateActivityInput } from './failures.js';
import { keepHeartbeating as keepHeartbeatingEvery } from './heartbeat.js';
import { resolveSourceConnection } from '../lib/cdc/source-secret.js';
import { bucketColumnOf, bucketSpec, ensureTableNamespace } from '../lib/cdc/base-table.js';
import { BatchPrefetcher, prefetchKeyOf, readBatchWithPrefetch } from '../lib/cdc/prefetch.js';

/** Dependencies of the CDC activities; the cpu worker builds them from temporal-dev.yml (lib/stack/warehouse.ts). */
export interface CdcActivityDeps {
  /** The Iceberg catalog the tables live in. */
  catalog: SqlCatalog;
  /** Reads and writes table files and the quarantine. */
  io: FileIO;
  /** A connection pool per source database, reused across activities. */
  pgPoolFor(connectionString: string): pg.Pool;
  /** Key positions reused across merges in this process. @default a cache per factory call */
  keyIndex?: KeyIndexCache;
  /** How often long activities heartbeat. @default 5000 */
  heartbeatIntervalMs?: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * TEST ONLY: where a merge kills its own process (the exactly-once kill loop). @default from
   * `SLUICE_TEST_CRASH_AT` (lib/cdc/crash-points.ts); none when it is unset
   */
  crashes?: CrashInjector;
  /**
   * Reads the next batch of a slot ahead while the current one is merged (lib/cdc/prefetch.ts); `false` turns it
   * off. @default a prefetcher per factory call when `SLUICE_CDC_PREFETCH=1`, else none (measured: a net loss on a
   * 2-core machine, docs/cdc-pipeline.md "Performance")
   */
  prefetch?: BatchPrefetcher | false;
}

/** The table property naming the source table an Iceberg table follows. */
export const CDC_SOURCE_TABLE_PROPERTY = 'sluice.cdc.source-table';

/** The properties of a base table fed by a replication slot (onboarding, and a table added to a running source). */
export function slotTableProperties(input: {
  readonly sourceName: string;
  readonly table: string;
  readonly slot: string;
  readonly publication: string;
  readonly wideNumeric: string;
}): Record<string, string> {
  return {
    'sluice.cdc.source': input.sourceName,
    [CDC_SOURCE_TABLE_PROPERTY]: input.table,
    'sluice.cdc.slot': input.slot,
    'sluice.cdc.publication': input.publication,
    'sluice.cdc.wide-numeric': input.wideNumeric,
  };
}

/**
 * The CDC activities (cpu pool): onboarding a source table, merging one batch of slot changes into Iceberg, and
 * the slot's advance and status. Row data never leaves the activity; the workflow sees counts and LSNs.
 */
export function createCdcActivities(deps: CdcActivityDeps) {
  const keyIndex = deps.keyIndex ?? new KeyIndexCache();
  const now = deps.now ?? Date.now;
  const heartbeatEveryMs = deps.heartbeatIntervalMs ?? 5000;
  const crashes = deps.crashes ?? createCrashInjector(parseCrashPlans(sluiceEnv.testCrashAt));
  const prefetcher =
    deps.prefetch === false || (deps.prefetch === undefined && !sluiceEnv.cdcPrefetch)
      ? undefined
      : (deps.prefetch ?? new BatchPrefetcher());
  // The merge writes table files through this: with a crash point armed, it can die right after a data or delete
  // file is written and before the commit.
  const mergeIo = crashes.armed ? crashAfterTableFileWrites(deps.io, crashes) : deps.io;

  /** Runs `work` on a pooled client; a failed client is destroyed rather than returned to the pool. */
  async function withClient<T>(connectionString: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    // `env:NAME` / `file:/path` references resolve here, on the worker (lib/cdc/source-secret.ts).
    const client = await deps.pgPoolFor(resolveSourceConnection(connectionString)).connect();
    let failed = false;
    try {
      return await work(client);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      client.release(failed);
    }
  }

  /** Heartbeats `details()` now and every few seconds until the returned function is called. */
  function keepHeartbeating(details: () => unknown): () => void {
    return keepHeartbeatingEvery(details, heartbeatEveryMs);
  }

  /** Idempotent (a retried batch adds nothing); called before the batch's commit (lib/cdc/quarantine-store.ts). */
  async function writeQuarantine(sourceName: string, records: readonly QuarantineRecord[]): Promise<string | null> {
    return appendQuarantine(deps.io, deps.catalog.warehouse, sourceName, records, now());
  }

  async function onboard(input: z.output<typeof OnboardTableInput>): Promise<OnboardTableResult> {
    const { catalog, io } = deps;
    const sourceTable = parseTableName(input.table);
    let rowsCopied = 0;
    let phase = 'checking';
    const stopHeartbeats = keepHeartbeating(() => ({ phase, rowsCopied }));
    try {
      const existing = await loadIfExists(catalog, input.icebergTable);
      const done = existing && alreadyOnboarded(input.icebergTable, existing.metadata);
      if (done) {
        // Done by an earlier attempt or run. The merge needs the slot, so a missing one is an error here.
        await withClient(input.connectionString, (c) => readSlotStatus(c, input.slot));
        return done;
      }

      const source = await withClient(input.connectionString, (c) => readSourceTable(c, sourceTable));
      const built = buildIcebergSchema(source, {
        ...(input.key ? { key: input.key } : {}),
        wideNumeric: input.wideNumeric,
      });
      const slotExists = await withClient(input.connectionString, async (c) => {
        const r = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [input.slot]);
        return r.rows.length > 0;
      });
      if (slotExists) {
        if (!existing) {
          throw typedFailure(
            'Unsupported',
            `replication slot "${input.slot}" of source "${input.sourceName}" already exists, so another table of ` +
              `this source is onboarded (or something else uses that slot name); add "${input.table}" to the ` +
              "source's running merge with its addTable update (`sluice cdc add-table`), or onboard it under " +
              'another sourceName',
          );
        }
        // An earlier attempt created the Iceberg table, then died during the copy: its slot and files are useless.
        phase = 'dropping the slot of a failed copy';
        await withClient(input.connectionString, (c) => dropSlot(c, input.slot));
      }
      if (existing) await catalog.dropTable(input.icebergTable, { purge: true });

      phase = 'creating the table';
      await ensureTableNamespace(catalog, input.icebergTable);
      const created = await catalog.createTable(input.icebergTable, {
        schema: built.schema,
        ...bucketSpec(bucketColumnOf(built), input.buckets),
        properties: slotTableProperties(input),
      });
      await withClient(input.connectionString, (c) =>
        ensurePublication(c, { publication: input.publication, tables: [source] }),
      );

      phase = 'copying';
      const metadata = created.metadata;
      const schema = currentSchema(metadata);
      const dataFiles: DataFile[] = [];
      const quarantined: QuarantineRecord[] = [];
      let buffer = emptyColumns(schema);
      let buffered = 0;
      const flush = async () => {
        if (buffered === 0) return;
        dataFiles.push(...(await writeDataFiles(io, metadata, { columns: buffer, rowCount: buffered })));
        buffer = emptyColumns(schema);
        buffered = 0;
      };
      // The copy cannot resume (the exported snapshot dies with its connection), so its files are committed once,
      // at the end, with the watermark: a failed copy leaves an empty table and no slot, and a retry starts over.
      const copy = await copyInitialSnapshot({
        connection: resolveSourceConnection(input.connectionString),
        slot: input.slot,
        tables: [source],
        chunkRows: input.chunkRows,
        serverName: input.sourceName,
        now,
        onChunk: async (_table, events) => {
          const collapsed = collapseChanges(events, { tables: [{ source, schema }] });
          quarantined.push(...collapsed.quarantined);
          const changes = collapsed.tables.get(qualifiedName(source))!;
          for (const [id, values] of changes.columns) {
            const target = buffer.get(id)!;
            for (const value of values) target.push(value);
          }
          buffered += changes.ops.length;
          rowsCopied += changes.ops.length;
          if (buffered >= input.flushRows) await flush();
        },
      });
      await flush();
      // Before the commit: a retry after it finds the table onboarded and copies nothing again.
      await writeQuarantine(input.sourceName, quarantined);

      phase = 'committing';
      const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
      const manifests =
        dataFiles.length > 0 ? [await writeAddedManifest(io, metadata, snapshotId, dataFiles, 'data')] : [];
      await commitNewManifests(catalog, io, input.icebergTable, {
        snapshotId,
        manifests,
        operation: 'append',
        changes: {
          ...noChanges(),
          addedDataFiles: dataFiles.length,
          addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
          addedFilesSize: dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
        },
        snapshotProperties: watermarkProperties(copy.consistentPoint),
      });
      return {
        icebergTable: input.icebergTable,
        key: [...built.key],
        rowsCopied,
        quarantined: quarantined.length,
        watermark: formatLsn(copy.consistentPoint),
        snapshotId: String(snapshotId),
        alreadyOnboarded: false,
      };
    } finally {
      stopHeartbeats();
    }
  }

  async function merge(input: z.output<typeof MergeBatchInput>): Promise<MergeBatchResult> {
    const { catalog } = deps;
    let phase = 'loading tables';
    const stopHeartbeats = keepHeartbeating(() => ({ phase }));
    try {
      const targets: {
        table: (typeof input.tables)[number];
        source: TableName;
        metadata: TableMetadata;
        schema: Schema;
        watermark: bigint;
      }[] = [];
      for (const table of input.tables) {
        const loaded = await catalog.loadTable(table.icebergTable);
        const watermark = readWatermark(currentSnapshot(loaded.metadata)?.summary);
        if (watermark === undefined) {
          throw typedFailure(
            'InvalidInput',
            `Iceberg table "${table.icebergTable}" has no CDC watermark (${CDC_WATERMARK_PROPERTY}) in its current ` +
              `snapshot, so its onboarding never finished; run cdc-onboard for "${table.source}" first`,
          );
        }
        const schema = currentSchema(loaded.metadata);
        targets.push({ table, source: parseTableName(table.source), metadata: loaded.metadata, schema, watermark });
      }

      phase = 'reading changes';
      // The batch read ahead during the previous merge when it is valid; the next one is then read ahead at once.
      const batch = await readBatchWithPrefetch(
        prefetcher,
        prefetchKeyOf(input),
        (work) => withClient(input.connectionString, work),
        (c, start) =>
          readChangeBatch(c, {
            slot: input.slot,
            publication: input.publication,
            maxChanges: input.maxChanges,
            serverName: input.sourceName,
            now,
            ...start,
          }),
      );

      // Source schema changes: compatible ones are committed before the rows that need them; a table with an
      // incompatible one is blocked, and its changes are held in the quarantine while the other tables go on.
      phase = 'checking source schemas';
      const schemas = await withClient(input.connectionString, (c) =>
        followSourceSchemas(catalog, c, {
          targets: targets.map((t) => ({
            source: qualifiedName(t.source),
            icebergTable: t.table.icebergTable,
            metadata: t.metadata,
          })),
          relations: batch.relations,
          blocked: input.blockedTables ?? [],
        }),
      );
      for (const target of targets) {
        const evolved = schemas.evolved.get(target.table.icebergTable);
        if (!evolved) continue;
        target.metadata = evolved.metadata;
        target.schema = currentSchema(evolved.metadata);
      }
      const { events: mergeable, held } = holdBlockedChanges(
        batch.events,
        schemas.blocked,
        new Map(targets.map((t) => [qualifiedName(t.source), t.watermark])),
      );

      phase = 'collapsing';
      const collapsed = collapseChanges(mergeable, {
        tables: targets.map((t) => ({ source: t.source, schema: t.schema, watermark: t.watermark })),
      });
      const quarantined = [...held, ...collapsed.quarantined];
      // Before any table's commit: after it, a retry skips these transactions, so a crash in between would lose
      // the records. Idempotent, so the retry of a batch that died after this adds nothing.
      phase = 'writing the quarantine';
      let quarantineFile = await writeQuarantine(input.sourceName, quarantined);
      const quarantineBeforeCommit = async (records: readonly QuarantineRecord[]) => {
        quarantineFile = (await writeQuarantine(input.sourceName, records)) ?? quarantineFile;
      };
      const merged: MergedTable[] = [];
      let committedAt: string | null = null;
      for (const target of targets) {
        const { changes, ...applied } = await applyTableChanges(
          target.table.icebergTable,
          target.metadata,
          target.schema,
          collapsed.tables.get(qualifiedName(target.source))!,
          batch.lastCommitEndLsn === undefined ? undefined : watermarkProperties(batch.lastCommitEndLsn),
          (next) => (phase = next),
          (current) => {
            if (readWatermark(currentSnapshot(current)?.summary) !== target.watermark) {
              throw watermarkMoved(target.table.icebergTable);
            }
          },
          quarantineBeforeCommit,
        );
        quarantined.push(...applied.quarantined);
        const counts = { inserted: applied.inserted, updated: applied.updated, deleted: applied.deleted };
        let snapshotId: string | null = null;
        let watermark = target.watermark;
        if (applied.snapshotId !== undefined && batch.lastCommitEndLsn !== undefined) {
          snapshotId = String(applied.snapshotId);
          watermark = batch.lastCommitEndLsn;
          committedAt = new Date(now()).toISOString();
        }
        merged.push({
          icebergTable: target.table.icebergTable,
          merged: counts.inserted + counts.updated + counts.deleted,
          ...counts,
          skippedBelowWatermark: changes.skippedBelowWatermark,
          snapshotId,
          watermark: formatLsn(watermark),
        });
      }

      return {
        changes: batch.events.length,
        transactions: batch.transactions,
        merged: merged.reduce((n, t) => n + t.merged, 0),
        quarantined: quarantined.length,
        skippedBelowWatermark: merged.reduce((n, t) => n + t.skippedBelowWatermark, 0),
        tables: merged,
        lastCommitEndLsn: batch.lastCommitEndLsn === undefined ? null : formatLsn(batch.lastCommitEndLsn),
        advanceTo: batch.advanceTo === undefined || batch.advanceTo === 0n ? null : formatLsn(batch.advanceTo),
        uptoLsn: formatLsn(batch.uptoLsn),
        cutShort: batch.cutShort,
        lagSeconds: batch.firstCommitTimeMs === undefined ? 0 : Math.max(0, (now() - batch.firstCommitTimeMs) / 1000),
        committedAt,
        lastSourceCommitTime:
          batch.lastCommitTimeMs === undefined ? null : new Date(batch.lastCommitTimeMs).toISOString(),
        quarantineFile,
        ...(schemas.newlyBlocked.length > 0 ? { newlyBlocked: [...schemas.newlyBlocked] } : {}),
        ...(schemas.evolved.size > 0
          ? { schemaChanges: [...schemas.evolved].map(([icebergTable, e]) => ({ icebergTable, changes: e.changes })) }
          : {}),
        ...(held.length > 0 ? { held: held.length } : {}),
      };
    } finally {
      stopHeartbeats();
    }
  }

  /**
   * The last step both sources share: fills unchanged TOASTed values from the table's current rows, then upserts
   * the table's collapsed changes in one commit whose summary carries `snapshotProperties` (the source's
   * watermark). Writes nothing without row changes or without properties.
   */
  async function applyTableChanges(
    icebergTable: string,
    metadata: TableMetadata,
    schema: Schema,
    collapsed: TableChanges,
    snapshotProperties: Record<string, string> | undefined,
    setPhase: (phase: string) => void,
    /** Refuses the commit when the table's watermark moved since the batch read it (see upsertRows' validate). */
    validate: (current: TableMetadata) => void,
    /** Writes the records quarantined here (rows whose TOASTed values cannot be filled) before the commit. */
    quarantine: (records: readonly QuarantineRecord[]) => Promise<unknown>,
  ) {
    let changes = collapsed;
    const quarantined: QuarantineRecord[] = [];
    if (changes.unchanged.length > 0) {
      setPhase(`reading current rows of ${icebergTable}`);
      const current = await currentRowsByKey(deps.io, metadata, schema, changes);
      const filled = fillUnchangedValues(changes, (key) => current.get(keyString(key)));
      changes = filled.changes;
      quarantined.push(...filled.quarantined);
      if (quarantined.length > 0) {
        setPhase('writing the quarantine');
        await quarantine(quarantined);
      }
    }
    const none = { changes, quarantined, inserted: 0, updated: 0, deleted: 0, snapshotId: undefined };
    if (changes.ops.length === 0 || snapshotProperties === undefined) return none;
    setPhase(`merging into ${icebergTable}`);
    crashes.reach('before-write', icebergTable);
    const result = await upsertRows(deps.catalog, mergeIo, icebergTable, {
      columns: changes.columns,
      ops: changes.ops,
      snapshotProperties,
      keyIndex,
      validate,
    });
    if (result.snapshotId !== undefined) crashes.reach('after-commit', `${icebergTable} ${result.snapshotId}`);
    return {
      changes,
      quarantined,
      inserted: result.inserted,
      updated: result.updated,
      deleted: result.deleted,
      snapshotId: result.snapshotId,
    };
  }

  async function onboardFiles(input: z.output<typeof OnboardFileTableInput>): Promise<OnboardFileTableResult> {
    const { catalog, io } = deps;
    const existing = await loadIfExists(catalog, input.icebergTable);
    if (existing) {
      const schema = currentSchema(existing.metadata);
      if (schema.identifierFieldIds.length === 0) {
        throw typedFailure(
          'InvalidInput',
          `Iceberg table "${input.icebergTable}" exists but has no identifier fields, so change files cannot be ` +
            'merged into it by key; choose another icebergTable',
        );
      }
      return { icebergTable: input.icebergTable, key: keyNames(schema), created: false, schemaFrom: 'existing' };
    }
    let built: FileTableSchema;
    let schemaFrom: string;
    if (input.columns) {
      built = buildSchemaFromColumns(input.table, input.columns, input.key);
      schemaFrom = 'columns';
    } else {
      const found = await findConnectSchema(io, input.prefix, input.table);
      if (!found) {
        throw typedFailure(
          'InvalidInput',
          `no change file under ${input.prefix} carries a Connect schema for "${input.table}" (files written with ` +
            'schemas.enable=false, or no file yet), so the Iceberg table cannot be created from the events; pass ' +
            'the columns explicitly',
        );
      }
      built = buildSchemaFromConnect(input.table, found.fields, input.key);
      schemaFrom = found.origin;
    }
    await ensureTableNamespace(catalog, input.icebergTable);
    try {
      await catalog.createTable(input.icebergTable, {
        schema: built.schema,
        ...bucketSpec(bucketColumnOf(built), input.buckets),
        properties: {
          'sluice.cdc.source': input.sourceName,
          [CDC_SOURCE_TABLE_PROPERTY]: input.table,
          'sluice.cdc.files-prefix': input.prefix,
        },
      });
    } catch (err) {
      // A concurrent attempt created it: the same input gives the same table.
      if (!(err instanceof TableAlreadyExistsError)) throw err;
      return { icebergTable: input.icebergTable, key: [...built.key], created: false, schemaFrom: 'existing' };
    }
    return { icebergTable: input.icebergTable, key: [...built.key], created: true, schemaFrom };
  }

  async function mergeFiles(input: z.output<typeof MergeFileBatchInput>): Promise<MergeFileBatchResult> {
    const { catalog, io } = deps;
    let phase = 'loading the table';
    const stopHeartbeats = keepHeartbeating(() => ({ phase }));
    try {
      const loaded = await catalog.loadTable(input.icebergTable);
      const watermark = readFilesWatermark(loaded.metadata);
      const schema = currentSchema(loaded.metadata);
      const source = parseTableName(input.table);

      phase = 'reading change files';
      const batch = await readChangeFiles(io, {
        prefix: input.prefix,
        watermark,
        maxFiles: input.maxFiles,
        maxEvents: input.maxChanges,
      });
      const empty: MergeFileBatchResult = {
        files: 0,
        changes: 0,
        merged: 0,
        inserted: 0,
        updated: 0,
        deleted: 0,
        quarantined: 0,
        snapshotId: null,
        watermark: { ...watermark },
        cutShort: false,
        committedAt: null,
        quarantineFile: null,
      };
      if (batch.files.length === 0) return empty;

      // Events from files have no LSNs: the files' high-water mark, committed with the rows, is what makes a
      // retried or repeated batch apply nothing twice.
      phase = 'collapsing';
      const collapsed = collapseChanges(batch.events, { tables: [{ source, schema }] });
      // Before the mark moves past these files: a crash after the commit must not lose their quarantined events
      // (a retry skips records already in the file).
      phase = 'writing the quarantine';
      const quarantined = [...batch.quarantined, ...collapsed.quarantined];
      let quarantineFile = await writeQuarantine(input.sourceName, quarantined);
      const properties = { [CDC_FILES_WATERMARK_PROPERTY]: formatFilesWatermark(batch.nextWatermark) };
      const applied = await applyTableChanges(
        input.icebergTable,
        loaded.metadata,
        schema,
        collapsed.tables.get(qualifiedName(source))!,
        properties,
        (next) => (phase = next),
        (current) => {
          if (formatFilesWatermark(readFilesWatermark(current)) !== formatFilesWatermark(watermark)) {
            throw watermarkMoved(input.icebergTable);
          }
        },
        async (records) => {
          quarantineFile = (await writeQuarantine(input.sourceName, records)) ?? quarantineFile;
        },
      );
      quarantined.push(...applied.quarantined);
      let snapshotId = applied.snapshotId;
      if (snapshotId === undefined) {
        // Nothing to upsert (tombstones, quarantined events, deletes of missing keys): commit the mark alone, or
        // the same files would be read again forever.
        phase = 'committing the high-water mark';
        crashes.reach('before-write', input.icebergTable);
        snapshotId = await commitWatermarkOnly(input.icebergTable, properties, (current) => {
          if (formatFilesWatermark(readFilesWatermark(current)) !== formatFilesWatermark(watermark)) {
            throw watermarkMoved(input.icebergTable);
          }
        });
        crashes.reach('after-commit', `${input.icebergTable} ${snapshotId}`);
      }
      crashes.reach('after-advance', `${input.icebergTable} ${properties[CDC_FILES_WATERMARK_PROPERTY]}`);
      return {
        ...empty,
        files: batch.files.length,
        changes: batch.events.length,
        merged: applied.inserted + applied.updated + applied.deleted,
        inserted: applied.inserted,
        updated: applied.updated,
        deleted: applied.deleted,
        quarantined: quarantined.length,
        snapshotId: String(snapshotId),
        watermark: { ...batch.nextWatermark },
        cutShort: batch.cutShort,
        committedAt: new Date(now()).toISOString(),
        quarantineFile,
      };
    } finally {
      stopHeartbeats();
    }
  }

  /** Commits a snapshot that changes no data and carries `properties` (a high-water mark). */
  async function commitWatermarkOnly(
    icebergTable: string,
    properties: Record<string, string>,
    validate: (current: TableMetadata) => void,
  ): Promise<bigint> {
    const current = await deps.catalog.loadTable(icebergTable);
    const snapshotId = newSnapshotId(current.metadata.snapshots.map((s) => s.snapshotId));
    await commitNewManifests(deps.catalog, deps.io, icebergTable, {
      snapshotId,
      manifests: [],
      operation: 'append',
      changes: noChanges(),
      snapshotProperties: properties,
      validate: async (metadata) => validate(metadata),
    });
    return snapshotId;
  }

  /** The failure an activity throws for `err`: typed failures as they are, engine errors mapped to their type. */
  function activityFailure(err: unknown, names: { slot?: string; publication?: string }): unknown {
    if (err instanceof ApplicationFailure) return err;
    return toActivityFailure(translateReplicationError(err, names));
  }

  return {
    /**
     * Onboards a source table: reads its definition, creates the Iceberg table (identifier fields = key,
     * `bucket(N, key)`), ensures the publication, creates the slot with an exported snapshot and copies the table
     * from exactly the slot's consistent point, committing once with that point as the table's watermark.
     * Idempotent: a table that already has a watermark is left alone; a half-done copy is dropped and redone.
     */
    async onboardTable(raw: OnboardTableInput): Promise<OnboardTableResult> {
      const input = validateActivityInput(OnboardTableInput, raw, 'onboardTable input');
      try {
        return await onboard(input);
      } catch (err) {
        throw activityFailure(err, { slot: input.slot, publication: input.publication });
      }
    },

    /**
     * Merges one bounded batch of the slot's changes into the Iceberg tables: reads each table's watermark, peeks
     * the batch, collapses it per key skipping transactions at or below the watermark (exactly once), fills
     * unchanged TOASTed values from the current rows, and upserts with the batch's last commit end LSN as the new
     * watermark. Quarantined events go to `<warehouse>/_quarantine/<source>/<date>.jsonl`. The slot is not moved:
     * call `advanceSlot` with `advanceTo` after this returns.
     */
    async mergeBatch(raw: MergeBatchInput): Promise<MergeBatchResult> {
      const input = validateActivityInput(MergeBatchInput, raw, 'mergeBatch input');
      try {
        const result = await merge(input);
        // The read-ahead's peek holds the slot while the server decodes; the advance that follows needs it.
        await prefetcher?.settle(prefetchKeyOf(input));
        return result;
      } catch (err) {
        // Nothing read ahead survives a failed batch: its retry peeks again.
        await prefetcher?.discard(prefetchKeyOf(input));
        throw activityFailure(err, { slot: input.slot, publication: input.publication });
      }
    },

    /** Moves the slot to `to` (idempotent) and returns its status afterwards. Only after the Iceberg commit. */
    async advanceSlot(raw: AdvanceSlotInput): Promise<CdcSlotStatus> {
      const input = validateActivityInput(AdvanceSlotInput, raw, 'advanceSlot input');
      try {
        return await withClient(input.connectionString, async (c) => {
          const advanced = await advanceReplicationSlot(c, input.slot, parseLsn(input.to));
          crashes.reach('after-advance', `${input.slot} ${input.to}`);
          return { ...slotStatusJson(await readSlotStatus(c, input.slot)), moved: advanced.moved };
        });
      } catch (err) {
        throw activityFailure(err, { slot: input.slot });
      }
    },

    /**
     * Creates the Iceberg table of a Debezium change-file source (identifier fields = `key`, `bucket(N, key)`), its
     * schema from the first event's Connect schema or from `columns`. Idempotent: an existing table is left alone.
     */
    async onboardFileTable(raw: OnboardFileTableInput): Promise<OnboardFileTableResult> {
      const input = validateActivityInput(OnboardFileTableInput, raw, 'onboardFileTable input');
      try {
        return await onboardFiles(input);
      } catch (err) {
        throw activityFailure(err, {});
      }
    },

    /**
     * Merges the next change files above the table's committed high-water mark (files in key order, read whole,
     * at most `maxFiles` / about `maxChanges` events) through the same collapse and upsert as `mergeBatch`; the new
     * mark is committed in the same snapshot as the rows, so a retry never applies a file twice.
     */
    async mergeFileBatch(raw: MergeFileBatchInput): Promise<MergeFileBatchResult> {
      const input = validateActivityInput(MergeFileBatchInput, raw, 'mergeFileBatch input');
      try {
        return await mergeFiles(input);
      } catch (err) {
        throw activityFailure(err, {});
      }
    },

    /** The slot's position, lag and retained WAL. */
    async slotStatus(raw: SlotStatusInput): Promise<CdcSlotStatus> {
      const input = validateActivityInput(SlotStatusInput, raw, 'slotStatus input');
      try {
        return await withClient(input.connectionString, async (c) =>
          slotStatusJson(await readSlotStatus(c, input.slot)),
        );
      } catch (err) {
        throw activityFailure(err, { slot: input.slot });
      }
    },
  };
}

export type CdcActivities = ReturnType<typeof createCdcActivities>;

/** `schema.table` (validated by the schemas) as a table name. */
function parseTableName(text: string): TableName {
  const dot = text.indexOf('.');
  return { schema: text.slice(0, dot), table: text.slice(dot + 1) };
}

async function loadIfExists(catalog: SqlCatalog, table: string) {
  return (await catalog.tableExists(table)) ? catalog.loadTable(table) : undefined;
}

function keyFieldsOf(schema: Schema): NestedField[] {
  return schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)!);
}

/**
 * The onboarding result of an Iceberg table that a CDC onboarding already wrote (its snapshot carries the
 * watermark), `undefined` for a table without snapshots (an earlier attempt died before its first commit).
 *
 * @throws ApplicationFailure `InvalidInput` for a table with data but no watermark: not Sluice's to overwrite.
 */
export function alreadyOnboarded(icebergTable: string, metadata: TableMetadata): OnboardTableResult | undefined {
  const snapshot = currentSnapshot(metadata);
  const watermark = readWatermark(snapshot?.summary);
  if (watermark !== undefined) {
    return {
      icebergTable,
      key: keyNames(currentSchema(metadata)),
      rowsCopied: 0,
      quarantined: 0,
      watermark: formatLsn(watermark),
      snapshotId: snapshot ? String(snapshot.snapshotId) : null,
      alreadyOnboarded: true,
    };
  }
  if (snapshot) {
    throw typedFailure(
      'InvalidInput',
      `Iceberg table "${icebergTable}" already exists and has data but no CDC watermark ` +
        `(${CDC_WATERMARK_PROPERTY}), so cdc-onboard did not write it; choose another icebergTable or drop ` +
        'that table',
    );
  }
  return undefined;
}

/** The names of the table's identifier (key) columns. */
export function keyNames(schema: Schema): string[] {
  return keyFieldsOf(schema).map((f) => f.name);
}

function emptyColumns(schema: Schema): Map<number, unknown[]> {
  return new Map(schema.fields.map((f) => [f.id, []]));
}

/**
 * The table's current rows for the keys whose unchanged TOASTed values must be copied, by {@link keyString} of the
 * key: a scan filtered by `IN` on the first key column (pruned by partition and column bounds), then exact keys.
 */
export async function currentRowsByKey(
  io: FileIO,
  metadata: TableMetadata,
  schema: Schema,
  changes: TableChanges,
): Promise<Map<string, Map<number, unknown>>> {
  const keys = keyFieldsOf(schema);
  const first = keys[0]!;
  const wanted = new Set(changes.unchanged.map((u) => keyString(u.lookupKey)));
  const firstValues = new Map<string, PrimitiveValue>();
  for (const u of changes.unchanged) firstValues.set(keyString([u.lookupKey[0]]), u.lookupKey[0]!);
  const out = new Map<string, Map<number, unknown>>();
  for await (const batch of scanTable(io, metadata, { filter: isIn(first.name, [...firstValues.values()]) })) {
    for (let r = 0; r < batch.rowCount; r++) {
      const key = keyString(keys.map((k) => batch.columns.get(k.id)![r]));
      if (!wanted.has(key)) continue;
      out.set(key, new Map([...batch.columns].map(([id, values]) => [id, values[r]])));
    }
  }
  return out;
}

function slotStatusJson(status: SlotStatus): CdcSlotStatus {
  return {
    slot: status.slot,
    active: status.active,
    confirmedLsn: status.confirmedFlushLsn === undefined ? null : formatLsn(status.confirmedFlushLsn),
    currentLsn: formatLsn(status.currentLsn),
    lagBytes: String(status.lagBytes),
    retainedWalBytes: String(status.retainedWalBytes),
    walStatus: status.walStatus,
    safeWalBytes: status.safeWalBytes === null ? null : String(status.safeWalBytes),
  };
}

/**
 * TEST ONLY: a FileIO that reaches the `after-write` crash point after each table file (Parquet data or delete
 * file) it writes, i.e. between a merge's writes and its commit.
 */
function crashAfterTableFileWrites(io: FileIO, crashes: CrashInjector): FileIO {
  const written = (uri: string) => {
    if (uri.endsWith('.parquet')) crashes.reach('after-write', uri);
  };
  return new Proxy(io, {
    get(target, prop, receiver) {
      if (prop === 'write' || prop === 'writeIfAbsent' || prop === 'writeStream') {
        return async (uri: string, arg: never) => {
          const result = await (target[prop] as (u: string, a: never) => Promise<unknown>).call(target, uri, arg);
          written(uri);
          return result;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The table's CDC watermark moved between reading a batch and committing it: another attempt of the same batch (a
 * worker presumed dead that was only slow) committed first. Retryable: the retry reads the batch again and the
 * watermark filter skips what was applied.
 */
function watermarkMoved(icebergTable: string) {
  return typedFailure(
    'CommitConflict',
    `the CDC watermark of "${icebergTable}" moved while the batch was being merged (another attempt of this batch ` +
      'committed first); nothing was committed, and the retry reads the batch again',
  );
}
