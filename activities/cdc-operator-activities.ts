import { ApplicationFailure, Context } from '@temporalio/activity';
import type pg from 'pg';
import type { z } from 'zod';
import {
  acceptedDriftOf,
  appendQuarantine,
  buildIcebergSchema,
  ensurePublication,
  acceptedDriftProperties,
  appendReplayMarks,
  changeEventFromQuarantine,
  collapseChanges,
  copyInitialSnapshot,
  detectSchemaDrift,
  dropSlot,
  fillUnchangedValues,
  formatLsn,
  isCdcError,
  listQuarantine,
  pgTextToIceberg,
  qualifiedName,
  readSourceTable,
  readWatermark,
  removeFromQuarantine,
  resolveSchemaDrift,
  translateReplicationError,
  watermarkProperties,
  CDC_WIDE_NUMERIC_PROPERTY,
  UnknownColumnError,
  type ChangeEvent,
  type QuarantineEntry,
  type QuarantineRecord,
  type SourceTable,
  type TableName,
} from '../lib/cdc/index.js';
import { commitNewManifests, writeAddedManifest, writeDataFiles } from '../lib/iceberg/append.js';
import type { DataFile } from '../lib/iceberg/data-file.js';
import { compactTable, expireSnapshots, removeOrphanFiles } from '../lib/iceberg/maintenance/index.js';
import { isLive, manifestEntries, snapshotManifests } from '../lib/iceberg/maintenance/table-files.js';
import { currentSchema, currentSnapshot, newSnapshotId, type TableMetadata } from '../lib/iceberg/metadata-json.js';
import { evolveSchema } from '../lib/iceberg/schema-evolution.js';
import { noChanges, setCurrentSchema, updateProperties } from '../lib/iceberg/table-update.js';
import { KeyIndexCache, keyString, upsertRows } from '../lib/iceberg/upsert.js';
import type { PrimitiveValue } from '../lib/iceberg/values.js';
import {
  CompactCdcTableInput,
  ExpireCdcSnapshotsInput,
  ForgetKeyInput,
  InspectTableHealthInput,
  PurgeForgottenInput,
  RemoveCdcOrphansInput,
  ReplayQuarantinedInput,
  ResolveSchemaChangeInput,
  type CompactCdcTableResult,
  type ExpireCdcSnapshotsResult,
  type ForgetKeyResult,
  type PurgeForgottenResult,
  type RemoveCdcOrphansResult,
  type ReplayQuarantinedResult,
  type ResolveSchemaChangeResult,
  type TableHealth,
} from '../schemas/cdc-operations.js';
import { commitRebootstrap, prepareRebootstrap } from '../lib/cdc/rebootstrap.js';
import { findStaleFileReplays, findStaleReplays } from '../lib/cdc/replay-guard.js';
import { resolveSourceConnection } from '../lib/cdc/source-secret.js';
import { OnboardTableInput, type OnboardTableResult } from '../schemas/cdc.js';
import { bucketColumnOf, bucketSpec, ensureTableNamespace } from '../lib/cdc/base-table.js';
import {
  alreadyOnboarded,
  CDC_SOURCE_TABLE_PROPERTY,
  currentRowsByKey,
  keyNames,
  slotTableProperties,
  type CdcActivityDeps,
} from './cdc-activities.js';
import { keepHeartbeating } from './heartbeat.js';
import { toActivityFailure, typedFailure, validateActivityInput } from './failures.js';

/**
 * What an operator does to CDC tables, run by the merge workflow between batches (so nothing races the merge's own
 * commits) or by the maintenance workflow: resolving a blocked schema change, forgetting a key and purging it from
 * history, replaying quarantined changes, and table maintenance. Every commit on a CDC table carries the table's
 * `sluice.cdc.*` snapshot properties forward, so the watermark stays on the current snapshot.
 */
