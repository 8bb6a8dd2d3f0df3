import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCdcActivities } from '../../activities/cdc-activities.js';
import { startCdcFileMerge } from '../../client/pipelines.js';
import { REPO_ROOT } from '../../lib/config.js';
import { CDC_FILES_WATERMARK_PROPERTY, createCrashInjector, readFilesWatermark } from '../../lib/cdc/index.js';
import { currentSchema, currentSnapshot, type TableMetadata } from '../../lib/iceberg/metadata-json.js';
import { createSourcePools, openWarehouse, type SourcePools, type Warehouse } from '../../lib/stack/warehouse.js';
import type { CdcFileMergeProgress, MergeFileBatchInput, MergeFileBatchResult } from '../../schemas/cdc.js';
import { cdcMergePauseSignal, cdcMergeResumeSignal } from '../../workflows/cdc-merge.js';
import { cdcFileMergeProgressQuery } from '../../workflows/cdc-file-merge.js';
import { cdcMergeReplayUpdate } from '../../workflows/cdc-merge-operations.js';
import { listQuarantine } from '../../lib/cdc/quarantine-store.js';
import { evolveSchema } from '../../lib/iceberg/schema-evolution.js';
import { setCurrentSchema } from '../../lib/iceberg/table-update.js';
import { createCpuWorker } from '../../workers/pool-workers.js';
import { readWithPyiceberg, type CatalogRef } from '../interop/engines.js';
import { OrdersChangeLog, sampleOrder } from '../fixtures/cdc-debezium-files.js';
import { connectToTestServer, eventually, testWorkflowBundle, uniqueQueue } from '../fixtures/temporal.js';

// Debezium change files on the real S3 server (s3proxy from globalSetup), the warehouse in the same bucket, a
// private SQLite catalog, the real Temporal dev server and an in-process cpu worker. pyiceberg is the judge.
// SLUICE_RECORD_HISTORIES=1 also writes test/histories/cdc-file-merge-*.json for the replay tests.
const s3 = inject('s3');
const suffix = randomUUID().replaceAll('-', '').slice(0, 10);
const bucket = `sluice-dbz-${suffix}`;
const prefix = `s3://${bucket}/topics/`;
const topic = 'dbz.public.orders';
const sourceName = `dbz${suffix}`;
const icebergTable = `${sourceName}.public.orders`;
const recordHistories = process.env.SLUICE_RECORD_HISTORIES === '1';

let dir: string;
let warehouse: Warehouse;
let pools: SourcePools;
let catalogRef: CatalogRef;
let t: Awaited<ReturnType<typeof connectToTestServer>>;
let worker: Worker;
let running: Promise<void>;
let base: string;

const fileUri = (partition: number, offset: number, gz = false) =>
  `${prefix}${topic}/partition=${partition}/${topic}+${partition}+${String(offset).padStart(10, '0')}.json${gz ? '.gz' : ''}`;

async function writeChangeFile(partition: number, offset: number, text: string, gz = false): Promise<void> {
  await warehouse.io.write(fileUri(partition, offset, gz), gz ? gzipSync(Buffer.from(text)) : text);
}