export function createCdcOperatorActivities(deps: CdcActivityDeps) {
  const { catalog, io } = deps;
  const keyIndex = deps.keyIndex ?? new KeyIndexCache();
  const now = deps.now ?? Date.now;

  async function withClient<T>(connectionString: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
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

  function heartbeat(details: unknown): void {
    Context.current().heartbeat(details);
  }

  /**
   * Replays the pending records `select` picks for one table through the collapse and one upsert. With
   * `connectionString` (a PostgreSQL source) or `filesPrefix` (a change-file source), records that a newer change
   * of their key supersedes are skipped and marked so, with the reason (lib/cdc/replay-guard.ts).
   */
  async function replayTable(
    sourceName: string,
    target: { source: string; icebergTable: string },
    selected: readonly QuarantineEntry[],
    guard: { connectionString?: string; filesPrefix?: string },
  ): Promise<{ replayed: number; stillFailing: number; skippedNewer: number; snapshotId: string | undefined }> {
    if (selected.length === 0) return { replayed: 0, stillFailing: 0, skippedNewer: 0, snapshotId: undefined };
    const loaded = await catalog.loadTable(target.icebergTable);
    const schema = currentSchema(loaded.metadata);
    const failedOrigins = new Set<string>();
    const parsed: { entry: QuarantineEntry; event: ChangeEvent }[] = [];
    selected.forEach((entry, i) => {
      try {
        parsed.push({ entry, event: changeEventFromQuarantine(entry.record, i) });
      } catch {
        failedOrigins.add(entry.record.origin);
      }
    });
    const source = parseTableName(target.source);
    let entries = selected;
    let skippedNewer = 0;
    if ((guard.connectionString !== undefined || guard.filesPrefix !== undefined) && parsed.length > 0) {
      const events = parsed.map((p) => p.event);
      const stale = [
        ...(guard.connectionString !== undefined
          ? await withClient(guard.connectionString, (c) => findStaleReplays(c, source, schema, events))
          : []),
        ...(guard.filesPrefix !== undefined
          ? await findStaleFileReplays(io, guard.filesPrefix, source, keyNames(schema), events)
          : []),
      ];
      if (stale.length > 0) {
        const at = new Date(now()).toISOString();
        const skipped = new Set(stale.map((s) => parsed[s.index]!.entry.id));
        await appendReplayMarks(
          io,
          catalog.warehouse,
          sourceName,
          stale.map((s) => ({ id: parsed[s.index]!.entry.id, at, outcome: 'superseded' as const, reason: s.reason })),
        );
        skippedNewer = stale.length;
        entries = selected.filter((e) => !skipped.has(e.id));
        for (let i = parsed.length - 1; i >= 0; i--) if (skipped.has(parsed[i]!.entry.id)) parsed.splice(i, 1);
      }
    }
    const events = parsed.map((p) => p.event);
    let collapsed;
    try {
      // No watermark: these changes are older than it, and were never applied.
      collapsed = collapseChanges(events, { tables: [{ source, schema }] });
    } catch (err) {
      if (err instanceof UnknownColumnError)
        return { replayed: 0, stillFailing: entries.length, skippedNewer, snapshotId: undefined };
      throw err;
    }
    for (const q of collapsed.quarantined) failedOrigins.add(q.origin);
    let changes = collapsed.tables.get(qualifiedName(source))!;
    if (changes.unchanged.length > 0) {
      const current = await currentRowsByKey(io, loaded.metadata, schema, changes);
      const filled = fillUnchangedValues(changes, (key) => current.get(keyString(key)));
      changes = filled.changes;
      for (const q of filled.quarantined) failedOrigins.add(q.origin);
    }
    let snapshotId: string | undefined;
    if (changes.ops.length > 0) {
      const result = await upsertRows(catalog, io, target.icebergTable, {
        columns: changes.columns,
        ops: changes.ops,
        snapshotProperties: cdcSnapshotProperties(loaded.metadata),
        keyIndex,
      });
      if (result.snapshotId !== undefined) snapshotId = String(result.snapshotId);
    }
    const done = entries.filter((e) => !failedOrigins.has(e.record.origin));
    const at = new Date(now()).toISOString();
    await appendReplayMarks(
      io,
      catalog.warehouse,
      sourceName,
      done.map((e) => ({ id: e.id, at, outcome: 'replayed' as const, ...(snapshotId ? { snapshotId } : {}) })),
    );
    return { replayed: done.length, stillFailing: entries.length - done.length, skippedNewer, snapshotId };
  }

  async function replay(input: ReplayQuarantinedInput): Promise<ReplayQuarantinedResult> {
    const entries = await listQuarantine(io, catalog.warehouse, input.sourceName, {
      ...(input.table ? { table: input.table } : {}),
      ...(input.errorKind ? { errorKind: input.errorKind } : {}),
      ...(input.ids ? { ids: input.ids } : {}),
      status: 'pending',
    });
    const result: ReplayQuarantinedResult = {
      selected: entries.length,
      replayed: 0,
      stillFailing: 0,
      skippedUnknownTable: 0,
      skippedNewer: 0,
      snapshotIds: [],
    };
    const byTable = new Map<string, QuarantineEntry[]>();
    for (const entry of entries) {
      const key = entry.record.table ?? '';
      byTable.set(key, [...(byTable.get(key) ?? []), entry]);
    }
    for (const [table, group] of byTable) {
      const target = input.tables.find((t) => t.source === table);
      if (!target) {
        result.skippedUnknownTable += group.length;
        continue;
      }
      heartbeat({ table, records: group.length });
      const done = await replayTable(input.sourceName, target, group, {
        ...(input.connectionString !== undefined ? { connectionString: input.connectionString } : {}),
        ...(input.filesPrefix !== undefined ? { filesPrefix: input.filesPrefix } : {}),
      });
      result.replayed += done.replayed;
      result.skippedNewer! += done.skippedNewer;
      result.stillFailing += done.stillFailing;
      if (done.snapshotId) result.snapshotIds.push(done.snapshotId);
    }
    return result;
  }

  async function resolve(input: ResolveSchemaChangeInput): Promise<ResolveSchemaChangeResult> {
    const held = await listQuarantine(io, catalog.warehouse, input.sourceName, {
      table: input.table,
      errorKind: 'incompatible-schema-change',
    });
    const base: ResolveSchemaChangeResult = {
      table: input.table,
      icebergTable: input.icebergTable,
      action: input.action,
      schemaChanges: [],
      heldChanges: held.length,
      replayed: 0,
      rowsCopied: 0,
      watermark: null,
    };
    if (input.action === 're-bootstrap') return rebootstrap(input, held, base);

    const sourceTable = await withClient(input.connectionString, (c) =>
      readSourceTable(c, parseTableName(input.table)),
    );
    const loaded = await catalog.loadTable(input.icebergTable);
    const schema = currentSchema(loaded.metadata);
    const accepted = acceptedDriftOf(loaded.metadata.properties);
    const drift = detectSchemaDrift({
      table: input.table,
      columns: sourceTable.columns.map((c) => ({
        name: c.name,
        type: c.type,
        isKey: sourceTable.primaryKey.includes(c.name),
      })),
      replicaIdentity: sourceTable.replicaIdentity,
      schema,
      mapping: { wideNumeric: wideNumericOf(loaded.metadata) },
      accepted,
    });
    const resolution = resolveSchemaDrift(drift, input.action, schema, accepted);
    await catalog.commitWithRetry(input.icebergTable, (current) => {
      let next = current;
      if (resolution.evolve.length > 0) {
        const evolved = evolveSchema({
          schema: currentSchema(current),
          lastColumnId: current.lastColumnId,
          newSchemaId: Math.max(...current.schemas.map((s) => s.schemaId)) + 1,
          changes: resolution.evolve,
        });
        next = setCurrentSchema(next, evolved.schema, evolved.lastColumnId);
      }
      return updateProperties(next, acceptedDriftProperties(resolution.accepted));
    });
    const schemaChanges = drift.items.map((i) => i.description);
    if (input.action === 'skip') return { ...base, schemaChanges };
    // Held changes are the blocked table's only changes since it was blocked, in order: nothing newer to guard from.
    const done = await replayTable(
      input.sourceName,
      { source: input.table, icebergTable: input.icebergTable },
      held,
      {},
    );
    return { ...base, schemaChanges, replayed: done.replayed };
  }

  /**
   * Copies the table again, from exactly the point of a temporary slot's exported snapshot: the snapshot holds
   * every transaction before that point, and the source's own slot (not advanced past it, since the merge waits for
   * this activity) delivers every one after it, which the new watermark lets through. The copy replaces the table's
   * content in one `overwrite` snapshot under the source's current schema and key (lib/cdc/rebootstrap.ts): the
   * table's history stays readable until snapshot expiry.
   */
  async function rebootstrap(
    input: ResolveSchemaChangeInput,
    held: readonly QuarantineEntry[],
    base: ResolveSchemaChangeResult,
  ): Promise<ResolveSchemaChangeResult> {
    const sourceTable = await withClient(input.connectionString, (c) =>
      readSourceTable(c, parseTableName(input.table)),
    );
    const old = await catalog.loadTable(input.icebergTable);
    const oldSchema = currentSchema(old.metadata);
    const key = oldSchema.identifierFieldIds.map((id) => oldSchema.fields.find((f) => f.id === id)!.name);
    const built = buildIcebergSchema(sourceTable, {
      ...(sourceTable.primaryKey.length > 0 ? {} : { key }),
      wideNumeric: wideNumericOf(old.metadata),
    });
    // Same bucket count as before, on the (possibly new) key's first bucketable column, as onboarding does.
    const bucket = old.metadata.partitionSpecs
      .find((s) => s.specId === old.metadata.defaultSpecId)
      ?.fields.find((f) => f.transform.kind === 'bucket');
    const numBuckets = bucket?.transform.kind === 'bucket' ? bucket.transform.numBuckets : undefined;
    const bucketColumn = bucketColumnOf(built);
    // Accepted drift described the old copy; the new one follows the source as it is.
    const dropped: Record<string, undefined> = {};
    for (const k of Object.keys(old.metadata.properties))
      if (k.startsWith('sluice.cdc.accepted') || k.startsWith('sluice.cdc.dropped')) dropped[k] = undefined;
    const prepared = prepareRebootstrap(
      old.metadata,
      built.schema,
      { ...(bucketColumn ? { bucketColumn } : {}), ...(numBuckets ? { numBuckets } : {}) },
      dropped,
    );
    const copy = await copyFromTemporarySlot(input, 'rb', sourceTable, prepared.metadata);
    await commitRebootstrap(
      catalog,
      io,
      input.icebergTable,
      prepared,
      copy.dataFiles,
      watermarkProperties(copy.consistentPoint),
    );
    const rows = copy.rows;
    const at = new Date(now()).toISOString();
    await appendReplayMarks(
      io,
      catalog.warehouse,
      input.sourceName,
      held.map((e) => ({
        id: e.id,
        at,
        outcome: 'superseded' as const,
        reason: `the table was re-bootstrapped at ${formatLsn(copy.consistentPoint)}`,
      })),
    );
    return { ...base, rowsCopied: rows, watermark: formatLsn(copy.consistentPoint) };
  }

  /**
   * Copies `sourceTable` into the (empty) table `metadata` describes from a temporary slot's exported snapshot
   * (`<slot>_<suffix>`, dropped afterwards): the copy holds exactly the transactions before the slot's consistent
   * point, which becomes the table's watermark. The source's own slot is not past that point (the merge waits for
   * this operator action), so it delivers every later change of the table and the watermark skips the earlier ones.
   * Quarantined rows are written before the caller's commit. Returns the files to commit, not committed.
   */
  async function copyFromTemporarySlot(
    input: { connectionString: string; sourceName: string; slot: string },
    suffix: string,
    sourceTable: SourceTable,
    metadata: TableMetadata,
  ): Promise<{ dataFiles: DataFile[]; rows: number; quarantined: number; consistentPoint: bigint }> {
    const schema = currentSchema(metadata);
    const dataFiles: DataFile[] = [];
    const quarantined: QuarantineRecord[] = [];
    let rows = 0;
    const tempSlot = `${input.slot}_${suffix}`.slice(0, 63);
    await withClient(input.connectionString, (c) => dropSlot(c, tempSlot)).catch(() => undefined);
    const copy = await copyInitialSnapshot({
      connection: resolveSourceConnection(input.connectionString),
      slot: tempSlot,
      tables: [sourceTable],
      serverName: input.sourceName,
      now,
      onChunk: async (_t, events) => {
        const collapsed = collapseChanges(events, { tables: [{ source: sourceTable, schema }] });
        quarantined.push(...collapsed.quarantined);
        const changes = collapsed.tables.get(qualifiedName(sourceTable))!;
        rows += changes.ops.length;
        heartbeat({ rows });
        dataFiles.push(
          ...(await writeDataFiles(io, metadata, { columns: changes.columns, rowCount: changes.ops.length })),
        );
      },
    });
    await withClient(input.connectionString, (c) => dropSlot(c, tempSlot));
    await appendQuarantine(io, catalog.warehouse, input.sourceName, quarantined, now());
    return { dataFiles, rows, quarantined: quarantined.length, consistentPoint: copy.consistentPoint };
  }

  /**
   * Adds a table to a running source (the `addTable` update): creates its Iceberg table (identifier fields = key,
   * `bucket(N, key)`), adds it to the source's publication, and copies it from a temporary slot's exported snapshot
   * whose consistent point becomes its watermark (see {@link copyFromTemporarySlot}). The publication changes
   * before that point, so the source's slot delivers every change after it. Idempotent: a table with a watermark is
   * left alone; one without (a failed attempt) is dropped and copied again.
   */
  async function addTable(input: z.output<typeof OnboardTableInput>): Promise<OnboardTableResult> {
    const existing = (await catalog.tableExists(input.icebergTable))
      ? await catalog.loadTable(input.icebergTable)
      : undefined;
    if (existing) {
      const done = alreadyOnboarded(input.icebergTable, existing.metadata);
      if (done) {
        if (existing.metadata.properties[CDC_SOURCE_TABLE_PROPERTY] !== input.table) {
          throw typedFailure(
            'InvalidInput',
            `Iceberg table "${input.icebergTable}" already follows another table ` +
              `("${existing.metadata.properties[CDC_SOURCE_TABLE_PROPERTY] ?? '?'}"); choose another icebergTable`,
          );
        }
        return done;
      }
      // No snapshot: an earlier attempt died before its first commit.
      await catalog.dropTable(input.icebergTable, { purge: true });
    }
    const sourceTable = await withClient(input.connectionString, (c) =>
      readSourceTable(c, parseTableName(input.table)),
    );
    const built = buildIcebergSchema(sourceTable, {
      ...(input.key ? { key: input.key } : {}),
      wideNumeric: input.wideNumeric,
    });
    await ensureTableNamespace(catalog, input.icebergTable);
    const created = await catalog.createTable(input.icebergTable, {
      schema: built.schema,
      ...bucketSpec(bucketColumnOf(built), input.buckets),
      properties: slotTableProperties(input),
    });
    // Before the temporary slot: every change after its consistent point is then published to the source's slot.
    await withClient(input.connectionString, (c) =>
      ensurePublication(c, { publication: input.publication, tables: [sourceTable] }),
    );
    const copy = await copyFromTemporarySlot(input, 'add', sourceTable, created.metadata);
    const snapshotId = await commitCopy(input.icebergTable, created.metadata, copy.dataFiles, copy.consistentPoint);
    return {
      icebergTable: input.icebergTable,
      key: [...built.key],
      rowsCopied: copy.rows,
      quarantined: copy.quarantined,
      watermark: formatLsn(copy.consistentPoint),
      snapshotId: String(snapshotId),
      alreadyOnboarded: false,
    };
  }

  /** Commits a copy's data files to an empty table as one `append` carrying the copy's watermark. */
  async function commitCopy(
    icebergTable: string,
    metadata: TableMetadata,
    dataFiles: readonly DataFile[],
    consistentPoint: bigint,
  ): Promise<bigint> {
    const snapshotId = newSnapshotId(metadata.snapshots.map((s) => s.snapshotId));
    const manifests =
      dataFiles.length > 0 ? [await writeAddedManifest(io, metadata, snapshotId, [...dataFiles], 'data')] : [];
    await commitNewManifests(catalog, io, icebergTable, {
      snapshotId,
      manifests,
      operation: 'append',
      changes: {
        ...noChanges(),
        addedDataFiles: dataFiles.length,
        addedRecords: dataFiles.reduce((n, f) => n + f.recordCount, 0n),
        addedFilesSize: dataFiles.reduce((n, f) => n + f.fileSizeInBytes, 0n),
      },
      snapshotProperties: watermarkProperties(consistentPoint),
    });
    return snapshotId;
  }

  async function forget(input: ForgetKeyInput): Promise<ForgetKeyResult> {
    const loaded = await catalog.loadTable(input.icebergTable);
    const schema = currentSchema(loaded.metadata);
    const keyFields = schema.identifierFieldIds.map((id) => schema.fields.find((f) => f.id === id)!);
    if (keyFields.length !== input.key.length) {
      throw typedFailure(
        'InvalidInput',
        `table "${input.icebergTable}" has a key of ${keyFields.length} column(s) (${keyFields.map((f) => f.name).join(', ')}), ` +
          `but ${input.key.length} value(s) were given; pass one --key value per key column, in that order`,
      );
    }
    const key = keyFields.map((field, i) => {
      try {
        return pgTextToIceberg(field.type, input.key[i]!) as PrimitiveValue;
      } catch (err) {
        throw typedFailure('InvalidInput', `key column "${field.name}": ${(err as Error).message}`);
      }
    });
    const columns = new Map<number, unknown[]>(
      schema.fields.map((f) => {
        const k = keyFields.indexOf(f);
        return [f.id, [k >= 0 ? key[k] : null]];
      }),
    );
    const result = await upsertRows(catalog, io, input.icebergTable, {
      columns,
      ops: ['delete'],
      snapshotProperties: cdcSnapshotProperties(loaded.metadata),
      keyIndex,
    });
    // The quarantine may hold the key's row images too.
    const wanted = keyString(key);
    const removed = await removeFromQuarantine(io, catalog.warehouse, input.sourceName, (record) => {
      if (record.table !== input.table) return false;
      try {
        const event = changeEventFromQuarantine(record, 0);
        const row = event.envelope.after ?? event.envelope.before;
        if (!row) return false;
        const values = keyFields.map((f) => {
          const v = row[f.name];
          if (v === undefined || v === null) return null;
          return (event.encoding === 'pg-text' ? pgTextToIceberg(f.type, String(v)) : v) as PrimitiveValue;
        });
        return keyString(values as PrimitiveValue[]) === wanted;
      } catch {
        return record.raw.includes(input.key.join(''));
      }
    });
    return {
      icebergTable: input.icebergTable,
      deleted: result.deleted,
      snapshotId: result.snapshotId === undefined ? null : String(result.snapshotId),
      quarantineRecordsRemoved: removed,
      forgottenAt: new Date(now()).toISOString(),
    };
  }

  async function purge(input: PurgeForgottenInput): Promise<PurgeForgottenResult> {
    const forgottenAtMs = Date.parse(input.forgottenAt);
    const loaded = await catalog.loadTable(input.icebergTable);
    // Every data file still holding a forgotten row has a position delete on it, and compaction rewrites exactly
    // those (with the rest of their partition's small files).
    heartbeat('compacting');
    const compaction = await compactTable(catalog, io, input.icebergTable, {
      snapshotProperties: cdcSnapshotProperties(loaded.metadata),
      minInputFiles: 1_000_000,
    });
    if (compaction.snapshotId !== undefined) await repairWatermark(input.icebergTable);
    heartbeat('expiring snapshots');
    const nowMs = now();
    const expiry = await expireSnapshots(catalog, io, input.icebergTable, {
      olderThanMs: nowMs,
      retainLast: 1,
      nowMs,
    });
    heartbeat('removing orphan files');
    // Only files older than the forget: anything written since cannot hold the key, and may belong to a writer in
    // flight (the maintenance workflow).
    const orphans = await removeOrphanFiles(catalog, io, input.icebergTable, {
      olderThanMs: Math.max(0, nowMs - forgottenAtMs),
      force: true,
      nowMs,
    });
    const files = expiry.files;
    return {
      icebergTable: input.icebergTable,
      rewrittenDataFiles: compaction.rewrittenDataFiles.length,
      expiredSnapshots: expiry.expiredSnapshotIds.length,
      deletedFiles:
        files.dataFiles.length +
        files.positionDeleteFiles.length +
        files.equalityDeleteFiles.length +
        files.manifests.length +
        files.manifestLists.length,
      orphanFilesRemoved: orphans.orphanFiles.length,
    };
  }

  /**
   * A compaction carries the watermark it saw when it started; if a merge committed a newer one meanwhile (the
   * compaction's compare-and-swap retried on top of it), the current snapshot would hold the older watermark and the
   * next batch would re-apply a few transactions. Put the newest watermark of the current snapshot's ancestors back
   * on top with an empty snapshot.
   */
  async function repairWatermark(icebergTable: string): Promise<boolean> {
    const { metadata } = await catalog.loadTable(icebergTable);
    const current = currentSnapshot(metadata);
    if (!current) return false;
    const byId = new Map(metadata.snapshots.map((snap) => [snap.snapshotId, snap]));
    let newest: bigint | undefined;
    for (let snap: typeof current | undefined = current; snap;) {
      const w = readWatermark(snap.summary);
      if (w !== undefined && (newest === undefined || w > newest)) newest = w;
      snap = snap.parentSnapshotId === undefined ? undefined : byId.get(snap.parentSnapshotId);
    }
    const own = readWatermark(current.summary);
    if (newest === undefined || own === newest) return false;
    const snapshotId = newSnapshotId(metadata.snapshots.map((snap) => snap.snapshotId));
    await commitNewManifests(catalog, io, icebergTable, {
      snapshotId,
      manifests: [],
      operation: 'append',
      changes: noChanges(),
      snapshotProperties: { ...cdcSnapshotProperties(metadata), ...watermarkProperties(newest) },
      validate: async (fresh) => {
        if (fresh.currentSnapshotId !== current.snapshotId) {
          throw new Error(`"${icebergTable}" changed while its watermark was repaired; the repair runs again`);
        }
      },
    });
    return true;
  }

  async function health(input: InspectTableHealthInput): Promise<TableHealth> {
    const { metadata } = await catalog.loadTable(input.icebergTable);
    const snapshot = currentSnapshot(metadata);
    const out: TableHealth = {
      icebergTable: input.icebergTable,
      snapshots: metadata.snapshots.length,
      dataFiles: 0,
      smallDataFiles: 0,
      deleteFiles: 0,
      dataRecords: 0,
      deletedRecords: 0,
      deletedRatio: 0,
    };
    if (!snapshot) return out;
    for (const manifest of await snapshotManifests(io, snapshot)) {
      for (const entry of await manifestEntries(io, metadata, manifest)) {
        if (!isLive(entry)) continue;
        const file = entry.dataFile;
        if (file.content === 'data') {
          out.dataFiles += 1;
          out.dataRecords += Number(file.recordCount);
          if (file.fileSizeInBytes < BigInt(input.smallFileBytes)) out.smallDataFiles += 1;
        } else {
          out.deleteFiles += 1;
          out.deletedRecords += Number(file.recordCount);
        }
      }
    }
    out.deletedRatio = out.dataRecords === 0 ? 0 : out.deletedRecords / out.dataRecords;
    return out;
  }

  /** Runs `work`, mapping engine errors to typed failures. */
  async function typed<T>(work: () => Promise<T>, names: { slot?: string; publication?: string } = {}): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      if (isCdcError(err)) throw typedFailure(err.failureType, err.message, { kind: err.kind });
      throw toActivityFailure(translateReplicationError(err, names));
    }
  }

  return {
    /**
     * Resolves a table blocked by an incompatible source schema change: `apply` commits what Iceberg can follow and
     * merges the held changes, `skip` accepts the source as it is (held changes stay quarantined), `re-bootstrap`
     * copies the table again. Run by the merge workflow between batches.
     */
    async resolveSchemaChange(raw: ResolveSchemaChangeInput): Promise<ResolveSchemaChangeResult> {
      const input = validateActivityInput(ResolveSchemaChangeInput, raw, 'resolveSchemaChange input');
      return typed(() => resolve(input), { slot: input.slot, publication: input.publication });
    },

    /**
     * Adds a source table to a running merge's slot and publication: creates its Iceberg table and copies it from a
     * temporary slot's exported snapshot. Run by the merge workflow between batches (the `addTable` update).
     */
    async addSourceTable(raw: OnboardTableInput): Promise<OnboardTableResult> {
      const input = validateActivityInput(OnboardTableInput, raw, 'addSourceTable input');
      return typed(() => addTable(input), { slot: input.slot, publication: input.publication });
    },

    /** Deletes one key at once (a position delete commit) and removes it from the source's quarantine. */
    async forgetKey(raw: ForgetKeyInput): Promise<ForgetKeyResult> {
      const input = validateActivityInput(ForgetKeyInput, raw, 'forgetKey input');
      return typed(() => forget(input));
    },

    /**
     * After a forget's retention window: compacts away every data file with deleted rows, expires every snapshot
     * but the current one, and removes unreferenced files older than the forget, so that no file holds the key.
     */
    async purgeForgotten(raw: PurgeForgottenInput): Promise<PurgeForgottenResult> {
      const input = validateActivityInput(PurgeForgottenInput, raw, 'purgeForgotten input');
      return typed(() => purge(input));
    },

    /** Re-applies pending quarantined changes (bypassing the watermark) and marks the ones that applied. */
    async replayQuarantined(raw: ReplayQuarantinedInput): Promise<ReplayQuarantinedResult> {
      const input = validateActivityInput(ReplayQuarantinedInput, raw, 'replayQuarantined input');
      return typed(() => replay(input));
    },

    /** Data files, small files and the share of position-deleted rows of the table's current snapshot. */
    async inspectTableHealth(raw: InspectTableHealthInput): Promise<TableHealth> {
      const input = validateActivityInput(InspectTableHealthInput, raw, 'inspectTableHealth input');
      return typed(() => health(input));
    },

    /** Compacts the table (files with deletes, and small files), keeping the CDC watermark on the new snapshot. */
    async compactCdcTable(raw: CompactCdcTableInput): Promise<CompactCdcTableResult> {
      const input = validateActivityInput(CompactCdcTableInput, raw, 'compactCdcTable input');
      return typed(async () => {
        const stopHeartbeats = keepHeartbeating(() => ({ phase: 'compacting', table: input.icebergTable }));
        try {
          const loaded = await catalog.loadTable(input.icebergTable);
          const r = await compactTable(catalog, io, input.icebergTable, {
            snapshotProperties: cdcSnapshotProperties(loaded.metadata),
            minInputFiles: input.minInputFiles,
            ...(input.targetFileSizeBytes ? { targetFileSizeBytes: input.targetFileSizeBytes } : {}),
          });
          if (r.snapshotId !== undefined) await repairWatermark(input.icebergTable);
          return {
            snapshotId: r.snapshotId === undefined ? null : String(r.snapshotId),
            rewrittenDataFiles: r.rewrittenDataFiles.length,
            addedDataFiles: r.addedDataFiles.length,
            removedDeleteFiles: r.removedDeleteFiles.length,
            rewrittenRows: Number(r.rewrittenRows),
          };
        } finally {
          stopHeartbeats();
        }
      });
    },

    async expireCdcSnapshots(raw: ExpireCdcSnapshotsInput): Promise<ExpireCdcSnapshotsResult> {
      const input = validateActivityInput(ExpireCdcSnapshotsInput, raw, 'expireCdcSnapshots input');
      return typed(async () => {
        const stopHeartbeats = keepHeartbeating(() => ({ phase: 'expiring snapshots', table: input.icebergTable }));
        try {
          const nowMs = now();
          const r = await expireSnapshots(catalog, io, input.icebergTable, {
            olderThanMs: nowMs - input.olderThanMs,
            retainLast: input.retainLast,
            nowMs,
          });
          const f = r.files;
          return {
            expiredSnapshots: r.expiredSnapshotIds.length,
            deletedFiles:
              f.dataFiles.length +
              f.positionDeleteFiles.length +
              f.equalityDeleteFiles.length +
              f.manifests.length +
              f.manifestLists.length,
          };
        } finally {
          stopHeartbeats();
        }
      });
    },

    async removeCdcOrphans(raw: RemoveCdcOrphansInput): Promise<RemoveCdcOrphansResult> {
      const input = validateActivityInput(RemoveCdcOrphansInput, raw, 'removeCdcOrphans input');
      return typed(async () => {
        const stopHeartbeats = keepHeartbeating(() => ({ phase: 'removing orphan files', table: input.icebergTable }));
        try {
          const r = await removeOrphanFiles(catalog, io, input.icebergTable, {
            olderThanMs: input.olderThanMs,
            force: input.force,
            nowMs: now(),
          });
          return { orphanFilesRemoved: r.orphanFiles.length, listedFiles: r.listedFiles };
        } finally {
          stopHeartbeats();
        }
      });
    },
  };
}

export type CdcOperatorActivities = ReturnType<typeof createCdcOperatorActivities>;

/** The current snapshot's `sluice.cdc.*` summary properties (the watermark), to carry onto a new snapshot. */
export function cdcSnapshotProperties(metadata: TableMetadata): Record<string, string> {
  const summary = currentSnapshot(metadata)?.summary ?? {};
  return Object.fromEntries(Object.entries(summary).filter(([k]) => k.startsWith('sluice.cdc.'))) as Record<
    string,
    string
  >;
}

function wideNumericOf(metadata: TableMetadata): 'decimal' | 'string' {
  return metadata.properties[CDC_WIDE_NUMERIC_PROPERTY] === 'string' ? 'string' : 'decimal';
}

function parseTableName(text: string): TableName {
  const dot = text.indexOf('.');
  return { schema: text.slice(0, dot), table: text.slice(dot + 1) };
}