beforeAll(async () => {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-cdc-dbz-'));
  warehouse = await openWarehouse(
    {
      warehouse: `s3://${bucket}/wh`,
      catalogName: 'dbz_it',
      catalog: { type: 'sqlite', path: path.join(dir, 'c.db') },
    },
    {
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
    },
  );
  catalogRef = {
    uri: `sqlite:///${path.join(dir, 'c.db')}`,
    name: 'dbz_it',
    warehouse: warehouse.warehouse,
    s3: { endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region },
  };
  pools = createSourcePools();
  t = await connectToTestServer();
  base = uniqueQueue('cdc-dbz');
  worker = await createCpuWorker({
    connection: t.nativeConnection,
    namespace: 'default',
    baseTaskQueue: base,
    workflows: { workflowBundle: testWorkflowBundle() },
    shutdownGraceTime: '1s',
    cdc: { catalog: warehouse.catalog, io: warehouse.io, pgPoolFor: pools.poolFor, heartbeatIntervalMs: 1000 },
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await t?.close();
  await pools?.close();
  await warehouse?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function progressOf(handle: WorkflowHandle): Promise<CdcFileMergeProgress | undefined> {
  try {
    return await handle.query(cdcFileMergeProgressQuery);
  } catch {
    return undefined; // between runs of a continue-as-new
  }
}

async function metadata(): Promise<TableMetadata> {
  return (await warehouse.catalog.loadTable(icebergTable)).metadata;
}

/** The marks of every snapshot, oldest first: `topic+partition` → offset as numbers. */
function markHistory(meta: TableMetadata): Record<string, number>[] {
  return [...meta.snapshots]
    .sort((a, b) => (a.sequenceNumber < b.sequenceNumber ? -1 : 1))
    .map((s) => s.summary[CDC_FILES_WATERMARK_PROPERTY])
    .filter((text): text is string => text !== undefined)
    .map((text) =>
      Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, string>).map(([k, v]) => [k, Number(v)])),
    );
}

describe('cdc-file-merge: Debezium change files on S3 into Iceberg', () => {
  it('creates the table from the Connect schema, merges files in key order exactly once, and survives crashes', async () => {
    const log = new OrdersChangeLog(topic);
    // Partition 0: a snapshot of 40 rows, then a file of updates, deletes, inserts, a tombstone and a broken line.
    for (let i = 1; i <= 40; i++) log.insert(sampleOrder(i), 'r');
    await writeChangeFile(0, 0, log.takeFile());
    for (let i = 1; i <= 40; i += 3) log.update(BigInt(i), { customer: `updated ${i}`, qty: 99 });
    for (const i of [2, 5, 8]) log.delete(BigInt(i));
    for (let i = 41; i <= 50; i++) log.insert(sampleOrder(i));
    log.garbage();
    await writeChangeFile(0, 40, log.takeFile());
    // Same key several times in one file: only the last change counts; a delete then re-insert.
    log.update(10n, { amount: '-3.10' });
    log.update(10n, { amount: '7.00', day: null });
    log.delete(11n);
    log.insert({ ...sampleOrder(11, 1), customer: 'back again' });
    log.delete(50n);
    await writeChangeFile(0, 75, log.takeFile(), true); // gzipped, offsets are not zero-padded the same everywhere
    // Partition 1 holds other keys, with its own mark.
    for (let i = 1001; i <= 1010; i++) log.insert(sampleOrder(i));
    await writeChangeFile(1, 0, log.takeFile());
    // Not a change file: ignored.
    await warehouse.io.write(`${prefix}${topic}/partition=0/README.txt`, 'not a change file');

    const handle = await startCdcFileMerge(
      t.client,
      {
        files: { prefix },
        sourceName,
        table: 'public.orders',
        key: ['id'],
        buckets: 4,
        maxFilesPerBatch: 1,
        pollIntervalMs: 200,
        idleIntervalMs: 500,
        iterationsPerRun: 3,
      },
      { taskQueue: base },
    );
    expect(handle.workflowId).toBe(`cdc-files/${sourceName}`);
    const caughtUp = await eventually(
      async () => {
        const p = await progressOf(handle);
        return p?.watermark?.[`${topic}+0`] === '75' && p.watermark[`${topic}+1`] === '0' ? p : undefined;
      },
      60_000,
      'the file merge to apply all four files',
    );
    expect(caughtUp.files).toBe(4);
    expect(caughtUp.quarantined).toBe(1); // the broken line
    expect(caughtUp.runs).toBeGreaterThan(1); // continued as new with its counters

    const meta = await metadata();
    const schema = meta.schemas.find((s) => s.schemaId === meta.currentSchemaId)!;
    expect(schema.fields.map((f) => [f.name, f.type])).toEqual([
      ['id', { kind: 'long' }],
      ['customer', { kind: 'string' }],
      ['amount', { kind: 'decimal', precision: 12, scale: 2 }],
      ['qty', { kind: 'int' }],
      ['updated_at', { kind: 'timestamp' }],
      ['day', { kind: 'date' }],
    ]);
    expect(meta.partitionSpecs.find((s) => s.specId === meta.defaultSpecId)!.fields).toHaveLength(1);
    const first = await readWithPyiceberg(catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(first.rows).toEqual(log.expectedRows());
    // One file per batch: the mark only grows, one file at a time.
    expect(markHistory(meta)).toEqual([
      { [`${topic}+0`]: 0 },
      { [`${topic}+0`]: 40 },
      { [`${topic}+0`]: 75 },
      { [`${topic}+0`]: 75, [`${topic}+1`]: 0 },
    ]);

    // Crashes and retries, with the workflow paused so that only these calls merge.
    await handle.signal(cdcMergePauseSignal);
    await eventually(async () => ((await progressOf(handle))?.phase === 'paused' ? true : undefined), 10_000, 'pause');
    for (let i = 12; i <= 20; i++) log.update(BigInt(i), { qty: 1000 + i });
    log.delete(13n);
    for (let i = 51; i <= 60; i++) log.insert(sampleOrder(i));
    await writeChangeFile(0, 81, log.takeFile());
    const batchInput: MergeFileBatchInput = {
      sourceName,
      prefix,
      table: 'public.orders',
      icebergTable,
      maxFiles: 10,
      maxChanges: 10_000,
    };
    const crashingAt = (point: 'after-write' | 'after-commit') =>
      createCdcActivities({
        catalog: warehouse.catalog,
        io: warehouse.io,
        pgPoolFor: pools.poolFor,
        crashes: createCrashInjector([{ point, probability: 1 }], {
          crash: (p) => {
            throw new Error(`simulated crash at ${p}`);
          },
        }),
      });
    const clean = createCdcActivities({ catalog: warehouse.catalog, io: warehouse.io, pgPoolFor: pools.poolFor });
    const env = new MockActivityEnvironment();

    // Dies after writing a data file, before the commit: nothing is visible, the retry applies the file once.
    const snapshotsBefore = (await metadata()).snapshots.length;
    await expect(env.run(crashingAt('after-write').mergeFileBatch, batchInput)).rejects.toThrow(/after-write/);
    expect((await metadata()).snapshots.length).toBe(snapshotsBefore);
    const retried = await env.run(clean.mergeFileBatch, batchInput);
    expect(retried).toMatchObject({ files: 1, changes: 20, deleted: 1, inserted: 10, updated: 8 });

    // Dies right after the commit: the retry finds the mark past the file and applies nothing.
    for (let i = 21; i <= 25; i++) log.update(BigInt(i), { customer: `crash-commit ${i}` });
    await writeChangeFile(0, 101, log.takeFile());
    await expect(env.run(crashingAt('after-commit').mergeFileBatch, batchInput)).rejects.toThrow(/after-commit/);
    const committed = currentSnapshot(await metadata())!;
    expect(readFilesWatermark(await metadata())).toEqual({ [`${topic}+0`]: '101', [`${topic}+1`]: '0' });
    const again = await env.run(clean.mergeFileBatch, batchInput);
    expect(again).toMatchObject({ files: 0, changes: 0, merged: 0, snapshotId: null });
    expect(currentSnapshot(await metadata())!.snapshotId).toBe(committed.snapshotId);

    // A file with nothing to upsert (only a tombstone) still moves the mark, or it would be read forever.
    await writeChangeFile(1, 10, 'null\n');
    const onlyMark = await env.run(clean.mergeFileBatch, batchInput);
    expect(onlyMark).toMatchObject({ files: 1, merged: 0, watermark: { [`${topic}+1`]: '10' } });
    const nothingLeft: MergeFileBatchResult = await env.run(clean.mergeFileBatch, batchInput);
    expect(nothingLeft.files).toBe(0);

    // Resumed, the workflow picks up new files; the table equals the change log.
    await handle.signal(cdcMergeResumeSignal);
    log.update(1n, { customer: 'after resume' });
    log.delete(3n);
    await writeChangeFile(0, 106, log.takeFile());
    await eventually(
      async () => ((await progressOf(handle))?.watermark?.[`${topic}+0`] === '106' ? true : undefined),
      30_000,
      'the resumed merge',
    );
    const final = await readWithPyiceberg(catalogRef, { table: icebergTable, orderBy: ['id'] });
    expect(final.rows).toEqual(log.expectedRows());
    const marks = markHistory(await metadata()).map((m) => m[`${topic}+0`]!);
    expect(marks).toEqual([...marks].sort((a, b) => a - b)); // never went back
    const quarantine = (await warehouse.io.read(
      `${warehouse.warehouse}/_quarantine/${sourceName}/${new Date().toISOString().slice(0, 10)}.jsonl`,
    )) as Uint8Array;
    const records = Buffer.from(quarantine).toString('utf8').trim().split('\n');
    expect(records).toHaveLength(1);
    expect(JSON.parse(records[0]!)).toMatchObject({ errorKind: 'invalid-event' });

    await handle.cancel();
    await handle.result().catch(() => undefined);
    if (recordHistories) {
      // The first run (onboarding, batches, continue-as-new) and the last one (pause, resume, cancel).
      const runs = [handle.firstExecutionRunId, (await handle.describe()).runId];
      const names = ['cdc-file-merge-first-run', 'cdc-file-merge-last-run'];
      for (const [i, runId] of runs.entries()) {
        const history = await t.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
        writeFileSync(path.join(REPO_ROOT, 'test/histories', `${names[i]}.json`), historyToJSON(history) + '\n');
      }
    }
  });

  it('replays quarantined events through the update, skipping those a later change of their key supersedes', async () => {
    const rTopic = 'rpl.public.orders';
    const rPrefix = `s3://${bucket}/rpl/`;
    const rSource = `rpl${suffix}`;
    const rTable = `${rSource}.public.orders`;
    const uri = (offset: number) =>
      `${rPrefix}${rTopic}/partition=0/${rTopic}+0+${String(offset).padStart(10, '0')}.json`;
    const log = new OrdersChangeLog(rTopic);
    for (let i = 1; i <= 5; i++) log.insert(sampleOrder(i), 'r');
    await warehouse.io.write(uri(0), log.takeFile());
    // Beyond the int column the Connect schema gave `qty`: both quarantined (value-conversion).
    log.update(1n, { qty: 3_000_000_000 });
    log.update(2n, { qty: 3_000_000_001 });
    await warehouse.io.write(uri(5), log.takeFile());
    // A later change of key 2 in a later file: replaying its quarantined change would bring the old value back.
    log.update(2n, { qty: 7 });
    await warehouse.io.write(uri(7), log.takeFile());

    const handle = await startCdcFileMerge(
      t.client,
      {
        files: { prefix: rPrefix },
        sourceName: rSource,
        table: 'public.orders',
        key: ['id'],
        buckets: 2,
        pollIntervalMs: 200,
        idleIntervalMs: 500,
      },
      { taskQueue: base },
    );
    const caughtUp = await eventually(
      async () => {
        const p = await progressOf(handle);
        return p?.watermark?.[`${rTopic}+0`] === '7' ? p : undefined;
      },
      60_000,
      'the file merge to apply the three files',
    );
    expect(caughtUp.quarantined).toBe(2);
    const pending = await listQuarantine(warehouse.io, warehouse.warehouse, rSource);
    expect(pending.map((e) => [e.record.errorKind, e.record.origin])).toEqual([
      ['value-conversion', `${uri(5)}:1`],
      ['value-conversion', `${uri(5)}:2`],
    ]);

    // The operator fixes the cause (widens qty to long), then replays through the running merge.
    await warehouse.catalog.commitWithRetry(rTable, (current) => {
      const evolved = evolveSchema({
        schema: currentSchema(current),
        lastColumnId: current.lastColumnId,
        newSchemaId: Math.max(...current.schemas.map((s) => s.schemaId)) + 1,
        changes: [{ op: 'update-column-type', column: 'qty', type: { kind: 'long' } }],
      });
      return setCurrentSchema(current, evolved.schema, evolved.lastColumnId);
    });
    const result = await handle.executeUpdate(cdcMergeReplayUpdate, { args: [{}] });
    expect(result).toMatchObject({ selected: 2, replayed: 1, skippedNewer: 1, stillFailing: 0 });
    const rows = await readWithPyiceberg(catalogRef, { table: rTable, columns: ['id', 'qty'], orderBy: ['id'] });
    expect(rows.rows).toEqual([
      { id: '1', qty: '3000000000' },
      { id: '2', qty: '7' },
      { id: '3', qty: '3' },
      { id: '4', qty: '4' },
      { id: '5', qty: null },
    ]);
    const done = await listQuarantine(warehouse.io, warehouse.warehouse, rSource, { status: 'done' });
    expect(done.map((e) => [e.record.origin, e.mark?.outcome])).toEqual([
      [`${uri(5)}:1`, 'replayed'],
      [`${uri(5)}:2`, 'superseded'],
    ]);
    expect(done[1]?.mark?.reason).toContain(`a later change of the key (op u at ${uri(7)}:1)`);
    // The merge goes on from its mark: a new file after the replay is applied once.
    log.update(3n, { qty: 33 });
    await warehouse.io.write(uri(8), log.takeFile());
    await eventually(
      async () => ((await progressOf(handle))?.watermark?.[`${rTopic}+0`] === '8' ? true : undefined),
      30_000,
      'the next file after the replay',
    );
    const after = await readWithPyiceberg(catalogRef, { table: rTable, columns: ['id', 'qty'], orderBy: ['id'] });
    expect(after.rows.map((r) => r.qty)).toEqual(['3000000000', '7', '33', '4', null]);
    await handle.cancel();
    await handle.result().catch(() => undefined);
    if (recordHistories) {
      // One run with the replay update accepted, run between batches, and completed: the replay tests keep it.
      const history = await handle.fetchHistory();
      writeFileSync(
        path.join(REPO_ROOT, 'test/histories', 'cdc-file-merge-replay-run.json'),
        historyToJSON(history) + '\n',
      );
    }
  });

  it('fails with a typed InvalidInput when the files carry no schema and no columns are given', async () => {
    const log = new OrdersChangeLog('plain.public.items', false);
    log.insert(sampleOrder(1));
    const plainPrefix = `s3://${bucket}/plain/`;
    await warehouse.io.write(`${plainPrefix}plain.public.items+0+0.json`, log.takeFile());
    const handle = await startCdcFileMerge(
      t.client,
      { files: { prefix: plainPrefix }, sourceName: `plain${suffix}`, table: 'public.orders', key: ['id'] },
      { taskQueue: base },
    );
    const err = (await handle.result().catch((e: unknown) => e)) as Error & { cause?: Error & { type?: string } };
    expect(err.cause?.type).toBe('InvalidInput');
    expect(err.cause?.message).toMatch(/cdc-file-merge of source .* carries a Connect schema/);
  });
});
